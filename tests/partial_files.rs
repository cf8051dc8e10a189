//! Temporary files in a folder that several machines share (a sweep folder on a cluster's file
//! system): a writer removes the temporary files of dead processes, and must never take another
//! machine's live writer for dead. The second machine is a child in its own PID and UTS
//! namespaces (`unshare`, as root), given a PID that no process of this namespace has.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use vae_tch::util::fsutil;

const CHILD_DIR: &str = "VAE_TCH_PARTIAL_CHILD_DIR";

fn wait_for(path: &Path, secs: u64) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The second machine's writer: opens its temporary file, says so, waits for the go, renames.
#[test]
#[ignore = "run by a_live_writer_on_another_machine_keeps_its_temporary_file"]
fn writer_on_the_second_machine() {
    let dir = PathBuf::from(std::env::var(CHILD_DIR).expect("set by the parent test"));
    fsutil::with_atomic(&dir.join("summary.csv"), |tmp| {
        std::fs::write(tmp, b"second machine")?;
        std::fs::write(dir.join("ready"), b"")?;
        assert!(wait_for(&dir.join("go"), 60), "no go from the parent");
        Ok::<(), std::io::Error>(())
    })
    .expect("the second machine's rename: its temporary file was removed under it");
}

#[test]
fn a_live_writer_on_another_machine_keeps_its_temporary_file() {
    let probe = Command::new("unshare")
        .args(["--pid", "--uts", "--fork", "--mount-proc", "true"])
        .output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipped: unshare --pid --uts is not allowed here (needs root or user namespaces)"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("vae-tch-partial-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A PID no process here has: the child gets it in its namespace (ns_last_pid + 1).
    let pid = (100_000..4_000_000)
        .step_by(7_919)
        .find(|&p| !Path::new(&format!("/proc/{p}")).exists())
        .expect("a free PID");
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "set -e; hostname node-2; echo {} > /proc/sys/kernel/ns_last_pid; \"$0\" \"$@\" & wait $!",
        pid - 1
    );
    let mut child = Command::new("unshare")
        .args([
            "--pid",
            "--uts",
            "--fork",
            "--mount-proc",
            "sh",
            "-c",
            &script,
        ])
        .arg(&exe)
        .args([
            "--ignored",
            "--exact",
            "writer_on_the_second_machine",
            "--nocapture",
        ])
        .env(CHILD_DIR, &dir)
        .spawn()
        .unwrap();
    // However this test ends, the child is let go (a failed assert must not leave it waiting).
    struct Go(PathBuf);
    impl Drop for Go {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0.join("go"), b"");
        }
    }
    let _go = Go(dir.clone());
    assert!(
        wait_for(&dir.join("ready"), 60),
        "the child never started writing"
    );
    let theirs: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("summary.partial-"))
        .collect();
    assert_eq!(theirs.len(), 1, "the child's temporary file: {theirs:?}");
    assert!(
        theirs[0].starts_with(&format!("summary.partial-{pid}-")),
        "{theirs:?}"
    );
    // This machine writes the same file meanwhile (as shards write summary.csv).
    fsutil::write_atomic(&dir.join("summary.csv"), b"first machine").unwrap();
    assert!(
        dir.join(&theirs[0]).exists(),
        "the other machine's live temporary file {} was removed",
        theirs[0]
    );
    std::fs::write(dir.join("go"), b"").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "the second machine's writer failed");
    assert_eq!(
        std::fs::read(dir.join("summary.csv")).unwrap(),
        b"second machine"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
