//! Robustness: `parse_study` / `parse_str` (and rendering their diagnostics) must never panic
//! or hang, whatever the text. Feeds deterministic mutations (byte flips, insertions,
//! deletions, duplicated and swapped chunks) of `experiments/quickstart.kdl` and of a study
//! using `extends` (to a real base, to a missing file, to itself), `distributed` and `sweep`,
//! plus random token soups, from a tiny inline PRNG so every run tests the same inputs. Set
//! `FUZZ_CASES=N` to run more.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

const QUICKSTART: &str = include_str!("../../experiments/quickstart.kdl");

/// A study over recipes: MAE's own nodes beside I-JEPA's, a zip sweep varying the recipe.
const METHODS: &str = include_str!("../../experiments/fmnist-methods.kdl");

/// A study exercising `extends`, `distributed` and `sweep`. Tests run in the crate folder, so
/// the base path is relative to it; `fuzz.kdl` (the name inputs are parsed under) is itself.
const STUDY: &str = r#"
experiment "fuzz-study" {
    extends "../experiments/quickstart.kdl"
    epochs 2
    mask "multi-block" { min-keep 3; targets count=3 }
    distributed {
        nodes 1
        gpus-per-node 2
        backend "gloo"
        launcher "slurm"
        slurm partition="p" time="1-00:30" cpus-per-task=4 mem-per-gpu="8G"
        timeout "1h30m"
        bucket-mb 25
    }
    eval "linear" { epochs 3 }
}
sweep "grid" {
    vary "mask.targets.scale" {
        - 0.075 0.2
        - 0.15 0.2
    }
    vary "optimizer.lr.peak" 1e-3 2e-3
    vary "encoder" "vit-tiny"
    seeds 0 1
}
"#;

/// SplitMix64: tiny, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// Pieces of text the language (and KDL) gives meaning to, plus troublemakers.
const TOKENS: &[&str] = &[
    "experiment",
    "\"quickstart\"",
    "recipe",
    "\"ijepa\"",
    "\"mae\"",
    "decoder",
    "norm-pix-loss=",
    "\"random\"",
    "ratio",
    "seed",
    "data",
    "\"fashion-mnist\"",
    "root=",
    "crop-size",
    "crop-scale",
    "batch-size",
    "workers",
    "prefetch",
    "limit",
    "encoder",
    "\"vit-tiny\"",
    "\"vit-giant\"",
    "patch=",
    "width=",
    "depth=",
    "heads=",
    "mlp-ratio=",
    "rescale-init=",
    "predictor",
    "mask",
    "\"multi-block\"",
    "targets",
    "context",
    "count=",
    "scale",
    "aspect",
    "min-keep",
    "allow-overlap",
    "corner",
    "aspect-sampling",
    "optimizer",
    "\"adamw\"",
    "lr",
    "start=",
    "peak=",
    "final=",
    "warmup-epochs=",
    "weight-decay",
    "schedule=",
    "betas",
    "eps",
    "ema",
    "loss",
    "epochs",
    "ipe-scale",
    "precision",
    "device",
    "log-every",
    "sweep",
    "\"grid\"",
    "\"zip\"",
    "vary",
    "\"mask.targets.scale\"",
    "\"optimizer.lr.peak\"",
    "\"data.crop-size\"",
    "\"encoder\"",
    "\"no.such.path\"",
    "seeds",
    "-",
    "- 0.1 0.2",
    "extends",
    "extends \"fuzz.kdl\"",
    "extends \"missing.kdl\"",
    "extends \"../experiments/quickstart.kdl\"",
    "\"../experiments/quickstart.kdl\"",
    "\"/\"",
    "distributed",
    "nodes",
    "gpus-per-node",
    "backend",
    "\"nccl\"",
    "\"gloo\"",
    "launcher",
    "\"slurm\"",
    "\"torchrun\"",
    "slurm",
    "partition=",
    "time=",
    "\"72:00:00\"",
    "\"1-99\"",
    "mem-per-gpu=",
    "timeout",
    "\"30m\"",
    "\"1h1h\"",
    "bucket-mb",
    "\"cpu\"",
    "eval",
    "{",
    "}",
    "{",
    "}",
    ";",
    "\n",
    "\n",
    " ",
    " ",
    " ",
    "=",
    "0",
    "1",
    "4",
    "32",
    "-1",
    "0.5",
    "1.0",
    "1e-8",
    "2e-4",
    "1e400",
    "-0.0",
    "0x10",
    "0b101",
    "0o7",
    "1_000",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
    "9999999999999999999999",
    "#true",
    "#false",
    "#null",
    "#inf",
    "#-inf",
    "#nan",
    "true",
    "\"\"",
    "\"a\\nb\"",
    "\"\\u{1F600}\"",
    "r#\"raw\"#",
    "#\"raw\"#",
    "\"\"\"\nmulti\n\"\"\"",
    "/-",
    "//",
    "/*",
    "*/",
    "(u8)",
    "(",
    ")",
    "\\",
    "\"",
    "'",
    ",",
    "é",
    "日本",
    "\u{FEFF}",
    "\u{200B}",
    "\t",
    "\r\n",
    "\u{2028}",
    "\u{0}",
    "cuda:0",
    "\"cuda:99999\"",
    "0.15 0.2",
    "0.2 0.15",
];

/// Applies 1 to 8 random edits to the quickstart bytes.
fn mutate(rng: &mut Rng, base: &[u8]) -> String {
    let mut bytes = base.to_vec();
    for _ in 0..1 + rng.below(8) {
        let len = bytes.len().max(1);
        let at = rng.below(len).min(bytes.len());
        match rng.below(7) {
            0 => {
                // Flip bits of one byte (may break UTF-8; decoded lossily below).
                if let Some(b) = bytes.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => {
                const BYTES: &[u8] = b"{}=;\"#/-.0123456789e \n()\\";
                let b = BYTES[rng.below(BYTES.len())];
                bytes.insert(at, b);
            }
            2 => {
                let tok = rng.pick(TOKENS).as_bytes().to_vec();
                bytes.splice(at..at, tok);
            }
            3 => {
                let end = (at + 1 + rng.below(40)).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let end = (at + 1 + rng.below(80)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                let to = rng.below(bytes.len() + 1);
                bytes.splice(to..to, chunk);
            }
            5 => {
                // Replace a digit run with a token (numbers are where ranges live).
                if let Some(p) = bytes[at..].iter().position(u8::is_ascii_digit) {
                    let p = at + p;
                    let tok = rng.pick(TOKENS).as_bytes().to_vec();
                    bytes.splice(p..p + 1, tok);
                }
            }
            _ => {
                let cut = rng.below(bytes.len() + 1);
                bytes.truncate(cut);
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A random sequence of tokens, sometimes wrapped in an experiment block.
fn soup(rng: &mut Rng) -> String {
    let mut s = String::new();
    let wrap = rng.below(2) == 0;
    if wrap {
        s.push_str("experiment \"soup\" {\n");
    }
    for _ in 0..rng.below(60) {
        s.push_str(rng.pick(TOKENS));
        if rng.below(3) > 0 {
            s.push(' ');
        }
    }
    if wrap {
        s.push_str("\n}\n");
    }
    s
}

fn check(src: &str, render: bool) -> Result<bool, String> {
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let study = ijepa_dsl::parse_study("fuzz.kdl", src);
        // the single-experiment API agrees: it fails when the study fails or is a sweep
        let single = ijepa_dsl::parse_str("fuzz.kdl", src);
        match (&study, &single) {
            (Ok(s), Ok(e)) => assert!(s.mode.is_none() && s.points[0].experiment == *e),
            (Ok(s), Err(_)) => assert!(s.mode.is_some()),
            (Err(_), Ok(_)) => panic!("parse_str accepted what parse_study refused"),
            (Err(_), Err(_)) => {}
        }
        match study {
            Ok(s) => {
                assert!(!s.points.is_empty());
                true
            }
            Err(d) => {
                assert!(!d.is_empty(), "an Err must hold at least one error");
                if render {
                    let text = d.render_plain();
                    assert!(!text.is_empty());
                }
                false
            }
        }
    }));
    outcome.map_err(|_| format!("panicked on input:\n---\n{src}\n---"))
}

#[test]
fn never_panics_on_mutated_or_random_input() {
    let cases: usize =
        std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let mut rng = Rng(0x15EE_D1EB_A5E0_0001);
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut parsed_ok = 0usize;
    let mut slowest = Duration::ZERO;
    for i in 0..cases {
        let src = match i % 4 {
            0 => mutate(&mut rng, QUICKSTART.as_bytes()),
            1 => mutate(&mut rng, STUDY.as_bytes()),
            2 => mutate(&mut rng, METHODS.as_bytes()),
            _ => soup(&mut rng),
        };
        let t = Instant::now();
        // Rendering is slower than parsing; render every fourth failure.
        match check(&src, i % 4 == 0) {
            Ok(true) => parsed_ok += 1,
            Ok(false) => {}
            Err(e) => failures.push(e),
        }
        slowest = slowest.max(t.elapsed());
        if failures.len() >= 3 {
            break;
        }
    }
    let elapsed = start.elapsed();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Some mutants stay valid (edits in comments): the generator exercises success paths too.
    assert!(parsed_ok > 0, "no mutant parsed; the generator is broken");
    // (a guard against parsing gone quadratic, not a benchmark: ~60 s on 2 idle cores, and a
    // machine shared with other work took 127 s, so the bound is wide)
    assert!(
        elapsed < Duration::from_secs(300),
        "{cases} inputs took {elapsed:?}: parsing got slow"
    );
    // no single input may hang (a runaway sweep, an `extends` loop)
    assert!(slowest < Duration::from_secs(10), "one input took {slowest:?}");
    eprintln!("{cases} inputs in {elapsed:?} (slowest {slowest:?}), {parsed_ok} valid");
}

/// Inputs shaped to exhaust: deep nesting, a runaway sweep list, thousands of unknown nodes,
/// a huge comment, a long token. Each is refused or parsed quickly, never a panic or a hang.
#[test]
fn hostile_shapes_are_bounded() {
    let runaway: String = (0..60_000).map(|i| format!("        - {i}\n")).collect();
    let unknown: String = (0..20_000).map(|i| format!("  bogus{i} 1\n")).collect();
    let inputs = [
        ("deep nesting", format!("experiment \"x\" {{{}{}}}", " a {".repeat(20_000), " }".repeat(20_000))),
        ("runaway sweep", format!("experiment \"x\" {{\n  epochs 1\n}}\nsweep \"grid\" {{\n    vary \"epochs\" {{\n{runaway}    }}\n}}\n")),
        ("unknown nodes", format!("experiment \"x\" {{\n{unknown}}}\n")),
        ("huge comment", format!("// {}\nexperiment \"x\" {{ }}\n", "x".repeat(50_000_000))),
        ("long token", format!("experiment \"{}\" {{ }}\n", "y".repeat(900_000))),
    ];
    let mut slowest = (Duration::ZERO, "");
    for (what, src) in &inputs {
        let t = Instant::now();
        let r = check(src, true);
        let took = t.elapsed();
        assert!(r.is_ok(), "{what}: {}", r.unwrap_err().lines().next().unwrap_or(""));
        if let Err(d) = ijepa_dsl::parse_study("fuzz.kdl", src) {
            assert!(d.len() <= ijepa_dsl::diagnostics::MAX_ERRORS + 1, "{what}: {} errors", d.len());
        }
        assert!(took < Duration::from_secs(10), "{what} took {took:?}");
        slowest = slowest.max((took, what));
    }
    eprintln!("hostile shapes: slowest {} in {:?}", slowest.1, slowest.0);
}

#[test]
fn quickstart_itself_is_valid() {
    assert_eq!(check(QUICKSTART, true), Ok(true));
    assert!(ijepa_dsl::parse_str("quickstart.kdl", QUICKSTART).is_ok());
}

#[test]
fn the_study_seed_is_valid() {
    let study = ijepa_dsl::parse_study("fuzz.kdl", STUDY).map_err(|d| d.render_plain());
    assert_eq!(study.map(|s| s.points.len()), Ok(8));
    assert_eq!(check(STUDY, true), Ok(true));
}
