//! Multi-process tests of `ijepa_engine::dist` on Gloo over 127.0.0.1.
//!
//! Each parent test spawns child processes of this very test binary running one `child_*`
//! test (`--exact`), with RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT and the marker
//! `IJEPA_DIST_CHILD=1` set; without the marker a `child_*` test returns at once. Children
//! check their own results (a failed assert exits non-zero) and the parent checks the exit
//! statuses, output and timing.

use ijepa_engine::dist::{bench_all_reduce, broadcast_tensors, Backend, DistEnv, GradBuckets, ProcessGroup, ReduceOp};
use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};
use tch::{Kind, Tensor};

const MARKER: &str = "IJEPA_DIST_CHILD";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Spawns this test binary running `test` as `rank` of `world`, extra env in `vars`.
fn spawn(test: &str, rank: usize, world: usize, port: u16, vars: &[(&str, String)]) -> Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(MARKER, "1")
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env_remove("LOCAL_RANK")
        .env_remove("LOCAL_WORLD_SIZE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits for `child`, killing it after `limit` (then panics: a hang is a failure).
/// The `DIST-ELAPSED-MS` a child printed (time inside the rank, not process start-up).
fn elapsed_ms(text: &str) -> u128 {
    text.lines()
        .find_map(|l| l.strip_prefix("DIST-ELAPSED-MS: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no DIST-ELAPSED-MS in: {text}"))
}

fn wait(child: Child, limit: Duration, what: &str) -> Output {
    let id = child.id();
    let start = Instant::now();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: plain kill(2) of the child we spawned.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
            let out = rx.recv().unwrap().unwrap();
            panic!(
                "{what} hung for {:?}: killed\nstdout:\n{}\nstderr:\n{}",
                start.elapsed(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn assert_ok(out: &Output, what: &str) {
    // Shown with --nocapture: the error texts and timings the children saw.
    for line in text(out).lines() {
        if let Some(i) = line.find("DIST-") {
            println!("[{what}] {}", &line[i..]);
        }
    }
    assert!(out.status.success(), "{what} failed ({}):\n{}", out.status, text(out));
    // The child test really ran (not filtered out).
    assert!(text(out).contains("1 passed"), "{what} ran no test:\n{}", text(out));
}

/// Runs `test` on `world` ranks and checks every rank passed.
fn run_ranks(test: &str, world: usize, limit: Duration) {
    let port = free_port();
    let children: Vec<Child> = (0..world).map(|r| spawn(test, r, world, port, &[])).collect();
    for (r, c) in children.into_iter().enumerate() {
        let out = wait(c, limit, &format!("{test} rank {r}"));
        assert_ok(&out, &format!("{test} rank {r}"));
    }
}

/// In a child: the process group of this rank (None in the parent run).
fn child_group(timeout: Duration) -> Option<ProcessGroup> {
    std::env::var(MARKER).ok()?;
    tch::set_num_threads(1);
    let env = DistEnv::from_env().unwrap().expect("child env");
    Some(ProcessGroup::new(&env, Backend::Gloo, timeout).unwrap())
}

fn values(t: &Tensor) -> Vec<f64> {
    Vec::<f64>::try_from(&t.to_kind(Kind::Double).view([-1])).unwrap()
}

// ---------------------------------------------------------------------------------------
// a. collectives, values checked exactly

#[test]
fn collectives_on_two_ranks() {
    run_ranks("child_collectives", 2, Duration::from_secs(30));
}

#[test]
fn child_collectives() {
    let Some(pg) = child_group(Duration::from_secs(20)) else { return };
    let r = pg.rank() as f64;
    assert_eq!(pg.world_size(), 2);

    // sum / avg (f32 and a non-contiguous f64 view)
    let t = Tensor::from_slice(&[1.0 + r, 10.0 * (r + 1.0), -3.0]);
    pg.all_reduce(&t, ReduceOp::Sum).unwrap();
    assert_eq!(values(&t), vec![3.0, 30.0, -6.0]);
    let rf = r as f32;
    let t = Tensor::from_slice(&[2.0f32 * (rf + 1.0), rf]);
    pg.all_reduce(&t, ReduceOp::Avg).unwrap();
    assert_eq!(values(&t), vec![3.0, 0.5]);
    let base = Tensor::from_slice(&[r, 100.0, r + 1.0, 100.0]).view([2, 2]);
    let col = base.select(1, 0); // non-contiguous [r, r + 1]
    pg.all_reduce(&col, ReduceOp::Sum).unwrap();
    assert_eq!(values(&base), vec![1.0, 100.0, 3.0, 100.0]);
    // integer sum
    let t = Tensor::from_slice(&[5i64 + r as i64]);
    pg.all_reduce(&t, ReduceOp::Sum).unwrap();
    assert_eq!(values(&t), vec![11.0]);

    // coalesced: two dtypes, several shapes
    let ts = [
        Tensor::full([2, 3], 1.0 + r, (Kind::Float, tch::Device::Cpu)),
        Tensor::from_slice(&[r, 2.0 * r]),
        Tensor::full([4], 3.0 * (r + 1.0), (Kind::Float, tch::Device::Cpu)),
    ];
    pg.all_reduce_coalesced(&ts, ReduceOp::Avg).unwrap();
    assert_eq!(values(&ts[0]), vec![1.5; 6]);
    assert_eq!(values(&ts[1]), vec![0.5, 1.0]);
    assert_eq!(values(&ts[2]), vec![4.5; 4]);

    // broadcast from each root
    for root in 0..2 {
        let t = Tensor::from_slice(&[r * 7.0 + 1.0, -r]);
        pg.broadcast(&t, root).unwrap();
        let rr = root as f64;
        assert_eq!(values(&t), vec![rr * 7.0 + 1.0, -rr]);
    }

    // all-gather
    let t = Tensor::from_slice(&[r, r + 0.5, -r]).view([3, 1]);
    let g = pg.all_gather(&t).unwrap();
    assert_eq!(g.size(), vec![2, 3, 1]);
    assert_eq!(values(&g), vec![0.0, 0.5, 0.0, 1.0, 1.5, -1.0]);

    // broadcast_tensors: parameters (requiring grad) take rank 1's values
    let p = Tensor::full([3], r, (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    let q = Tensor::full([2, 2], 10.0 + r, (Kind::Double, tch::Device::Cpu));
    broadcast_tensors(&pg, &[p.shallow_clone(), q.shallow_clone()], 1).unwrap();
    assert_eq!(values(&p), vec![1.0; 3]);
    assert_eq!(values(&q), vec![11.0; 4]);

    // benchmark rows: sizes rounded to whole f32s, positive times and bandwidths
    let rows = bench_all_reduce(&pg, &[1024, 65536, 2], 3).unwrap();
    assert_eq!(rows.iter().map(|r| r.0).collect::<Vec<_>>(), vec![1024, 65536, 4]);
    for (bytes, secs, algbw, busbw) in rows {
        assert!(secs > 0.0 && algbw > 0.0, "{bytes}: {secs} s, {algbw} GB/s");
        assert!((busbw - algbw).abs() < 1e-9 * algbw.max(1.0), "busbw {busbw} vs algbw {algbw} on 2 ranks");
    }

    pg.barrier().unwrap();
}

// ---------------------------------------------------------------------------------------
// b. gradient buckets equal the mean of the per-rank gradients

#[test]
fn grad_buckets_average_on_two_ranks() {
    run_ranks("child_grad_buckets", 2, Duration::from_secs(30));
}

/// Per-rank gradients of a tiny model: parameters of several shapes, the same initial values
/// on every rank (seeded), data depending on the rank.
fn model_grads(rank: usize, params: &[Tensor]) {
    for p in params {
        let mut g = p.grad();
        if g.defined() {
            let _ = g.zero_();
        }
    }
    tch::manual_seed(100 + rank as i64);
    let x = Tensor::randn([4, 6], (Kind::Float, tch::Device::Cpu));
    let h = x.matmul(&params[0]).relu() + &params[1]; // [4, 5]
    let h = h.matmul(&params[2]).sum_dim_intlist([1i64].as_slice(), false, None::<Kind>) * &params[3]; // [4]
    let loss = h.pow_tensor_scalar(2).mean(None::<Kind>);
    loss.backward();
}

fn make_params() -> Vec<Tensor> {
    tch::manual_seed(7);
    let shapes: [&[i64]; 5] = [&[6, 5], &[5], &[5, 3], &[1], &[7, 2]];
    shapes.iter().map(|s| Tensor::randn(*s, (Kind::Float, tch::Device::Cpu)).set_requires_grad(true)).collect()
}

#[test]
fn child_grad_buckets() {
    let Some(pg) = child_group(Duration::from_secs(20)) else { return };
    let params = make_params();
    // Reference: both ranks' gradients computed locally.
    let mut expected = Vec::new();
    for r in 0..2 {
        model_grads(r, &params);
        expected.push(params.iter().take(4).map(|p| p.grad().copy()).collect::<Vec<_>>());
    }
    // Buckets of 64 bytes: [6,5]=120 B alone, [5]+... several buckets.
    let buckets = GradBuckets::new(&params, 64).unwrap();
    assert!(buckets.num_buckets() >= 3, "{:?}", buckets.bucket_lens());
    model_grads(pg.rank(), &params);
    // params[4] is unused by the model: undefined on both ranks -> stays undefined.
    assert!(!params[4].grad().defined());
    let loss_mean = buckets.average_with(&pg, &[pg.rank() as f64 + 0.25]).unwrap();
    assert_eq!(loss_mean, vec![0.75]);
    for (i, p) in params.iter().take(4).enumerate() {
        let mean = (&expected[0][i] + &expected[1][i]) / 2.0;
        let diff = (p.grad() - &mean).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "param {i}: max diff {diff}");
    }
    assert!(!params[4].grad().defined(), "a gradient nobody had appeared");

    // A gradient present on rank 0 only: rank 1 gets it materialised, both hold the mean.
    let p = Tensor::zeros([3], (Kind::Float, tch::Device::Cpu)).set_requires_grad(true);
    if pg.rank() == 0 {
        (&p * Tensor::from_slice(&[2.0f32, 4.0, 6.0])).sum(None::<Kind>).backward();
    }
    let b = GradBuckets::new(&[p.shallow_clone()], 1 << 20).unwrap();
    b.average(&pg).unwrap();
    assert!(p.grad().defined());
    assert_eq!(values(&p.grad()), vec![1.0, 2.0, 3.0]);
    pg.barrier().unwrap();
}

// ---------------------------------------------------------------------------------------
// c. a dead peer: the next collective errs within the timeout instead of hanging

#[test]
fn dead_peer_fails_the_next_collective() {
    let port = free_port();
    let start = Instant::now();
    let r0 = spawn("child_dead_peer", 0, 2, port, &[]);
    let r1 = spawn("child_dead_peer", 1, 2, port, &[]);
    let o1 = wait(r1, Duration::from_secs(30), "dead-peer rank 1");
    assert!(!o1.status.success(), "rank 1 should have died:\n{}", text(&o1));
    let o0 = wait(r0, Duration::from_secs(40), "dead-peer rank 0");
    let elapsed = start.elapsed();
    assert_ok(&o0, "dead-peer rank 0");
    let t = text(&o0);
    assert!(t.contains("DIST-ERROR: distributed: rank 0 of 2: all-reduce failed"), "{t}");
    assert!(t.contains("a peer probably died or is unreachable, or rank 0 spent longer than the timeout") && t.contains("; timeout 30 s)"), "{t}");
    // c10d's timeout is 30 s; a dead peer is noticed by its cause (the closed connection),
    // before that timeout: measured inside rank 0, so slow process starts do not count
    assert!(elapsed_ms(&t) < 30_000, "rank 0 waited for the timeout: {t}");
    let _ = elapsed;
}

#[test]
fn child_dead_peer() {
    let Some(pg) = child_group(Duration::from_secs(30)) else { return };
    let t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
    pg.all_reduce(&t, ReduceOp::Sum).unwrap();
    if pg.rank() == 1 {
        // Die abruptly, as a crashed or OOM-killed rank would.
        std::process::abort();
    }
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let mut err = None;
    // The first all-reduce after the death may still be in flight when the peer dies; a few
    // tries must fail, each bounded by the timeout.
    for _ in 0..3 {
        if let Err(e) = pg.all_reduce(&t, ReduceOp::Sum) {
            err = Some(e);
            break;
        }
    }
    let e = err.expect("all-reduce with a dead peer succeeded");
    println!("DIST-ERROR: {e}");
    println!("DIST-ELAPSED: {:?}", start.elapsed());
    println!("DIST-ELAPSED-MS: {}", start.elapsed().as_millis());
    assert!(start.elapsed() < Duration::from_secs(31));
    // Destroying a group whose peer died must not hang either.
    drop(pg);
}

/// A peer that is alive but never joins the collective (stuck elsewhere): the timeout fires.
#[test]
fn silent_peer_times_out() {
    let port = free_port();
    let start = Instant::now();
    let r0 = spawn("child_silent_peer", 0, 2, port, &[]);
    let r1 = spawn("child_silent_peer", 1, 2, port, &[]);
    let o0 = wait(r0, Duration::from_secs(20), "silent-peer rank 0");
    assert_ok(&o0, "silent-peer rank 0");
    let t = text(&o0);
    assert!(t.contains("rank 0 of 2: all-reduce failed"), "{t}");
    assert!(t.contains("timeout 2 s"), "{t}");
    let _ = wait(r1, Duration::from_secs(20), "silent-peer rank 1");
    // rank 0 failed by the 2 s timeout (its own window, [1.5 s, 6 s), is asserted inside),
    // while rank 1 was still alive (it sleeps 5 s): the cause, whatever the machine's speed
    assert!(elapsed_ms(&t) < 5_000, "rank 0 did not time out before its silent peer exited: {t}");
    let _ = start;
}

#[test]
fn child_silent_peer() {
    let Some(pg) = child_group(Duration::from_secs(2)) else { return };
    let t = Tensor::ones([4], (Kind::Float, tch::Device::Cpu));
    if pg.rank() == 1 {
        // Alive, connected, but never calls the collective; exit without tearing down.
        std::thread::sleep(Duration::from_secs(5));
        std::process::exit(0);
    }
    let start = Instant::now();
    let e = pg.all_reduce(&t, ReduceOp::Sum).expect_err("all-reduce without the peer succeeded");
    println!("DIST-ERROR: {e}");
    println!("DIST-ELAPSED: {:?}", start.elapsed());
    println!("DIST-ELAPSED-MS: {}", start.elapsed().as_millis());
    assert!(start.elapsed() >= Duration::from_millis(1500), "failed too early: {:?}", start.elapsed());
    assert!(start.elapsed() < Duration::from_secs(6), "took {:?}", start.elapsed());
    drop(pg);
}

// ---------------------------------------------------------------------------------------
// d. rendezvous port already taken

#[test]
fn taken_port_is_a_clear_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let start = Instant::now();
    let c = spawn("child_expect_create_error", 0, 2, port, &[("EXPECT", "could not bind the rendezvous port".into())]);
    let out = wait(c, Duration::from_secs(20), "taken-port rank 0");
    assert_ok(&out, "taken-port rank 0");
    let t = text(&out);
    assert!(t.contains(&format!("could not bind the rendezvous port {port} on 127.0.0.1: address in use")), "{t}");
    // refused by its cause, before the 3 s rendezvous timeout (measured inside the rank)
    assert!(elapsed_ms(&t) < 3_000, "{t}");
    let _ = start;
    drop(listener);
}

/// Creates the group (timeout from TIMEOUT_MS, default 3 s), expects an error containing
/// EXPECT, prints it and the elapsed time.
#[test]
fn child_expect_create_error() {
    if std::env::var(MARKER).is_err() {
        return;
    }
    let expect = std::env::var("EXPECT").unwrap();
    let ms: u64 = std::env::var("TIMEOUT_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(3000);
    let env = DistEnv::from_env().unwrap().unwrap();
    let start = Instant::now();
    let e = ProcessGroup::new(&env, Backend::Gloo, Duration::from_millis(ms)).unwrap_err().to_string();
    println!("DIST-ERROR: {e}");
    println!("DIST-ELAPSED: {:?}", start.elapsed());
    println!("DIST-ELAPSED-MS: {}", start.elapsed().as_millis());
    assert!(e.contains(&expect), "{e}");
}

// ---------------------------------------------------------------------------------------
// e. unreachable master

#[test]
fn unreachable_master_is_a_clear_error() {
    let port = free_port(); // nobody listens there
    let start = Instant::now();
    let c = spawn(
        "child_expect_create_error",
        1,
        2,
        port,
        &[("EXPECT", format!("could not reach the master 127.0.0.1:{port} within 3 s"))],
    );
    let out = wait(c, Duration::from_secs(20), "unreachable-master rank 1");
    assert_ok(&out, "unreachable-master rank 1");
    // one message, not c10d's log of every connect retry with its C++ stack trace
    let t = text(&out);
    assert!(!t.contains("[c10d]") && !t.contains("frame #"), "{t}");
    // c10d's connect retries back off with jitter: it gives up 0.5-5 s after the timeout.
    assert!(start.elapsed() < Duration::from_secs(12), "took {:?}", start.elapsed());
}

#[test]
fn unresolvable_master_is_a_clear_error() {
    // c10d alone retried a name that does not resolve until its timeout, then blamed the
    // connection; `.invalid` never resolves (RFC 6761), with or without a name server
    for rank in [0, 1] {
        let start = Instant::now();
        let c = spawn(
            "child_expect_create_error",
            rank,
            2,
            29500,
            &[
                ("MASTER_ADDR", "no-such-host.invalid".into()),
                ("EXPECT", "MASTER_ADDR \"no-such-host.invalid\" does not resolve to an address".into()),
            ],
        );
        let out = wait(c, Duration::from_secs(30), "unresolvable-master");
        assert_ok(&out, "unresolvable-master");
        assert!(start.elapsed() < Duration::from_secs(15), "rank {rank} took {:?}", start.elapsed());
    }
}

#[test]
fn unroutable_master_is_a_clear_error() {
    // A non-routable address: connect attempts get no answer until c10d's timeout.
    let start = Instant::now();
    let c = spawn(
        "child_expect_create_error",
        1,
        2,
        29500,
        &[
            ("MASTER_ADDR", "10.255.255.1".into()),
            ("EXPECT", "could not reach the master 10.255.255.1:29500 within 3 s".into()),
        ],
    );
    let out = wait(c, Duration::from_secs(20), "unroutable-master rank 1");
    assert_ok(&out, "unroutable-master rank 1");
    assert!(start.elapsed() < Duration::from_secs(12), "took {:?}", start.elapsed());
}
