//! Faults and bad input through the binary: each ends in a clear error (exit 1, the flag or file
//! named), never a panic or a silent default (issue: "Nothing lost, no panic").
mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::vae_tch;

fn fails_with(o: &Output, needle: &str) {
    ends_with(o, 1, needle);
}

/// A bad flag value: a usage error (exit 2) naming the flag.
fn usage_error(o: &Output, needle: &str) {
    ends_with(o, 2, needle);
}

fn ends_with(o: &Output, code: i32, needle: &str) {
    let text = common::text(o);
    assert_eq!(o.status.code(), Some(code), "{text}");
    assert!(text.contains(needle), "no {needle:?} in: {text}");
    assert!(!text.contains("panicked"), "{text}");
}

#[test]
fn empty_splits_are_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("no-test"), 16, 0);
    let o = vae_tch(
        &[
            "train",
            "--data-dir",
            "no-test",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--out",
            "r",
        ],
        tmp.path(),
    );
    fails_with(&o, "no test images");
    assert!(
        !tmp.path().join("r/checkpoint").exists(),
        "no checkpoint for a run that cannot train"
    );
    common::write_synthetic(&tmp.path().join("no-train"), 0, 4);
    let o = vae_tch(
        &[
            "train",
            "--data-dir",
            "no-train",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--out",
            "r2",
        ],
        tmp.path(),
    );
    fails_with(&o, "no training images");
}

#[test]
fn figure_flags_are_validated() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 16, 8, 1, 2);
    let run = run.to_str().unwrap();
    usage_error(
        &vae_tch(&["latent-plot", run, "--limit", "0"], tmp.path()),
        "'0' for '--limit <N>'",
    );
    for bad in ["nan", "inf", "0", "-2"] {
        let o = vae_tch(
            &[
                "manifold",
                run,
                "--spacing",
                "linear",
                &format!("--range={bad}"),
            ],
            tmp.path(),
        );
        usage_error(
            &o,
            &format!("'{bad}' for '--range <R>': {bad}: the half-width"),
        );
    }
    let o = vae_tch(
        &[
            "manifold",
            run,
            "--spacing",
            "linear",
            "--range",
            "2.5",
            "--n",
            "3",
        ],
        tmp.path(),
    );
    assert!(o.status.success());
}

#[test]
fn absurd_model_sizes_are_refused_before_any_tensor_is_made() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 16, 4);
    let o = vae_tch(
        &[
            "train",
            "--data-dir",
            "data",
            "--latent-dim",
            "1000000000",
            "--device",
            "cpu",
            "--out",
            "r",
        ],
        tmp.path(),
    );
    fails_with(&o, "parameters");
    std::fs::write(
        tmp.path().join("wide.toml"),
        "[model]\ninput_shape = [1, 100000, 100000]\n",
    )
    .unwrap();
    let o = vae_tch(&["summary", "--config", "wide.toml"], tmp.path());
    fails_with(&o, "values per image");
}

#[test]
fn rewriting_metrics_on_resume_is_atomic_and_keeps_earlier_epochs() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 16, 8, 2, 2);
    let csv = run.join("metrics.csv");
    let before = vae_tch::run::metrics::read(&csv).unwrap();
    // An extra row as a crashed later epoch would have left; resuming keeps epochs 1..2 only.
    vae_tch::run::metrics::truncate_after(&csv, 1).unwrap();
    let after = vae_tch::run::metrics::read(&csv).unwrap();
    assert_eq!(after, before[..1]);
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_second_trainer_on_the_same_run_is_refused_with_the_first_ones_pid() {
    let tmp = tempfile::tempdir().unwrap();
    let first = vae_tch::run::lock::RunLock::acquire(tmp.path()).unwrap();
    let err = vae_tch::run::lock::RunLock::acquire(tmp.path())
        .err()
        .expect("the second lock must fail")
        .to_string();
    assert!(
        err.contains(&format!("PID {}", std::process::id())) && err.contains("another vae-tch"),
        "{err}"
    );
    drop(first);
    vae_tch::run::lock::RunLock::acquire(tmp.path()).unwrap();
}

#[test]
fn a_run_without_a_finished_epoch_can_be_started_again_or_resumed() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 16, 8);
    // A run killed before its first checkpoint: its folder holds config.toml only.
    std::fs::create_dir_all(tmp.path().join("r")).unwrap();
    std::fs::write(tmp.path().join("r/config.toml"), "").unwrap();
    let args = [
        "--data-dir",
        "data",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--batch-size",
        "8",
    ];
    let o = vae_tch(&[&["train", "--out", "r"][..], &args].concat(), tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no finished epoch to resume"));
    // The same with --resume: it trains from the start.
    let r2 = tmp.path().join("r2");
    std::fs::create_dir_all(&r2).unwrap();
    std::fs::copy(tmp.path().join("r/config.toml"), r2.join("config.toml")).unwrap();
    let o = vae_tch(
        &[
            "train",
            "--resume",
            "r2",
            "--data-dir",
            "data",
            "--device",
            "cpu",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(vae_tch::run::checkpoint::read_state(&r2).unwrap().epoch, 1);
}

#[test]
fn figures_say_what_is_missing_or_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("fresh")).unwrap();
    std::fs::write(tmp.path().join("fresh/config.toml"), "").unwrap();
    fails_with(
        &vae_tch(&["plot-loss", "fresh"], tmp.path()),
        "has no finished epoch yet",
    );
    fails_with(
        &vae_tch(&["sample", "fresh"], tmp.path()),
        "has no finished epoch yet",
    );
    let run = common::train_tiny_run(tmp.path(), 16, 8, 1, 2);
    let run = run.to_str().unwrap();
    fails_with(
        &vae_tch(&["sample", run, "--out", "noext"], tmp.path()),
        "figures are written as PNG (.png) or SVG",
    );
    std::fs::create_dir_all(tmp.path().join("afolder")).unwrap();
    fails_with(
        &vae_tch(&["sample", run, "--out", "afolder"], tmp.path()),
        "afolder is a folder",
    );
}

#[test]
fn sigint_and_sigterm_stop_cleanly_keep_the_checkpoint_and_say_how_to_resume() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 400, 8);
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let run = format!("run{sig}");
        let child = Command::new(env!("CARGO_BIN_EXE_vae-tch"))
            .args([
                "train",
                "--data-dir",
                "data",
                "--device",
                "cpu",
                "--epochs",
                "100",
                "--batch-size",
                "8",
                "--out",
                &run,
                "--quiet",
                "--no-export",
                "--reconstruction-every",
                "0",
            ])
            .current_dir(tmp.path())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Wait for the first finished epoch (its checkpoint), then signal mid-run.
        let state = tmp.path().join(&run).join("checkpoint/state.toml");
        let t0 = std::time::Instant::now();
        while !state.exists() {
            assert!(t0.elapsed().as_secs() < 60, "no epoch finished in 60 s");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        unsafe { libc::kill(child.id() as i32, sig) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(
            err.contains(&format!("vae-tch train --resume {run}")),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        // The kept checkpoint resumes.
        let kept = vae_tch::run::checkpoint::read_state(&tmp.path().join(&run))
            .unwrap()
            .epoch;
        assert!(kept >= 1);
        let o = vae_tch(
            &[
                "train",
                "--resume",
                &run,
                "--epochs",
                &(kept + 1).to_string(),
                "--device",
                "cpu",
                "--no-export",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows = vae_tch::run::metrics::read(&tmp.path().join(&run).join("metrics.csv")).unwrap();
        let epochs: Vec<usize> = rows.iter().map(|r| r.epoch).collect();
        assert_eq!(
            epochs,
            (1..=kept + 1).collect::<Vec<_>>(),
            "every epoch once"
        );
    }
}

#[test]
fn resuming_on_other_data_is_refused_unless_forced_and_a_typo_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 16, 8);
    let o = vae_tch(
        &[
            "train",
            "--data-dir",
            "data",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            "r",
            "--no-export",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let config = std::fs::read_to_string(tmp.path().join("r/config.toml")).unwrap();
    // A typo: an error naming the folder, and the run's config is unchanged.
    let o = vae_tch(
        &[
            "train",
            "--resume",
            "r",
            "--epochs",
            "2",
            "--data-dir",
            "dta",
            "--device",
            "cpu",
        ],
        tmp.path(),
    );
    fails_with(&o, "dta");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("r/config.toml")).unwrap(),
        config
    );
    // Other data (same format, other images): refused, naming what differs.
    common::write_synthetic(&tmp.path().join("other"), 24, 8);
    let args = [
        "train",
        "--resume",
        "r",
        "--epochs",
        "2",
        "--data-dir",
        "other",
        "--device",
        "cpu",
        "--no-export",
    ];
    let o = vae_tch(&args, tmp.path());
    fails_with(&o, "not the data run r was trained on");
    let text = String::from_utf8_lossy(&o.stderr);
    assert!(
        text.contains("24 training / 8 test images (the run's: 16 / 8)")
            && text.contains("--force"),
        "{text}"
    );
    let o = vae_tch(&[&args[..], &["--force"]].concat(), tmp.path());
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// A tmpfs of `size` mounted on `dir` while it lives (None where mounting is not allowed).
struct TinyDisk(std::path::PathBuf);

impl TinyDisk {
    fn mount(dir: &Path, size: &str) -> Option<TinyDisk> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .ok()?
            .status
            .success();
        ok.then(|| TinyDisk(dir.to_path_buf()))
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

#[test]
#[ignore = "needs root to mount a tmpfs (scripts/root-tests.sh runs it)"]
fn a_full_disk_is_named_and_the_run_stays_usable() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 16, 8);
    // 1.5 MB: room for the config and the weights, not for Adam's state (1.7 MB).
    let _disk = TinyDisk::mount(&tmp.path().join("small"), "1536k")
        .expect("mounting a tmpfs (this test needs root)");
    let args = [
        "--data-dir",
        "data",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--no-export",
    ];
    let o = vae_tch(
        &[&["train", "--out", "small/run"][..], &args].concat(),
        tmp.path(),
    );
    let text = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the disk is full") && text.contains("small/run"),
        "{text}"
    );
    assert!(!text.contains("panicked"), "{text}");
    // No checkpoint was half-written into place; with room again, the run resumes.
    assert!(!tmp.path().join("small/run/checkpoint/state.toml").exists());
    let grown = Command::new("mount")
        .args(["-o", "remount,size=16m"])
        .arg(tmp.path().join("small"))
        .status()
        .unwrap();
    assert!(grown.success());
    let o = vae_tch(
        &[
            "train",
            "--resume",
            "small/run",
            "--device",
            "cpu",
            "--no-export",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let state = vae_tch::run::checkpoint::read_state(&tmp.path().join("small/run")).unwrap();
    assert_eq!(state.epoch, 1);
}

#[test]
fn a_file_size_limit_is_a_clear_error_and_the_run_resumes() {
    // `ulimit -f` sends SIGXFSZ, which would kill the trainer with no word (exit 153). vae-tch
    // ignores it, so the write fails with EFBIG and is reported like a full disk.
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 16, 8);
    let args = [
        "--data-dir",
        "data",
        "--device",
        "cpu",
        "--batch-size",
        "8",
        "--no-export",
        "--quiet",
    ];
    let o = vae_tch(
        &[&["train", "--out", "run", "--epochs", "1"][..], &args[..]].concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    // 1,200 KiB a file: the weights (0.8 MB) fit, Adam's state (1.7 MB) does not.
    let limited = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f 1200 && exec {} train --resume run --epochs 2 --device cpu --no-export --quiet",
            env!("CARGO_BIN_EXE_vae-tch")
        ))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let text = common::text(&limited);
    assert_eq!(limited.status.code(), Some(1), "{text}");
    assert!(text.contains("file-size limit (`ulimit -f`)"), "{text}");
    assert!(text.contains("run/checkpoint"), "{text}");
    let run = tmp.path().join("run");
    assert_eq!(
        vae_tch::run::checkpoint::read_state(&run).unwrap().epoch,
        1,
        "the last checkpoint is kept"
    );
    let o = vae_tch(
        &[
            "train",
            "--resume",
            "run",
            "--epochs",
            "2",
            "--device",
            "cpu",
            "--no-export",
            "--quiet",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let rows = vae_tch::run::metrics::read(&run.join("metrics.csv")).unwrap();
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2]);
}
