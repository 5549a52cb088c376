//! A lower bound of the memory a pretraining needs, checked before any model is built: a
//! size that cannot fit (`width=1000000`, `crop-size 1000000 patch=1`, `targets count=...`)
//! is an error with the estimate, never an allocation abort or a panic half-way through.
//!
//! The bound counts only what must exist at once: the encoder, its EMA copy where the recipe
//! keeps one, the recipe's second network (I-JEPA's predictor, MAE's decoder, DINO's head),
//! gradients and AdamW's two moments (float32), the patch tokens of one batch
//! through one block (with the MLP's hidden width and one attention map per head; every view
//! of DINO's), and the mask index tensors. Real use is higher (every block keeps activations for backward), so a
//! run refused here could never have run; one accepted may still need more.

use ijepa_dsl::config::Experiment;
use std::path::Path;

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
    // one view's patch tokens through one block; DINO's every image is two global crops and
    // `local-crops` local ones of their own patches (a billion local crops passed this bound
    // and aborted the run in building their transforms)
    let view = |t: f64| t * (4.0 * w + hidden) + heads * t * t;
    let views = match exp.recipe.as_str() {
        "dino" if exp.dino.local_crops > 0 => {
            let local = (exp.dino.local_size / e.patch_size.max(1)) as f64;
            2.0 * view(tokens) + exp.dino.local_crops as f64 * view(local * local)
        }
        "dino" => 2.0 * view(tokens),
        _ => view(tokens),
    };
    let activations = 4.0 * b * views;
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

/// Memory available to this process, in bytes, if known: the least of the machine's
/// (`MemAvailable` of /proc/meminfo), what its memory cgroup leaves ([`cgroup_available`]: a
/// SLURM job's `--mem`, a container's limit) and what its address-space limit leaves
/// (`ulimit -v`). The machine's alone let a run start in a 6 GiB job on a 22 GiB host, and
/// the kernel killed it.
pub fn available() -> Option<f64> {
    let (shared, own) = available_parts();
    [shared, own].into_iter().flatten().reduce(f64::min)
}

/// [`available`] in its two parts: what the processes of this machine share (its free memory,
/// the memory cgroup) and what this process alone may take (`ulimit -v`, a limit of each).
fn available_parts() -> (Option<f64>, Option<f64>) {
    let cgroup = std::fs::read_to_string("/proc/self/cgroup").ok().and_then(|t| cgroup_available(Path::new("/sys/fs/cgroup"), &t));
    let shared = [proc_kb_field("/proc/meminfo", "MemAvailable"), cgroup].into_iter().flatten().reduce(f64::min);
    (shared, address_space_left())
}

/// What the address-space limit (`RLIMIT_AS`) leaves beyond the process's size (`VmSize`), when
/// there is one.
fn address_space_left() -> Option<f64> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `getrlimit` writes the limit into `lim`, a valid out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return None;
    }
    Some((lim.rlim_cur as f64 - proc_kb_field("/proc/self/status", "VmSize")?).max(0.0))
}

/// The memory the cgroups of this process (`cgroup`: the text of `/proc/self/cgroup`) leave
/// under `root` (`/sys/fs/cgroup`): of its cgroup and each one above it, the least limit less
/// its usage other than the page cache (which the kernel reclaims under the limit: a job that
/// had read its data set would be refused runs that fit), for cgroup v1
/// (`memory/…/memory.limit_in_bytes`) or v2 (`…/memory.max`); `None` without a limit.
pub fn cgroup_available(root: &Path, cgroup: &str) -> Option<f64> {
    // (v1: the `memory` controller's line; v2: `0::/path`)
    let v1 = cgroup.lines().find_map(|l| {
        let mut f = l.splitn(3, ':');
        let (_, controllers, path) = (f.next()?, f.next()?, f.next()?);
        controllers.split(',').any(|c| c == "memory").then(|| path.to_string())
    });
    let (mount, path, limit_file, usage_file, cache) = match v1 {
        Some(path) => (root.join("memory"), path, "memory.limit_in_bytes", "memory.usage_in_bytes", "total_cache"),
        None => (root.to_path_buf(), cgroup.lines().find_map(|l| l.strip_prefix("0::"))?.to_string(), "memory.max", "memory.current", "file"),
    };
    let number = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok()?.trim().parse::<f64>().ok();
    let stat = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("memory.stat")).ok()?;
        text.lines().find_map(|l| l.strip_prefix(cache)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
    };
    // the cgroup's folder (in a container whose cgroup namespace starts at it, the mount
    // itself), then each one above it up to the mount
    let mut dir = mount.join(path.trim_start_matches('/'));
    if !dir.is_dir() {
        dir = mount.clone();
    }
    let mut least: Option<f64> = None;
    loop {
        // (v2's "max", v1's 2^63 rounded to the page: no limit)
        if let Some(limit) = number(&dir, limit_file).filter(|l| *l < (1u64 << 60) as f64) {
            let used = number(&dir, usage_file).map_or(0.0, |u| (u - stat(&dir).unwrap_or(0.0)).max(0.0));
            let left = (limit - used).max(0.0);
            least = Some(least.map_or(left, |l: f64| l.min(left)));
        }
        if dir == mount || !dir.pop() || !dir.starts_with(&mount) {
            break;
        }
    }
    least
}

/// This process's resident memory now (`VmRSS`) and its peak so far (`VmHWM`), in bytes, from
/// `/proc/self/status` (Linux), if known.
pub fn resident() -> Option<(f64, f64)> {
    Some((proc_kb_field("/proc/self/status", "VmRSS")?, proc_kb_field("/proc/self/status", "VmHWM")?))
}

/// `b` bytes as messages give them: GiB to one decimal, below one GiB in MiB (below one in
/// KiB: "0.0 GiB ... more than the 0.0 GiB available" said nothing).
pub(crate) fn gib(b: f64) -> String {
    match b {
        b if b >= (1u64 << 30) as f64 => format!("{:.1} GiB", b / (1u64 << 30) as f64),
        b if b >= (1u64 << 20) as f64 => format!("{:.0} MiB", b / (1u64 << 20) as f64),
        b => format!("{:.0} KiB", b / 1024.0),
    }
}

/// What [`available`] counts, for messages that compare with it.
pub const AVAILABLE_HERE: &str = "available here (the machine's free memory, or this process's memory cgroup or `ulimit -v` where they leave less)";

/// Refuses a CPU pretraining whose lower bound exceeds the memory available now.
///
/// # Errors
/// [`crate::Error::Config`] with the estimate, its parts and what is available.
pub fn check_fits(exp: &Experiment, on_cpu: bool) -> crate::Result<()> {
    check_fits_here(exp, on_cpu, 1)
}

/// [`check_fits`] for `here` processes of one run on this machine (the ranks a launcher
/// started on it): on a CPU they share its memory, and each rank checked its own need alone
/// (a model that fitted once and not N times was killed by the kernel instead).
///
/// # Errors
/// As [`check_fits`].
pub fn check_fits_here(exp: &Experiment, on_cpu: bool, here: usize) -> crate::Result<()> {
    let est = estimate(exp);
    // a GPU's memory is not known here: the bound still refuses sizes no accelerator has
    // (1 TiB; the largest hold ~0.2 TiB, and data parallelism replicates the model state)
    let any = (1u64 << 40) as f64;
    let (shared, own) = if on_cpu { available_parts() } else { (None, None) };
    let here = if on_cpu { here.max(1) } else { 1 };
    // (the ranks share the machine's memory and its cgroup; `ulimit -v` is each one's own:
    // multiplied too, it refused ranks that each fitted theirs)
    let all = est.total() * here as f64;
    let refused = match (shared, own) {
        (Some(s), _) if all > s => Some((s, here)),
        (_, Some(o)) if est.total() > o => Some((o, 1)),
        (None, None) if est.total() > any => Some((any, 1)),
        _ => None,
    };
    if let Some((limit, here)) = refused {
        return Err(crate::Error::Config(format!(
            "{} needs at least {}{} (weights, gradients and AdamW state {}, one block's activations for a batch of {} {}, \
             mask indices {}), more than the {} {}; make the model, the crop{} or the batch smaller",
            exp.name,
            gib(est.total()),
            if here > 1 { format!(" a process, {} for the {here} processes on this machine", gib(est.total() * here as f64)) } else { String::new() },
            gib(est.state),
            exp.data.batch_size,
            gib(est.activations),
            gib(est.masks),
            gib(limit),
            if on_cpu { AVAILABLE_HERE } else { "any accelerator has" },
            // (the views of an image count: a billion local crops was told to shrink the model)
            if exp.recipe == "dino" && exp.dino.local_crops > 0 && est.activations > est.state { ", DINO's local crops (`local-crops`, `local-size`)" } else { "" }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_said_in_a_unit_that_shows_them() {
        assert_eq!(gib(3.0 * (1u64 << 30) as f64), "3.0 GiB");
        assert_eq!(gib(15.6 * (1u64 << 20) as f64), "16 MiB");
        assert_eq!(gib(2048.0), "2 KiB");
    }

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
        // ... once, not for a million processes sharing this machine's memory (a GPU's is each
        // rank's own)
        let err = check_fits_here(&exp(|_| {}), true, 1_000_000).unwrap_err().to_string();
        assert!(err.contains(" a process, ") && err.contains("for the 1000000 processes on this machine"), "{err}");
        check_fits_here(&exp(|_| {}), false, 1_000_000).unwrap();
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
            ("dino local crops", exp(|e| {
                e.recipe = "dino".into();
                e.dino.local_size = 12;
                e.dino.local_crops = 1_000_000_000;
            })),
        ] {
            let err = check_fits(&e, true).unwrap_err().to_string();
            assert!(err.contains("needs at least") && err.contains("GiB"), "{what}: {err}");
            // (named where the views' activations are the larger part, not beside a head too large)
            assert_eq!(err.contains("DINO's local crops (`local-crops`, `local-size`)"), what == "dino local crops", "{what}: {err}");
            // and on an accelerator (memory unknown here): still refused, these fit nowhere
            assert!(check_fits(&e, false).is_err(), "{what}");
        }
    }

    /// A job's memory cgroup (v1 and v2) bounds what is available: its limit less its working
    /// set, the tightest of it and the cgroups above it; no limit, none.
    #[test]
    fn a_memory_cgroup_bounds_what_is_available() {
        let d = std::env::temp_dir().join(format!("ijepa-cgroup-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let write = |dir: &Path, files: &[(&str, &str)]| {
            std::fs::create_dir_all(dir).unwrap();
            for (f, t) in files {
                std::fs::write(dir.join(f), t).unwrap();
            }
        };
        let gib = (1u64 << 30) as f64;
        // v1: the job's 6 GiB, 2 GiB used of which 0.5 GiB page cache; no limit above
        let v1 = d.join("v1");
        write(&v1.join("memory"), &[("memory.limit_in_bytes", "9223372036854771712\n"), ("memory.usage_in_bytes", "9000000000\n")]);
        write(&v1.join("memory/slurm/job_1"), &[("memory.limit_in_bytes", "6442450944\n"), ("memory.usage_in_bytes", "2147483648\n"), ("memory.stat", "cache 1\ntotal_cache 536870912\n")]);
        let text = "4:memory:/slurm/job_1\n3:cpu:/\n0::/\n";
        assert_eq!(cgroup_available(&v1, text), Some(4.5 * gib));
        // v2: a 3 GiB parent above a limitless cgroup
        let v2 = d.join("v2");
        write(&v2, &[("memory.max", "max\n")]);
        write(&v2.join("box"), &[("memory.max", "3221225472\n"), ("memory.current", "1073741824\n"), ("memory.stat", "anon 1\nfile 0\n")]);
        write(&v2.join("box/job"), &[("memory.max", "max\n"), ("memory.current", "5\n")]);
        assert_eq!(cgroup_available(&v2, "0::/box/job\n"), Some(2.0 * gib));
        // a namespaced cgroup whose path is not under the mount: the mount's own files
        assert_eq!(cgroup_available(&v2.join("box"), "0::/elsewhere\n"), Some(2.0 * gib));
        // no limit anywhere
        assert_eq!(cgroup_available(&v2, "0::/\n"), None);
        let _ = std::fs::remove_dir_all(&d);
        assert!(available().is_some_and(|a| a > 0.0));
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
        // its views: two global crops of the crop's 49 patches and 8 local ones of 9 (12 px)
        let local = estimate(&exp(|e| {
            e.recipe = "dino".into();
            e.dino.local_size = 12;
        }));
        let view = |t: f64| 4.0 * 32.0 * (t * (4.0 * 192.0 + 768.0) + 3.0 * t * t);
        assert!((local.activations - (2.0 * view(49.0) + 8.0 * view(9.0))).abs() < 1.0, "{local:?}");
        assert!((ijepa.activations - view(49.0)).abs() < 1.0, "{ijepa:?}");
    }

    fn predictor_params(e: &Experiment) -> f64 {
        let tokens = ((e.data.crop_size / e.encoder.patch_size) as f64).powi(2);
        second_transformer_params(e.encoder.embed_dim as f64, tokens, e.predictor.depth, e.predictor.embed_dim as f64, e.predictor.mlp_ratio)
    }
}
