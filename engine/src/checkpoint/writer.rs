//! Training checkpoints written beside the training, not in its way: between two steps the
//! tensors are copied out of the live state ([`Snapshot::checkpoint`], a memory copy of tens
//! of milliseconds for ViT-Tiny), then a background thread hashes them, streams them to disk
//! and fsyncs while the next steps run. On a 2-core AMD EPYC a 89 MB ViT-Tiny checkpoint had
//! held training for ~0.55 s, over half of it the write and fsync.
//!
//! One write at a time: the caller waits for the write in flight ([`Writer::wait`]) before it
//! takes the next snapshot, and [`Writer::submit`] waits too, so at most one snapshot is held
//! beside the training state and a slow disk slows the run down instead of queueing memory. A
//! file is reported (and so recorded in the manifest) only once it is on disk: [`Writer::poll`]
//! after each step, [`Writer::wait`] where the run needs its files (a new checkpoint, an
//! interrupt, the end). Dropping a writer waits for its write, so no return path of the
//! training loop leaves a file half written.

use super::state::Snapshot;
use crate::error::{Error, Result};
use std::path::PathBuf;
use std::thread::JoinHandle;

/// A checkpoint on disk: its files (one snapshot, the same bytes in each), the step it was
/// taken at and the SHA-256 of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// The files written, in the order given to [`Writer::submit`].
    pub files: Vec<PathBuf>,
    /// Optimiser steps done when the snapshot was taken.
    pub step: u64,
    /// SHA-256 of each file's bytes.
    pub sha256: String,
}

/// The background writer of a run's checkpoints (see the module documentation).
#[derive(Debug, Default)]
pub struct Writer {
    pending: Option<JoinHandle<Result<Written>>>,
    /// Writes that finished and were not yet handed out.
    finished: Vec<Written>,
}

impl Writer {
    /// A writer with nothing in flight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a write is in flight (started and not yet joined).
    pub fn busy(&self) -> bool {
        self.pending.is_some()
    }

    /// Joins the write in flight, keeping its result for the next [`Writer::poll`] /
    /// [`Writer::wait`].
    fn join(&mut self) -> Result<()> {
        if let Some(h) = self.pending.take() {
            let written = h.join().map_err(|_| Error::Train("the checkpoint writer thread panicked".into()))??;
            self.finished.push(written);
        }
        Ok(())
    }

    /// Starts writing `snapshot` to each of `files` in order (each atomically; the same
    /// bytes), taken at `step`, after waiting for the write in flight (kept for the next
    /// [`Writer::poll`] / [`Writer::wait`]).
    ///
    /// # Errors
    /// The earlier write's error (the new one is not started then), or a thread that cannot
    /// be spawned.
    pub fn submit(&mut self, snapshot: Snapshot, files: Vec<PathBuf>, step: u64) -> Result<()> {
        self.join()?;
        let handle = std::thread::Builder::new()
            .name("ijepa-checkpoint".into())
            .spawn(move || {
                let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
                let sha256 = snapshot.write(&paths).map_err(|e| Error::Train(format!("writing the checkpoint of step {step}: {e}")))?;
                Ok(Written { files, step, sha256 })
            })
            .map_err(|e| Error::Train(format!("cannot start the checkpoint writer thread: {e}")))?;
        self.pending = Some(handle);
        Ok(())
    }

    /// The writes finished so far (the one in flight only if it has finished; never blocks).
    ///
    /// # Errors
    /// The finished write's error.
    pub fn poll(&mut self) -> Result<Vec<Written>> {
        if self.pending.as_ref().is_some_and(JoinHandle::is_finished) {
            self.join()?;
        }
        Ok(std::mem::take(&mut self.finished))
    }

    /// Waits for the write in flight, if any; returns every write finished so far.
    ///
    /// # Errors
    /// Its error (e.g. [`Error::Io`] naming a file on a full disk), or a writer thread that
    /// panicked; the writes finished before it are still returned by the next call.
    pub fn wait(&mut self) -> Result<Vec<Written>> {
        self.join()?;
        Ok(std::mem::take(&mut self.finished))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        if let Err(e) = self.join() {
            tracing::warn!("a checkpoint could not be written: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::state::{self, Position};
    use tch::{Device, Kind, Tensor};

    fn scratch(tag: &str) -> crate::testdir::Scratch {
        crate::testdir::scratch("writer", tag)
    }

    fn tensors(k: f64) -> Vec<(String, Tensor)> {
        let t = |n: i64| (Tensor::arange(n, (Kind::Float, Device::Cpu)) * k).sin();
        vec![("a.weight".into(), t(1000).view([10, 100])), ("b.bias".into(), t(7)), ("step".into(), Tensor::from_slice(&[3i64]))]
    }

    fn pos(step: u64) -> Position {
        Position { global_step: step, epoch: 0, step_in_epoch: step, optimizer_step: step, steps_per_epoch: 0, stage: 0, images: 0, data: 0 }
    }

    /// Submits the checkpoint of `tensors(0.5)` at `step` to the one `file`.
    fn submit_at(w: &mut Writer, step: u64, file: PathBuf) -> Result<()> {
        w.submit(Snapshot::checkpoint(&tensors(0.5), pos(step)).unwrap(), vec![file], step)
    }

    #[test]
    fn writes_what_save_writes_in_the_background_in_order() {
        let d = scratch("order");
        let mut w = Writer::new();
        let live = tensors(0.5);
        let snap = Snapshot::checkpoint(&live, pos(1)).unwrap();
        // training goes on: the live tensors change after the snapshot was taken
        let _ = live[0].1.shallow_clone().fill_(7.0);
        w.submit(snap, vec![d.join("epoch-0001.safetensors"), d.join("latest.safetensors")], 1).unwrap();
        assert!(w.busy());
        w.submit(Snapshot::checkpoint(&tensors(0.25), pos(2)).unwrap(), vec![d.join("later.safetensors")], 2).unwrap();
        let done = w.wait().unwrap();
        assert_eq!(done.len(), 2, "{done:?}");
        let first = done[0].clone();
        assert_eq!(first.step, 1);
        assert_eq!(first.files, vec![d.join("epoch-0001.safetensors"), d.join("latest.safetensors")]);
        // both files hold the snapshot (not the changed tensors), byte for byte what the
        // synchronous save writes, and the reported hash is theirs
        state::save(&d.join("sync.safetensors"), &tensors(0.5), pos(1)).unwrap();
        let want = std::fs::read(d.join("sync.safetensors")).unwrap();
        for f in &first.files {
            assert_eq!(std::fs::read(f).unwrap(), want, "{}", f.display());
            assert_eq!(state::sha256_file(f).unwrap(), first.sha256);
        }
        let (back, p) = state::load(&d.join("latest.safetensors")).unwrap();
        assert_eq!(p, pos(1));
        assert!(back["a.weight"].allclose(&tensors(0.5)[0].1, 0.0, 0.0, false));
        let second = &done[1];
        assert_eq!((second.step, second.sha256.clone()), (2, state::sha256_file(&d.join("later.safetensors")).unwrap()));
        assert!(!w.busy());
        assert!(w.wait().unwrap().is_empty());
        assert!(w.poll().unwrap().is_empty());
    }

    #[test]
    fn poll_reports_a_finished_write_once() {
        let d = scratch("poll");
        let mut w = Writer::new();
        submit_at(&mut w, 4, d.join("latest.safetensors")).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let got = loop {
            if let Some(got) = w.poll().unwrap().pop() {
                break got;
            }
            assert!(std::time::Instant::now() < deadline, "the write never finished");
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        assert_eq!(got.step, 4);
        assert!(w.poll().unwrap().is_empty());
    }

    #[test]
    fn a_failed_write_names_the_file_and_step_and_stops_the_next() {
        let d = scratch("fail");
        let mut w = Writer::new();
        submit_at(&mut w, 1, d.join("ok.safetensors")).unwrap();
        // a folder where the file should go: the temporary file is written, the rename fails
        let blocked = d.join("latest.safetensors");
        std::fs::create_dir_all(blocked.join("x")).unwrap();
        submit_at(&mut w, 2, blocked.clone()).unwrap();
        let err = submit_at(&mut w, 3, d.join("next.safetensors")).unwrap_err();
        assert!(err.to_string().contains("latest.safetensors") && err.to_string().contains("step 2"), "{err}");
        assert!(!w.busy(), "the next write must not start after a failed one");
        assert!(!d.join("next.safetensors").exists());
        // the write that finished before the failure is still handed out
        let done = w.wait().unwrap();
        assert_eq!(done.iter().map(|x| x.step).collect::<Vec<_>>(), vec![1]);
        // and no temporary file is left behind
        let names: Vec<String> = std::fs::read_dir(&d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
    }

    #[test]
    fn dropping_the_writer_finishes_its_write() {
        let d = scratch("drop");
        {
            let mut w = Writer::new();
            submit_at(&mut w, 9, d.join("latest.safetensors")).unwrap();
        }
        let (_, p) = state::load(&d.join("latest.safetensors")).unwrap();
        assert_eq!(p.global_step, 9);
        assert!(std::fs::read_dir(&d).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".tmp")));
    }
}
