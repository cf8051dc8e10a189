//! Faults and bad input through the binary: each ends in a clear error (exit 1, the flag or file
//! named), never a panic or a silent default (issue: "Nothing lost, no panic").
mod common;

use std::path::Path;
use std::process::{Command, Output};

fn vae_tch(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vae-tch"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running vae-tch")
}

fn fails_with(o: &Output, needle: &str) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(1), "{text}");
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
    fails_with(
        &vae_tch(&["latent-plot", run, "--limit", "0"], tmp.path()),
        "--limit 0",
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
        fails_with(&o, &format!("--range {}", bad.parse::<f64>().unwrap()));
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
    let before = vae_tch::metrics::read(&csv).unwrap();
    // An extra row as a crashed later epoch would have left; resuming keeps epochs 1..2 only.
    vae_tch::metrics::truncate_after(&csv, 1).unwrap();
    let after = vae_tch::metrics::read(&csv).unwrap();
    assert_eq!(after, before[..1]);
    let leftovers: Vec<_> = std::fs::read_dir(&run)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
