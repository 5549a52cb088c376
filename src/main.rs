//! `ijepa`: the command-line front end. Parses arguments and wires the crates together:
//! the language (`ijepa-dsl`), the engine and recipes (tch), the reports.

// `println!`/`eprintln!` that never panic on a closed stdout/stderr (`ijepa run ... | head`)
#[macro_use]
extern crate ijepa_engine;

use ijepa::exec;
mod launch;

use clap::{Args, Parser, Subcommand};
use ijepa_dsl::config::{EncoderConfig, Experiment, MaskConfig, Precision};
use ijepa_engine::checkpoint::{export, import};
use ijepa_engine::{device, precision, profile};
use ijepa_engine::stages;
use ijepa_engine::model::vit::VisionTransformer;
use ijepa_engine::model::ParamStore;
use ijepa_recipes::ijepa::mask::{self, MaskSampler};
use ijepa_recipes::ijepa::{PredictorConfig, VisionTransformerPredictor};
use ijepa_engine::plan::Plan;
use ijepa_engine::recipe::Hyper;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(name = "ijepa", version, about = "Self-supervised vision experiments (I-JEPA) written in KDL, run on libtorch")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment's stages (pretraining of each sweep point, evaluations, report) in
    /// order; finished stages are skipped, interrupted ones resume from their last checkpoint.
    /// Stage folders: RUNS/<experiment>/<stage>-<hash>/. See `ijepa plan` for the stages.
    Run {
        /// Experiment file (.kdl).
        file: PathBuf,
        #[command(flatten)]
        folders: Folders,
        /// Print what would run, resume or be skipped; run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run only these stages (repeatable): a stage id from `ijepa plan`, an id prefix
        /// before `/` (`pretrain` = every pretraining), a kind (pretrain, eval, report), or a
        /// pattern with `*`. Their inputs must be done.
        #[arg(long, value_name = "STAGE")]
        only: Vec<String>,
        /// Rerun the selected stages even when done (the old folder is kept, renamed
        /// `.<folder>.old-<time>`; finished stages computed from it are set aside too).
        #[arg(long)]
        force: bool,
    },
    /// Print an experiment's stage graph: each stage's id, content hash, status and folder,
    /// as a tree (default) or as Graphviz DOT (`--dot | dot -Tsvg > plan.svg`).
    Plan {
        /// Experiment file (.kdl).
        file: PathBuf,
        #[command(flatten)]
        folders: Folders,
        /// Print Graphviz DOT instead of the tree.
        #[arg(long)]
        dot: bool,
        /// Plan for this many processes (default: the experiment's `distributed` layout).
        #[arg(long)]
        world_size: Option<usize>,
    },
    /// Start the ranks of a multi-process run on this machine (like `torchrun --standalone`):
    /// N copies of `ijepa run FILE`, rank 0 hosting the rendezvous on 127.0.0.1. When a rank
    /// fails the others are stopped. On CPU the ranks use Gloo; on GPUs NCCL, one GPU each.
    Launch {
        /// Processes (default: the experiment's `distributed { gpus-per-node N }`).
        #[arg(long)]
        nproc_per_node: Option<usize>,
        /// Rendezvous port (default: a free one).
        #[arg(long)]
        master_port: Option<u16>,
        /// Experiment file (.kdl).
        file: PathBuf,
        /// Arguments passed on to `ijepa run` (after `--`), e.g. `-- --runs-dir r`.
        #[arg(last = true)]
        run_args: Vec<String>,
    },
    /// Write an sbatch script from the experiment's `distributed` block (nodes, GPUs per node,
    /// partition, time, account...): `srun` starts one `ijepa run` per GPU. `--submit` hands it
    /// to sbatch.
    Slurm {
        /// Experiment file (.kdl).
        file: PathBuf,
        /// Root folder of the run registry (the script goes to RUNS/<experiment>/slurm/).
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
        /// Write the script here instead.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Submit it with sbatch.
        #[arg(long)]
        submit: bool,
    },
    /// Turn an official I-JEPA YAML config (configs/*.yaml of facebookresearch/ijepa) into an
    /// experiment file; prints it, or writes it with --out.
    ImportYaml {
        /// The YAML config.
        file: PathBuf,
        /// Experiment name (default: the file name).
        #[arg(long)]
        name: Option<String>,
        /// Output .kdl file.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the `eval` blocks of an experiment on any checkpoint (ours, an official .pth.tar, a
    /// state dict); results go to RUNS/<experiment>/eval-*/eval.json.
    Eval {
        /// Experiment file (.kdl) whose data, encoder and eval blocks to use.
        file: PathBuf,
        /// The sweep point to use, when the file defines a sweep (names: `ijepa plan FILE`).
        #[arg(long)]
        point: Option<String>,
        /// The checkpoint to evaluate (its target encoder when present).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Root folder of the run registry.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
    },
    /// Write paper-style tables and plots (Markdown, CSV, self-contained HTML with inline SVG figures, SVG and PNG files) from a runs folder.
    /// (`ijepa-report` does the same without libtorch.)
    Report {
        /// Root folder of the run registry.
        #[arg(default_value = "runs")]
        runs_dir: PathBuf,
        /// Output folder.
        #[arg(long, default_value = "reports-out")]
        out: PathBuf,
    },
    /// Validate experiment files; prints every error of a file with its location.
    Check {
        /// Experiment files (.kdl).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: BenchCommand,
    },
    /// Replay an official training step from a fixture (NAME.safetensors + NAME.json) and
    /// compare outputs, loss, gradients and weights after the step. Exit 1 on mismatch.
    Parity {
        /// The fixture's .safetensors file.
        fixture: PathBuf,
        /// Take the initial weights from this checkpoint (e.g. an official .pth.tar) instead
        /// of the fixture's `init.*` tensors.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Device of the replay: cpu, cuda, cuda:N (the comparison is in float64 on the CPU).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Convert a checkpoint (official .pth.tar, a plain PyTorch state dict, or safetensors)
    /// into our safetensors format (official names, `module.` stripped). Never runs code from
    /// the file: only state-dict contents are accepted.
    ImportCheckpoint {
        /// The checkpoint to read.
        file: PathBuf,
        /// Output .safetensors (default: FILE with the extension replaced).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Attention heads, when the width matches no preset (only printed: no shape depends on it).
        #[arg(long)]
        heads: Option<usize>,
    },
    /// Export the encoder of a checkpoint: official names (safetensors) or the Hugging Face
    /// transformers layout (a folder with model.safetensors and config.json): IJepaModel for
    /// I-JEPA, ViTMAEModel for MAE (an encoder with a class token).
    Export {
        /// Any checkpoint `import-checkpoint` reads (ours, official .pth.tar, state dict).
        file: PathBuf,
        /// official or hf.
        #[arg(long, default_value = "hf")]
        format: String,
        /// Which encoder: target (I-JEPA's EMA encoder, the one the paper evaluates; for MAE,
        /// its only encoder) or context.
        #[arg(long, default_value = "target")]
        encoder: String,
        /// Attention heads, when the width matches no preset.
        #[arg(long)]
        heads: Option<usize>,
        /// Output file (official) or folder (hf).
        #[arg(long)]
        out: PathBuf,
    },
    /// What a pretraining will cost before it is launched: parameters, FLOPs per image of the
    /// step, memory per process at the experiment's batch (analytic; also measured by a few
    /// real steps on random data when this machine can run them), and the projected wall time
    /// and GPU-hours of the whole pretraining on the experiment's layout (nodes x processes):
    /// from a GPU's peak rate at an assumed MFU, and from the measured step on this CPU.
    Estimate {
        /// Experiment file (.kdl).
        file: PathBuf,
        /// The sweep point to use, when the file defines a sweep (names: `ijepa plan FILE`).
        #[arg(long)]
        point: Option<String>,
        /// Training images (default: counted by opening the experiment's dataset; ImageNet-1K
        /// has 1281167).
        #[arg(long)]
        images: Option<u64>,
        /// The GPU of the projection: a100, h100, h200, v100.
        #[arg(long, default_value = "a100")]
        gpu: String,
        /// The model FLOP utilisation assumed by the GPU projection.
        #[arg(long, default_value_t = 0.4)]
        mfu: f64,
        /// A GPU-hour budget (for example a paper's): prints the MFU it requires.
        #[arg(long)]
        budget_hours: Option<f64>,
        /// Measure the step here even when it is large.
        #[arg(long, conflicts_with = "no_measure")]
        measure: bool,
        /// Never measure (analytic memory only, no CPU projection).
        #[arg(long)]
        no_measure: bool,
        /// Timed steps of the measurement (after one untimed).
        #[arg(long, default_value_t = 3)]
        steps: usize,
    },
    /// Sample the experiment's masks and print their statistics (lengths after truncation).
    Masks {
        /// Experiment file (.kdl).
        file: PathBuf,
        /// The sweep point to use, when the file defines a sweep (names: `ijepa plan FILE`).
        #[arg(long)]
        point: Option<String>,
        /// Number of batches to sample.
        #[arg(long, default_value_t = 200)]
        batches: usize,
        /// Batch size (default: the experiment's).
        #[arg(long)]
        batch_size: Option<usize>,
        /// Also draw the layouts of the first batch's first 8 images to this PNG.
        #[arg(long)]
        png: Option<PathBuf>,
    },
}

/// Where the stages of an experiment live (`run` and `plan`).
#[derive(Args)]
struct Folders {
    /// Root folder of the run registry.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// Where a `report` node writes its tables and plots.
    #[arg(long, default_value = "reports-out")]
    reports_dir: PathBuf,
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Time the I-JEPA training step (forward, backward, AdamW, EMA) on random images with real
    /// masks; prints one line with ms/step and images/s.
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
struct BenchFeatures {
    /// The encoder, and the training step to compare with (the options of `bench step`).
    #[command(flatten)]
    step: BenchStep,
    /// Images encoded (from the embedded 10,000-image training subset, resized to --size).
    #[arg(long, default_value_t = 4096)]
    images: usize,
    /// Extraction batch size (the evaluations' and monitors' is 256).
    #[arg(long, default_value_t = 256)]
    extract_batch: usize,
    /// Skip timing the training step.
    #[arg(long, conflicts_with = "profile")]
    no_step: bool,
}

#[derive(Args)]
struct BenchData {
    /// An image folder (class sub-folders of JPEG/PNG files).
    dir: PathBuf,
    /// Loader threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Crop side in pixels.
    #[arg(long, default_value_t = 224)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Timed batches.
    #[arg(long, default_value_t = 20)]
    batches: usize,
    /// Untimed warm-up batches.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// fast (JPEG DCT-scaled decoding when the crop allows) or exact (full decode, PIL-exact).
    #[arg(long, default_value = "fast")]
    decode: String,
    /// DINO's multi-crop views instead of one crop: 2 global crops of `--size` and this many
    /// local crops of `--local-size`, with DINO's colour jitter, grayscale, blur and
    /// solarisation (images/s counts images, each with all its views).
    #[arg(long)]
    multi_crop: Option<usize>,
    /// Side of the local crops (with --multi-crop; official 96 at 224).
    #[arg(long, default_value_t = 96)]
    local_size: usize,
}

#[derive(Args)]
struct BenchDist {
    /// Ranks.
    #[arg(long, default_value_t = 2)]
    nproc: usize,
    /// Timed all-reduces per size.
    #[arg(long, default_value_t = 20)]
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
struct BenchStep {
    /// Recipe: ijepa, mae or dino (any registered recipe).
    #[arg(long, default_value = "ijepa")]
    recipe: String,
    /// DINO: local crops per image (official 8; the two global crops have side --size).
    #[arg(long, default_value_t = 8)]
    local_crops: usize,
    /// DINO: side of the local crops (default: the official 96/224 of --size, rounded to a
    /// multiple of the patch: 96 at 224, 12 at 28 or 32 with patch 4).
    #[arg(long)]
    local_size: Option<usize>,
    /// DINO: the head's output width (official 65536).
    #[arg(long, default_value_t = 65536)]
    out_dim: usize,
    /// Encoder preset (vit-tiny ... vit-giant).
    #[arg(long, default_value = "vit-tiny")]
    preset: String,
    /// Encoder width, overriding the preset's.
    #[arg(long)]
    width: Option<usize>,
    /// Encoder depth, overriding the preset's.
    #[arg(long)]
    depth: Option<usize>,
    /// Encoder heads, overriding the preset's.
    #[arg(long)]
    heads: Option<usize>,
    /// Patch size.
    #[arg(long, default_value_t = 4)]
    patch: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Predictor depth (ijepa).
    #[arg(long, default_value_t = 4)]
    pred_depth: usize,
    /// Predictor width.
    #[arg(long, default_value_t = 96)]
    pred_width: usize,
    /// Decoder depth (mae; official 8).
    #[arg(long, default_value_t = 2)]
    dec_depth: usize,
    /// Decoder width (mae; official 512).
    #[arg(long, default_value_t = 128)]
    dec_width: usize,
    /// Decoder heads (mae; official 16).
    #[arg(long, default_value_t = 4)]
    dec_heads: usize,
    /// Masked fraction (mae).
    #[arg(long, default_value_t = 0.75)]
    mask_ratio: f64,
    /// Target blocks per image.
    #[arg(long, default_value_t = 4)]
    targets: usize,
    /// min-keep of the mask sampler.
    #[arg(long, default_value_t = 4)]
    min_keep: usize,
    /// Precision: auto (bf16 where the device computes it natively, else fp32), fp32 or bf16.
    #[arg(long, default_value = "auto")]
    precision: String,
    /// Device: auto, cpu, cuda, cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Timed steps.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Torch intra-op threads (default: torch's choice; `bench dist`: 1 per rank).
    #[arg(long)]
    threads: Option<i32>,
    /// After the timed steps, run this many more under libtorch's operator profiler and print
    /// each operator's calls and self time per step, and the matrix products' share of it (as
    /// `scripts/bench_official_step.py --profile` does for the official code). `bench dist`
    /// and `bench features` profile their 1-process step (not the ranks' data-parallel one).
    #[arg(long, default_value_t = 0, value_name = "STEPS")]
    profile: usize,
    /// Where `--profile` writes its Chrome trace (default: ijepa-step-trace.json in the
    /// system's temporary folder).
    #[arg(long, value_name = "FILE", requires = "profile")]
    trace: Option<PathBuf>,
}

fn main() -> ExitCode {
    // the engine's progress lines (info) and warnings show by default; RUST_LOG overrides
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ijepa_engine=info,ijepa_recipes=info,ijepa=info"));
    tracing_subscriber::fmt().with_env_filter(filter).with_target(false)
        .without_time()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // the one recipe registry: the language, plan, run, bench, eval, import and export read it
    if let Err(e) = ijepa_recipes::register_builtins() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let what = format!("`ijepa {}`", std::env::args().nth(1).unwrap_or_default());
    // the last net under every command: a libtorch failure anywhere is an error, not a panic
    let result = ijepa_engine::guard::torch(&what, || match cli.command {
        Command::Run { file, folders, dry_run, only, force } => {
            ijepa_engine::interrupt::install();
            cmd_run(&file, &folders, exec::ExecOptions { dry_run, only, force, ..Default::default() })
        }
        Command::Plan { file, folders, dot, world_size } => cmd_plan(&file, &folders, dot, world_size),
        Command::Launch { nproc_per_node, master_port, file, run_args } => cmd_launch(&file, nproc_per_node, master_port, &run_args),
        Command::Slurm { file, runs_dir, out, submit } => cmd_slurm(&file, &runs_dir, out, submit),
        Command::ImportYaml { file, name, out } => cmd_import_yaml(&file, name, out),
        Command::Bench { what: BenchCommand::Dist(b) } => cmd_bench_dist(&b),
        Command::Check { files } => cmd_check(&files),
        Command::Eval { file, checkpoint, runs_dir, point } => cmd_eval(&file, point.as_deref(), checkpoint, &runs_dir),
        Command::Report { runs_dir, out } => cmd_report(&runs_dir, &out),
        Command::Bench { what: BenchCommand::Step(b) } => cmd_bench_step(&b),
        Command::Bench { what: BenchCommand::Features(b) } => cmd_bench_features(&b),
        Command::Bench { what: BenchCommand::Data(b) } => cmd_bench_data(&b),
        Command::Parity { fixture, weights, device } => cmd_parity(&fixture, weights.as_deref(), &device),
        Command::ImportCheckpoint { file, out, heads } => cmd_import(&file, out, heads),
        Command::Export { file, format, encoder, heads, out } => cmd_export(&file, &format, &encoder, heads, &out),
        Command::Estimate { file, point, images, gpu, mfu, budget_hours, measure, no_measure, steps } => {
            let measure = if measure { Some(true) } else if no_measure { Some(false) } else { None };
            cmd_estimate(&file, point.as_deref(), ijepa::estimate::Options { images, gpu, mfu, measure, steps: steps.max(1), budget_hours })
        }
        Command::Masks { file, point, batches, batch_size, png } => cmd_masks(&file, point.as_deref(), batches, batch_size, png),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            match e.downcast_ref::<ijepa_engine::Error>() {
                // 128 + the signal's number, as shells report it
                Some(ijepa_engine::Error::Interrupted { signal, .. }) => ExitCode::from(if signal == "SIGTERM" { 143 } else { 130 }),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

type CmdResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// Loads an experiment, printing its diagnostics (rendered with the source) on failure.
/// The experiment of a file, or of one point of its sweep (`--point NAME`).
fn load(file: &std::path::Path, point: Option<&str>, inputs: Inputs) -> Result<Experiment, ExitCode> {
    let (study, _) = match inputs {
        Inputs::Checked => load_study_checked(file)?,
        Inputs::Unchecked => load_study(file)?,
    };
    let names: Vec<&str> = study.points.iter().map(|p| p.name.as_str()).collect();
    match (point, study.points.len()) {
        (None, 1) => Ok(study.points[0].experiment.clone()),
        (None, n) => {
            eprintln!("error: {} is a sweep of {n} points: choose one with --point ({})", file.display(), names.join(", "));
            Err(ExitCode::FAILURE)
        }
        (Some(want), _) => match study.points.iter().find(|p| p.name == want) {
            Some(p) => Ok(p.experiment.clone()),
            None => {
                eprintln!("error: {} has no sweep point {want:?}; its points: {}", file.display(), names.join(", "));
                Err(ExitCode::FAILURE)
            }
        },
    }
}

/// Whether loading also checks the inputs the experiment reads from disk.
#[derive(Clone, Copy)]
enum Inputs {
    /// Data root, placeholder, subset and split files checked (what runs or evaluates).
    Checked,
    /// The language only (masks, launch, slurm: the data may live on another machine).
    Unchecked,
}

/// Loads an experiment file with its sweep, printing diagnostics on failure.
fn load_study(file: &std::path::Path) -> Result<(ijepa_dsl::Study, String), ExitCode> {
    ijepa_dsl::load_study(file).map_err(|diags| {
        eprintln!("{:?}", miette::Report::new(diags));
        ExitCode::FAILURE
    })
}

/// [`load_study`] that also checks the experiment's inputs on disk (data root, the official
/// placeholder, subset and split files), each missing one a diagnostic at its setting.
fn load_study_checked(file: &std::path::Path) -> Result<(ijepa_dsl::Study, String), ExitCode> {
    ijepa_dsl::load_study_checked(file).map_err(|diags| {
        eprintln!("{:?}", miette::Report::new(diags));
        ExitCode::FAILURE
    })
}

/// [`load_study`] with every point's `precision "auto"` resolved for this machine (before
/// planning: the concrete value is part of the stage hash); warns once about a bf16 the
/// device cannot compute natively.
fn load_resolved(file: &std::path::Path) -> Result<(ijepa_dsl::Study, String), Box<dyn std::error::Error>> {
    let (mut study, source) = load_study_checked(file).map_err(|_| format!("{} does not check (see above)", file.display()))?;
    let mut warned = std::collections::BTreeSet::new();
    for p in &mut study.points {
        if let Some(w) = precision::resolve_experiment(&mut p.experiment)?.warning {
            if warned.insert(w.clone()) {
                eprintln!("warning: {w}");
            }
        }
    }
    Ok((study, source))
}

fn cmd_run(file: &std::path::Path, folders: &Folders, mut opts: exec::ExecOptions) -> CmdResult {
    let (study, source) = load_resolved(file)?;
    let first = &study.points[0].experiment;
    let dist = if opts.dry_run { None } else { exec::process_group(first, exec::rank_device(first)?)? };
    let world = match &dist {
        Some(pg) => pg.world_size(),
        None => ijepa_engine::dist::DistEnv::from_env()?.map(|e| e.world_size).unwrap_or(1),
    };
    let plan = Plan::build(&study, &folders.runs_dir, &folders.reports_dir, world);
    opts.runs_dir = folders.runs_dir.clone();
    opts.source = source;
    exec::run(&plan, &opts, dist)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_plan(file: &std::path::Path, folders: &Folders, dot: bool, world: Option<usize>) -> CmdResult {
    let (study, _) = load_resolved(file)?;
    let given = world;
    let world = world.unwrap_or_else(|| study.points[0].experiment.distributed.world_size());
    let plan = Plan::build(&study, &folders.runs_dir, &folders.reports_dir, world);
    if dot {
        print!("{}", plan.dot());
    } else {
        print!("{}", plan.tree());
        // the process count is part of a pretraining's identity: say which layout this is
        if given.is_none() && world > 1 {
            println!(
                "note: planned for {world} processes (the distributed block), as a launched run (`ijepa launch`,                  torchrun, SLURM) uses them; a plain `ijepa run` without a launcher trains alone, in the                  1-process folders `ijepa plan --world-size 1` shows"
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_launch(file: &std::path::Path, nproc: Option<usize>, port: Option<u16>, run_args: &[String]) -> CmdResult {
    let (study, _) = match load_study(file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let d = &study.points[0].experiment.distributed;
    if d.nodes > 1 {
        return Err(format!(
            "{} asks for {} nodes; `ijepa launch` starts the ranks of one machine: use `ijepa slurm {}` or torchrun on each node",
            study.name,
            d.nodes,
            file.display()
        )
        .into());
    }
    let nproc = nproc.unwrap_or(d.procs_per_node);
    let port = match port {
        Some(p) => p,
        None => launch::free_port()?,
    };
    let mut args = vec!["run".to_string(), file.display().to_string()];
    args.extend(run_args.iter().cloned());
    launch::spawn_local(nproc, port, &args, &[], std::time::Duration::from_secs(10))?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_slurm(file: &std::path::Path, runs_dir: &std::path::Path, out: Option<PathBuf>, submit: bool) -> CmdResult {
    let (study, _) = match load_study(file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let mut exp = study.points[0].experiment.clone();
    exp.name = study.name.clone();
    launch::write_sbatch(&exp, file, runs_dir, out, submit)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_import_yaml(file: &std::path::Path, name: Option<String>, out: Option<PathBuf>) -> CmdResult {
    let text = std::fs::read_to_string(file).map_err(|e| format!("reading {}: {e}", file.display()))?;
    let name = name.unwrap_or_else(|| ijepa_dsl::import_yaml::default_name(file));
    let kdl = ijepa_dsl::import_yaml::yaml_to_kdl(&text, &file.display().to_string(), &name)?;
    match out {
        Some(out) => {
            std::fs::write(&out, &kdl).map_err(|e| format!("writing {}: {e}", out.display()))?;
            println!("wrote {} (check it with `ijepa check {}`)", out.display(), out.display());
        }
        None => print!("{kdl}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_eval(file: &std::path::Path, point: Option<&str>, checkpoint: PathBuf, runs_dir: &std::path::Path) -> CmdResult {
    let mut exp = match load(file, point, Inputs::Checked) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    if let Some(w) = precision::resolve_experiment(&mut exp)?.warning {
        eprintln!("warning: {w}");
    }
    if exp.evals.is_empty() {
        return Err(format!("{} has no `eval` block: nothing to evaluate", file.display()).into());
    }
    let dev = device::resolve(&exp.device)?;
    stages::run_evals(&exp, &stages::Source { checkpoint, pretrain_dir: None }, runs_dir, dev)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_report(runs_dir: &std::path::Path, out: &std::path::Path) -> CmdResult {
    let registry = ijepa_reports::load_registry(runs_dir)?;
    let files = ijepa_reports::write_report(&registry, out)?;
    println!(
        "report of {} written to {}: {} and report.html, {} tables, {} plots",
        runs_dir.display(),
        out.display(),
        files.markdown.display(),
        files.tables.len(),
        files.plots.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_check(files: &[PathBuf]) -> CmdResult {
    let mut ok = true;
    for f in files {
        match load_study_checked(f) {
            Ok((study, _)) => {
                let exp = &study.base;
                let d = &exp.distributed;
                println!(
                    "ok: {} (experiment {:?}: {} {}x{}x{} patch {}, {} epochs of batch {}{}{})",
                    f.display(),
                    study.name,
                    exp.encoder.preset.as_deref().unwrap_or("custom ViT"),
                    exp.encoder.embed_dim,
                    exp.encoder.depth,
                    exp.encoder.num_heads,
                    exp.encoder.patch_size,
                    exp.epochs,
                    exp.data.batch_size,
                    if d.world_size() > 1 { format!(" x {} ranks ({} node(s) x {})", d.world_size(), d.nodes, d.procs_per_node) } else { String::new() },
                    if study.points.len() > 1 { format!("; sweep of {} points", study.points.len()) } else { String::new() }
                )
            }
            Err(_) => ok = false,
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cmd_bench_step(b: &BenchStep) -> CmdResult {
    if let Some(t) = b.threads {
        tch::set_num_threads(t);
    }
    let (st, dev, params, resolved) = time_step(b, None)?;
    println!(
        "bench step recipe={} preset={} patch={} size={} batch={} {} precision={} device={} threads={} params={:.2}M steps={} ms_per_step={:.2} ms_std={:.2} img_per_s={:.1} peak_rss_mb={:.0} cpu={:?}",
        b.recipe,
        b.preset,
        b.patch,
        b.size,
        b.batch,
        match b.recipe.as_str() {
            "mae" => format!("dec_depth={} dec_width={} dec_heads={} mask_ratio={}", b.dec_depth, b.dec_width, b.dec_heads, b.mask_ratio),
            "dino" => format!("global_crops=2 local_crops={} local_size={} out_dim={}", b.local_crops, bench_local_size(b), b.out_dim),
            _ => format!("pred_depth={} pred_width={} targets={}", b.pred_depth, b.pred_width, b.targets),
        },
        precision::name(resolved.precision),
        device::describe(dev).replace(' ', "_"),
        tch::get_num_threads(),
        params as f64 / 1e6,
        b.steps,
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

/// The experiment `bench step` (and `bench features`) builds from its options (precision not
/// yet resolved).
fn bench_experiment(b: &BenchStep) -> Result<Experiment, Box<dyn std::error::Error>> {
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
        exp.dino = ijepa_dsl::config::DinoConfig { local_crops: b.local_crops, local_size: bench_local_size(b), out_dim: b.out_dim, ..Default::default() };
    }
    exp.precision = match b.precision.as_str() {
        "auto" => Precision::Auto,
        "fp32" => Precision::Fp32,
        "bf16" => Precision::Bf16,
        p => return Err(format!("unknown precision {p:?} (auto, fp32 or bf16)").into()),
    };
    Ok(exp)
}

/// Times the training step of `b`, data-parallel over `dist` when given (the profiler, with
/// `--profile`, runs only without `dist`: the parent of `bench dist` profiles its 1-process step).
fn time_step(
    b: &BenchStep,
    dist: Option<&std::sync::Arc<ijepa_engine::dist::ProcessGroup>>,
) -> Result<(mask::Stats, tch::Device, i64, precision::Resolved), Box<dyn std::error::Error>> {
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
    let (rank, world) = dist.map(|pg| (pg.rank() as u64, pg.world_size() as u64)).unwrap_or((0, 1));
    let mut recipe = ijepa_engine::recipe::build(&exp, dev, rank, world)?;
    if let Some(pg) = dist {
        recipe.install_ddp(pg, exp.distributed.bucket_mb)?;
    }
    let views = ijepa_engine::recipe::random_views(recipe.as_ref(), &exp.data, b.batch, dev)?;
    let hyper = Hyper { lr: 1e-3, wd: 0.04, momentum: 0.996 };
    let times = ijepa_engine::recipe::time_steps(recipe.as_mut(), &views, b.batch, b.warmup, b.steps, hyper, dev)?;
    if b.profile > 0 && dist.is_none() {
        let trace = b.trace.clone().unwrap_or_else(|| std::env::temp_dir().join("ijepa-step-trace.json"));
        let wall = ijepa_engine::recipe::profile_steps(recipe.as_mut(), &views, b.batch, b.profile, hyper, dev, &trace)?;
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
    Ok((mask::Stats::of(&times), dev, recipe.params(), resolved))
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
            let (st, dev, params, _) = time_step(&b.step, None)?;
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
        let args: Vec<String> = std::env::args().skip(1).collect();
        launch::spawn_local(b.nproc, launch::free_port()?, &args, &extra, std::time::Duration::from_secs(5))?;
        return Ok(ExitCode::SUCCESS);
    };
    // one GPU per rank where the step runs on CUDA (NCCL), else CPU ranks over Gloo
    let on_cuda = device::resolve(&b.step.device)?.is_cuda();
    let backend = if on_cuda { Backend::Nccl } else { Backend::Gloo };
    let pg = std::sync::Arc::new(ProcessGroup::new(&env, backend, std::time::Duration::from_secs(120))?);
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
        let (st, _, _, _) = time_step(&b.step, Some(&pg))?;
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

fn cmd_parity(fixture: &std::path::Path, weights: Option<&std::path::Path>, device: &str) -> CmdResult {
    let dev = device::resolve(device)?;
    let r = ijepa_recipes::parity::run_any_on(fixture, Default::default(), weights, dev)?;
    let on = device::describe(dev);
    match weights {
        Some(w) => println!("parity against {} on {on} (initial weights from {})", fixture.display(), w.display()),
        None => println!("parity against {} on {on}", fixture.display()),
    }
    for (group, worst, n, pass) in r.by_group() {
        let tol = ijepa_recipes::parity::TOLERANCES.iter().find(|t| t.0 == group).map(|t| t.1);
        let tol = tol.map(|t| format!("{:.0e} of each tensor's scale", t.rel)).unwrap_or_default();
        println!("  {group:<20} {n:>4} tensors  worst relative err {worst:.3e}  (tolerance {tol})  {}", if pass { "ok" } else { "FAIL" });
    }
    for c in r.comparisons.iter().filter(|c| !c.pass).take(10) {
        println!("  mismatch: {} {} max abs err {:.3e} = {:.3e} of its scale {:.3e}", c.group, c.name, c.max_abs, c.rel, c.scale);
    }
    println!("  loss ours {:.8} official {:.8}", r.loss.0, r.loss.1);
    println!("{}", if r.pass() { "PASS" } else { "FAIL" });
    Ok(if r.pass() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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
    exp.precision = resolved.precision;
    let bf16 = resolved.precision == Precision::Bf16;
    exp.data.dataset = ijepa_dsl::config::DatasetKind::FashionMnist;
    exp.data.source = ijepa_dsl::config::DataSource::Embedded;
    exp.data.limit = Some(b.images.max(1));
    let ds = data::open_dataset(&exp.data, Split::Train)?;
    let transform = stages::eval_transform(&exp)?;
    let entry = ijepa_engine::recipe::entry(&exp.recipe)?;
    let cfg = (entry.encoder_config)(&exp);
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
        "bench features encoder={}x{} heads={} patch={} size={} images={} batch={} precision={} device={} threads={} img_per_s={:.1} gflop_per_img={:.3} gflop_per_s={:.1}",
        cfg.embed_dim,
        cfg.depth,
        cfg.num_heads,
        cfg.patch_size,
        cfg.image_size,
        f.len(),
        b.extract_batch,
        precision::name(resolved.precision),
        device::describe(dev).replace(' ', "_"),
        tch::get_num_threads(),
        n / secs,
        fwd / 1e9,
        n / secs * fwd / 1e9
    );
    if !b.no_step {
        let (st, _, _, _) = time_step(&b.step, None)?;
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

fn cmd_estimate(file: &std::path::Path, point: Option<&str>, opts: ijepa::estimate::Options) -> CmdResult {
    let exp = match load(file, point, Inputs::Unchecked) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    println!("{}", ijepa::estimate::estimate(&exp, &opts)?);
    Ok(ExitCode::SUCCESS)
}

fn cmd_masks(file: &std::path::Path, point: Option<&str>, batches: usize, batch_size: Option<usize>, png: Option<PathBuf>) -> CmdResult {
    let exp = match load(file, point, Inputs::Unchecked) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let takes_masks = ijepa_dsl::recipes::schema(&exp.recipe).is_none_or(|s| !s.mask_kinds.is_empty());
    if !takes_masks {
        let views = ijepa_engine::recipe::build(&exp, tch::Device::Cpu, 0, 1)?.view_sizes(&exp.data)?;
        println!(
            "recipe {:?} samples no masks: each image becomes {} views of sides {}",
            exp.recipe,
            views.len(),
            views.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
        );
        if png.is_some() {
            return Err(format!("--png draws mask samplers' blocks; recipe {:?} has none", exp.recipe).into());
        }
        return Ok(ExitCode::SUCCESS);
    }
    if exp.mask.kind == ijepa_dsl::config::MaskKind::Random && exp.recipe != "ijepa" {
        let g = exp.data.crop_size / exp.encoder.patch_size.max(1);
        let keep = ijepa_recipes::mae::len_keep(g * g, exp.mask.ratio);
        println!(
            "masks of {:?}: {g}x{g} patch grid, random per image: {keep} of {} patches visible, {} masked (ratio {})",
            exp.name,
            g * g,
            g * g - keep,
            exp.mask.ratio
        );
        if png.is_some() {
            return Err("--png draws I-JEPA's context and target masks; MAE's random mask has no blocks to draw".into());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let sampler = MaskSampler::new(&exp.mask, exp.data.crop_size, exp.encoder.patch_size)?;
    let batch = batch_size.unwrap_or(exp.data.batch_size);
    let (gh, gw) = sampler.grid();
    let st = mask::statistics(&sampler, exp.seed, batches, batch)?;
    println!("masks of {:?}: {gh}x{gw} patch grid, {batches} batches of {batch}; {}", exp.name, sampler.describe());
    for (what, s) in [("context length", st.context_len), ("target length", st.target_len)] {
        println!("  {what:<15} mean {:>7.2}  std {:>6.2}  min {:>4}  max {:>4}", s.mean, s.std, s.min, s.max);
    }
    if let Some(out) = png {
        let m = sampler.sample(exp.seed, 0, 0, 0, batch)?;
        ijepa_recipes::ijepa::mask_png::write(&out, &m, gh, gw, 8)?;
        println!("wrote {} (blue: context, warm colours: the {} target masks, grey: unused)", out.display(), sampler.n_targets());
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_import(file: &std::path::Path, out: Option<PathBuf>, heads: Option<usize>) -> CmdResult {
    let models = import::load_models(file)?;
    let out = out.unwrap_or_else(|| {
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("checkpoint");
        let stem = name.trim_end_matches(".tar").trim_end_matches(".pth").trim_end_matches(".pt");
        file.with_file_name(format!("{stem}.safetensors"))
    });
    // check the weights form a model we can build, before writing anything
    let enc = models.feature_encoder().ok_or("the checkpoint holds no encoder")?;
    // the head count shapes no tensor: when the width names no preset, check with one head
    let (cfg, heads_known) = match import::infer_vit(enc, heads, file) {
        Ok(cfg) => (cfg, true),
        Err(_) if heads.is_none() => (import::infer_vit(enc, Some(1), file)?, false),
        Err(e) => return Err(e.into()),
    };
    let store = ParamStore::new(tch::Device::Cpu);
    VisionTransformer::new(&store.root(), &cfg)?;
    for (name, sd) in import::MODELS.iter().zip([&models.encoder, &models.predictor, &models.target_encoder]) {
        let Some(sd) = sd else { continue };
        if *name == "predictor" {
            let pcfg = PredictorConfig::infer(sd, &cfg, file)?;
            let ps = ParamStore::new(tch::Device::Cpu);
            VisionTransformerPredictor::new(&ps.root(), &pcfg)?;
            ps.load_strict(&import::to_map(sd), file)?;
        } else {
            store.load_strict(&import::to_map(sd), file)?;
        }
        println!("  {name:<15} {} tensors", sd.len());
    }
    import::write_ours(&models, &out)?;
    let info: Vec<String> = models.info.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!(
        "imported {} (ViT {}x{}x{} patch {} at {} px{}) -> {}",
        file.display(),
        cfg.embed_dim,
        cfg.depth,
        if heads_known { cfg.num_heads.to_string() } else { "?".into() },
        cfg.patch_size,
        cfg.image_size,
        if info.is_empty() { String::new() } else { format!("; {}", info.join(" ")) },
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_export(file: &std::path::Path, format: &str, which: &str, heads: Option<usize>, out: &std::path::Path) -> CmdResult {
    let models = import::load_models(file)?;
    let enc = match which {
        "target" => models.feature_encoder(),
        "context" => models.encoder.as_ref(),
        other => return Err(format!("unknown encoder {other:?} (target or context)").into()),
    }
    .ok_or("the checkpoint holds no such encoder")?;
    let cfg = import::infer_vit(enc, heads, file)?;
    let store = ParamStore::new(tch::Device::Cpu);
    VisionTransformer::new(&store.root(), &cfg)?;
    store.load_strict(&import::to_map(enc), file)?;
    match format {
        "hf" => {
            let decoder = models.module("decoder").and_then(export::decoder_shape);
            export::write_hf(enc, &cfg, decoder, out, file)?;
            let kind = if cfg.cls_token { "ViTMAEModel" } else { "IJepaModel" };
            println!("exported the {which} encoder of {} as a transformers {kind} to {}/", file.display(), out.display());
        }
        "official" => {
            ijepa_engine::checkpoint::state::save_weights(out, enc)?;
            println!("exported the {which} encoder of {} under the official names to {}", file.display(), out.display());
        }
        other => return Err(format!("unknown format {other:?} (hf or official)").into()),
    }
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
    let t0 = Instant::now();
    let ds = Arc::new(image_folder::ImageFolder::open(&b.dir, image_folder::OnError::Fail)?);
    let index_s = t0.elapsed().as_secs_f64();
    let n = ds.len();
    let transform: Arc<dyn ijepa_engine::data::SampleTransform> = match b.multi_crop {
        None => Arc::new(TrainTransform::new(TrainTransformCfg { size: b.size, exact, ..Default::default() })?),
        Some(local_crops) => Arc::new(ijepa_engine::data::MultiCrop::dino(&ijepa_engine::data::MultiCropCfg {
            global_size: b.size,
            global_scale: (0.4, 1.0),
            local_crops,
            local_size: b.local_size,
            local_scale: (0.05, 0.4),
            exact,
        })?),
    };
    let views = transform.view_sizes();
    let cfg = LoaderCfg { batch_size: b.batch, workers: b.threads, prefetch: b.threads, seed: 0, drop_last: true, rank: 0, world_size: 1, skip_errors: false };
    let loader: Loader<()> = Loader::new(ds, transform, cfg, Arc::new(|_, _, _| Ok(())))?;
    let ipe = loader.steps_per_epoch() as u64;
    let (mut done, mut images, mut started) = (0usize, 0usize, None);
    'outer: for epoch in 0.. {
        for batch in loader.epoch(epoch) {
            let batch = batch?;
            done += 1;
            if done == b.warmup.max(1) {
                started = Some(Instant::now());
            } else if done > b.warmup.max(1) {
                images += batch.len();
            }
            if done >= b.warmup.max(1) + b.batches {
                break 'outer;
            }
        }
        if ipe == 0 {
            break;
        }
    }
    let dt = started.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
    let rate = if dt > 0.0 { images as f64 / dt } else { 0.0 };
    println!(
        "bench data dir={} images={n} index_s={index_s:.3} threads={} size={} views={} batch={} batches={} decode={} img_per_s={rate:.1} img_per_s_per_thread={:.1}",
        b.dir.display(),
        b.threads,
        b.size,
        views.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("+"),
        b.batch,
        b.batches,
        b.decode,
        rate / b.threads.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Argument ids and long names are unique within each (sub)command. clap checks this only
    /// in debug builds, when the subcommand is parsed (a flattened struct can bring a second
    /// `threads`); the tests run in release, so the test walks the definition itself, and runs
    /// clap's own checks (`debug_assert`) where they are compiled in.
    #[test]
    fn argument_ids_and_long_names_are_unique_in_every_command() {
        fn walk(cmd: &clap::Command, path: &str, bad: &mut Vec<String>) {
            let mut ids = std::collections::HashSet::new();
            let mut longs = std::collections::HashSet::new();
            for a in cmd.get_arguments() {
                if !ids.insert(a.get_id().to_string()) {
                    bad.push(format!("{path}: id {:?} twice", a.get_id().as_str()));
                }
                if let Some(l) = a.get_long() {
                    if !longs.insert(l.to_string()) {
                        bad.push(format!("{path}: --{l} twice"));
                    }
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), bad);
            }
        }
        let cmd = Cli::command();
        let mut bad = Vec::new();
        walk(&cmd, "ijepa", &mut bad);
        assert!(bad.is_empty(), "{bad:?}");
        cmd.debug_assert();
    }
}
