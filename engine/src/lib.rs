//! ijepa-engine: the tch (libtorch) runtime of ijepa.
//!
//! The ViT encoder shared by the recipes, data (datasets, transforms, threaded loader), the
//! optimiser and schedules, checkpoints, evaluations, and the pretraining loop that a recipe
//! plugs into. Recipe-specific code (I-JEPA's predictor and multi-block sampler, MAE's
//! decoder, DINO's head and loss) lives in the `ijepa-recipes` crate.

/// `println!` that never panics: a closed stdout (`ijepa run ... | head`) must not stop
/// training, so write errors do not stop the program (the run folder has everything printed);
/// one other than a closed pipe (a full disk, `ulimit -f`) is kept for [`stdout::failed`],
/// which the binary reports at its end. Exported for the binary
/// (`use ijepa_engine::{println, eprintln}`).
#[macro_export]
macro_rules! println {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        $crate::stdout::note(writeln!(std::io::stdout(), $($t)*));
    }};
}

/// `print!` that never panics on a closed stdout (see `println!`).
#[macro_export]
macro_rules! print {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        $crate::stdout::note(write!(std::io::stdout(), $($t)*));
    }};
}

/// What became of the writes to standard output (see `println!`): the schema crate's, which
/// `ijepa-report` (no libtorch) keeps its own writes' fate with too.
pub use ijepa_schema::stdout;

/// `eprintln!` that never panics on a closed stderr (see `println!`).
#[macro_export]
macro_rules! eprintln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod autocast;
pub mod checkpoint;
pub mod data;
pub mod device;
pub mod dist;
pub mod error;
pub mod estimate;
pub mod eval;
mod ffi;
pub mod guard;
pub mod interrupt;
pub mod memory;
pub mod model;
pub mod monitor;
pub mod optim;
pub mod plan;
pub mod precision;
pub mod products;
pub mod profile;
pub mod recipe;
pub mod rng;
pub mod run_dir;
pub mod schedule;
pub mod stages;
#[cfg(test)]
mod testdir;
pub mod train;

pub use error::{Error, Result};
