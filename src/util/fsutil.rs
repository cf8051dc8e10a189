//! Writing files so that a crash never leaves a half-written one: write a temporary file in the
//! same folder, flush it to disk, then rename it over the target (rename is atomic on POSIX).
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The temporary name used beside `path` while it is being written: `.partial` goes before the
/// extension (`model.partial.safetensors`), since writers such as tch's pick the format by it.
pub fn partial_path(path: &Path) -> PathBuf {
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    match path.extension() {
        Some(ext) => path.with_file_name(format!("{stem}.partial.{}", ext.to_string_lossy())),
        None => path.with_file_name(format!("{stem}.partial")),
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
