//! libtorch failures as errors, never a panic, an abort or a hang.
//!
//! Model construction and checkpoint I/O use tch's fallible (`f_*`) operations, so a tensor
//! that cannot be allocated there is a [`tch::TchError`] like any other. The forward and
//! backward passes are written with tch's infallible operators (`a + b`, `x.matmul(..)`),
//! which panic on a libtorch error; rewriting every expression of every model in `f_*` form
//! would make the models unreadable and still miss the next one written. Instead [`torch`]
//! runs a piece of work (a training step, a monitor pass, an evaluation) and turns a libtorch
//! panic inside it into an [`Error`]: allocation failures become [`Error::OutOfMemory`]
//! naming what was running, other libtorch errors [`Error::Torch`]. Such a panic prints
//! nothing (the default hook would print a backtrace, whose symbolisation allocates and can
//! dead-lock on an exhausted heap); any other panic keeps the default report.
//!
//! Unwinding out of a step leaves the models in an undefined state: callers return the error
//! and never save it (the last checkpoint stays the last good one).

use crate::error::Error;
use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many [`torch`] calls are active on this thread.
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

static HOOK: Once = Once::new();

/// The marker tch's `unwrap` leaves in a panic message (`Torch("...")`).
const TCH_MARKER: &str = "Torch(\"";

fn install_hook() {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let guarded = DEPTH.with(Cell::get) > 0;
            if guarded && info.payload_as_str().is_some_and(|m| m.contains(TCH_MARKER)) {
                return; // reported as an error by `torch`
            }
            previous(info);
        }));
    });
}

/// Whether a libtorch message says an allocation failed (CPU, CUDA, or C++'s `bad_alloc`).
pub fn is_allocation_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("can't allocate memory") || m.contains("out of memory") || m.contains("bad_alloc") || m.contains("cannot allocate memory")
}

/// The first line of a libtorch message (its C++ backtrace follows on the next lines).
fn first_line(message: &str) -> &str {
    message.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or(message)
}

/// Names an allocation failure inside `err` (from a fallible op or a caught panic) as
/// [`Error::OutOfMemory`] during `during`; other errors pass unchanged.
pub fn classify(during: &str, err: Error) -> Error {
    match err {
        Error::Torch(tch::TchError::Torch(m)) if is_allocation_failure(&m) => {
            Error::OutOfMemory { during: during.to_string(), detail: first_line(&m).to_string() }
        }
        other => other,
    }
}

/// Runs `f`; a libtorch error inside it, whether returned or raised as a panic by one of tch's
/// infallible operators, comes back as an [`Error`] (allocation failures as
/// [`Error::OutOfMemory`] naming `during`, e.g. "pretraining step 12"). Panics that are not
/// libtorch's are resumed unchanged: they are bugs and keep their report.
///
/// # Errors
/// `f`'s, classified by [`classify`].
pub fn torch<T, E>(during: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E>
where
    E: From<Error> + Into<GuardError<E>>,
{
    install_hook();
    DEPTH.with(|d| d.set(d.get() + 1));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    DEPTH.with(|d| d.set(d.get() - 1));
    match result {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(match e.into() {
            GuardError::Engine(e) => E::from(classify(during, e)),
            GuardError::Other(e) => e,
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or_default();
            match message.find(TCH_MARKER) {
                Some(at) => {
                    let inner = &message[at + TCH_MARKER.len()..];
                    let inner = inner.strip_suffix("\")").unwrap_or(inner).replace("\\n", "\n").replace("\\\"", "\"");
                    Err(E::from(classify(during, Error::Torch(tch::TchError::Torch(inner)))))
                }
                None => panic::resume_unwind(payload),
            }
        }
    }
}

/// An error returned inside [`torch`]: the engine's (classified) or the caller's own.
#[derive(Debug)]
pub enum GuardError<E> {
    /// An engine error: allocation failures are renamed.
    Engine(Error),
    /// Any other error type, passed through.
    Other(E),
}

impl From<Error> for GuardError<Error> {
    fn from(e: Error) -> Self {
        GuardError::Engine(e)
    }
}

impl From<Box<dyn std::error::Error>> for GuardError<Box<dyn std::error::Error>> {
    fn from(e: Box<dyn std::error::Error>) -> Self {
        match e.downcast::<Error>() {
            Ok(e) => GuardError::Engine(*e),
            Err(e) => GuardError::Other(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind, Tensor};

    /// A CPU allocation libtorch refuses (2^40 floats, 4 TiB), made through an infallible operator.
    fn huge() -> Tensor {
        Tensor::zeros([1i64 << 40], (Kind::Float, Device::Cpu))
    }

    #[test]
    fn an_allocation_panic_becomes_out_of_memory_naming_the_work() {
        let r: crate::Result<()> = torch("the test step", || {
            let _ = huge();
            Ok(())
        });
        match r {
            Err(Error::OutOfMemory { during, detail }) => {
                assert_eq!(during, "the test step");
                assert!(is_allocation_failure(&detail) && !detail.contains('\n'), "{detail}");
            }
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
    }

    #[test]
    fn a_fallible_allocation_error_is_classified_too() {
        let r: crate::Result<Tensor> =
            torch("building", || Ok(Tensor::f_zeros([1i64 << 40], (Kind::Float, Device::Cpu))?));
        assert!(matches!(r, Err(Error::OutOfMemory { .. })), "{r:?}");
    }

    #[test]
    fn building_a_model_that_cannot_be_allocated_returns_an_error() {
        // qkv alone would be [3 * 2^20, 2^20] floats (12 TiB): the constructors' fallible ops
        // return the failure instead of panicking
        let cfg = crate::model::vit::encoder::VitConfig {
            image_size: 4,
            patch_size: 4,
            embed_dim: 1 << 20,
            depth: 1,
            num_heads: 1,
            mlp_ratio: 4.0,
            eps: 1e-6,
            rescale_init: false,
            cls_token: false,
            learned_pos_embed: false,
        };
        let store = crate::model::ParamStore::new(Device::Cpu);
        let r = crate::model::vit::encoder::VisionTransformer::new(&store.root(), &cfg);
        let e = r.expect_err("12 TiB cannot be allocated");
        match classify("building the models", e) {
            Error::OutOfMemory { during, .. } => assert_eq!(during, "building the models"),
            other => panic!("expected OutOfMemory, got {other:?}"),
        }
    }

    #[test]
    fn other_libtorch_panics_are_torch_errors_and_results_pass() {
        let r: crate::Result<Tensor> = torch("matmul", || {
            let a = Tensor::zeros([2, 3], (Kind::Float, Device::Cpu));
            Ok(a.matmul(&a))
        });
        match r {
            Err(Error::Torch(tch::TchError::Torch(m))) => assert!(m.contains("shapes cannot be multiplied"), "{m}"),
            other => panic!("expected a Torch error, got {other:?}"),
        }
        let ok: crate::Result<i32> = torch("nothing", || Ok(7));
        assert_eq!(ok.unwrap(), 7);
        let boxed: Result<i32, Box<dyn std::error::Error>> = torch("boxed", || Err("plain".into()));
        assert_eq!(boxed.unwrap_err().to_string(), "plain");
    }

    #[test]
    fn a_bug_panic_is_not_swallowed() {
        let r = panic::catch_unwind(|| {
            let _: crate::Result<()> = torch("bug", || panic!("an ordinary bug"));
        });
        let payload = r.expect_err("the panic must propagate");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"an ordinary bug"));
    }
}
