//! Scratch folders for unit tests: one per test process and name, emptied on creation, removed
//! when the test passes and kept for a look when it fails.

use std::path::{Path, PathBuf};

/// A scratch folder; dereferences to its path.
pub(crate) struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A fresh, empty `ijepa-{prefix}-{pid}-{name}` folder in the temporary folder.
pub(crate) fn scratch(prefix: &str, name: &str) -> Scratch {
    let d = std::env::temp_dir().join(format!("ijepa-{prefix}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    Scratch(d)
}
