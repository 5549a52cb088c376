//! The Rust side of the shims' error convention (`csrc/ffi.h`): an extern "C" call returns NULL
//! on success, or a malloc'ed, NUL-terminated message that the caller owns and frees with
//! `ijepa_shim_free` (shim.cpp; both shims are always built and linked).

use std::ffi::{c_char, CStr};

extern "C" {
    fn ijepa_shim_free(message: *mut c_char);
}

/// Takes ownership of what a shim call returned: None for NULL (success), else the message,
/// freed here exactly once.
pub(crate) fn take_message(err: *mut c_char) -> Option<String> {
    if err.is_null() {
        return None;
    }
    // SAFETY: a non-null return of a shim is a malloc'ed NUL-terminated string that we own.
    let msg = unsafe { CStr::from_ptr(err) }.to_string_lossy().into_owned();
    // SAFETY: freed exactly once, with the shims' free (malloc's counterpart).
    unsafe { ijepa_shim_free(err) };
    Some(msg)
}
