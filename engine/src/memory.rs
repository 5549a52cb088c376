//! A lower bound of the memory a pretraining needs, checked before any model is built: a
//! size that cannot fit (`width=1000000`, `crop-size 1000000 patch=1`, `targets count=...`)
//! is an error with the estimate, never an allocation abort or a panic half-way through.
//!
//! The bound counts only what must exist at once: the encoder, its EMA copy where the recipe
//! keeps one, the recipe's second network (I-JEPA's predictor, MAE's decoder, DINO's head),
//! gradients and AdamW's two moments (float32), the patch tokens of one batch
//! through one block (with the MLP's hidden width and one attention map per head), and the
//! mask index tensors. Real use is higher (every block keeps activations for backward), so a
//! run refused here could never have run; one accepted may still need more.

use ijepa_dsl::config::Experiment;

/// The estimate, in bytes, with its parts for the message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Weights, gradients and optimiser state.
    pub state: f64,
    /// One block's activations for one batch.
    pub activations: f64,
    /// Mask index tensors of one batch.
    pub masks: f64,
}

impl Estimate {
    /// Total bytes.
    pub fn total(&self) -> f64 {
        self.state + self.activations + self.masks
    }
}

fn block_params(w: f64, ratio: f64) -> f64 {
    // qkv + proj + fc1 + fc2 (weights and biases) + two layer norms
    let h = (w * ratio).floor();
    3.0 * w * w + 3.0 * w + w * w + w + 2.0 * w * h + h + w + 4.0 * w
}

/// The lower bound for `exp`, per process (its batch is the data block's batch size).
pub fn estimate(exp: &Experiment) -> Estimate {
    let e = &exp.encoder;
    let w = e.embed_dim as f64;
    let side = (exp.data.crop_size / e.patch_size.max(1)) as f64;
    let tokens = side * side;
    let patch = e.patch_size as f64;
    let enc = e.depth as f64 * block_params(w, e.mlp_ratio) + 3.0 * patch * patch * w + w + tokens * w + 2.0 * w;
    // the second network, with its copies (the network, gradients, two moments, and an EMA
    // copy where there is one): I-JEPA's predictor (the encoder's EMA target too, unless the
    // targets are pixels), MAE's decoder, DINO's projection head (student and teacher, as the
    // backbones); another recipe counts its encoder, or what its cost model states if more
    let transformer = |depth: usize, pw: f64, ratio: f64| second_transformer_params(w, tokens, depth, pw, ratio);
    let (second, copies, declared) = match exp.recipe.as_str() {
        "ijepa" => {
            let p = &exp.predictor;
            let ema = exp.target.kind != ijepa_dsl::config::TargetKind::Pixels;
            (4.0 * transformer(p.depth, p.embed_dim as f64, p.mlp_ratio), if ema { 5.0 } else { 4.0 }, None)
        }
        "mae" => (4.0 * transformer(exp.decoder.depth, exp.decoder.embed_dim as f64, exp.decoder.mlp_ratio), 4.0, None),
        "dino" => (5.0 * dino_head_params(w, &exp.dino), 5.0, None),
        _ => (0.0, 4.0, declared_state(exp)),
    };
    let state = (4.0 * (copies * enc + second)).max(declared.unwrap_or(0.0));
    let b = exp.data.batch_size as f64;
    let heads = e.num_heads.max(1) as f64;
    let hidden = (w * e.mlp_ratio).floor();
    let activations = 4.0 * b * (tokens * (4.0 * w + hidden) + heads * tokens * tokens);
    let masks = 8.0 * b * (exp.mask.n_targets + exp.mask.n_context) as f64 * tokens;
    Estimate { state, activations, masks }
}

/// The state bytes a registered recipe's cost model states: its trained parameters with their
/// gradients and two AdamW moments, its held ones (an EMA copy) once; `None` without one.
fn declared_state(exp: &Experiment) -> Option<f64> {
    let cost = crate::recipe::entry(&exp.recipe).ok()?.cost?;
    let c = cost(exp).ok()?;
    Some(4.0 * (4.0 * c.trainable_params + c.frozen_params))
}

/// Parameters of a transformer of `depth` blocks of width `pw` beside an encoder of width `w`
/// over `tokens` patches (I-JEPA's predictor, MAE's decoder): its blocks, the projections in
/// and out of the encoder's width, a position table and a token, the final norm.
fn second_transformer_params(w: f64, tokens: f64, depth: usize, pw: f64, ratio: f64) -> f64 {
    depth as f64 * block_params(pw, ratio) + 2.0 * w * pw + tokens * pw + pw + 2.0 * pw
}

/// Parameters of DINO's projection head on an encoder of width `w`: the MLP (`head-layers`
/// linear layers into the bottleneck) and the weight-normalised prototypes (`weight_v` and
/// `weight_g`).
fn dino_head_params(w: f64, d: &ijepa_dsl::config::DinoConfig) -> f64 {
    let (h, b, o) = (d.hidden_dim as f64, d.bottleneck_dim as f64, d.out_dim as f64);
    let mlp = match d.head_layers {
        0 | 1 => w * b + b,
        n => (w * h + h) + (n - 2) as f64 * (h * h + h) + (h * b + b),
    };
    mlp + o * b + o
}

/// The bytes of a `Field:   N kB` line of a /proc file (`/proc/meminfo`, `/proc/self/status`).
fn proc_kb_field(file: &str, field: &str) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    let kb: f64 = text.lines().find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kb * 1024.0)
}

/// Memory available to this process, in bytes (`MemAvailable` of /proc/meminfo), if known.
pub fn available() -> Option<f64> {
    proc_kb_field("/proc/meminfo", "MemAvailable")
}

/// This process's resident memory now (`VmRSS`) and its peak so far (`VmHWM`), in bytes, from
/// `/proc/self/status` (Linux), if known.
pub fn resident() -> Option<(f64, f64)> {
    Some((proc_kb_field("/proc/self/status", "VmRSS")?, proc_kb_field("/proc/self/status", "VmHWM")?))
}

fn gib(b: f64) -> String {
    format!("{:.1} GiB", b / (1u64 << 30) as f64)
}

/// Refuses a CPU pretraining whose lower bound exceeds the memory available now.
///
/// # Errors
/// [`crate::Error::Config`] with the estimate, its parts and what is available.
pub fn check_fits(exp: &Experiment, on_cpu: bool) -> crate::Result<()> {
    let est = estimate(exp);
    // a GPU's memory is not known here: the bound still refuses sizes no accelerator has
    // (1 TiB; the largest hold ~0.2 TiB, and data parallelism replicates the model state)
    let limit = if on_cpu { available() } else { None }.unwrap_or((1u64 << 40) as f64);
    if est.total() > limit {
        return Err(crate::Error::Config(format!(
            "{} needs at least {} (weights, gradients and AdamW state {}, one block's activations for a batch of {} {}, \
             mask indices {}), more than the {} {}; make the model, the crop or the batch smaller",
            exp.name,
            gib(est.total()),
            gib(est.state),
            exp.data.batch_size,
            gib(est.activations),
            gib(est.masks),
            gib(limit),
            if on_cpu { "this machine has available" } else { "any accelerator has" }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp(f: impl Fn(&mut Experiment)) -> Experiment {
        let mut e = ijepa_dsl::parse_str("t.kdl", "experiment \"t\" { encoder width=192 depth=6 heads=3 patch=4; predictor depth=3 width=96 heads=3; data \"fashion-mnist\" { crop-size 28; batch-size 32 }; mask \"multi-block\" { min-keep 4 } }").unwrap();
        f(&mut e);
        e
    }

    #[test]
    fn the_quickstart_fits_and_absurd_sizes_do_not() {
        let q = estimate(&exp(|_| {}));
        // the quickstart (ViT 192x6, predictor 96x3): 3.05M params -> ~60 MB of state
        assert!(q.state > 40e6 && q.state < 80e6, "{q:?}");
        check_fits(&exp(|_| {}), true).unwrap();
        for (what, e) in [
            ("width", exp(|e| e.encoder.embed_dim = 1_000_000)),
            ("crop", exp(|e| {
                e.data.crop_size = 1_000_000;
                e.encoder.patch_size = 1;
            })),
            ("targets", exp(|e| e.mask.n_targets = 100_000_000)),
            ("dino prototypes", exp(|e| {
                e.recipe = "dino".into();
                e.dino.out_dim = 1 << 36;
            })),
        ] {
            let err = check_fits(&e, true).unwrap_err().to_string();
            assert!(err.contains("needs at least") && err.contains("GiB"), "{what}: {err}");
            // and on an accelerator (memory unknown here): still refused, these fit nowhere
            assert!(check_fits(&e, false).is_err(), "{what}");
        }
    }

    #[test]
    fn each_recipe_counts_its_own_second_network() {
        let ijepa = estimate(&exp(|_| {}));
        // targets of pixels: no EMA copy of the encoder
        let pixels = estimate(&exp(|e| e.target.kind = ijepa_dsl::config::TargetKind::Pixels));
        assert!(pixels.state < ijepa.state, "{pixels:?} vs {ijepa:?}");
        // DINO's default head: 2048 hidden, 256 bottleneck, 65,536 prototypes (~17.9M
        // parameters on a 192-wide encoder), five float32 copies; not I-JEPA's predictor
        let dino = estimate(&exp(|e| e.recipe = "dino".into()));
        let head = 192.0 * 2048.0 + 2048.0 + 2048.0 * 2048.0 + 2048.0 + 2048.0 * 256.0 + 256.0 + 65536.0 * 256.0 + 65536.0;
        assert!((dino.state - ijepa.state - 4.0 * (5.0 * head - 4.0 * predictor_params(&exp(|_| {})))).abs() < 1.0, "{dino:?} vs {ijepa:?}");
        let one_layer = estimate(&exp(|e| {
            e.recipe = "dino".into();
            e.dino.head_layers = 1;
        }));
        assert!(one_layer.state < dino.state);
    }

    fn predictor_params(e: &Experiment) -> f64 {
        let tokens = ((e.data.crop_size / e.encoder.patch_size) as f64).powi(2);
        second_transformer_params(e.encoder.embed_dim as f64, tokens, e.predictor.depth, e.predictor.embed_dim as f64, e.predictor.mlp_ratio)
    }
}
