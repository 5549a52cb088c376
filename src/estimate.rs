//! `ijepa estimate FILE.kdl`: what a pretraining will cost before it is launched. Parameters
//! and FLOPs per image come from the recipe's cost model ([`ijepa_engine::estimate`]); memory
//! per process is measured by a few real steps on random data at the experiment's batch where
//! this machine can run them, and counted analytically in every case; the wall time and
//! device-hours of the whole pretraining are projected on the experiment's layout (nodes x
//! processes): on a GPU from its peak rate and an assumed MFU, on this CPU from the measured
//! step.

use ijepa_dsl::config::{Experiment, Precision};
use ijepa_engine::estimate::{self as est, Accelerator, Projection, StepCost};
use ijepa_engine::plan::counted;
use ijepa_engine::{memory, precision};
use std::fmt::Write as _;

/// What `ijepa estimate` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// Training images (default: the dataset's, counted by opening it).
    pub images: Option<u64>,
    /// The GPU of the projection.
    pub gpu: String,
    /// Assumed model FLOP utilisation of the GPU projection.
    pub mfu: f64,
    /// Measure a few real steps on this machine: `Some(true)` always, `Some(false)` never,
    /// `None` when the analytic memory fits in half the available memory and a step is at most
    /// [`MEASURE_MAX_FLOPS`].
    pub measure: Option<bool>,
    /// Timed steps of the measurement (after one untimed).
    pub steps: usize,
    /// A GPU-hour budget (e.g. a paper's) to turn into the MFU it requires.
    pub budget_hours: Option<f64>,
}

/// The largest step (FLOPs per process) measured without `--measure`.
pub const MEASURE_MAX_FLOPS: f64 = 2e12;

/// A measurement of the step on this machine.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Seconds per step (mean of the timed steps).
    pub step_seconds: f64,
    /// Peak resident memory growth from before the model was built to after the steps, bytes.
    pub peak_bytes: f64,
    /// The precision it ran in, in words.
    pub precision: String,
    /// Torch threads.
    pub threads: i32,
    /// The kernel of the matrix products (`blas` or `onednn`).
    pub products: &'static str,
}

/// The estimate of one experiment.
#[derive(Debug, Clone)]
pub struct Estimate {
    /// The experiment's name.
    pub name: String,
    /// Its recipe.
    pub recipe: String,
    /// The recipe's count.
    pub cost: StepCost,
    /// Training images, and where the number came from.
    pub images: (u64, String),
    /// Per-process batch.
    pub batch: usize,
    /// Analytic memory per process at the batch (state, activations), bytes.
    pub memory: (f64, f64),
    /// The GPU projection's device, precision and MFU, with the projection (None where the
    /// device lacks the precision).
    pub gpu: (&'static Accelerator, Precision, f64, Option<Projection>),
    /// The step on this machine, when measured, with the projection of the run from it.
    pub measured: Option<(Measured, Projection)>,
    /// Why the step was not measured.
    pub not_measured: Option<String>,
    /// This machine's CPU.
    pub cpu: String,
    /// A GPU-hour budget and the MFU it requires on the projection's GPU (None where that GPU
    /// lacks the precision: no projection to compare with).
    pub budget: Option<(f64, Option<f64>)>,
}

fn gib(b: f64) -> String {
    if b < (1u64 << 30) as f64 {
        format!("{:.1} MiB", b / (1u64 << 20) as f64)
    } else {
        format!("{:.2} GiB", b / (1u64 << 30) as f64)
    }
}

/// `flops` in `unit` (1e9: GFLOP, 1e12: TFLOP), or in a smaller one where it is less than one
/// of them (a small model's "0.00 TFLOP per step").
fn flops_in(flops: f64, unit: f64) -> String {
    let units = [(1e12, "TFLOP"), (1e9, "GFLOP"), (1e6, "MFLOP"), (1e3, "kFLOP")];
    let (scale, name) = units.iter().copied().filter(|(u, _)| *u <= unit).find(|(u, _)| flops >= *u).unwrap_or((1.0, "FLOP"));
    format!("{:.2} {name}", flops / scale)
}

/// GPU-hours, with the digits a small projection needs ("0.0 GPU-hours").
fn hours(h: f64) -> String {
    if h >= 0.05 || h == 0.0 {
        format!("{h:.1}")
    } else {
        format!("{h:.1e}")
    }
}

fn step_time(s: f64) -> String {
    if s < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if s < 1.0 {
        format!("{:.2} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

fn duration(s: f64) -> String {
    if s >= 2.0 * 86400.0 {
        format!("{:.1} days", s / 86400.0)
    } else if s >= 2.0 * 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else if s >= 120.0 {
        format!("{:.1} min", s / 60.0)
    } else {
        format!("{s:.1} s")
    }
}

/// The most `--images` taken: a trillion, a thousand times the largest image data sets.
const MAX_IMAGES: u64 = 1_000_000_000_000;

/// The most bytes of a `subset` list read (ImageNet's 10% list is ~3 MB).
const MAX_LIST_BYTES: u64 = 1 << 30;

/// Whether `exp`'s data lies in a folder that is not on this machine.
fn root_absent(exp: &Experiment) -> bool {
    matches!(&exp.data.source, ijepa_dsl::config::DataSource::Path(p) if !p.exists())
}

/// The images a `subset` list names: its lines that are not blank (a file named twice is
/// trained on twice, as the official `ImageNetSubset` does), read without the images; `Err`
/// says why it cannot be read (not here, not a file: a device was read without end).
fn listed_images(list: &std::path::Path) -> Result<u64, String> {
    let why = |e: String| format!("the `subset` list {} cannot be read: {e}", list.display());
    let meta = std::fs::metadata(list).map_err(|e| why(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_LIST_BYTES {
        return Err(why(format!("not a regular file of at most {MAX_LIST_BYTES} bytes")));
    }
    let bytes = std::fs::read(list).map_err(|e| why(e.to_string()))?;
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    Ok(text.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count() as u64)
}

/// The number of training images a pretraining of `exp` trains on, by opening its dataset: the
/// split, less the monitor's held-out images as the run holds them out (with their other
/// copies, where a list names a file twice: the estimate counted them, up to 77% more images
/// than the run trained on); and how many such copies it leaves out (said beside the count).
fn count_images(exp: &Experiment) -> Result<(u64, usize), Box<dyn std::error::Error>> {
    let ds = ijepa_engine::data::open_dataset(&exp.data, ijepa_engine::data::Split::Train)?;
    let Some(m) = &exp.monitor else { return Ok((ds.len() as u64, 0)) };
    let batch = exp.data.batch_size;
    let needs = ijepa_engine::data::HoldOutNeeds { quiet: true, ..ijepa_engine::data::HoldOutNeeds::new(batch, exp.global_batch() / batch.max(1), m.k) };
    // (a monitor the split cannot give its images: no full batch is left, as said below)
    let rest = ijepa_engine::data::hold_out(ds.clone(), m.images, needs).map_or(ds.len().saturating_sub(m.images), |(rest, _)| rest.len());
    Ok((rest as u64, ds.len().saturating_sub(m.images + rest)))
}

fn measure(exp: &Experiment, steps: usize) -> Result<Measured, Box<dyn std::error::Error>> {
    let mut exp = exp.clone();
    let resolved = precision::resolve_with(exp.precision, &precision::bf16_support(tch::Device::Cpu));
    exp.precision = resolved.precision;
    // the CPU's matrix products on the kernel a run here would take
    let products = ijepa_engine::products::choose(tch::Device::Cpu, exp.precision == ijepa_dsl::config::Precision::Bf16).map_or("blas", |c| c.products.name());
    let before = memory::resident().map_or(0.0, |(now, _)| now);
    let b = exp.data.batch_size;
    // (a libtorch failure, out of memory, is this measurement's error: it was the command's,
    // and the analytic estimate was lost with it)
    let times = ijepa_engine::guard::torch("the measurement of a few steps", || {
        let mut recipe = ijepa_engine::recipe::build(&exp, tch::Device::Cpu, 0, 1)?;
        let views = ijepa_engine::recipe::random_views(recipe.as_ref(), &exp.data, b, tch::Device::Cpu)?;
        let hyper = ijepa_engine::recipe::Hyper { lr: 1e-4, wd: 0.04, momentum: 0.996 };
        ijepa_engine::recipe::time_steps(recipe.as_mut(), &views, b, 1, steps, None, hyper, tch::Device::Cpu)
    })?;
    let peak = memory::resident().map_or(0.0, |(_, peak)| peak);
    Ok(Measured {
        step_seconds: times.iter().sum::<f64>() / times.len().max(1) as f64,
        peak_bytes: (peak - before).max(0.0),
        precision: resolved.describe,
        threads: tch::get_num_threads(),
        products,
    })
}

/// Estimates `exp`.
///
/// # Errors
/// An unknown recipe or one without a cost model, an unknown GPU, a dataset that cannot be
/// opened without `--images`, a failed measurement.
pub fn estimate(exp: &Experiment, opts: &Options) -> Result<Estimate, Box<dyn std::error::Error>> {
    let entry = ijepa_engine::recipe::entry(&exp.recipe)?;
    let Some(cost_fn) = entry.cost else {
        return Err(format!("recipe {:?} declares no cost model (RecipeEntry::cost), so it cannot be estimated", exp.recipe).into());
    };
    let cost = cost_fn(exp)?;
    let Some(acc) = est::accelerator(&opts.gpu) else {
        let known: Vec<_> = est::ACCELERATORS.iter().map(|a| a.name).collect();
        return Err(format!("unknown GPU {:?} (known: {})", opts.gpu, known.join(", ")).into());
    };
    // (1e-300 was taken, and printed "0% MFU" beside wall times of 300 digits)
    if !(opts.mfu >= 1e-3 && opts.mfu <= 1.0) {
        return Err(format!("--mfu {} is not a fraction in [0.001, 1] (0.1% to 100% of the GPU's peak)", ijepa_engine::error::shown(opts.mfu)).into());
    }
    // (checked first: NaN was taken for no budget, a budget of a second for one of 1e25% MFU;
    // 1e300 printed 300 digits)
    if let Some(h) = opts.budget_hours.filter(|h| !(h.is_finite() && (1e-3..=1e9).contains(h))) {
        return Err(format!("--budget-hours {} is not a number of hours from 0.001 to 1e9", ijepa_engine::error::shown(h)).into());
    }
    // (a count past any data set's: 1e17 wrapped the budget's FLOP total, "need 624140528369%
    // MFU" where 1.6e12% was meant)
    if let Some(n) = opts.images.filter(|&n| n > MAX_IMAGES) {
        return Err(format!("--images {n} is more than the {MAX_IMAGES} images any data set here could hold").into());
    }
    // what the run trains on: the split (`limit`ed), less the monitor's held-out images
    let held = exp.monitor.as_ref().map_or(0, |m| m.images as u64);
    let less_held = if held > 0 { format!(", less the monitor's {held} held-out images") } else { String::new() };
    // (a `subset` list is what the run trains on, whatever the split holds: counted by its
    // lines where the images cannot be, which needs none of them; `--images 1281167` beside
    // ImageNet's 1% list projected 100 times the steps)
    // (`None` without a list; `Some(Err)` for one that cannot be read here)
    // (`k` images as the file's `limit` leaves them, and the words saying so)
    let limited = |k: u64| {
        let limited = exp.data.limit.map_or(k, |l| k.min(l as u64));
        (limited, if limited < k { format!(", `limit`ed to {limited}") } else { String::new() })
    };
    let from_list = |n: Option<u64>| -> Option<Result<(u64, String), String>> {
        let list = exp.data.subset.as_ref()?;
        Some(listed_images(list).map(|k| {
            let (limited, limit) = limited(k);
            let given = n.map_or(String::new(), |n| format!(" (not the {n} of --images: the list replaces the split)"));
            (limited.saturating_sub(held), format!("the {k} lines of the `subset` list{given}{limit}{less_held}"))
        }))
    };
    let images = match opts.images {
        Some(n) => match from_list(Some(n)) {
            Some(Ok(listed)) => listed,
            // (a list not on this machine: N is what the user knows of it, as before)
            unread => {
                let (limited, limit) = limited(n);
                let list = match unread {
                    Some(Err(why)) => format!("; {why}: {n} is taken as the images it names"),
                    _ => String::new(),
                };
                (limited.saturating_sub(held), format!("{n} given with --images{limit}{less_held}{list}"))
            }
        },
        // (a list that is no regular file: opening the data set read a named pipe without end,
        // and `/dev/zero` until the memory ran out, where `check` refuses it)
        None if exp.data.subset.as_ref().is_some_and(|l| l.exists() && !l.is_file()) => {
            return Err(format!("{}: the `subset` list is not a regular file", exp.data.subset.as_ref().map(|l| l.display().to_string()).unwrap_or_default()).into());
        }
        None => match count_images(exp) {
            Ok((n, copies)) => {
                let copies = if copies > 0 { format!(" and {copies} other copies of them the list names") } else { String::new() };
                (n, format!("the dataset's training split{}{less_held}{copies}", exp.data.limit.map_or(String::new(), |l| format!(" (at most `limit` {l})"))))
            }
            // (its lines where the images are not on this machine; where they are, the list
            // naming a file the folder lacks is the run's error too: its lines were counted
            // for a run that cannot start)
            Err(e) => match from_list(None).filter(|_| root_absent(exp)) {
                Some(Ok(listed)) => listed,
                Some(Err(why)) => return Err(format!("cannot count the training images ({e}), and {why}; give the number of images the list names with --images N").into()),
                None if exp.data.subset.is_some() => return Err(format!("cannot count the training images ({e}); give the number of images the `subset` list names with --images N").into()),
                None => return Err(format!("cannot count the training images ({e}); give their number with --images N (ImageNet-1K: 1281167)").into()),
            },
        },
    };
    let batch = exp.data.batch_size;
    let global = exp.global_batch();
    if images.0 < global as u64 {
        return Err(format!(
            "{} training images ({}) make no full global batch of {global}: the pretraining would take no step",
            images.0, images.1
        )
        .into());
    }
    let gpu_precision = match exp.precision {
        Precision::Auto if acc.bf16 > 0.0 => Precision::Bf16,
        Precision::Auto => Precision::Fp32,
        p => p,
    };
    let analytic = (est::state_bytes(&cost), batch as f64 * est::activation_bytes(cost.activation_elems_per_image, gpu_precision));
    let gpu_proj = est::gpu_step_seconds(&cost, batch, acc, gpu_precision, opts.mfu).map(|t| est::project(exp, images.0, t));
    let step_flops = cost.flops_per_image * batch as f64;
    let available = memory::available();
    let fits = available.is_some_and(|a| analytic.0 + analytic.1 < 0.5 * a);
    // forced, a measurement that cannot fit at all is refused (it ran into the OOM killer);
    // measured at this CPU's precision (fp32 without native bf16: twice the GPU's activations)
    if let (Some(true), Some(a)) = (opts.measure, available) {
        let here = precision::resolve_with(exp.precision, &precision::bf16_support(tch::Device::Cpu)).precision;
        let need = analytic.0 + batch as f64 * est::activation_bytes(cost.activation_elems_per_image, here);
        if need >= a {
            return Err(format!(
                "--measure: a step of this experiment needs about {} (analytic, {} here), more than the {} {}: it would run out of memory; drop --measure for the analytic estimate",
                gib(need),
                precision::name(here),
                gib(a),
                memory::AVAILABLE_HERE
            )
            .into());
        }
    }
    let (measured, not_measured) = match opts.measure {
        Some(false) => (None, Some("--no-measure".to_string())),
        Some(true) => (Some(measure(exp, opts.steps)?), None),
        None if !fits => (None, Some(format!("the analytic memory exceeds half of the memory {} (--measure to force)", memory::AVAILABLE_HERE))),
        None if step_flops > MEASURE_MAX_FLOPS => {
            (None, Some(format!("a step is {:.1} TFLOP, too long to time here (--measure to force)", step_flops / 1e12)))
        }
        // measured unasked: a failure (out of memory, say) leaves the analytic estimate standing
        None => match measure(exp, opts.steps) {
            Ok(m) => (Some(m), None),
            Err(e) => {
                // (a Ctrl-C during it still stops)
                ijepa_engine::interrupt::check()?;
                (None, Some(format!("the measurement failed ({e}); the figures above are analytic")))
            }
        },
    };
    let measured = measured.map(|m| {
        let p = est::project(exp, images.0, m.step_seconds);
        (m, p)
    });
    let cpu = ijepa_engine::device::cpu_model();
    let budget = opts.budget_hours.map(|h| {
        let mfu = gpu_proj.as_ref().map(|p| {
            let peak = if gpu_precision == Precision::Bf16 { acc.bf16 } else { acc.fp32 };
            let flops = cost.flops_per_image * p.steps as f64 * (batch * p.world) as f64;
            est::implied_mfu(flops, h / p.world as f64, p.world as f64, peak)
        });
        (h, mfu)
    });
    Ok(Estimate {
        budget,
        name: exp.name.clone(),
        recipe: exp.recipe.clone(),
        cost,
        images,
        batch,
        memory: analytic,
        gpu: (acc, gpu_precision, opts.mfu, gpu_proj),
        measured,
        not_measured,
        cpu,
    })
}

impl std::fmt::Display for Estimate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.cost;
        let mut s = String::new();
        let _ = writeln!(s, "estimate of {:?} (recipe {})", self.name, self.recipe);
        let _ = writeln!(
            s,
            "  parameters      {:.2}M trained{}",
            c.trainable_params / 1e6,
            if c.frozen_params > 0.0 { format!(", {:.2}M held untrained{}", c.frozen_params / 1e6, if c.frozen_what.is_empty() { String::new() } else { format!(" ({})", c.frozen_what) }) } else { String::new() }
        );
        let _ = writeln!(s, "  tokens          {}", c.tokens);
        let _ = writeln!(
            s,
            "  step FLOPs      {} per image (forward + backward), {} per step of {}",
            flops_in(c.flops_per_image, 1e9),
            flops_in(c.flops_per_image * self.batch as f64, 1e12),
            self.batch
        );
        let _ = writeln!(
            s,
            "  memory/process  {} analytic at batch {} ({}): {} weights, gradients and AdamW state + {} activations",
            gib(self.memory.0 + self.memory.1),
            self.batch,
            // (a precision the GPU lacks is the file's, not the GPU's)
            if self.gpu.3.is_some() {
                format!("{} as on --gpu {}", precision::name(self.gpu.1), self.gpu.0.name)
            } else {
                format!("{} as the file asks, which --gpu {} lacks", precision::name(self.gpu.1), self.gpu.0.name)
            },
            gib(self.memory.0),
            gib(self.memory.1)
        );
        let _ = writeln!(s, "  images          {} ({})", self.images.0, self.images.1);
        match &self.measured {
            Some((m, p)) => {
                let _ = writeln!(
                    s,
                    "  measured here   {:.1} ms/step, peak resident memory +{} (the process, libtorch's own included; {}, {} threads, {} products, {})",
                    m.step_seconds * 1e3,
                    gib(m.peak_bytes),
                    m.precision,
                    m.threads,
                    m.products,
                    self.cpu
                );
                let _ = writeln!(
                    s,
                    "  on this CPU     {} ({} x {}): {} of pretraining per process{}",
                    counted(p.steps as usize, "step"),
                    p.steps_per_epoch,
                    counted((p.steps / p.steps_per_epoch.max(1)) as usize, "epoch"),
                    duration(p.wall_seconds),
                    if p.world > 1 { format!(" (the layout has {} processes; on one machine they share its cores)", p.world) } else { String::new() }
                );
            }
            None => {
                let _ = writeln!(s, "  measured here   no: {}", self.not_measured.as_deref().unwrap_or("not asked"));
            }
        }
        let (acc, prec, mfu, proj) = &self.gpu;
        match proj {
            Some(p) => {
                let _ = writeln!(
                    s,
                    "  on {} x {}{}{} of {} ({} at {:.0}% MFU, {}): {} wall, {} GPU-hours",
                    p.world,
                    acc.name,
                    " ".repeat(13usize.saturating_sub(format!("{} x {}", p.world, acc.name).len()).max(1)),
                    counted(p.steps as usize, "step"),
                    step_time(p.step_seconds),
                    precision::name(*prec),
                    mfu * 100.0,
                    acc.description,
                    duration(p.wall_seconds),
                    hours(p.device_hours)
                );
            }
            None => {
                let _ = writeln!(s, "  on {}: no projection ({} lacks {})", acc.name, acc.description, precision::name(*prec));
            }
        }
        // a process that cannot hold its batch on the GPU has no wall time to project
        let per_process = self.memory.0 + self.memory.1;
        if per_process > acc.memory {
            let _ = writeln!(
                s,
                "  does not fit    {} per process (analytic) is more than the {} of one {}: {}; \
                 lower batch-size (the activations, {} of it, grow with it), the model, or the image size",
                gib(per_process),
                gib(acc.memory),
                acc.name,
                if proj.is_some() { "the projection above cannot run" } else { "it could not run there" },
                gib(self.memory.1)
            );
        }
        if let Some((h, m)) = self.budget {
            // (0.001 hours printed as 0)
            let h = if h >= 10.0 { format!("{h:.0}") } else { format!("{h:.3}").trim_end_matches('0').trim_end_matches('.').to_string() };
            let _ = match m {
                Some(m) => writeln!(s, "  budget          {h} GPU-hours on {} need {}% MFU{}", acc.name, percent(m * 100.0), if m > 1.0 { ": more than the peak, not reachable" } else { "" }),
                // (the line was left out without a word)
                None => writeln!(s, "  budget          {h} GPU-hours on {}: no MFU to compare with ({} lacks {})", acc.name, acc.description, precision::name(*prec)),
            };
        }
        f.write_str(s.trim_end())
    }
}

/// A percentage as the budget line says it: whole from 1 up (and what rounds to 1), below
/// that with two significant digits (a need of 1.5e-5 % read as "0% MFU").
fn percent(p: f64) -> String {
    if p >= 0.995 || p == 0.0 {
        format!("{p:.0}")
    } else {
        let digits = (1 - p.log10().floor() as i32).max(0) as usize;
        format!("{p:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny MFU need is said, not rounded to "0%".
    #[test]
    fn a_budget_s_need_keeps_two_digits_below_one_percent() {
        assert_eq!(percent(43.2), "43");
        assert_eq!(percent(0.5), "0.50");
        assert_eq!(percent(1.5e-5), "0.000015");
        assert_eq!(percent(250.0), "250");
        assert_eq!(percent(0.997), "1");
    }

    #[test]
    fn small_figures_keep_their_digits() {
        // the presets' figures as before, a small model's in a smaller unit (it read 0.00)
        assert_eq!(flops_in(606.79e9, 1e9), "606.79 GFLOP");
        assert_eq!(flops_in(2032e9, 1e9), "2032.00 GFLOP");
        assert_eq!(flops_in(77.7e12, 1e12), "77.70 TFLOP");
        assert_eq!(flops_in(0.17e9, 1e9), "170.00 MFLOP");
        assert_eq!(flops_in(5.4e9, 1e12), "5.40 GFLOP");
        assert_eq!(flops_in(12.0, 1e9), "12.00 FLOP");
        assert_eq!(hours(519.04), "519.0");
        assert_eq!(hours(0.0), "0.0");
        assert_eq!(hours(3.1e-5), "3.1e-5");
        assert_eq!(step_time(0.04e-3), "40.0 µs");
        assert_eq!(step_time(0.5), "500.00 ms");
        assert_eq!(step_time(2.0), "2.00 s");
    }
}
