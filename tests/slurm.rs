//! The sbatch path of a sweep on a real one-node Slurm cluster (scripts/slurm/local-cluster.sh,
//! Debian's slurmctld, slurmd and munge): `sweep slurm --submit` on CPU, the checked-in script
//! with a sparse array, and a task warned before its time limit that stops and requeues itself.
//! Every point ends done with each epoch trained exactly once. Skips (saying why) where the
//! packages are missing or this is not root.
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Why this machine cannot run the cluster, if it cannot.
fn missing() -> Option<String> {
    for p in [
        "/usr/sbin/slurmctld",
        "/usr/sbin/slurmd",
        "/usr/sbin/munged",
        "/usr/bin/sbatch",
    ] {
        if !Path::new(p).exists() {
            return Some(format!(
                "no {p} (apt-get install --no-install-recommends slurmctld slurmd slurm-client munge)"
            ));
        }
    }
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root: slurmd starts jobs as their users".into());
    }
    None
}

/// A started cluster, stopped (by PID) when dropped.
struct Cluster {
    dir: PathBuf,
    conf: PathBuf,
}

impl Cluster {
    fn start(dir: &Path) -> Cluster {
        // A port of its own, so that a cluster someone else started is left alone.
        let port = 20_000 + (std::process::id() % 5_000) * 2;
        let o = Command::new(root().join("scripts/slurm/local-cluster.sh"))
            .arg("start")
            .env("VAE_TCH_SLURM_DIR", dir)
            .env("VAE_TCH_SLURM_PORT", port.to_string())
            .output()
            .unwrap();
        let c = Cluster {
            dir: dir.to_path_buf(),
            conf: dir.join("slurm.conf"),
        };
        assert!(
            o.status.success(),
            "the cluster did not start: {}",
            common::text(&o)
        );
        c
    }

    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }

    /// Waits until no task of `job` is queued or running.
    fn wait(&self, job: &str, secs: u64) {
        let start = Instant::now();
        loop {
            let o = self.cmd("squeue").args(["-h", "-j", job]).output().unwrap();
            if o.status.success() && o.stdout.iter().all(u8::is_ascii_whitespace) {
                return;
            }
            assert!(
                start.elapsed() < Duration::from_secs(secs),
                "job {job} still queued after {secs} s: {}",
                common::text(&o)
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(root().join("scripts/slurm/local-cluster.sh"))
            .arg("stop")
            .env("VAE_TCH_SLURM_DIR", &self.dir)
            .output();
    }
}

/// The job id in sbatch's "Submitted batch job N".
fn job_id(o: &Output) -> String {
    let out = common::text(o);
    assert!(o.status.success(), "{out}");
    out.split_whitespace()
        .skip_while(|w| *w != "job")
        .nth(1)
        .unwrap_or_else(|| panic!("no job id in {out}"))
        .to_string()
}

/// Every point of `sweep` done, each epoch 1..=epochs in its metrics.csv exactly once.
fn every_epoch_once(sweep: &Path, points: usize, epochs: usize) {
    let dirs: Vec<PathBuf> = std::fs::read_dir(sweep.join("points"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(dirs.len(), points, "{dirs:?}");
    for d in dirs {
        let m = std::fs::read_to_string(d.join("metrics.csv")).unwrap();
        let seen: Vec<usize> = m
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(seen, (1..=epochs).collect::<Vec<_>>(), "{}", d.display());
    }
    let summary = std::fs::read_to_string(sweep.join("summary.csv")).unwrap();
    assert_eq!(
        summary.lines().filter(|l| l.contains(",done,")).count(),
        points,
        "{summary}"
    );
}

fn logs(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            all += &std::fs::read_to_string(e.path()).unwrap();
        }
    }
    all
}

#[test]
fn sweeps_run_through_a_one_node_slurm_cluster() {
    if let Some(why) = missing() {
        eprintln!("skipped: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(&tmp.path().join("slurm"));
    let work = tmp.path();
    common::tiny_sweep(work);
    let bin = env!("CARGO_BIN_EXE_vae-tch");

    // 1. `sweep slurm --submit`: the script of this sweep, on CPU, 2 tasks at once.
    let o = cluster
        .cmd(bin)
        .current_dir(work)
        .args(["sweep", "slurm", "s.toml", "--array", "2", "--cpus", "1"])
        .args(["--submit", "--", "--data-dir", "data", "--epochs", "2"])
        .arg("--no-export")
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let job = job_id(&o);
    let script = std::fs::read_to_string(work.join("sweeps/s/slurm/sweep.sbatch")).unwrap();
    assert!(!script.contains("--gpus-per-task"), "{script}");
    cluster.wait(&job, 120);
    every_epoch_once(&work.join("sweeps/s"), 4, 2);
    let log = logs(&work.join("sweeps/s/slurm/logs"));
    for said in [
        "shard 0/2",
        "shard 1/2",
        "epoch 2/2: train",
        "vae-tch exit 0",
    ] {
        assert!(log.contains(said), "no {said:?} in the logs:\n{log}");
    }

    // 2. The checked-in script as pasted, with a sparse array (a retry of tasks 0 and 2).
    let o = cluster
        .cmd("sbatch")
        .current_dir(work)
        .args(["--array=0,2", "--cpus-per-task=1"])
        .arg(root().join("scripts/slurm/sweep.sbatch"))
        .args(["s.toml", "sparse", "--data-dir", "data", "--epochs", "1"])
        .arg("--no-export")
        .env("VAE_TCH", bin)
        .output()
        .unwrap();
    let job = job_id(&o);
    cluster.wait(&job, 120);
    every_epoch_once(&work.join("sparse"), 4, 1);
    let log = logs(work);
    assert_eq!(log.matches("vae-tch exit 0").count(), 2, "{log}");

    // 3. Slurm's warning before the time limit (--signal=B:USR1, sent here by hand): the task
    // stops at a step, keeps its epochs and requeues itself; the sweep still ends with every
    // epoch once.
    let o = cluster
        .cmd(bin)
        .current_dir(work)
        .args([
            "sweep", "slurm", "s.toml", "--out", "warned", "--array", "1",
        ])
        .args(["--cpus", "1", "--submit", "--", "--data-dir", "data"])
        .args(["--epochs", "40", "--no-export"])
        .output()
        .unwrap();
    let job = job_id(&o);
    let log_file = work.join(format!("warned/slurm/logs/{job}_0.log"));
    let start = Instant::now();
    while !std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("epoch 2/40")) {
        assert!(start.elapsed() < Duration::from_secs(60), "no epoch 2 yet");
        std::thread::sleep(Duration::from_millis(100));
    }
    let task = format!("{job}_0");
    let o = cluster
        .cmd("scancel")
        .args(["--signal=USR1", "--batch", &task])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::text(&o));
    let start = Instant::now();
    while !std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("requeueing")) {
        assert!(start.elapsed() < Duration::from_secs(60), "no requeue");
        std::thread::sleep(Duration::from_millis(100));
    }
    // Slurm holds a requeued job for about 2 minutes; let it start now.
    let start = Instant::now();
    loop {
        let o = cluster
            .cmd("scontrol")
            .args(["update", &format!("jobid={task}"), "StartTime=now"])
            .output()
            .unwrap();
        if o.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            common::text(&o)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    cluster.wait(&job, 300);
    every_epoch_once(&work.join("warned"), 4, 40);
    let log = std::fs::read_to_string(&log_file).unwrap();
    assert!(log.contains("stopped by SIGTERM"), "{log}");
    assert!(
        log.contains(", start 2,"),
        "the requeued start, appended: {log}"
    );
    assert!(log.trim_end().ends_with("vae-tch exit 0"), "{log}");
}
