//! The sweep faults a probe found (issue 24): a folder belongs to one sweep file; a stopped
//! sweep says one way on, its own command with every flag, and that command continues it
//! exactly; more epochs over a finished sweep refresh every point's figures, eval.json and
//! export; point names never clash silently; the report never hides a failure.
mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{text, vae_tch, write_synthetic};
use vae_tch::commands::sweep::spec;
use vae_tch::config::overrides::Overrides;

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

fn load(body: &str) -> Result<spec::Sweep, String> {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), "s.toml", body);
    spec::load(&tmp.path().join("s.toml"), &Overrides::default(), false)
        .map(|(s, _)| s)
        .map_err(|e| e.to_string())
}

const RUN: [&str; 6] = ["--data-dir", "data", "--device", "cpu", "--no-export", "-q"];

/// `sweep run FILE --out OUT` on the CPU, 1 epoch unless `extra` says otherwise.
fn sweep(dir: &Path, file: &str, out: &str, extra: &[&str]) -> std::process::Output {
    let epochs: &[&str] = if extra.contains(&"--epochs") {
        &[]
    } else {
        &["--epochs", "1"]
    };
    vae_tch(
        &[
            &["sweep", "run", file, "--out", out][..],
            &RUN,
            epochs,
            extra,
        ]
        .concat(),
        dir,
    )
}

fn small(dir: &Path) {
    write_synthetic(&dir.join("data"), 24, 8);
    let base = "[train]\nbatch_size = 8\nreconstruction_every = 0\n";
    write(
        dir,
        "a.toml",
        &format!("{base}[axes]\n\"train.seed\" = [1, 2]\n"),
    );
    write(
        dir,
        "b.toml",
        &format!("{base}[axes]\n\"optim.learning_rate\" = [0.001, 0.0005]\n"),
    );
}

#[test]
fn a_second_sweep_file_into_one_folder_is_refused_naming_both() {
    let tmp = tempfile::tempdir().unwrap();
    small(tmp.path());
    let o = sweep(tmp.path(), "a.toml", "one", &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = sweep(tmp.path(), "b.toml", "one", &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("one holds the sweep of a.toml") && t.contains("b.toml is another sweep"),
        "{t}"
    );
    // The same file again, or with more epochs, continues it.
    let o = sweep(tmp.path(), "a.toml", "one", &["--epochs", "2"]);
    assert!(o.status.success(), "{}", text(&o));
    // Started at once: one of the two trains, the other is refused (no mix of the two).
    let spawn = |file: &str| {
        Command::new(env!("CARGO_BIN_EXE_vae-tch"))
            .args(
                [
                    &["sweep", "run", file, "--out", "both", "--epochs", "1"][..],
                    &RUN,
                ]
                .concat(),
            )
            .current_dir(tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn("a.toml"), spawn("b.toml"));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let ok = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(ok, 1, "{}\n{}", text(&a), text(&b));
    let points: Vec<String> = std::fs::read_dir(tmp.path().join("both/points"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(points.len(), 2, "{points:?}");
    assert!(
        points.iter().all(|p| p.starts_with("seed="))
            || points.iter().all(|p| p.starts_with("learning_rate=")),
        "a mix of the two sweeps: {points:?}"
    );
}

#[test]
fn a_stopped_sweep_says_its_own_command_which_continues_it_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic(&tmp.path().join("data"), 400, 8);
    // The file says 50 epochs; the flags say 3.
    write(
        tmp.path(),
        "s.toml",
        "[train]\nepochs = 50\nbatch_size = 8\nreconstruction_every = 0\n[axes]\n\"train.seed\" = [1, 2]\n",
    );
    let flags = [
        "--epochs",
        "3",
        "--device",
        "cpu",
        "--data-dir",
        "data",
        "--train-limit",
        "300",
        "--no-export",
    ];
    let child = Command::new(env!("CARGO_BIN_EXE_vae-tch"))
        .args([&["sweep", "run", "s.toml", "--out", "st"][..], &flags].concat())
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stop it once the first point has finished an epoch.
    let metrics = tmp.path().join("st/points/seed=1/metrics.csv");
    let t0 = std::time::Instant::now();
    while !metrics.exists() && t0.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let o = child.wait_with_output().unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(130), "{t}");
    assert!(!t.contains("train --resume"), "two ways on: {t}");
    let commands: Vec<&str> = t
        .lines()
        .filter(|l| l.trim_start().starts_with("vae-tch "))
        .collect();
    assert_eq!(commands.len(), 1, "{t}");
    let command = commands[0].trim();
    for flag in [
        "--epochs 3",
        "--train-limit 300",
        "--device cpu",
        "--data-dir data",
        "--no-export",
        "--out st",
    ] {
        assert!(command.contains(flag), "{command} lacks {flag}");
    }
    // Pasted as printed, it finishes the sweep to the flags' 3 epochs, not the file's 50.
    let words: Vec<&str> = command.split_whitespace().collect();
    let o = vae_tch(&words[1..], tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    for seed in [1, 2] {
        let state = vae_tch::run::checkpoint::read_state(
            &tmp.path().join(format!("st/points/seed={seed}")),
        )
        .unwrap();
        assert_eq!(state.epoch, 3);
    }
}

#[test]
fn more_epochs_over_a_finished_sweep_refresh_each_points_figures_eval_and_export() {
    let tmp = tempfile::tempdir().unwrap();
    small(tmp.path());
    let args = [
        "sweep",
        "run",
        "a.toml",
        "--out",
        "e",
        "--data-dir",
        "data",
        "--device",
        "cpu",
        "-q",
    ];
    let o = vae_tch(&[&args[..], &["--epochs", "1"]].concat(), tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    let o = vae_tch(&[&args[..], &["--epochs", "2"]].concat(), tmp.path());
    assert!(o.status.success(), "{}", text(&o));
    for seed in [1, 2] {
        let point = tmp.path().join(format!("e/points/seed={seed}"));
        let eval: serde_json::Value =
            serde_json::from_slice(&std::fs::read(point.join("eval.json")).unwrap()).unwrap();
        assert_eq!(eval["epoch"], 2, "seed {seed}");
        let card = std::fs::read_to_string(point.join("export/README.md")).unwrap();
        assert!(
            card.contains(", 2 epochs)") || card.contains("2 epochs"),
            "{card:.300}"
        );
        assert!(card.contains("in nats (eval.json"), "{card:.300}");
        let finished = std::fs::read_to_string(point.join("finished.toml")).unwrap();
        assert!(finished.contains("epoch = 2"), "{finished}");
    }
}

#[test]
fn point_names_that_would_share_a_folder_are_refused_naming_both() {
    let err = load("[axes]\n\"train.r_loss_factor\" = [1000, 1000.0]\n").unwrap_err();
    assert!(
        err.contains("points/r_loss_factor=1000")
            && err.contains("train.r_loss_factor = 1000.0")
            && err.contains("so does the point train.r_loss_factor = 1000"),
        "{err}"
    );
    let err = load("[axes]\n\"data.dir\" = [\"a/b\", \"a_b\"]\n").unwrap_err();
    assert!(
        err.contains("points/dir=a_b") && err.contains("\"a/b\"") && err.contains("\"a_b\""),
        "{err}"
    );
    // Letters of any script are kept: é and ü are two points.
    let s = load("[axes]\n\"data.dir\" = [\"é\", \"ü\"]\n").unwrap();
    let names: Vec<&str> = s.points.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["dir=é", "dir=ü"]);
    let err = load("[[points]]\n").unwrap_err();
    assert!(err.contains("[[points]] number 1: an empty point"), "{err}");
    // Long values: a folder name of at most 120 bytes, distinct for distinct values.
    let long = |c: char| c.to_string().repeat(300);
    let s = load(&format!(
        "[axes]\n\"data.dir\" = [\"{}a\", \"{}b\"]\n",
        long('x'),
        long('x')
    ))
    .unwrap();
    assert!(
        s.points.iter().all(|p| p.name.len() <= 120),
        "{:?}",
        s.points[0].name
    );
    assert_ne!(s.points[0].name, s.points[1].name);
}

#[test]
fn the_report_shows_a_failure_and_its_reason_never_its_losses() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic(&tmp.path().join("data"), 24, 8);
    // A learning rate of 1e9 diverges in the first epoch; 5e-4 trains.
    write(
        tmp.path(),
        "s.toml",
        "[train]\nbatch_size = 8\nreconstruction_every = 0\n[axes]\n\"optim.learning_rate\" = [1e9, 0.0005]\n",
    );
    let o = sweep(tmp.path(), "s.toml", "f", &[]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    let failed_row = t
        .lines()
        .find(|l| l.starts_with("| learning_rate=1000000000"))
        .unwrap();
    assert!(
        failed_row.contains("| failed |") && failed_row.contains("diverged"),
        "{failed_row}"
    );
    assert!(
        failed_row.contains("| - | - | - |"),
        "a failed point shows numbers: {failed_row}"
    );
    // Garbage in a done point's metrics.csv, and negative seconds: said, never "done 2/1" or
    // "-0.0".
    let done = tmp.path().join("f/points/learning_rate=0.0005");
    std::fs::write(done.join("metrics.csv"), "epoch,oops\nnot,a number\n").unwrap();
    let o = vae_tch(&["sweep", "report", "f"], tmp.path());
    let t = text(&o);
    let row = t
        .lines()
        .find(|l| l.starts_with("| learning_rate=0.0005"))
        .unwrap();
    assert!(
        row.contains("| done | 1/1 |") && row.contains("metrics.csv unreadable"),
        "{row}"
    );
    assert!(!t.contains("-0.0"), "{t}");
}

#[test]
fn a_point_whose_failed_file_cannot_be_written_still_shows_failed_with_the_limit_named() {
    let tmp = tempfile::tempdir().unwrap();
    write_synthetic(&tmp.path().join("data"), 24, 8);
    write(
        tmp.path(),
        "s.toml",
        "[train]\nbatch_size = 8\nreconstruction_every = 0\n[axes]\n\"train.seed\" = [1]\n",
    );
    // A folder where the FAILED file goes: it cannot be written there.
    std::fs::create_dir_all(tmp.path().join("u/points/seed=1/FAILED")).unwrap();
    // Under a file-size limit the optimizer state (1.7 MB) cannot be written: the point fails
    // with EFBIG, which the reason names with its ulimit hint.
    let o = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -f 1200 && exec '{}' sweep run s.toml --out u --data-dir data --device cpu --epochs 1 --no-export -q",
            env!("CARGO_BIN_EXE_vae-tch")
        ))
        .current_dir(tmp.path())
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("ulimit -f"), "the reason lacks the limit: {t}");
    assert!(t.contains("could not write") && t.contains("FAILED"), "{t}");
    let row = t.lines().find(|l| l.starts_with("| seed=1")).unwrap();
    assert!(row.contains("| failed |"), "{row}");
    let summary = std::fs::read_to_string(tmp.path().join("u/summary.csv")).unwrap();
    assert!(
        summary.lines().nth(1).unwrap().contains(",failed,"),
        "{summary}"
    );
}
