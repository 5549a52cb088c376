//! The executor: runs a [`Plan`] stage by stage in topological order, skipping finished stages
//! and resuming interrupted ones; `--only`, `--force` and `--dry-run` select and preview.
//! In a distributed run every rank takes part in each pretraining; rank 0 alone then runs the
//! evaluations and the report (they read the checkpoint rank 0 wrote).

use ijepa_dsl::config::{DistBackend, Experiment};
use ijepa_engine::data::Fingerprints;
use ijepa_engine::device;
use ijepa_engine::dist::{Backend, DistEnv, ProcessGroup};
use ijepa_engine::plan::{Plan, StageKind, Status, Task, REPORT_MARKER};
use ijepa_engine::run_dir::StageLock;
use ijepa_engine::stages::{self, EvalCache, EvalMeta};
use ijepa_engine::train::{self, RunOptions};
use petgraph::graph::NodeIndex;
use petgraph::visit::EdgeRef;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How to run a plan.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Root of the run registry.
    pub runs_dir: PathBuf,
    /// Print what would run; run nothing.
    pub dry_run: bool,
    /// Run only the stages these patterns select (see [`Plan::select`]).
    pub only: Vec<String>,
    /// Rerun selected stages even when done (their old folder is kept, renamed).
    pub force: bool,
    /// The experiment file's text (saved in each pretraining folder).
    pub source: String,
    /// The experiment file (its plan is recorded under its name: [`ijepa_schema::PlannedStages`]).
    pub file: PathBuf,
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Warns when `exp` asks for several processes and this one, started without launcher
/// variables, would train alone (`ijepa run` and its `--dry-run` alike).
pub fn warn_if_alone(exp: &Experiment) {
    let want = exp.distributed.world_size();
    if want > 1 {
        // (SLURM's variables without SLURM_NTASKS: an sbatch script, not an srun task)
        let which = if std::env::var_os("SLURM_PROCID").is_some() {
            "SLURM's variables without SLURM_NTASKS (an sbatch script itself, not a task srun started)"
        } else {
            "no launcher variables"
        };
        tracing::warn!(
            "{} asks for {want} processes (distributed block); this is one process with {which}, so it trains alone: start the ranks with `ijepa launch`, torchrun or `ijepa slurm`",
            exp.name
        );
    }
}

/// The process group of this process when it was started as one rank of several (torchrun,
/// SLURM or `ijepa launch` variables), for the experiment's backend and timeout.
pub fn process_group(exp: &Experiment, dev: tch::Device) -> Result<Option<Arc<ProcessGroup>>> {
    let want = exp.distributed.world_size();
    let Some(env) = DistEnv::from_env()? else {
        warn_if_alone(exp);
        return Ok(None);
    };
    // (as DistEnv reads them: an empty RANK is unset, and SLURM's variables are read; it was
    // set here, and SLURM_CPUS_PER_TASK and the warning below were passed over)
    let by_slurm = !ijepa_engine::dist::torchrun_vars_set(|k| std::env::var(k).ok());
    share_cores(&env, by_slurm);
    if want == 1 && env.world_size > 1 && by_slurm && env.rank == 0 {
        // (`ijepa run` in an sbatch script of several tasks, without srun: it waited for
        // peers that never came, saying only that it joined)
        tracing::warn!(
            "{} asks for one process (no distributed block), but SLURM's variables say {} tasks (SLURM_NTASKS): this process joins them as rank {}; \
             in an sbatch script start every task with `srun` (the script itself is SLURM_PROCID 0 of all of them, and waits for peers that never come)",
            exp.name, env.world_size, env.rank
        );
    }
    // (rank 0's word for the run: every rank said it)
    if want != 1 && want != env.world_size && env.rank == 0 {
        tracing::warn!(
            "{} asks for {want} processes (distributed: {} node(s) x {}), this run has {}; \
             the global batch is {} x {}",
            exp.name, exp.distributed.nodes, exp.distributed.procs_per_node, env.world_size, env.world_size, exp.data.batch_size
        );
    }
    // a world of one process needs no group: the run is a plain one (one task of a SLURM job,
    // `torchrun --nproc-per-node 1`); it hosted a rendezvous on a port fixed by the job's id,
    // and a second run in the same job could not bind it
    if env.world_size == 1 {
        tracing::debug!("a world of one process: no process group");
        return Ok(None);
    }
    let backend = match exp.distributed.backend {
        DistBackend::Gloo => Backend::Gloo,
        DistBackend::Nccl => Backend::Nccl,
        DistBackend::Auto if dev.is_cuda() => Backend::Nccl,
        DistBackend::Auto => Backend::Gloo,
    };
    let timeout = Duration::from_secs(exp.distributed.timeout_s);
    tracing::info!(
        "rank {} of {}: joining {}:{} ({}, timeout {} s)",
        env.rank,
        env.world_size,
        env.master_addr,
        env.master_port,
        backend.name(),
        timeout.as_secs()
    );
    let pg = ProcessGroup::new(&env, backend, timeout)?;
    same_launch(&pg, &env)?;
    Ok(Some(Arc::new(pg)))
}

/// This rank's share of the node's cores, when its launcher set no OMP_NUM_THREADS (torchrun
/// and `ijepa launch` do; srun does not, and each rank of a node took every core, the ranks of
/// a CPU job slowed many times over): SLURM_CPUS_PER_TASK for a rank SLURM started, else the
/// cores divided by the ranks on this node.
fn share_cores(env: &DistEnv, by_slurm: bool) {
    if omp_num_threads().is_some() {
        return;
    }
    let given = std::env::var("SLURM_CPUS_PER_TASK").ok().filter(|_| by_slurm).and_then(|v| v.trim().parse::<usize>().ok()).filter(|&n| n > 0);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = given.unwrap_or((cores / env.local_world_size).max(1));
    tch::set_num_threads(threads as i32);
    if given.is_none() {
        let _ = COMPUTED_SHARE.set(cores);
    }
    tracing::info!(
        "rank {}: {threads} thread(s), {} (OMP_NUM_THREADS is not set)",
        env.rank,
        if given.is_some() { "SLURM_CPUS_PER_TASK".to_string() } else { format!("{cores} cores shared by {} rank(s) on this node", env.local_world_size) }
    );
}

/// OMP_NUM_THREADS when it is a count of threads (or OpenMP's list, one count per level);
/// anything else (`abc`, 0, nothing: OpenMP ignores it, and each rank took every core) is
/// none, with a word.
pub fn omp_num_threads() -> Option<String> {
    std::env::var("OMP_NUM_THREADS").ok().filter(|v| {
        let ok = v.split(',').all(|n| n.trim().parse::<usize>().is_ok_and(|n| n > 0));
        if !ok {
            tracing::warn!("OMP_NUM_THREADS={v:?} is not a number of threads: ignored, each rank takes its share of the cores");
        }
        ok
    })
}

/// Writes what `plan` is ([`ijepa_schema::PlannedStages`]) into its study's folder.
fn record_plan(plan: &Plan, opts: &ExecOptions) -> Result<()> {
    let mut experiments: Vec<String> = plan.points.iter().map(|p| p.experiment.name.clone()).collect();
    experiments.push(plan.name.clone());
    experiments.sort();
    experiments.dedup();
    let stages = plan
        .graph
        .node_weights()
        .filter(|s| s.kind() != StageKind::Report)
        .map(|s| ijepa_schema::PlannedStages::stage_of(&s.dir))
        .collect();
    let varied = plan
        .graph
        .node_weights()
        .filter(|s| s.kind() == StageKind::Eval && !s.varied.is_empty())
        .map(|s| (ijepa_schema::PlannedStages::stage_of(&s.dir), s.varied.clone()))
        .collect();
    let reads = plan
        .graph
        .node_indices()
        .filter(|&n| plan.graph[n].kind() == StageKind::Eval)
        .filter_map(|n| {
            let pretrain = plan.inputs(n).into_iter().find(|&i| plan.graph[i].kind() == StageKind::Pretrain)?;
            Some((ijepa_schema::PlannedStages::stage_of(&plan.graph[n].dir), ijepa_schema::PlannedStages::stage_of(&plan.graph[pretrain].dir)))
        })
        .collect();
    let record = ijepa_schema::PlannedStages { file: opts.file.display().to_string(), experiments, stages, varied: Some(varied), reads: Some(reads) };
    let dir = opts.runs_dir.join(&plan.name);
    let path = ijepa_schema::PlannedStages::path(&dir, &opts.file);
    // (the same record is not written again: a finished read-only runs folder is run; nor is
    // one that names the file otherwise, `./x.kdl` for `x.kdl`: the report, which reads it,
    // was written again)
    let same = ijepa_schema::read_file(&path).ok().and_then(|b| serde_json::from_slice::<ijepa_schema::PlannedStages>(&b).ok()).is_some_and(|r| r.experiments == record.experiments && r.stages == record.stages && r.varied == record.varied);
    if !same {
        let written = std::fs::create_dir_all(&dir).map_err(|e| ijepa_engine::Error::io(&dir, e)).and_then(|()| ijepa_engine::run_dir::write_json(&path, &record));
        if let Err(e) = written {
            tracing::warn!("the record of this file's plan was not written ({e}): `ijepa report` of the folder may show an earlier version of it");
        }
    }
    // the file's record in another study's folder is from when it named that study (renamed
    // since): it now plans none of that study's stages, which are an earlier version's (the
    // report showed both studies as current); looked for also where this record was written
    // before (a run stopped between the two writes left the old one)
    // (another folder on disk, not just by its name: a link to the study's folder, or its name
    // in another case on a case-insensitive disk, is this folder, whose record was just written)
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (std::os::unix::fs::MetadataExt::dev(&m), std::os::unix::fs::MetadataExt::ino(&m)));
    let this = id(&dir);
    let others = std::fs::read_dir(&opts.runs_dir).into_iter().flatten().flatten().map(|e| e.path()).filter(|d| d.is_dir() && *d != dir && id(d) != this);
    for old in others.map(|d| ijepa_schema::PlannedStages::path(&d, &opts.file)) {
        let Some(mut earlier) = ijepa_schema::read_file(&old).ok().and_then(|b| serde_json::from_slice::<ijepa_schema::PlannedStages>(&b).ok()) else { continue };
        if earlier.stages.is_empty() {
            continue;
        }
        earlier.stages.clear();
        if let Err(e) = ijepa_engine::run_dir::write_json(&old, &earlier) {
            tracing::warn!("the record of this file's plan under its earlier name was not updated ({e}): `ijepa report` of the folder may show that study as current too");
        }
    }
    Ok(())
}

/// The variable by which `ijepa launch` gives its ranks the machine's cores where it shared
/// them out itself (no OMP_NUM_THREADS given): rank 0 evaluates on all of them (see
/// [`alone_threads`]).
pub const NODE_THREADS: &str = "IJEPA_NODE_THREADS";

/// The threads rank 0 of a run on one machine takes where it runs a stage alone (evaluations,
/// reports: the other ranks have no such stage, and wait for the next pretraining or have
/// left): the machine's cores, where the rank's share of them was computed for it (by `ijepa
/// launch`, or by [`share_cores`] for a launcher that set none, not SLURM's); `None` where
/// OMP_NUM_THREADS or SLURM chose the threads (the other cores may be another task's). It
/// evaluated on its share (1 of 2 cores), slower, and with numbers a thread count apart from
/// a one-process run's.
fn alone_threads() -> Option<i32> {
    let given = std::env::var(NODE_THREADS).ok().and_then(|v| v.trim().parse::<i32>().ok()).filter(|&n| n > 0);
    given.or_else(|| COMPUTED_SHARE.get().map(|&cores| cores as i32))
}

/// The machine's cores, where [`share_cores`] shared them out (set once, in the process group's
/// start).
static COMPUTED_SHARE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();

/// The variable that gives each rank of one `ijepa launch` the launch's identity, which the
/// ranks compare once their group formed ([`same_launch`]).
pub const LAUNCH_ID: &str = "IJEPA_LAUNCH_ID";

/// Every rank of the group was started by the same `ijepa launch` (its [`LAUNCH_ID`]; none
/// for ranks of torchrun or SLURM): two launches given one `--master-port` formed groups of
/// each other's ranks, which then failed on another cause ("the ranks do not train one
/// experiment") or, for one file, trained on.
fn same_launch(pg: &ProcessGroup, env: &DistEnv) -> Result<()> {
    let mine = std::env::var(LAUNCH_ID).ok().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) as i64;
    let all = pg.all_gather(&tch::Tensor::from_slice(&[mine]).f_to_device(pg.device())?)?;
    let all = Vec::<i64>::try_from(all.f_to_device(tch::Device::Cpu)?.f_reshape([-1])?)?;
    let others: Vec<String> = all.iter().enumerate().filter(|(_, id)| **id != mine).map(|(r, _)| r.to_string()).collect();
    if others.is_empty() {
        return Ok(());
    }
    Err(format!(
        "rank {} of {}: rank(s) {} of this process group were started by another launch: two `ijepa launch` (or a launch and another job) share the rendezvous {}:{}; give each its own --master-port, or none for a free one",
        env.rank,
        env.world_size,
        others.join(", "),
        env.master_addr,
        env.master_port
    )
    .into())
}

/// The device of this rank: the GPU of its local rank ([`DistEnv::gpu`]) when the
/// experiment's device is CUDA and the process is one rank of a launcher's world (a world of
/// one process keeps the GPU its file names, `cuda:N`), else the experiment's device.
pub fn rank_device(exp: &Experiment) -> Result<tch::Device> {
    let dev = device::resolve(&exp.device)?;
    match (dev, DistEnv::from_env()?) {
        // (a world of one process, `torchrun --nproc-per-node 1` or `srun -n1`, computes on the
        // GPU its file names: `cuda:3` trained on GPU 0 of a shared machine, recorded so)
        (tch::Device::Cuda(_), Some(env)) if env.world_size == 1 && exp.device.starts_with("cuda:") => Ok(dev),
        (tch::Device::Cuda(_), Some(env)) => Ok(tch::Device::Cuda(env.gpu()?)),
        _ => Ok(dev),
    }
}

/// The inputs of `n` that are neither done nor already run by this invocation.
fn missing_inputs(plan: &Plan, n: NodeIndex, done: &BTreeSet<NodeIndex>) -> Vec<NodeIndex> {
    plan.inputs(n).into_iter().filter(|i| !done.contains(i) && plan.status(*i) != Status::Done).collect()
}

/// Every stage downstream of `n`.
fn descendants(plan: &Plan, n: NodeIndex) -> BTreeSet<NodeIndex> {
    let mut out = BTreeSet::new();
    let mut todo = vec![n];
    while let Some(m) = todo.pop() {
        for e in plan.graph.edges_directed(m, petgraph::Direction::Outgoing) {
            if out.insert(e.target()) {
                todo.push(e.target());
            }
        }
    }
    out
}

/// The `--force` run a command goes on with ([`forced_run`]).
struct Forced {
    /// Its record's file.
    path: PathBuf,
    /// The record: the stages it forces, when it began, those it ran again.
    record: ijepa_schema::ForcedRun,
    /// It is an earlier command's, stopped before its end, not this one's.
    earlier: bool,
    /// This process keeps the record (the lead process of a run, not a dry run).
    writes: bool,
}

impl Forced {
    /// Whether the `--force` run this command goes on with ran `stage` again (or it diverged
    /// again there): it is not forced a second time.
    fn ran(&self, stage: &ijepa_engine::plan::Stage) -> bool {
        self.earlier && self.record.done.contains(&forced_key(stage))
    }

    /// Records that this command ran `stage` (or that it diverged): a command that goes on with
    /// this one does not force it again.
    fn mark(&mut self, stage: &ijepa_engine::plan::Stage) {
        let key = forced_key(stage);
        if !self.writes || self.record.done.contains(&key) {
            return;
        }
        self.record.done.push(key);
        // (written at the first stage it runs: a run refused before any leaves no record)
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let written = std::fs::create_dir_all(dir).map_err(|e| ijepa_engine::Error::io(dir, e)).and_then(|()| ijepa_engine::run_dir::write_json(&self.path, &self.record));
        if let Err(e) = written {
            tracing::warn!("this `--force` run's record {} could not be updated ({e}): stopped before its end, the same command would force {} again", self.path.display(), stage.id);
        }
    }

    /// Every selected stage was reached (a point that diverged too): the record is removed, and
    /// the next `--force` of these stages forces every one.
    fn through(&self) {
        if !self.writes {
            return;
        }
        match std::fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => tracing::warn!(
                "{} could not be removed ({e}): the next `--force` of these stages goes on with this one, forcing none it ran again; remove it to force them",
                self.path.display()
            ),
            _ => {}
        }
    }
}

/// How a `--force` record names a stage: `<id> <hash>`.
fn forced_key(stage: &ijepa_engine::plan::Stage) -> String {
    format!("{} {}", stage.id, stage.hash)
}

/// The `--force` run this command goes on with: an earlier one of the same stages that was
/// stopped before its end ([`ijepa_schema::ForcedRun`], said), else this one, recorded for the
/// same command to go on with if it is stopped too (by the lead process of a run, not a dry
/// run). `None` without `--force`; the other ranks of a run follow the lead's reading.
fn forced_run(plan: &Plan, selected: &[NodeIndex], opts: &ExecOptions, lead: bool) -> Option<Forced> {
    if !opts.force {
        return None;
    }
    let now = std::time::SystemTime::now();
    let dir = opts.runs_dir.join(&plan.name);
    let stages: Vec<String> = selected.iter().map(|&n| forced_key(&plan.graph[n])).collect();
    let path = ijepa_schema::ForcedRun::path(&dir, &stages);
    let writes = lead && !opts.dry_run;
    if let Some(earlier) = ijepa_schema::ForcedRun::read(&dir, &stages).filter(|_| lead) {
        let ago = earlier.began_at().and_then(|b| now.duration_since(b).ok()).map_or(0, |d| d.as_secs());
        tracing::info!(
            "--force: going on with the `--force` run of these stages begun {} ago and stopped before its end: the {} stage(s) it ran again are not forced a second time (remove {} to force every one)",
            span(ago),
            earlier.done.len(),
            path.display()
        );
        return Some(Forced { path, record: earlier, earlier: true, writes });
    }
    // (recorded once it has run a stage: [`Forced::mark`])
    let began = now.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
    Some(Forced { path, record: ijepa_schema::ForcedRun { stages, began, done: Vec::new() }, earlier: false, writes })
}

/// A span of seconds as a message says it: `40 s`, `12 min`, `3 h 5 min`, `2 days`.
fn span(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 2 * 86400 => format!("{} h {} min", s / 3600, s / 60 % 60),
        s => format!("{} days", s / 86400),
    }
}

/// Whether the stage of `dir` finished after `began`: its record (`manifest.json`,
/// `eval.json`) was written since.
fn finished_since(dir: &Path, began: std::time::SystemTime) -> bool {
    [ijepa_schema::MANIFEST, ijepa_schema::EVAL]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).and_then(|m| m.modified()).ok())
        .any(|t| t >= began)
}

/// Moves a finished stage's folder aside for `--force`: `.<folder>.old-<unix seconds>` beside
/// it (hidden: reports do not read it).
fn set_aside(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("stage");
    let mut aside = dir.with_file_name(format!(".{name}.old-{secs}"));
    for i in 2.. {
        if !aside.exists() {
            break;
        }
        aside = dir.with_file_name(format!(".{name}.old-{secs}-{i}"));
    }
    std::fs::rename(dir, &aside).map_err(|e| format!("--force: moving {} aside: {e}", dir.display()))?;
    tracing::info!("--force: kept the previous {} as {}", dir.display(), aside.display());
    Ok(())
}

/// Creates `dir` if needed and checks a file can be written in it (a probe, removed).
fn writable_folder(dir: &std::path::Path) -> Result<()> {
    let probe = dir.join(".ijepa-write-probe");
    std::fs::create_dir_all(dir)
        .and_then(|_| std::fs::write(&probe, b""))
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| format!("the report folder {} cannot be written ({e}); give another --reports-dir", dir.display()).into())
}

/// Refuses a plan whose stages go into an experiment folder that holds the pretraining of
/// another study: a plain experiment named like a sweep point of another file
/// (`s3-lr-peak-0.001`), or a sweep whose point is named like an experiment of its own. The two
/// shared one folder, and the report each wrote left out the other's stages as "not of this
/// version of the study". (Manifests of versions that recorded no study are not read so.)
pub fn shares_no_folder(plan: &Plan) -> Result<()> {
    let folders: BTreeSet<&Path> = plan.graph.node_weights().filter(|s| s.kind() != StageKind::Report).filter_map(|s| s.dir.parent()).collect();
    for folder in folders {
        let Ok(entries) = std::fs::read_dir(folder) else { continue };
        // (the first by name, the same on every run)
        let other = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("pretrain-"))
            .filter_map(|e| ijepa_schema::read_manifest(&e.path()).and_then(|m| m.study).map(|s| (s, e.file_name().to_string_lossy().into_owned())))
            .filter(|(s, _)| *s != plan.name)
            .min();
        if let Some((study, stage)) = other {
            let point = match plan.points.iter().find(|p| p.experiment.name == folder.file_name().unwrap_or_default().to_string_lossy()) {
                Some(p) if !p.varied.is_empty() => format!("its sweep point {:?}", p.name),
                _ => "its stages".to_string(),
            };
            return Err(format!(
                "{} holds a pretraining of the experiment {study:?} ({stage}), and {} of {:?} would go there too: the two would share the folder, and each one's report would leave out the other's stages; rename this experiment (or move that folder away)",
                folder.display(),
                point,
                plan.name
            )
            .into());
        }
    }
    Ok(())
}

/// Refuses a plan whose finished pretraining, run or read by one of the stages `selected`,
/// holds a final checkpoint other than the one it wrote ([`ijepa_engine::plan::replaced_final`]),
/// unless `--force` trains it again (`forced`: it is selected). Its evaluations were skipped as
/// done, and the report showed what they had measured on weights no longer there.
pub fn finals_are_their_runs(plan: &Plan, selected: &[NodeIndex], forced: bool) -> Result<()> {
    // the selected stages and every stage they read, through the evaluations a report reads
    let mut read: BTreeSet<NodeIndex> = BTreeSet::new();
    let mut todo: Vec<NodeIndex> = selected.to_vec();
    while let Some(n) = todo.pop() {
        if read.insert(n) {
            todo.extend(plan.inputs(n));
        }
    }
    for &n in read.iter().filter(|&&n| plan.graph[n].kind() == StageKind::Pretrain && !(forced && selected.contains(&n))) {
        let stage = &plan.graph[n];
        if let Some((now, recorded)) = ijepa_engine::plan::replaced_final(&stage.dir) {
            // (a header's text may be anything: cut by characters)
            let short = |h: &str| if h.is_empty() { "none".to_string() } else { format!("{}...", h.chars().take(12).collect::<String>()) };
            return Err(format!(
                "{} of the pretraining {} (checksum {}, the manifest records {}: another run's weights copied or moved over it?) {}",
                stage.dir.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::FINAL).display(),
                stage.id,
                short(&now),
                short(&recorded),
                stages::not_the_runs_final(&stage.dir)
            )
            .into());
        }
    }
    Ok(())
}

/// What decides a data block's training split (as `open_dataset` reads it): a sweep over the
/// batch size or the crop opens one split, not one a point.
fn split_key(data: &ijepa_dsl::config::DataConfig) -> Result<String> {
    Ok(serde_json::to_string(&(&data.dataset, &data.source, &data.limit, &data.subset, &data.test_root, &data.on_error))?)
}

/// What the stages a run skips as done compare their data with ([`changed_data`]), opened and
/// fingerprinted once a data block ([`split_key`]; `None`: a split that cannot be opened here,
/// which is not compared), and the blocks whose change was said.
#[derive(Default)]
struct DataNow {
    train: std::collections::HashMap<String, Option<Arc<dyn ijepa_engine::data::Dataset>>>,
    /// The training split's distinct files' fingerprints and the test split's, by block.
    fingerprints: std::collections::HashMap<String, (Option<Fingerprints>, Option<Fingerprints>)>,
    /// A pretraining's images (count, fingerprints) by block and monitor settings.
    trained: std::collections::HashMap<String, Option<(u64, Fingerprints)>>,
    /// Why a block's split cannot be opened now, by block (the first of its two splits' errors).
    unopened: std::collections::HashMap<String, String>,
    said: BTreeSet<String>,
}

impl DataNow {
    fn train(&mut self, key: &str, data: &ijepa_dsl::config::DataConfig) -> Option<Arc<dyn ijepa_engine::data::Dataset>> {
        if let Some(t) = self.train.get(key) {
            return t.clone();
        }
        let t = self.opened(key, ijepa_engine::data::open_dataset(data, ijepa_engine::data::Split::Train));
        self.train.insert(key.to_string(), t.clone());
        t
    }

    fn fingerprints(&mut self, key: &str, data: &ijepa_dsl::config::DataConfig) -> (Option<Fingerprints>, Option<Fingerprints>) {
        if let Some(f) = self.fingerprints.get(key) {
            return f.clone();
        }
        let train = self.train(key, data).map(|t| Fingerprints::of(ijepa_engine::data::distinct(t).0.as_ref()));
        let test = self.opened(key, ijepa_engine::data::open_dataset(data, ijepa_engine::data::Split::Test)).map(|t| Fingerprints::of(t.as_ref()));
        self.fingerprints.insert(key.to_string(), (train.clone(), test.clone()));
        (train, test)
    }

    /// The split `opened`, or `None` with why it was not kept for the block `key`.
    fn opened<T>(&mut self, key: &str, opened: ijepa_engine::Result<T>) -> Option<T> {
        opened.map_err(|e| self.unopened.entry(key.to_string()).or_insert_with(|| e.to_string()).clone()).ok()
    }
}

/// Why the finished `stage` is of other images than its data block gives now, if it is, once a
/// block (its other stages share the cause): images added to, removed from or renamed in a
/// folder since it ran left it done without a word. A pretraining compares the count and
/// fingerprint its last checkpoint records, an evaluation the fingerprints its record holds;
/// one that records neither (an earlier version's) opens nothing. The embedded subset is not
/// compared (it is part of the program), nor the fingerprints of a training split that `limit`
/// or `subset` cuts from a folder (under `limit` the records of versions before 2026-12-07 hold
/// the whole folder's: an image added past the limit changed them), nor a low-shot
/// `split-file`'s (its probe reads the listed files alone).
fn changed_data(plan: &Plan, stage: &ijepa_engine::plan::Stage, now: &mut DataNow) -> Option<String> {
    let point = match stage.task {
        Task::Pretrain { point } | Task::Eval { point, .. } => point,
        Task::Report => return None,
    };
    let exp = &plan.points[point].experiment;
    let data = &exp.data;
    let ijepa_dsl::config::DataSource::Path(root) = &data.source else { return None };
    let key = split_key(data).ok()?;
    if now.said.contains(&key) {
        return None;
    }
    let whole = data.limit.is_none() && data.subset.is_none();
    let test_folder = data.test_root.as_deref().unwrap_or(root);
    let why = match stage.task {
        Task::Pretrain { .. } => {
            let pos = ijepa_engine::checkpoint::state::position_of(&stage.dir.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::LATEST))?;
            if pos.images == 0 && pos.data == 0 {
                return None;
            }
            let monitor = serde_json::to_string(&exp.monitor).ok()?;
            let trained = format!("{key} {monitor}");
            let counted = match now.trained.get(&trained) {
                Some(t) => t.clone(),
                None => {
                    let t = now.train(&key, data).and_then(|train| train::trained_data(exp, train, plan.world_size));
                    now.trained.insert(trained, t.clone());
                    t
                }
            };
            let Some((n, prints)) = counted else { return unopened(now, &key, stage) };
            let besides = exp.monitor.as_ref().map(|m| format!(" (besides the monitor's {} held out)", m.images)).unwrap_or_default();
            if pos.images != 0 && pos.images != n {
                format!("it trained on {} images{besides} and {} now gives {n}", pos.images, root.display())
            } else if whole && pos.data != 0 && !prints.match_id(pos.data) {
                // (a folder is known by its files' names: one rewritten in place is not noticed)
                let what = ijepa_engine::data::other_images_cause(exp.data.dataset == ijepa_dsl::config::DatasetKind::ImageFolder);
                format!("{} now gives as many training images as it trained on{besides}, but not the same ones ({what})", root.display())
            } else {
                return None;
            }
        }
        Task::Eval { eval, .. } => {
            let record = ijepa_schema::read_eval(&stage.dir)?;
            let [train_was, test_was] = record.data_fingerprints.as_ref()?;
            let (train_now, test_now) = now.fingerprints(&key, data);
            if train_now.is_none() || test_now.is_none() {
                return unopened(now, &key, stage);
            }
            let mut changed = Vec::new();
            if whole && exp.evals[eval].split_file.is_none() && train_now.is_some_and(|f| !f.match_record(train_was)) {
                changed.push(format!("its training split ({})", root.display()));
            }
            if test_now.is_some_and(|f| !f.match_record(test_was)) {
                changed.push(format!("its test split ({})", test_folder.display()));
            }
            if changed.is_empty() {
                return None;
            }
            format!("{} now give{} other images than it read", changed.join(" and "), if changed.len() == 1 { "s" } else { "" })
        }
        Task::Report => return None,
    };
    now.said.insert(key);
    let again = match stage.task {
        Task::Pretrain { .. } => "(its evaluations are set aside with it and run on the next `ijepa run`)",
        _ => "(the evaluation alone)",
    };
    Some(format!(
        "{} is done, but {why}: a stage is keyed by the data's path as written, not by the folder's contents, so its results are of the earlier images (and so may be those of the other finished stages on this data, not said again); `--force --only {}` runs it again {again}, and a pattern takes several (`--only 'pretrain*'`: every point's pretraining)",
        stage.id, stage.id
    ))
}

/// What is said of a finished `stage` whose data block (`key`) cannot be opened now (a class
/// folder added to or gone from an image folder, which the classes of the test folder no longer
/// match; a folder moved): its results are of the data it read then (it was skipped without a
/// word, where a changed image was said). Once a block; `None` where nothing failed to open.
fn unopened(now: &mut DataNow, key: &str, stage: &ijepa_engine::plan::Stage) -> Option<String> {
    let why = now.unopened.get(key)?.clone();
    now.said.insert(key.to_string());
    Some(format!(
        "{} is done, but its data cannot be read now ({why}): its results are of the data it read then (and so may be those of the other finished stages on this data, not said again); a stage that runs on it fails the same way",
        stage.id
    ))
}

/// What the evaluations `selected` (those not done) read, checked before pretraining, where
/// they stopped after it: the test split, training images `on-error "skip"` passes over, a
/// held-out part that holds out no image, fine-tuning's batch, a low-shot `split-file`.
/// `train_splits` are the training splits the pretrainings' check opened (by [`split_key`]).
/// The evaluations of a diverged pretraining, blocked unless `force` trains it again, are not.
fn check_evals_before_pretraining(plan: &Plan, selected: &[NodeIndex], force: bool, train_splits: &std::collections::HashMap<String, Arc<dyn ijepa_engine::data::Dataset>>) -> Result<()> {
    // each data block's training labels and number of classes, its splits opened once
    let mut opened: std::collections::HashMap<String, (Vec<i64>, usize)> = std::collections::HashMap::new();
    // each split file's images, read once per folder and list
    let mut lists: std::collections::BTreeMap<(String, Option<PathBuf>), Vec<usize>> = std::collections::BTreeMap::new();
    for &n in selected {
        if let Task::Eval { point, eval, .. } = plan.graph[n].task {
            if plan.status(n) == Status::Done || (!force && plan.inputs(n).into_iter().any(|m| matches!(plan.status(m), Status::Diverged { .. }))) {
                continue;
            }
            let exp = &plan.points[point].experiment;
            let data = &exp.data;
            let key = split_key(data)?;
            if !opened.contains_key(&key) {
                let test = ijepa_engine::data::open_dataset(data, ijepa_engine::data::Split::Test)
                    .map_err(|e| format!("the evaluations' test split, checked before pretraining: {e}"))?;
                // a test image that is no image (a `._` file of macOS, a web page saved as
                // .jpg) stopped the evaluations after the whole pretraining: the first bytes of
                // each are read now (a damaged JPEG or PNG is still found only when decoded)
                if let Some((n, listed)) = ijepa_engine::data::wrong_formats(test.as_ref()) {
                    return Err(format!(
                        "{n} test image(s) cannot be read as JPEG or PNG ({listed}): the evaluations read every test image and would stop on them after pretraining; convert them or remove them"
                    )
                    .into());
                }
                let train = match train_splits.get(&key) {
                    Some(train) => train.clone(),
                    None => ijepa_engine::data::open_dataset(data, ijepa_engine::data::Split::Train)?,
                };
                // training images `on-error "skip"` passes over in pretraining, which the
                // probes then stop on (after pretraining): found now
                if data.on_error == ijepa_dsl::config::OnError::Skip && data.dataset == ijepa_dsl::config::DatasetKind::ImageFolder {
                    if let Some((n, listed)) = ijepa_engine::data::unreadable_listed(train.as_ref()) {
                        return Err(format!(
                            "{n} training image(s) cannot be read ({listed}): `on-error \"skip\"` pretrains without them, but the evaluations read every training image and would stop on them after pretraining; convert them to JPEG or PNG or remove them"
                        )
                        .into());
                    }
                }
                // (the evaluations train on each file once: a `subset` may list one twice)
                let (distinct, _) = ijepa_engine::data::distinct(train.clone());
                opened.insert(key.clone(), ((0..distinct.len()).map(|i| distinct.label(i)).collect(), train.num_classes()));
            }
            let cfg = &exp.evals[eval];
            // a low-shot `split-file` (it was read after pretraining)
            // (once per folder and list: a sweep over other data settings reads the same)
            let list_key = (serde_json::to_string(&data.source)?, cfg.split_file.clone());
            if cfg.split_file.is_some() && !lists.contains_key(&list_key) {
                let split = ijepa_engine::stages::check_split_file(exp, cfg)
                    .map_err(|e| format!("the evaluation's split-file, checked before pretraining: {e}"))?;
                lists.insert(list_key.clone(), split.unwrap_or_default());
            }
            // a held-out part that holds out no image (each class's share rounds to 0; of a
            // low-shot probe's few, its split file's too): the probe stopped on it after
            // pretraining
            let (labels, classes) = &opened[&key];
            ijepa_engine::stages::check_held_out(exp, cfg, (labels, *classes), lists.get(&list_key).map(Vec::as_slice))
                .map_err(|e| format!("{}, checked before pretraining: {e}", plan.graph[n].id))?;
        }
    }
    Ok(())
}

/// Runs (or with `dry_run`, previews) the plan; `dist` is this process's group when it is one
/// rank of several.
pub fn run(plan: &Plan, opts: &ExecOptions, dist: Option<Arc<ProcessGroup>>) -> Result<()> {
    let rank = dist.as_ref().map(|pg| pg.rank()).unwrap_or(0);
    let lead = rank == 0;
    let mut selected: Vec<NodeIndex> = Vec::new();
    if opts.only.is_empty() {
        selected = plan.order();
    } else {
        for pattern in &opts.only {
            let hit = plan.select(pattern);
            if hit.is_empty() {
                let ids: Vec<&str> = plan.order().into_iter().map(|n| plan.graph[n].id.as_str()).collect();
                return Err(format!("--only {pattern:?} selects no stage; the stages are: {}", ids.join(", ")).into());
            }
            selected.extend(hit);
        }
        let order = plan.order();
        selected.sort_by_key(|n| order.iter().position(|m| m == n));
        selected.dedup();
    }
    shares_no_folder(plan)?;
    // (a dry run shows the plan, and says what the run would refuse; it then fails, so that a
    // script reading its exit status does not go on to a run that stops at once)
    let mut refused = 0usize;
    // (the refusals said, by their text: the evaluations' check opens a training split the
    // pretraining's check could not, and said and counted its refusal again)
    let mut said: BTreeSet<String> = BTreeSet::new();
    match finals_are_their_runs(plan, &selected, opts.force) {
        Err(e) if opts.dry_run => {
            tracing::warn!("the run would be refused: {e}");
            refused += 1;
        }
        r => r?,
    }
    // what rank 0 finds before any stage runs, told to every rank: the others waited in the
    // first pretraining's broadcast and blamed a closed connection (with a word on timeouts),
    // in a line printed beside rank 0's naming the cause
    // (the training splits opened are dropped before the first stage runs)
    let checked = (|| -> Result<()> {
        // a report folder that cannot be written is found now, not after hours of pretraining
        if lead && !opts.dry_run {
            // (one that is done and not forced is not written: a read-only finished study runs)
            for &n in selected.iter().filter(|&&n| matches!(plan.graph[n].task, Task::Report) && (opts.force || plan.status(n) != Status::Done)) {
                writable_folder(&plan.graph[n].dir)?;
            }
        }
        // every pretraining this command trains checks its data now (the monitor's held-out images,
        // a batch for every rank, schedules of at least one step), not when its turn comes: a
        // sweep's later point was refused after the earlier points had trained
        // (each training split, opened once: the evaluations' check below reads it too; dropped
        // before the first stage runs)
        let mut train_splits: std::collections::HashMap<String, Arc<dyn ijepa_engine::data::Dataset>> = std::collections::HashMap::new();
        // (a diverged pretraining trains again only under --force: what reads it is blocked)
        let trains = |n: NodeIndex| opts.force || !matches!(plan.status(n), Status::Done | Status::Diverged { .. });
        if lead {
            // (the processes the plan is laid out for: a dry run under a launcher has no group)
            let world = dist.as_ref().map_or(plan.world_size, |pg| pg.world_size());
            for &n in &selected {
                let Task::Pretrain { point } = plan.graph[n].task else { continue };
                if !trains(n) {
                    continue;
                }
                let exp = &plan.points[point].experiment;
                let key = split_key(&exp.data)?;
                let checked = match train_splits.get(&key) {
                    Some(train) => Ok(train.clone()),
                    None => ijepa_engine::data::open_dataset(&exp.data, ijepa_engine::data::Split::Train),
                }
                .and_then(|train| {
                    train_splits.insert(key, train.clone());
                    train::check_data(exp, train.clone(), world)?;
                    // (one stopped part way resumes only on the images it began on; one whose
                    // `latest` is gone resumes from a kept checkpoint too)
                    match plan.status(n) {
                        Status::Partial { .. } | Status::Pending => train::check_resume(exp, (&plan.graph[n].dir, &plan.graph[n].hash), train, world),
                        _ => Ok(()),
                    }
                })
                // (a size that cannot fit here: a sweep's last point was refused once the
                // points before it had trained, and a dry run did not say)
                .and_then(|()| {
                    let on_cpu = ijepa_engine::device::resolve(&exp.device).map_or(true, |d| d == tch::Device::Cpu);
                    ijepa_engine::memory::check_fits(exp, on_cpu)
                });
                match checked {
                    Err(e) if opts.dry_run => {
                        tracing::warn!("the run would be refused: {}, checked before pretraining: {e}", plan.graph[n].id);
                        said.insert(e.to_string());
                        refused += 1;
                    }
                    Err(e) => return Err(format!("{}, checked before pretraining: {e}", plan.graph[n].id).into()),
                    Ok(()) => {}
                }
            }
        }
        // the evaluations' test images are opened now, not after hours of pretraining: a missing
        // or damaged test split (or a test folder of other classes) stops the run before its
        // first step (a dry run says so)
        if lead && selected.iter().any(|&n| plan.graph[n].kind() == StageKind::Pretrain && trains(n)) {
            match check_evals_before_pretraining(plan, &selected, opts.force, &train_splits) {
                Err(e) if opts.dry_run && said.contains(&e.to_string()) => {}
                Err(e) if opts.dry_run => {
                    tracing::warn!("the run would be refused: {e}");
                    refused += 1;
                }
                r => r?,
            }
        }
        Ok(())
    })();
    if dist.is_some() && train::agree(dist.as_deref(), i64::from(checked.is_err()))? != 0 && !lead {
        return Err(ijepa_engine::Error::StoppedWithRank("rank 0 refused the run before any stage ran (its error says why), and this rank stopped with it".into()).into());
    }
    checked?;
    let mut ran: BTreeSet<NodeIndex> = BTreeSet::new();
    // when this command began: a stage `--force` finds finished after it (its record written
    // since) was run by another process meanwhile (a second `--force` moved the first one's
    // fresh folder aside while its evaluations read it)
    let began = std::time::SystemTime::now();
    // (a `--force` run of the same stages stopped before its end: this one goes on with it, and
    // what it ran again is not forced a second time)
    let mut forced = forced_run(plan, &selected, opts, lead);
    // `--force` computes the features of the evaluations it reruns again too
    let mut shared = EvalCache::default();
    shared.refresh = opts.force;
    let (mut n_run, mut n_skip, mut n_reused) = (0, 0, 0);
    // skipped as run again since this command began: by the `--force` run it goes on with, by
    // another process (they were counted as "already done")
    let (mut n_forced, mut n_other) = (0, 0);
    // pretrainings that diverged (now or in an earlier run: `(id, step)`), and the stages that
    // read them, which do not run; the report still does, with what there is
    let mut diverged: Vec<(NodeIndex, u64)> = Vec::new();
    // (of them, those that diverged in this run)
    let mut diverged_now = 0usize;
    let mut blocked: BTreeSet<NodeIndex> = BTreeSet::new();
    let downstream = |n: NodeIndex| descendants(plan, n).into_iter().filter(|&d| plan.graph[d].kind() != StageKind::Report);
    // what reads a pretraining that diverged in an earlier run and is not trained again now
    // (not selected with --force) is blocked from the start, also under `--only`
    // (one not selected whose readers are, under `--only`, is named in the run's error as one
    // selected is: its readers were skipped and the command succeeded, counted nowhere)
    let mut diverged_unselected = 0usize;
    for m in plan.graph.node_indices() {
        if let Status::Diverged { step } = plan.status(m) {
            if !(opts.force && selected.contains(&m)) {
                blocked.extend(downstream(m));
            }
            if !selected.contains(&m) && downstream(m).any(|d| selected.contains(&d)) {
                diverged.push((m, step));
                diverged_unselected += 1;
            }
        }
    }
    // (the selected stages not run for it)
    let mut n_blocked = 0usize;
    // every selected stage's inputs are done or selected, checked before anything runs (the
    // refusal came when the loop reached the stage: after the selected stages before it had
    // run, hours of pretraining, then the error), and before any stage folder's lock is taken
    // (a stage refused there left a folder of a lock alone). What reads a diverged pretraining
    // is blocked, not refused: the report reports what there is, a diverged point as a failed
    // run in its tables; a stage blocked by one that diverges now is skipped in the loop
    for &n in selected.iter().filter(|n| !blocked.contains(n)) {
        let missing: Vec<NodeIndex> = missing_inputs(plan, n, &ran).into_iter().filter(|m| !blocked.contains(m) && !selected.contains(m)).collect();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.iter().map(|m| plan.graph[*m].id.as_str()).collect();
            return Err(format!(
                "stage {} needs {} first (not done, not selected): drop --only or select them too",
                plan.graph[n].id,
                names.join(", ")
            )
            .into());
        }
    }
    // what this version of the file is, recorded once nothing refuses it (its first stage's
    // folder is its: a run refused by another's lock recorded stages it never ran, and the
    // other run's results were left out as an earlier version's)
    let mut recorded = false;
    let mut block = |n: NodeIndex, step: u64, blocked: &mut BTreeSet<NodeIndex>| {
        diverged.push((n, step));
        blocked.insert(n);
        blocked.extend(downstream(n));
    };
    // the data of the stages skipped as done, opened once a split (see `changed_data`)
    let mut data_now = DataNow::default();
    // (what the dry run listed as set aside with a stage it reruns)
    let mut dry_aside: BTreeSet<NodeIndex> = BTreeSet::new();
    // (a dry run's evaluations to compute, by hash: a later one of the same hash copies the
    // result)
    let mut will_run: std::collections::HashMap<&str, NodeIndex> = std::collections::HashMap::new();
    // (rank 0's threads: its share of the cores for a pretraining, all of them for a stage it
    // runs alone, where they were shared out for it)
    let share = tch::get_num_threads();
    let alone = if lead && dist.is_some() { alone_threads().filter(|&n| n > share) } else { None };
    for &n in &selected {
        let stage = &plan.graph[n];
        ijepa_engine::interrupt::check()?;
        if !lead && stage.kind() != StageKind::Pretrain {
            continue;
        }
        if let Some(alone) = alone {
            let want = if stage.kind() == StageKind::Pretrain { share } else { alone };
            if tch::get_num_threads() != want {
                tch::set_num_threads(want);
                tracing::debug!("rank 0: {want} thread(s) for {}", stage.id);
            }
        }
        if blocked.contains(&n) {
            if lead {
                tracing::info!("skip {}: the pretraining it reads diverged", stage.id);
            }
            n_blocked += 1;
            continue;
        }
        // one process per stage folder: rank 0 holds it while the stage runs (its other ranks
        // are the same run); taken before the folder's status is read, so a stage another
        // process is running is refused instead of resumed under it
        // (a stage the plan read as done, not rerun, is only read: another process that only
        // reads it too holds the lock for moments, so it is waited for, briefly; one to run
        // waits out a second, what `ijepa plan` probing the folder holds it for: a run that
        // met such a probe failed, naming the lock's last holder, long gone)
        let done = plan.status(n) == Status::Done && !opts.force;
        // a list file edited since the plan was made (hours ago, before an earlier point of
        // a sweep) for a stage to run: its folder is named by the earlier contents, which it
        // would not hold (refused before its folder is made)
        let changed = if done || opts.dry_run { Vec::new() } else { plan.changed_inputs(n) };
        if !changed.is_empty() {
            return Err(format!(
                "stage {}: the list file(s) {} changed since this command planned its stages (the stage's folder is named by their contents then): run the command again to plan with the lists as they are now",
                stage.id,
                changed.join(", ")
            )
            .into());
        }
        let wait = std::time::Duration::from_secs(if done { 10 } else { 1 });
        let mut lock = if lead && !opts.dry_run { Some(StageLock::acquire_within(&stage.dir, wait)?) } else { None };
        if lead && !opts.dry_run && !std::mem::replace(&mut recorded, true) {
            record_plan(plan, opts)?;
        }
        let status = plan.status(n);
        let action = match (status, opts.force) {
            // (the dry run listed it as set aside with a stage it reruns: the run runs it)
            (Status::Done | Status::Diverged { .. }, true) if dry_aside.contains(&n) => "run",
            (Status::Done, false) => "skip (done)",
            // (run again by the `--force` run this command goes on with, or diverged again there)
            (Status::Done, true) if forced.as_ref().is_some_and(|f| f.ran(stage)) => "skip (forced)",
            (Status::Done, true) => "rerun (--force)",
            (Status::Partial { .. }, _) => "resume",
            (Status::Pending, _) => "run",
            (Status::Diverged { .. }, false) => "skip (diverged)",
            (Status::Diverged { .. }, true) if forced.as_ref().is_some_and(|f| f.ran(stage)) => "skip (diverged)",
            (Status::Diverged { .. }, true) => "rerun (--force)",
        };
        if opts.dry_run {
            if lead {
                // an evaluation whose twin (the same hash under another point's id) is done, or
                // runs before it in this command, is not computed: its result is copied
                let twin = if action == "run" && !opts.force && stage.kind() == StageKind::Eval {
                    plan.done_twin(n).or_else(|| will_run.get(stage.hash.as_str()).copied())
                } else {
                    None
                };
                if matches!(action, "run" | "resume" | "rerun (--force)") && stage.kind() == StageKind::Eval {
                    will_run.entry(stage.hash.as_str()).or_insert(n);
                }
                let action = if twin.is_some() { "reuse" } else { action };
                let holder = StageLock::holder(&stage.dir);
                let busy = holder.as_ref().map(|h| format!("  (running now: {h})")).unwrap_or_default();
                // (a stage another process holds is refused by the real run, not resumed or
                // trained again: the dry run said "resume" beside "running now")
                let action = if holder.is_some() && action != "skip (done)" { "refused (in use)" } else { action };
                // a folder this process cannot read or write, where the stage runs (a folder it
                // cannot read looks empty: "run", where the run stopped at its lock file)
                let access = match action {
                    "run" | "resume" | "rerun (--force)" => ijepa_engine::run_dir::access_problem(&stage.dir, true),
                    _ => None,
                };
                let action = if access.is_some() { "refused (access)" } else { action };
                // where a pretraining resumes, as its run chooses it (each checkpoint verified,
                // read whole): it said "resume" of a damaged `latest` whose header named a step,
                // where the run started over, or went back to a kept checkpoint; and "run" of
                // one whose `latest` is gone, which resumes from a kept checkpoint
                let mut from = String::new();
                let mut unusable = None;
                let kept = || stage.dir.join(ijepa_schema::CHECKPOINTS).is_dir();
                let action = match (action, plan.experiment(n)) {
                    ("resume" | "run", Some(exp)) if stage.kind() == StageKind::Pretrain && (action == "resume" || kept()) => match train::resume_point(&stage.dir, &stage.hash, exp.epochs as u64) {
                        Ok(Ok((file, step))) => {
                            from = format!("  (from step {step}: {})", file.strip_prefix(&stage.dir).unwrap_or(&file).display());
                            "resume"
                        }
                        Ok(Err(why)) => {
                            // (one with no checkpoint to resume from was to run anyway)
                            unusable = (action == "resume").then_some(why);
                            "run"
                        }
                        Err(e) => {
                            tracing::warn!("the run would be refused: stage {}: {e}", stage.id);
                            refused += 1;
                            action
                        }
                    },
                    _ => action,
                };
                // (the run refuses it: the dry run fails too)
                refused += usize::from(action == "refused (in use)" || access.is_some());
                let twin = twin.map(|m| format!("  (the result of {}, the same stage)", plan.graph[m].id)).unwrap_or_default();
                tracing::info!("{action:<16} {}  [{}] {}{busy}{twin}{from}", stage.id, &stage.hash[..12], stage.dir.display());
                if let Some(why) = unusable {
                    tracing::warn!("{}: {why}: the run starts it over from step 0", stage.id);
                }
                match access {
                    // (a folder it cannot read looks empty: whether the stage is done is unknown)
                    Some(p) if p.unread() => {
                        tracing::warn!("the run would be refused: stage {}: {p}, so whether it is done is unknown", stage.id)
                    }
                    Some(p) => tracing::warn!("the run would be refused: stage {} needs running, but {p}", stage.id),
                    None => {}
                }
                interrupted_note(plan, stage, status);
                // (what the run says at the skip of a stage over changed data)
                if action == "skip (done)" {
                    if let Some(said) = changed_data(plan, stage, &mut data_now) {
                        tracing::warn!("{said}");
                    }
                }
                // what the rerun sets aside with it (see below)
                if action == "rerun (--force)" {
                    for d in downstream(n).filter(|&d| plan.status(d) == Status::Done) {
                        tracing::info!("{:<16} {}  (computed from {})", "  set aside", plan.graph[d].id, stage.id);
                        dry_aside.insert(d);
                    }
                }
            }
            if let (Status::Diverged { step }, "skip (diverged)") = (status, action) {
                block(n, step, &mut blocked);
            }
            continue;
        }
        // every rank takes part in a pretraining: they follow rank 0's reading of the folder
        let status = if stage.kind() == StageKind::Pretrain {
            let code = match status {
                Status::Done => -1,
                Status::Pending => -2,
                // (a step past i64's range, from a damaged manifest, is clamped: it read as
                // another status, `done` or `diverged`)
                Status::Diverged { step } => -3 - step.min(i64::MAX as u64 - 3) as i64,
                Status::Partial { step } => step.min(i64::MAX as u64) as i64,
            };
            // (a peer that closed its connection failed before: rank 0 refused the folder, in
            // use by another process; its error says why, and this rank stopped with it. A
            // timeout stays this rank's error: rank 0 may only be slow)
            let agreed = train::agree(dist.as_deref(), code).map_err(|e| match !lead && ijepa_engine::dist::peer_closed(&e) {
                true => ijepa_engine::Error::StoppedWithRank(format!(
                    "the broadcast of rank 0's reading of {} failed: a peer closed its connection ({e}); the rank that failed says why, and this rank stopped with it",
                    stage.id
                )),
                false => e,
            })?;
            match agreed {
                -1 => Status::Done,
                -2 => Status::Pending,
                c if c <= -3 => Status::Diverged { step: (-3 - c) as u64 },
                step => Status::Partial { step: step as u64 },
            }
        } else {
            status
        };
        if status == Status::Done && !opts.force {
            n_skip += 1;
            if lead {
                tracing::info!("skip {} (done: {})", stage.id, stage.dir.display());
                if let Some(said) = changed_data(plan, stage, &mut data_now) {
                    tracing::warn!("{said}");
                }
                adopt_inputs(stage)?;
                if let Task::Pretrain { point } = stage.task {
                    let exp = &plan.points[point].experiment;
                    train::restore_config(&stage.dir, exp);
                    // (collapse floors changed in the file: the warnings follow them; not in a
                    // folder an earlier version named by its floors, which names it no more
                    // once they are rewritten)
                    if ijepa_engine::plan::with_named_floors(&stage.dir, &stage.hash, exp, plan.world_size).is_none() {
                        match train::refloor(&stage.dir, exp) {
                            Some(Ok((said, warnings))) => {
                                tracing::info!("{}: {said}", stage.id);
                                for w in warnings {
                                    tracing::warn!("{}: {w}", stage.id);
                                }
                            }
                            Some(Err(why)) => tracing::warn!("{}: {why}", stage.id),
                            None => {}
                        }
                    }
                }
            }
            ran.insert(n);
            continue;
        }
        if let (Status::Diverged { step }, false) = (status, opts.force) {
            // trained again it diverges again (the run is deterministic): left, with what reads
            // it, until `--force` (after a change of its settings it is another stage)
            if lead {
                tracing::warn!("skip {}: it diverged at step {step} ({}); `--force` trains it again", stage.id, stage.dir.display());
            }
            block(n, step, &mut blocked);
            continue;
        }
        // (as the status: every rank of a pretraining follows rank 0's reading, which may not be
        // its own: the ranks' `began` differ by moments; only rank 0 reads the `--force` record)
        // 1: another process ran it again since this command began; 2: the `--force` run this
        // command goes on with ran it again (or it diverged again there)
        let again = match status {
            Status::Done | Status::Diverged { .. } if forced.as_ref().is_some_and(|f| f.ran(stage)) => 2,
            Status::Done if opts.force && stage.kind() != StageKind::Report && finished_since(&stage.dir, began) => 1,
            _ => 0,
        };
        let again = if opts.force && stage.kind() == StageKind::Pretrain { train::agree(dist.as_deref(), again)? } else { again };
        match (again, status) {
            (2, Status::Diverged { step }) => {
                if lead {
                    tracing::warn!("skip {}: it diverged at step {step} again under the `--force` run this command goes on with ({})", stage.id, stage.dir.display());
                }
                block(n, step, &mut blocked);
                continue;
            }
            (1 | 2, _) => {
                match again {
                    2 => n_forced += 1,
                    _ => n_other += 1,
                }
                // (run again since this command began, by another process: not forced again by
                // a command that goes on with this one either)
                if let Some(f) = forced.as_mut() {
                    f.mark(stage);
                }
                if lead {
                    match again {
                        2 => tracing::info!("skip {} (run again by the `--force` run this command goes on with: {})", stage.id, stage.dir.display()),
                        _ => tracing::warn!("skip {}: another process ran it again since this command began ({}); it is not forced a second time", stage.id, stage.dir.display()),
                    }
                }
                ran.insert(n);
                continue;
            }
            _ => {}
        }
        if lock.as_ref().is_some_and(StageLock::read_only) {
            return Err(format!("stage {} needs running, but its folder {} cannot be written (read-only)", stage.id, stage.dir.display()).into());
        }
        if matches!(status, Status::Done | Status::Diverged { .. }) && lead {
            // a rerun stage makes what was computed from it stale: set those aside too (they
            // run now when selected, else on the next run). A report is not moved: its folder
            // (`--reports-dir`) may hold the runs folder or be the working directory, and it is
            // written again from the runs anyway, stale once what it read changes
            // (`Plan::report_inputs`)
            // (which are done is read first: an evaluation whose pretraining has no final
            // checkpoint is not done, and it has none once set aside)
            let done: Vec<NodeIndex> = downstream(n).filter(|&d| plan.status(d) == Status::Done).collect();
            if stage.kind() != StageKind::Report {
                // the folder moves with its lock held, and the new one is locked before the
                // old lock is let go: a second `--force` waiting for the lock took the old
                // folder's in between, moved this process's new folder aside, and both trained
                let held = lock.take();
                set_aside(&stage.dir)?;
                lock = Some(StageLock::acquire(&stage.dir)?);
                drop(held);
            }
            for d in done {
                // under its lock too: a process evaluating there (or reading the record) had
                // the folder renamed under it
                let dir = &plan.graph[d].dir;
                let held = StageLock::acquire(dir)?;
                set_aside(dir)?;
                drop(held);
            }
        }
        if lead {
            tracing::info!("== {} {} [{}]", if matches!(status, Status::Partial { .. }) { "resume" } else { "run" }, stage.id, &stage.hash[..12]);
            interrupted_note(plan, stage, status);
        }
        // (an evaluation whose twin is done copies its result; `--force` computes what it reruns)
        let twin = if opts.force || !lead { None } else { plan.done_twin(n) };
        let outcome = run_stage(plan, n, opts, dist.clone(), &mut shared, !blocked.is_empty(), twin);
        // one diverged point of a study does not stop the others (one process: the ranks of
        // a distributed run stop together, as for any error)
        let diverged_at = match &outcome {
            Err(e) if dist.is_none() => match e.downcast_ref::<ijepa_engine::Error>() {
                Some(ijepa_engine::Error::Diverged { step, .. }) => Some(*step),
                _ => None,
            },
            _ => None,
        };
        if let (Some(step), Err(e)) = (diverged_at, &outcome) {
            tracing::error!("{}: {e}; the stages that read it are skipped, the others go on", stage.id);
            block(n, step, &mut blocked);
            diverged_now += 1;
            // (trained again it diverges again: a command that goes on with this one, stopped
            // before its end, does not force it again)
            if let Some(f) = forced.as_mut() {
                f.mark(stage);
            }
            continue;
        }
        if outcome.is_err() && lead && stage.kind() != StageKind::Report {
            // a stage that failed before writing anything (an evaluation of weights it cannot
            // read) leaves no folder of a lock file alone
            ijepa_engine::run_dir::remove_if_only_lock(&stage.dir);
        }
        outcome?;
        drop(lock);
        if let Some(f) = forced.as_mut() {
            f.mark(stage);
        }
        if twin.is_some() {
            n_reused += 1;
        } else {
            n_run += 1;
        }
        ran.insert(n);
    }
    // every selected stage was reached (a point that diverged too: trained again, it
    // diverges again; `--force --only` trains it again): a `--force` run kept for the same
    // command to go on with is through
    if let Some(f) = &forced {
        f.through();
    }
    // a signal during the last stage (a report, which has no step to stop at) still ends
    // the run as interrupted, not as a success, saying that nothing is left to resume (unless
    // a point diverged: that is said below, and is what is left)
    if let (Some(signal), true) = (ijepa_engine::interrupt::requested(), diverged.is_empty()) {
        return Err(ijepa_engine::Error::Interrupted { signal: signal.to_string(), step: None, dir: PathBuf::new(), finished: true }.into());
    }
    if lead && !opts.dry_run {
        // (a pretraining that diverged now ran too: "0 stage(s) run" was said of one; one that
        // diverged in an earlier run is skipped, and was counted as run)
        let of_them = if diverged_now == 0 { String::new() } else { format!(" ({diverged_now} of them diverged)") };
        let before = diverged.len() - diverged_now - diverged_unselected;
        let before = if before == 0 { String::new() } else { format!(", {before} skipped (diverged in an earlier run)") };
        let blocked = if n_blocked == 0 { String::new() } else { format!(", {n_blocked} not run (they read a pretraining that diverged)") };
        // (an evaluation whose twin was done is copied, not computed: "15 stage(s) run" where
        // the plan said 10 of the evaluations are computed)
        let reused = if n_reused == 0 { String::new() } else { format!(", {n_reused} reused (an evaluation of the same hash done under another point's id)") };
        let forced = if n_forced == 0 { String::new() } else { format!(", {n_forced} skipped (run again by the `--force` run this command goes on with)") };
        let other = if n_other == 0 { String::new() } else { format!(", {n_other} skipped (run again by another process since this command began)") };
        tracing::info!("{}: {} stage(s) run{of_them}, {n_skip} skipped (already done){forced}{other}{before}{blocked}{reused}", plan.name, n_run + diverged_now);
    }
    if refused > 0 {
        return Err(format!(
            "the run would be refused ({refused} reason(s), said above): the plan is what it would do once {} mended",
            if refused == 1 { "that is" } else { "they are" }
        )
        .into());
    }
    if !diverged.is_empty() && !opts.dry_run {
        let pretrainings = plan.graph.node_indices().filter(|&m| plan.graph[m].kind() == StageKind::Pretrain).count();
        let which: Vec<String> = diverged.iter().map(|(m, step)| format!("{} at step {step}", plan.graph[*m].id)).collect();
        return Err(format!(
            "{} of the {pretrainings} pretraining(s) diverged ({}): the stages that read them did not run (their runs are `failed` in the report); `ijepa run --force --only <stage>` trains one again",
            diverged.len(),
            which.join(", ")
        )
        .into());
    }
    Ok(())
}

/// [`interrupted_note`] for every pretraining of `plan` (`ijepa plan`: the interrupted run a
/// changed setting leaves behind is said there too, as `run --dry-run` says it).
pub fn interrupted_notes(plan: &Plan) {
    // (the pretrainings' status only: an evaluation's would read its record for nothing)
    for n in plan.order().into_iter().filter(|&n| plan.graph[n].kind() == StageKind::Pretrain) {
        interrupted_note(plan, &plan.graph[n], plan.status(n));
    }
}

/// A pretraining that starts from step 0 beside one of its experiment interrupted with other
/// settings: said, with the settings that differ (one who changed `epochs` to extend a run
/// trained from the start, the interrupted run left behind without a word).
fn interrupted_note(plan: &Plan, stage: &ijepa_engine::plan::Stage, status: Status) {
    let ijepa_engine::plan::Task::Pretrain { point } = stage.task else { return };
    if status != Status::Pending {
        return;
    }
    use ijepa_engine::plan::Apart;
    for e in ijepa_engine::plan::interrupted_elsewhere(&plan.points[point].experiment, &stage.dir, plan.world_size) {
        let (how, back) = match &e.apart {
            Apart::Processes(1) => (format!("in one process (this one: {})", plan.world_size), "a plain `ijepa run` of the file resumes it".to_string()),
            Apart::Processes(n) => (
                format!("on {n} processes (this one: {})", plan.world_size),
                format!("run on {n} processes, as `ijepa launch` or the file's `distributed` layout ran it, the file resumes it"),
            ),
            Apart::Settings(differ) => (format!("with other settings ({})", differ.join("; ")), "with those settings as they were, the file resumes it".to_string()),
        };
        tracing::warn!(
            "{} holds this experiment's pretraining interrupted at step {} {how}: it is not resumed, this one starts from step 0 ({back})",
            e.dir.display(),
            e.step
        );
    }
}

/// A done stage of an earlier version, found under the hash that did not count its list
/// files' contents, records them now (the lists as planned): a list edited later is then
/// noticed, where such a folder stood for any contents of its lists.
fn adopt_inputs(stage: &ijepa_engine::plan::Stage) -> Result<()> {
    if stage.inputs.is_empty() {
        return Ok(());
    }
    match stage.kind() {
        StageKind::Pretrain => {
            if let Some(mut m) = ijepa_schema::read_manifest(&stage.dir).filter(|m| m.inputs.is_empty()) {
                m.inputs = stage.inputs.clone();
                ijepa_engine::run_dir::write_json(&stage.dir.join(ijepa_schema::MANIFEST), &m)?;
            }
        }
        StageKind::Eval => {
            if let Some(mut r) = ijepa_schema::read_eval(&stage.dir).filter(|r| r.inputs.is_empty()) {
                r.inputs = stage.inputs.clone();
                ijepa_engine::run_dir::write_json(&stage.dir.join(ijepa_schema::EVAL), &r)?;
            }
        }
        StageKind::Report => {}
    }
    Ok(())
}

/// The settings of every point whose evaluations read pretraining `n`, in plan order, where
/// some vary evaluation settings (which `varied` leaves out, so the report can give each
/// point a row if the pretraining diverges); empty otherwise.
fn points_sharing(plan: &Plan, n: NodeIndex) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut points: Vec<usize> = plan
        .graph
        .neighbors_directed(n, petgraph::Direction::Outgoing)
        .filter_map(|m| match &plan.graph[m].task {
            Task::Eval { point, .. } => Some(*point),
            _ => None,
        })
        .collect();
    points.sort_unstable();
    points.dedup();
    let varied: Vec<_> = points.into_iter().map(|q| plan.points[q].varied.clone()).collect();
    match varied.iter().any(|v| v.keys().any(|k| k.starts_with("eval."))) {
        true => varied,
        false => Vec::new(),
    }
}

/// Runs stage `n`. `partial`: some stages the report reads did not run (a diverged
/// pretraining's): the report is written, and marked as not done, so a later run that has
/// them writes it again. `twin`: an evaluation done under another id with the same hash
/// ([`Plan::done_twin`]), whose result an evaluation records instead of computing it.
fn run_stage(plan: &Plan, n: NodeIndex, opts: &ExecOptions, dist: Option<Arc<ProcessGroup>>, shared: &mut EvalCache, partial: bool, twin: Option<NodeIndex>) -> Result<()> {
    let stage = &plan.graph[n];
    match &stage.task {
        Task::Pretrain { point } => {
            let p = &plan.points[*point];
            let exp = &p.experiment;
            let dev = rank_device(exp)?;
            let (rank, world) = dist.as_ref().map(|pg| (pg.rank() as u64, pg.world_size() as u64)).unwrap_or((0, 1));
            // a size that cannot fit is an error with the estimate, before anything is built
            // (for every rank on this machine: on a CPU they share its memory)
            let here = DistEnv::from_env().ok().flatten().filter(|e| dist.is_some() && e.local_world_given).map_or(1, |e| e.local_world_size);
            ijepa_engine::memory::check_fits_here(exp, dev == tch::Device::Cpu, here)?;
            let mut recipe = ijepa_engine::guard::torch("building the models", || ijepa_engine::recipe::build(exp, dev, rank, world))?;
            // a signal while the models were built stops here, before any run folder exists
            ijepa_engine::interrupt::check()?;
            let mut source = String::new();
            if !p.varied.is_empty() {
                source.push_str(&format!("// sweep point {:?} of {:?}:\n", p.name, plan.name));
                for (k, v) in &p.varied {
                    source.push_str(&format!("//   {k} = {v}\n"));
                }
            }
            source.push_str(&opts.source);
            let ropts = RunOptions {
                runs_dir: opts.runs_dir.clone(),
                source,
                progress: std::io::stderr().is_terminal(),
                dist,
                stage: Some((stage.hash.clone(), stage.dir.clone())),
                study: Some(plan.name.clone()),
                // (a pretraining shared by points that differ only in an evaluation's settings
                // is the pretraining of each)
                varied: p.varied.iter().filter(|(k, _)| !k.starts_with("eval.")).map(|(k, v)| (k.clone(), v.clone())).collect(),
                points: points_sharing(plan, n),
                // (a value the point's `vary` gives is written too, at a default as well)
                written: plan.written.iter().chain(p.varied.keys()).cloned().collect(),
            };
            let summary = recipe.pretrain(exp, &ropts)?;
            if summary.run_dir != stage.dir {
                return Err(format!("internal: the plan expected {} but pretraining wrote {}", stage.dir.display(), summary.run_dir.display()).into());
            }
        }
        Task::Eval { point, eval, subject } => {
            // points that differ only in another protocol's settings (`vary "eval.knn.k"` for
            // a linear probe) give this evaluation the same hash: the one done is not repeated,
            // its result is recorded under this point's settings (not under `--force`, which
            // computes what it reruns again)
            if let Some(m) = twin {
                let from = plan.graph[m].dir.join(ijepa_schema::EVAL);
                let text = std::fs::read_to_string(&from).map_err(|e| format!("{}: {e}", from.display()))?;
                let mut record: ijepa_schema::EvalRecord = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", from.display()))?;
                record.varied = stage.varied.clone();
                ijepa_engine::run_dir::write_json(&stage.dir.join(ijepa_schema::EVAL), &record)?;
                tracing::info!("{} is the evaluation {} ran (same hash): its result, top-1 {:.2}%, is reused", stage.id, plan.graph[m].id, record.top1);
                return Ok(());
            }
            let exp = &plan.points[*point].experiment;
            let pretrain = plan.inputs(n).into_iter().find(|&i| plan.graph[i].kind() == StageKind::Pretrain);
            let pretrain_dir = pretrain.map(|i| plan.graph[i].dir.clone());
            let checkpoint = pretrain_dir.as_ref().map(|d| d.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::FINAL)).unwrap_or_default();
            let source = stages::Source { checkpoint, pretrain_dir };
            let meta = EvalMeta { experiment: plan.name.clone(), varied: stage.varied.clone() };
            let dev = rank_device(exp)?;
            stages::run_eval(exp, &exp.evals[*eval], *subject, &source, &stage.dir, dev, &meta, shared)?;
        }
        Task::Report => {
            // a stage it reads that another process runs now (a `--force` of it, begun after
            // this command ran it) is waited for as a reader waits for a done stage; one that
            // runs on is an error: the report was written without it, and the run ended well
            for m in plan.inputs(n) {
                let dir = &plan.graph[m].dir;
                if let Some(holder) = StageLock::holder(dir) {
                    if StageLock::acquire_within(dir, std::time::Duration::from_secs(10)).is_err() {
                        return Err(format!(
                            "the report reads {}, which another process is running now ({holder}): it is not written without it; run the same command again once that process has finished",
                            plan.graph[m].id
                        )
                        .into());
                    }
                }
            }
            // what it reads, hashed before it reads it: a record another process rewrites
            // meanwhile makes this report stale, not current
            let inputs = plan.report_inputs();
            let dirs: Vec<std::path::PathBuf> = plan.graph.node_weights().map(|s| s.dir.clone()).collect();
            let mut registry = ijepa_reports::load_registry_for(&opts.runs_dir, &dirs)?;
            for e in &registry.unreadable {
                tracing::warn!("left out of the report: {e}");
            }
            // the study as this file now stands: stages an earlier version of it (or another
            // file of the study) left are not mixed in
            let mut experiments: Vec<String> = plan.points.iter().map(|p| p.experiment.name.clone()).collect();
            experiments.push(plan.name.clone());
            let stale = registry.retain_stages(&experiments, &dirs);
            // (a baseline shared with another file of the study: placed by its stage here)
            registry.place_evals(plan.graph.node_weights().filter(|s| s.kind() == StageKind::Eval).map(|s| (s.dir.as_path(), &s.varied)));
            if stale > 0 {
                tracing::info!(
                    "{stale} stage(s) of {} in {} are not in this version of the file's plan (an earlier version's, another file's of the same experiment, or results of `ijepa eval`): left out of its report (`ijepa report {}` shows each file of the folder as its last `ijepa run` planned it, and the results of `ijepa eval`)",
                    plan.name,
                    opts.runs_dir.display(),
                    opts.runs_dir.display()
                );
            }
            // the folder's other studies, as `ijepa report` of it shows them
            registry.leave_out_earlier_versions();
            registry.file_under_each_placement(&experiments);
            let files = ijepa_reports::write_report(&registry, &stage.dir)?;
            let hash = if partial { format!("partial-{}", stage.hash) } else { stage.hash.clone() };
            // the files written, whose loss makes the report one to write again
            let written: Vec<String> = [&files.markdown, &files.html]
                .into_iter()
                .chain(&files.tables)
                .chain(&files.plots)
                .map(|p| p.strip_prefix(&stage.dir).unwrap_or(p).to_string_lossy().into_owned())
                .collect();
            let marker = serde_json::json!({"hash": hash, "inputs": inputs, "study": plan.name, "files": written.len(), "written": written});
            ijepa_engine::run_dir::write_json(&stage.dir.join(REPORT_MARKER), &marker)?;
            tracing::info!("report of {} written to {} ({} files)", opts.runs_dir.display(), stage.dir.display(), written.len());
        }
    }
    Ok(())
}

/// The experiment's text as a run keeps it (`config.kdl`), followed by the text of every base
/// it extends, commented out: the base files may change or move, and a run folder should say
/// what it was trained from (`config.json` holds the resolved settings).
pub fn with_bases(source: &str, files: &[PathBuf]) -> String {
    let mut out = source.to_string();
    for base in files.iter().skip(1) {
        let Ok(text) = std::fs::read_to_string(base) else { continue };
        if !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("\n// ---- {}, a base this file extends, as this run read it:\n", base.display()));
        for line in text.lines() {
            out.push_str(if line.is_empty() { "//" } else { "// " });
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ijepa_engine::plan::Stage;

    /// A done stage of an earlier version (its record without `inputs`) skipped as done
    /// records the lists as planned, so that a later edit is noticed; one that recorded them
    /// is left as it is.
    #[test]
    fn a_done_stage_of_an_earlier_version_records_its_lists() {
        let d = std::env::temp_dir().join(format!("ijepa-exec-{}-adopt", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let inputs: std::collections::BTreeMap<String, String> = [("data.subset".to_string(), "00ff".to_string())].into();
        let stage = |kind: &str, task: Task| Stage { id: kind.into(), task, hash: "0".repeat(16), dir: d.join(kind), varied: Default::default(), inputs: inputs.clone() };
        let eval = stage("eval", Task::Eval { point: 0, eval: 0, subject: stages::Subject::RawPixels });
        std::fs::create_dir_all(&eval.dir).unwrap();
        std::fs::write(eval.dir.join(ijepa_schema::EVAL), r#"{"experiment": "x", "protocol": "knn", "model": "raw-pixels", "method": "raw pixels", "arch": "pixels", "top1": 50.0}"#).unwrap();
        let pretrain = stage("pretrain", Task::Pretrain { point: 0 });
        std::fs::create_dir_all(&pretrain.dir).unwrap();
        std::fs::write(pretrain.dir.join(ijepa_schema::MANIFEST), r#"{"stage": "pretrain", "experiment": "x", "status": "done"}"#).unwrap();
        for s in [&eval, &pretrain] {
            adopt_inputs(s).unwrap();
        }
        assert_eq!(ijepa_schema::read_eval(&eval.dir).unwrap().inputs, inputs);
        assert_eq!(ijepa_schema::read_manifest(&pretrain.dir).unwrap().inputs, inputs);
        // recorded already: not replaced
        let other = Stage { inputs: [("data.subset".to_string(), "aaaa".to_string())].into(), ..eval.clone() };
        adopt_inputs(&other).unwrap();
        assert_eq!(ijepa_schema::read_eval(&eval.dir).unwrap().inputs, inputs);
        let _ = std::fs::remove_dir_all(&d);
    }
}
