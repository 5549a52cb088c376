//! Helpers shared by the end-to-end tests: run the `ijepa` binary, read its output, make a
//! scratch folder and an image folder.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs the binary with `args` in the repository root.
pub fn ijepa(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ijepa")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("run ijepa")
}

/// Reads a spawned child's stdout on a thread: the receiver gets a message at each line `when`
/// accepts (the moment a test waits for); the thread returns every line read.
pub fn watch_stdout(
    child: &mut std::process::Child,
    when: impl Fn(&str) -> bool + Send + 'static,
) -> (std::sync::mpsc::Receiver<()>, std::thread::JoinHandle<String>) {
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("a piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut seen = String::new();
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if when(&line) {
                let _ = tx.send(());
            }
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    (rx, reader)
}

/// The pretraining folder (`pretrain-<hash>`) of an experiment's folder `exp_dir`, if it has
/// one (the folder also holds evaluations and `planned-*.json`, the record of a file's plan).
pub fn pretrain_in(exp_dir: &std::path::Path) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(exp_dir).ok()?.flatten().map(|e| e.path()).filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("pretrain-"))).collect();
    dirs.sort();
    dirs.into_iter().next()
}

/// stdout and stderr together.
pub fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A fresh, empty scratch folder named after the test binary's process and `name`. The folders
/// of earlier test processes that have ended are removed first (on Linux, where `/proc` says
/// which are alive), so runs do not pile up in the temporary folder while the last run's stay
/// for a look after a failure.
pub fn scratch(name: &str) -> PathBuf {
    static SWEPT: std::sync::Once = std::sync::Once::new();
    SWEPT.call_once(remove_ended_processes_folders);
    let d = std::env::temp_dir().join(format!("ijepa-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Removes `ijepa-test-PID-*` folders whose process is gone (only where `/proc` exists).
fn remove_ended_processes_folders() {
    if !std::path::Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix("ijepa-test-").and_then(|r| r.split('-').next()).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// `classes` folders of `per_class` RGB PNGs (varied sizes, class-dependent colours).
pub fn make_folder(root: &std::path::Path, classes: usize, per_class: usize) {
    for c in 0..classes {
        let dir = root.join(format!("class_{c}"));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let (w, h) = (40 + (i * 7) % 25, 36 + (i * 5) % 30);
            let mut px = Vec::with_capacity(w * h * 3);
            for y in 0..h {
                for x in 0..w {
                    px.extend_from_slice(&[(x * 255 / w) as u8, (y * 255 / h) as u8, (c * 60 + i) as u8]);
                }
            }
            let f = std::fs::File::create(dir.join(format!("img_{i}.png"))).unwrap();
            let mut e = png::Encoder::new(std::io::BufWriter::new(f), w as u32, h as u32);
            e.set_color(png::ColorType::Rgb);
            e.set_depth(png::BitDepth::Eight);
            e.write_header().unwrap().write_image_data(&px).unwrap();
        }
    }
}
