//! Bad values, idle flags and damaged files, refused with the cause named (issue 24): a number
//! past what a config holds, a flag that would do nothing, a divergence blamed on the right
//! flag, a checkpoint changed on disk or holding NaN, a profile onto a folder.
mod common;

use std::path::Path;

use common::{text, vae_tch, write_synthetic};

fn fails_with(o: &std::process::Output, needle: &str) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains(needle), "no {needle:?} in: {t}");
    assert!(
        !t.contains("internal error") && !t.contains("panicked"),
        "{t}"
    );
}

fn new_run(dir: &Path, extra: &[&str]) -> std::process::Output {
    let args = [
        "train",
        "--data-dir",
        "data",
        "--device",
        "cpu",
        "--batch-size",
        "8",
        "--epochs",
        "1",
        "--no-export",
        "-q",
    ];
    vae_tch(&[&args[..], extra].concat(), dir)
}

#[test]
fn values_and_flags_that_cannot_work_are_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic(&tmp.path().join("data"), 16, 8);
    // Fits a u64, not a TOML integer: was an internal error.
    fails_with(
        &new_run(tmp.path(), &["--early-stopping", "10000000000000000000", "--out", "a"]),
        "train.early_stopping: 10000000000000000000 is more than the largest whole number a config holds",
    );
    fails_with(
        &new_run(tmp.path(), &["--lr-decay-every", "5", "--out", "b"]),
        "--lr-decay-every does nothing without a --lr-decay",
    );
    fails_with(
        &new_run(tmp.path(), &["--min-delta", "0.1", "--out", "c"]),
        "--min-delta does nothing without --early-stopping",
    );
    // With what they need, they train.
    let o = new_run(
        tmp.path(),
        &[
            "--lr-decay",
            "0.5",
            "--lr-decay-every",
            "5",
            "--early-stopping",
            "2",
            "--min-delta",
            "0.1",
            "--out",
            "d",
        ],
    );
    assert!(o.status.success(), "{}", text(&o));
    // A rate that --lr-decay grows until the loss diverges: the decay is named, not --lr.
    let o = vae_tch(
        &[
            "train",
            "--data-dir",
            "data",
            "--device",
            "cpu",
            "--batch-size",
            "8",
            "--epochs",
            "6",
            "--lr-decay",
            "1000",
            "--no-export",
            "-q",
            "--out",
            "e",
        ],
        tmp.path(),
    );
    fails_with(&o, "diverged); --lr-decay has raised the learning rate");
    assert!(
        text(&o).contains("try a --lr-decay below 1"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_checkpoint_changed_on_disk_or_holding_nan_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic(&tmp.path().join("data"), 16, 8);
    let o = new_run(tmp.path(), &["--out", "r"]);
    assert!(o.status.success(), "{}", text(&o));
    let weights = tmp.path().join("r/checkpoint/model.safetensors");
    let good = std::fs::read(&weights).unwrap();
    // 64 bytes flipped in the middle of the tensors: a valid file of other numbers.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&weights, &bad).unwrap();
    let o = vae_tch(&["eval", "r", "--k", "2"], tmp.path());
    fails_with(
        &o,
        "model.safetensors does not match its checksum in checksums.toml",
    );
    let o = vae_tch(
        &["train", "--resume", "r", "--epochs", "2", "--device", "cpu"],
        tmp.path(),
    );
    fails_with(&o, "does not match its checksum");
    // NaN weights (a checksum that matches them): evaluated to nothing, refused.
    std::fs::write(&weights, &good).unwrap();
    let named = tch::Tensor::read_safetensors(&weights).unwrap();
    let nan: Vec<(String, tch::Tensor)> = named
        .into_iter()
        .map(|(n, t)| {
            let t = if n == "decoder.fc.bias" {
                t.fill(f64::NAN)
            } else {
                t
            };
            (n, t)
        })
        .collect();
    tch::Tensor::write_safetensors(&nan, &weights).unwrap();
    let sum = vae_tch::util::fsutil::checksum(&std::fs::read(&weights).unwrap());
    let sums = tmp.path().join("r/checkpoint/checksums.toml");
    let text_sums = std::fs::read_to_string(&sums).unwrap();
    let line = text_sums
        .lines()
        .find(|l| l.starts_with("\"model.safetensors\""))
        .unwrap();
    std::fs::write(
        &sums,
        text_sums.replace(line, &format!("\"model.safetensors\" = \"{sum}\"")),
    )
    .unwrap();
    let o = vae_tch(&["eval", "r", "--k", "2"], tmp.path());
    fails_with(
        &o,
        "the checkpoint's weights are not all finite (decoder.fc.bias has",
    );
    // eval --json says what it evaluated.
    std::fs::write(&weights, &good).unwrap();
    std::fs::write(&sums, &text_sums).unwrap();
    let o = vae_tch(
        &["eval", "r", "--k", "2", "--json", "--seed", "5"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (j["split"].as_str(), j["checkpoint"].as_str()),
        (Some("test"), Some("last"))
    );
    assert_eq!(
        (j["epoch"].as_u64(), j["seed"].as_u64()),
        (Some(1), Some(5))
    );
}

#[test]
fn a_profile_onto_a_folder_is_refused_and_a_cpu_profile_logs_no_gpu_error() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic(&tmp.path().join("data"), 64, 8);
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    let bench = [
        "bench",
        "--device",
        "cpu",
        "--data-dir",
        "data",
        "--steps",
        "2",
        "--warm-up",
        "1",
        "--profile-steps",
        "2",
        "--profile",
    ];
    let o = vae_tch(&[&bench[..], &["empty"]].concat(), tmp.path());
    fails_with(
        &o,
        "--profile empty: a folder; give the file the Chrome trace goes to",
    );
    assert!(tmp.path().join("empty").is_dir(), "the folder was replaced");
    let o = vae_tch(&[&bench[..], &["trace.json"]].concat(), tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains("gpuGetDeviceCount"), "{}", text(&o));
}
