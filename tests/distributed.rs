//! Data-parallel training end to end, on CPU ranks over loopback (Gloo): two ranks of batch B
//! train exactly like one process of batch 2B (I-JEPA and DINO); the replicas stay bit-identical; a dead rank
//! stops the others with a clear error instead of a hang; rendezvous failures are clear.

mod common;
use common::{ijepa, make_folder, scratch, text};

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const EXP: &str = r#"experiment "ddp" {
    seed 5
    data "fashion-mnist" { crop-size 32; batch-size BATCH; workers 1; limit 256 }
    encoder width=32 depth=2 heads=2 patch=4
    predictor depth=1 width=16 heads=2
    mask "multi-block" { min-keep 4 }
    optimizer "adamw" { lr start=2e-4 peak=2e-3 final=1e-5 warmup-epochs=1; }
    epochs EPOCHS
    precision "fp32"
    device "cpu"
}
"#;

fn write_exp(dir: &Path, batch: usize, epochs: usize) -> PathBuf {
    let f = dir.join(format!("ddp-{batch}-{epochs}.kdl"));
    std::fs::write(&f, EXP.replace("BATCH", &batch.to_string()).replace("EPOCHS", &epochs.to_string())).unwrap();
    f
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn pretrain_dir(runs: &Path) -> PathBuf {
    std::fs::read_dir(runs.join("ddp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("pretrain-"))
        .expect("a pretrain folder")
}

fn final_weights(runs: &Path) -> HashMap<String, tch::Tensor> {
    let f = pretrain_dir(runs).join("checkpoints").join("final.safetensors");
    tch::Tensor::read_safetensors(&f).unwrap().into_iter().collect()
}

fn manifest(runs: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(pretrain_dir(runs).join("manifest.json")).unwrap()).unwrap()
}

/// `ijepa run` as rank `rank` of `world` (torchrun variables).
fn rank_cmd(file: &Path, runs: &Path, rank: usize, world: usize, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ijepa"));
    c.args(["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()])
        .env("RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("MASTER_ADDR", "127.0.0.1")
        .env("MASTER_PORT", port.to_string())
        .env("OMP_NUM_THREADS", "1");
    c
}

/// Ranks started by SLURM's srun, which sets no OMP_NUM_THREADS, take their share of the cores
/// (SLURM_CPUS_PER_TASK) where each took every core of the node; and an experiment of one
/// process that SLURM's variables put among several tasks (`ijepa run` in an sbatch script,
/// not under srun) says why it waits.
#[test]
fn slurm_ranks_share_the_cores() {
    let d = scratch("ddp-slurm-threads");
    let file = write_exp(&d, 8, 1);
    let runs = d.join("runs");
    let port = free_port().to_string();
    let ranks: Vec<Child> = (0..2)
        .map(|rank| {
            let rank = rank.to_string();
            Command::new(env!("CARGO_BIN_EXE_ijepa"))
                .args(["run", file.to_str().unwrap(), "--runs-dir", runs.to_str().unwrap()])
                .env_remove("OMP_NUM_THREADS")
                .envs([("SLURM_PROCID", rank.as_str()), ("SLURM_LOCALID", rank.as_str()), ("SLURM_NTASKS", "2"), ("SLURM_TASKS_PER_NODE", "2")])
                .envs([("SLURM_JOB_NODELIST", "localhost"), ("SLURM_CPUS_PER_TASK", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", port.as_str())])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (rank, child) in ranks.into_iter().enumerate() {
        let o = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert!(o.status.success(), "rank {rank}: {text}");
        assert!(text.contains(&format!("rank {rank}: 1 thread(s), SLURM_CPUS_PER_TASK")), "rank {rank}: {text}");
        // (said once, by rank 0)
        assert_eq!(text.contains("asks for one process (no distributed block), but SLURM's variables say 2 tasks"), rank == 0, "rank {rank}: {text}");
    }
}

#[test]
fn two_ranks_train_like_one_process_with_the_global_batch() {
    let d = scratch("ddp-equal");
    let (one, two) = (d.join("one"), d.join("two"));
    let single = ijepa(&["run", write_exp(&d, 32, 2).to_str().unwrap(), "--runs-dir", one.to_str().unwrap()]);
    assert!(single.status.success(), "{}", text(&single));
    let o = ijepa(&[
        "launch",
        "--nproc-per-node",
        "2",
        write_exp(&d, 16, 2).to_str().unwrap(),
        "--",
        "--runs-dir",
        two.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let m = manifest(&two);
    assert_eq!(m["world_size"], 2);
    assert_eq!(m["status"], "done");
    // 256 images, global batch 32: 8 steps per epoch, 2 epochs, in both runs
    assert_eq!(m["steps"], 16);
    assert_eq!(manifest(&one)["steps"], 16);
    let digests = m["rank_digests"].as_array().expect("rank digests").clone();
    assert_eq!(digests.len(), 2);
    assert_eq!(digests[0], digests[1], "replicas must be bit-identical");

    let (a, b) = (final_weights(&one), final_weights(&two));
    assert_eq!(a.len(), b.len());
    let mut worst = 0f64;
    for (name, ta) in &a {
        let tb = &b[name];
        let err = (ta - tb).abs().max().double_value(&[]);
        let scale = ta.abs().max().double_value(&[]).max(1e-3);
        worst = worst.max(err / scale);
        assert!(err <= 1e-4 + 1e-3 * scale, "{name}: max abs diff {err:e} (scale {scale:e})");
    }
    // and it is not trivially equal to the initial weights: training moved them
    let one_loss = manifest(&one)["final_loss"].as_f64().unwrap();
    let two_loss = m["final_loss"].as_f64().unwrap();
    assert!((one_loss - two_loss).abs() < 1e-3 * one_loss.abs().max(1.0), "final loss {one_loss} vs {two_loss}");
    eprintln!("largest relative difference of the final weights: {worst:e}");
    // what the README claims (measured 7e-7): float32 reduction-order noise, not a drift
    assert!(worst <= 1e-5, "largest relative difference {worst:e}");
}

/// DINO on two ranks of batch B trains like one process of batch 2B too: the gradients are
/// averaged as for every recipe, the centre moves with the global batch's mean teacher
/// output (each rank's mean, averaged over the ranks; it was refused, "DINO runs on one
/// process for now"), and the student's stochastic depth draws for each image what one
/// process draws for it (keyed by the image, not by its place in a rank's batch).
#[test]
fn dino_on_two_ranks_trains_like_one_process_with_the_global_batch() {
    let d = scratch("ddp-dino");
    let exp = |batch: usize| {
        let f = d.join(format!("dino-{batch}.kdl"));
        let text = EXP
            .replace("BATCH", &batch.to_string())
            .replace("EPOCHS", "2")
            .replace("crop-size 32", "crop-size 16")
            .replace("    predictor depth=1 width=16 heads=2\n    mask \"multi-block\" { min-keep 4 }\n", "    recipe \"dino\"\n    dino { out-dim 64; hidden-dim 32; bottleneck-dim 16; local-crops 2; local-size 8; drop-path-rate 0.3; }\n");
        assert!(text.contains("recipe \"dino\""), "{text}");
        std::fs::write(&f, text).unwrap();
        f
    };
    let (one, two) = (d.join("one"), d.join("two"));
    let single = ijepa(&["run", exp(32).to_str().unwrap(), "--runs-dir", one.to_str().unwrap()]);
    assert!(single.status.success(), "{}", text(&single));
    let o = ijepa(&["launch", "--nproc-per-node", "2", exp(16).to_str().unwrap(), "--", "--runs-dir", two.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let m = manifest(&two);
    assert_eq!((m["world_size"].as_u64(), m["status"].as_str(), m["steps"].as_u64()), (Some(2), Some("done"), Some(16)));
    let digests = m["rank_digests"].as_array().expect("rank digests").clone();
    assert_eq!(digests[0], digests[1], "replicas must be bit-identical");
    let (a, b) = (final_weights(&one), final_weights(&two));
    assert_eq!(a.len(), b.len());
    // the keys' third of each qkv bias is left out: attention is invariant to it, its true
    // gradient is zero, and AdamW turns the float noise of its gradient into steps of the
    // learning rate's size (measured: the keys' bias 1e-5 apart, the queries' and values' 1e-8)
    let mut worst = 0f64;
    for (name, ta) in &a {
        let n = ta.size()[0] / 3;
        let queries_values = |t: &tch::Tensor| tch::Tensor::cat(&[t.narrow(0, 0, n), t.narrow(0, 2 * n, n)], 0);
        let (ta, tb) = match name.ends_with("attn.qkv.bias") {
            true => (queries_values(ta), queries_values(&b[name])),
            false => (ta.shallow_clone(), b[name].shallow_clone()),
        };
        let err = (&ta - &tb).abs().max().double_value(&[]);
        let scale = ta.abs().max().double_value(&[]).max(1e-3);
        worst = worst.max(err / scale);
        assert!(err <= 1e-5 * scale, "{name}: max abs diff {err:e} (scale {scale:e})");
    }
    eprintln!("DINO: largest relative difference of the final weights: {worst:e}");
    // the centre moved, and is the global batch's (each rank's own mean was 1e-2 off)
    let c = &a["dino_loss.center"];
    assert!(c.abs().sum(tch::Kind::Float).double_value(&[]) > 0.0);
    assert!((c - &b["dino_loss.center"]).abs().max().double_value(&[]) <= 1e-6 * c.abs().max().double_value(&[]));
}

fn wait_timeout(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if let Some(s) = child.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn metrics_rows(runs: &Path) -> usize {
    common::pretrain_in(&runs.join("ddp"))
        .and_then(|run| std::fs::read_to_string(run.join("metrics.csv")).ok())
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0)
}

/// Two ranks of a long run (rank 0's stderr piped) in the scratch folder `name`, once training
/// is under way (rank 0 has written metrics rows); and their runs folder.
fn two_ranks_training(name: &str) -> (Child, Child, PathBuf) {
    let d = scratch(name);
    let file = write_exp(&d, 16, 50);
    let runs = d.join("runs");
    let port = free_port();
    let mut r0 = rank_cmd(&file, &runs, 0, 2, port).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let r1 = rank_cmd(&file, &runs, 1, 2, port).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let t0 = Instant::now();
    while metrics_rows(&runs) < 3 {
        assert!(t0.elapsed() < Duration::from_secs(120), "training did not start");
        assert!(r0.try_wait().unwrap().is_none(), "rank 0 ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    (r0, r1, runs)
}

#[test]
fn a_killed_rank_stops_the_other_with_a_clear_error() {
    let (mut r0, mut r1, runs) = two_ranks_training("ddp-kill");
    r1.kill().unwrap();
    r1.wait().unwrap();
    let killed = Instant::now();
    let status = wait_timeout(&mut r0, Duration::from_secs(30));
    let Some(status) = status else {
        r0.kill().unwrap();
        panic!("rank 0 still running 30 s after rank 1 died");
    };
    let mut err = String::new();
    std::io::Read::read_to_string(r0.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "rank 0 must fail: {err}");
    assert!(err.contains("rank 0 of 2"), "the error names the rank: {err}");
    let took = killed.elapsed();
    eprintln!("rank 0 stopped {:.1} s after rank 1 was killed: {}", took.as_secs_f64(), err.trim());
    // stopped by the cause (the dead peer's closed connection; the wait above allows 30 s,
    // the collective timeout is 30 minutes), and the error says so
    assert!(err.contains("a peer probably died"), "the error names the cause: {err}");
    // the run folder says so and keeps its checkpoint policy: status failed, not done
    let m = manifest(&runs);
    assert_eq!(m["status"], "failed");
}

/// `d/f.kdl`: a tiny I-JEPA pretraining of `epochs` on the image folder `root` (as written: a
/// relative one is read from each rank's working folder), batch 8, with `data_extra` appended
/// to the data block's settings.
fn folder_exp(d: &Path, root: &str, data_extra: &str, epochs: usize) -> PathBuf {
    let f = d.join("f.kdl");
    std::fs::write(
        &f,
        format!(
            "experiment \"ddp\" {{\n    data \"image-folder\" root=\"{root}\" {{ crop-size 32; batch-size 8; workers 1{data_extra} }}\n    encoder width=16 depth=1 heads=2 patch=4\n    predictor depth=1 width=8 heads=2\n    mask \"multi-block\" {{ min-keep 3 }}\n    epochs {epochs}\n    log-every 1\n    precision \"fp32\"\n    device \"cpu\"\n}}\n"
        ),
    )
    .unwrap();
    f
}

/// `ijepa launch` of `file` on 2 ranks into `runs`, to its end, one thread a rank.
fn launch_two(file: &Path, runs: &Path) -> std::process::Output {
    launch_two_threads(file, runs, Some("1"))
}

/// [`launch_two`] with OMP_NUM_THREADS `threads` (`None`: unset, the launcher shares the cores).
fn launch_two_threads(file: &Path, runs: &Path, threads: Option<&str>) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ijepa"));
    cmd.args(["launch", "--nproc-per-node", "2", file.to_str().unwrap(), "--", "--runs-dir", runs.to_str().unwrap()]);
    match threads {
        Some(n) => cmd.env("OMP_NUM_THREADS", n),
        None => cmd.env_remove("OMP_NUM_THREADS"),
    };
    cmd.output().unwrap()
}

/// `ijepa launch` shares the machine's cores out to its ranks for pretraining; rank 0 then
/// evaluates alone, on all of them (it evaluated on its share, 1 thread of 2: slower, and with
/// numbers a thread count apart from a one-process run's).
#[test]
fn rank_0_evaluates_on_the_cores_the_launch_shared_out() {
    let d = scratch("ddp-eval-threads");
    let f = d.join("e.kdl");
    std::fs::write(&f, EXP.replace("BATCH", "8").replace("EPOCHS", "1").replace("    device \"cpu\"\n", "    device \"cpu\"\n    eval \"knn\" { k 5 }\n")).unwrap();
    let runs = d.join("runs");
    let o = launch_two_threads(&f, &runs, None);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    let cores = std::thread::available_parallelism().unwrap().get();
    let share = (cores / 2).max(1);
    let eval = std::fs::read_dir(runs.join("ddp")).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().contains("eval-knn-")).expect("the evaluation ran");
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(eval.join("eval.json")).unwrap()).unwrap();
    let threads = |n: usize| if n == 1 { "cpu (1 thread)".to_string() } else { format!("cpu ({n} threads)") };
    assert!(record["device"].as_str().unwrap().starts_with(&threads(cores)), "{record}");
    // (the pretraining, on its share)
    let m = manifest(&runs);
    assert!(m["device"].as_str().unwrap().starts_with(&threads(share)), "{m}");
}

/// Rank 0's monitor failing (a held-out image it cannot read) stops every rank with it: the
/// others waited in their next collective and blamed a closed connection, and the launcher
/// could name one of them as the rank that failed.
#[test]
fn a_monitor_failure_on_rank_0_stops_the_other_ranks_with_it() {
    let d = scratch("ddp-monitor-error");
    let data = d.join("data");
    make_folder(&data, 2, 48);
    // half the images damaged after their signature: pretraining passes over them (`on-error
    // "skip"`), the monitor reads every image it holds out
    for c in 0..2 {
        for i in (0..48).step_by(2) {
            std::fs::write(data.join(format!("class_{c}")).join(format!("img_{i}.png")), b"\x89PNG\r\n\x1a\n truncated").unwrap();
        }
    }
    let f = folder_exp(&d, &data.display().to_string(), "; on-error \"skip\"", 2);
    let with_monitor = std::fs::read_to_string(&f).unwrap().replace("    epochs", "    monitor every=1 images=20 k=3\n    epochs");
    std::fs::write(&f, with_monitor).unwrap();
    let o = launch_two(&f, &d.join("runs"));
    let t = text(&o);
    assert!(!o.status.success() && t.contains("corrupt PNG"), "{t}");
    assert!(t.contains("rank 0's monitor at epoch 0 failed (the cause is in its output); this rank stopped with it"), "{t}");
    assert!(t.contains("rank 0 exited with status 1; stopped the other ranks"), "{t}");
}

/// An image another rank than rank 0 cannot read (on-error "fail") stops every rank at the
/// step it was due, with the steps done checkpointed: rank 0 waited in the step's gradient
/// collective, failed as if its peer had died, and the steps since the last checkpoint were
/// lost. Once the image is readable the same command resumes there.
#[test]
fn a_data_error_on_another_rank_keeps_the_steps_done() {
    let d = scratch("ddp-data-error");
    let data = d.join("data");
    make_folder(&data, 2, 64);
    let bad = data.join("class_1").join("img_3.png");
    let good = std::fs::read(&bad).unwrap();
    // (this seed's permutation gives this image to rank 1, in its epoch-1 batch for step 2)
    std::fs::write(&bad, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let f = folder_exp(&d, &data.display().to_string(), "", 3);
    let runs = d.join("runs");
    let launch = || launch_two(&f, &runs);
    let o = launch();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("rank 1 could not load its batch for step 2") && t.contains("img_3.png"), "rank 1's failure, named on rank 0 and with its cause: {t}");
    // ... and by the launcher, whichever rank it saw end first (rank 0 exits 3: stopped with it)
    assert!(t.contains("rank 1 exited with status 1; stopped the other ranks") && o.status.code() == Some(1), "{t}");
    assert!(t.contains("the 1 steps done are checkpointed in"), "{t}");
    let m = manifest(&runs);
    assert_eq!((m["status"].as_str(), m["steps"].as_u64()), (Some("failed"), Some(1)), "{m}");
    assert!(pretrain_dir(&runs).join("checkpoints/latest.safetensors").is_file());
    std::fs::write(&bad, good).unwrap();
    let o = launch();
    let t = text(&o);
    assert!(o.status.success() && t.contains("at step 1 "), "{t}");
    assert_eq!(manifest(&runs)["steps"], 24);
}

/// What rank 0 refuses before any stage runs (here a batch larger than each rank's share of
/// the images) stops the other rank with a line that says so: it waited in the pretraining's
/// broadcast and blamed a closed connection, with a word on timeouts, naming a stage.
#[test]
fn a_run_rank_0_refuses_stops_the_other_rank_with_it() {
    let d = scratch("ddp-refused");
    let f = d.join("refused.kdl");
    // 10,000 embedded images give each of 2 ranks 5,000: less than one batch of 6,000
    std::fs::write(&f, EXP.replace("BATCH", "6000").replace("EPOCHS", "1").replace("; limit 256", "")).unwrap();
    let runs = d.join("runs");
    let o = launch_two(&f, &runs);
    let t = text(&o);
    assert!(!o.status.success() && t.contains("pretrain, checked before pretraining: config: loader: 10000 images shared by 2 rank(s) give 5000 per rank, less than one batch of 6000"), "{t}");
    assert!(t.contains("rank 1: rank 0 refused the run before any stage ran (its error says why)") && !t.contains("peer closed"), "{t}");
    assert!(!runs.join("ddp").exists(), "{t}");
}

/// With `on-error "skip"`, an image another rank replaces is counted in the metrics' `skipped`
/// column and listed in the run's `skipped.txt` (rank 1's were only warned about): once an
/// epoch, as one process counts it.
#[test]
fn images_another_rank_skips_are_counted_and_listed() {
    let d = scratch("ddp-skip");
    let data = d.join("data");
    make_folder(&data, 2, 64);
    // (given to rank 1 in epoch 1: see a_data_error_on_another_rank_keeps_the_steps_done),
    // and ten more, which each rank's search for substitutes also meets in the other's share
    let bad: Vec<PathBuf> = std::iter::once(data.join("class_1").join("img_3.png")).chain((0..10).map(|i| data.join("class_0").join(format!("img_{i}.png")))).collect();
    for b in &bad {
        std::fs::write(b, b"\x89PNG\r\n\x1a\n truncated").unwrap();
    }
    let f = folder_exp(&d, &data.display().to_string(), "; on-error \"skip\"", 3);
    let runs = d.join("runs");
    let o = launch_two(&f, &runs);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("rank 1: rank 1:"), "{t}");
    let metrics = std::fs::read_to_string(pretrain_dir(&runs).join("metrics.csv")).unwrap();
    let skipped: u64 = metrics.lines().skip(1).map(|l| l.rsplit(',').next().unwrap().parse::<u64>().unwrap()).sum();
    // each unreadable image once an epoch, as one process counts them (128 images: no tail)
    assert_eq!(skipped, 3 * bad.len() as u64, "{metrics}");
    let listed = std::fs::read_to_string(pretrain_dir(&runs).join("skipped.txt")).unwrap_or_default();
    let mut names: Vec<&str> = listed.lines().collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!((before, names.len()), (bad.len(), bad.len()), "each listed once: {listed}\n{t}");
    assert!(listed.contains("class_1/img_3.png") || listed.contains("img_3.png"), "{listed:?}\n{t}");
}

/// `ijepa launch` of 2 ranks on a long run (stderr piped), once rank 0 has written metrics.
fn launch_and_wait_for_training(name: &str) -> Child {
    launch_in_group(name, false).0
}

/// [`launch_and_wait_for_training`], the launcher in a process group of its own when
/// `own_group` (as a terminal's foreground job is), with the runs folder.
fn launch_in_group(name: &str, own_group: bool) -> (Child, PathBuf) {
    let d = scratch(name);
    let file = write_exp(&d, 16, 50);
    let runs = d.join("runs");
    (launch_file(&file, &runs, own_group), runs)
}

/// `ijepa launch` of 2 ranks of `file` into `runs` (stderr piped), once rank 0 has written
/// metrics.
fn launch_file(file: &Path, runs: &Path, own_group: bool) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ijepa"));
    cmd.args(["launch", "--nproc-per-node", "2", file.to_str().unwrap(), "--", "--runs-dir", runs.to_str().unwrap()])
        .env("OMP_NUM_THREADS", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if own_group {
        cmd.process_group(0);
    }
    let mut launch = cmd.spawn().unwrap();
    let t0 = Instant::now();
    while metrics_rows(runs) < 2 {
        assert!(t0.elapsed() < Duration::from_secs(120), "training did not start");
        assert!(launch.try_wait().unwrap().is_none(), "launch ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    launch
}

#[test]
fn launch_stops_the_other_ranks_when_one_dies() {
    let mut launch = launch_and_wait_for_training("ddp-launch-kill");
    let rank1 = rank_pid(launch.id(), 1);
    // SAFETY: kill(2) on a pid we just found among our grandchildren
    unsafe {
        libc::kill(rank1 as i32, libc::SIGKILL);
    }
    let status = wait_timeout(&mut launch, Duration::from_secs(30)).expect("launch exits within 30 s");
    let mut err = String::new();
    std::io::Read::read_to_string(launch.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success());
    assert!(err.contains("rank 1 was killed") || err.contains("rank 0"), "{err}");
}

/// A rank that stops responding (SIGSTOP) lets the other's collectives time out, so the other
/// fails first: the launcher, which then has to kill the stopped rank, says so (it named only
/// the rank whose collective timed out).
#[test]
fn a_rank_that_stops_responding_is_named_by_the_launcher() {
    let d = scratch("ddp-launch-stop");
    let file = d.join("ddp-stop.kdl");
    let exp = EXP.replace("BATCH", "16").replace("EPOCHS", "50");
    let exp = exp.trim_end().strip_suffix('}').unwrap().to_string() + "    distributed { gpus-per-node 2; timeout \"15s\" }\n}\n";
    std::fs::write(&file, exp).unwrap();
    let runs = d.join("runs");
    let mut launch = launch_file(&file, &runs, false);
    let rank1 = rank_pid(launch.id(), 1);
    // SAFETY: kill(2) on a pid we just found among our grandchildren
    unsafe {
        libc::kill(rank1 as i32, libc::SIGSTOP);
    }
    let Some(status) = wait_timeout(&mut launch, Duration::from_secs(90)) else {
        let _ = launch.kill();
        panic!("launch still running 90 s after rank 1 was stopped");
    };
    let mut err = String::new();
    std::io::Read::read_to_string(launch.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{err}");
    let last = err.lines().rev().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(last.contains("rank 1 did not stop within 10 s of SIGTERM and was killed (SIGKILL)"), "{err}");
    assert!(std::fs::metadata(format!("/proc/{rank1}")).is_err() || std::fs::read_to_string(format!("/proc/{rank1}/stat")).is_ok_and(|s| s.contains(") Z ")), "rank 1 is gone");
}

/// Ctrl-Z (SIGTSTP) to the launcher stops its ranks too, and continuing it continues them
/// (each rank has a process group of its own: the terminal's stop reached the launcher alone,
/// and the ranks trained on).
#[test]
fn ctrl_z_to_the_launcher_stops_its_ranks() {
    let (mut launch, runs) = launch_in_group("ddp-launch-tstp", false);
    let ranks = children_of(launch.id());
    assert_eq!(ranks.len(), 2, "two rank processes");
    let state = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| s.rsplit_once(')').and_then(|x| x.1.split_whitespace().next().map(str::to_string)));
    let signal = |sig: libc::c_int| {
        // SAFETY: kill(2) on our own child
        unsafe {
            libc::kill(launch.id() as i32, sig);
        }
    };
    signal(libc::SIGTSTP);
    let t0 = Instant::now();
    while !ranks.iter().all(|&p| state(p).as_deref() == Some("T")) {
        assert!(t0.elapsed() < Duration::from_secs(10), "the ranks were not stopped: {:?}", ranks.iter().map(|&p| state(p)).collect::<Vec<_>>());
        std::thread::sleep(Duration::from_millis(50));
    }
    let rows = metrics_rows(&runs);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(metrics_rows(&runs), rows, "training went on while stopped");
    signal(libc::SIGCONT);
    let t0 = Instant::now();
    while metrics_rows(&runs) == rows {
        assert!(t0.elapsed() < Duration::from_secs(60), "training did not go on after SIGCONT");
        std::thread::sleep(Duration::from_millis(50));
    }
    signal(libc::SIGTERM);
    let status = wait_timeout(&mut launch, Duration::from_secs(60)).expect("launch exits within 60 s of SIGTERM");
    assert_eq!(status.code(), Some(143));
}

/// The process of rank `rank` among a launcher's children (the one whose environment has
/// RANK=`rank`).
fn rank_pid(launcher: u32, rank: usize) -> u32 {
    let want = format!("RANK={rank}");
    children_of(launcher)
        .into_iter()
        .find(|pid| std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|e| e.split(|b| *b == 0).any(|kv| kv == want.as_bytes())))
        .unwrap_or_else(|| panic!("rank {rank}'s process"))
}

fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else { continue };
        // pid (comm) state ppid ...
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        if after.split_whitespace().nth(1).and_then(|s| s.parse::<u32>().ok()) == Some(pid) {
            out.push(p);
        }
    }
    out
}

/// `ijepa launch FILE -- --dry-run`: the ranks form no group for a preview, and rank 0 alone
/// prints the plan (each rank printed it), for the launch's world size.
#[test]
fn a_launched_dry_run_prints_the_plan_once() {
    let d = scratch("ddp-dry-run");
    let file = write_exp(&d, 16, 1);
    let runs = d.join("runs");
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa"))
        .args(["launch", "--nproc-per-node", "2", file.to_str().unwrap(), "--", "--dry-run", "--runs-dir", runs.to_str().unwrap()])
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.lines().filter(|l| l.starts_with("run ") && l.contains("pretrain  [")).count(), 1, "{t}");
    assert!(!runs.exists(), "a preview writes nothing: {t}");
    assert!(!t.contains("note:"), "{t}");
    // a block written for another launcher is said, as `ijepa slurm` says it (it ran without
    // a word), once, and the launch goes on
    let torchrun = d.join("torchrun.kdl");
    std::fs::write(&torchrun, std::fs::read_to_string(&file).unwrap().replace("    device \"cpu\"\n", "    device \"cpu\"\n    distributed { gpus-per-node 2; launcher \"torchrun\"; }\n")).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ijepa"))
        .args(["launch", torchrun.to_str().unwrap(), "--", "--dry-run", "--runs-dir", runs.to_str().unwrap()])
        .env("OMP_NUM_THREADS", "1")
        .output()
        .unwrap();
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.matches("note: ddp's distributed block says launcher \"torchrun\"; starting this machine's ranks with `ijepa launch` anyway").count(), 1, "{t}");
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let d = scratch("ddp-port");
    let file = write_exp(&d, 16, 1);
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let t0 = Instant::now();
    let o = rank_cmd(&file, &d.join("runs"), 0, 2, port).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains(&port.to_string()) && (t.contains("in use") || t.contains("bind")), "{t}");
    assert!(t0.elapsed() < Duration::from_secs(60), "took {:?}", t0.elapsed());
}

#[test]
fn an_unreachable_master_is_a_clear_error() {
    let d = scratch("ddp-master");
    // a 3 s collective timeout: the rendezvous gives up after it
    let f = d.join("m.kdl");
    std::fs::write(&f, EXP.replace("BATCH", "16").replace("EPOCHS", "1").replace("device \"cpu\"", "device \"cpu\"\n    distributed { timeout \"3s\" }")).unwrap();
    let port = free_port(); // nobody listens there
    let t0 = Instant::now();
    let o = rank_cmd(&f, &d.join("runs"), 1, 2, port).output().unwrap();
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("127.0.0.1") && t.contains(&port.to_string()) && t.contains("within 3 s"), "{t}");
    // after about the timeout (c10d's own connect retries took 2.5x it: 7-8 s here)
    assert!(t0.elapsed() < Duration::from_secs(6), "took {:?}", t0.elapsed());
}

/// A signal to a rank still waiting for the others (a 30-minute rendezvous, nothing saved
/// yet) stops it at once: the first signal waited for a safe point that came only when the
/// rendezvous timed out. Rank 0 waits for rank 1 in the store, rank 1 for a master.
#[test]
fn a_signal_during_the_rendezvous_stops_a_rank_at_once() {
    let d = scratch("ddp-meet-signal");
    let f = write_exp(&d, 16, 1);
    for rank in [0, 1] {
        let port = free_port();
        let mut child = rank_cmd(&f, &d.join("runs"), rank, 2, port).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        // its output line by line: signalled once it says it is joining (its handler is in
        // place then), then everything it said
        let (tx, rx) = std::sync::mpsc::channel();
        let pipes: [Box<dyn std::io::Read + Send>; 2] = [Box::new(child.stdout.take().unwrap()), Box::new(child.stderr.take().unwrap())];
        for pipe in pipes {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufRead::lines(std::io::BufReader::new(pipe)).map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let mut err = String::new();
        let t0 = Instant::now();
        while !err.contains("joining") {
            let line = rx.recv_timeout(Duration::from_secs(60).saturating_sub(t0.elapsed())).unwrap_or_else(|_| panic!("rank {rank} never said it was joining: {err}"));
            err.push_str(&line);
            err.push('\n');
        }
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on our own child
        unsafe {
            libc::kill(child.id() as i32, libc::SIGINT);
        }
        let t0 = Instant::now();
        let Some(status) = wait_timeout(&mut child, Duration::from_secs(10)) else {
            child.kill().unwrap();
            panic!("rank {rank} still waiting 10 s after SIGINT");
        };
        while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
            err.push_str(&line);
            err.push('\n');
        }
        assert!(!status.success(), "{err}");
        assert!(err.contains("stopping now") || err.contains("interrupted by SIGINT"), "rank {rank}: {err}");
        eprintln!("rank {rank} stopped {:.2} s after SIGINT", t0.elapsed().as_secs_f64());
    }
}

#[test]
fn a_signal_to_the_launcher_stops_every_rank() {
    let mut launch = launch_and_wait_for_training("ddp-launch-term");
    let ranks = children_of(launch.id());
    assert_eq!(ranks.len(), 2, "two rank processes");
    // SAFETY: kill(2) on our own child
    unsafe {
        libc::kill(launch.id() as i32, libc::SIGTERM);
    }
    let status = wait_timeout(&mut launch, Duration::from_secs(20)).expect("launch exits within 20 s");
    let mut err = String::new();
    std::io::Read::read_to_string(launch.stderr.as_mut().unwrap(), &mut err).unwrap();
    // 128 + 15, as `ijepa run` ends when interrupted (not a failure's 1)
    assert!(status.code() == Some(143) && err.contains("stopped by signal 15"), "{status:?}: {err}");
    for pid in ranks {
        assert!(!Path::new(&format!("/proc/{pid}")).exists(), "rank process {pid} still exists");
    }
}

/// A terminal's Ctrl-C goes to the whole foreground process group: the launcher and, unless
/// they have groups of their own, its ranks, which then got it twice (from the terminal and
/// from the launcher) and stopped at once, without their checkpoint. One Ctrl-C stops the
/// ranks at their next step with a checkpoint, as one does a run.
#[test]
fn one_ctrl_c_to_the_launcher_s_group_is_one_signal() {
    let (mut launch, runs) = launch_in_group("ddp-launch-ctrl-c", true);
    // what the terminal does: SIGINT to every process of the (launcher's) group
    // SAFETY: kill(2) on the process group of our own child
    unsafe {
        libc::kill(-(launch.id() as i32), libc::SIGINT);
    }
    let status = wait_timeout(&mut launch, Duration::from_secs(60)).expect("launch exits within 60 s");
    let mut err = String::new();
    std::io::Read::read_to_string(launch.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(!err.contains("second signal"), "{err}");
    let manifest = pretrain_dir(&runs).join("manifest.json");
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["status"], "interrupted", "{err}");
}

/// The stderr of `child` (rank `rank`), which must fail within two minutes.
/// The exit codes of ranks 0, 1, ... once each has ended within 60 s (a rank still running
/// then is killed and the test fails, saying `when`).
fn exit_codes<const N: usize>(ranks: [&mut Child; N], when: &str) -> Vec<Option<i32>> {
    let mut codes = Vec::new();
    for (rank, child) in ranks.into_iter().enumerate() {
        let Some(status) = wait_timeout(child, Duration::from_secs(60)) else {
            let _ = child.kill();
            panic!("rank {rank} still running {when}");
        };
        codes.push(status.code());
    }
    codes
}

fn failed_stderr(rank: usize, child: &mut Child) -> String {
    let Some(status) = wait_timeout(child, Duration::from_secs(120)) else {
        let _ = child.kill();
        panic!("rank {rank} still running");
    };
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "rank {rank} must fail: {err}");
    err
}

/// A rank started with another experiment (here: another seed, which trained on without a
/// word; another width aborted inside a collective) is found before training: both ranks
/// fail at once, naming the rank.
#[test]
fn ranks_of_different_experiments_are_refused_before_training() {
    let d = scratch("ddp-mismatch");
    let file = write_exp(&d, 16, 1);
    let other = d.join("ddp-seed.kdl");
    std::fs::write(&other, std::fs::read_to_string(&file).unwrap().replace("seed 5", "seed 6")).unwrap();
    let runs = d.join("runs");
    let port = free_port();
    let mut r0 = rank_cmd(&file, &runs, 0, 2, port).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut r1 = rank_cmd(&other, &runs, 1, 2, port).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    for (rank, child) in [(0, &mut r0), (1, &mut r1)] {
        let err = failed_stderr(rank, child);
        assert!(err.contains("the ranks do not train one experiment") && err.contains("rank 1 ("), "rank {rank}: {err}");
    }
    // no metrics row was trained
    assert_eq!(metrics_rows(&runs), 0);
}

/// Ranks that read training sets of different sizes (one experiment with a relative `root`,
/// each node's working folder holding its own copy, one larger) trained on other schedules
/// and aborted in a collective at the shorter epoch's end, blaming a data error; they are
/// refused before the first step, naming each rank's count.
#[test]
fn ranks_reading_different_training_sets_are_refused_before_training() {
    let d = scratch("ddp-other-data");
    let (a, b) = (d.join("node-a"), d.join("node-b"));
    make_folder(&a.join("data"), 2, 16);
    make_folder(&b.join("data"), 2, 20);
    let f = folder_exp(&d, "data", "", 2);
    let runs = d.join("runs");
    let port = free_port();
    let mut r0 = rank_cmd(&f, &runs, 0, 2, port).current_dir(&a).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut r1 = rank_cmd(&f, &runs, 1, 2, port).current_dir(&b).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    for (rank, child) in [(0, &mut r0), (1, &mut r1)] {
        let err = failed_stderr(rank, child);
        assert!(err.contains("training sets of different sizes (rank 0: 32, rank 1: 40 images)"), "rank {rank}: {err}");
    }
    assert_eq!(metrics_rows(&runs), 0, "a step was trained");
}

/// Ranks of two launches (their launch identities differ) that formed one group — two
/// `ijepa launch` given one `--master-port` did, and failed blaming the file, or with one file
/// would have trained on — are refused as soon as the group forms, naming the cause.
#[test]
fn ranks_of_two_launches_are_refused_as_such() {
    let d = scratch("ddp-two-launches");
    let file = write_exp(&d, 16, 1);
    let runs = d.join("runs");
    let port = free_port();
    let mut r0 = rank_cmd(&file, &runs, 0, 2, port).env("IJEPA_LAUNCH_ID", "11").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut r1 = rank_cmd(&file, &runs, 1, 2, port).env("IJEPA_LAUNCH_ID", "12").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    for (rank, child) in [(0, &mut r0), (1, &mut r1)] {
        let err = failed_stderr(rank, child);
        let other = 1 - rank;
        assert!(err.contains(&format!("rank(s) {other} of this process group were started by another launch")) && err.contains("--master-port"), "rank {rank}: {err}");
        // (each names its rank, once)
        assert!(err.contains(&format!("error: rank {rank} of 2: rank(s) {other}")), "rank {rank}: {err}");
    }
    assert_eq!(metrics_rows(&runs), 0);
}

/// Ranks started on a run another launch is training: rank 0 is refused the folder (in use),
/// and rank 1, whose wait for rank 0's reading of it fails, stops with the status that has a
/// launcher name rank 0 (it exited 1 as rank 0 did, and `ijepa launch` named either).
#[test]
fn ranks_on_a_folder_in_use_name_rank_0() {
    let (mut r0, mut r1, runs) = two_ranks_training("ddp-busy");
    let file = runs.parent().unwrap().join("ddp-16-50.kdl");
    let port = free_port();
    let mut s0 = rank_cmd(&file, &runs, 0, 2, port).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut s1 = rank_cmd(&file, &runs, 1, 2, port).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let codes = exit_codes([&mut s0, &mut s1], "after 60 s (the second launch)");
    let (e0, e1) = (failed_stderr(0, &mut s0), failed_stderr(1, &mut s1));
    for c in [&mut r0, &mut r1] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(codes, [Some(1), Some(3)], "rank 0: {e0}\nrank 1: {e1}");
    assert!(e0.contains("is in use by another process"), "{e0}");
    assert!(e1.contains("a peer closed its connection") && e1.contains("the rank that failed says why"), "{e1}");
}

/// SIGINT to a rank other than 0 stops every rank at the same step, checkpointed, as a
/// signal to rank 0 does (it used to be announced and ignored).
#[test]
fn a_signal_to_any_rank_stops_every_rank() {
    let (mut r0, mut r1, runs) = two_ranks_training("ddp-signal-rank1");
    let ok = Command::new("kill").args(["-INT", &r1.id().to_string()]).status().unwrap();
    assert!(ok.success());
    let codes = exit_codes([&mut r0, &mut r1], "60 s after the signal to rank 1");
    let mut err = String::new();
    std::io::Read::read_to_string(r0.stderr.as_mut().unwrap(), &mut err).unwrap();
    // rank 1 was signalled (130); rank 0 stopped with it, with the status that tells a
    // launcher to name the other rank (it exited 130 too, and `ijepa launch` named either)
    assert_eq!(codes, [Some(3), Some(130)], "rank 0: {err}");
    assert!(err.contains("interrupted by a signal to another rank at step"), "{err}");
    assert_eq!(manifest(&runs)["status"], "interrupted");
}
