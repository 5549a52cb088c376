//! Helpers shared by the end-to-end tests: run the `ijepa` binary, read its output, make a
//! scratch folder.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the binary with `args` in the repository root.
pub fn ijepa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ijepa")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run ijepa")
}

/// stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A fresh, empty scratch folder named after the test binary's process and `name`.
pub fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ijepa-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
