//! What a user types is what runs: every `train` flag that maps to a config key wins over a
//! `--config` file even when it equals the default; the run names what the flags changed; a
//! flag the chosen mode ignores is refused; messages use the flags' words, not Rust's.
mod common;

use common::{text, vae_tch};
use vae_tch::config::RunConfig;

/// A config file where every key a flag maps to differs from the default.
const FILE: &str = r#"
[model]
input_shape = [1, 56, 56]
latent_dim = 4

[optim]
learning_rate = 0.001

[data]
dataset = "fashion-mnist"
dir = "file-data"
train_limit = 100
test_limit = 100
resize = "crop"
test_fraction = 0.2
cache_dir = "file-cache"

[train]
epochs = 3
batch_size = 64
r_loss_factor = 10000.0
seed = 7
reconstruction_every = 5
cuda_graph = "off"
precision = "bf16"
lr_decay = 0.5
lr_decay_every = 3
early_stopping = 4
min_delta = 0.5
"#;

/// `train --print-config` with `args` over c.toml.
fn effective(args: &[&str]) -> RunConfig {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("c.toml"), FILE).unwrap();
    let o = vae_tch(
        &[&["train", "--config", "c.toml", "--print-config"][..], args].concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    toml::from_str(&String::from_utf8_lossy(&o.stdout)).expect("--print-config prints TOML")
}

#[test]
fn every_flag_given_equal_to_its_default_wins_over_the_config_file() {
    let file: RunConfig = toml::from_str(FILE).unwrap();
    assert_eq!(effective(&[]), file, "no flag: the file as it is");
    let d = RunConfig::default();
    let c = effective(&[
        "--dataset",
        "mnist",
        "--batch-size",
        "32",
        "--lr",
        "0.0005",
        "--r-loss-factor",
        "1000",
        "--latent-dim",
        "2",
        "--seed",
        "42",
        "--reconstruction-every",
        "20",
        "--input-shape",
        "1,28,28",
        "--resize",
        "squash",
        "--test-fraction",
        "0.1",
        "--epochs",
        "200",
        "--cuda-graph",
        "auto",
        "--precision",
        "tf32",
        "--train-limit",
        "50",
        "--test-limit",
        "60",
        "--data-dir",
        "flag-data",
        "--cache-dir",
        "flag-cache",
        "--lr-decay",
        "1",
        "--lr-decay-every",
        "1",
        "--min-delta",
        "0",
        "--early-stopping",
        "0",
    ]);
    assert_eq!(c.data.dataset, d.data.dataset);
    assert_eq!(c.train.batch_size, d.train.batch_size);
    assert_eq!(c.optim.learning_rate, d.optim.learning_rate);
    assert_eq!(c.train.r_loss_factor, d.train.r_loss_factor);
    assert_eq!(c.model.latent_dim, d.model.latent_dim);
    assert_eq!(c.train.seed, d.train.seed);
    assert_eq!(c.train.reconstruction_every, d.train.reconstruction_every);
    assert_eq!(c.model.input_shape, d.model.input_shape);
    assert_eq!(c.data.resize, d.data.resize);
    assert_eq!(c.data.test_fraction, d.data.test_fraction);
    assert_eq!(c.train.epochs, d.train.epochs);
    assert_eq!(c.train.cuda_graph, d.train.cuda_graph);
    assert_eq!(c.train.precision, d.train.precision);
    assert_eq!(c.data.train_limit, Some(50));
    assert_eq!(c.data.test_limit, Some(60));
    assert_eq!(c.data.dir.as_deref(), Some("flag-data".as_ref()));
    assert_eq!(c.data.cache_dir.as_deref(), Some("flag-cache".as_ref()));
    assert_eq!(c.train.lr_decay, d.train.lr_decay);
    assert_eq!(c.train.lr_decay_every, d.train.lr_decay_every);
    assert_eq!(c.train.min_delta, d.train.min_delta);
    // --early-stopping 0 turns the file's early stopping off.
    assert_eq!(c.train.early_stopping, None);
    // What no flag names stays the file's.
    assert_eq!(c.data.split_seed, file.data.split_seed);
}

#[test]
fn a_run_names_what_the_flags_changed_and_the_quiet_one_still_warns() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 16, 8);
    std::fs::write(
        tmp.path().join("c.toml"),
        "[train]\nr_loss_factor = 10000.0\nbatch_size = 64\nreconstruction_every = 0\n",
    )
    .unwrap();
    let o = vae_tch(
        &[
            "train",
            "--config",
            "c.toml",
            "--r-loss-factor",
            "1000",
            "--batch-size",
            "8",
            "--data-dir",
            "data",
            "--epochs",
            "1",
            "--device",
            "cpu",
            "--out",
            "run",
            "--no-export",
        ],
        tmp.path(),
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(t.contains("config: flags over c.toml"), "{t}");
    assert!(
        t.contains("train.r_loss_factor = 1000.0 (was 10000.0)"),
        "{t}"
    );
    assert!(t.contains("train.batch_size = 8 (was 64)"), "{t}");
    let saved = std::fs::read_to_string(tmp.path().join("run/config.toml")).unwrap();
    assert!(
        saved.contains("r_loss_factor = 1000.0") && saved.contains("batch_size = 8"),
        "{saved}"
    );
    // Resumed with --force on other data: a warning, printed under --quiet too.
    common::write_synthetic(&tmp.path().join("other"), 12, 8);
    let o = vae_tch(
        &[
            "train",
            "--resume",
            "run",
            "--epochs",
            "2",
            "--data-dir",
            "other",
            "--force",
            "--device",
            "cpu",
            "--quiet",
            "--no-export",
        ],
        tmp.path(),
    );
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("warning: training on anyway (--force)") && !t.contains("epoch 2/2"),
        "{t}"
    );
}

#[test]
fn a_flag_the_mode_ignores_is_refused_and_messages_use_the_flags_words() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 16, 8, 1, 2);
    let run = run.to_str().unwrap();
    // --range shapes only the linear grid: a usage error (exit 2).
    let o = vae_tch(&["manifold", run, "--range", "2"], tmp.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--range applies to --spacing linear only"),
        "{}",
        text(&o)
    );
    let o = vae_tch(
        &[
            "manifold",
            run,
            "--range",
            "2",
            "--spacing",
            "linear",
            "--n",
            "3",
            "--out",
            "m.png",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    // No Rust Debug forms: the device as --device spells it.
    let o = vae_tch(
        &[
            "train",
            "--device",
            "cpu",
            "--cuda-graph",
            "on",
            "--data-dir",
            tmp.path().join("data").to_str().unwrap(),
            "--epochs",
            "1",
            "--out",
            "r2",
        ],
        tmp.path(),
    );
    let t = text(&o);
    assert!(t.contains("(got --device cpu)"), "{t}");
    assert!(!t.contains("Cpu"), "{t}");
}
