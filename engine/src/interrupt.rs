//! Clean interrupts: the first SIGINT (Ctrl-C), SIGTERM or SIGHUP (a closed terminal or ssh
//! session) asks the run to stop at the next safe point — a step boundary, where pretraining
//! saves a checkpoint, or between batches of an evaluation — marks its manifest `interrupted`
//! and says how to resume; a second signal stops the process at once (the default action of
//! that signal), after one line saying so.
//! Nothing happens until [`install`] is called (the binary's `run`), so libraries and tests
//! keep the default behaviour.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// The first signal received (0: none).
static REQUESTED: AtomicI32 = AtomicI32::new(0);

/// Set while the process waits where it has nothing to save and no safe point will come soon
/// ([`at_once`]): a first signal then stops it at once.
static AT_ONCE: AtomicBool = AtomicBool::new(false);

const AT_ONCE_NOTE: &[u8] = b"\nstopping now: this rank is still waiting for the others to join (nothing to save yet)\n";

const NOTE: &[u8] = b"\nstopping at the next safe point (pretraining: the next step, where a checkpoint is saved; an evaluation: its next batch); send the signal again to stop at once\n";

const NOW: &[u8] = b"\nsecond signal: stopping now, without a checkpoint (the next run resumes from the last one saved)\n";

extern "C" fn on_signal(sig: libc::c_int) {
    // only async-signal-safe calls here: atomic loads and swaps, write, signal, raise
    if AT_ONCE.load(Ordering::SeqCst) {
        unsafe {
            libc::write(2, AT_ONCE_NOTE.as_ptr().cast(), AT_ONCE_NOTE.len());
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    if REQUESTED.swap(sig, Ordering::SeqCst) != 0 {
        unsafe {
            libc::write(2, NOW.as_ptr().cast(), NOW.len());
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        return;
    }
    unsafe {
        libc::write(2, NOTE.as_ptr().cast(), NOTE.len());
    }
}

/// Routes SIGINT, SIGTERM and SIGHUP to the stop request (idempotent), except a signal the
/// process was started with ignored, which stays ignored (`nohup ijepa run ...` outlives the
/// session that started it; a script's background job ignores SIGINT); and ignores SIGXFSZ,
/// so that a write past a file-size limit (`ulimit -f`) fails with an error naming the file,
/// as a full disk does, instead of killing the process with nothing said.
pub fn install() {
    route(on_signal);
    ignore_file_size_signal();
}

/// Ignores SIGXFSZ, so that a write past the file-size limit (`ulimit -f`) is an error naming
/// the file (EFBIG), and the writer removes its temporary file, instead of the signal killing
/// the process without a word and leaving it. Every command sets this.
pub fn ignore_file_size_signal() {
    // SAFETY: ignoring a signal is always sound
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Routes SIGINT, SIGTERM and SIGHUP to `handler` (this module's, or `ijepa launch`'s, which
/// passes them on to its ranks), except one the process was started with ignored.
/// `handler` must perform async-signal-safe operations only.
pub fn route(handler: extern "C" fn(libc::c_int)) {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        if ignored(sig) {
            continue;
        }
        // SAFETY: the handler is async-signal-safe (the caller's contract)
        unsafe {
            libc::signal(sig, handler as *const () as libc::sighandler_t);
        }
    }
}

/// Whether `sig` is ignored in this process now (as `nohup` leaves SIGHUP).
fn ignored(sig: libc::c_int) -> bool {
    // SAFETY: a null new action only reads the current one into `old`
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

/// What stopped a rank of a distributed run that received no signal itself: the others
/// agreed to stop because one of them did (its exit status is the launcher's
/// `STOPPED_WITH_RANK`, so that the rank signalled is the one named).
pub const TO_ANOTHER_RANK: &str = "a signal to another rank";

/// The signal that asked the run to stop, if any (e.g. `"SIGINT"`).
pub fn requested() -> Option<&'static str> {
    match REQUESTED.load(Ordering::SeqCst) {
        0 => None,
        s if s == libc::SIGINT => Some("SIGINT"),
        s if s == libc::SIGTERM => Some("SIGTERM"),
        s if s == libc::SIGHUP => Some("SIGHUP"),
        _ => Some("a signal"),
    }
}

/// Between units of work that hold no training state (a batch of feature extraction, an epoch
/// of a probe, right after a model is built): an [`crate::Error::Interrupted`] when a stop was
/// requested, so a signal during a long evaluation stops it within a batch.
///
/// # Errors
/// [`crate::Error::Interrupted`] (without a step) once a stop was requested.
pub fn check() -> crate::Result<()> {
    match requested() {
        Some(signal) => Err(crate::Error::Interrupted { signal: signal.to_string(), step: None, dir: std::path::PathBuf::new(), finished: false }),
        None => Ok(()),
    }
}

/// Runs `f`, a wait that holds nothing to save and cannot stop at a safe point of its own (a
/// rank blocked in the rendezvous of its process group, up to the group's timeout), such that
/// a first signal stops the process at once, as a second one would elsewhere; the default
/// behaviour returns after it. A stop requested before is an [`crate::Error::Interrupted`]
/// without running `f`.
///
/// # Errors
/// [`crate::Error::Interrupted`] when a stop was requested before.
pub fn at_once<T>(f: impl FnOnce() -> T) -> crate::Result<T> {
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            AT_ONCE.store(false, Ordering::SeqCst);
        }
    }
    AT_ONCE.store(true, Ordering::SeqCst);
    let _reset = Reset;
    // (a signal between the check and the store above would have been a request: seen here)
    check()?;
    Ok(f())
}

/// Asks for a stop as a signal would (tests, and callers that stop for other reasons).
pub fn request(sig: i32) {
    REQUESTED.store(sig, Ordering::SeqCst);
}
