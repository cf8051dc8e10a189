//! `vae-tch sweep`: the sweep file (points, names, refusals that name the key), shards that
//! share one folder and agree with one process, a kill -9 and a rerun, and the report on a
//! partial sweep.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{text, vae_tch};
use vae_tch::commands::sweep::spec;
use vae_tch::config::overrides::Overrides;

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
            precision: Some(vae_tch::config::Precision::Bf16),
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
    // `sweep run --precision` reaches every point.
    assert!(s
        .points
        .iter()
        .all(|p| p.config.train.precision == vae_tch::config::Precision::Bf16));
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

use common::{tiny_sweep, SWEEP_RUN as RUN};

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
    shards_agree_with_one_process(&[]);
}

#[test]
fn stacked_shards_agree_with_one_stacked_process_and_points_resume_alone() {
    // Each shard trains its half of the one group as a stack of 2; the one process, a stack of
    // 4. Each point draws its noise as its row of its whole group's draw, so the numbers agree.
    let tmp = shards_agree_with_one_process(&["--stack", "on"]);
    let point = tmp.path().join("two/points/r_loss_factor=1000,seed=2");
    let cfg = vae_tch::run::checkpoint::read_config(&point).unwrap();
    // One data order for the group, recorded: the point trained alone follows it.
    assert_eq!(cfg.train.shuffle_seed, Some(1));
    // A stacked point's checkpoint is a solo run's: train resumes it alone.
    let o = vae_tch(
        &[
            "train",
            "--resume",
            point.to_str().unwrap(),
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--data-dir",
            "data",
            "-q",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let m = vae_tch::run::metrics::read(&point.join("metrics.csv")).unwrap();
    assert_eq!(m.iter().map(|r| r.epoch).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(m[2].test_loss.is_finite());
}

#[test]
fn groups_split_by_shape_and_shards_cut_them_only_for_balance() {
    use vae_tch::commands::sweep::group::{chunks, groups};
    use vae_tch::commands::sweep::shard::Shard;
    let mut cfgs = Vec::new();
    for (latent, seed, factor) in [(2, 1, 100.0), (2, 2, 1000.0), (16, 1, 100.0), (2, 3, 1.0)] {
        let mut c = vae_tch::config::RunConfig::default();
        c.model.latent_dim = latent;
        c.train.seed = seed;
        c.train.r_loss_factor = factor;
        c.optim.learning_rate = 1e-4 * seed as f64;
        cfgs.push(c);
    }
    let refs: Vec<_> = cfgs.iter().collect();
    let g = groups(&refs);
    assert_eq!(g, vec![vec![0, 1, 3], vec![2]]);
    // Another batch size is another group.
    cfgs[1].train.batch_size = 16;
    let refs: Vec<_> = cfgs.iter().collect();
    assert_eq!(groups(&refs).len(), 3);
    // Shards take consecutive runs of the groups' points: [0, 1] and [3, 2] for two.
    let shard = |i| Shard { index: i, count: 2 };
    assert_eq!(shard(0).owned_of_groups(&g), [0, 1]);
    assert_eq!(shard(1).owned_of_groups(&g), [3, 2]);
    let all: Vec<usize> = (0..3)
        .flat_map(|i| Shard { index: i, count: 3 }.owned_of_groups(&[vec![0, 1, 2, 3, 4, 5, 6]]))
        .collect();
    assert_eq!(all, [0, 1, 2, 3, 4, 5, 6]);
    assert_eq!(
        chunks(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 4),
        [vec![1, 2, 3, 4], vec![5, 6, 7], vec![8, 9, 10]]
    );
    // The memory estimate caps a stack, and never below one model.
    let seed = vae_tch::config::RunConfig::default();
    let each = vae_tch::commands::sweep::group::bytes_per_model(&seed);
    assert!(each > 1 << 20 && each < 1 << 30, "{each} bytes");
    assert_eq!(
        vae_tch::commands::sweep::group::max_stack(&seed, Some(each * 5 + 1), 64),
        5
    );
    assert_eq!(
        vae_tch::commands::sweep::group::max_stack(&seed, Some(1), 64),
        1
    );
    assert_eq!(
        vae_tch::commands::sweep::group::max_stack(&seed, None, 8),
        8
    );
}

/// Runs the tiny sweep once in one process and once as two shards started at once (with
/// `extra` flags), and checks they agree.
fn shards_agree_with_one_process(extra: &[&str]) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    let o = vae_tch(
        &[&RUN[..], &["--out", "one", "--epochs", "2"], extra].concat(),
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
                .args(extra)
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
    // The points' nats (eval.json): the negative ELBO above the IWAE bound, in every row.
    let mut csv = csv::Reader::from_path(tmp.path().join("one/summary.csv")).unwrap();
    let header = csv.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    for rec in csv.records() {
        let rec = rec.unwrap();
        let cell = |name: &str| -> f64 { rec[at(name)].parse().unwrap() };
        assert!(cell("neg_elbo_nats") > cell("iwae_nll_nats"), "{rec:?}");
    }
    let two = summary(&tmp.path().join("two"));
    if extra.is_empty() {
        assert_eq!(one, two);
    } else {
        // Stacks of other widths (4 models here, 2 per shard) run other float kernels: the
        // same numbers up to float rounding.
        assert_eq!(one.len(), two.len());
        for (a, b) in one.iter().zip(&two) {
            let (a, b): (Vec<&str>, Vec<&str>) = (a.split(',').collect(), b.split(',').collect());
            assert_eq!(a.len(), b.len());
            for (x, y) in a.iter().zip(&b) {
                match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => assert!(
                        (x - y).abs() <= 1e-5 * x.abs().max(1e-3),
                        "{x} against {y}:\n{one:?}\n{two:?}"
                    ),
                    _ => assert_eq!(x, y),
                }
            }
        }
    }
    // Every point folder is an ordinary run folder: the figure commands take it as it is.
    let point = tmp.path().join("two/points/r_loss_factor=100,seed=1");
    let o = vae_tch(
        &["latent-plot", point.to_str().unwrap(), "--out", "l.png"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    // The same command again trains nothing.
    let o = vae_tch(
        &[&RUN[..], &["--out", "two", "--epochs", "2"], extra].concat(),
        tmp.path(),
    );
    assert!(
        o.status.success() && !text(&o).contains(": point"),
        "{}",
        text(&o)
    );
    tmp
}

#[test]
fn a_killed_sweep_finishes_when_run_again_with_every_epoch_once() {
    killed_sweep_finishes(&[]);
}

#[test]
fn a_killed_stacked_sweep_finishes_when_run_again_with_every_epoch_once() {
    killed_sweep_finishes(&["--stack", "on"]);
}

fn killed_sweep_finishes(extra: &[&str]) {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_vae-tch"))
        .args(RUN)
        .args(["--out", "k", "--epochs", "3"])
        .args(extra)
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
        &[&RUN[..], &["--out", "k", "--epochs", "3"], extra].concat(),
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

#[test]
fn a_group_bigger_than_a_stack_is_split_evenly_and_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    // 4 points of one shape, at most 3 to a stack: stacks of 2 and 2.
    let o = vae_tch(
        &[
            &RUN[..],
            &[
                "--out",
                "s",
                "--epochs",
                "1",
                "--stack",
                "on",
                "--stack-max",
                "3",
            ],
        ]
        .concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("4 points of one shape") && text(&o).contains("stacks of at most 3"),
        "{}",
        text(&o)
    );
    let rows = summary(&tmp.path().join("s"));
    assert!(
        rows[1..].iter().all(|l| l.contains(",done,1,1,")),
        "{rows:?}"
    );
}

/// The losses of a metrics.csv, without its seconds (timings differ between runs).
fn losses(run: &Path) -> Vec<String> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            cols[..7].join(",")
        })
        .collect()
}

#[test]
fn the_reports_best_point_reproduces_bit_for_bit_and_the_params_figure_is_drawn() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    let o = vae_tch(
        &[&RUN[..], &["--out", "b", "--epochs", "2"]].concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    // The printed table ends with the best point and its command, as report.md has them.
    let printed = String::from_utf8_lossy(&o.stdout).to_string();
    let report = std::fs::read_to_string(tmp.path().join("b/report.md")).unwrap();
    let command = report
        .split("## Best point")
        .nth(1)
        .and_then(|s| s.split("```sh\n").nth(1))
        .and_then(|s| s.lines().next())
        .unwrap_or_else(|| panic!("no best point's command in report.md:\n{report}"))
        .to_string();
    assert!(printed.contains(&command), "{printed}");
    assert!(tmp.path().join("b/compare-params.png").is_file());
    assert!(report.contains("![compare-params.png](compare-params.png)"));
    // The best point is the one of lowest -ELBO among the points' eval.json.
    let mut csv = csv::Reader::from_path(tmp.path().join("b/summary.csv")).unwrap();
    let col = csv
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == "neg_elbo_nats")
        .unwrap();
    let (best, _) = csv
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].to_string(), r[col].parse::<f64>().unwrap())
        })
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .unwrap();
    assert!(
        command.contains(&format!("b/points/{best}/config.toml")),
        "{command}"
    );
    // Its command, as pasted (vae-tch is the binary), trains the same losses bit for bit.
    assert!(!command.contains('\''), "{command}");
    let words: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(words[..2], ["vae-tch", "train"]);
    let o = Command::new(env!("CARGO_BIN_EXE_vae-tch"))
        .args(&words[1..])
        .arg("--quiet")
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let again = tmp.path().join(format!("runs/best-{best}"));
    let point = tmp.path().join(format!("b/points/{best}"));
    assert_eq!(losses(&again), losses(&point));
    assert_eq!(losses(&again).len(), 3);
}

#[test]
fn sweep_status_tells_done_running_and_pending_points() {
    let tmp = tempfile::tempdir().unwrap();
    tiny_sweep(tmp.path());
    let o = vae_tch(
        &[&RUN[..], &["--out", "st", "--epochs", "1"]].concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    // Asked for 3 epochs now: one point held by a trainer (this test holds its lock), the
    // others pending.
    let (sweep, _) = spec::load(&tmp.path().join("s.toml"), &Overrides::default(), false).unwrap();
    let held = tmp.path().join("st/points").join(&sweep.points[0].name);
    let text_of = |o: std::process::Output| String::from_utf8_lossy(&o.stdout).to_string();
    let done = text_of(vae_tch(&["sweep", "status", "st"], tmp.path()));
    assert!(done.contains("4 points: 4 done, 0 running"), "{done}");
    assert!(done.contains("nothing left to train"), "{done}");
    let toml = tmp.path().join("st/sweep.toml");
    let more = std::fs::read_to_string(&toml)
        .unwrap()
        .replace("epochs = 1", "epochs = 3");
    std::fs::write(&toml, more).unwrap();
    let _lock = vae_tch::run::lock::RunLock::acquire(&held).unwrap();
    let now = text_of(vae_tch(&["sweep", "status", "st"], tmp.path()));
    assert!(
        now.contains("4 points: 0 done, 1 running, 3 pending, 0 failed"),
        "{now}"
    );
    assert!(
        now.contains(" left at the running points' speed (1 running at once)"),
        "{now}"
    );
}
