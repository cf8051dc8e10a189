//! The `vae-tch` binary: argument parsing, help, errors that name the flag or file, and a tiny
//! train + resume through the command line.
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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn help_explains_every_subcommand_and_train_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vae_tch(&["--help"], tmp.path());
    assert!(o.status.success());
    for sub in [
        "train",
        "summary",
        "data",
        "export",
        "import-keras",
        "plot-loss",
        "latent-plot",
        "manifold",
        "reconstruct",
        "sample",
        "interpolate",
    ] {
        assert!(text(&o).contains(sub), "{}", text(&o));
    }
    let o = vae_tch(&["train", "--help"], tmp.path());
    let t = text(&o);
    for flag in [
        "--dataset",
        "--data-dir",
        "--device",
        "--epochs",
        "--batch-size",
        "--lr",
        "--r-loss-factor",
        "--latent-dim",
        "--seed",
        "--train-limit",
        "--test-limit",
        "--out",
        "--resume",
    ] {
        assert!(t.contains(flag), "train --help lacks {flag}:\n{t}");
    }
    assert!(
        t.contains("fashion-mnist")
            && t.contains("[default: 32]")
            && t.contains("[default: 0.0005]"),
        "{t}"
    );
}

#[test]
fn summary_prints_keras_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vae_tch(&["summary"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("105,220") && t.contains("102,017") && t.contains("207,237"),
        "{t}"
    );
    let o = vae_tch(&["summary", "--latent-dim", "3"], tmp.path());
    // mu and log_var: 3136 * 3 + 3 each; the decoder's Dense 3 * 3136 + 3136.
    assert!(
        text(&o).contains("9,411") && text(&o).contains("12,544"),
        "{}",
        text(&o)
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["train", "--device", "tpu"], "--device tpu"),
        (
            &["train", "--batch-size", "0", "--device", "cpu"],
            "train.batch_size",
        ),
        (
            &["train", "--lr=-1", "--device", "cpu"],
            "optim.learning_rate",
        ),
        (
            &["train", "--resume", "nowhere", "--device", "cpu"],
            "nowhere is not a vae-tch run folder",
        ),
        (
            &[
                "train",
                "--device",
                "cpu",
                "--data-dir",
                "empty",
                "--out",
                "r",
            ],
            "vae-tch data fetch mnist",
        ),
        (
            &["train", "--config", "missing.toml", "--device", "cpu"],
            "missing.toml",
        ),
        (&["train", "--dataset", "cifar"], "cifar"),
    ];
    for (args, want) in cases {
        let o = vae_tch(args, tmp.path());
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(text(&o).contains(want), "{args:?}: {}", text(&o));
        assert!(!text(&o).contains("panicked"), "{args:?}: {}", text(&o));
    }
    // Hyperparameters cannot change under --resume (clap usage error, exit 2).
    let o = vae_tch(&["train", "--resume", "r", "--lr", "0.1"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot be used with"), "{}", text(&o));
    if !tch::Cuda::is_available() {
        let o = vae_tch(&["train", "--device", "cuda"], tmp.path());
        assert!(
            !o.status.success() && text(&o).contains("CUDA is not available"),
            "{}",
            text(&o)
        );
    }
}

#[test]
fn train_and_resume_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 24, 8);
    let common_args = ["--device", "cpu", "--quiet"];
    let o = vae_tch(
        &[
            &[
                "train",
                "--data-dir",
                "data",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--out",
                "run",
                "--latent-dim",
                "3",
            ][..],
            &common_args,
        ]
        .concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("epoch 1: train loss"),
        "{}",
        text(&o)
    );
    let run = tmp.path().join("run");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("latent_dim = 3") && cfg.contains("batch_size = 8"),
        "{cfg}"
    );
    assert!(run.join("reconstructions-epoch-0001.png").is_file());
    for f in [
        "encoder.pt",
        "decoder.pt",
        "vae.pt",
        "model.safetensors",
        "config.toml",
        "reference_io.safetensors",
    ] {
        assert!(
            run.join("export").join(f).is_file(),
            "train did not export {f}"
        );
    }

    let o = vae_tch(
        &[
            &["train", "--resume", "run", "--epochs", "2"][..],
            &common_args,
        ]
        .concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let rows = vae_tch::metrics::read(&run.join("metrics.csv")).unwrap();
    assert_eq!(rows.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2]);
    // The saved config is the new total, and rebuilds the latent-3 model.
    assert!(std::fs::read_to_string(run.join("config.toml"))
        .unwrap()
        .contains("epochs = 2"));
    // A figure command through the CLI prints the file it wrote.
    let o = vae_tch(
        &["manifold", "run", "--n", "4", "--out", "m.png"],
        tmp.path(),
    );
    assert!(
        o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "m.png",
        "{}",
        text(&o)
    );
    let o = vae_tch(&["interpolate", "run", "--from", "0"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "--to is required: {}", text(&o));
    let o = vae_tch(&["summary", "--run", "run"], tmp.path());
    assert!(text(&o).contains("(None, 3)"), "{}", text(&o));
    // Nothing left to do is said, not an error.
    let o = vae_tch(
        &[&["train", "--resume", "run"][..], &common_args].concat(),
        tmp.path(),
    );
    assert!(
        o.status.success() && text(&o).contains("already trained to 2 epochs"),
        "{}",
        text(&o)
    );
}

#[test]
fn info_names_the_versions_devices_and_data_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let out = vae_tch(&["info"], tmp.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for key in [
        "vae-tch",
        "tch ",
        "libtorch",
        "CUDA",
        "cuDNN",
        "CUDA graphs",
        "devices",
        "data mnist",
    ] {
        assert!(text.contains(key), "no {key:?} in:\n{text}");
    }
    // The libtorch it loaded is the pinned wheel's (tch 0.24 is built for torch 2.11.0).
    assert!(text.contains("2.11.0"), "{text}");
    assert!(text.contains("cpu ("), "{text}");
}
