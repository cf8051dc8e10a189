//! Writing files so that a crash never leaves a half-written one: write a temporary file in the
//! same folder, flush it to disk, then rename it over the target (rename is atomic on POSIX).
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A temporary name beside `path` for writing it: `.partial-<pid>-<n>-<pid space>` goes before
/// the extension (`model.partial-4242-0-node7_4026531836.safetensors`), since writers such as
/// tch's pick the format by it. The process, a counter and the machine's PID space
/// (`host::pid_space`) make it unique, so that processes sharing a folder (a sweep's shards
/// writing summary.csv, on one machine or several) never write into, or rename away, each
/// other's temporary file.
///
/// A temporary file left by a process of this machine that died (a kill -9 while writing a 10 GB
/// image cache) is removed here the next time the same file is written, as the old fixed name
/// was overwritten. Another machine's are left alone: whether its process lives cannot be told
/// from here.
pub fn partial_path(path: &Path) -> PathBuf {
    remove_dead_partials(path);
    static N: AtomicU64 = AtomicU64::new(0);
    let tag = format!(
        "partial-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        super::host::pid_space()
    );
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    match path.extension() {
        Some(ext) => path.with_file_name(format!("{stem}.{tag}.{}", ext.to_string_lossy())),
        None => path.with_file_name(format!("{stem}.{tag}")),
    }
}

/// Removes `path`'s temporary files (`<stem>.partial-<pid>-<n>-<pid space>...`) of this PID space
/// whose process is gone. Files of another PID space, or of older versions that did not name
/// theirs, are not this process's to judge.
fn remove_dead_partials(path: &Path) {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) else {
        return;
    };
    let prefix = format!("{}.partial-", stem.to_string_lossy());
    let Ok(entries) = fs::read_dir(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    }) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let mut parts = rest.splitn(3, '-');
        let (Some(pid), Some(_n), Some(space)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        // The PID space has no dots: what follows the first is the extension.
        let space = space.split('.').next().unwrap_or_default();
        let Ok(pid) = pid.parse::<i32>() else {
            continue;
        };
        if space != super::host::pid_space() {
            continue;
        }
        // kill(pid, 0): ESRCH means no such process.
        let alive = unsafe { libc::kill(pid, 0) } == 0
            || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH);
        if !alive {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// A file's content checksum as text: XXH3-64 in hex (a checkpoint's checksums.toml).
pub fn checksum(bytes: &[u8]) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes))
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

/// Puts the finished folder `partial` in `dir`'s place, the old one passing through
/// `<dir>.prev`, so a crash leaves the old folder or the new one, never half of either (a
/// checkpoint, `best/`, an export folder). A `<dir>.prev` that a crash left is replaced.
pub fn replace_dir(partial: &Path, dir: &Path) -> std::io::Result<()> {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    let prev = dir.with_file_name(format!("{name}.prev"));
    if dir.exists() {
        if prev.exists() {
            fs::remove_dir_all(&prev)?;
        }
        fs::rename(dir, &prev)?;
    }
    fs::rename(partial, dir)?;
    if prev.exists() {
        fs::remove_dir_all(&prev)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_dead_processs_temporary_file_goes_a_live_ones_stays() {
        let dir = std::env::temp_dir().join(format!("vae-tch-fsutil-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let here = crate::util::host::pid_space();
        // No process has PID i32::MAX (above the kernel's pid_max).
        let dead = dir.join(format!("summary.partial-{}-0-{here}.csv", i32::MAX));
        let live = dir.join(format!(
            "summary.partial-{}-99-{here}.csv",
            std::process::id()
        ));
        let other = dir.join(format!("other.partial-{}-0-{here}.csv", i32::MAX));
        // Another machine's (its PID says nothing here), and an older version's (no machine).
        let elsewhere = dir.join(format!("summary.partial-{}-0-node2_1.csv", i32::MAX));
        let old = dir.join(format!("summary.partial-{}-0.csv", i32::MAX));
        for f in [&dead, &live, &other, &elsewhere, &old] {
            std::fs::write(f, b"x").unwrap();
        }
        let tmp = super::partial_path(&dir.join("summary.csv"));
        assert!(tmp.to_string_lossy().ends_with(".csv"));
        assert!(!dead.exists() && live.exists() && other.exists());
        assert!(elsewhere.exists() && old.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
