//! Where a command may write an output file it is given (`--out`, `--png`, `--trace`, the
//! default output of `import-checkpoint`): never over one of the command's inputs, a
//! pretraining's run folder or the files training keeps there, nor over an existing file of
//! another kind (an experiment, a document, a training checkpoint), which would be lost.
//! [`check`] says why a path is refused; the binary prints it.

use std::path::{Component, Path, PathBuf};

/// How every script `ijepa slurm` writes begins its comment line (`# Written by `ijepa slurm
/// FILE` — ...`): `--out` replaces only a file that holds it.
pub const SLURM_MARK: &str = "# Written by `ijepa slurm";

/// What an output file holds, to tell a file of that kind (replaced as asked) from another
/// file that `--out` names by mistake (an experiment, a document: refused, not lost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    /// A safetensors file (an exported encoder, an imported checkpoint).
    Safetensors,
    /// A PNG image.
    Png,
    /// A batch script `ijepa slurm` wrote.
    Script,
    /// A JSON document (a profiler's Chrome trace).
    Json,
}

/// Why an output path is refused; each names the flag (or "the default output") and the path
/// as given.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The output is one of the command's input files.
    #[error("{flag} {} is the input file {}: writing it would replace the input; choose another path", .out.display(), .input.display())]
    IsInput {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
        /// The input it is, as given.
        input: PathBuf,
    },
    /// The output is a pretraining's run folder, its checkpoints folder or a file training
    /// writes there.
    #[error("{flag} {}: {} is a pretraining's run folder: writing there would replace {what}; choose another path", .out.display(), .run.display())]
    InRun {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
        /// The run folder.
        run: PathBuf,
        /// What of the run would be replaced ("its checkpoint latest.safetensors", ...).
        what: String,
    },
    /// The output's folder holds a pretraining's training checkpoint (a run's checkpoints
    /// folder reached under another name) and the output is named as a checkpoint.
    #[error(
        "{flag} {}: {} holds a pretraining's training checkpoint ({found}), as a run's checkpoints folder does (one reached through a symbolic link has another name): {name} there would be what a resume reads; choose another path",
        .out.display(),
        .folder.display()
    )]
    BesideCheckpoint {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
        /// Its folder, resolved.
        folder: PathBuf,
        /// The training checkpoint found there (a file name).
        found: String,
        /// The output's file name.
        name: String,
    },
    /// The output is a training checkpoint (models, optimiser state, position).
    #[error("{flag} {} is a training checkpoint (models, optimiser state, position): writing would replace it; choose another path", .out.display())]
    TrainingCheckpoint {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
    },
    /// The output is the weights of a Hugging Face export (its config.json beside them).
    #[error("{flag} {} is the weights of a Hugging Face export (config.json beside it): official names there would not load as its model; choose another path", .out.display())]
    HfWeights {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
    },
    /// The output exists and holds another kind of file.
    #[error("{flag} {} exists and is not {what}: writing would replace it; choose another path, or remove it first", .out.display())]
    OtherKind {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
        /// The kind the command writes ("a PNG image", ...).
        what: &'static str,
    },
    /// The output is a named pipe or a socket (the write would wait for a reader, forever: the
    /// check that the path can be written opens it first, and a reader takes that opening's
    /// end of file as the whole output), or a disk (a block device, overwritten). A link to a
    /// pipe or a terminal, `/dev/stdout`, and `/dev/null` are taken.
    #[error("{flag} {} exists and is {what}; choose a file's path", .out.display())]
    NotAFile {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
        /// What it is, and what writing there would do.
        what: &'static str,
    },
    /// A path libtorch cannot write a Chrome trace to without replacing something.
    #[error("{flag} {}: {why}; choose another path", .out.display())]
    Trace {
        /// The flag that named the output.
        flag: String,
        /// The output, as given.
        out: PathBuf,
        /// Why.
        why: String,
    },
}

/// Refuses an output path that is one of the command's inputs, in a pretraining's run folder
/// as training writes it, or an existing file that is not of `kind` (`None`: any existing file
/// is the caller's to judge). `flag` names the output in the error.
///
/// # Errors
/// Why the path is refused ([`OutputError`]).
pub fn check(out: Option<&Path>, flag: &str, inputs: &[&Path], kind: Option<OutKind>) -> Result<(), OutputError> {
    not_an_input(out, flag, inputs)?;
    not_in_a_run(out, flag)?;
    // (`masks --png` and `import-yaml --out` to a named pipe waited forever)
    if let Some(out) = out {
        use std::os::unix::fs::FileTypeExt;
        // (a pipe named in the file system, or a link to one; not a process's own pipe reached
        // through /dev/stdout or /dev/fd/N, whose link ends in no path: `pipe:[N]`)
        let kind = std::fs::metadata(out).map(|m| m.file_type()).ok();
        let named = || std::fs::canonicalize(out).is_ok_and(|p| !p.starts_with("/proc"));
        let what = if kind.is_some_and(|t| t.is_fifo() || t.is_socket()) && named() {
            Some("a named pipe or a socket: writing there would wait for a reader, or never end")
        } else if kind.is_some_and(|t| t.is_block_device()) {
            Some("a disk (a block device): writing would overwrite it")
        } else {
            None
        };
        if let Some(what) = what {
            return Err(OutputError::NotAFile { flag: flag.to_string(), out: out.to_path_buf(), what });
        }
    }
    if let (Some(out), Some(OutKind::Json)) = (out, kind) {
        return trace_path(out, flag);
    }
    let (Some(out), Some(kind)) = (out.filter(|o| o.is_file()), kind) else { return Ok(()) };
    let mut head = [0u8; 9];
    let n = std::fs::File::open(out).and_then(|mut f| std::io::Read::read(&mut f, &mut head)).unwrap_or(0);
    let head = &head[..n];
    let (ok, what) = match kind {
        OutKind::Safetensors => (head.len() == 9 && head[8] == b'{', "a safetensors file"),
        OutKind::Png => (head.starts_with(b"\x89PNG"), "a PNG image"),
        // (a script of the user's own is not replaced: only one this command wrote)
        OutKind::Script => (
            head.starts_with(b"#!") && std::fs::read(out).is_ok_and(|t| t.windows(SLURM_MARK.len()).take(4096).any(|w| w == SLURM_MARK.as_bytes())),
            "a script `ijepa slurm` wrote (its `# Written by `ijepa slurm` line)",
        ),
        OutKind::Json => unreachable!("checked by trace_path"),
    };
    let (flag, path) = (flag.to_string(), out.to_path_buf());
    if ok && kind == OutKind::Safetensors {
        // a safetensors file this command does not write: a training checkpoint (its AdamW
        // state and position, lost to an encoder's weights) or an HF export's weights (their
        // config.json would describe weights of other names)
        if ijepa_engine::checkpoint::state::is_training_checkpoint(out) {
            return Err(OutputError::TrainingCheckpoint { flag, out: path });
        }
        if out.file_name().is_some_and(|n| n == "model.safetensors") && out.with_file_name("config.json").is_file() {
            return Err(OutputError::HfWeights { flag, out: path });
        }
    }
    if ok || n == 0 {
        return Ok(());
    }
    Err(OutputError::OtherKind { flag, out: path, what })
}

/// Whether a file can be written at `out`, tried before the work whose result it holds (its
/// folders are made, as its writer makes them; a new file is made and removed again, an
/// existing one opened for writing and left as it is): `ijepa masks --png` to a folder that
/// cannot hold it failed after minutes of sampling, and its statistics were lost with it.
///
/// # Errors
/// The OS's refusal, with what it means ([`ijepa_engine::Error::io`]).
pub fn try_writing(out: &Path) -> ijepa_engine::Result<()> {
    use ijepa_engine::Error;
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    }
    match std::fs::OpenOptions::new().write(true).create_new(true).open(out) {
        Ok(_) => std::fs::remove_file(out).map_err(|e| Error::io(out, e)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::OpenOptions::new().write(true).open(out).map(|_| ()).map_err(|e| Error::io(out, e)),
        Err(e) => Err(Error::io(out, e)),
    }
}

/// Where libtorch may write a profiler's Chrome trace: it writes `PATH.tmp` and renames it over
/// `PATH`, replacing whatever is there (a device file, an empty folder, any JSON file became the
/// trace). Taken: a new path in an existing folder, or a file that is already a Chrome trace
/// (`"traceEvents"`), with no `PATH.tmp` beside it; checked before anything is timed.
fn trace_path(out: &Path, flag: &str) -> Result<(), OutputError> {
    let refuse = |why: String| Err(OutputError::Trace { flag: flag.to_string(), out: out.to_path_buf(), why });
    let folder = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return refuse(format!("its folder {} does not exist", folder.display()));
    }
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".tmp");
    if Path::new(&tmp).symlink_metadata().is_ok() {
        return refuse(format!("libtorch writes the trace to {} first, which exists and would be replaced", Path::new(&tmp).display()));
    }
    match out.symlink_metadata() {
        Err(_) => Ok(()),
        Ok(m) if !m.is_file() => refuse("it exists and is not a regular file (a folder, a link, a device): the trace would replace it".into()),
        Ok(_) => {
            let text = std::fs::read(out).unwrap_or_default();
            let trace = text.is_empty() || text.windows(13).any(|w| w == b"\"traceEvents\"");
            if trace {
                Ok(())
            } else {
                refuse("it exists and is not a Chrome trace (no \"traceEvents\"): writing would replace it".into())
            }
        }
    }
}

/// Refuses an output path that is a pretraining's run folder (`export --format hf --out RUN`
/// wrote its config.json over the run's), its checkpoints folder (an HF export wrote beside the
/// checkpoints), or one of the files training writes there (`--out
/// RUN/checkpoints/latest.safetensors` replaced the checkpoint a resume reads). Other files
/// inside a run folder are the user's. A symbolic link to a file named as the output is
/// replaced, not followed, so its own folder is the one checked; one to a folder is that folder
/// (an HF export writes into it).
fn not_in_a_run(out: Option<&Path>, flag: &str) -> Result<(), OutputError> {
    let Some(out) = out else { return Ok(()) };
    // `RUN/nosuch/..`: the writers create `nosuch`, and `..` out of it is the run folder
    let created;
    let out = if out.symlink_metadata().is_err() && out.components().any(|c| c == Component::ParentDir) {
        created = ijepa_schema::as_created(out);
        created.as_path()
    } else {
        out
    };
    let is_run = |p: &Path| p.join(ijepa_schema::MANIFEST).is_file() && p.join(ijepa_schema::CHECKPOINTS).is_dir();
    let refuse = |run: &Path, what: String| Err(OutputError::InRun { flag: flag.to_string(), out: out.to_path_buf(), run: run.to_path_buf(), what });
    // (a folder named through a symbolic link is the folder it leads to: an HF export writes
    // into it)
    if out.is_dir() {
        let dir = out.canonicalize().unwrap_or_else(|_| out.to_path_buf());
        if is_run(&dir) {
            return refuse(&dir, "its files (config.json, ...)".into());
        }
        // its checkpoints folder: training lists and prunes what lies there
        return match dir.parent().filter(|run| dir.file_name().is_some_and(|n| n == ijepa_schema::CHECKPOINTS) && is_run(run)) {
            Some(run) => refuse(run, "files in its checkpoints folder".into()),
            None => Ok(()),
        };
    }
    let (Some(name), Some(parent)) = (out.file_name().and_then(|n| n.to_str()), out.parent()) else { return Ok(()) };
    let Ok(parent) = (if parent.as_os_str().is_empty() { Path::new(".") } else { parent }).canonicalize() else { return Ok(()) };
    let run_file = [
        ijepa_schema::MANIFEST,
        ijepa_schema::CONFIG_JSON,
        ijepa_schema::CONFIG_KDL,
        ijepa_schema::METRICS,
        ijepa_schema::MONITOR,
        ijepa_schema::LOCK,
        ijepa_engine::train::SKIPPED_FILE,
    ];
    if is_run(&parent) && run_file.contains(&name) {
        return refuse(&parent, format!("its {name}"));
    }
    let checkpoint = name == ijepa_schema::FINAL || name == ijepa_schema::LATEST || ijepa_schema::is_kept_checkpoint(name);
    if !checkpoint {
        return Ok(());
    }
    let in_run = |dir: &Path| dir.parent().filter(|run| dir.file_name().is_some_and(|n| n == ijepa_schema::CHECKPOINTS) && is_run(run)).map(Path::to_path_buf);
    // the folder as written too: a checkpoints folder that is a symbolic link (to scratch
    // space) resolves to a folder of another name
    let given = out.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf).unwrap_or_else(|| ".".into());
    // (the run as given, made absolute without resolving the link, to be named)
    let absolute = |p: PathBuf| if p.is_absolute() { p } else { std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p) };
    if let Some(run) = in_run(&parent).or_else(|| in_run(&absolute(given))) {
        return refuse(&run, format!("its checkpoint {name}"));
    }
    // and named through the link's target: a folder that holds a pretraining's checkpoint is
    // one (regular files only: a pipe would block the read)
    let holds = std::fs::read_dir(&parent).into_iter().flatten().flatten().map(|e| e.path()).find(|p| {
        p.extension().is_some_and(|e| e == "safetensors")
            && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file())
            && ijepa_engine::checkpoint::state::is_training_checkpoint(p)
    });
    match holds {
        Some(found) => Err(OutputError::BesideCheckpoint {
            flag: flag.to_string(),
            out: out.to_path_buf(),
            folder: parent,
            found: found.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            name: name.to_string(),
        }),
        None => Ok(()),
    }
}

/// Refuses an output path that is one of the command's input files (`--out FILE.yaml` of
/// `import-yaml FILE.yaml` would replace the input with the output).
fn not_an_input(out: Option<&Path>, flag: &str, inputs: &[&Path]) -> Result<(), OutputError> {
    let Some(out) = out else { return Ok(()) };
    // the output need not exist yet: its folder, resolved, and its name
    let resolved = |p: &Path| {
        p.canonicalize().ok().or_else(|| {
            let parent = p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            Some(parent.canonicalize().ok()?.join(p.file_name()?))
        })
    };
    let Some(target) = resolved(out) else { return Ok(()) };
    match inputs.iter().find(|i| resolved(i).as_ref() == Some(&target)) {
        Some(input) => Err(OutputError::IsInput { flag: flag.to_string(), out: out.to_path_buf(), input: input.to_path_buf() }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ijepa-outputs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn an_input_is_refused_under_another_spelling() {
        let d = folder("input");
        let input = d.join("exp.yaml");
        std::fs::write(&input, "x: 1\n").unwrap();
        let spelled = d.join(".").join("exp.yaml");
        let e = check(Some(&spelled), "--out", &[&input], None).unwrap_err();
        assert!(matches!(e, OutputError::IsInput { .. }), "{e}");
        assert_eq!(e.to_string(), format!("--out {} is the input file {}: writing it would replace the input; choose another path", spelled.display(), input.display()));
        // another name in the same folder is taken
        assert!(check(Some(&d.join("exp.kdl")), "--out", &[&input], None).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_file_of_another_kind_is_refused_and_one_of_the_kind_or_empty_is_taken() {
        let d = folder("kind");
        let (doc, png, empty) = (d.join("notes.png"), d.join("masks.png"), d.join("empty.png"));
        std::fs::write(&doc, "my notes").unwrap();
        std::fs::write(&png, b"\x89PNG\r\n\x1a\nrest").unwrap();
        std::fs::write(&empty, b"").unwrap();
        let e = check(Some(&doc), "--png", &[], Some(OutKind::Png)).unwrap_err();
        assert!(matches!(e, OutputError::OtherKind { what: "a PNG image", .. }), "{e}");
        assert!(e.to_string().starts_with(&format!("--png {} exists and is not a PNG image", doc.display())), "{e}");
        assert!(check(Some(&png), "--png", &[], Some(OutKind::Png)).is_ok());
        assert!(check(Some(&empty), "--png", &[], Some(OutKind::Png)).is_ok());
        // without a kind, an existing file is the caller's to judge
        assert!(check(Some(&doc), "--out", &[], None).is_ok());
        // a script is replaced only when `ijepa slurm` wrote it
        let (mine, theirs) = (d.join("a.sbatch"), d.join("b.sbatch"));
        std::fs::write(&mine, format!("#!/bin/bash\n{SLURM_MARK} run x.kdl`\n")).unwrap();
        std::fs::write(&theirs, "#!/bin/bash\necho mine\n").unwrap();
        assert!(check(Some(&mine), "--out", &[], Some(OutKind::Script)).is_ok());
        assert!(matches!(check(Some(&theirs), "--out", &[], Some(OutKind::Script)), Err(OutputError::OtherKind { .. })));
        // a named pipe, of any kind or none (`masks --png` and `import-yaml --out` to a pipe
        // waited forever); not /dev/stdout or /dev/null (`--out /dev/stdout | head`)
        let fifo = d.join("pipe.png");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let link = d.join("link.png");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for (path, kind) in [(fifo.as_path(), Some(OutKind::Png)), (fifo.as_path(), None), (link.as_path(), Some(OutKind::Png))] {
            let e = check(Some(path), "--out", &[], kind).unwrap_err();
            assert!(matches!(e, OutputError::NotAFile { .. }) && e.to_string().contains("exists and is a named pipe or a socket"), "{e}");
        }
        assert!(check(Some(Path::new("/dev/null")), "--out", &[], None).is_ok());
        assert!(check(Some(Path::new("/dev/stdout")), "--out", &[], None).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_trace_goes_only_where_nothing_but_a_trace_would_be_replaced() {
        let d = folder("trace");
        let (new, old, json) = (d.join("t.json"), d.join("old.json"), d.join("settings.json"));
        std::fs::write(&old, r#"{"traceEvents": []}"#).unwrap();
        std::fs::write(&json, r#"{"my": "settings"}"#).unwrap();
        assert!(check(Some(&new), "--trace", &[], Some(OutKind::Json)).is_ok());
        assert!(check(Some(&old), "--trace", &[], Some(OutKind::Json)).is_ok());
        let e = check(Some(&json), "--trace", &[], Some(OutKind::Json)).unwrap_err();
        assert!(matches!(&e, OutputError::Trace { why, .. } if why.contains("not a Chrome trace")), "{e}");
        // libtorch's temporary file would be replaced
        std::fs::write(d.join("t.json.tmp"), "notes").unwrap();
        assert!(matches!(check(Some(&new), "--trace", &[], Some(OutKind::Json)), Err(OutputError::Trace { .. })));
        // a folder that does not exist
        assert!(matches!(check(Some(&d.join("nosuch/t.json")), "--trace", &[], Some(OutKind::Json)), Err(OutputError::Trace { why, .. }) if why.contains("does not exist")));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_run_folder_and_the_files_training_keeps_there_are_refused() {
        let d = folder("run");
        let run = d.join("runs/exp");
        std::fs::create_dir_all(run.join(ijepa_schema::CHECKPOINTS)).unwrap();
        std::fs::write(run.join(ijepa_schema::MANIFEST), "{}").unwrap();
        let run_abs = run.canonicalize().unwrap();
        for (out, what) in [
            (run.clone(), "its files (config.json, ...)".to_string()),
            (run.join(ijepa_schema::CHECKPOINTS), "files in its checkpoints folder".into()),
            (run.join(ijepa_schema::CONFIG_JSON), format!("its {}", ijepa_schema::CONFIG_JSON)),
            (run.join(ijepa_schema::CHECKPOINTS).join(ijepa_schema::LATEST), format!("its checkpoint {}", ijepa_schema::LATEST)),
        ] {
            match check(Some(&out), "--out", &[], None) {
                Err(OutputError::InRun { run: r, what: w, .. }) => assert!(r == run_abs && w == what, "{}: {} {w}", out.display(), r.display()),
                other => panic!("{}: {other:?}", out.display()),
            }
        }
        // a file of the user's own in the run folder is theirs to write
        assert!(check(Some(&run.join("notes.md")), "--out", &[], None).is_ok());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
