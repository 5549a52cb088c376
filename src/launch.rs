//! Starting ranks: `ijepa launch` (the processes of one machine, like `torchrun --standalone`)
//! and `ijepa slurm` (an sbatch script whose `srun` starts one task per GPU). Each rank reads
//! its place from the environment (`ijepa_engine::dist::DistEnv`).

use ijepa::outputs::SLURM_MARK;
use ijepa_dsl::config::{Experiment, Launcher};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// The signal that asked the launcher to stop (0: none), and how many it has received.
static STOP: AtomicI32 = AtomicI32::new(0);
static SIGNALS: AtomicI32 = AtomicI32::new(0);

/// When the last signal counted came, in ms of the monotonic clock (0: none yet).
static LAST_SIGNAL_MS: AtomicI64 = AtomicI64::new(0);

/// A signal within this many ms of the one counted before it is the same one sent twice (a
/// closing terminal's SIGHUP, from the shell and from the kernel), not a second signal, which
/// would stop the ranks without their checkpoint.
const SAME_SIGNAL_MS: i64 = 100;

extern "C" fn on_signal(sig: libc::c_int) {
    // only async-signal-safe calls here: atomics and clock_gettime
    let now = monotonic_ms();
    let last = LAST_SIGNAL_MS.load(Ordering::SeqCst);
    STOP.store(sig, Ordering::SeqCst);
    if last == 0 || now - last >= SAME_SIGNAL_MS {
        LAST_SIGNAL_MS.store(now, Ordering::SeqCst);
        SIGNALS.fetch_add(1, Ordering::SeqCst);
    }
}

/// The most ranks one launcher starts (`--nproc-per-node`, as the language's gpus-per-node).
pub const MAX_RANKS: usize = ijepa_dsl::MAX_PROCS_PER_NODE;

/// The process ids of the running ranks (0: none), for [`on_stop`].
static RANK_PIDS: [AtomicI32; MAX_RANKS] = [const { AtomicI32::new(0) }; MAX_RANKS];

/// When the launcher (with its ranks) was last continued after a Ctrl-Z, and for how long
/// they had been stopped, in ms of the monotonic clock (0: never stopped).
static CONTINUED_AT_MS: AtomicI64 = AtomicI64::new(0);
static STOPPED_MS: AtomicI64 = AtomicI64::new(0);

/// The monotonic clock in ms (clock_gettime: async-signal-safe, for [`on_stop`]).
fn monotonic_ms() -> i64 {
    // SAFETY: a zeroed timespec is valid, and clock_gettime writes the one it is given
    let t = unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t);
        t
    };
    t.tv_sec * 1000 + t.tv_nsec / 1_000_000
}

/// What a rank's failure soon after a Ctrl-Z at least as long as the ranks' collective
/// `timeout` likely was: their collectives timed out while they were stopped (each blamed a
/// peer that "probably died", one of two ranks stopped together named as the one that failed).
fn after_a_stop(timeout: Duration) -> Option<String> {
    let (at, stopped) = (CONTINUED_AT_MS.load(Ordering::SeqCst), STOPPED_MS.load(Ordering::SeqCst));
    (stopped > 0 && stopped as u128 >= timeout.as_millis() && monotonic_ms() - at < 60_000).then(|| {
        format!(
            "; the ranks had been stopped (Ctrl-Z) for {} s just before, longer than their collective timeout ({} s, the `distributed` block's `timeout`): their collectives timed out when they went on, which each rank blames on a peer",
            stopped / 1000,
            timeout.as_secs()
        )
    })
}

/// Ctrl-Z (SIGTSTP) to the launcher: each rank has a process group of its own, so the
/// terminal's stop reached the launcher alone and the ranks trained on. The ranks are stopped
/// (SIGSTOP), then the launcher; when it is continued (`fg`, `bg`, SIGCONT), so are they.
extern "C" fn on_stop(_: libc::c_int) {
    // only async-signal-safe calls here: atomic loads, kill, getpid; errno kept for the code
    // the signal interrupted (a kill of a rank that just ended sets it)
    // SAFETY: errno is this thread's
    let errno = unsafe { *libc::__errno_location() };
    let each = |sig: libc::c_int| {
        for p in &RANK_PIDS {
            let pid = p.load(Ordering::SeqCst);
            if pid > 0 {
                // SAFETY: kill(2) on a rank's pid, recorded while it runs
                unsafe {
                    libc::kill(pid, sig);
                }
            }
        }
    };
    let stopped_at = monotonic_ms();
    each(libc::SIGSTOP);
    // SAFETY: stops this process until a SIGCONT (SIGSTOP cannot be blocked: it stops here,
    // inside the handler, and the handler goes on when the launcher is continued)
    unsafe {
        libc::kill(libc::getpid(), libc::SIGSTOP);
    }
    let continued = monotonic_ms();
    STOPPED_MS.store(continued - stopped_at, Ordering::SeqCst);
    CONTINUED_AT_MS.store(continued, Ordering::SeqCst);
    each(libc::SIGCONT);
    // SAFETY: as above
    unsafe {
        *libc::__errno_location() = errno;
    }
}

/// Forgets the ranks' process ids when the launcher is done with them (a pid reaped may be
/// another process's soon).
struct ForgetRanks;

impl Drop for ForgetRanks {
    fn drop(&mut self) {
        for p in &RANK_PIDS {
            p.store(0, Ordering::SeqCst);
        }
    }
}

/// How long ranks a signal stops get to finish their step and save a checkpoint before they
/// are killed (a second signal to the launcher stops them at once, as it does a run).
const STOP_GRACE: Duration = Duration::from_secs(120);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The ranks were stopped by a signal: to the launcher, or to one rank that then stopped
/// cleanly (its exit status 129 / 130 / 143). The process exits with `code`, as `ijepa run`
/// does when interrupted (128 + the signal's number).
#[derive(Debug)]
pub struct Stopped {
    /// What happened, for the error line.
    pub message: String,
    /// The exit status to end with.
    pub code: u8,
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Stopped {}

/// A free TCP port on the loopback interface (the OS's choice).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| format!("finding a free port: {e}"))?;
    Ok(l.local_addr()?.port())
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(9)) => "was killed (SIGKILL)".into(),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// A number that tells this launch from any other on the machine (the process id and the
/// time, hashed).
fn launch_id() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.finish()
}

/// What is said of OMP_NUM_THREADS `threads` (the shell's) for `nproc` ranks on `cores` cores,
/// where they take more threads than the cores: the ranks slow each other down.
fn oversubscribed(threads: &str, nproc: usize, cores: usize) -> Option<String> {
    let each = threads.split(',').next().and_then(|n| n.trim().parse::<usize>().ok())?;
    let all = each.saturating_mul(nproc);
    (all > cores).then(|| {
        format!(
            "OMP_NUM_THREADS={threads} gives each of the {nproc} ranks {each} threads, {all} in all on this machine's {cores} core(s): the ranks slow each other down; unset it for {} each",
            (cores / nproc).max(1)
        )
    })
}

/// Starts `nproc` copies of this binary with `args`, as ranks 0..nproc of one world on this
/// machine (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1,
/// MASTER_PORT; OMP_NUM_THREADS = cores / nproc unless set, and then [`ijepa::exec::NODE_THREADS`]
/// = cores, on which rank 0 evaluates), and waits. When a rank fails, the others are stopped (SIGTERM, then SIGKILL
/// after `grace`) and the error names the rank — the way torchrun behaves. A stop by a signal
/// says to run the command again to resume where the ranks keep their work (`resumable`).
pub fn spawn_local(nproc: usize, port: u16, args: &[std::ffi::OsString], extra_env: &[(String, String)], (grace, timeout): (Duration, Duration), resumable: bool) -> Result<()> {
    // (a benchmark's ranks keep nothing to resume: it was said they did)
    let again = if resumable { " (run the same command again to resume)" } else { "" };
    if nproc == 0 {
        return Err("--nproc-per-node must be at least 1".into());
    }
    let exe = std::env::current_exe().map_err(|e| format!("locating the ijepa binary: {e}"))?;
    // like torchrun: ranks sharing a machine share its cores instead of each taking them all
    // (a caller that sets the ranks' threads itself passes OMP_NUM_THREADS in `extra_env`)
    let given = extra_env.iter().find(|(k, _)| k == "OMP_NUM_THREADS").map(|(_, v)| v.clone());
    // (read only when the caller gives none)
    let given = given.or_else(ijepa::exec::omp_num_threads);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let threads = given.clone().unwrap_or_else(|| (cores / nproc).max(1).to_string());
    // SIGINT/SIGTERM/SIGHUP to the launcher stop the ranks too (and if the launcher dies
    // anyway, the kernel sends each rank SIGTERM: PR_SET_PDEATHSIG)
    // (one the launcher was started with ignored stays ignored, as for `run`: `nohup ijepa
    // launch ...`; the ranks inherit it)
    // (the handler only stores into atomics, which is async-signal-safe)
    ijepa_engine::interrupt::route(on_signal);
    if nproc > MAX_RANKS {
        return Err(format!("--nproc-per-node is at most {MAX_RANKS}").into());
    }
    let _forget = ForgetRanks;
    // (a SIGTSTP the launcher was started with ignored stays ignored)
    // SAFETY: reading the current action, and installing an async-signal-safe handler
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGTSTP, std::ptr::null(), &mut old) == 0 && old.sa_sigaction != libc::SIG_IGN {
            libc::signal(libc::SIGTSTP, on_stop as *const () as libc::sighandler_t);
        }
    }
    let mut children: Vec<Option<Child>> = Vec::with_capacity(nproc);
    // this launch's ranks know each other by it: the ranks of two launches on one port (both
    // rendezvous servers started, one on IPv4 and one on IPv6) joined each other's group
    let launch_id = launch_id();
    for (rank, pid) in RANK_PIDS.iter().enumerate().take(nproc) {
        let mut cmd = Command::new(&exe);
        // SAFETY: prctl is async-signal-safe; it runs in the child between fork and exec
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                // a process group of its own: a terminal's Ctrl-C (sent to the foreground
                // group) reaches the launcher, which passes it on once; in the launcher's
                // group each rank got it twice, and a second signal stops a run at once,
                // without its checkpoint
                libc::setpgid(0, 0);
                Ok(())
            });
        }
        cmd.args(args)
            .env("RANK", rank.to_string())
            .env("WORLD_SIZE", nproc.to_string())
            .env("LOCAL_RANK", rank.to_string())
            .env("LOCAL_WORLD_SIZE", nproc.to_string())
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", port.to_string())
            .env("OMP_NUM_THREADS", &threads)
            .env(ijepa::exec::LAUNCH_ID, launch_id.to_string())
            // (this launcher's rank 0 hosts the store: torchrun's, left in the shell, made every
            // rank wait for a store no one hosted)
            .env_remove("TORCHELASTIC_USE_AGENT_STORE")
            .env_remove("TORCHELASTIC_RESTART_COUNT");
        // (the cores shared out here: rank 0 evaluates on all of them)
        if given.is_none() {
            cmd.env(ijepa::exec::NODE_THREADS, cores.to_string());
        } else {
            cmd.env_remove(ijepa::exec::NODE_THREADS);
        }
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        match cmd.spawn() {
            Ok(c) => {
                pid.store(c.id() as i32, Ordering::SeqCst);
                children.push(Some(c));
            }
            Err(e) => {
                stop_all(&mut children, grace, libc::SIGTERM, SIGNALS.load(Ordering::SeqCst));
                return Err(format!("starting rank {rank}: {e}").into());
            }
        }
    }
    let pids: Vec<String> = children.iter().flatten().map(|c| c.id().to_string()).collect();
    eprintln!("launched {nproc} rank(s) on 127.0.0.1:{port} (pids {}; {threads} torch thread(s) each)", pids.join(", "));
    // (an OMP_NUM_THREADS left in the shell is every rank's: 1,000 threads each, or the
    // machine's cores each, were taken without a word)
    let from_shell = !extra_env.iter().any(|(k, _)| k == "OMP_NUM_THREADS") && given.is_some();
    if let Some(w) = oversubscribed(&threads, nproc, cores).filter(|_| from_shell) {
        eprintln!("warning: {w}");
    }
    loop {
        // (read before the ranks are reaped: a signal that comes after the last rank ended well
        // stops nothing, and the launch succeeded; it said "stopped by signal 2")
        let sig = STOP.load(Ordering::SeqCst);
        let mut failed: Vec<(usize, ExitStatus)> = Vec::new();
        if let Err((rank, e)) = reap(&mut children, &mut failed) {
            stop_all(&mut children, grace, libc::SIGTERM, SIGNALS.load(Ordering::SeqCst));
            return Err(format!("waiting for rank {rank}: {e}").into());
        }
        if !failed.is_empty() {
            // the first failure takes the others down within moments: give them that moment,
            // then blame the cause before its consequences (blame_order)
            // (a rank that cannot be waited for now is waited for by stop_all below)
            let first = failed.len();
            std::thread::sleep(Duration::from_millis(300));
            let _ = reap(&mut children, &mut failed);
            // ranks that stopped because another did ([`STOPPED_WITH_RANK`]) say the cause is
            // elsewhere: while nothing else is seen, the rest are given the time a stop gives
            // them (the cause may be rank 0 saving its checkpoint after a signal; it was named
            // after the rank that stopped with it, or not at all)
            let t0 = Instant::now();
            while failed.iter().all(|(_, s)| s.code() == Some(i32::from(STOPPED_WITH_RANK)))
                && children.iter().any(Option::is_some)
                && t0.elapsed() < STOP_GRACE.max(grace)
                // (the rest already stop, saving their checkpoint: a first signal to the launcher
                // meanwhile asks what they do, and passed on it would be their second, which
                // stops at once without it; a second signal to the launcher is that)
                && SIGNALS.load(Ordering::SeqCst) < 2
            {
                std::thread::sleep(Duration::from_millis(100));
                let _ = reap(&mut children, &mut failed);
            }
            let killed = stop_all(&mut children, grace, libc::SIGTERM, SIGNALS.load(Ordering::SeqCst));
            let (_, &(rank, status)) = failed
                .iter()
                .enumerate()
                .min_by_key(|(i, (rank, s))| blame_order(*rank, s.code(), *i >= first))
                .expect("a failed rank");
            let others = if nproc > 1 { "; stopped the other ranks" } else { "" };
            let mut message = format!("rank {rank} {}{others}", describe(status));
            // (a rank that failed, not one a signal stopped cleanly: its message says to resume)
            if !matches!(status.code(), Some(129 | 130 | 143)) {
                message.push_str(&after_a_stop(timeout).map(|said| format!("{said}{again}")).unwrap_or_default());
            }
            // a rank that did not stop when asked may be what the others failed on: one that
            // stopped responding (SIGSTOP, stuck outside the collectives) lets the others'
            // collectives time out, and they fail first
            if !killed.is_empty() {
                let ranks: Vec<String> = killed.iter().map(|r| r.to_string()).collect();
                message.push_str(&format!(
                    "; rank{} {} did not stop within {} s of SIGTERM and {} killed (SIGKILL): a rank that stops responding makes the others' collectives time out, so it may be the cause",
                    if killed.len() == 1 { "" } else { "s" },
                    ranks.join(", "),
                    grace.as_secs(),
                    if killed.len() == 1 { "was" } else { "were" },
                ));
            }
            // a rank that was interrupted (and stopped cleanly) ends the launch as interrupted
            return Err(match status.code() {
                Some(c @ (129 | 130 | 143)) => Box::new(Stopped { message: format!("{message}{again}"), code: c as u8 }),
                _ => message.into(),
            });
        }
        if children.iter().all(Option::is_none) {
            return Ok(());
        }
        if sig != 0 {
            // the same signal, once: each rank stops at its next step with a checkpoint (a
            // second one counted since, `SAME_SIGNAL_MS` or more after it, is passed on a moment
            // later: one that came within this loop's poll of the first was swallowed)
            stop_all(&mut children, STOP_GRACE.max(grace), sig, 1);
            return Err(Box::new(Stopped { message: format!("stopped by signal {sig}; stopped the ranks{again}"), code: (128 + sig).clamp(129, 255) as u8 }));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Exit status of a rank that stopped because another rank failed (`Error::StoppedWithRank`),
/// or because a signal reached another rank (`interrupt::TO_ANOTHER_RANK`): the launcher
/// blames the other.
pub const STOPPED_WITH_RANK: u8 = 3;

/// How the launcher orders failed ranks to name the cause (smallest first): a rank killed by a
/// signal (the cause) before one that exited; a rank stopped by a signal of its own (exit 143,
/// 129, then 130: Ctrl-C reaches every rank of a terminal's group); a rank that failed before
/// one that stopped because it did or because another rank was signalled
/// ([`STOPPED_WITH_RANK`]: both are often seen in one poll, and the rank stopped with another
/// may end first); a rank seen to end first (the loader's failure on rank 1,
/// before rank 0 stopped with it) before one that ended `later`; then the lowest rank.
fn blame_order(rank: usize, code: Option<i32>, later: bool) -> (bool, u8, bool, usize) {
    let interrupt = match code {
        Some(143 | 129) => 0,
        Some(130) => 1,
        Some(c) if c == i32::from(STOPPED_WITH_RANK) => 3,
        _ => 2,
    };
    (code.is_some(), interrupt, later, rank)
}

/// `sig` to every running child, SIGKILL to those still running after `grace`; returns the
/// ranks it had to kill so. A signal the launcher receives beyond the `passed` it counted so
/// far is passed on too (a second Ctrl-C: the ranks stop at once).
fn stop_all(children: &mut [Option<Child>], grace: Duration, sig: libc::c_int, passed: i32) -> Vec<usize> {
    // (to the children still running: a reaped child's pid may be another process's now)
    let send = |children: &mut [Option<Child>], sig: libc::c_int| {
        for (rank, c) in live(children) {
            if running(rank, c) {
                // SAFETY: kill(2) on a running child's pid; no memory is involved
                unsafe {
                    libc::kill(c.id() as i32, sig);
                }
            }
        }
    };
    send(children, sig);
    let mut passed = passed;
    let t0 = Instant::now();
    while t0.elapsed() < grace {
        // (a moment first: a signal sent again before a rank took the one before it merges
        // with it, and the rank saw one)
        std::thread::sleep(Duration::from_millis(50));
        if !live(children).any(|(r, c)| running(r, c)) {
            return Vec::new();
        }
        let now = SIGNALS.load(Ordering::SeqCst);
        if now > passed {
            passed = now;
            send(children, STOP.load(Ordering::SeqCst));
        }
    }
    let mut killed = Vec::new();
    for (rank, c) in live(children) {
        if running(rank, c) {
            killed.push(rank);
        }
        let _ = c.kill();
        let _ = c.wait();
        RANK_PIDS[rank].store(0, Ordering::SeqCst);
    }
    killed
}

/// Reaps the ranks that ended (their slots emptied, their pids forgotten: [`running`]),
/// recording each failure in `failed`; the first rank that could not be waited for, with why,
/// after the others were looked at.
fn reap(children: &mut [Option<Child>], failed: &mut Vec<(usize, ExitStatus)>) -> std::result::Result<(), (usize, std::io::Error)> {
    let mut first_error = None;
    for (rank, slot) in children.iter_mut().enumerate() {
        let Some(c) = slot else { continue };
        match c.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                RANK_PIDS[rank].store(0, Ordering::SeqCst);
                *slot = None;
                if !status.success() {
                    failed.push((rank, status));
                }
            }
            Err(e) => {
                first_error.get_or_insert((rank, e));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The ranks whose process has not been reaped, with their rank.
fn live(children: &mut [Option<Child>]) -> impl Iterator<Item = (usize, &mut Child)> {
    children.iter_mut().enumerate().filter_map(|(r, c)| c.as_mut().map(|c| (r, c)))
}

/// Whether rank `rank`'s process still runs; one that ended (reaped now) is forgotten by
/// Ctrl-Z's handler, whose pid may be another process's soon.
fn running(rank: usize, c: &mut Child) -> bool {
    let on = matches!(c.try_wait(), Ok(None));
    if !on {
        RANK_PIDS[rank].store(0, Ordering::SeqCst);
    }
    on
}

/// A `#SBATCH` option's value: sbatch splits its directives at white space, reads `'` and `"`
/// as quotes and an unquoted `#` as a comment's start (its `_get_argument`), so a value with
/// any of them is double-quoted, inside which they are plain (a folder `runs#1` sent the log
/// to `runs`, and `bob's` stopped sbatch on an unmatched quote).
fn sbatch_value(s: &str) -> String {
    if s.chars().any(|c| c.is_whitespace() || c == '#' || c == '\'') {
        format!("\"{s}\"")
    } else {
        s.to_string()
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./=:,@+".contains(&b)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// How long before the job's time limit an `ijepa slurm` script asks SLURM to send its tasks
/// SIGTERM (`--signal=TERM@N`), in seconds.
const SIGNAL_BEFORE_LIMIT_S: u64 = 300;

/// The sbatch script of an experiment's `distributed` block: one task per GPU on each node,
/// `srun` starting `ijepa run FILE` in every task (each reads SLURM_PROCID & co.).
pub fn sbatch_script(exp: &Experiment, exe: &Path, file: &Path, runs_dir: &Path, workdir: &Path) -> Result<String> {
    let d = &exp.distributed;
    if d.launcher != Launcher::Slurm {
        // (a file without the block was told its block says "local")
        if *d == ijepa_dsl::config::DistributedConfig::default() {
            eprintln!("note: {}'s launcher is \"local\" (the default: no distributed block names \"slurm\"); writing a SLURM script anyway", exp.name);
        } else {
            eprintln!(
                "note: {}'s distributed block says launcher {:?}; writing a SLURM script anyway",
                exp.name,
                format!("{:?}", d.launcher).to_lowercase()
            );
        }
    }
    let s = &d.slurm;
    let mut out = String::new();
    let _ = writeln!(out, "#!/bin/bash");
    // an experiment on the CPU (`device "cpu"`) asks for no GPU
    let gpus = exp.device != "cpu";
    let per = if gpus { "GPU(s)" } else { "process(es) on the CPU" };
    // (a line break in the file's name ended the comment: what followed ran as a command, and
    // sbatch stopped reading the #SBATCH directives before it)
    let shown: String = file.display().to_string().chars().map(|c| if c.is_control() { '?' } else { c }).collect();
    let _ = writeln!(out, "{SLURM_MARK} {shown}` — {} node(s) x {} {per}.", d.nodes, d.procs_per_node);
    let _ = writeln!(out, "#SBATCH --job-name={}", exp.name);
    let _ = writeln!(out, "#SBATCH --nodes={}", d.nodes);
    let _ = writeln!(out, "#SBATCH --ntasks-per-node={}", d.procs_per_node);
    if gpus {
        let _ = writeln!(out, "#SBATCH --gpus-per-node={}", d.procs_per_node);
    }
    let _ = writeln!(out, "#SBATCH --cpus-per-task={}", s.cpus_per_task);
    // (a job on the CPU asks for no GPU, so no memory per GPU: a value other than the
    // official default was dropped without a word)
    if let Some(m) = s.mem_per_gpu.as_deref().filter(|m| !gpus && *m != ijepa_dsl::config::SlurmConfig::default().mem_per_gpu.as_deref().unwrap_or_default()) {
        eprintln!(
            "note: {} runs on the CPU (device \"cpu\"), so the job asks for no GPU and mem-per-gpu={m:?} is not applied; \
             the nodes' default memory per CPU applies (give the memory with the cluster's own sbatch options)",
            exp.name
        );
    }
    for (flag, v) in [
        ("mem-per-gpu", if gpus { &s.mem_per_gpu } else { &None }),
        ("partition", &s.partition),
        ("account", &s.account),
        ("qos", &s.qos),
        ("time", &s.time),
        ("constraint", &s.constraint),
    ] {
        if let Some(v) = v {
            let _ = writeln!(out, "#SBATCH --{flag}={}", sbatch_value(v));
        }
    }
    // SIGTERM to every task 5 minutes before the time limit (SLURM's own comes 30 s before
    // its SIGKILL, too short for a large model's checkpoint): each rank checkpoints and stops,
    // and the script submitted again resumes there. Not for a limit of 20 minutes or less,
    // which it would cut short.
    if s.time.as_deref().and_then(ijepa_dsl::slurm_time_seconds).is_none_or(|t| t == 0 || t > 4 * SIGNAL_BEFORE_LIMIT_S) {
        let _ = writeln!(out, "#SBATCH --signal=TERM@{SIGNAL_BEFORE_LIMIT_S}");
    }
    let logs = runs_dir.join(&exp.name).join("slurm").display().to_string();
    // a directive cannot hold a double quote (sbatch removes it) nor a line break
    // (nor a backslash, which turns SLURM's `%` patterns off: `%j` would name no job)
    if logs.contains(['"', '\\', '\n', '\r']) {
        return Err(format!("the log folder {logs:?} holds a double quote, a backslash or a line break, which an #SBATCH directive cannot: run from, or give --runs-dir, a path without them").into());
    }
    // (sbatch blanks these words anywhere on a directive's line, its heterogeneous jobs' markers)
    if ["packjob", "hetjob"].iter().any(|w| logs.to_lowercase().contains(w)) {
        return Err(format!("the log folder {logs:?} holds `packjob` or `hetjob`, which sbatch removes from an #SBATCH directive: give --runs-dir a path, and the experiment a name, without them").into());
    }
    // SLURM fills `%j`, `%t`, ... in an output path: a `%` of the folder's own name is `%%`
    let logs = logs.replace('%', "%%");
    // sbatch reads its directives without a shell: a path with a space is quoted for it
    let _ = writeln!(out, "#SBATCH --output={}", sbatch_value(&format!("{logs}/%j.out")));
    let _ = writeln!(out);
    let _ = writeln!(out, "set -euo pipefail");
    let _ = writeln!(out, "cd {}", shell_quote(&workdir.display().to_string()));
    let _ = writeln!(out, "# rank 0's host is the rendezvous; every task reads SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID");
    let _ = writeln!(out, "export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)");
    let _ = writeln!(out, "export MASTER_PORT=$((10000 + SLURM_JOB_ID % 20000))");
    // sbatch passes the submitting shell's environment on: torchrun's variables left there
    // would be read before SLURM's, and every task would train alone as rank 0 of 1
    let _ = writeln!(out, "unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE");
    // each task's threads are its cores (a value left in the submitting shell's environment,
    // which sbatch passes on, would be read instead)
    let _ = writeln!(out, "export OMP_NUM_THREADS={}", s.cpus_per_task);
    // srun does not inherit sbatch's --cpus-per-task (Slurm >= 22.05): each task would get one
    let _ = writeln!(
        out,
        "srun --kill-on-bad-exit=1 --cpus-per-task={} --output={}/%j-rank%t.out {} run {} --runs-dir {}",
        s.cpus_per_task,
        shell_quote(&logs),
        shell_quote(&exe.display().to_string()),
        shell_quote(&file.display().to_string()),
        shell_quote(&runs_dir.display().to_string())
    );
    Ok(out)
}

/// The one experiment whose allocation `ijepa slurm` asks for: a study's points run one after
/// the other in one job, so they must agree on what the job holds (machines, processes per
/// machine, GPUs or none, the launcher). Point 0 decided for every point before (a `vary
/// "device" "cpu" "cuda"` asked for no GPU, and its CUDA point failed on the node).
pub fn one_allocation(study: &ijepa_dsl::Study) -> Result<Experiment> {
    let first = &study.points[0];
    // each setting: as shown, and what the job asks for by it (`cuda` and `cuda:0` ask for the
    // same: GPUs)
    let what = |e: &Experiment| {
        let d = &e.distributed;
        let shown = |v: String| (v.clone(), v);
        [
            ("distributed.nodes", shown(d.nodes.to_string())),
            ("distributed.gpus-per-node", shown(d.procs_per_node.to_string())),
            ("distributed.launcher", shown(format!("{:?}", d.launcher).to_lowercase())),
            ("device", if e.device == "cpu" { ("cpu (no GPU)".to_string(), "no GPU".into()) } else { (format!("{} (GPUs)", e.device), "GPUs".into()) }),
        ]
    };
    let want = what(&first.experiment);
    for p in &study.points[1..] {
        for ((key, (a, asks_a)), (_, (b, asks_b))) in want.iter().zip(what(&p.experiment)) {
            if *asks_a != asks_b {
                return Err(format!(
                    "the points of this sweep ask for different SLURM jobs: `{key}` is {a} at point `{}` and {b} at point `{}`, \
                     and one job holds one allocation for all its points; write one file per allocation (or leave `{key}` out of the sweep)",
                    first.name, p.name
                )
                .into());
            }
        }
    }
    let mut exp = first.experiment.clone();
    exp.name = study.name.clone();
    Ok(exp)
}

/// Writes the sbatch script to `out` (default `RUNS/<experiment>/slurm/<experiment>.sbatch`)
/// and, with `submit`, hands it to `sbatch`. Returns the script's path.
pub fn write_sbatch(exp: &Experiment, file: &Path, runs_dir: &Path, out: Option<PathBuf>, submit: bool) -> Result<PathBuf> {
    let abs = |p: &Path| -> Result<PathBuf> {
        Ok(if p.is_absolute() { p.to_path_buf() } else { std::env::current_dir()?.join(p) })
    };
    let exe = std::env::current_exe()?;
    let workdir = std::env::current_dir()?;
    let script = sbatch_script(exp, &exe, &abs(file)?, &abs(runs_dir)?, &workdir)?;
    let out = out.unwrap_or_else(|| runs_dir.join(&exp.name).join("slurm").join(format!("{}.sbatch", exp.name)));
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    std::fs::create_dir_all(runs_dir.join(&exp.name).join("slurm"))?;
    // (atomically, and only ever over a regular file: a pipe named as --out blocked the write
    // for ever, /dev/null took the script, a link's target was replaced)
    ijepa_engine::run_dir::write_atomic(&out, script.as_bytes()).map_err(|e| e.to_string())?;
    println!("wrote {}", out.display());
    if submit {
        let o = Command::new("sbatch")
            .arg(&out)
            .output()
            .map_err(|e| format!("running sbatch: {e} (is this a SLURM login node? the script is {})", out.display()))?;
        if !o.status.success() {
            // (its message on stdout when stderr holds none)
            let said = [&o.stderr, &o.stdout].iter().map(|b| String::from_utf8_lossy(b).trim().to_string()).find(|t| !t.is_empty()).unwrap_or_else(|| "no message".into());
            return Err(format!("sbatch {} failed ({}): {said}", out.display(), o.status).into());
        }
        print!("{}", String::from_utf8_lossy(&o.stdout));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::blame_order;

    /// An OMP_NUM_THREADS from the shell that gives the ranks more threads than the cores is
    /// said (1,000 threads a rank were taken without a word); one that fits is not.
    #[test]
    fn more_threads_than_cores_are_said() {
        let w = super::oversubscribed("1000", 2, 2).unwrap();
        assert!(w.starts_with("OMP_NUM_THREADS=1000 gives each of the 2 ranks 1000 threads, 2000 in all on this machine's 2 core(s)") && w.ends_with("unset it for 1 each"), "{w}");
        assert!(super::oversubscribed("4,2", 2, 8).is_none() && super::oversubscribed("1", 2, 2).is_none());
        assert!(super::oversubscribed("3,1", 3, 8).is_some());
    }

    /// A rank's failure within a minute of a Ctrl-Z at least as long as the collective timeout
    /// is said to follow it (the ranks' own errors blamed a peer that "probably died"); not
    /// after a shorter stop, nor later.
    #[test]
    fn a_failure_soon_after_a_long_stop_names_the_stop() {
        use std::sync::atomic::Ordering;
        let now = super::monotonic_ms();
        super::STOPPED_MS.store(25_400, Ordering::SeqCst);
        super::CONTINUED_AT_MS.store(now - 1_000, Ordering::SeqCst);
        let timeout = std::time::Duration::from_secs(10);
        let said = super::after_a_stop(timeout).expect("a failure a second after a 25 s stop");
        assert!(said.contains("stopped (Ctrl-Z) for 25 s just before, longer than their collective timeout (10 s"), "{said}");
        assert_eq!(super::after_a_stop(std::time::Duration::from_secs(1800)), None, "a stop shorter than the timeout");
        super::CONTINUED_AT_MS.store(now - 120_000, Ordering::SeqCst);
        assert_eq!(super::after_a_stop(timeout), None, "two minutes after");
        super::STOPPED_MS.store(0, Ordering::SeqCst);
        super::CONTINUED_AT_MS.store(0, Ordering::SeqCst);
    }

    /// A second signal the launcher received before it passed on the first is passed on too,
    /// a moment after it (it was swallowed when both came within the launcher's poll, and
    /// the ranks went on to their checkpoint where a second Ctrl-C stops them at once); one
    /// signal sent twice within moments is one.
    #[test]
    fn a_second_signal_received_with_the_first_is_passed_on() {
        use std::sync::atomic::Ordering;
        let d = std::env::temp_dir().join(format!("ijepa-stop-all-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let got = d.join("got");
        let _ = std::fs::remove_file(&got);
        // a child that writes a line for every SIGINT and otherwise runs on
        let script = format!("trap 'echo INT >> {}' INT; echo ready > {}.ready; while :; do sleep 0.01; done", got.display(), got.display());
        let child = std::process::Command::new("bash").args(["-c", &script]).spawn().unwrap();
        let ready = d.join("got.ready");
        let t0 = std::time::Instant::now();
        while !ready.exists() {
            assert!(t0.elapsed() < std::time::Duration::from_secs(10), "the child did not start");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut children = vec![Some(child)];
        // two signals received, the first of which the caller passes on
        super::STOP.store(libc::SIGINT, Ordering::SeqCst);
        super::SIGNALS.store(2, Ordering::SeqCst);
        let killed = super::stop_all(&mut children, std::time::Duration::from_secs(1), libc::SIGINT, 1);
        super::STOP.store(0, Ordering::SeqCst);
        super::SIGNALS.store(0, Ordering::SeqCst);
        assert_eq!(killed, [0], "the child traps SIGINT and runs on until killed");
        assert_eq!(std::fs::read_to_string(&got).unwrap_or_default().lines().count(), 2, "two signals reached the child");
        let _ = std::fs::remove_dir_all(&d);
        // one signal sent twice within moments (a closing terminal's SIGHUP) counts once; a
        // second one later counts
        super::on_signal(libc::SIGHUP);
        super::on_signal(libc::SIGHUP);
        assert_eq!(super::SIGNALS.load(Ordering::SeqCst), 1);
        std::thread::sleep(std::time::Duration::from_millis(super::SAME_SIGNAL_MS as u64 + 20));
        super::on_signal(libc::SIGHUP);
        assert_eq!(super::SIGNALS.load(Ordering::SeqCst), 2);
        super::STOP.store(0, Ordering::SeqCst);
        super::SIGNALS.store(0, Ordering::SeqCst);
        super::LAST_SIGNAL_MS.store(0, Ordering::SeqCst);
    }

    /// A sweep's points share one SLURM job: points that need different allocations (GPUs
    /// or none) are refused, naming the setting; `cuda` and `cuda:0` ask for the same.
    #[test]
    fn a_sweeps_points_share_one_allocation() {
        let study = |vary: &str| {
            let src = format!("experiment \"x\" {{ distributed {{ launcher \"slurm\" }} }}\nsweep \"grid\" {{ {vary} }}\n");
            ijepa_dsl::parse_study("x.kdl", &src).map_err(|e| e.render_plain()).unwrap()
        };
        let e = super::one_allocation(&study("vary \"device\" \"cuda\" \"cpu\"")).unwrap_err().to_string();
        assert!(e.contains("`device` is cuda (GPUs) at point `device-cuda` and cpu (no GPU) at point `device-cpu`"), "{e}");
        let exp = super::one_allocation(&study("vary \"device\" \"cuda\" \"cuda:0\"")).unwrap();
        assert_eq!(exp.name, "x");
        assert!(super::one_allocation(&study("vary \"epochs\" 1 2")).is_ok());
    }

    /// A `%` of the runs folder's name is SLURM's `%%` in both log paths (SLURM filled `%j`
    /// in the folder's name, whose logs then went nowhere), and a double quote is refused.
    #[test]
    fn slurm_log_paths_keep_their_percent_signs() {
        let exp = ijepa_dsl::parse_str("x.kdl", "experiment \"x\" { distributed { nodes 2; gpus-per-node 4; launcher \"slurm\" } }").unwrap();
        let p = std::path::Path::new;
        let s = super::sbatch_script(&exp, p("/bin/ijepa"), p("/w/x.kdl"), p("/w/runs %j 100%"), p("/w")).unwrap();
        assert!(s.contains("#SBATCH --output=\"/w/runs %%j 100%%/x/slurm/%j.out\""), "{s}");
        assert!(s.contains("--output='/w/runs %%j 100%%/x/slurm'/%j-rank%t.out"), "{s}");
        let e = super::sbatch_script(&exp, p("/bin/ijepa"), p("/w/x.kdl"), p("/w/a\"b"), p("/w")).unwrap_err().to_string();
        assert!(e.contains("double quote"), "{e}");
        // sbatch reads `#` as a comment and `'` as a quote: quoted (the log went to `/w/runs`)
        let s = super::sbatch_script(&exp, p("/bin/ijepa"), p("/w/x.kdl"), p("/w/runs#1"), p("/w")).unwrap();
        assert!(s.contains("#SBATCH --output=\"/w/runs#1/x/slurm/%j.out\""), "{s}");
        let s = super::sbatch_script(&exp, p("/bin/ijepa"), p("/w/x.kdl"), p("/w/bob's"), p("/w")).unwrap();
        assert!(s.contains("#SBATCH --output=\"/w/bob's/x/slurm/%j.out\""), "{s}");
        assert!(super::sbatch_script(&exp, p("/bin/ijepa"), p("/w/x.kdl"), p("/w/hetjob"), p("/w")).is_err());
        assert!(super::sbatch_script(&exp, p("/bin/ijepa"), p("/w/x.kdl"), p("/w/a\\b"), p("/w")).is_err());
    }

    /// A line break in the experiment file's name stays inside the script's comment (what
    /// followed it ran as a command, and sbatch read no directive after it); torchrun's
    /// variables of the submitting shell are unset before `srun` (read before SLURM's, every
    /// task trained alone as rank 0 of 1).
    #[test]
    fn the_sbatch_script_runs_nothing_but_srun() {
        let exp = ijepa_dsl::parse_str("x.kdl", "experiment \"x\" { distributed { nodes 2; gpus-per-node 4; launcher \"slurm\" } }").unwrap();
        let p = std::path::Path::new;
        let s = super::sbatch_script(&exp, p("/bin/ijepa"), p("/w/a\ntouch PWNED #.kdl"), p("/w/runs"), p("/w")).unwrap();
        assert!(s.contains("# Written by `ijepa slurm /w/a?touch PWNED #.kdl`"), "{s}");
        // (the one line starting `touch` is the quoted argument's second line)
        assert!(s.contains("run '/w/a\ntouch PWNED #.kdl' --runs-dir") && s.matches("\ntouch").count() == 1, "the path itself is passed as it is: {s}");
        let unset = s.find("unset RANK WORLD_SIZE LOCAL_RANK LOCAL_WORLD_SIZE").expect("the torchrun variables unset");
        assert!(unset < s.find("srun ").unwrap(), "{s}");
        // each task's threads are its cores (srun sets no OMP_NUM_THREADS: each took the node's)
        let threads = s.find("export OMP_NUM_THREADS=").expect("the tasks' threads set");
        assert!(threads < s.find("srun ").unwrap() && s.contains(&format!("export OMP_NUM_THREADS={}\n", exp.distributed.slurm.cpus_per_task)), "{s}");
        // every directive comes before the first command
        let first_command = s.lines().position(|l| !l.is_empty() && !l.starts_with('#')).unwrap();
        assert!(s.lines().skip(first_command).all(|l| !l.starts_with("#SBATCH")), "{s}");
    }

    /// The rank named is the cause: killed by a signal, else stopped by a signal of its own
    /// (143, 129, then 130), else failed (1), else stopped with another (3); among equals the
    /// first seen to end, then the lowest rank.
    #[test]
    fn the_launcher_blames_the_cause() {
        let pick = |failed: &[(usize, Option<i32>, bool)]| {
            failed.iter().min_by_key(|(r, c, later)| blame_order(*r, *c, *later)).map(|f| f.0).unwrap()
        };
        // rank 1 killed (no exit code) beside rank 0's error
        assert_eq!(pick(&[(0, Some(1), false), (1, None, false)]), 1);
        // rank 1's loader failed first; rank 0 ended after saving the steps done
        assert_eq!(pick(&[(1, Some(1), false), (0, Some(1), true)]), 1);
        // SIGTERM or SIGINT to rank 1: it exits 143 or 130, rank 0 stops with it (3), seen
        // together or first
        for own in [143, 130, 129] {
            assert_eq!(pick(&[(0, Some(3), false), (1, Some(own), false)]), 1);
            assert_eq!(pick(&[(0, Some(3), false), (1, Some(own), true)]), 1);
        }
        // (a rank that exited 130 in an earlier version, stopped with rank 1's SIGTERM)
        assert_eq!(pick(&[(0, Some(130), false), (1, Some(143), true)]), 1);
        // rank 1's loader failed and rank 0 stopped with it (exit 3), seen in one poll
        assert_eq!(pick(&[(0, Some(3), false), (1, Some(1), false)]), 1);
        // otherwise the lowest rank
        assert_eq!(pick(&[(1, Some(1), false), (0, Some(1), false)]), 0);
    }
}
