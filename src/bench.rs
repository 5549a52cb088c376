//! `ijepa bench`: the step (`bench step`, with `--profile`), data parallelism (`bench dist`),
//! the loader (`bench data`) and feature extraction (`bench features`); each prints one line of
//! measurements (README "Speed and cost").

use crate::{launch, CmdResult};
use clap::{Args, Subcommand};
use ijepa_dsl::config::{EncoderConfig, Experiment, MaskConfig, Precision};
use ijepa_engine::model::vit::VisionTransformer;
use ijepa_engine::model::ParamStore;
use ijepa_engine::recipe::Hyper;
use ijepa_engine::{device, precision, profile, stages};
use ijepa_recipes::ijepa::mask;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// The shortest timed window of `bench data` not noted as too short (seconds).
const MIN_DATA_WINDOW_S: f64 = 1.0;

/// The collective timeout of `bench dist`'s ranks (its launcher's, for what it says after a
/// Ctrl-Z).
const BENCH_DIST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs one `ijepa bench` subcommand.
pub(crate) fn run(what: BenchCommand) -> CmdResult {
    match what {
        BenchCommand::Step(b) => cmd_bench_step(&b),
        BenchCommand::Dist(b) => cmd_bench_dist(&b),
        BenchCommand::Data(b) => cmd_bench_data(&b),
        BenchCommand::Features(b) => cmd_bench_features(&b),
    }
}

impl BenchCommand {
    /// Whether this benchmark reads `IJEPA_CPU_PRODUCTS`: one that computes on the CPU and is
    /// not given `--products` (which wins over the variable; `bench data` has no matrix
    /// products: a misspelt variable refused it).
    pub(crate) fn reads_products_env(&self) -> bool {
        // (on a GPU, named by `--device` or found by `auto`, the CPU kernels compute nothing: a
        // misspelt variable left in the shell refused `bench step --device cuda`)
        let on_cpu = |b: &BenchStep| !b.device.starts_with("cuda") && ijepa_engine::device::resolve(&b.device).map_or(true, |d| d == tch::Device::Cpu);
        let reads = |b: &BenchStep| b.products.is_none() && on_cpu(b);
        match self {
            BenchCommand::Step(b) => reads(b),
            BenchCommand::Dist(b) => reads(&b.step),
            BenchCommand::Features(b) => reads(&b.step),
            BenchCommand::Data(_) => false,
        }
    }
}

#[derive(Subcommand)]
pub(crate) enum BenchCommand {
    /// Time a recipe's training step (I-JEPA by default, `--recipe mae|dino`: forward,
    /// backward, AdamW, EMA) on random images with real masks or views; prints one line with
    /// ms/step and images/s.
    Step(BenchStep),
    /// All-reduce bandwidth over N local ranks (Gloo on CPU) and the per-step cost of data
    /// parallelism: the training step on 1 process vs N processes of the same per-rank batch.
    Dist(BenchDist),
    /// Time the data loader on an image folder (decode, RandomResizedCrop, normalise) with N
    /// threads; prints one line with images/s. Compare with scripts/bench_torchvision.py.
    Data(BenchData),
    /// Time frozen-feature extraction, the path of the evaluations and the monitors (the
    /// evaluation transform on Fashion-MNIST's embedded training images, the encoder's forward
    /// without gradients, average pooling), and the training step of the same encoder; prints
    /// both in images/s and in FLOP/s (`ijepa estimate`'s counts).
    Features(BenchFeatures),
}

#[derive(Args)]
pub(crate) struct BenchFeatures {
    /// The encoder, and the training step to compare with (the options of `bench step`).
    #[command(flatten)]
    step: BenchStep,
    /// Images encoded (from the embedded 10,000-image training subset, resized to --size).
    #[arg(long, default_value_t = 4096, value_parser = crate::positive)]
    images: usize,
    /// Extraction batch size (the evaluations' and monitors' is 256).
    #[arg(long, default_value_t = 256, value_parser = crate::positive)]
    extract_batch: usize,
    /// Skip timing the training step.
    #[arg(long, conflicts_with = "profile")]
    no_step: bool,
}

#[derive(Args)]
pub(crate) struct BenchData {
    /// An image folder (class sub-folders of JPEG/PNG files).
    dir: PathBuf,
    /// Loader threads, 1 to 1024 (each is given a warm-up batch).
    #[arg(long, default_value_t = 2, value_parser = loader_threads)]
    threads: usize,
    /// Crop side in pixels.
    #[arg(long, default_value_t = 224, value_parser = side)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = batch)]
    batch: usize,
    /// Timed batches, rounded up to whole rounds of one batch per loader thread (the threads
    /// decode side by side and deliver a round together: a window shorter than a round timed
    /// batches decoded before it, and the rate came out up to 1000x too high). A window under
    /// a second is noted: the batches queued ahead of it still count.
    #[arg(long, default_value_t = 20, value_parser = count)]
    batches: usize,
    /// Untimed warm-up batches; at least one per loader thread, rounded up to whole rounds
    /// (the threads start together, so their first batches arrive together: timed, they came
    /// for free and inflated the rate).
    #[arg(long, default_value_t = 2, value_parser = count_or_none)]
    warmup: usize,
    /// fast (JPEG DCT-scaled decoding when the crop allows) or exact (full decode, PIL-exact).
    #[arg(long, default_value = "fast")]
    decode: String,
    /// DINO's multi-crop views instead of one crop: 2 global crops of `--size` and this many
    /// local crops of `--local-size`, with DINO's colour jitter, grayscale, blur and
    /// solarisation (images/s counts images, each with all its views).
    #[arg(long)]
    multi_crop: Option<usize>,
    /// Side of the local crops (with --multi-crop; default 96, the official one at 224).
    #[arg(long, value_parser = side)]
    local_size: Option<usize>,
    /// How the crops are resized: bilinear (I-JEPA's) or bicubic (MAE's and DINO's); default:
    /// bicubic with --multi-crop (DINO's), else bilinear.
    #[arg(long, value_parser = ["bilinear", "bicubic"])]
    interpolation: Option<String>,
}

/// `bench step --targets`: as the language bounds `targets count=` (1,000 ran for minutes in
/// the sampler before a step).
fn target_blocks(s: &str) -> Result<usize, String> {
    crate::bounded(s, ijepa_dsl::MAX_BLOCKS, "target blocks per image, as the language's `targets count=`")
}

/// `bench data --threads`: 100,000 was accepted, and raised the warm-up to as many batches.
fn loader_threads(s: &str) -> Result<usize, String> {
    crate::bounded(s, 1024, "loader threads")
}

/// A number strictly between 0 and 1 (NaN is none).
fn open_fraction(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        Ok(x) => Err(format!("{x} is not a fraction in (0, 1)")),
        Err(e) => Err(e.to_string()),
    }
}

fn at_least_two(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        // (as many as `ijepa launch` starts on one machine: it started 100,000 processes)
        Ok(n) if n > ijepa_dsl::MAX_PROCS_PER_NODE => Err(format!("{n} ranks on one machine: at most {}, as `ijepa launch`", ijepa_dsl::MAX_PROCS_PER_NODE)),
        Ok(n) if n >= 2 => Ok(n),
        Ok(n) => Err(format!("{n} rank(s) have no all-reduce to time: give at least 2")),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Args)]
pub(crate) struct BenchDist {
    /// Ranks, 2 to 64 (one process has no all-reduce to time).
    #[arg(long, default_value_t = 2, value_parser = at_least_two)]
    nproc: usize,
    /// Timed all-reduces per size.
    #[arg(long, default_value_t = 20, value_parser = crate::positive)]
    iters: usize,
    /// The training step to time (see `bench step`); its `--threads` are the torch threads per
    /// rank and of the 1-process run (default here: 1).
    #[command(flatten)]
    step: BenchStep,
    /// Skip the training-step comparison.
    #[arg(long, conflicts_with = "profile")]
    no_step: bool,
}

#[derive(Args)]
pub(crate) struct BenchStep {
    /// Recipe: ijepa, mae or dino (any registered recipe).
    #[arg(long, default_value = "ijepa")]
    recipe: String,
    /// DINO: local crops per image (official 8; the two global crops have side --size).
    #[arg(long, default_value_t = 8)]
    local_crops: usize,
    /// DINO: side of the local crops (default: the official 96/224 of --size, rounded to a
    /// multiple of the patch: 96 at 224, 12 at 28 or 32 with patch 4).
    #[arg(long, value_parser = crate::positive)]
    local_size: Option<usize>,
    /// DINO: the head's output width (official 65536).
    #[arg(long, default_value_t = 65536, value_parser = crate::positive)]
    out_dim: usize,
    /// DINO: the head's hidden width (official 2048; the language's `dino { hidden-dim }`).
    #[arg(long, default_value_t = 2048, value_parser = crate::positive)]
    hidden_dim: usize,
    /// DINO: the head's bottleneck width (official 256; `dino { bottleneck-dim }`).
    #[arg(long, default_value_t = 256, value_parser = crate::positive)]
    bottleneck_dim: usize,
    /// Encoder preset (vit-tiny ... vit-giant).
    #[arg(long, default_value = "vit-tiny")]
    preset: String,
    /// Encoder width, overriding the preset's.
    #[arg(long, value_parser = crate::positive)]
    width: Option<usize>,
    /// Encoder depth, overriding the preset's.
    #[arg(long, value_parser = crate::positive)]
    depth: Option<usize>,
    /// Encoder heads, overriding the preset's.
    #[arg(long, value_parser = crate::positive)]
    heads: Option<usize>,
    /// Patch size.
    #[arg(long, default_value_t = 4, value_parser = crate::positive)]
    patch: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32, value_parser = side)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64, value_parser = batch)]
    batch: usize,
    /// Predictor depth (ijepa).
    #[arg(long, default_value_t = 4, value_parser = crate::positive)]
    pred_depth: usize,
    /// Predictor width (ijepa).
    #[arg(long, default_value_t = 96, value_parser = crate::positive)]
    pred_width: usize,
    /// Decoder depth (mae; official 8).
    #[arg(long, default_value_t = 2, value_parser = crate::positive)]
    dec_depth: usize,
    /// Decoder width (mae; official 512).
    #[arg(long, default_value_t = 128, value_parser = crate::positive)]
    dec_width: usize,
    /// Decoder heads (mae; official 16).
    #[arg(long, default_value_t = 4, value_parser = crate::positive)]
    dec_heads: usize,
    /// Masked fraction (mae), in (0, 1).
    #[arg(long, default_value_t = 0.75, value_parser = open_fraction)]
    mask_ratio: f64,
    /// Target blocks per image (ijepa), 1 to 100 as the language's `targets count=`.
    #[arg(long, default_value_t = 4, value_parser = target_blocks)]
    targets: usize,
    /// min-keep of the mask sampler (ijepa).
    #[arg(long, default_value_t = 4)]
    min_keep: usize,
    /// Precision: auto (bf16 where the device computes it natively, else fp32), fp32 or bf16.
    #[arg(long, default_value = "auto")]
    precision: String,
    /// Device: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Timed steps.
    #[arg(long, default_value_t = 20, value_parser = count)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3, value_parser = count_or_none)]
    warmup: usize,
    /// Time the masks (or views' extras) a run of this many steps an epoch trains on: the
    /// timed steps draw those of its steps 1, 2, ... in order (epoch 1's, then epoch 2's), the
    /// warm-up steps those of the first timed steps. A step's cost follows its masks (the
    /// context length), so `--steps` = the run's steps and this = its steps an epoch time the
    /// very masks `ijepa run` trains on (`scripts/bench-e2e.sh` does). Default: epoch 1's
    /// steps 1, 2, ..., warm-up included
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epoch_steps: Option<u64>,
    /// Torch intra-op threads (default: torch's choice; `bench dist`: 1 per rank).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..))]
    threads: Option<i32>,
    /// Kernel of the dense layers' matrix products on a CPU: auto (as `ijepa run`: oneDNN for
    /// fp32 on an x86 CPU with AVX-512 not made by Intel, where MKL runs AVX2 code; BLAS
    /// elsewhere), blas (`linear`, the official code's) or onednn (the same product as a 1x1
    /// convolution). Default: IJEPA_CPU_PRODUCTS, else auto.
    #[arg(long, value_parser = ijepa_engine::products::Policy::parse)]
    products: Option<ijepa_engine::products::Policy>,
    /// On a CPU, the most bytes a block's largest activation takes in one chunk of a forward
    /// without gradients (I-JEPA's target encoder, feature extraction), which run in chunks of
    /// that many images; 0: whole batches (the official code's way, to compare). `bench
    /// features`: every recipe's encoder; `bench step`: I-JEPA's target encoder only (MAE has
    /// no such forward; DINO's teacher runs whole batches: measured no faster).
    #[arg(long, default_value_t = ijepa_engine::model::vit::encoder::CPU_CHUNK_BYTES)]
    chunk_bytes: usize,
    /// After the timed steps, run this many more under libtorch's operator profiler and print
    /// each operator's calls and self time per step, and the matrix products' share of it
    /// (mm, addmm, bmm, baddbmm and the patch embedding's convolution, forward and backward; as
    /// `scripts/bench_official_step.py --profile` does for the official code). On a machine
    /// without a GPU, libtorch's profiler prints `gpuGetDeviceCount failed with code 35` (and
    /// its trace has an "ERROR" entry), as it does in PyTorch: harmless. `bench dist`
    /// and `bench features` profile their 1-process step (not the ranks' data-parallel one).
    #[arg(long, default_value_t = 0, value_name = "STEPS", value_parser = count_or_none)]
    profile: usize,
    /// Where `--profile` writes its Chrome trace (default: ijepa-step-trace.json in the
    /// system's temporary folder).
    #[arg(long, value_name = "FILE", requires = "profile")]
    trace: Option<PathBuf>,
}

fn cmd_bench_step(b: &BenchStep) -> CmdResult {
    if let Some(t) = b.threads {
        tch::set_num_threads(t);
    }
    let (st, dev, params, resolved, products) = time_step(b, None)?;
    // the preset with what --width / --depth / --heads changed of it
    let enc = bench_experiment(b)?.encoder;
    println!(
        "bench step recipe={} preset={} width={} depth={} heads={} patch={} size={} batch={} {} precision={} products={} device={} threads={} params={:.2}M steps={}{} ms_per_step={:.2} ms_std={:.2} img_per_s={:.1} peak_rss_mb={:.0} cpu={:?}",
        b.recipe,
        b.preset,
        enc.embed_dim,
        enc.depth,
        enc.num_heads,
        b.patch,
        b.size,
        b.batch,
        match b.recipe.as_str() {
            "mae" => format!("dec_depth={} dec_width={} dec_heads={} mask_ratio={}", b.dec_depth, b.dec_width, b.dec_heads, b.mask_ratio),
            "dino" => format!(
                "global_crops=2 local_crops={} local_size={} out_dim={} hidden_dim={} bottleneck_dim={} drop_path_rate={}",
                b.local_crops,
                bench_local_size(b),
                b.out_dim,
                b.hidden_dim,
                b.bottleneck_dim,
                ijepa_dsl::config::DinoConfig::default().drop_path_rate
            ),
            // (a GPU runs whole batches whatever --chunk-bytes says: `none` there)
            "ijepa" => format!(
                "pred_depth={} pred_width={} targets={} chunk_bytes={}",
                b.pred_depth,
                b.pred_width,
                b.targets,
                if dev == tch::Device::Cpu { b.chunk_bytes.to_string() } else { "none".into() }
            ),
            // (another registered recipe: its settings are its own; none of I-JEPA's)
            _ => String::new(),
        },
        precision::name(resolved.precision),
        products,
        device::describe(dev).replace(' ', "_"),
        tch::get_num_threads(),
        params as f64 / 1e6,
        b.steps,
        b.epoch_steps.map(|n| format!(" epoch_steps={n}")).unwrap_or_default(),
        st.mean * 1e3,
        st.std * 1e3,
        b.batch as f64 / st.mean,
        ijepa_engine::memory::resident().map_or(f64::NAN, |(_, peak)| peak / (1u64 << 20) as f64),
        device::cpu_model()
    );
    eprintln!("precision: {}", resolved.describe);
    Ok(ExitCode::SUCCESS)
}

/// `bench step`'s DINO local-crop side: the given one, or 96/224 of the image side rounded to
/// a multiple of the patch (at least one patch).
fn bench_local_size(b: &BenchStep) -> usize {
    b.local_size.unwrap_or_else(|| {
        let p = b.patch.max(1);
        (((b.size as f64 * 96.0 / 224.0) / p as f64).round() as usize).max(1) * p
    })
}

/// Flags of a recipe other than `--recipe`'s, given other than at their defaults, are refused,
/// as the language refuses another recipe's settings (`--recipe dino --dec-depth 3` timed
/// DINO without a word about the decoder it was given).
fn other_recipes_flags(b: &BenchStep) -> Result<(), String> {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        step: BenchStep,
    }
    let d = <Defaults as clap::Parser>::try_parse_from(["bench"]).map_err(|e| e.to_string())?.step;
    let groups: [(&str, Vec<(&str, bool)>); 3] = [
        (
            "ijepa",
            vec![("--pred-depth", b.pred_depth != d.pred_depth), ("--pred-width", b.pred_width != d.pred_width), ("--targets", b.targets != d.targets), ("--min-keep", b.min_keep != d.min_keep)],
        ),
        (
            "mae",
            vec![("--dec-depth", b.dec_depth != d.dec_depth), ("--dec-width", b.dec_width != d.dec_width), ("--dec-heads", b.dec_heads != d.dec_heads), ("--mask-ratio", b.mask_ratio != d.mask_ratio)],
        ),
        (
            "dino",
            vec![
                ("--local-crops", b.local_crops != d.local_crops),
                ("--local-size", b.local_size.is_some()),
                ("--out-dim", b.out_dim != d.out_dim),
                ("--hidden-dim", b.hidden_dim != d.hidden_dim),
                ("--bottleneck-dim", b.bottleneck_dim != d.bottleneck_dim),
            ],
        ),
    ];
    for (owner, flags) in groups {
        // (I-JEPA's predictor and mask are left to another registered recipe, which may read them)
        let reads = owner == b.recipe || (owner == "ijepa" && !["mae", "dino"].contains(&b.recipe.as_str()));
        let given: Vec<&str> = flags.iter().filter(|(_, set)| *set).map(|(name, _)| *name).collect();
        if !reads && !given.is_empty() {
            return Err(format!("{} {} recipe {owner:?}'s, not read by --recipe {}: remove {}, or time --recipe {owner}", given.join(", "), if given.len() == 1 { "is" } else { "are" }, b.recipe, if given.len() == 1 { "it" } else { "them" }));
        }
    }
    Ok(())
}

/// The experiment `bench step` (and `bench features`) builds from its options (precision not
/// yet resolved).
fn bench_experiment(b: &BenchStep) -> Result<Experiment, Box<dyn std::error::Error>> {
    other_recipes_flags(b)?;
    let Some(mut encoder) = EncoderConfig::preset(&b.preset, b.patch) else {
        return Err(format!("unknown preset {:?} (known: vit-tiny, vit-small, vit-base, vit-large, vit-huge, vit-giant)", b.preset).into());
    };
    encoder.embed_dim = b.width.unwrap_or(encoder.embed_dim);
    encoder.depth = b.depth.unwrap_or(encoder.depth);
    encoder.num_heads = b.heads.unwrap_or(encoder.num_heads);
    if encoder.num_heads == 0 || encoder.embed_dim % encoder.num_heads != 0 || encoder.depth == 0 {
        return Err(format!(
            "encoder width {} depth {} heads {}: the heads must divide the width, and depth and heads be positive",
            encoder.embed_dim, encoder.depth, encoder.num_heads
        )
        .into());
    }
    let mut exp = Experiment::with_defaults("bench");
    exp.recipe = b.recipe.clone();
    exp.encoder = encoder;
    exp.data.crop_size = b.size;
    exp.data.batch_size = b.batch;
    exp.predictor.depth = b.pred_depth;
    exp.predictor.embed_dim = b.pred_width;
    exp.mask = MaskConfig { n_targets: b.targets, min_keep: b.min_keep, ..MaskConfig::default() };
    if b.recipe == "mae" {
        exp.mask = MaskConfig { kind: ijepa_dsl::config::MaskKind::Random, ratio: b.mask_ratio, ..MaskConfig::default() };
        exp.decoder = ijepa_dsl::config::DecoderConfig { depth: b.dec_depth, embed_dim: b.dec_width, num_heads: b.dec_heads, ..Default::default() };
        exp.optimizer.betas = (0.9, 0.95);
    }
    if b.recipe == "dino" {
        let local_size = bench_local_size(b);
        // the language's rules on DINO's crops (the small views are no larger than the global
        // ones, and come in whole patches), and at least two prototypes
        if b.local_crops > 0 && (local_size > b.size || !local_size.is_multiple_of(b.patch.max(1))) {
            return Err(format!(
                "--local-size {local_size}: DINO's local crops are the small views, at most --size {} and a multiple of --patch {}",
                b.size, b.patch
            )
            .into());
        }
        if b.out_dim < 2 {
            return Err(format!("--out-dim {}: DINO needs at least 2 prototypes (with one, the loss is 0)", b.out_dim).into());
        }
        exp.dino = ijepa_dsl::config::DinoConfig {
            local_crops: b.local_crops,
            local_size,
            out_dim: b.out_dim,
            hidden_dim: b.hidden_dim,
            bottleneck_dim: b.bottleneck_dim,
            ..Default::default()
        };
    }
    exp.precision = match b.precision.as_str() {
        "auto" => Precision::Auto,
        "fp32" => Precision::Fp32,
        "bf16" => Precision::Bf16,
        p => return Err(format!("unknown precision {p:?} (auto, fp32 or bf16)").into()),
    };
    Ok(exp)
}

/// What [`time_step`] measured: the steps' times, the device, the parameters, the resolved
/// precision and the CPU products' kernel (`device` off the CPU).
type Timed = (mask::Stats, tch::Device, i64, precision::Resolved, &'static str);

/// `e`, a mask sampler's error with its advice in the bench's own flags: the sampler's names the
/// scales, which the bench keeps at the official defaults (it has no flag for them).
fn bench_flags(e: ijepa_engine::Error) -> Box<dyn std::error::Error> {
    match e {
        ijepa_engine::Error::Mask(m) => {
            let cause = m.split_once("; raise the ").map_or(m.as_str(), |(cause, _)| cause);
            format!("mask sampler: {cause}; use a smaller --patch or a larger --size, or lower --min-keep (the bench samples the official scales)").into()
        }
        e => e.into(),
    }
}

/// Times the training step of `b`, data-parallel over `dist` when given (the profiler, with
/// `--profile`, runs only without `dist`: the parent of `bench dist` profiles its 1-process step).
fn time_step(
    b: &BenchStep,
    dist: Option<&std::sync::Arc<ijepa_engine::dist::ProcessGroup>>,
) -> Result<Timed, Box<dyn std::error::Error>> {
    // the trace replaces its file: never an input, a run's file, or a file that is no trace
    // (found before the timing, not after it)
    if b.profile > 0 {
        ijepa::outputs::check(b.trace.as_deref(), "--trace", &[], Some(ijepa::outputs::OutKind::Json))?;
        // (the default's folder is the system's temporary one: a TMPDIR naming no folder failed
        // after the timing, its line lost, naming a path the user never typed)
        let tmp = std::env::temp_dir();
        // (an empty TMPDIR is the working folder, where the trace went)
        if b.trace.is_none() && !tmp.as_os_str().is_empty() && !tmp.is_dir() {
            return Err(format!(
                "--profile writes its trace to the system's temporary folder, {} (TMPDIR), which is not a folder: set TMPDIR to one, or give --trace FILE",
                tmp.display()
            )
            .into());
        }
    } else if let Some(trace) = &b.trace {
        // (it exited 0 and wrote no trace, saying nothing)
        return Err(format!("--trace {} names where --profile writes its trace, and --profile 0 profiles no step: give --profile N (N > 0)", trace.display()).into());
    }
    let mut exp = bench_experiment(b)?;
    let requested = exp.precision;
    let dev = match (device::resolve(&b.device)?, dist) {
        (tch::Device::Cuda(_), Some(pg)) => pg.device(),
        (dev, _) => dev,
    };
    let resolved = precision::resolve_with(requested, &precision::bf16_support(dev));
    if let Some(w) = &resolved.warning {
        eprintln!("warning: {w}");
    }
    exp.precision = resolved.precision;
    let products = cpu_products(b, dev, &exp);
    let (rank, world) = dist.map(|pg| (pg.rank() as u64, pg.world_size() as u64)).unwrap_or((0, 1));
    // a size this machine cannot hold is refused with the bound, as `ijepa run` refuses it
    // (the kernel killed the step without a word)
    ijepa_engine::memory::check_fits(&exp, dev == tch::Device::Cpu)?;
    let mut recipe = ijepa_engine::recipe::build(&exp, dev, rank, world)?;
    if let Some(pg) = dist {
        recipe.install_ddp(pg, exp.distributed.bucket_mb)?;
    }
    let views = ijepa_engine::recipe::random_views(recipe.as_ref(), &exp.data, b.batch, dev)?;
    let hyper = Hyper { lr: 1e-3, wd: 0.04, momentum: 0.996 };
    let times = ijepa_engine::recipe::time_steps(recipe.as_mut(), &views, b.batch, b.warmup, b.steps, b.epoch_steps, hyper, dev).map_err(bench_flags)?;
    if b.profile > 0 && dist.is_none() {
        let trace = b.trace.clone().unwrap_or_else(|| std::env::temp_dir().join("ijepa-step-trace.json"));
        let wall = ijepa_engine::recipe::profile_steps(recipe.as_mut(), &views, b.batch, b.profile, hyper, dev, &trace).map_err(bench_flags)?;
        let totals = profile::totals(&profile::read_trace(&trace)?);
        let h = profile::Headline::of(&totals);
        println!(
            "profile of {} steps (the profiler's own overhead included): {:.1} ms/step; matrix products {:.1} ms/step = {:.1}% of the ops' self time; speed-up ceiling with the same products: {:.2}x; trace: {}",
            b.profile,
            wall * 1e3,
            h.matrix_us / b.profile as f64 / 1e3,
            h.matrix_percent(),
            h.all_us / h.matrix_us.max(1e-9),
            trace.display()
        );
        print!("{}", profile::table(&totals, b.profile, 15));
    }
    Ok((mask::Stats::of(&times), dev, recipe.params(), resolved, products))
}

/// Chooses the kernel of the CPU's matrix products for `exp` on `dev` (`--products`, else the
/// process's policy) and names it for the bench line: `blas` or `onednn`, `device` off the CPU.
fn cpu_products(b: &BenchStep, dev: tch::Device, exp: &Experiment) -> &'static str {
    use ijepa_engine::products;
    if let Some(p) = b.products {
        products::set_policy(p);
    }
    ijepa_engine::model::vit::encoder::set_cpu_chunk_bytes(b.chunk_bytes);
    products::choose(dev, exp.precision == Precision::Bf16).map_or("device", |c| c.products.name())
}

/// `bench dist`: run as the parent, it times the step on one process, then starts `nproc`
/// ranks of itself (same arguments) which time all-reduce and the data-parallel step.
fn cmd_bench_dist(b: &BenchDist) -> CmdResult {
    use ijepa_engine::dist::{self, Backend, DistEnv, ProcessGroup};
    let threads = b.step.threads.unwrap_or(1);
    tch::set_num_threads(threads);
    let Some(env) = DistEnv::from_env()? else {
        let mut extra = Vec::new();
        if !b.no_step {
            let (st, dev, params, _, _) = time_step(&b.step, None)?;
            println!(
                "step, 1 process:  {:.1} ms/step (std {:.1}), batch {} on {}, {:.2}M params, {} torch thread(s)",
                st.mean * 1e3,
                st.std * 1e3,
                b.step.batch,
                device::describe(dev),
                params as f64 / 1e6,
                threads
            );
            extra.push(("IJEPA_BENCH_SINGLE_MS".to_string(), format!("{}", st.mean * 1e3)));
        }
        // the ranks run `threads` torch threads each (set above in each); say so at launch
        extra.push(("OMP_NUM_THREADS".to_string(), threads.to_string()));
        let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
        launch::spawn_local(b.nproc, launch::free_port()?, &args, &extra, (std::time::Duration::from_secs(5), BENCH_DIST_TIMEOUT), false)?;
        return Ok(ExitCode::SUCCESS);
    };
    // one GPU per rank where the step runs on CUDA (NCCL), else CPU ranks over Gloo
    let on_cuda = device::resolve(&b.step.device)?.is_cuda();
    let backend = if on_cuda { Backend::Nccl } else { Backend::Gloo };
    let pg = std::sync::Arc::new(ProcessGroup::new(&env, backend, BENCH_DIST_TIMEOUT)?);
    let sizes: Vec<usize> = [1usize << 10, 1 << 14, 1 << 18, 1 << 20, 1 << 22, 1 << 24, 1 << 26].to_vec();
    let rows = dist::bench_all_reduce(&pg, &sizes, b.iters)?;
    if env.rank == 0 {
        println!("all-reduce (sum, float32, {} on this machine), {} ranks, {} iterations per size:", backend.name(), env.world_size, b.iters);
        println!("  {:>10}  {:>10}  {:>12}  {:>12}", "bytes", "us/op", "algbw GB/s", "busbw GB/s");
        for (bytes, secs, alg, bus) in &rows {
            println!("  {bytes:>10}  {:>10.1}  {alg:>12.3}  {bus:>12.3}", secs * 1e6);
        }
    }
    if !b.no_step {
        let (st, _, _, _, _) = time_step(&b.step, Some(&pg))?;
        if env.rank == 0 {
            let single: Option<f64> = std::env::var("IJEPA_BENCH_SINGLE_MS").ok().and_then(|v| v.parse().ok());
            println!(
                "step, {} processes: {:.1} ms/step (std {:.1}), batch {} per rank (global {}){}",
                env.world_size,
                st.mean * 1e3,
                st.std * 1e3,
                b.step.batch,
                b.step.batch * env.world_size,
                single
                    .map(|s| format!("; data-parallel overhead {:+.1} ms/step ({:+.1}%) over 1 process with the same per-rank batch", st.mean * 1e3 - s, (st.mean * 1e3 - s) / s * 100.0))
                    .unwrap_or_default()
            );
        }
    }
    pg.barrier()?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_bench_features(b: &BenchFeatures) -> CmdResult {
    use ijepa_engine::data::{self, Split};
    use ijepa_engine::eval::features::{self, FeatureKind};
    if let Some(t) = b.step.threads {
        tch::set_num_threads(t);
    }
    let mut exp = bench_experiment(&b.step)?;
    let dev = device::resolve(&b.step.device)?;
    let resolved = precision::resolve_with(exp.precision, &precision::bf16_support(dev));
    // (the step's timing says it; without the step it went unsaid)
    if let Some(w) = resolved.warning.as_ref().filter(|_| b.no_step) {
        eprintln!("warning: {w}");
    }
    exp.precision = resolved.precision;
    let bf16 = resolved.precision == Precision::Bf16;
    let products = cpu_products(&b.step, dev, &exp);
    exp.data.dataset = ijepa_dsl::config::DatasetKind::FashionMnist;
    exp.data.source = ijepa_dsl::config::DataSource::Embedded;
    exp.data.limit = None;
    // the extraction's settings checked before the step's timing, which comes first (a step
    // that only its mask sampling refuses was refused after the extraction's timing, the time
    // lost; an --images the subset cannot give, after the step's)
    let all = data::open_dataset(&exp.data, Split::Train)?;
    if b.images > all.len() {
        return Err(format!("--images {}: the embedded Fashion-MNIST subset holds {} images", b.images, all.len()).into());
    }
    let ds = data::subset(all, (0..b.images.max(1)).collect());
    let transform = stages::eval_transform(&exp)?;
    let entry = ijepa_engine::recipe::entry(&exp.recipe)?;
    let cfg = (entry.encoder_config)(&exp);
    let step = if b.no_step { None } else { Some(time_step(&b.step, None)?.0) };
    let store = ParamStore::new(dev);
    let vit = VisionTransformer::new(&store.root(), &cfg)?; // its initialisation: only the time matters
    let warm = data::subset(ds.clone(), (0..b.extract_batch.min(ds.len())).collect());
    features::extract(&vit, warm.as_ref(), &transform, FeatureKind::Last, b.extract_batch, dev, bf16)?;
    let t0 = Instant::now();
    let f = features::extract(&vit, ds.as_ref(), &transform, FeatureKind::Last, b.extract_batch, dev, bf16)?;
    let secs = t0.elapsed().as_secs_f64();
    let n = f.len() as f64;
    let fwd = ijepa_engine::estimate::vit_forward_flops(&cfg);
    let mut line = format!(
        "bench features encoder={}x{} heads={} patch={} size={} images={} batch={} chunk={} precision={} products={} device={} threads={} img_per_s={:.1} gflop_per_img={:.3} gflop_per_s={:.1}",
        cfg.embed_dim,
        cfg.depth,
        cfg.num_heads,
        cfg.patch_size,
        cfg.image_size,
        f.len(),
        // (the batch and chunk extraction ran: no more than the images, `--images 1` said 256)
        b.extract_batch.min(f.len().max(1)),
        vit.images_per_chunk(dev).map_or("batch".to_string(), |c| c.min(b.extract_batch.min(f.len().max(1)) as i64).to_string()),
        precision::name(resolved.precision),
        products,
        device::describe(dev).replace(' ', "_"),
        tch::get_num_threads(),
        n / secs,
        fwd / 1e9,
        n / secs * fwd / 1e9
    );
    if let Some(st) = step {
        let cost = entry.cost.as_ref().map(|c| c(&exp)).transpose()?;
        let img_s = b.step.batch as f64 / st.mean;
        match cost {
            Some(c) => line += &format!(
                " | step batch={} img_per_s={:.1} gflop_per_img={:.3} gflop_per_s={:.1} | extraction/step FLOP rate {:.2}x",
                b.step.batch,
                img_s,
                c.flops_per_image / 1e9,
                img_s * c.flops_per_image / 1e9,
                (n / secs * fwd) / (img_s * c.flops_per_image)
            ),
            None => line += &format!(" | step batch={} img_per_s={img_s:.1}", b.step.batch),
        }
    }
    println!("{line} cpu={:?}", device::cpu_model());
    Ok(ExitCode::SUCCESS)
}

fn cmd_bench_data(b: &BenchData) -> CmdResult {
    use ijepa_engine::data::{image_folder, Dataset, Loader, LoaderCfg, TrainTransform, TrainTransformCfg};
    use std::sync::Arc;
    let exact = match b.decode.as_str() {
        "fast" => false,
        "exact" => true,
        other => return Err(format!("unknown decode mode {other:?} (fast or exact)").into()),
    };
    let filter = match b.interpolation.as_deref() {
        Some("bicubic") => ijepa_engine::data::Filter::Bicubic,
        Some(_) => ijepa_engine::data::Filter::Bilinear,
        None if b.multi_crop.is_some() => ijepa_engine::data::Filter::Bicubic,
        None => ijepa_engine::data::Filter::Bilinear,
    };
    // (the language's rule on DINO's crops: the local ones are the small views)
    let local_size = match (b.multi_crop, b.local_size) {
        (None, Some(l)) => return Err(format!("--local-size {l}: the side of --multi-crop's local crops, and there is no --multi-crop").into()),
        (_, l) => l.unwrap_or(96),
    };
    if b.multi_crop.is_some_and(|n| n > 0) && local_size > b.size {
        return Err(format!("--local-size {local_size}: the local crops are the small views, at most --size {}", b.size).into());
    }
    let t0 = Instant::now();
    let ds = Arc::new(image_folder::ImageFolder::open(&b.dir, image_folder::OnError::Fail)?);
    let index_s = t0.elapsed().as_secs_f64();
    // files that are no images whatever their bytes (a link to nothing), found by the listing
    // as a run finds them (named by the OS's "No such file" when a loader thread reached one)
    if let Some((count, listed)) = ijepa_engine::data::unreadable_listed(ds.as_ref()) {
        return Err(format!("{}: {count} file(s) that cannot be read as images: {listed}", b.dir.display()).into());
    }
    let n = ds.len();
    let transform: Arc<dyn ijepa_engine::data::SampleTransform> = match b.multi_crop {
        None => Arc::new(TrainTransform::new(TrainTransformCfg { size: b.size, exact, filter, ..Default::default() })?),
        Some(local_crops) => Arc::new(ijepa_engine::data::MultiCrop::dino(&ijepa_engine::data::MultiCropCfg {
            global_size: b.size,
            global_scale: (0.4, 1.0),
            local_crops,
            local_size,
            local_scale: (0.05, 0.4),
            exact,
            filter,
        })?),
    };
    let views = transform.view_sizes();
    // (the loader's own words named the language's `batch-size` and ranks)
    if n < b.batch {
        return Err(format!("{}: {n} image(s), less than one batch of {} (`--batch`): lower `--batch` to at most {n}, or give more images", b.dir.display(), b.batch).into());
    }
    let cfg = LoaderCfg { batch_size: b.batch, workers: b.threads, prefetch: b.threads, seed: 0, drop_last: true, rank: 0, world_size: 1, skip_errors: false };
    let loader: Loader<()> = Loader::new(ds, transform, cfg, Arc::new(|_, _, _| Ok(())))?;
    let ipe = loader.steps_per_epoch() as u64;
    // the threads' first batches are decoded side by side from the start: the timing begins
    // once each thread has delivered one, so a batch decoded before it is not counted in it;
    // and it times whole rounds of one batch a thread (they arrive together)
    let rounds = |n: usize| n.max(1).div_ceil(b.threads) * b.threads;
    let warmup = rounds(b.warmup);
    let batches = rounds(b.batches);
    if batches != b.batches {
        eprintln!(
            "note: timing {batches} batches, not {}: whole rounds of one batch for each of the {} loader threads, which deliver a round together",
            b.batches, b.threads
        );
    }
    let (mut done, mut images, mut started) = (0usize, 0usize, None);
    'outer: for epoch in 0.. {
        for batch in loader.epoch(epoch) {
            // (an unreadable image: the run's ways out, resuming and the data block, are not a
            // benchmark's)
            let batch = batch.map_err(|e| match e {
                ijepa_engine::Error::Data(m) => ijepa_engine::Error::Data(m.strip_suffix(ijepa_engine::data::loader::RUN_ADVICE).unwrap_or(&m).to_string()),
                e => e,
            })?;
            done += 1;
            if done == warmup {
                started = Some(Instant::now());
            } else if done > warmup {
                images += batch.len();
            }
            if done >= warmup + batches {
                break 'outer;
            }
        }
        if ipe == 0 {
            break;
        }
    }
    let dt = started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    let rate = if dt > 0.0 { images as f64 / dt } else { 0.0 };
    // (the threads queue batches ahead of the one taken: in a short window the queued ones come
    // for free, and one round of tiny images read 300,000 images/s for a steady 15,000)
    if dt < MIN_DATA_WINDOW_S {
        eprintln!(
            "note: the timed window lasted {:.0} ms, under {MIN_DATA_WINDOW_S} s: batches the loader threads had ready before it count in it, so the rate may be too high; time more batches (`--batches`)",
            dt * 1e3
        );
    }
    println!(
        "bench data dir={} images={n} index_s={index_s:.3} threads={} size={} views={} batch={} batches={} warmup={warmup} decode={} img_per_s={rate:.1} img_per_s_per_thread={:.1}",
        b.dir.display(),
        b.threads,
        b.size,
        views.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("+"),
        b.batch,
        batches,
        b.decode,
        rate / b.threads.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

/// An image side in 1..=4096, the language's crop-size (a larger one overflowed the position
/// table's allocation, a panic).
fn side(s: &str) -> Result<usize, String> {
    crate::bounded(s, 4096, "pixels a side, as the language's crop-size")
}

/// A batch in 1..=1,048,576, the language's batch-size.
fn batch(s: &str) -> Result<usize, String> {
    crate::bounded(s, 1 << 20, "images, as the language's batch-size")
}

/// A count of timed steps or batches in 1..=1,000,000 (a huge one aborted on its allocation).
/// The most steps or batches a benchmark (or `estimate`'s measurement) times.
pub(crate) const MAX_STEPS: usize = 1_000_000;

fn count(s: &str) -> Result<usize, String> {
    crate::bounded(s, MAX_STEPS, "a benchmark's steps or batches")
}

/// [`count`], or 0 (no warm-up, no profile): the sums of warm-up and timed steps cannot
/// overflow (they did, and nothing was timed: "inf images/s").
fn count_or_none(s: &str) -> Result<usize, String> {
    if s.trim() == "0" {
        return Ok(0);
    }
    count(s)
}
