//! A sweep's points on disk: each an ordinary run folder `<sweep>/points/<name>/`, and what state
//! it is in (done, running in some process, failed, pending), read from the folder alone.
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::spec::Point;
use crate::run::checkpoint;
use crate::run::lock::{LockError, RunLock};

pub const POINTS_DIR: &str = "points";
/// Written into a point's folder when its training failed (the error), removed when it
/// trains again.
pub const FAILED_FILE: &str = "FAILED";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Done,
    Running,
    Failed,
    Pending,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Done => "done",
            Status::Running => "running",
            Status::Failed => "failed",
            Status::Pending => "pending",
        })
    }
}

pub fn point_dir(out: &Path, point: &Point) -> PathBuf {
    out.join(POINTS_DIR).join(&point.name)
}

/// Epochs finished in a point's folder.
pub fn epochs_done(dir: &Path) -> usize {
    checkpoint::read_state(dir).map_or(0, |s| s.epoch)
}

/// Whether another process holds the point's lock (probing takes and drops it when free).
pub fn held(dir: &Path) -> bool {
    dir.is_dir() && matches!(RunLock::probe(dir), Err(LockError::Busy { .. }))
}

/// A point's status on disk. A point whose epochs are all done (or that early stopping ended)
/// is done, even while a process holds it to draw its figures (or another process's status
/// probe holds it for a moment).
pub fn status(dir: &Path, epochs: usize) -> Status {
    let stopped = checkpoint::read_state(dir).is_ok_and(|s| s.stopped_early);
    if stopped || epochs_done(dir) >= epochs {
        Status::Done
    } else if held(dir) {
        Status::Running
    } else if dir.join(FAILED_FILE).is_file() {
        Status::Failed
    } else {
        Status::Pending
    }
}
