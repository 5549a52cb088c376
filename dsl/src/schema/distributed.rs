//! The `distributed { ... }` block: processes, collective backend and launcher of a
//! multi-process run (the official code's `main_distributed.py` + submitit arguments: nodes,
//! tasks per node, partition, time). Cross-setting rules (NCCL on the CPU, several nodes with
//! the local launcher, ...) are in `validate`.

use crate::config::{DistBackend, DistributedConfig, Experiment, Launcher, SlurmConfig};
use crate::diagnostics::DslError;
use crate::reader::{read_children, Bound, Ctx, Field, Node, Shape, Spanned};

/// Shape of the `distributed` node.
pub(crate) const SHAPE: Shape = Shape {
    args: &[],
    required: 0,
    props: &[],
    children: true,
    usage: "distributed { nodes 2; gpus-per-node 8; backend \"nccl\"; launcher \"slurm\" }",
};

/// Properties of the `slurm` node.
const SLURM_PROPS: &[&str] =
    &["partition", "account", "qos", "time", "cpus-per-task", "mem-per-gpu", "constraint"];

/// Nodes of the distributed block.
pub(crate) const FIELDS: &[Field<DistributedConfig>] = &[
    Field { name: "nodes", shape: Shape::scalar(&["N"], "nodes 2"), read: nodes },
    Field {
        name: "gpus-per-node",
        shape: Shape::scalar(&["N"], "gpus-per-node 8"),
        read: gpus_per_node,
    },
    Field {
        name: "backend",
        shape: Shape::scalar(&["BACKEND"], "backend \"auto\""),
        read: backend,
    },
    Field {
        name: "launcher",
        shape: Shape::scalar(&["LAUNCHER"], "launcher \"local\""),
        read: launcher,
    },
    Field {
        name: "slurm",
        shape: Shape::props(
            SLURM_PROPS,
            "slurm partition=\"learnlab\" time=\"72:00:00\" cpus-per-task=10 mem-per-gpu=\"55G\"",
        ),
        read: slurm,
    },
    Field {
        name: "timeout",
        shape: Shape::scalar(&["DURATION"], "timeout \"30m\""),
        read: timeout,
    },
    Field { name: "bucket-mb", shape: Shape::scalar(&["MIB"], "bucket-mb 25"), read: bucket_mb },
];

/// Reads the distributed block into `exp.distributed` (only what is written changes).
pub(crate) fn read(cx: &mut Ctx, n: &Node, exp: &mut Experiment) {
    read_children(cx, n.children(), &n.path, "distributed", FIELDS, &mut exp.distributed);
}

/// The most machines a run may name (the official ViT-g/16 run used 16 nodes).
pub const MAX_NODES: usize = 4096;
/// The most processes per machine (`ijepa launch` starts that many on this one).
pub const MAX_PROCS_PER_NODE: usize = 64;

fn nodes(cx: &mut Ctx, n: &Node, d: &mut DistributedConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_in(e, &n.path, 1, MAX_NODES, "machines of one run")) {
        d.nodes = v;
    }
}

fn gpus_per_node(cx: &mut Ctx, n: &Node, d: &mut DistributedConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.usize_in(e, &n.path, 1, MAX_PROCS_PER_NODE, "processes one machine starts")) {
        d.procs_per_node = v;
    }
}

fn backend(cx: &mut Ctx, n: &Node, d: &mut DistributedConfig) {
    const KINDS: &[(&str, DistBackend)] =
        &[("auto", DistBackend::Auto), ("gloo", DistBackend::Gloo), ("nccl", DistBackend::Nccl)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "backend", KINDS)) {
        d.backend = v;
    }
}

fn launcher(cx: &mut Ctx, n: &Node, d: &mut DistributedConfig) {
    const KINDS: &[(&str, Launcher)] =
        &[("local", Launcher::Local), ("torchrun", Launcher::Torchrun), ("slurm", Launcher::Slurm)];
    if let Some(v) = n.arg(0).and_then(|e| cx.keyword(e, &n.path, "launcher", KINDS)) {
        d.launcher = v;
    }
}

fn slurm(cx: &mut Ctx, n: &Node, d: &mut DistributedConfig) {
    let s: &mut SlurmConfig = &mut d.slurm;
    for (key, slot) in [
        ("partition", &mut s.partition),
        ("account", &mut s.account),
        ("qos", &mut s.qos),
        ("constraint", &mut s.constraint),
    ] {
        if let Some(v) = n.prop(key).and_then(|e| sbatch_word(cx, e, &n.sub(key))) {
            *slot = Some(v.value);
        }
    }
    if let Some(v) = n.prop("time").and_then(|e| sbatch_word(cx, e, &n.sub("time"))) {
        if slurm_time_ok(&v.value) {
            s.time = Some(v.value);
        } else {
            cx.poison(&n.sub("time"));
            cx.err(DslError::InvalidValue {
                what: "SLURM time".into(),
                message: format!("{:?} is not a SLURM time", v.value),
                span: v.span,
                help: "write minutes (\"90\"), \"MM:SS\", \"HH:MM:SS\" (\"72:00:00\"), \"D-HH\", \
                       \"D-HH:MM\" or \"D-HH:MM:SS\" (\"3-00:00:00\"); minutes and seconds below \
                       60, hours after a day count below 24"
                    .into(),
            });
        }
    }
    if let Some(v) =
        n.prop("cpus-per-task").and_then(|e| cx.usize_min(e, &n.sub("cpus-per-task"), 1))
    {
        s.cpus_per_task = v;
    }
    if let Some(v) = n.prop("mem-per-gpu").and_then(|e| sbatch_word(cx, e, &n.sub("mem-per-gpu"))) {
        if slurm_mem_ok(&v.value) {
            s.mem_per_gpu = Some(v.value);
        } else {
            cx.poison(&n.sub("mem-per-gpu"));
            cx.err(DslError::InvalidValue {
                what: "SLURM memory".into(),
                message: format!("{:?} is not a SLURM memory size", v.value),
                span: v.span,
                help: "write a whole number with an optional unit K, M, G or T, e.g. \"55G\" or \
                       \"64000M\""
                    .into(),
            });
        }
    }
}

/// The longest collective timeout accepted: 30 days.
pub(crate) const MAX_TIMEOUT_S: u64 = 30 * 86_400;

fn timeout(cx: &mut Ctx, n: &Node, d: &mut DistributedConfig) {
    let Some(e) = n.arg(0) else { return };
    let span = cx.entry_span(e);
    let seconds = match e.value() {
        kdl::KdlValue::String(s) => parse_duration(s),
        kdl::KdlValue::Integer(_) => {
            cx.value::<u64>(e, &n.path).map(|v| v.value).ok_or_else(String::new)
        }
        other => {
            cx.poison(&n.path);
            cx.err(DslError::WrongType {
                what: n.path.clone(),
                expected: "a duration".into(),
                found: crate::reader::describe(other),
                span,
                help: "write a duration such as \"90s\", \"30m\", \"2h\" or \"1h30m\", or a whole \
                       number of seconds"
                    .into(),
            });
            return;
        }
    };
    match seconds {
        Ok(0) => cx.out_of_range(
            &n.path,
            span,
            "must be > 0",
            "a collective timeout of zero would fail every collective; the default is \"30m\"",
        ),
        // libtorch keeps the timeout in nanoseconds of a signed 64-bit clock: beyond ~292
        // years it wraps, and every rendezvous fails as if the master were unreachable
        Ok(s) if s > MAX_TIMEOUT_S => cx.out_of_range(
            &n.path,
            span,
            &format!("must be at most {}h ({} days)", MAX_TIMEOUT_S / 3600, MAX_TIMEOUT_S / 86_400),
            "a collective that waits longer than a month is a hang, not a slow rank; the default is \"30m\"",
        ),
        Ok(s) => {
            cx.spans.insert(n.path.clone(), span);
            d.timeout_s = s;
        }
        // an integer's error is already reported by `value`
        Err(message) if message.is_empty() => {}
        Err(message) => {
            cx.poison(&n.path);
            cx.err(DslError::InvalidValue {
                what: "duration".into(),
                message,
                span,
                help: "write a duration such as \"90s\", \"30m\", \"2h\" or \"1h30m\" (units h, \
                       m, s, largest first), or a whole number of seconds"
                    .into(),
            });
        }
    }
}

fn bucket_mb(cx: &mut Ctx, n: &Node, d: &mut DistributedConfig) {
    if let Some(v) = n.arg(0).and_then(|e| cx.f64_in(e, &n.path, Bound::Positive)) {
        d.bucket_mb = v;
    }
}

/// A string that goes into an sbatch script as one word: non-empty, without white space,
/// quotes or shell characters.
fn sbatch_word(cx: &mut Ctx, e: &kdl::KdlEntry, path: &str) -> Option<Spanned<String>> {
    let v = cx.value::<String>(e, path)?;
    let bad = v.value.chars().find(|c| {
        c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '\\' | '`' | '$')
    });
    let message = if v.value.is_empty() {
        "it is empty".to_string()
    } else if let Some(c) = bad {
        format!("it contains {c:?}")
    } else {
        return Some(v);
    };
    cx.poison(path);
    cx.err(DslError::InvalidValue {
        what: path.to_string(),
        message,
        span: v.span,
        help: "this value is written into the sbatch script as one word: no spaces, quotes, \
               backslashes, `$` or control characters"
            .into(),
    });
    None
}

/// SLURM `--time` formats: `MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`, `D-HH:MM:SS`.
pub(crate) fn slurm_time_ok(s: &str) -> bool {
    slurm_time_seconds(s).is_some()
}

/// The seconds of a SLURM `--time` (`MM`, `MM:SS`, `HH:MM:SS`, `D-HH`, `D-HH:MM`,
/// `D-HH:MM:SS`; `0`: no limit), `None` for another text.
pub fn slurm_time_seconds(s: &str) -> Option<u64> {
    fn num(p: &str, max_digits: usize) -> Option<u64> {
        (!p.is_empty() && p.len() <= max_digits && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    }
    let below = |p: &str, limit: u64| num(p, 2).filter(|v| *v < limit);
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    match (days, parts.as_slice()) {
        (None, [m]) => Some(num(m, 7)? * 60),
        (None, [m, sec]) => Some(num(m, 7)? * 60 + below(sec, 60)?),
        (None, [h, m, sec]) => Some(num(h, 6)? * 3600 + below(m, 60)? * 60 + below(sec, 60)?),
        (Some(d), hms) => {
            let d = num(d, 5)? * 86_400;
            match hms {
                [h] => Some(d + below(h, 24)? * 3600),
                [h, m] => Some(d + below(h, 24)? * 3600 + below(m, 60)? * 60),
                [h, m, sec] => Some(d + below(h, 24)? * 3600 + below(m, 60)? * 60 + below(sec, 60)?),
                _ => None,
            }
        }
        _ => None,
    }
}

/// SLURM memory sizes: digits with an optional unit (`55G`, `64000M`, `1T`).
fn slurm_mem_ok(s: &str) -> bool {
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    s.len() - digits.len() <= 1
        && !digits.is_empty()
        && digits.len() <= 12
        && digits.bytes().all(|b| b.is_ascii_digit())
}

/// `"90s"`, `"30m"`, `"2h"`, `"1h30m"` -> seconds. Units h, m, s, each at most once, largest
/// first.
pub(crate) fn parse_duration(s: &str) -> Result<u64, String> {
    let bad = || format!("{s:?} is not a duration");
    if s.is_empty() {
        return Err("the duration is empty".into());
    }
    let mut total: u64 = 0;
    let mut last_unit = u64::MAX;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 12 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        let unit = match rest.as_bytes().get(digits) {
            Some(b'h') => 3600,
            Some(b'm') => 60,
            Some(b's') => 1,
            _ => return Err(bad()),
        };
        if unit >= last_unit {
            return Err(format!("{s:?}: write each unit once, largest first (h, m, s)"));
        }
        last_unit = unit;
        total = value
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("{s:?} is too long"))?;
        rest = &rest[digits + 1..];
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_times() {
        for ok in ["90", "4320", "30:00", "72:00:00", "1-12", "3-00:00", "3-00:00:00", "0"] {
            assert!(slurm_time_ok(ok), "{ok}");
        }
        for bad in [
            "", "72h", "1:2:3:4", "10:60", "1:00:61", "1-24", "-1", "1-", "a-10", "1-1-1", "1:",
            ":30", "12345678",
        ] {
            assert!(!slurm_time_ok(bad), "{bad}");
        }
        for (t, secs) in [("90", 5400), ("30:15", 1815), ("72:00:00", 259_200), ("1-12", 129_600), ("3-00:30", 261_000), ("1-01:02:03", 90_123), ("0", 0)] {
            assert_eq!(slurm_time_seconds(t), Some(secs), "{t}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("30m"), Ok(1800));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1h30m"), Ok(5400));
        assert_eq!(parse_duration("1h0m5s"), Ok(3605));
        assert_eq!(parse_duration("0s"), Ok(0));
        for bad in ["", "30", "m", "30x", "1m1h", "1h1h", "1.5h", "-5s", "9999999999999h", " 30m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn memory() {
        for ok in ["55G", "64000M", "1T", "512", "8g"] {
            assert!(slurm_mem_ok(ok), "{ok}");
        }
        for bad in ["", "G", "55GB", "5.5G", "-1G"] {
            assert!(!slurm_mem_ok(bad), "{bad}");
        }
    }
}
