//! `ijepa`: the command-line front end. Parses arguments and wires the crates together:
//! the language (`ijepa-dsl`), the engine and recipes (tch), the reports.

// `println!`/`eprintln!` that never panic on a closed stdout/stderr (`ijepa run ... | head`)
#[macro_use]
extern crate ijepa_engine;

use ijepa::exec;
mod bench;
mod launch;

use clap::{Args, Parser, Subcommand};
use ijepa_dsl::config::Experiment;
use ijepa_engine::{device, precision};
use ijepa_engine::stages;
use ijepa_engine::plan::Plan;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "ijepa",
    version,
    about = "Self-supervised vision experiments (I-JEPA) written in KDL, run on libtorch",
    after_help = "Environment: IJEPA_CPU_PRODUCTS=auto|blas|onednn picks the kernel of the dense layers' matrix products on a CPU \
                  (auto, the default: oneDNN for fp32 on an x86 CPU with AVX-512 not made by Intel, where MKL runs AVX2 code; \
                  BLAS, the official code's, elsewhere; a run records it in its manifest and a resume keeps it, unless this variable \
                  names another kernel: then the resume takes that one, with a warning). \
                  IJEPA_LOADER=overlap keeps the loader's threads decoding while a pretraining step computes on the CPU \
                  (by default they pause then and build the next batches between steps). RUST_LOG adds log detail."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an experiment's stages (pretraining of each sweep point, evaluations, report) in
    /// order; finished stages are skipped, interrupted ones resume from their last checkpoint.
    /// Stage folders: RUNS/<experiment>/<stage>-<hash>/ (a sweep point's pretraining and
    /// evaluations: RUNS/<experiment>-<point>/...). See `ijepa plan` for the stages.
    Run {
        /// Experiment file (.kdl).
        file: PathBuf,
        #[command(flatten)]
        folders: Folders,
        /// Print what would run, resume or be skipped; run nothing (exits with an error when the run would be refused, saying why).
        #[arg(long)]
        dry_run: bool,
        /// Run only these stages (repeatable): a stage id from `ijepa plan`, an id prefix
        /// before `/` (`pretrain` = every pretraining), a kind (pretrain, eval, report), or a
        /// pattern with `*`. Their inputs must be done.
        #[arg(long, value_name = "STAGE")]
        only: Vec<String>,
        /// Rerun the selected stages even when done (the old folder is kept, renamed
        /// `.<folder>.old-<time>`; finished stages computed from it are set aside too, and
        /// rerun when selected, else on the next run; the report folder is never moved). A
        /// `--force` run stopped before its end (Ctrl-C, an error) is gone on with by the same
        /// command: what it ran again is not forced a second time (RUNS/<study>/.force-<digest>.json).
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
        #[arg(long, value_parser = world_size)]
        world_size: Option<usize>,
    },
    /// Start the ranks of a multi-process run on this machine (like `torchrun --standalone`):
    /// N copies of `ijepa run FILE`, rank 0 hosting the rendezvous on 127.0.0.1. When a rank
    /// fails the others are stopped; a signal to the launcher (Ctrl-C, SIGTERM) is passed on to
    /// them, and Ctrl-Z stops them with it. On CPU the ranks use Gloo; on GPUs NCCL, one GPU each.
    Launch {
        /// Processes, 1 to 64 (default: the experiment's `distributed { gpus-per-node N }`).
        #[arg(long, value_parser = procs_per_node)]
        nproc_per_node: Option<usize>,
        /// Rendezvous port, 1 to 65535 (default: a free one).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        master_port: Option<u16>,
        /// Experiment file (.kdl).
        file: PathBuf,
        /// Arguments passed on to `ijepa run` (after `--`), e.g. `-- --runs-dir r`.
        // (as given: a folder name that is not UTF-8 was "invalid UTF-8")
        #[arg(last = true, value_parser = clap::value_parser!(std::ffi::OsString))]
        run_args: Vec<std::ffi::OsString>,
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
        /// Experiment name: letters, digits, `-`, `_` and `.` (it names the folder runs/NAME/).
        /// Default: the file's name without its extension, every other character made `-`
        /// (`my config.yaml`: `my-config`).
        #[arg(long)]
        name: Option<String>,
        /// Output .kdl file (default: print the experiment); an existing one is not replaced.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run the `eval` blocks of an experiment on any checkpoint (ours, an official .pth.tar, a
    /// state dict); results go to RUNS/<experiment>/eval-*/eval.json.
    Eval {
        /// Experiment file (.kdl) whose data, encoder and eval blocks to use (the rules of
        /// settings only the pretraining reads, such as the masks, are not checked).
        file: PathBuf,
        /// The sweep point to use, when the file defines a sweep (names: `ijepa plan FILE`, or,
        /// for a file only this command reads, the error it gives without it); a
        /// checkpoint another point's pretraining wrote (or a copy of one its manifest records)
        /// is refused, naming that point.
        #[arg(long)]
        point: Option<String>,
        /// The checkpoint to evaluate: the encoder the recipe's evaluations read (I-JEPA's target
        /// encoder, DINO's teacher, MAE's encoder), or a file holding one encoder alone; a
        /// training checkpoint without it is refused (`ijepa export --encoder context` writes
        /// the context encoder alone).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Root folder of the run registry.
        #[arg(long, default_value = "runs")]
        runs_dir: PathBuf,
    },
    /// Write paper-style tables and plots (Markdown, CSV, self-contained HTML with inline SVG figures, SVG and PNG files) from a runs folder.
    /// Each experiment file is shown as its last `ijepa run` planned it; an earlier version's stages are listed as left out.
    /// (`ijepa-report` does the same without libtorch, but takes no lock on the output folder.)
    Report {
        /// Root folder of the run registry.
        #[arg(default_value = "runs")]
        runs_dir: PathBuf,
        /// Output folder (not the runs folder nor anything inside it, nor another runs folder
        /// or its experiment folders; a study's report written there before is replaced, and
        /// that study's next run writes its own again).
        #[arg(long, default_value = ijepa_reports::DEFAULT_OUT)]
        out: PathBuf,
    },
    /// Validate experiment files; prints every error of a file with its location, then checks
    /// that the paths it reads (data root, lists) exist.
    Check {
        /// Experiment files (.kdl).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: Box<bench::BenchCommand>,
    },
    /// Replay an official training step from a fixture (NAME.safetensors + NAME.json) and
    /// compare outputs, loss, gradients and weights after the step. Exit 1 on mismatch, 2
    /// when no comparison could be made (a fixture or --weights that cannot be read or does not
    /// fit its description, a device this machine lacks).
    Parity {
        /// The fixture's .safetensors file.
        fixture: PathBuf,
        /// Take the initial weights from this checkpoint (e.g. an official .pth.tar) instead
        /// of the fixture's `init.*` tensors.
        #[arg(long)]
        weights: Option<PathBuf>,
        /// Device of the replay: cpu, cuda, cuda:N, or auto (CUDA where there is one) (the comparison is in float64 on the CPU).
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Convert a checkpoint (official .pth.tar, a plain PyTorch state dict, or safetensors)
    /// into our safetensors format (official names, `module.` stripped). Never runs code from
    /// the file: only state-dict contents are accepted.
    ImportCheckpoint {
        /// The checkpoint to read.
        file: PathBuf,
        /// Output .safetensors (default: FILE with .safetensors for .pth / .pth.tar / .pt, or
        /// NAME.imported.safetensors for NAME.safetensors; the default is never written over an
        /// existing file: name it with --out to replace it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Attention heads, when the width matches no preset and neither the file nor its run
        /// records them (no shape depends on them): recorded in the file written, as a
        /// pretraining's checkpoints record them, for `eval` and `export` to read.
        #[arg(long, value_parser = positive)]
        heads: Option<usize>,
    },
    /// Export the encoder of a checkpoint: official names (safetensors) or the Hugging Face
    /// transformers layout (a folder with model.safetensors, config.json and preprocessor_config.json): IJepaModel for
    /// I-JEPA, ViTMAEModel for MAE (the encoder's weights; config.json also records the
    /// decoder's shape), ViTModel for DINO and a bare encoder with a class token. Never over a
    /// pretraining run's own files (the run folder itself, its checkpoints, its config), nor
    /// over a training checkpoint, a file of models under their module names (a copy of a run's
    /// weights, an imported checkpoint) or an HF export's weights anywhere.
    Export {
        /// Any checkpoint `import-checkpoint` reads (ours, official .pth.tar, state dict).
        file: PathBuf,
        /// official or hf.
        #[arg(long, default_value = "hf")]
        format: ijepa::checkpoints::ExportFormat,
        /// Which encoder: target (I-JEPA's EMA encoder, the one the paper evaluates; DINO's
        /// teacher; for MAE, its only encoder) or context (I-JEPA's context encoder, DINO's
        /// student).
        #[arg(long, default_value = "target")]
        encoder: ijepa::checkpoints::Which,
        /// Attention heads, which hf's config.json records (no tensor's shape depends on it; the
        /// official layout's tensors do not, its file's metadata does when known). Read from the
        /// run's config.json when the checkpoint lies in a run folder, else from the file's own
        /// record (a pretraining's checkpoints carry it; a file whose record disagrees with its
        /// run's is refused). A value other than the recorded one is refused; where nothing
        /// records it, the value is used, else the preset of the width (other widths need it for
        /// hf).
        #[arg(long, value_parser = positive)]
        heads: Option<usize>,
        /// Output file (official) or folder (hf: a new or empty one, or an earlier export's,
        /// whose three files are replaced; a folder holding anything else is refused).
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
        /// The dataset's training images (default: counted by opening the experiment's dataset;
        /// ImageNet-1K has 1281167); the file's `limit` and the monitor's held-out images apply
        /// to it. A `subset` list readable here replaces it: the run trains on the list's
        /// lines, counted without the images (a list not on this machine: N is taken as the
        /// images it names).
        #[arg(long)]
        images: Option<u64>,
        /// The GPU of the projection: a100, h100, h200, v100.
        #[arg(long, default_value = "a100")]
        gpu: String,
        /// The model FLOP utilisation assumed by the GPU projection.
        // (a negative value, -0.5 or -1e-3, reaches the range check, not clap's "unexpected
        // argument '-0'")
        #[arg(long, default_value_t = 0.4, allow_hyphen_values = true)]
        mfu: f64,
        /// A GPU-hour budget (for example a paper's): prints the MFU it requires.
        #[arg(long, allow_hyphen_values = true)]
        budget_hours: Option<f64>,
        /// Measure the step here even when it is large (not when its analytic memory exceeds
        /// the memory available here: the machine's free memory, or this process's memory
        /// cgroup or `ulimit -v` where they leave less).
        #[arg(long, conflicts_with = "no_measure")]
        measure: bool,
        /// Never measure (analytic memory only, no CPU projection).
        #[arg(long)]
        no_measure: bool,
        /// Timed steps of the measurement (after one untimed).
        #[arg(long, default_value_t = 3, value_parser = estimate_steps)]
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
        #[arg(long, default_value_t = 200, value_parser = positive)]
        batches: usize,
        /// Batch size (default: the experiment's global batch, `batch-size` x the processes of
        /// its `distributed` block: each step's masks are drawn and truncated over the global
        /// batch; a run launched with another process count truncates over its own).
        #[arg(long, value_parser = positive)]
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
    /// Where a `report` node writes its tables and plots (beside the runs folder: not in it,
    /// nor in a stage folder, nor in another runs folder or its experiment folders).
    #[arg(long, default_value = ijepa_reports::DEFAULT_OUT)]
    reports_dir: PathBuf,
}

impl Folders {
    /// Refuses a `--runs-dir` that exists and is not a folder: `plan` and `run --dry-run`
    /// planned every stage "to run" there without a word (a run failed at its first stage).
    /// (`run` checks that `--reports-dir` can be written before any stage.)
    fn check(&self) -> Result<(), String> {
        // (nor one under a file: `run` failed at its first stage, `plan` and a dry run said nothing)
        match ijepa_schema::file_in_the_way(&self.runs_dir) {
            Some(file) if file == self.runs_dir => Err(format!("--runs-dir {}: a file, not a folder", self.runs_dir.display())),
            Some(file) => Err(format!("--runs-dir {}: {} is a file, not a folder", self.runs_dir.display(), file.display())),
            None => Ok(()),
        }
    }

    /// Where the study writes a report, a `--reports-dir` in the runs folder or in a stage
    /// folder is refused as `ijepa report --out` refuses it (the report was written into a
    /// pretraining's `checkpoints/`); a study without one writes none there.
    /// `how` is said after the cause where `--reports-dir` is the default.
    fn check_reports(&self, study: &ijepa_dsl::Study, how: &str) -> Result<(), String> {
        if !study.points.iter().any(|p| p.experiment.report) {
            return Ok(());
        }
        ijepa_reports::check_out(&self.runs_dir, &self.reports_dir).map_err(|e| {
            let default = self.reports_dir == std::path::Path::new(ijepa_reports::DEFAULT_OUT);
            format!("--reports-dir {e}{}", if default { how } else { "" })
        })
    }
}

fn main() -> ExitCode {
    // the engine's and the library's events: progress on stdout, warnings on stderr (RUST_LOG adds)
    ijepa::logging::init();
    // a write past `ulimit -f` is an error naming the file, for every command (and clap's
    // help: killed by SIGXFSZ before it)
    ijepa_engine::interrupt::ignore_file_size_signal();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // (clap's own text: a usage error on stderr, status 2; `--help` and `--version` on
        // stdout, where a failed write exited 0 with no help written)
        Err(e) => {
            let printed = e.print();
            if !e.use_stderr() {
                // (`failed` flushes what is left)
                ijepa_engine::stdout::note(printed);
                if let Some(why) = ijepa_engine::stdout::failed() {
                    eprintln!("error: writing the standard output: {why}: what was printed there is lost or incomplete");
                    return ExitCode::FAILURE;
                }
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    // the one recipe registry: the language, plan, run, bench, eval, import and export read it
    if let Err(e) = ijepa_recipes::register_builtins() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // the kernel of the CPU's matrix products (commands that compute: the others never read it)
    let computes = match &cli.command {
        Command::Run { .. } | Command::Launch { .. } | Command::Eval { .. } | Command::Parity { .. } | Command::Estimate { .. } => true,
        Command::Bench { what } => what.reads_products_env(),
        _ => false,
    };
    if computes {
        match ijepa_engine::products::policy_from_env() {
            Ok(p) => ijepa_engine::products::set_policy(p),
            Err(e) => {
                eprintln!("error: {e}");
                // (parity's 1 is a step that differs: no step was replayed)
                return if matches!(cli.command, Command::Parity { .. }) { ExitCode::from(2) } else { ExitCode::FAILURE };
            }
        }
    }
    // (args_os: `args` panics on an argument that is not UTF-8, a file name in Latin-1)
    let what = format!("`ijepa {}`", std::env::args_os().nth(1).map(|a| a.to_string_lossy().into_owned()).unwrap_or_default());
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
        Command::Check { files } => cmd_check(&files),
        Command::Eval { file, checkpoint, runs_dir, point } => {
            ijepa_engine::interrupt::install();
            cmd_eval(&file, point.as_deref(), checkpoint, &runs_dir)
        }
        Command::Report { runs_dir, out } => cmd_report(&runs_dir, &out),
        Command::Bench { what } => bench::run(*what),
        Command::Parity { fixture, weights, device } => cmd_parity(&fixture, weights.as_deref(), &device),
        Command::ImportCheckpoint { file, out, heads } => {
            ijepa::outputs::check(out.as_deref(), "--out", &[&file], Some(ijepa::outputs::OutKind::Safetensors))?;
            // the default output is a name the user did not write: never over a file there (a
            // downloaded `model.safetensors` beside `model.pth` was replaced)
            if out.is_none() && file.is_file() {
                let default = ijepa::checkpoints::default_import_path(&file);
                ijepa::outputs::check(Some(&default), "the default output", &[&file], Some(ijepa::outputs::OutKind::Safetensors))?;
                if default.symlink_metadata().is_ok() {
                    return Err(format!(
                        "{} exists: without --out, import-checkpoint writes only where no file is; pass `--out {}` to replace it, or another path",
                        default.display(),
                        default.display()
                    )
                    .into());
                }
            }
            println!("{}", ijepa::checkpoints::import_checkpoint(&file, out, heads)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Export { file, format, encoder, heads, out } => {
            // (the Hugging Face layout is a folder of its own files)
            let kind = (format == ijepa::checkpoints::ExportFormat::Official).then_some(ijepa::outputs::OutKind::Safetensors);
            ijepa::outputs::check(Some(&out), "--out", &[&file], kind)?;
            // (a copy of a run's final weights, or an imported official checkpoint, was
            // replaced by one encoder's)
            if kind.is_some() && out.is_file() && ijepa_engine::checkpoint::state::holds_models(&out) {
                return Err(format!(
                    "--out {} holds whole models' weights (a pretraining's or an imported checkpoint's, under their module names, or a copy of a Hugging Face export's), not an encoder this command exported under the official names: writing would replace them; choose another path",
                    out.display()
                )
                .into());
            }
            if format == ijepa::checkpoints::ExportFormat::Hf {
                ijepa::checkpoints::check_hf_folder(&out)?;
            }
            println!("{}", ijepa::checkpoints::export_encoder(&file, format, encoder, heads, &out)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Estimate { file, point, images, gpu, mfu, budget_hours, measure, no_measure, steps } => {
            let measure = if measure { Some(true) } else if no_measure { Some(false) } else { None };
            cmd_estimate(&file, point.as_deref(), ijepa::estimate::Options { images, gpu, mfu, measure, steps, budget_hours })
        }
        Command::Masks { file, point, batches, batch_size, png } => cmd_masks(&file, point.as_deref(), batches, batch_size, png),
    });
    // what the command printed was not all written (a full disk, `ulimit -f`): its output is
    // lost or cut, which exited 0 and left a script reading half a file
    if let Some(why) = ijepa_engine::stdout::failed() {
        eprintln!("error: writing the standard output: {why}: what {what} printed there is lost or incomplete");
        if result.is_ok() {
            return ExitCode::FAILURE;
        }
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            ijepa::logging::print_error(&e);
            match e.downcast_ref::<ijepa_engine::Error>() {
                // 128 + the signal's number, as shells report it
                Some(ijepa_engine::Error::Interrupted { signal, .. }) => ExitCode::from(match signal.as_str() {
                    "SIGTERM" => 143,
                    "SIGHUP" => 129,
                    // (stopped because another rank was signalled: the launcher names that one)
                    ijepa_engine::interrupt::TO_ANOTHER_RANK => launch::STOPPED_WITH_RANK,
                    _ => 130,
                }),
                // a rank stopped with another that failed: the launcher blames that one (also
                // one whose collective failed as its peer closed the connection: the peer
                // failed first; the launcher named whichever rank exited first)
                Some(ijepa_engine::Error::StoppedWithRank(_)) => ExitCode::from(launch::STOPPED_WITH_RANK),
                Some(e) if ijepa_engine::dist::peer_closed(e) => ExitCode::from(launch::STOPPED_WITH_RANK),
                _ => match e.downcast_ref::<launch::Stopped>() {
                    Some(stopped) => ExitCode::from(stopped.code),
                    None => ExitCode::FAILURE,
                },
            }
        }
    }
}

type CmdResult = Result<ExitCode, Box<dyn std::error::Error>>;

/// A count in `1..=max`.
fn bounded(s: &str, max: usize, what: &str) -> Result<usize, String> {
    match positive(s)? {
        n if n > max => Err(format!("at most {max} ({what})")),
        n => Ok(n),
    }
}

/// `estimate --steps`: bounded as a benchmark's steps are (4294967295 aborted, allocating
/// the times of that many steps).
fn estimate_steps(s: &str) -> Result<usize, String> {
    bounded(s, bench::MAX_STEPS, "the measurement's steps, as a benchmark's")
}

fn procs_per_node(s: &str) -> Result<usize, String> {
    bounded(s, ijepa_dsl::MAX_PROCS_PER_NODE, "processes one machine starts, as the language's gpus-per-node")
}

fn world_size(s: &str) -> Result<usize, String> {
    bounded(s, ijepa_dsl::MAX_NODES * ijepa_dsl::MAX_PROCS_PER_NODE, "the language's nodes x gpus-per-node")
}

/// A count that must be at least 1 (clap refuses 0 with this message).
fn positive(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

/// Loads an experiment, printing its diagnostics (rendered with the source) on failure.
/// The experiment of a file, or of one point of its sweep (`--point NAME`).
fn load(file: &std::path::Path, point: Option<&str>, inputs: Inputs) -> Result<Experiment, ExitCode> {
    let (study, _) = match inputs {
        Inputs::Unchecked => load_study(file)?,
        Inputs::Eval => load_study_for_eval(file)?,
    };
    // a large sweep's names would fill the screen: the first few, and where to see them all
    // (all of them, one a line, for an `eval` of a file `plan` refuses: a point that cannot
    // pretrain can be evaluated, and `plan` could not list it; a 10,000-point sweep that plans
    // is not printed on one line of 600 kB)
    let names = || {
        let all: Vec<&str> = study.points.iter().map(|p| p.name.as_str()).collect();
        let plans = || ijepa_dsl::load_study(file).is_ok();
        const SHOWN: usize = 8;
        if all.len() <= SHOWN {
            all.join(", ")
        } else if matches!(inputs, Inputs::Eval) && !plans() {
            format!("one of:\n  {}\n", all.join("\n  "))
        } else {
            format!("{}, ... and {} more: `ijepa plan {}` lists them", all[..SHOWN].join(", "), all.len() - SHOWN, file.display())
        }
    };
    match (point, study.points.len()) {
        (None, 1) => Ok(study.points[0].experiment.clone()),
        (None, n) => {
            eprintln!("error: {} is a sweep of {n} points: choose one with --point ({})", file.display(), names());
            Err(ExitCode::FAILURE)
        }
        (Some(want), _) => match study.points.iter().find(|p| p.name == want) {
            Some(p) => Ok(p.experiment.clone()),
            None => {
                if study.points.len() == 1 && study.points[0].name.is_empty() {
                    eprintln!("error: {} has no sweep, so no point {want:?}: leave out --point", file.display());
                } else {
                    eprintln!("error: {} has no sweep point {want:?}; its points: {}", file.display(), names());
                }
                Err(ExitCode::FAILURE)
            }
        },
    }
}

/// Whether loading also checks the inputs the experiment reads from disk.
#[derive(Clone, Copy)]
enum Inputs {
    /// The language only (masks, estimate: the data may live on another machine).
    Unchecked,
    /// Data root, placeholder, subset and split files checked, the rules of settings only the
    /// pretraining reads left out (`ijepa eval`: [`ijepa_dsl::load_study_for_eval`]).
    Eval,
}

/// Prints a file's diagnostics as miette renders them, every control character a value of the
/// file carries shown as its escape ([`ijepa_dsl::printable`]).
fn print_diagnostics(diags: ijepa_dsl::Diagnostics) {
    // (colour sequences kept only on a terminal, where a miette theme may draw them (the one
    // it picks here draws none): a file or a pipe gets none, not even a value's own)
    use std::io::IsTerminal;
    eprintln!("{}", ijepa_dsl::printable(&format!("{:?}", miette::Report::new(diags)), std::io::stderr().is_terminal()));
}

/// Loads an experiment file with its sweep, printing diagnostics on failure.
fn load_study(file: &std::path::Path) -> Result<(ijepa_dsl::Study, String), ExitCode> {
    ijepa_dsl::load_study(file).map_err(|diags| {
        print_diagnostics(diags);
        ExitCode::FAILURE
    })
}

/// [`load_study`] that also checks the experiment's inputs on disk (data root, the official
/// placeholder, subset and split files), each missing one a diagnostic at its setting.
/// [`ijepa_dsl::load_study_for_eval`], printing diagnostics on failure.
fn load_study_for_eval(file: &std::path::Path) -> Result<(ijepa_dsl::Study, String), ExitCode> {
    ijepa_dsl::load_study_for_eval(file).map_err(|diags| {
        print_diagnostics(diags);
        ExitCode::FAILURE
    })
}

fn load_study_checked(file: &std::path::Path) -> Result<(ijepa_dsl::Study, String), ExitCode> {
    ijepa_dsl::load_study_checked(file).map_err(|diags| {
        print_diagnostics(diags);
        ExitCode::FAILURE
    })
}

/// [`load_study`] with every point's `precision "auto"` resolved for this machine (before
/// planning: the concrete value is part of the stage hash); warns once about a bf16 the
/// device cannot compute natively. In a launched job rank 0 alone says what the file warns
/// of (every rank reads the same file: each printed it, once per rank).
fn load_resolved(file: &std::path::Path) -> Result<(ijepa_dsl::Study, String), Box<dyn std::error::Error>> {
    let (mut study, source) = load_study_checked(file).map_err(|_| format!("{} does not check (see above)", file.display()))?;
    let says = ijepa_engine::dist::DistEnv::from_env().ok().flatten().is_none_or(|e| e.rank == 0);
    let mut warned = study.warnings();
    for p in &mut study.points {
        if let Some(w) = precision::resolve_experiment(&mut p.experiment)?.warning.filter(|w| !warned.contains(w)) {
            warned.push(w);
        }
    }
    for w in warned.iter().filter(|_| says) {
        eprintln!("warning: {w}");
    }
    Ok((study, source))
}

fn cmd_run(file: &std::path::Path, folders: &Folders, mut opts: exec::ExecOptions) -> CmdResult {
    folders.check()?;
    let (study, source) = load_resolved(file)?;
    folders.check_reports(&study, "; give --reports-dir a folder beside the runs folder")?;
    let first = &study.points[0].experiment;
    let dist = if opts.dry_run { None } else { exec::process_group(first, exec::rank_device(first)?)? };
    let env = ijepa_engine::dist::DistEnv::from_env()?;
    if opts.dry_run && env.is_none() {
        exec::warn_if_alone(first);
    }
    // a preview forms no group: rank 0 prints the plan, once (each rank printed it)
    if opts.dry_run && env.as_ref().is_some_and(|e| e.rank != 0) {
        return Ok(ExitCode::SUCCESS);
    }
    let world = match &dist {
        Some(pg) => pg.world_size(),
        None => env.map(|e| e.world_size).unwrap_or(1),
    };
    let plan = Plan::build(&study, &folders.runs_dir, &folders.reports_dir, world);
    opts.runs_dir = folders.runs_dir.clone();
    opts.source = exec::with_bases(&source, &study.files);
    opts.file = file.to_path_buf();
    exec::run(&plan, &opts, dist)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_plan(file: &std::path::Path, folders: &Folders, dot: bool, world: Option<usize>) -> CmdResult {
    folders.check()?;
    let (study, _) = load_resolved(file)?;
    folders.check_reports(&study, "; give --reports-dir a folder beside the runs folder")?;
    let given = world;
    let world = world.unwrap_or_else(|| study.points[0].experiment.distributed.world_size());
    // a layout given here is checked as one written in the file is (`check` refuses a block
    // that leaves a process less than a batch of a `limit`ed dataset)
    if let Some(n) = given.filter(|&n| n > 1) {
        for e in study.points.iter().map(|p| &p.experiment) {
            let Some(limit) = e.data.limit else { continue };
            let held = e.monitor.as_ref().map_or(0, |m| m.images);
            let per = limit.saturating_sub(held) / n;
            if per < e.data.batch_size {
                tracing::warn!(
                    "{}: {limit} images{} shared by {n} processes leave {per} per process, less than one batch of {}: a run of this layout fails when it starts",
                    e.name,
                    if held > 0 { format!(" less the monitor's {held}") } else { String::new() },
                    e.data.batch_size
                );
            }
        }
    }
    let plan = Plan::build(&study, &folders.runs_dir, &folders.reports_dir, world);
    if dot {
        print!("{}", plan.dot());
    } else {
        print!("{}", plan.tree());
        // the process count is part of a pretraining's identity: say which layout this is
        if given.is_none() && world > 1 {
            println!(
                "note: planned for {world} processes (the distributed block), as a launched run (`ijepa launch`, torchrun, SLURM) uses them; a plain `ijepa run` without a launcher trains alone, in the 1-process folders `ijepa plan --world-size 1` shows"
            );
        }
        ijepa::exec::interrupted_notes(&plan);
    }
    // what `ijepa run` refuses before anything runs (the plan is still shown)
    if let Err(e) = ijepa::exec::shares_no_folder(&plan).and_then(|()| ijepa::exec::finals_are_their_runs(&plan, &plan.order(), false)) {
        tracing::warn!("`ijepa run` of this file is refused: {e}");
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_launch(file: &std::path::Path, nproc: Option<usize>, port: Option<u16>, run_args: &[std::ffi::OsString]) -> CmdResult {
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
    // (as `ijepa slurm` says of a block written for another launcher: it ran without a word)
    if d.launcher != ijepa_dsl::config::Launcher::Local {
        eprintln!(
            "note: {}'s distributed block says launcher {:?}; starting this machine's ranks with `ijepa launch` anyway",
            study.name,
            format!("{:?}", d.launcher).to_lowercase()
        );
    }
    let nproc = nproc.unwrap_or(d.procs_per_node);
    let port = match port {
        Some(p) => p,
        None => launch::free_port()?,
    };
    // (the file's name as given: a name that is not UTF-8 reached the ranks mangled)
    let mut args = vec![std::ffi::OsString::from("run"), file.as_os_str().to_owned()];
    args.extend(run_args.iter().cloned());
    // the ranks' `run` arguments, read once here: `-- --help` (or an argument `run` refuses)
    // is printed once, not by every rank
    if let Err(e) = Cli::try_parse_from(std::iter::once(std::ffi::OsString::from("ijepa")).chain(args.iter().cloned())) {
        let _ = e.print();
        return Ok(ExitCode::from(if e.use_stderr() { 2 } else { 0 }));
    }
    launch::spawn_local(nproc, port, &args, &[], (std::time::Duration::from_secs(10), std::time::Duration::from_secs(d.timeout_s)), true)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_slurm(file: &std::path::Path, runs_dir: &std::path::Path, out: Option<PathBuf>, submit: bool) -> CmdResult {
    // (the official placeholder in a path is refused: a job queued with it failed as it
    // started; a path missing here is said, the job's nodes may have it)
    let study = match ijepa_dsl::load_study_for_elsewhere(file) {
        Ok((study, _, missing)) => {
            for m in missing {
                eprintln!("warning: {m} on this machine (the job's nodes may have it; its `ijepa run` refuses to start if not)");
            }
            study
        }
        Err(diags) => {
            print_diagnostics(diags);
            return Ok(ExitCode::FAILURE);
        }
    };
    ijepa::outputs::check(out.as_deref(), "--out", &[file], Some(ijepa::outputs::OutKind::Script))?;
    // what the job's `ijepa run` (here, with the default --reports-dir) would refuse is
    // refused before it queues, and the file's warnings are said now, as `plan` says them
    let folders = Folders { runs_dir: runs_dir.to_path_buf(), reports_dir: PathBuf::from(ijepa_reports::DEFAULT_OUT) };
    let how = "; the job's report goes to reports-out/ of this folder: give --runs-dir a folder that does not hold it";
    folders.check().and_then(|()| folders.check_reports(&study, how)).map_err(|e| format!("the job's `ijepa run` would stop at once: {e}"))?;
    for w in study.warnings() {
        eprintln!("warning: {w}");
    }
    let exp = launch::one_allocation(&study)?;
    launch::write_sbatch(&exp, file, runs_dir, out, submit)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_import_yaml(file: &std::path::Path, name: Option<String>, out: Option<PathBuf>) -> CmdResult {
    // (no existing file is replaced, below: an experiment file holds a person's edits)
    ijepa::outputs::check(out.as_deref(), "--out", &[file], None)?;
    if let Some(o) = out.as_deref().filter(|o| std::fs::metadata(o).is_ok_and(|m| m.len() > 0)) {
        return Err(format!("--out {} exists: import-yaml does not replace an experiment file (it may hold your edits); remove it or choose another path", o.display()).into());
    }
    // at most one byte past the bound is read (the official configs are a few kilobytes):
    // `/dev/zero` is refused as too large, a pipe (`<(curl ...)`) is read, a folder refused
    if std::fs::metadata(file).is_ok_and(|m| m.is_dir()) {
        return Err(format!("reading {}: a folder (a YAML config is a text file)", file.display()).into());
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(std::fs::File::open(file).map_err(|e| format!("reading {}: {e}", file.display()))?, ijepa_dsl::MAX_FILE_BYTES + 1), &mut bytes)
        .map_err(|e| format!("reading {}: {e}", file.display()))?;
    if bytes.len() as u64 > ijepa_dsl::MAX_FILE_BYTES {
        return Err(format!("reading {}: larger than the {} bytes a config may have", file.display(), ijepa_dsl::MAX_FILE_BYTES).into());
    }
    let text = String::from_utf8(bytes).map_err(|e| format!("reading {}: not UTF-8 text ({e})", file.display()))?;
    let name = name.unwrap_or_else(|| ijepa_dsl::import_yaml::default_name(file));
    let at = out.as_deref().map(|o| o.display().to_string());
    let kdl = ijepa_dsl::import_yaml::yaml_to_kdl_at(&text, &file.display().to_string(), &name, at.as_deref())?;
    // values the YAML reader takes as they are (a negative lr, ipe_scale 0, a patch that does
    // not divide the crop) are the language's to judge: an experiment `check` would refuse is
    // not written
    if let Err(d) = ijepa_dsl::parse_str(&format!("{} (imported)", file.display()), &kdl) {
        return Err(format!(
            "{} converts to an experiment the language refuses (nothing written):\n{}",
            file.display(),
            d.render_plain()
        )
        .into());
    }
    match out {
        Some(out) => {
            // the folder of `--out` is made, as `export` and `import-checkpoint` do
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| format!("making {}: {e}", dir.display()))?;
            }
            std::fs::write(&out, &kdl).map_err(|e| format!("writing {}: {e}", out.display()))?;
            println!("wrote {} (check it with `ijepa check {}`)", out.display(), out.display());
        }
        None => print!("{kdl}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_eval(file: &std::path::Path, point: Option<&str>, checkpoint: PathBuf, runs_dir: &std::path::Path) -> CmdResult {
    let mut exp = match load(file, point, Inputs::Eval) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    if let Some(w) = precision::resolve_experiment(&mut exp)?.warning {
        eprintln!("warning: {w}");
    }
    if exp.evals.is_empty() {
        return Err(format!("{} has no `eval` block: nothing to evaluate", file.display()).into());
    }
    // what the file's evaluations warn of (a fine-tuning warm-up that never reaches its peak, a
    // `min-lr` above its rate),
    // as `run` says it
    for w in exp.evals.iter().flat_map(|c| c.warnings()) {
        eprintln!("warning: {w}");
    }
    let dev = device::resolve(&exp.device)?;
    // a sweep point's baselines are the study's, shared by its points (as `ijepa run` keeps them)
    let meta = match point {
        Some(want) => {
            let study = load_study_for_eval(file).map_err(|_| format!("reading {} again", file.display()))?.0;
            let varied = study.points.iter().find(|p| p.name == want).map(|p| p.varied.clone()).unwrap_or_default();
            // (another point's checkpoint would be filed under this point's values)
            stages::check_checkpoint_point(&study.points, want, &checkpoint, runs_dir)?;
            stages::EvalMeta { experiment: study.name, varied }
        }
        None => stages::EvalMeta { experiment: exp.name.clone(), varied: Default::default() },
    };
    stages::run_evals(&exp, &meta, &stages::Source { checkpoint, pretrain_dir: None }, runs_dir, dev)?;
    Ok(ExitCode::SUCCESS)
}

fn cmd_report(runs_dir: &std::path::Path, out: &std::path::Path) -> CmdResult {
    // never into the runs folder, inside it or inside a stage folder (checked first, and
    // again under the folder's lock, where a study's report marker there is removed)
    ijepa_reports::check_out(runs_dir, out).map_err(|e| e.to_string())?;
    let registry = ijepa_reports::load_registry(runs_dir)?;
    for e in &registry.unreadable {
        eprintln!("warning: left out of the report: {e}");
    }
    if let Some(w) = registry.no_runs_warning() {
        eprintln!("warning: {w}");
    }
    // the folder's lock, as a study's report stage takes it: two writers of one report folder
    // (this and a running study's report stage) wait for each other instead of interleaving
    let _lock = ijepa_engine::run_dir::StageLock::acquire_within(out, std::time::Duration::from_secs(30))?;
    ijepa_reports::claim_out(runs_dir, out)?;
    let files = ijepa_reports::write_report(&registry, out)?;
    println!("{}", files.summary(runs_dir, out));
    Ok(ExitCode::SUCCESS)
}

/// What `check` says of a study's sweep: its points and what they vary (the settings before
/// it are the experiment's, which the points change).
fn sweep_summary(study: &ijepa_dsl::Study) -> String {
    let mut varied: Vec<&str> = Vec::new();
    for p in &study.points {
        for k in p.varied.keys() {
            if !varied.contains(&k.as_str()) {
                varied.push(k);
            }
        }
    }
    if varied.is_empty() {
        return String::new();
    }
    let n = study.points.len();
    format!("; sweep of {n} point{} varying {} (the values above are the experiment's before it)", if n == 1 { "" } else { "s" }, varied.join(", "))
}

fn cmd_check(files: &[PathBuf]) -> CmdResult {
    let mut ok = true;
    for f in files {
        match load_study_checked(f) {
            Ok((study, _)) => {
                let exp = &study.base;
                let d = &exp.distributed;
                // (a preset whose numbers the file changed is not that preset: `encoder
                // "vit-tiny" width=96` read "vit-tiny 96x...")
                let preset = exp.encoder.preset_of_numbers().filter(|p| Some(*p) == exp.encoder.preset.as_deref());
                println!(
                    "ok: {} (experiment {:?}: {} {}x{}x{} patch {}, {} epoch{} of batch {}{}{})",
                    f.display(),
                    study.name,
                    preset.unwrap_or("custom ViT"),
                    exp.encoder.embed_dim,
                    exp.encoder.depth,
                    exp.encoder.num_heads,
                    exp.encoder.patch_size,
                    exp.epochs,
                    if exp.epochs == 1 { "" } else { "s" },
                    exp.data.batch_size,
                    if d.world_size() > 1 { format!(" x {} ranks ({} node(s) x {})", d.world_size(), d.nodes, d.procs_per_node) } else { String::new() },
                    sweep_summary(&study)
                );
                // (of several files, the file each warning is of: stderr read alone could not tell)
                let of = if files.len() > 1 { format!("{}: ", ijepa_engine::error::printable(&f.display().to_string())) } else { String::new() };
                for w in study.warnings() {
                    eprintln!("warning: {of}{w}");
                }
            }
            Err(_) => ok = false,
        }
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cmd_parity(fixture: &std::path::Path, weights: Option<&std::path::Path>, device: &str) -> CmdResult {
    // exit 2 where no comparison was made (a fixture or --weights that cannot be read or does
    // not fit its description, a device this machine lacks): 1 is a step that differs
    let replay = device::resolve(device).map_err(|e| e.to_string()).and_then(|dev| {
        // the CPU's matrix products on the kernel a run of this model here would take (fp32)
        let products = ijepa_engine::products::choose(dev, false);
        // (a libtorch failure in the replay is no comparison either: it went to the last net
        // under every command, exit 1, read as a step that differs)
        ijepa_engine::guard::torch("the parity replay", || ijepa_recipes::parity::run_any_on(fixture, Default::default(), weights, dev))
            .map(|r| (dev, r, products))
            .map_err(|e| e.to_string())
    });
    let (dev, r, products) = match replay {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    let mut on = device::describe(dev);
    if let Some(p) = products {
        on = format!("{on} (matrix products: {})", p.products.name());
    }
    match weights {
        Some(w) => println!("parity against {} on {on} (initial weights from {})", fixture.display(), w.display()),
        None => println!("parity against {} on {on}", fixture.display()),
    }
    for (group, worst, n, pass) in r.by_group() {
        let tol = ijepa_recipes::parity::TOLERANCES.iter().find(|t| t.0 == group).map(|t| t.1);
        let mut tol = tol.map(|t| format!("{:.0e} of each tensor's scale", t.rel)).unwrap_or_default();
        if group == "updates" {
            // the worst plain error can pass: see `compare_first_adamw_update`
            tol.push_str(", per element plus two float32 roundings and the gradient tolerance carried through AdamW's first step");
        }
        // the per-element share is what "ok" means (first: the updates' plain error, 0.5 beside
        // a tolerance of 1e-4, read as a failure passed over)
        let share = r.worst_of_tolerance(group);
        println!(
            "  {group:<20} {n:>4} tensors  worst element at {share:.2} of its tolerance  (tolerance {tol}; worst plain relative err {worst:.3e})  {}",
            if pass { "ok" } else { "FAIL" }
        );
    }
    for c in r.comparisons.iter().filter(|c| !c.pass).take(10) {
        // (the loss is its own group: "mismatch: loss loss")
        let what = if c.name == c.group { c.name.clone() } else { format!("{} {}", c.group, c.name) };
        // (an update's relative error is of its scale or, where larger, of the float32
        // rounding of its weight over the tolerance: "X = Y of its scale S" said a Y that was
        // not X / S)
        let of = c.max_abs / c.rel;
        let of = if c.rel.is_finite() && c.rel > 0.0 && (of - c.scale).abs() > 1e-9 * of {
            format!("{of:.3e} (its weight's float32 rounding over the tolerance; its scale is {:.3e})", c.scale)
        } else {
            format!("its scale {:.3e}", c.scale)
        };
        println!("  mismatch: {what} max abs err {:.3e} = {:.3e} of {of}", c.max_abs, c.rel);
    }
    println!("  loss ours {:.8} official {:.8}", r.loss.0, r.loss.1);
    println!("{}", if r.pass() { "PASS" } else { "FAIL" });
    Ok(if r.pass() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cmd_estimate(file: &std::path::Path, point: Option<&str>, opts: ijepa::estimate::Options) -> CmdResult {
    let exp = match load(file, point, Inputs::Unchecked) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    println!("{}", ijepa::estimate::estimate(&exp, &opts)?);
    Ok(ExitCode::SUCCESS)
}

/// The most images `ijepa masks` samples the masks of (`--batches` x the batch size).
const MAX_MASK_IMAGES: usize = 10_000_000;

fn cmd_masks(file: &std::path::Path, point: Option<&str>, batches: usize, batch_size: Option<usize>, png: Option<PathBuf>) -> CmdResult {
    ijepa::outputs::check(png.as_deref(), "--png", &[file], Some(ijepa::outputs::OutKind::Png))?;
    if let Some(p) = png.as_deref().filter(|p| !p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))) {
        return Err(format!("--png {} writes a PNG image: name it with .png", p.display()).into());
    }
    let exp = match load(file, point, Inputs::Unchecked) {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    // each recipe says what its masks are (I-JEPA: the sampler's statistics and drawing; MAE:
    // the random mask's counts); one without masks is described by its views
    let entry = ijepa_engine::recipe::entry(&exp.recipe)?;
    let Some(report) = entry.masks else {
        let views = (entry.build)(&exp, tch::Device::Cpu, 0, 1)?.view_sizes(&exp.data)?;
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
    };
    if let Some(p) = png.as_deref() {
        ijepa::outputs::try_writing(p)?;
    }
    // training draws each step's masks for the global batch and truncates them over it
    let query = ijepa_engine::recipe::MaskQuery { batches, batch_size: batch_size.unwrap_or(exp.global_batch()), png: png.as_deref() };
    // the statistics keep a few numbers per image: a count past this (which settles nothing
    // the default's hundreds of thousands do not) would exhaust memory or time
    let images = query.batches.saturating_mul(query.batch_size);
    if images > MAX_MASK_IMAGES {
        return Err(format!(
            "--batches {} x batch size {} samples the masks of {images} images, more than the {MAX_MASK_IMAGES} `ijepa masks` samples at most (its statistics settle within thousands): lower --batches or --batch-size",
            query.batches, query.batch_size
        )
        .into());
    }
    println!("{}", report(&exp, &query)?);
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
