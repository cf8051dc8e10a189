//! Writing files so that a crash never leaves a half-written one: write a temporary file in the
//! same folder, flush it to disk, then rename it over the target (rename is atomic on POSIX).
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temporary name beside `path` for writing it: `.partial-<pid>-<n>` goes before the extension
/// (`model.partial-4242-0.safetensors`), since writers such as tch's pick the format by it. The
/// process and a counter make it unique, so that processes sharing a folder (a sweep's shards
/// writing summary.csv) never write into, or rename away, each other's temporary file.
pub fn partial_path(path: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let tag = format!(
        "partial-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    match path.extension() {
        Some(ext) => path.with_file_name(format!("{stem}.{tag}.{}", ext.to_string_lossy())),
        None => path.with_file_name(format!("{stem}.{tag}")),
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    with_atomic(path, |tmp| {
        let mut f = File::create(tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })
}

/// Lets `write` fill a temporary path, then renames it to `path`; on error the temporary file is
/// removed and `path` is untouched.
pub fn with_atomic<E: From<std::io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let tmp = partial_path(path);
    match write(&tmp) {
        Ok(()) => {
            fs::rename(&tmp, path)?;
            Ok(())
        }
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}
