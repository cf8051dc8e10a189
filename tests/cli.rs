//! The `vae-tch` binary: argument parsing, help, errors that name the flag or file, and a tiny
//! train + resume through the command line.
mod common;

use common::{text, vae_tch};

#[test]
fn help_explains_every_subcommand_and_train_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vae_tch(&["--help"], tmp.path());
    assert!(o.status.success());
    // The "Commands:" section itself, not words the quick-start text also has: every
    // subcommand, once, in order, each with a line that explains it.
    let t = text(&o);
    let section = t
        .split("Commands:\n")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .unwrap_or_else(|| panic!("no Commands: section in\n{t}"));
    let listed: Vec<(&str, &str)> = section
        .lines()
        .map(|l| {
            let l = l.trim_start();
            l.split_once(char::is_whitespace)
                .map_or((l, ""), |(name, what)| (name, what.trim()))
        })
        .collect();
    let names: Vec<&str> = listed.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "train",
            "summary",
            "export",
            "import-keras",
            "plot-loss",
            "latent-plot",
            "manifold",
            "reconstruct",
            "sample",
            "interpolate",
            "attributes",
            "arithmetic",
            "morph",
            "latent-hist",
            "eval",
            "serve",
            "bench",
            "info",
            "data",
            "sweep",
            "help",
        ],
        "{section}"
    );
    for (name, what) in &listed {
        assert!(what.len() > 10, "{name} has no explanation: {section}");
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
        (&["sweep", "slurm", "missing.toml"], "missing.toml"),
        (
            &["sweep", "slurm", "missing.toml", "--", "--epoch", "3"],
            "the flags after `--` are not `sweep run`'s",
        ),
        (&["sweep", "status", "."], "is not a sweep folder"),
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
    let rows = vae_tch::run::metrics::read(&run.join("metrics.csv")).unwrap();
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
    // Fewer epochs than done, or none, are errors that say what to pass.
    let o = vae_tch(&["train", "--resume", "run", "--epochs", "1"], tmp.path());
    assert!(!o.status.success());
    assert!(
        text(&o).contains("--epochs 1: run already has 2 epochs done"),
        "{}",
        text(&o)
    );
    // No epochs at all is a usage error naming the flag.
    let o = vae_tch(&["train", "--resume", "run", "--epochs", "0"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("'0' for '--epochs <EPOCHS>': 0: must be at least 1"),
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

#[test]
fn the_faces_preset_trains_on_an_rgb_folder_end_to_end() {
    // configs/faces-celeba.toml at 32x32 (a test config derived from it), on a folder of RGB
    // PNGs in two classes: train 2 epochs, export, and every figure, in colour.
    let tmp = tempfile::tempdir().unwrap();
    let faces = tmp.path().join("faces");
    for i in 0..40u32 {
        let class = faces.join(if i % 2 == 0 { "warm" } else { "cool" });
        std::fs::create_dir_all(&class).unwrap();
        let img = image::RgbImage::from_fn(37 + i % 5, 45, |x, y| {
            let v = ((x * 7 + y * 3 + i * 11) % 200) as u8;
            if i % 2 == 0 {
                image::Rgb([255, v, 40])
            } else {
                image::Rgb([30, v, 255])
            }
        });
        img.save(class.join(format!("{i:02}.png"))).unwrap();
    }
    let preset = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/faces-celeba.toml"
    ))
    .unwrap();
    let small = preset
        .replace("input_shape = [3, 128, 128]", "input_shape = [3, 32, 32]")
        .replace("latent_dim = 200", "latent_dim = 16");
    std::fs::write(tmp.path().join("faces32.toml"), small).unwrap();
    std::fs::write(faces.join("warm").join("broken.png"), b"not an image").unwrap();
    let o = vae_tch(
        &[
            "train",
            "--config",
            "faces32.toml",
            "--data-dir",
            "faces",
            "--device",
            "cpu",
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--out",
            "run",
            "--quiet",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    // A skipped file is a warning, which --quiet does not silence.
    assert!(
        text(&o).contains("warning: skipped 1 of 41 entries") && text(&o).contains("broken.png"),
        "{}",
        text(&o)
    );
    let run = tmp.path().join("run");
    let cfg = std::fs::read_to_string(run.join("config.toml")).unwrap();
    assert!(
        cfg.contains("dataset = \"folder\"") && cfg.contains("use_batch_norm = true"),
        "{cfg}"
    );
    assert_eq!(
        std::fs::read_to_string(run.join("metrics.csv"))
            .unwrap()
            .lines()
            .count(),
        3
    );
    let weights = tch::Tensor::read_safetensors(run.join("export/model.safetensors")).unwrap();
    assert!(weights.iter().any(|(k, _)| k == "decoder.bn3.running_var"));
    for cmd in [
        vec!["reconstruct", "run", "--n", "4"],
        vec!["sample", "run", "--n", "4"],
        vec![
            "interpolate",
            "run",
            "--from",
            "0",
            "--to",
            "1",
            "--steps",
            "3",
        ],
        vec!["manifold", "run", "--n", "3"],
        vec!["latent-plot", "run"],
    ] {
        let o = vae_tch(&cmd, tmp.path());
        assert!(o.status.success(), "{cmd:?}: {}", text(&o));
    }
    // The reconstructions are in colour: some pixel has unequal channels.
    let img = image::open(run.join("reconstructions.png"))
        .unwrap()
        .to_rgb8();
    assert!(img.pixels().any(|p| p[0] != p[1] || p[1] != p[2]));
    let legend = image::open(run.join("latent.png")).unwrap();
    assert!(legend.width() > 0);
}

#[test]
fn image_folder_flags_name_what_is_wrong() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vae_tch(
        &[
            "train",
            "--dataset",
            "folder",
            "--input-shape",
            "3,64",
            "--out",
            "r",
        ],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("'--input-shape <C,H,W>': 3,64: expected three whole numbers C,H,W"),
        "{}",
        text(&o)
    );
    let o = vae_tch(
        &[
            "train",
            "--dataset",
            "folder",
            "--data-dir",
            "nowhere",
            "--device",
            "cpu",
            "--out",
            "r",
        ],
        tmp.path(),
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("nowhere is not a folder"), "{}", text(&o));
    let o = vae_tch(&["data", "fetch", "folder"], tmp.path());
    assert!(!o.status.success());
    assert!(text(&o).contains("nothing to fetch"), "{}", text(&o));
    // MNIST-style data with a model of another input size is refused before any tensor is made.
    common::write_synthetic(&tmp.path().join("data"), 8, 4);
    let o = vae_tch(
        &[
            "train",
            "--data-dir",
            "data",
            "--input-shape",
            "3,28,28",
            "--device",
            "cpu",
            "--out",
            "r2",
        ],
        tmp.path(),
    );
    assert!(!o.status.success());
    assert!(
        text(&o).contains("the mnist data are [1, 28, 28]"),
        "{}",
        text(&o)
    );
}

#[test]
fn early_stopping_says_so_stays_resumable_and_best_feeds_export_and_figures() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 24, 8);
    let train = |extra: &[&str]| {
        let base = [
            "train",
            "--device",
            "cpu",
            "--data-dir",
            "data",
            "--no-export",
        ];
        vae_tch(&[&base[..], extra].concat(), tmp.path())
    };
    // With --min-delta huge no epoch after the first counts as better: patience 2 stops after
    // epoch 3 of 6.
    let o = train(&[
        "--batch-size",
        "8",
        "--reconstruction-every",
        "0",
        "--out",
        "run",
        "--epochs",
        "6",
        "--early-stopping",
        "2",
        "--min-delta",
        "1e9",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("run: early stopping after epoch 3"),
        "{}",
        text(&o)
    );
    let run = tmp.path().join("run");
    let rows = vae_tch::run::metrics::read(&run.join("metrics.csv")).unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        vae_tch::run::checkpoint::read_state(&run)
            .unwrap()
            .stopped_early
    );
    // Resuming as it is trains nothing and says why; with early stopping off it trains on.
    let o = train(&["--resume", "run", "--epochs", "6"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("early stopping ended this run after epoch 3")
            && text(&o).contains("--early-stopping 0"),
        "{}",
        text(&o)
    );
    let o = train(&["--resume", "run", "--epochs", "4", "--early-stopping", "0"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = vae_tch::run::metrics::read(&run.join("metrics.csv")).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.epoch).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    // best/ is the lowest test loss's checkpoint; export --best and the figures' --best use it.
    let best = rows
        .iter()
        .min_by(|a, b| a.test_loss.total_cmp(&b.test_loss))
        .unwrap()
        .epoch;
    let o = vae_tch(&["export", "run", "--best"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let card = std::fs::read_to_string(run.join("export-best/README.md")).unwrap();
    assert!(card.contains(&format!("{best} epoch")), "{card}");
    let o = vae_tch(
        &["latent-plot", "run", "--best", "--out", "best.png"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp.path().join("best.png").is_file());
    // A run without best/ names what is missing.
    std::fs::remove_dir_all(run.join("best")).unwrap();
    let o = vae_tch(&["export", "run", "--best"], tmp.path());
    assert!(
        !o.status.success() && text(&o).contains("no best checkpoint"),
        "{}",
        text(&o)
    );
}
