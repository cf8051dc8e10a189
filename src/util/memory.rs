//! How much memory this process may still take, as the kernel will enforce it: the tightest of
//! its address-space limit (`ulimit -v`, RLIMIT_AS, less what the process maps now), its
//! cgroup's limit (v2 `memory.max`, v1 `memory.limit_in_bytes`, less the group's usage; the
//! tightest of the cgroup and its parents), and the host's `MemAvailable`. A container or a
//! Slurm allocation is a cgroup; a shell's `ulimit -v` an rlimit: MemAvailable alone would size
//! a stack of models for the whole machine inside a 5 GB allocation.
use std::path::{Path, PathBuf};

/// A value at or above this is "no limit" (cgroup v1 writes 2^63 rounded to a page).
const UNLIMITED: u64 = 1 << 60;

/// Where the process's memory limit comes from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `ulimit -v` (RLIMIT_AS).
    AddressSpace,
    /// The cgroup (container, Slurm job, systemd slice).
    Cgroup,
    /// The host's free memory (/proc/meminfo's MemAvailable).
    Host,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Source::AddressSpace => "the address-space limit (ulimit -v)",
            Source::Cgroup => "the cgroup's memory limit",
            Source::Host => "the host's available memory",
        })
    }
}

/// The bytes this process may still allocate, and which limit says so; None where nothing can
/// be read (not Linux).
pub fn available() -> Option<(u64, Source)> {
    [
        address_space_left().map(|b| (b, Source::AddressSpace)),
        cgroup_left().map(|b| (b, Source::Cgroup)),
        host_available().map(|b| (b, Source::Host)),
    ]
    .into_iter()
    .flatten()
    .min_by_key(|(b, _)| *b)
}

/// `12.3 GB`, `512 MB`: for messages.
pub fn human(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else {
        format!("{:.0} MB", (b / 1e6).max(1.0))
    }
}

/// RLIMIT_AS less the process's mapped size (VmSize).
fn address_space_left() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut lim) } != 0 || lim.rlim_cur >= UNLIMITED {
        return None;
    }
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let used = kib_field(&status, "VmSize:")?;
    Some(lim.rlim_cur.saturating_sub(used))
}

/// `<field> <n> kB` of a /proc file, in bytes.
fn kib_field(text: &str, field: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn host_available() -> Option<u64> {
    kib_field(
        &std::fs::read_to_string("/proc/meminfo").ok()?,
        "MemAvailable:",
    )
}

/// The smallest (limit - usage) of the process's memory cgroup and its parents.
fn cgroup_left() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let root = Path::new("/sys/fs/cgroup");
    cgroup_dirs(&text, root)
        .into_iter()
        .filter_map(|(dir, v2)| {
            let (limit, usage) = if v2 {
                (
                    read_bytes(&dir.join("memory.max"))?,
                    read_bytes(&dir.join("memory.current")),
                )
            } else {
                (
                    read_bytes(&dir.join("memory.limit_in_bytes"))?,
                    read_bytes(&dir.join("memory.usage_in_bytes")),
                )
            };
            (limit < UNLIMITED).then(|| limit.saturating_sub(usage.unwrap_or(0)))
        })
        .min()
}

/// The memory cgroup folders of `/proc/self/cgroup`'s `text` under `root`, the process's own
/// and each parent up to the root (a container sees its own group as the root), and whether
/// each is cgroup v2.
pub fn cgroup_dirs(text: &str, root: &Path) -> Vec<(PathBuf, bool)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let (base, v2) = if id == "0" && controllers.is_empty() {
            (root.to_path_buf(), true)
        } else if controllers.split(',').any(|c| c == "memory") {
            (root.join("memory"), false)
        } else {
            continue;
        };
        let mut rel = PathBuf::from(path.trim_start_matches('/'));
        loop {
            out.push((base.join(&rel), v2));
            if !rel.pop() {
                break;
            }
        }
    }
    out
}

/// A number of bytes in a cgroup file ("max" is no limit).
fn read_bytes(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    if t == "max" {
        return Some(u64::MAX);
    }
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup_folders_are_the_groups_own_and_its_parents() {
        let v1 = "4:memory:/slurm/job_7\n3:cpuset:/\n";
        let dirs = cgroup_dirs(v1, Path::new("/cg"));
        let want: Vec<(PathBuf, bool)> =
            ["/cg/memory/slurm/job_7", "/cg/memory/slurm", "/cg/memory"]
                .iter()
                .map(|p| (PathBuf::from(p), false))
                .collect();
        assert_eq!(dirs, want);
        let v2 = "0::/user.slice/job.scope\n";
        let dirs = cgroup_dirs(v2, Path::new("/cg"));
        assert_eq!(dirs[0], (PathBuf::from("/cg/user.slice/job.scope"), true));
        assert_eq!(dirs.last().unwrap(), &(PathBuf::from("/cg"), true));
    }

    #[test]
    fn what_is_available_is_at_most_the_hosts() {
        let (bytes, _) = available().expect("Linux has /proc/meminfo");
        assert!(bytes <= host_available().unwrap());
        assert_eq!(human(1_500_000_000), "1.5 GB");
        assert_eq!(human(20_000_000), "20 MB");
    }
}
