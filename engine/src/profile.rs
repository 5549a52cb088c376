//! libtorch's operator profiler (Kineto, CPU activities; `csrc/shim.cpp`) and a summary of
//! what it recorded: each operator's calls and *self* time (its time less that of the operators
//! it called), as `torch.profiler`'s `key_averages()` reports them. `ijepa bench step --profile`
//! prints it beside `scripts/bench_official_step.py --profile`, the same table for the official
//! code, so the two steps can be compared operator by operator.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::ffi::CString;
use std::path::Path;

extern "C" {
    fn ijepa_profiler_start() -> i32;
    fn ijepa_profiler_stop(path: *const std::os::raw::c_char) -> i32;
}

/// The matrix products: what a step with the same kernels and FLOPs cannot avoid (the dense
/// layers' whether BLAS or oneDNN's 1x1 convolutions run them, `crate::products`, and the
/// patch embedding's convolution).
pub const MATRIX_PRODUCTS: [&str; 6] = ["aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution", "aten::convolution_backward"];

/// Starts recording every operator libtorch runs on this thread until [`stop`].
///
/// # Errors
/// [`Error::Profiler`] when libtorch refuses (a profiler already running).
pub fn start() -> Result<()> {
    // SAFETY: a plain C function over libtorch's thread-local profiler state.
    match unsafe { ijepa_profiler_start() } {
        0 => Ok(()),
        _ => Err(Error::Profiler(
            "libtorch could not start its profiler (is one already running?)".into(),
        )),
    }
}

/// Stops the profiler started by [`start`] and writes what it recorded to `trace` as a Chrome
/// trace (JSON; chrome://tracing or Perfetto open it).
///
/// # Errors
/// [`Error::Profiler`] when no profiler runs or the file cannot be written.
pub fn stop(trace: &Path) -> Result<()> {
    let c = CString::new(trace.to_string_lossy().as_bytes())
        .map_err(|_| Error::Profiler(format!("{}: a path with a NUL byte", trace.display())))?;
    // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
    match unsafe { ijepa_profiler_stop(c.as_ptr()) } {
        0 => Ok(()),
        _ => Err(Error::Profiler(format!(
            "libtorch could not stop its profiler or write {}",
            trace.display()
        ))),
    }
}

/// One operator's totals over a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct OpTotal {
    /// Its name (`aten::mm`).
    pub name: String,
    /// How often it ran.
    pub calls: u64,
    /// Its own time, microseconds (the operators it called left out).
    pub self_us: f64,
    /// Its time with the operators it called, microseconds.
    pub total_us: f64,
}

/// One recorded operator call: thread, start and duration in microseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct OpEvent {
    /// Operator name.
    pub name: String,
    /// Thread id.
    pub tid: u64,
    /// Start, microseconds.
    pub ts: f64,
    /// Duration, microseconds.
    pub dur: f64,
}

/// Totals per operator, by self time (largest first). On each thread a call lies inside the
/// last earlier call that has not ended before it starts; its time is taken from that caller's
/// self time.
pub fn totals(events: &[OpEvent]) -> Vec<OpTotal> {
    let mut order: Vec<usize> = (0..events.len()).collect();
    // by thread, then start, an enclosing call (the longer) before the calls it encloses
    order.sort_by(|&a, &b| {
        let (x, y) = (&events[a], &events[b]);
        x.tid
            .cmp(&y.tid)
            .then(x.ts.total_cmp(&y.ts))
            .then(y.dur.total_cmp(&x.dur))
    });
    let mut self_us: Vec<f64> = events.iter().map(|e| e.dur).collect();
    let mut stack: Vec<usize> = Vec::new();
    let mut tid = None;
    for &i in &order {
        let e = &events[i];
        if tid != Some(e.tid) {
            stack.clear();
            tid = Some(e.tid);
        }
        // callers that ended before this call started are done (1 ns of slack for rounding)
        while let Some(&top) = stack.last() {
            if events[top].ts + events[top].dur <= e.ts + 1e-3 {
                stack.pop();
            } else {
                break;
            }
        }
        if let Some(&parent) = stack.last() {
            self_us[parent] -= e.dur;
        }
        stack.push(i);
    }
    let mut by_name: HashMap<&str, OpTotal> = HashMap::new();
    for (e, s) in events.iter().zip(&self_us) {
        let t = by_name.entry(&e.name).or_insert_with(|| OpTotal {
            name: e.name.clone(),
            calls: 0,
            self_us: 0.0,
            total_us: 0.0,
        });
        t.calls += 1;
        t.self_us += s.max(0.0);
        t.total_us += e.dur;
    }
    let mut out: Vec<OpTotal> = by_name.into_values().collect();
    out.sort_by(|a, b| b.self_us.total_cmp(&a.self_us).then(a.name.cmp(&b.name)));
    out
}

/// The operator calls of a Chrome trace written by [`stop`] (or by `torch.profiler`'s
/// `export_chrome_trace`): its complete events (`"ph": "X"`) of category `cpu_op`.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read, [`Error::Profiler`] when it is not such a trace.
pub fn read_trace(trace: &Path) -> Result<Vec<OpEvent>> {
    let text = std::fs::read_to_string(trace).map_err(|e| Error::io(trace, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::Profiler(format!("{}: not JSON ({e})", trace.display())))?;
    let Some(list) = json.get("traceEvents").and_then(|v| v.as_array()) else {
        return Err(Error::Profiler(format!(
            "{}: no traceEvents list (not a Chrome trace)",
            trace.display()
        )));
    };
    let num = |v: Option<&serde_json::Value>| {
        v.and_then(|x| {
            x.as_f64()
                .or_else(|| x.as_str().and_then(|s| s.parse().ok()))
        })
    };
    Ok(list
        .iter()
        .filter(|e| {
            e.get("ph").and_then(|v| v.as_str()) == Some("X")
                && e.get("cat").and_then(|v| v.as_str()) == Some("cpu_op")
        })
        .filter_map(|e| {
            Some(OpEvent {
                name: e.get("name")?.as_str()?.to_string(),
                tid: num(e.get("tid")).map_or(0, |t| t as u64),
                ts: num(e.get("ts"))?,
                dur: num(e.get("dur"))?,
            })
        })
        .collect())
}

/// Held by the tests that run the profiler: libtorch has one profiler per process.
#[cfg(test)]
pub(crate) static TEST_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A profile's headline: the matrix products' self time against all operators' self time.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    /// Self time of [`MATRIX_PRODUCTS`], microseconds.
    pub matrix_us: f64,
    /// Self time of every operator, microseconds.
    pub all_us: f64,
}

impl Headline {
    /// Of the totals of [`totals`].
    pub fn of(totals: &[OpTotal]) -> Self {
        let matrix_us = totals
            .iter()
            .filter(|t| MATRIX_PRODUCTS.contains(&t.name.as_str()))
            .map(|t| t.self_us)
            .sum();
        Self {
            matrix_us,
            all_us: totals.iter().map(|t| t.self_us).sum(),
        }
    }

    /// The matrix products' share of the operators' self time, percent.
    pub fn matrix_percent(&self) -> f64 {
        100.0 * self.matrix_us / self.all_us.max(1e-9)
    }
}

/// The table `bench step --profile` prints: the `rows` largest operators by self time, per
/// step, as `torch.profiler`'s `key_averages().table()` orders them.
pub fn table(totals: &[OpTotal], steps: usize, rows: usize) -> String {
    let all: f64 = totals.iter().map(|t| t.self_us).sum::<f64>().max(1e-9);
    let steps = steps.max(1) as f64;
    let mut s = format!(
        "{:<40} {:>8} {:>13} {:>7} {:>14}\n",
        "operator", "calls", "self ms/step", "self %", "total ms/step"
    );
    for t in totals.iter().take(rows) {
        s += &format!(
            "{:<40} {:>8} {:>13.2} {:>6.1}% {:>14.2}\n",
            t.name,
            (t.calls as f64 / steps).round(),
            t.self_us / steps / 1e3,
            100.0 * t.self_us / all,
            t.total_us / steps / 1e3
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Kind, Tensor};

    fn ev(name: &str, tid: u64, ts: f64, dur: f64) -> OpEvent {
        OpEvent {
            name: name.into(),
            tid,
            ts,
            dur,
        }
    }

    #[test]
    fn self_time_leaves_out_the_calls_inside_and_threads_are_apart() {
        // linear [0, 10) calls t [0, 1) and addmm [1, 9); addmm calls copy_ [2, 3).
        // Another thread's mm [0, 5) overlaps in time but is no one's child.
        let events = vec![
            ev("aten::linear", 1, 0.0, 10.0),
            ev("aten::t", 1, 0.0, 1.0),
            ev("aten::addmm", 1, 1.0, 8.0),
            ev("aten::copy_", 1, 2.0, 1.0),
            ev("aten::mm", 2, 0.0, 5.0),
            ev("aten::copy_", 1, 12.0, 2.0),
        ];
        let t = totals(&events);
        let get = |n: &str| t.iter().find(|x| x.name == n).unwrap().clone();
        assert_eq!(get("aten::linear").self_us, 1.0);
        assert_eq!(get("aten::addmm").self_us, 7.0);
        assert_eq!(get("aten::mm").self_us, 5.0);
        let copy = get("aten::copy_");
        assert_eq!((copy.calls, copy.self_us, copy.total_us), (2, 3.0, 3.0));
        assert_eq!(t[0].name, "aten::addmm", "largest self time first");
        // self times add up to the threads' busy time: 10 + 5 + 2
        assert_eq!(t.iter().map(|x| x.self_us).sum::<f64>(), 17.0);
        let h = Headline::of(&t);
        assert_eq!((h.matrix_us, h.all_us), (12.0, 17.0));
    }

    #[test]
    fn a_real_profile_records_the_matrix_product_and_reads_back() {
        let a = Tensor::arange(64 * 64, (Kind::Float, tch::Device::Cpu)).reshape([64, 64]);
        let dir = crate::testdir::scratch("profile", "real");
        let trace = dir.join("trace.json");
        let _one = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        start().unwrap();
        let _ = a.mm(&a).relu();
        stop(&trace).unwrap();
        let t = totals(&read_trace(&trace).unwrap());
        assert!(
            t.iter().any(|x| x.name == "aten::mm" && x.calls == 1),
            "{t:?}"
        );
        assert!(t.iter().any(|x| x.name == "aten::relu"), "{t:?}");
        assert!(Headline::of(&t).matrix_us > 0.0);
        // stopping twice is an error, not a crash
        assert!(stop(&trace).is_err());
    }

    #[test]
    fn a_file_that_is_not_a_trace_is_refused_by_name() {
        let dir = crate::testdir::scratch("profile", "bad");
        let f = dir.join("x.json");
        std::fs::write(&f, "{\"a\": 1}").unwrap();
        let e = read_trace(&f).unwrap_err().to_string();
        assert!(e.contains("x.json") && e.contains("traceEvents"), "{e}");
        std::fs::write(&f, "not json").unwrap();
        assert!(read_trace(&f).unwrap_err().to_string().contains("not JSON"));
    }
}
