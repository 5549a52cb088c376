//! `ijepa`: the command-line front end. Parses arguments and wires the crates together:
//! the language (`ijepa-dsl`), the engine and recipes (tch), the reports.

use clap::{Args, Parser, Subcommand};
use ijepa_dsl::config::{EncoderConfig, Experiment, MaskConfig, Precision};
use ijepa_engine::device;
use ijepa_engine::mask::{self, MultiBlock};
use ijepa_engine::recipe::{Hyper, Recipe};
use ijepa_engine::train::{self, RunOptions};
use ijepa_recipes::IJepa;
use std::io::IsTerminal;
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
    /// Validate an experiment and pretrain it; the run goes to RUNS/<experiment>/pretrain-<hash>/.
    Run {
        /// Experiment file (.kdl).
        file: PathBuf,
        /// Root folder of the run registry.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
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
    },
    /// Sample the experiment's masks and print their statistics (lengths after truncation).
    Masks {
        /// Experiment file (.kdl).
        file: PathBuf,
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

#[derive(Subcommand)]
enum BenchCommand {
    /// Time the I-JEPA training step (forward, backward, AdamW, EMA) on random images with real
    /// masks; prints one line with ms/step and images/s.
    Step(BenchStep),
}

#[derive(Args)]
struct BenchStep {
    /// Encoder preset (vit-tiny ... vit-giant).
    #[arg(long, default_value = "vit-tiny")]
    preset: String,
    /// Patch size.
    #[arg(long, default_value_t = 4)]
    patch: usize,
    /// Image side in pixels.
    #[arg(long, default_value_t = 32)]
    size: usize,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Predictor depth.
    #[arg(long, default_value_t = 4)]
    pred_depth: usize,
    /// Predictor width.
    #[arg(long, default_value_t = 96)]
    pred_width: usize,
    /// Target blocks per image.
    #[arg(long, default_value_t = 4)]
    targets: usize,
    /// min-keep of the mask sampler.
    #[arg(long, default_value_t = 4)]
    min_keep: usize,
    /// Precision: fp32 or bf16.
    #[arg(long, default_value = "fp32")]
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
    /// Torch intra-op threads (default: torch's choice).
    #[arg(long)]
    threads: Option<i32>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run { file, runs_dir } => cmd_run(file, runs_dir),
        Command::Check { files } => cmd_check(&files),
        Command::Bench { what: BenchCommand::Step(b) } => cmd_bench_step(&b),
        Command::Parity { fixture } => cmd_parity(&fixture),
        Command::Masks { file, batches, batch_size, png } => cmd_masks(&file, batches, batch_size, png),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type CmdResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// Loads an experiment, printing its diagnostics (rendered with the source) on failure.
fn load(file: &std::path::Path) -> Result<(Experiment, String), ExitCode> {
    ijepa_dsl::load(file).map_err(|diags| {
        eprintln!("{:?}", miette::Report::new(diags));
        ExitCode::FAILURE
    })
}

fn cmd_run(file: PathBuf, runs_dir: PathBuf) -> CmdResult {
    let (exp, source) = match load(&file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let dev = device::resolve(&exp.device)?;
    let mut recipe = IJepa::for_experiment(&exp, dev, 0)?;
    let opts = RunOptions { runs_dir, source, progress: std::io::stderr().is_terminal() };
    train::pretrain(&exp, &mut recipe, &opts)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_check(files: &[PathBuf]) -> CmdResult {
    let mut ok = true;
    for f in files {
        match load(f) {
            Ok((exp, _)) => println!(
                "ok: {} (experiment {:?}: {} {}x{}x{} patch {}, {} epochs of batch {})",
                f.display(),
                exp.name,
                exp.encoder.preset.as_deref().unwrap_or("custom ViT"),
                exp.encoder.embed_dim,
                exp.encoder.depth,
                exp.encoder.num_heads,
                exp.encoder.patch_size,
                exp.epochs,
                exp.data.batch_size
            ),
            Err(_) => ok = false,
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cmd_bench_step(b: &BenchStep) -> CmdResult {
    if let Some(t) = b.threads {
        tch::set_num_threads(t);
    }
    let Some(encoder) = EncoderConfig::preset(&b.preset, b.patch) else {
        return Err(format!("unknown preset {:?} (known: vit-tiny, vit-small, vit-base, vit-large, vit-huge, vit-giant)", b.preset).into());
    };
    let mut exp = Experiment::with_defaults("bench");
    exp.encoder = encoder;
    exp.data.crop_size = b.size;
    exp.data.batch_size = b.batch;
    exp.predictor.depth = b.pred_depth;
    exp.predictor.embed_dim = b.pred_width;
    exp.mask = MaskConfig { n_targets: b.targets, min_keep: b.min_keep, ..MaskConfig::default() };
    exp.precision = match b.precision.as_str() {
        "fp32" => Precision::Fp32,
        "bf16" => Precision::Bf16,
        p => return Err(format!("unknown precision {p:?} (fp32 or bf16)").into()),
    };
    let dev = device::resolve(&b.device)?;
    let mut recipe = IJepa::for_experiment(&exp, dev, 0)?;
    let collate = recipe.collate();
    let images = tch::Tensor::randn([b.batch as i64, 3, b.size as i64, b.size as i64], (tch::Kind::Float, dev));
    let hyper = Hyper { lr: 1e-3, wd: 0.04, momentum: 0.996 };
    let mut times = Vec::with_capacity(b.steps);
    for i in 0..b.warmup + b.steps {
        let masks = collate(0, i as u64, b.batch)?;
        device::synchronize(dev);
        let t0 = Instant::now();
        recipe.step(&images, &masks, hyper)?;
        device::synchronize(dev);
        if i >= b.warmup {
            times.push(t0.elapsed().as_secs_f64());
        }
    }
    let st = mask::Stats::of(&times);
    println!(
        "bench step preset={} patch={} size={} batch={} pred_depth={} pred_width={} targets={} precision={} device={} params={:.2}M steps={} ms_per_step={:.2} ms_std={:.2} img_per_s={:.1}",
        b.preset,
        b.patch,
        b.size,
        b.batch,
        b.pred_depth,
        b.pred_width,
        b.targets,
        b.precision,
        device::describe(dev).replace(' ', "_"),
        recipe.num_params() as f64 / 1e6,
        b.steps,
        st.mean * 1e3,
        st.std * 1e3,
        b.batch as f64 / st.mean
    );
    Ok(ExitCode::SUCCESS)
}

fn cmd_parity(fixture: &std::path::Path) -> CmdResult {
    let r = ijepa_recipes::parity::run(fixture, Default::default())?;
    println!("parity against {}", fixture.display());
    for (group, worst, n, pass) in r.by_group() {
        let tol = ijepa_recipes::parity::TOLERANCES.iter().find(|t| t.0 == group).map(|t| t.1);
        let tol = tol.map(|t| format!("atol {:.0e} + rtol {:.0e}", t.atol, t.rtol)).unwrap_or_default();
        println!("  {group:<20} {n:>4} tensors  max abs err {worst:.3e}  (tolerance {tol})  {}", if pass { "ok" } else { "FAIL" });
    }
    for c in r.comparisons.iter().filter(|c| !c.pass).take(10) {
        println!("  mismatch: {} {} max abs err {:.3e} (scale {:.3e})", c.group, c.name, c.max_abs, c.scale);
    }
    println!("  loss ours {:.8} official {:.8}", r.loss.0, r.loss.1);
    println!("{}", if r.pass() { "PASS" } else { "FAIL" });
    Ok(if r.pass() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cmd_masks(file: &std::path::Path, batches: usize, batch_size: Option<usize>, png: Option<PathBuf>) -> CmdResult {
    let (exp, _) = match load(file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let sampler = MultiBlock::new(&exp.mask, exp.data.crop_size, exp.encoder.patch_size)?;
    let batch = batch_size.unwrap_or(exp.data.batch_size);
    let (gh, gw) = sampler.grid();
    let st = mask::statistics(&sampler, exp.seed, batches, batch)?;
    println!("masks of {:?}: {gh}x{gw} patch grid, {batches} batches of {batch}", exp.name);
    for (what, s) in [("context length", st.context_len), ("target length", st.target_len)] {
        println!("  {what:<15} mean {:>7.2}  std {:>6.2}  min {:>4}  max {:>4}", s.mean, s.std, s.min, s.max);
    }
    if let Some(out) = png {
        let m = sampler.sample(exp.seed, 0, 0, 0, batch)?;
        ijepa_engine::mask_png::write(&out, &m, gh, gw, 8)?;
        println!("wrote {} (blue: context, warm colours: the {} target blocks, grey: unused)", out.display(), exp.mask.n_targets);
    }
    Ok(ExitCode::SUCCESS)
}
