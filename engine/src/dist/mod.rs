//! Distributed collectives on libtorch's own c10d (the code behind `torch.distributed`):
//! a TCPStore rendezvous (rank 0 hosts it), ProcessGroupGloo on CPU and ProcessGroupNCCL on
//! CUDA (cargo feature `nccl`), reached through the C shim `csrc/c10d.cpp`. Nothing here
//! implements a collective; every call forwards to c10d and waits on its Work with the
//! group's timeout, so a dead or unreachable peer is an [`Error::Dist`], not a hang.
//!
//! * [`DistEnv`]: rank/world/master from torchrun or SLURM variables.
//! * [`ProcessGroup`]: all-reduce (sum/avg), coalesced all-reduce, broadcast, all-gather,
//!   barrier, in place on tch tensors.
//! * [`broadcast_tensors`] and [`GradBuckets`]: the two DDP steps (rank 0's initial weights
//!   to everyone; bucketed gradient averaging after backward), as in
//!   `torch.nn.parallel.DistributedDataParallel`.
//! * [`bench_all_reduce`]: all-reduce latency and bandwidth (nccl-tests' algbw/busbw).
//!
//! # Gloo transport address
//! Gloo needs a local address its peers can reach. In order: `IJEPA_GLOO_IFNAME` (or
//! PyTorch's `GLOO_SOCKET_IFNAME`) names a network interface; a loopback master
//! (`127.x`, `localhost`, `::1`) binds 127.0.0.1 (one machine); otherwise the address of the
//! local interface that routes to the master (found with a connected UDP socket, no packet
//! sent), which is reachable from the master's network on multi-host jobs — unlike
//! `createDeviceForHostname(master_addr)` (only valid on the master's own host) or
//! `createDefaultDevice` (this host's name, which Debian often maps to 127.0.1.1). If that
//! lookup fails we fall back to `createDefaultDevice`.

mod bench;
mod ddp;
mod env;

pub use bench::{bench_all_reduce, BenchRow};
pub use ddp::{broadcast_tensors, GradBuckets, DEFAULT_BUCKET_BYTES};
pub use env::{first_host, tasks_on_node, torchrun_vars_set, DistEnv};

use crate::error::{Error, Result};
use std::ffi::{c_char, c_int, c_void, CString};
use std::time::Duration;
use tch::{Device, Tensor};

extern "C" {
    fn ijepa_c10d_has_nccl() -> c_int;
    #[allow(clippy::too_many_arguments)]
    fn ijepa_c10d_create(
        backend: *const c_char,
        master_addr: *const c_char,
        master_port: c_int,
        rank: c_int,
        world_size: c_int,
        timeout_ms: i64,
        gloo_iface: *const c_char,
        gloo_host: *const c_char,
        device_index: c_int,
        agent_prefix: *const c_char,
        phase: *mut c_int,
        out: *mut *mut c_void,
    ) -> *mut c_char;
    fn ijepa_c10d_destroy(pg: *mut c_void) -> *mut c_char;
    fn ijepa_c10d_allreduce(pg: *mut c_void, t: *mut c_void, op: c_int) -> *mut c_char;
    fn ijepa_c10d_allreduce_coalesced(pg: *mut c_void, ts: *const *mut c_void, n: c_int, op: c_int) -> *mut c_char;
    fn ijepa_c10d_broadcast(pg: *mut c_void, t: *mut c_void, root: c_int) -> *mut c_char;
    fn ijepa_c10d_allgather(pg: *mut c_void, output: *mut c_void, input: *mut c_void) -> *mut c_char;
    fn ijepa_c10d_barrier(pg: *mut c_void) -> *mut c_char;
}

/// Takes ownership of a shim error string (NULL = success).
fn take_error(err: *mut c_char) -> Option<String> {
    crate::ffi::take_message(err).map(|msg| strip_source_locations(msg.trim()))
}

/// Drops gloo's `[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:547] ` prefixes (a
/// bracketed source path and line); other brackets (peer addresses) stay.
fn strip_source_locations(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(open) = rest.find('[') {
        let Some(len) = rest[open..].find(']') else { break };
        let inner = &rest[open + 1..open + len];
        let is_location = inner.contains('/')
            && inner
                .rsplit_once(':')
                .is_some_and(|(_, line)| !line.is_empty() && line.chars().all(|c| c.is_ascii_digit()));
        out.push_str(&rest[..open]);
        if is_location {
            rest = rest[open + len + 1..].trim_start();
        } else {
            out.push_str(&rest[open..=open + len]);
            rest = &rest[open + len + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// The tch handle of a tensor as the shim takes it (`torch::Tensor*`).
fn handle(t: &Tensor) -> *mut c_void {
    t.as_ptr() as *mut c_void
}

/// Whether this build has the NCCL backend (cargo feature `nccl`).
pub fn has_nccl() -> bool {
    // SAFETY: no arguments, returns a constant.
    unsafe { ijepa_c10d_has_nccl() == 1 }
}

/// Which c10d backend carries the collectives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// ProcessGroupGloo: CPU tensors over TCP.
    Gloo,
    /// ProcessGroupNCCL: CUDA tensors (needs the `nccl` feature).
    Nccl,
}

impl Backend {
    /// The c10d name ("gloo" / "nccl").
    pub fn name(self) -> &'static str {
        match self {
            Backend::Gloo => "gloo",
            Backend::Nccl => "nccl",
        }
    }
}

/// Reduction of [`ProcessGroup::all_reduce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReduceOp {
    /// Element-wise sum over ranks.
    Sum,
    /// Element-wise mean over ranks (Gloo: sum then an in-place division by the world size, so
    /// floating-point tensors only).
    Avg,
}

impl ReduceOp {
    fn code(self) -> c_int {
        match self {
            ReduceOp::Sum => 0,
            ReduceOp::Avg => 1,
        }
    }
}

/// "30 s", "2.5 s" or "300 ms".
pub(crate) fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if d.subsec_millis() == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// Resolves MASTER_ADDR before c10d uses it: c10d retries a name that does not resolve until
/// its timeout (30 minutes by default) and then blames the connection. A name that does not
/// resolve (yet: rank 0's host may register it as it comes up) is retried for up to 2 minutes
/// (or `timeout`, if shorter), said once, then an error naming it.
fn resolve_master(env: &DistEnv, timeout: Duration, who: &str) -> Result<()> {
    use std::net::ToSocketAddrs;
    let limit = timeout.min(Duration::from_secs(120));
    let start = std::time::Instant::now();
    let mut said = false;
    loop {
        let why = match (env.master_addr.as_str(), env.master_port).to_socket_addrs().map(|mut a| a.next()) {
            Ok(Some(_)) => return Ok(()),
            Ok(None) => "no address".to_string(),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= limit {
            return Err(Error::Dist(format!(
                "{who}: MASTER_ADDR {:?} does not resolve to an address ({why}; tried for {}): it must name rank 0's host",
                env.master_addr,
                fmt_duration(limit)
            )));
        }
        if !said {
            tracing::warn!("{who}: MASTER_ADDR {:?} does not resolve ({why}); trying again for up to {}", env.master_addr, fmt_duration(limit));
            said = true;
        }
        std::thread::sleep(Duration::from_millis(500).min(limit));
    }
}

/// A rank other than 0 waits until rank 0's rendezvous port accepts a connection, for at most
/// `timeout` (c10d's own connect retries overshot it: 49 s for a 20 s timeout, ~74 minutes for
/// the default 30), and stops on a signal (before, it waited out the rendezvous).
fn wait_for_master(env: &DistEnv, timeout: Duration, who: &str) -> Result<()> {
    use std::net::{TcpStream, ToSocketAddrs};
    let start = std::time::Instant::now();
    loop {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(Error::Interrupted { signal: signal.to_string(), step: None, dir: std::path::PathBuf::new(), finished: false });
        }
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Err(Error::Dist(format!(
                "{who}: could not reach the master {}:{} within {}: is rank 0 running and MASTER_ADDR/MASTER_PORT right?",
                env.master_addr,
                env.master_port,
                fmt_duration(timeout)
            )));
        }
        let addrs: Vec<std::net::SocketAddr> = (env.master_addr.as_str(), env.master_port).to_socket_addrs().map(Iterator::collect).unwrap_or_default();
        if addrs.iter().any(|a| TcpStream::connect_timeout(a, left.min(Duration::from_secs(1))).is_ok()) {
            return Ok(());
        }
        std::thread::sleep(left.min(Duration::from_millis(200)));
    }
}

/// Why MASTER_ADDR `addr` is not an address of this host, if none of the addresses it resolves
/// to can be bound here (a node list whose first host is another machine); `None` where one
/// can, or where it does not resolve (said elsewhere).
fn not_this_host(addr: &str, port: u16) -> Option<String> {
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = (addr, port).to_socket_addrs().ok()?.collect();
    let bindable = |a: &std::net::SocketAddr| match std::net::TcpListener::bind(std::net::SocketAddr::new(a.ip(), 0)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrNotAvailable,
    };
    (!addrs.is_empty() && !addrs.iter().any(bindable)).then(|| {
        let ips: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        format!("MASTER_ADDR {addr} ({}) is no address of this host", ips.join(", "))
    })
}

/// Whether `e` is a collective that failed because a peer closed its connection (it exited:
/// the error is that peer's, not this rank's), not because it timed out.
pub fn peer_closed(e: &crate::Error) -> bool {
    let crate::Error::Dist(msg) = e else { return false };
    let m = msg.to_ascii_lowercase();
    ["closed by peer", "reset by peer", "broken pipe"].iter().any(|k| m.contains(k)) && !m.contains("timed out")
}

/// Whether a c10d message reads like a lost or silent peer (vs a bad argument).
fn looks_like_peer_failure(msg: &str) -> bool {
    let m = msg.to_ascii_lowercase();
    [
        "connection",
        "closed",
        "timed out",
        "timeout",
        "broken pipe",
        "reset by peer",
        "socket",
        "did not complete",
        "read error",
        "write error",
        "nccl error",
        "remote",
    ]
    .iter()
    .any(|k| m.contains(k))
}

/// A c10d process group (one per process). Collectives are blocking: each returns when its
/// Work completed, or errs after the group's timeout. Every rank must issue the same
/// collectives in the same order with tensors of the same shapes and dtypes.
///
/// `Send + Sync` (calls are serialised by an internal lock), so it can sit in an `Arc`.
/// After a failed collective the group is unusable (c10d may still hold the failed work):
/// report the error and end the process; dropping the group does not hang.
///
/// With NCCL, `wait` only orders the current CUDA stream after the collective (the host does
/// not block), and a collective that never completes is caught by NCCL's watchdog after the
/// timeout, which by default tears the process down (`TORCH_NCCL_ASYNC_ERROR_HANDLING`).
pub struct ProcessGroup {
    raw: *mut c_void,
    /// Serialises calls into c10d: its process groups are not safe for concurrent calls (Gloo
    /// bumps a plain collective counter), and concurrent collectives would be issued in
    /// different orders on different ranks anyway.
    lock: std::sync::Mutex<()>,
    rank: usize,
    world_size: usize,
    backend: Backend,
    device: Device,
    timeout: Duration,
}

// SAFETY: the c10d Backend object may be used from any thread (it queues work to its own
// threads and has no thread affinity); every call into it holds `lock`, so calls are never
// concurrent, which makes sharing across threads sound.
unsafe impl Send for ProcessGroup {}
// SAFETY: see above (all access to `raw` goes through `call`, under `lock`).
unsafe impl Sync for ProcessGroup {}

impl std::fmt::Debug for ProcessGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessGroup")
            .field("backend", &self.backend)
            .field("rank", &self.rank)
            .field("world_size", &self.world_size)
            .field("device", &self.device)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The network interface the environment names for Gloo, with the variable naming it:
/// IJEPA_GLOO_IFNAME, else PyTorch's GLOO_SOCKET_IFNAME (which may list several, one device
/// each; we use the first).
fn named_iface(get: impl Fn(&str) -> Option<String>) -> Option<(&'static str, String)> {
    ["IJEPA_GLOO_IFNAME", "GLOO_SOCKET_IFNAME"]
        .into_iter()
        .find_map(|var| get(var).and_then(|v| v.split(',').map(str::trim).find(|s| !s.is_empty()).map(|first| (var, first.to_string()))))
}

/// The Gloo transport choice (interface, host); see the module docs.
fn gloo_transport(env: &DistEnv) -> (String, String) {
    if let Some((_, iface)) = named_iface(|k| std::env::var(k).ok()) {
        return (iface, String::new());
    }
    let addr = env.master_addr.trim();
    let loopback =
        addr == "localhost" || addr == "::1" || addr.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.is_loopback());
    if loopback {
        return (String::new(), "127.0.0.1".into());
    }
    let local = std::net::UdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect((addr, env.master_port)).map(|_| s))
        .and_then(|s| s.local_addr());
    match local {
        Ok(a) if !a.ip().is_unspecified() => (String::new(), a.ip().to_string()),
        _ => (String::new(), String::new()),
    }
}

impl ProcessGroup {
    /// Joins the job described by `env`: rank 0 binds the rendezvous store on
    /// `master_addr:master_port`, the others connect to it, then the backend connects every
    /// pair of ranks. Each phase, and every later collective, gives up after `timeout`.
    ///
    /// NCCL binds the CUDA device of the rank ([`DistEnv::gpu`]: `env.local_rank`, or the one GPU
    /// the process sees).
    pub fn new(env: &DistEnv, backend: Backend, timeout: Duration) -> Result<Self> {
        let who = format!("rank {} of {}", env.rank, env.world_size);
        let rank = c_int::try_from(env.rank).map_err(|_| Error::Dist(format!("{who}: rank too large")))?;
        let world = c_int::try_from(env.world_size).map_err(|_| Error::Dist(format!("{who}: world too large")))?;
        if timeout.is_zero() {
            return Err(Error::Dist(format!("{who}: the timeout must be positive")));
        }
        if backend == Backend::Nccl && !has_nccl() {
            return Err(Error::Dist(format!("{who}: this build has no NCCL backend: rebuild with --features nccl")));
        }
        let cstr = |what: &str, s: &str| {
            CString::new(s).map_err(|_| Error::Dist(format!("{who}: {what} contains a NUL byte")))
        };
        resolve_master(env, timeout, &who)?;
        if env.rank != 0 {
            wait_for_master(env, timeout, &who)?;
        } else if let Some(why) = not_this_host(&env.master_addr, env.master_port) {
            // (rank 0's rendezvous server listens on every address of its host, and rank 0
            // joins it at MASTER_ADDR: where that is another machine, c10d's connect retries
            // ran past the timeout by about a third before its error said so)
            tracing::warn!("{who}: {why}, where rank 0's rendezvous server listens: unless it reaches this host through NAT or a virtual IP, rank 0 cannot join the rendezvous, and fails once c10d's connect retries give up (up to about a third past the `timeout`)");
        }
        let (iface, host) = match backend {
            Backend::Gloo => gloo_transport(env),
            Backend::Nccl => (String::new(), String::new()),
        };
        let c_backend = cstr("backend", backend.name())?;
        let c_addr = cstr("MASTER_ADDR", &env.master_addr)?;
        let c_iface = cstr("IJEPA_GLOO_IFNAME", &iface)?;
        let c_host = cstr("gloo host", &host)?;
        let gpu = match backend {
            Backend::Nccl => Some(env.gpu()?),
            Backend::Gloo => None,
        };
        let device_index = gpu.map_or(-1, |g| c_int::try_from(g).unwrap_or(-1));
        let timeout_ms = i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX);
        let agent = agent_prefix(|k| std::env::var(k).ok());
        let c_agent = CString::new(agent.clone().unwrap_or_default()).unwrap_or_default();
        let mut phase: c_int = 0;
        let mut raw: *mut c_void = std::ptr::null_mut();
        // SAFETY: every pointer is a live NUL-terminated string or a valid out-parameter; the
        // shim catches all C++ exceptions. A signal while the ranks meet (up to the timeout,
        // with nothing to save) stops the process at once: no safe point comes before it ends
        // a rank that joined a group already formed (another run's rendezvous on this port)
        // waited in gloo's pair connect past the timeout, without a word, for minutes: the
        // call cannot be cancelled, so a watchdog ends the process (nothing to save yet) once
        // twice the timeout has passed
        let formed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        {
            let formed = formed.clone();
            let limit = timeout.saturating_mul(2).max(timeout.saturating_add(Duration::from_secs(10)));
            let (who, addr) = (who.clone(), format!("{}:{}", env.master_addr, env.master_port));
            std::thread::spawn(move || {
                let t0 = std::time::Instant::now();
                while t0.elapsed() < limit {
                    if formed.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                tracing::error!(
                    "{who}: the process group at {addr} did not form within {} (twice the timeout): this rank is stuck connecting to its peers, as one that joins another run's rendezvous on the same port does (give each run a port of its own: `--master-port`, MASTER_PORT); stopping",
                    fmt_duration(limit)
                );
                // (`_exit`, as a second signal ends the process: `exit` would run libtorch's
                // static destructors while this process's other thread is inside gloo)
                // SAFETY: `_exit` takes no pointer and does not return
                unsafe { libc::_exit(1) }
            });
        }
        let err = crate::interrupt::at_once(|| unsafe {
            ijepa_c10d_create(
                c_backend.as_ptr(),
                c_addr.as_ptr(),
                c_int::from(env.master_port),
                rank,
                world,
                timeout_ms,
                c_iface.as_ptr(),
                c_host.as_ptr(),
                device_index,
                c_agent.as_ptr(),
                &mut phase,
                &mut raw,
            )
        });
        formed.store(true, std::sync::atomic::Ordering::SeqCst);
        let err = err?;
        if let Some(msg) = take_error(err) {
            // (torchrun's agent hosts the store: no rank binds it, and rank 0 is a client too)
            let msg = if agent.is_some() && phase == 1 { format!("{msg} (torchrun's agent store, TORCHELASTIC_USE_AGENT_STORE=True)") } else { msg };
            return Err(Error::Dist(create_error(env, backend, timeout, (phase, env.rank == 0 && agent.is_none()), &iface, &host, &msg)));
        }
        if raw.is_null() {
            return Err(Error::Dist(format!("{who}: the c10d shim returned no process group")));
        }
        let device = gpu.map_or(Device::Cpu, Device::Cuda);
        tracing::debug!(rank = env.rank, world = env.world_size, backend = backend.name(), "process group ready");
        Ok(ProcessGroup {
            raw,
            lock: std::sync::Mutex::new(()),
            rank: env.rank,
            world_size: env.world_size,
            backend,
            device,
            timeout,
        })
    }

    /// This process's rank.
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// Number of ranks.
    pub fn world_size(&self) -> usize {
        self.world_size
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where this group's tensors live: CPU for Gloo, the rank's GPU for NCCL.
    pub fn device(&self) -> Device {
        self.device
    }

    /// The timeout of every operation.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn who(&self) -> String {
        format!("rank {} of {}", self.rank, self.world_size)
    }

    /// Calls the shim with the group handle under the lock and turns its error into
    /// [`Error::Dist`] naming the rank and `op`.
    fn call(&self, op: &str, f: impl FnOnce(*mut c_void) -> *mut c_char) -> Result<()> {
        let err = {
            let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
            f(self.raw)
        };
        match take_error(err) {
            None => Ok(()),
            Some(msg) => {
                // (a stop every rank was sent, which a peer acted on first, in work of its own
                // such as a monitor: not a peer that died)
                let hint = if let Some(signal) = crate::interrupt::requested().filter(|_| looks_like_peer_failure(&msg)) {
                    format!(" ({signal} reached this process too: a peer stopped on it first; run the same command again to go on)")
                } else if looks_like_peer_failure(&msg) {
                    format!(
                        " (a peer probably died or is unreachable, or rank 0 spent longer than the timeout on work of its own, a monitor or a checkpoint, while the others waited; timeout {})",
                        fmt_duration(self.timeout)
                    )
                } else {
                    String::new()
                };
                Err(Error::Dist(format!("{}: {op} failed: {msg}{hint}", self.who())))
            }
        }
    }

    /// Runs `f` on a contiguous, autograd-free alias of `t` (a copy when `t` is not
    /// contiguous, written back afterwards), so that in-place collectives work on any tensor,
    /// parameters included.
    fn in_place(&self, t: &Tensor, f: impl FnOnce(&Tensor) -> Result<()>) -> Result<()> {
        let d = t.detach();
        if d.is_contiguous() {
            return f(&d);
        }
        let c = d.f_contiguous()?;
        f(&c)?;
        let mut d = d;
        d.f_copy_(&c)?;
        Ok(())
    }

    /// All-reduces `t` in place: afterwards every rank holds the sum (or mean) of all ranks'
    /// values.
    pub fn all_reduce(&self, t: &Tensor, op: ReduceOp) -> Result<()> {
        self.in_place(t, |c| {
            // SAFETY: live group and tensor handles; the shim catches all C++ exceptions.
            self.call("all-reduce", |pg| unsafe { ijepa_c10d_allreduce(pg, handle(c), op.code()) })
        })
    }

    /// All-reduces several tensors in place with one collective per dtype/device group
    /// (c10d's `allreduce_coalesced`, which flattens them into one buffer).
    pub fn all_reduce_coalesced(&self, ts: &[Tensor], op: ReduceOp) -> Result<()> {
        let detached: Vec<Tensor> = ts.iter().map(Tensor::detach).collect();
        let mut groups: Vec<((tch::Kind, Device), Vec<usize>)> = Vec::new();
        for (i, t) in detached.iter().enumerate() {
            let key = (t.kind(), t.device());
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        for (_, idx) in groups {
            let ptrs: Vec<*mut c_void> = idx.iter().map(|&i| handle(&detached[i])).collect();
            let n = c_int::try_from(ptrs.len()).map_err(|_| Error::Dist("too many tensors".into()))?;
            // SAFETY: `ptrs` holds live tensor handles for the duration of the call.
            self.call("coalesced all-reduce", |pg| unsafe {
                ijepa_c10d_allreduce_coalesced(pg, ptrs.as_ptr(), n, op.code())
            })?;
        }
        Ok(())
    }

    /// Broadcasts `t` from rank `root` to every rank, in place.
    pub fn broadcast(&self, t: &Tensor, root: usize) -> Result<()> {
        let root_c = self.root(root)?;
        self.in_place(t, |c| {
            // SAFETY: live group and tensor handles; the shim catches all C++ exceptions.
            self.call("broadcast", |pg| unsafe { ijepa_c10d_broadcast(pg, handle(c), root_c) })
        })
    }

    fn root(&self, root: usize) -> Result<c_int> {
        if root >= self.world_size {
            return Err(Error::Dist(format!("{}: broadcast root {root} is not a rank", self.who())));
        }
        Ok(root as c_int)
    }

    /// Gathers `t` from every rank: returns `[world_size, ...t.size()]`, row `r` from rank `r`.
    ///
    /// # Shapes
    /// `t: [...]` (the same on every rank) -> `[world_size, ...]`
    pub fn all_gather(&self, t: &Tensor) -> Result<Tensor> {
        let shape_in = t.size();
        // Gloo's _allgather_base wants output [world * input.size(0), ...]: gather flat.
        let input = t.detach().f_contiguous()?.f_reshape([-1])?;
        let numel = input.numel() as i64;
        let world = self.world_size as i64;
        let output = Tensor::f_empty([world * numel], (input.kind(), input.device()))?;
        // SAFETY: live handles; output has world * numel elements of input's dtype.
        self.call("all-gather", |pg| unsafe { ijepa_c10d_allgather(pg, handle(&output), handle(&input)) })?;
        let mut shape = vec![world];
        shape.extend(shape_in);
        Ok(output.f_reshape(shape)?)
    }

    /// Blocks until every rank has reached the barrier.
    pub fn barrier(&self) -> Result<()> {
        // SAFETY: live group handle.
        self.call("barrier", |pg| unsafe { ijepa_c10d_barrier(pg) })
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        // SAFETY: `raw` came from ijepa_c10d_create and is destroyed exactly once.
        if let Some(msg) = take_error(unsafe { ijepa_c10d_destroy(self.raw) }) {
            tracing::warn!("{}: destroying the process group: {msg}", self.who());
        }
        self.raw = std::ptr::null_mut();
    }
}

/// The prefix of the keys in torchrun's agent store, where this process is a worker of
/// torchrun's (`TORCHELASTIC_USE_AGENT_STORE=True` beside torchrun's RANK and WORLD_SIZE):
/// `ijepa/default_pg/attempt_N`, N its restart count (a store outlives the attempts). `None`
/// elsewhere: rank 0 hosts the store (a variable left in a shell made SLURM's ranks and
/// `ijepa launch`'s wait for a store no one hosted).
fn agent_prefix(get: impl Fn(&str) -> Option<String>) -> Option<String> {
    // (torchrun names its run too: a hand launch's RANK beside a variable left in the shell
    // waited for a store no one hosted)
    let torchrun = torchrun_vars_set(&get) && get("TORCHELASTIC_RUN_ID").is_some_and(|v| !v.trim().is_empty());
    (torchrun && get("TORCHELASTIC_USE_AGENT_STORE").as_deref() == Some("True"))
        .then(|| format!("ijepa/default_pg/attempt_{}", get("TORCHELASTIC_RESTART_COUNT").map_or_else(|| "0".to_string(), |a| a.trim().to_string())))
}

/// The message of a failed [`ProcessGroup::new`], naming the phase and the likely cause;
/// `hosts`: whether this rank hosted the rendezvous store (rank 0, unless torchrun's agent does).
fn create_error(
    env: &DistEnv,
    backend: Backend,
    timeout: Duration,
    (phase, hosts): (c_int, bool),
    iface: &str,
    host: &str,
    msg: &str,
) -> String {
    let who = format!("rank {} of {}", env.rank, env.world_size);
    let addr = format!("{}:{}", env.master_addr, env.master_port);
    let t = fmt_duration(timeout);
    let lower = msg.to_ascii_lowercase();
    match phase {
        1 if hosts && (lower.contains("client socket") || lower.contains("trying to connect")) => format!(
            "{who}: the rendezvous server is listening on port {} but rank 0 could not reach it at {addr} within {t}: MASTER_ADDR must name rank 0's own host [c10d: {msg}]",
            env.master_port
        ),
        1 if hosts => {
            let cause = if lower.contains("eaddrinuse") || lower.contains("address already in use") {
                "address in use (another job or a leftover process holds it: pick another MASTER_PORT (an `ijepa slurm` script sets it from the job id: edit its `export MASTER_PORT` line), or with `ijepa launch` another --master-port or none, for a free one)"
            } else if lower.contains("eaddrnotavail") || lower.contains("cannot assign requested address") {
                "this host has no such address (MASTER_ADDR must name rank 0's own host)"
            } else {
                "the rendezvous server did not start"
            };
            format!(
                "{who}: could not bind the rendezvous port {} on {}: {cause} [c10d: {msg}]",
                env.master_port, env.master_addr
            )
        }
        1 => format!(
            "{who}: could not reach the master {addr} within {t}: is rank 0 running and MASTER_ADDR/MASTER_PORT right? [c10d: {msg}]"
        ),
        2 => {
            // (an interface the environment named was not said to come from it: a
            // GLOO_SOCKET_IFNAME left in the shell read as a hint to set another variable)
            let what = if !iface.is_empty() {
                format!("interface {iface}")
            } else if !host.is_empty() {
                format!("address {host}")
            } else {
                "this host's default address".to_string()
            };
            let hint = match named_iface(|k| std::env::var(k).ok()).filter(|(_, i)| i == iface) {
                Some((var, _)) => format!("{var} names it; name one this host has, as `ip link` lists them"),
                None => "set IJEPA_GLOO_IFNAME to the network interface to use".to_string(),
            };
            format!("{who}: could not create the Gloo transport on {what} ({hint}) [c10d: {msg}]")
        }
        3 if !looks_like_peer_failure(msg) => {
            let hint = if lower.contains("gpu") || lower.contains("cuda") {
                " (NCCL needs a CUDA GPU per rank; use the gloo backend on CPU)"
            } else {
                ""
            };
            format!("{who}: could not create the {} process group{hint} [c10d: {msg}]", backend.name())
        }
        // (at once, not after the timeout: a peer's address the store gave refused the
        // connection; it read "did not form within 20 s" a second after the start)
        3 if lower.contains("connection refused") => format!(
            "{who}: the {} process group did not form: a peer's address refused the connection (a rank that exited, or the addresses an earlier run left in the store at {addr}: give each run a port of its own) [c10d: {msg}]",
            backend.name()
        ),
        3 => format!(
            "{who}: the {} process group did not form within {t}: every rank must start with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, and reach the others (a rank is missing, crashed, or is firewalled) [c10d: {msg}]",
            backend.name()
        ),
        _ => format!("{who}: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// torchrun's workers use its agent's store under their attempt's prefix; no one else does.
    #[test]
    fn only_torchrun_s_workers_use_its_agent_s_store() {
        fn env<'a>(vars: &'a [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> + 'a {
            move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        }
        let torchrun = [("RANK", "0"), ("WORLD_SIZE", "2"), ("TORCHELASTIC_RUN_ID", "none"), ("TORCHELASTIC_USE_AGENT_STORE", "True"), ("TORCHELASTIC_RESTART_COUNT", "1")];
        assert_eq!(super::agent_prefix(env(&torchrun)).as_deref(), Some("ijepa/default_pg/attempt_1"));
        // (a hand launch's RANK beside the variable left in the shell)
        assert_eq!(super::agent_prefix(env(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("TORCHELASTIC_USE_AGENT_STORE", "True")])), None);
        // (left in the shell of a SLURM step, or of ijepa launch, which clears it)
        assert_eq!(super::agent_prefix(env(&[("SLURM_PROCID", "0"), ("TORCHELASTIC_USE_AGENT_STORE", "True")])), None);
        assert_eq!(super::agent_prefix(env(&[("RANK", "0"), ("WORLD_SIZE", "2")])), None);
        assert_eq!(super::agent_prefix(env(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("TORCHELASTIC_USE_AGENT_STORE", "False")])), None);
    }

    /// Gloo's interface comes from IJEPA_GLOO_IFNAME, else GLOO_SOCKET_IFNAME's first entry,
    /// with the variable that named it (for the error that blames it).
    #[test]
    fn the_gloo_interface_is_named_with_its_variable() {
        let get = |vars: &'static [(&'static str, &'static str)]| move |k: &str| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(named_iface(get(&[("GLOO_SOCKET_IFNAME", " , eth1,eth2")])), Some(("GLOO_SOCKET_IFNAME", "eth1".to_string())));
        assert_eq!(named_iface(get(&[("GLOO_SOCKET_IFNAME", "eth1"), ("IJEPA_GLOO_IFNAME", "ib0")])), Some(("IJEPA_GLOO_IFNAME", "ib0".to_string())));
        // (a blank one names none: the next is read)
        assert_eq!(named_iface(get(&[("GLOO_SOCKET_IFNAME", "eth1"), ("IJEPA_GLOO_IFNAME", " ")])), Some(("GLOO_SOCKET_IFNAME", "eth1".to_string())));
        assert_eq!(named_iface(get(&[])), None);
    }

    /// A group that failed to form because a peer's address refused the connection says so,
    /// not that it waited out the timeout (it failed at once); a silent peer still says that.
    #[test]
    fn a_refused_peer_is_told_from_a_missing_one() {
        let env = DistEnv { rank: 0, world_size: 2, local_rank: 0, local_world_size: 2, local_world_given: true, master_addr: "127.0.0.1".into(), master_port: 29500 };
        let t = Duration::from_secs(20);
        let refused = super::create_error(&env, Backend::Gloo, t, (3, true), "", "", "Gloo connectFullMesh failed with ... SO_ERROR: Connection refused, remote=[127.0.0.1]:30096");
        assert!(refused.contains("a peer's address refused the connection") && !refused.contains("within"), "{refused}");
        let silent = super::create_error(&env, Backend::Gloo, t, (3, true), "", "", "Socket Timeout");
        assert!(silent.contains("did not form within 20 s"), "{silent}");
    }

    /// Rank 0's MASTER_ADDR is told apart when it is no address of this host (a node list
    /// whose first host is another machine), not when it is one.
    #[test]
    fn a_master_address_of_another_host_is_said() {
        assert_eq!(super::not_this_host("127.0.0.1", 29500), None);
        assert_eq!(super::not_this_host("localhost", 29500), None);
        // (TEST-NET-3, reserved for documentation: no address of this host, unless it binds
        // any address, `net.ipv4.ip_nonlocal_bind`)
        if std::net::TcpListener::bind("203.0.113.7:0").is_err() {
            let said = super::not_this_host("203.0.113.7", 29500).expect("another host's address");
            assert!(said.contains("MASTER_ADDR 203.0.113.7 (203.0.113.7) is no address of this host"), "{said}");
        }
    }

    /// A peer that closed its connection (it exited) is its error, not this rank's; a timeout
    /// or another failure is this rank's.
    #[test]
    fn a_closed_peer_is_told_from_a_timeout() {
        let dist = |m: &str| crate::Error::Dist(format!("rank 1 of 2: broadcast failed: {m}"));
        assert!(peer_closed(&dist("Connection closed by peer [127.0.0.1]:903 (a peer probably died ...)")));
        assert!(peer_closed(&dist("Connection reset by peer")));
        assert!(!peer_closed(&dist("Operation timed out! (a peer probably died ...)")));
        assert!(!peer_closed(&dist("NCCL error: unhandled cuda error")));
        assert!(!peer_closed(&crate::Error::Data("closed by peer".into())));
    }

    #[test]
    fn gloo_source_locations_are_dropped() {
        assert_eq!(
            strip_source_locations(
                "[/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:547] Connection closed by peer [127.0.0.1]:3976"
            ),
            "Connection closed by peer [127.0.0.1]:3976"
        );
        assert_eq!(strip_source_locations("plain [x] text"), "plain [x] text");
        assert_eq!(strip_source_locations("unclosed [a/b:1"), "unclosed [a/b:1");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration(Duration::from_secs(30)), "30 s");
        assert_eq!(fmt_duration(Duration::from_millis(2500)), "2.5 s");
        assert_eq!(fmt_duration(Duration::from_millis(300)), "300 ms");
    }

    /// A world of one process, its rendezvous on 127.0.0.1:`port`.
    fn single_rank(port: u16) -> DistEnv {
        DistEnv {
            rank: 0,
            world_size: 1,
            local_rank: 0,
            local_world_size: 1,
            local_world_given: true,
            master_addr: "127.0.0.1".into(),
            master_port: port,
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    #[test]
    fn single_rank_gloo_group_works() {
        let env = single_rank(free_port());
        let pg = ProcessGroup::new(&env, Backend::Gloo, Duration::from_secs(10)).unwrap();
        let t = Tensor::from_slice(&[1.0f32, 2.0]);
        pg.all_reduce(&t, ReduceOp::Avg).unwrap();
        assert_eq!(Vec::<f32>::try_from(&t).unwrap(), vec![1.0, 2.0]);
        let g = pg.all_gather(&t).unwrap();
        assert_eq!(g.size(), vec![1, 2]);
        pg.barrier().unwrap();
        let e = pg.broadcast(&t, 1).unwrap_err().to_string();
        assert!(e.contains("broadcast root 1 is not a rank"), "{e}");
    }

    #[test]
    fn nccl_without_a_gpu_is_a_clear_error() {
        if !has_nccl() || tch::Cuda::is_available() {
            return;
        }
        let env = single_rank(free_port());
        let e = ProcessGroup::new(&env, Backend::Nccl, Duration::from_secs(5)).unwrap_err().to_string();
        println!("{e}");
        assert!(e.contains("rank 0 of 1: could not create the nccl process group (NCCL needs a CUDA GPU"), "{e}");
    }

    #[test]
    fn nccl_without_the_feature_is_a_clear_error() {
        if has_nccl() {
            return;
        }
        let env = single_rank(1);
        let e = ProcessGroup::new(&env, Backend::Nccl, Duration::from_secs(1)).unwrap_err().to_string();
        assert!(e.contains("this build has no NCCL backend: rebuild with --features nccl"), "{e}");
    }
}
