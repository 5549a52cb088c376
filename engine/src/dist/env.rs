//! Where this process sits in a distributed job: rank, world size, local rank and the
//! rendezvous address, read from the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK,
//! LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT) or, failing those, from SLURM's (SLURM_PROCID,
//! SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE / SLURM_TASKS_PER_NODE,
//! SLURM_STEP_NODELIST / SLURM_JOB_NODELIST). Mirrors what `torch.distributed.init_process_group("env://")` reads.
//!
//! Parsing is a pure function of a lookup closure ([`DistEnv::from_lookup`]) so it is tested
//! without touching the process environment.

use crate::error::{Error, Result};

/// The rendezvous port when SLURM_JOB_ID is unknown is never guessed: MASTER_PORT must be set.
/// With a job id the default port is `SLURM_PORT_BASE + job_id % SLURM_PORT_SPAN`, the same on
/// every task of the job and unlikely to collide between jobs sharing a node.
const SLURM_PORT_BASE: u64 = 10_000;
/// See [`SLURM_PORT_BASE`].
const SLURM_PORT_SPAN: u64 = 20_000;

/// This process's place in a distributed job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistEnv {
    /// Global rank, `0..world_size`.
    pub rank: usize,
    /// Number of processes in the job.
    pub world_size: usize,
    /// Rank among the processes of this node (selects the GPU).
    pub local_rank: usize,
    /// Number of processes on this node.
    pub local_world_size: usize,
    /// Whether the launcher said how many processes share this node (SLURM always does; a
    /// torchrun-like launcher that set no LOCAL_WORLD_SIZE leaves `local_world_size` at the
    /// world's size, a default that says nothing of the node).
    pub local_world_given: bool,
    /// Host of the rendezvous server (rank 0's machine).
    pub master_addr: String,
    /// TCP port of the rendezvous server.
    pub master_port: u16,
}

impl DistEnv {
    /// Reads the process environment (see [`DistEnv::from_lookup`]).
    pub fn from_env() -> Result<Option<DistEnv>> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Parses the launcher's variables through `get` (name -> value).
    ///
    /// * torchrun (or a hand launch) when RANK or WORLD_SIZE is set: RANK, WORLD_SIZE,
    ///   MASTER_ADDR and MASTER_PORT are required; LOCAL_RANK / LOCAL_WORLD_SIZE default to
    ///   RANK / WORLD_SIZE (one node) when absent.
    /// * else SLURM when SLURM_PROCID and SLURM_NTASKS are set (launch with `srun`: in the
    ///   batch script itself SLURM_PROCID is 0 while SLURM_NTASKS counts every task, and rank 0
    ///   would wait for peers that never come). A batch script of a job that gave no
    ///   `--ntasks` has SLURM_PROCID without SLURM_NTASKS (sbatch sets it only from `--ntasks`):
    ///   one process, as outside SLURM (`sbatch --gres=gpu:1 --wrap "ijepa run F.kdl"` failed
    ///   at once). The master is the first host of SLURM_STEP_NODELIST (else
    ///   SLURM_JOB_NODELIST, else SLURM_NODELIST) unless MASTER_ADDR is set; the port is MASTER_PORT or
    ///   `10000 + SLURM_JOB_ID % 20000`.
    /// * else `None`: a single process.
    ///
    /// A half-set environment (RANK without WORLD_SIZE, a rank outside the world, a
    /// non-number) is an [`Error::Dist`] naming the variable.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Option<DistEnv>> {
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        if torchrun_vars_set(get) {
            // (srun's variables beside them are not read: a RANK/WORLD_SIZE left in the shell
            // of an srun step gave "MASTER_ADDR is not set", pointing at the wrong fix)
            return torchrun(&get).map(Some).map_err(|e| match (e, get("SLURM_PROCID").is_some()) {
                (Error::Dist(m), true) => Error::Dist(format!(
                    "{m} (SLURM_PROCID is set too, but RANK/WORLD_SIZE are read first, as torchrun's: under srun alone, unset RANK and WORLD_SIZE)"
                )),
                (e, _) => e,
            });
        }
        if get("SLURM_PROCID").is_some() && get("SLURM_NTASKS").is_some() {
            return slurm(&get).map(Some);
        }
        Ok(None)
    }

    /// Whether this process is the only one (world size 1).
    pub fn is_single(&self) -> bool {
        self.world_size == 1
    }

    /// The GPU this rank computes on (and NCCL binds), of those the process sees
    /// ([`rank_gpu`]).
    /// (Where the launcher did not say how many ranks share the node, a machine of one GPU a
    /// node is trusted.)
    pub fn gpu(&self) -> Result<usize> {
        let cvd = std::env::var("CUDA_VISIBLE_DEVICES").ok().filter(|v| !v.trim().is_empty());
        let local_world = self.local_world_given.then_some(self.local_world_size);
        rank_gpu(self.local_rank, local_world, tch::Cuda::device_count().max(0) as usize, cvd.as_deref())
    }
}

/// The GPU a rank of local rank `local_rank` (of `local_world` on its node, where the launcher
/// says) computes on, of the `visible` GPUs its process sees (`cvd`: its
/// CUDA_VISIBLE_DEVICES): `cuda:LOCAL_RANK` where the process sees every GPU of its node; the
/// one GPU it sees where its launcher gave each task its own (CUDA_VISIBLE_DEVICES naming one
/// device: SLURM's `--gpus-per-task`, `--gpu-bind`; ranks 1-7 asked for a device that did not
/// exist), or where the launcher did not say how many ranks share the node; else an error
/// naming the counts (several ranks on one GPU, which NCCL refuses).
pub fn rank_gpu(local_rank: usize, local_world: Option<usize>, visible: usize, cvd: Option<&str>) -> Result<usize> {
    let given_one = cvd.is_some_and(|c| c.split(',').filter(|d| !d.trim().is_empty()).count() == 1);
    match (visible, local_world) {
        (1, None | Some(1)) => Ok(0),
        (1, _) if given_one => Ok(0),
        (n, w) if local_rank < n && w.is_none_or(|w| w <= n) => Ok(local_rank),
        (n, w) => Err(env_err(format!(
            "local rank {local_rank}{} on this node has no GPU of its own: this process sees {n} GPU(s) (CUDA_VISIBLE_DEVICES={}); start one rank per GPU of the node, or give each rank its GPU",
            w.map_or(String::new(), |w| format!(" of {w}")),
            cvd.unwrap_or("unset")
        ))),
    }
}

/// Whether torchrun's RANK or WORLD_SIZE is set (not blank), as [`DistEnv::from_lookup`] reads
/// them first: the world is torchrun's (or a hand launch's), not SLURM's.
pub fn torchrun_vars_set(get: impl Fn(&str) -> Option<String>) -> bool {
    ["RANK", "WORLD_SIZE"].into_iter().any(|k| get(k).is_some_and(|v| !v.trim().is_empty()))
}

fn env_err(msg: impl std::fmt::Display) -> Error {
    Error::Dist(format!("launcher environment: {msg}"))
}

fn required(get: &dyn Fn(&str) -> Option<String>, name: &str, why: &str) -> Result<String> {
    // (blank or not UTF-8 reads as unset: said so, a `RANK=" "` read "RANK is not set")
    get(name).ok_or_else(|| env_err(format!("{name} is not set ({why}; a blank value or one that is not UTF-8 counts as unset)")))
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value.parse().map_err(|_| env_err(format!("{name}={value:?} is not a valid number")))
}

fn check(rank: usize, world: usize, local_rank: usize, local_world: usize, names: [&str; 4]) -> Result<()> {
    if world == 0 {
        return Err(env_err(format!("{}=0: the world needs at least one process", names[1])));
    }
    // (ten million took 8 GB of bookkeeping before the rendezvous, past its timeout)
    let most = ijepa_dsl::MAX_NODES * ijepa_dsl::MAX_PROCS_PER_NODE;
    if world > most {
        return Err(env_err(format!("{}={world} is more processes than a run can have (at most {most}: the language's nodes x gpus-per-node)", names[1])));
    }
    if rank >= world {
        return Err(env_err(format!("{}={rank} is not below {}={world}", names[0], names[1])));
    }
    if local_world == 0 || local_world > world {
        return Err(env_err(format!("{}={local_world} must be between 1 and {}={world}", names[3], names[1])));
    }
    if local_rank >= local_world {
        return Err(env_err(format!("{}={local_rank} is not below {}={local_world}", names[2], names[3])));
    }
    Ok(())
}

fn torchrun(get: &dyn Fn(&str) -> Option<String>) -> Result<DistEnv> {
    let why = "RANK and WORLD_SIZE must be set together, as torchrun does";
    let rank: usize = number("RANK", &required(get, "RANK", why)?)?;
    let world_size: usize = number("WORLD_SIZE", &required(get, "WORLD_SIZE", why)?)?;
    let local_rank = match get("LOCAL_RANK") {
        Some(v) => number("LOCAL_RANK", &v)?,
        None => rank,
    };
    let local_world_given = get("LOCAL_WORLD_SIZE");
    let local_world_size = match &local_world_given {
        Some(v) => number("LOCAL_WORLD_SIZE", v)?,
        None => world_size,
    };
    check(rank, world_size, local_rank, local_world_size, ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"])?;
    let master_addr = required(get, "MASTER_ADDR", "the host of rank 0, needed with RANK/WORLD_SIZE")?;
    let master_port = port(&required(get, "MASTER_PORT", "the rendezvous port, needed with RANK/WORLD_SIZE")?)?;
    let local_world_given = local_world_given.is_some();
    Ok(DistEnv { rank, world_size, local_rank, local_world_size, local_world_given, master_addr, master_port })
}

fn port(v: &str) -> Result<u16> {
    match v.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(env_err(format!("MASTER_PORT={v:?} is not a TCP port (1-65535)"))),
    }
}

fn slurm(get: &dyn Fn(&str) -> Option<String>) -> Result<DistEnv> {
    let why = "set by srun for every task";
    let rank: usize = number("SLURM_PROCID", &required(get, "SLURM_PROCID", why)?)?;
    let world_size: usize = number("SLURM_NTASKS", &required(get, "SLURM_NTASKS", why)?)?;
    let local_rank: usize = number("SLURM_LOCALID", &required(get, "SLURM_LOCALID", why)?)?;
    // (the variable read is the one a wrong count names: SLURM_NTASKS_PER_NODE was named where
    // srun had set only SLURM_TASKS_PER_NODE)
    // (a list's count of this node is named as that: `SLURM_TASKS_PER_NODE[node 1]=3`, where
    // the variable holds "1,3")
    let (local_name, local_world_size) = match get("SLURM_NTASKS_PER_NODE") {
        Some(v) => ("SLURM_NTASKS_PER_NODE".to_string(), number("SLURM_NTASKS_PER_NODE", &v)?),
        None => {
            let tpn = required(get, "SLURM_TASKS_PER_NODE", why)?;
            let node: usize = match get("SLURM_NODEID") {
                Some(v) => number("SLURM_NODEID", &v)?,
                None => 0,
            };
            let count = tasks_on_node(&tpn, node).map_err(|e| env_err(format!("SLURM_TASKS_PER_NODE={tpn:?}: {e}")))?;
            let name = if tpn.trim().parse::<usize>().is_ok() { "SLURM_TASKS_PER_NODE".to_string() } else { format!("SLURM_TASKS_PER_NODE[node {node}]") };
            (name, count)
        }
    };
    check(rank, world_size, local_rank, local_world_size, ["SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", &local_name])?;
    let master_addr = match get("MASTER_ADDR") {
        Some(a) => a,
        None => {
            // (the step's nodes first: a step on part of the allocation, `srun -w node02` or
            // `--relative=1`, has its rank 0 on its own first node, not the job's)
            let (name, list) = match (get("SLURM_STEP_NODELIST"), get("SLURM_JOB_NODELIST")) {
                (Some(l), _) => ("SLURM_STEP_NODELIST", l),
                (None, Some(l)) => ("SLURM_JOB_NODELIST", l),
                (None, None) => ("SLURM_NODELIST", required(get, "SLURM_NODELIST", "or MASTER_ADDR: the host of rank 0")?),
            };
            first_host(&list).map_err(|e| env_err(format!("{name}={list:?}: {e}")))?
        }
    };
    let master_port = match get("MASTER_PORT") {
        Some(p) => port(&p)?,
        None => {
            let job = required(get, "SLURM_JOB_ID", "or MASTER_PORT: the rendezvous port derives from it")?;
            let id: u64 = number("SLURM_JOB_ID", &job)?;
            (SLURM_PORT_BASE + id % SLURM_PORT_SPAN) as u16
        }
    };
    Ok(DistEnv { rank, world_size, local_rank, local_world_size, local_world_given: true, master_addr, master_port })
}

/// Tasks on node `node` from SLURM's compressed per-node counts, e.g. `"8(x2),4"` = 8, 8, 4.
/// The whole list is read before the answer: a malformed entry after this node's (`"3,"`,
/// `"2,x"`, a repeat of 0) is refused, not ignored.
pub fn tasks_on_node(spec: &str, node: usize) -> std::result::Result<usize, String> {
    let mut seen = 0usize;
    let mut found = None;
    for item in spec.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err("an empty entry (two commas, or one at an end)".into());
        }
        let (count, repeat) = match item.split_once("(x") {
            Some((c, r)) => {
                let r = r.strip_suffix(')').ok_or_else(|| format!("unclosed repeat in {item:?}"))?;
                match r.parse::<usize>() {
                    Ok(r) if r > 0 => (c, r),
                    _ => return Err(format!("bad repeat count in {item:?}")),
                }
            }
            None => (item, 1),
        };
        let count: usize = count.parse().map_err(|_| format!("bad task count {count:?}"))?;
        if found.is_none() && node < seen.saturating_add(repeat) {
            found = Some(count);
        }
        seen = seen.saturating_add(repeat);
    }
    found.ok_or_else(|| format!("no entry for node {node} (the list covers {seen} nodes)"))
}

/// The first host of a SLURM hostlist in compressed form: `"gpu[012-015,020],cpu7"` ->
/// `"gpu012"`, `"node1,node2"` -> `"node1"`, `"a[1-2]-ib[3-4]"` -> `"a1-ib3"` (the first
/// value of every bracket, zero padding kept).
pub fn first_host(list: &str) -> std::result::Result<String, String> {
    // The first top-level item: commas inside brackets do not separate hosts.
    let mut depth = 0i32;
    let mut end = list.len();
    for (i, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                end = i;
                break;
            }
            _ => {}
        }
        if depth < 0 {
            return Err("unbalanced ']'".into());
        }
    }
    let item = list[..end].trim();
    let mut host = String::new();
    let mut rest = item;
    while let Some(open) = rest.find('[') {
        host.push_str(&rest[..open]);
        let close = rest[open..].find(']').ok_or("unclosed '['")? + open;
        let inner = &rest[open + 1..close];
        let first = inner.split(',').next().unwrap_or("").trim();
        let first = first.split('-').next().unwrap_or("").trim();
        if first.is_empty() || !first.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("bad range [{inner}]"));
        }
        host.push_str(first);
        rest = &rest[close + 1..];
    }
    if rest.contains(']') {
        return Err("unbalanced ']'".into());
    }
    host.push_str(rest);
    if host.is_empty() {
        return Err("empty host list".into());
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn parse(vars: &[(&str, &str)]) -> Result<Option<DistEnv>> {
        let m: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        DistEnv::from_lookup(|k| m.get(k).cloned())
    }

    fn err(vars: &[(&str, &str)]) -> String {
        match parse(vars) {
            Err(e) => e.to_string(),
            Ok(v) => panic!("expected an error, got {v:?}"),
        }
    }

    #[test]
    fn nothing_set_is_single_process() {
        assert_eq!(parse(&[]).unwrap(), None);
        assert_eq!(parse(&[("RANK", "")]).unwrap(), None);
    }

    #[test]
    fn torchrun_variables() {
        let e = parse(&[
            ("RANK", "5"),
            ("WORLD_SIZE", "8"),
            ("LOCAL_RANK", "1"),
            ("LOCAL_WORLD_SIZE", "4"),
            ("MASTER_ADDR", "10.0.0.1"),
            ("MASTER_PORT", "29500"),
            ("SLURM_PROCID", "3"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            e,
            DistEnv {
                rank: 5,
                world_size: 8,
                local_rank: 1,
                local_world_size: 4,
                local_world_given: true,
                master_addr: "10.0.0.1".into(),
                master_port: 29500
            }
        );
        // Hand launch without LOCAL_*: one node.
        let e =
            parse(&[("RANK", "1"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")]).unwrap().unwrap();
        assert_eq!((e.local_rank, e.local_world_size, e.local_world_given), (1, 2, false));
    }

    #[test]
    fn half_set_torchrun_is_an_error() {
        assert!(err(&[("RANK", "0")]).contains("WORLD_SIZE is not set"));
        assert!(err(&[("WORLD_SIZE", "2")]).contains("RANK is not set"));
        let e = err(&[("RANK", "2"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")]);
        assert!(e.contains("RANK=2 is not below WORLD_SIZE=2"), "{e}");
        assert!(err(&[("RANK", "x"), ("WORLD_SIZE", "2")]).contains("RANK=\"x\" is not a valid number"));
        assert!(err(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_PORT", "1")]).contains("MASTER_ADDR is not set"));
        // torchrun's variables left beside srun's: the error says which were read
        let e = err(&[("RANK", "0"), ("WORLD_SIZE", "1"), ("SLURM_PROCID", "1"), ("SLURM_NTASKS", "2")]);
        assert!(e.contains("MASTER_ADDR is not set") && e.contains("under srun alone, unset RANK and WORLD_SIZE"), "{e}");
        assert!(err(&[("RANK", "0"), ("WORLD_SIZE", "2"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "70000")])
            .contains("MASTER_PORT=\"70000\" is not a TCP port"));
        assert!(err(&[("RANK", "0"), ("WORLD_SIZE", "0"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")])
            .contains("WORLD_SIZE=0"));
        let e = err(&[("RANK", "0"), ("WORLD_SIZE", "10000000"), ("MASTER_ADDR", "h"), ("MASTER_PORT", "1")]);
        assert!(e.contains("WORLD_SIZE=10000000 is more processes than a run can have (at most 262144"), "{e}");
        let e = err(&[
            ("RANK", "0"),
            ("WORLD_SIZE", "4"),
            ("LOCAL_RANK", "2"),
            ("LOCAL_WORLD_SIZE", "2"),
            ("MASTER_ADDR", "h"),
            ("MASTER_PORT", "1"),
        ]);
        assert!(e.contains("LOCAL_RANK=2 is not below LOCAL_WORLD_SIZE=2"), "{e}");
    }

    #[test]
    fn slurm_variables() {
        let e = parse(&[
            ("SLURM_PROCID", "9"),
            ("SLURM_NTASKS", "16"),
            ("SLURM_LOCALID", "1"),
            ("SLURM_TASKS_PER_NODE", "8(x2)"),
            ("SLURM_NODEID", "1"),
            ("SLURM_JOB_NODELIST", "gpu[012-015,020],cpu7"),
            ("SLURM_JOB_ID", "123456"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            e,
            DistEnv {
                rank: 9,
                world_size: 16,
                local_rank: 1,
                local_world_size: 8,
                local_world_given: true,
                master_addr: "gpu012".into(),
                master_port: 10000 + (123456 % 20000) as u16
            }
        );
        // Explicit per-node count, MASTER_* override, SLURM_NODELIST fallback.
        let e = parse(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "2"),
            ("SLURM_LOCALID", "0"),
            ("SLURM_NTASKS_PER_NODE", "2"),
            ("SLURM_NODELIST", "n1"),
            ("MASTER_PORT", "4242"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!((e.master_addr.as_str(), e.master_port, e.local_world_size), ("n1", 4242, 2));
        // a step on part of the job's nodes: its rank 0 is on the step's first node
        let e = parse(&[
            ("SLURM_PROCID", "0"),
            ("SLURM_NTASKS", "1"),
            ("SLURM_LOCALID", "0"),
            ("SLURM_NTASKS_PER_NODE", "1"),
            ("SLURM_JOB_NODELIST", "node[01-02]"),
            ("SLURM_STEP_NODELIST", "node02"),
            ("SLURM_JOB_ID", "7"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(e.master_addr, "node02");
    }

    #[test]
    fn a_rank_computes_on_its_gpu_or_the_one_it_sees() {
        // every GPU of the node seen: the local rank's; one GPU given to each task: that one
        assert_eq!(rank_gpu(3, Some(8), 8, None).unwrap(), 3);
        assert_eq!(rank_gpu(0, Some(8), 8, Some("0,1,2,3,4,5,6,7")).unwrap(), 0);
        assert_eq!(rank_gpu(5, Some(8), 1, Some("5")).unwrap(), 0);
        assert_eq!(rank_gpu(0, Some(1), 1, None).unwrap(), 0);
        // a launcher that did not say how many ranks share the node (torchrun-like, without
        // LOCAL_WORLD_SIZE: nodes of one GPU each) is trusted with the one GPU
        assert_eq!(rank_gpu(1, None, 1, None).unwrap(), 0);
        // fewer GPUs than ranks (two ranks on one GPU: NCCL refuses them): said, with the counts,
        // on a machine of one GPU too, where each rank was not given its own
        let e = rank_gpu(3, Some(4), 2, None).unwrap_err().to_string();
        assert!(e.contains("local rank 3 of 4 on this node has no GPU of its own: this process sees 2 GPU(s) (CUDA_VISIBLE_DEVICES=unset)"), "{e}");
        assert!(rank_gpu(0, Some(2), 1, None).is_err() && rank_gpu(1, Some(2), 1, Some("0,1")).is_err() && rank_gpu(0, Some(2), 2, None).is_ok());
        assert!(rank_gpu(2, None, 2, None).unwrap_err().to_string().contains("local rank 2 on this node"));
    }

    #[test]
    fn half_set_slurm_is_an_error() {
        // (a batch script without --ntasks: one process)
        assert!(parse(&[("SLURM_PROCID", "0"), ("SLURM_LOCALID", "0"), ("SLURM_TASKS_PER_NODE", "1"), ("SLURM_JOB_ID", "7")]).unwrap().is_none());
        assert!(err(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2")]).contains("SLURM_LOCALID is not set"));
        let base =
            [("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0"), ("SLURM_TASKS_PER_NODE", "2")];
        let e = err(&base);
        assert!(e.contains("SLURM_NODELIST is not set"), "{e}");
        // a count that does not add up names the variable it was read from
        let e = err(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0"), ("SLURM_TASKS_PER_NODE", "3")]);
        assert!(e.contains("SLURM_TASKS_PER_NODE=3 must be between 1 and SLURM_NTASKS=2"), "{e}");
        let e = err(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0"), ("SLURM_NODEID", "1"), ("SLURM_TASKS_PER_NODE", "1,3")]);
        assert!(e.contains("SLURM_TASKS_PER_NODE[node 1]=3 must be between 1 and SLURM_NTASKS=2"), "{e}");
        let e = err(&[("SLURM_PROCID", "0"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "0"), ("SLURM_NTASKS_PER_NODE", "3")]);
        assert!(e.contains("SLURM_NTASKS_PER_NODE=3 must be between 1 and SLURM_NTASKS=2"), "{e}");
        let mut v = base.to_vec();
        v.push(("SLURM_NODELIST", "n[1-2"));
        assert!(err(&v).contains("unclosed '['"));
        v.pop();
        v.push(("SLURM_NODELIST", "n1"));
        assert!(err(&v).contains("SLURM_JOB_ID is not set"));
        v.push(("SLURM_JOB_ID", "7"));
        assert_eq!(parse(&v).unwrap().unwrap().master_port, 10007);
    }

    #[test]
    fn hostlist_first_host() {
        assert_eq!(first_host("gpu[012-015,020],cpu7").unwrap(), "gpu012");
        assert_eq!(first_host("node1,node2").unwrap(), "node1");
        assert_eq!(first_host("node7").unwrap(), "node7");
        assert_eq!(first_host("gpu[3,5-6]").unwrap(), "gpu3");
        assert_eq!(first_host("a[01-02]-ib[3-4]").unwrap(), "a01-ib3");
        assert!(first_host("").is_err());
        assert!(first_host("gpu[]").is_err());
        assert!(first_host("gpu]1").is_err());
    }

    #[test]
    fn tasks_per_node() {
        assert_eq!(tasks_on_node("8(x2)", 0).unwrap(), 8);
        assert_eq!(tasks_on_node("8(x2)", 1).unwrap(), 8);
        assert_eq!(tasks_on_node("8(x2),4", 2).unwrap(), 4);
        assert_eq!(tasks_on_node("2,1", 1).unwrap(), 1);
        assert!(tasks_on_node("8(x2)", 2).is_err());
        assert!(tasks_on_node("8(x2", 0).is_err());
        // (a malformed entry after this node's is refused too)
        assert!(tasks_on_node("3,", 0).unwrap_err().contains("empty entry"));
        assert!(tasks_on_node("3,,2", 0).unwrap_err().contains("empty entry"));
        assert!(tasks_on_node("3,x", 0).unwrap_err().contains("bad task count"));
        assert!(tasks_on_node("3(x0),2", 0).unwrap_err().contains("bad repeat count"));
    }
}
