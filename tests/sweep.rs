//! `vae-tch sweep`: the sweep file (points, names, refusals that name the key), shards that
//! share one folder and agree with one process, a kill -9 and a rerun, and the report on a
//! partial sweep.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{text, vae_tch};
use vae_tch::config::overrides::Overrides;
use vae_tch::sweep::spec;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn load(text: &str, force: bool) -> Result<spec::Sweep, String> {
    let tmp = tempfile::tempdir().unwrap();
    let p = write(tmp.path(), "s.toml", text);
    spec::load(&p, &Overrides::default(), force)
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
}

#[test]
fn points_are_the_product_of_the_axes_with_readable_names() {
    let tmp = tempfile::tempdir().unwrap();
    write(
        tmp.path(),
        "base.toml",
        "[train]\nepochs = 7\nbatch_size = 16\n",
    );
    let p = write(
        tmp.path(),
        "s.toml",
        r#"base = "base.toml"
[model]
latent_dim = 3
[axes]
"train.r_loss_factor" = [100, 1000.5]
"model.latent_dim" = [2, 16]
[[points]]
"train.r_loss_factor" = 5
"data.resize" = "crop"
"#,
    );
    // --train-limit, and --epochs given at its default (200) against a base file's 7: the flag wins.
    let over = Overrides {
        train_limit: Some(50),
        run: vae_tch::config::overrides::RunOverrides {
            epochs: Some(200),
            ..Default::default()
        },
        ..Overrides::default()
    };
    let (s, _) = spec::load(&p, &over, false).unwrap();
    let names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "r_loss_factor=100,latent_dim=2",
            "r_loss_factor=100,latent_dim=16",
            "r_loss_factor=1000.5,latent_dim=2",
            "r_loss_factor=1000.5,latent_dim=16",
            "r_loss_factor=5,resize=crop",
        ]
    );
    assert_eq!(
        s.keys,
        ["train.r_loss_factor", "model.latent_dim", "data.resize"]
    );
    let c = &s.points[1].config;
    assert_eq!((c.train.r_loss_factor, c.model.latent_dim), (100.0, 16));
    // The base file, then the inline tables, then the point, then the flags.
    assert_eq!((c.train.epochs, c.train.batch_size), (200, 16));
    assert_eq!(s.base.train.epochs, 200);
    assert_eq!(s.points[4].config.model.latent_dim, 3);
    assert_eq!(c.data.train_limit, Some(50));
}

#[test]
fn bad_sweep_files_are_refused_naming_the_key() {
    let cases = [
        (
            "[axes]\n\"train.r_loss_fator\" = [1, 2]\n",
            "unknown field `r_loss_fator`",
        ),
        (
            "[axes]\n\"train.batch_size\" = [\"big\"]\n",
            "train.batch_size",
        ),
        (
            "[axes]\n\"train.seed\" = []\n",
            "axes.\"train.seed\": an empty axis",
        ),
        ("[axes]\nseed = [1]\n", "a sweep key is table.key"),
        (
            "[axes]\n\"train.seed\" = 3\n",
            "an axis is a list of values",
        ),
        ("[axes]\n\"model.latent_dim\" = [0]\n", "model.latent_dim"),
        ("[axis]\n\"train.seed\" = [1]\n", "unknown field `axis`"),
        ("", "no points"),
    ];
    for (text, want) in cases {
        let err = load(text, false).unwrap_err();
        assert!(err.contains(want), "{text:?}: {err}");
    }
    // 101 x 100 points: refused, unless forced.
    let big = format!(
        "[axes]\n\"train.seed\" = {:?}\n\"train.r_loss_factor\" = {:?}\n",
        (0..101).collect::<Vec<_>>(),
        (1..=100).map(|v| v as f64).collect::<Vec<_>>()
    );
    assert!(load(&big, false)
        .unwrap_err()
        .contains("10100 points, more than 10000"));
    assert_eq!(load(&big, true).unwrap().points.len(), 10_100);
}

/// A sweep of 4 points over tiny synthetic data in `dir`.
fn tiny_sweep(dir: &Path) {
    common::write_synthetic(&dir.join("data"), 24, 8);
    write(
        dir,
        "s.toml",
        "[train]\nbatch_size = 8\nreconstruction_every = 0\n[axes]\n\"train.r_loss_factor\" = [100, 1000]\n\"train.seed\" = [1, 2]\n",
    );
}

const RUN: [&str; 9] = [
    "sweep",
    "run",
    "s.toml",
    "--data-dir",
    "data",
    "--device",
    "cpu",
    "--no-export",
    "-q",
];

/// summary.csv without its seconds column (timings differ between runs).
fn summary(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("summary.csv"))
        .unwrap()
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string())
        .collect()
}

#[test]
fn two_shards_at_once_give_the_points_and_summary_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    let o = vae_tch(
        &[&RUN[..], &["--out", "one", "--epochs", "2"]].concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let shards: Vec<_> = (0..2)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_vae-tch"))
                .args(RUN)
                .args([
                    "--out",
                    "two",
                    "--epochs",
                    "2",
                    "--shard",
                    &format!("{i}/2"),
                ])
                .current_dir(tmp.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in shards {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let one = summary(&tmp.path().join("one"));
    assert_eq!(one.len(), 5, "{one:?}");
    assert!(one[1..].iter().all(|l| l.contains(",done,2,2,")), "{one:?}");
    assert_eq!(one, summary(&tmp.path().join("two")));
    // Every point folder is an ordinary run folder: the figure commands take it as it is.
    let point = tmp.path().join("two/points/r_loss_factor=100,seed=1");
    let o = vae_tch(
        &["latent-plot", point.to_str().unwrap(), "--out", "l.png"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    // The same command again trains nothing.
    let o = vae_tch(
        &[&RUN[..], &["--out", "two", "--epochs", "2"]].concat(),
        tmp.path(),
    );
    assert!(
        o.status.success() && !text(&o).contains("sweep: point"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_killed_sweep_finishes_when_run_again_with_every_epoch_once() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vae-tch"))
        .args(RUN)
        .args(["--out", "k", "--epochs", "3"])
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Into the second point or so (a point's epoch takes well under a second here).
    std::thread::sleep(std::time::Duration::from_millis(1500));
    child.kill().unwrap();
    child.wait().unwrap();
    // The report works on the partial sweep.
    let o = vae_tch(&["sweep", "report", "k"], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp.path().join("k/report.md").is_file());
    let o = vae_tch(
        &[&RUN[..], &["--out", "k", "--epochs", "3"]].concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let rows = summary(&tmp.path().join("k"));
    assert!(
        rows[1..].iter().all(|l| l.contains(",done,3,3,")),
        "{rows:?}"
    );
    for entry in std::fs::read_dir(tmp.path().join("k/points")).unwrap() {
        let m = vae_tch::run::metrics::read(&entry.unwrap().path().join("metrics.csv")).unwrap();
        assert_eq!(m.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2, 3]);
    }
    for f in [
        "compare-loss.png",
        "compare-latent.png",
        "compare-samples.png",
    ] {
        assert!(tmp.path().join("k").join(f).is_file(), "{f}");
    }
}

#[test]
fn the_slurm_example_runs_an_array_of_two_tasks_into_one_folder() {
    // scripts/slurm/sweep.sbatch as Slurm would start it: two array tasks at once, told their
    // index only by the environment.
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/sweep.sbatch");
    let tasks: Vec<_> = (3..5)
        .map(|id| {
            Command::new("bash")
                .arg(&script)
                .args([
                    "s.toml",
                    "arr",
                    "--data-dir",
                    "data",
                    "--epochs",
                    "1",
                    "--no-export",
                ])
                .env("SLURM_SUBMIT_DIR", tmp.path())
                .env("SLURM_ARRAY_TASK_ID", id.to_string())
                .env("SLURM_ARRAY_TASK_MIN", "3")
                .env("SLURM_ARRAY_TASK_COUNT", "2")
                .env("DEVICE", "cpu")
                .env("VAE_TCH", env!("CARGO_BIN_EXE_vae-tch"))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for t in tasks {
        let o = t.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
    let rows = summary(&tmp.path().join("arr"));
    assert_eq!(rows.len(), 5);
    assert!(
        rows[1..].iter().all(|l| l.contains(",done,1,1,")),
        "{rows:?}"
    );
}
