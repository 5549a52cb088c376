//! `ijepa`: the command-line front end. Parses arguments and wires the crates together:
//! the language (`ijepa-dsl`), the engine and recipes (tch), the reports.

use clap::{Args, Parser, Subcommand};
use ijepa_dsl::config::{EncoderConfig, Experiment, MaskConfig, Precision};
use ijepa_engine::checkpoint::{export, import};
use ijepa_engine::device;
use ijepa_engine::stages;
use ijepa_engine::model::vit::{VisionTransformer, VisionTransformerPredictor};
use ijepa_engine::model::ParamStore;
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
        /// Where a `report` node writes its tables and plots.
        #[arg(long, default_value = "reports-out")]
        reports_dir: PathBuf,
    },
    /// Run the `eval` blocks of an experiment on any checkpoint (ours, an official .pth.tar, a
    /// state dict); results go to RUNS/<experiment>/eval-*/eval.json.
    Eval {
        /// Experiment file (.kdl) whose data, encoder and eval blocks to use.
        file: PathBuf,
        /// The checkpoint to evaluate (its target encoder when present).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Root folder of the run registry.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
    },
    /// Write paper-style tables and plots (Markdown, CSV, HTML, PNG) from a runs folder.
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
    /// transformers IJepaModel layout (a folder with model.safetensors and config.json).
    Export {
        /// Any checkpoint `import-checkpoint` reads (ours, official .pth.tar, state dict).
        file: PathBuf,
        /// official or hf.
        #[arg(long, default_value = "hf")]
        format: String,
        /// Which encoder: target (the EMA encoder the paper evaluates) or context.
        #[arg(long, default_value = "target")]
        encoder: String,
        /// Attention heads, when the width matches no preset.
        #[arg(long)]
        heads: Option<usize>,
        /// Output file (official) or folder (hf).
        #[arg(long)]
        out: PathBuf,
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
    /// Time the data loader on an image folder (decode, RandomResizedCrop, normalise) with N
    /// threads; prints one line with images/s. Compare with scripts/bench_torchvision.py.
    Data(BenchData),
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
        Command::Run { file, runs_dir, reports_dir } => cmd_run(file, runs_dir, &reports_dir),
        Command::Check { files } => cmd_check(&files),
        Command::Eval { file, checkpoint, runs_dir } => cmd_eval(&file, checkpoint, &runs_dir),
        Command::Report { runs_dir, out } => cmd_report(&runs_dir, &out),
        Command::Bench { what: BenchCommand::Step(b) } => cmd_bench_step(&b),
        Command::Bench { what: BenchCommand::Data(b) } => cmd_bench_data(&b),
        Command::Parity { fixture, weights } => cmd_parity(&fixture, weights.as_deref()),
        Command::ImportCheckpoint { file, out, heads } => cmd_import(&file, out, heads),
        Command::Export { file, format, encoder, heads, out } => cmd_export(&file, &format, &encoder, heads, &out),
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

fn cmd_run(file: PathBuf, runs_dir: PathBuf, reports_dir: &std::path::Path) -> CmdResult {
    let (exp, source) = match load(&file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let dev = device::resolve(&exp.device)?;
    let mut recipe = IJepa::for_experiment(&exp, dev, 0)?;
    let opts = RunOptions { runs_dir: runs_dir.clone(), source, progress: std::io::stderr().is_terminal() };
    let summary = train::pretrain(&exp, &mut recipe, &opts)?;
    drop(recipe);
    let src = stages::Source { checkpoint: summary.checkpoint.clone(), pretrain_dir: Some(summary.run_dir.clone()) };
    stages::run_evals(&exp, &src, &runs_dir, dev)?;
    if exp.report {
        cmd_report(&runs_dir, reports_dir)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_eval(file: &std::path::Path, checkpoint: PathBuf, runs_dir: &std::path::Path) -> CmdResult {
    let (exp, _) = match load(file) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
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
    println!("report of {} written to {} ({files:?})", runs_dir.display(), out.display());
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

fn cmd_parity(fixture: &std::path::Path, weights: Option<&std::path::Path>) -> CmdResult {
    let r = ijepa_recipes::parity::run_with_weights(fixture, Default::default(), weights)?;
    match weights {
        Some(w) => println!("parity against {} (initial weights from {})", fixture.display(), w.display()),
        None => println!("parity against {}", fixture.display()),
    }
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
            let pcfg = import::infer_predictor(sd, &cfg, file)?;
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
            export::write_hf(enc, &cfg, out, file)?;
            println!("exported the {which} encoder of {} as a transformers IJepaModel to {}/", file.display(), out.display());
        }
        "official" => {
            train::save_safetensors(out, enc)?;
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
    let transform = Arc::new(TrainTransform::new(TrainTransformCfg { size: b.size, exact, ..Default::default() })?);
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
        "bench data dir={} images={n} index_s={index_s:.3} threads={} size={} batch={} batches={} decode={} img_per_s={rate:.1} img_per_s_per_thread={:.1}",
        b.dir.display(),
        b.threads,
        b.size,
        b.batch,
        b.batches,
        b.decode,
        rate / b.threads.max(1) as f64
    );
    Ok(ExitCode::SUCCESS)
}
