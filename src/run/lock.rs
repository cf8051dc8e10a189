//! One trainer per run folder: `train` holds an exclusive `flock` on `<run>/.lock`, which holds
//! the PID of the process that has it. A second trainer on the same folder fails at once with
//! that PID. The kernel drops the lock when the process ends, however it ends, so a killed run
//! never leaves a stale lock.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = ".lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{run} is being trained by another vae-tch (PID {pid}); wait for it or stop it first")]
    Busy { run: PathBuf, pid: String },
    #[error("{path}: the file system gives no lock here ({cause}); processes that share a folder (a sweep's shards) rely on flock, which works on local disks, NFSv4, Lustre mounted with -o flock, GPFS, BeeGFS and CephFS, and not on NFSv3 without lockd or Lustre without flock: put the folder on one that does (see docs/sweeps.md, \"Shared file systems\")")]
    NoLocks {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// The held lock; dropping it (or ending the process) releases it.
pub struct RunLock {
    _file: File,
}

impl RunLock {
    /// The run folder's lock, at once or `LockError::Busy`.
    pub fn acquire(run: &Path) -> Result<RunLock, LockError> {
        lock(run, LOCK_FILE, false, 5)
    }

    /// The run folder's lock if it is free at this instant (no retries): for probing whether
    /// another process holds it.
    pub fn probe(run: &Path) -> Result<RunLock, LockError> {
        lock(run, LOCK_FILE, false, 0)
    }

    /// The lock file `name` in `dir`, waiting while another process holds it: for short
    /// sections that processes take turns at (a sweep folder's sweep.toml).
    pub fn wait_for(dir: &Path, name: &str) -> Result<RunLock, LockError> {
        lock(dir, name, true, 0)
    }
}

/// The error of a flock that failed other than for being held: the file system's, or another.
fn unlockable(path: PathBuf, cause: std::io::Error) -> LockError {
    let no_locks = [libc::ENOLCK, libc::EOPNOTSUPP, libc::ENOSYS, libc::EINVAL];
    match cause.raw_os_error() {
        Some(code) if no_locks.contains(&code) => LockError::NoLocks { path, cause },
        _ => LockError::Io { path, cause },
    }
}

fn lock(run: &Path, name: &str, wait: bool, retries: usize) -> Result<RunLock, LockError> {
    let path = run.join(name);
    let io = |cause| LockError::Io {
        path: path.clone(),
        cause,
    };
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let how = if wait {
        libc::LOCK_EX
    } else {
        libc::LOCK_EX | libc::LOCK_NB
    };
    let mut got = unsafe { libc::flock(file.as_raw_fd(), how) } == 0;
    // A status probe (`probe`) takes a free lock for an instant: try `retries` more times,
    // 20 ms apart, before calling the folder busy, so that a probe never turns a trainer away.
    for _ in 0..retries {
        if got || wait || std::io::Error::last_os_error().raw_os_error() != Some(libc::EWOULDBLOCK)
        {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        got = unsafe { libc::flock(file.as_raw_fd(), how) } == 0;
    }
    if !got {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(unlockable(path, err));
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        return Err(LockError::Busy {
            run: run.to_path_buf(),
            pid: if pid.trim().is_empty() {
                "unknown".into()
            } else {
                pid.trim().to_string()
            },
        });
    }
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    write!(file, "{}", std::process::id()).map_err(io)?;
    file.flush().map_err(io)?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_system_without_locks_is_named_as_such() {
        let e = super::unlockable(
            "/nfs/sweep/.sweep-lock".into(),
            std::io::Error::from_raw_os_error(libc::ENOLCK),
        );
        let text = e.to_string();
        assert!(
            text.contains("/nfs/sweep/.sweep-lock") && text.contains("NFSv4"),
            "{text}"
        );
        let other = super::unlockable("/x".into(), std::io::Error::from_raw_os_error(libc::EIO));
        assert!(matches!(other, super::LockError::Io { .. }));
    }
}
