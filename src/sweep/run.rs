//! `vae-tch sweep run`: every point an ordinary, resumable run folder under
//! `<sweep>/points/<name>/`, trained one after another by the same job as `train`, and a
//! `summary.csv` read back from the folders. Any number of processes (shards) may share one
//! sweep folder: each point is locked while it trains (crate::run::lock), a process trains its
//! own shard's points and then any point that no process holds and that is not done (so a point
//! that a dead shard left behind resumes when any shard runs again), and a finished point is
//! skipped. Nothing is shared but the folders, so no coordinator is needed.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;
use tch::Device;

use super::shard::Shard;
use super::spec::{value_text, Point, Sweep, SweepFile};
use crate::commands::train::finish;
use crate::config::overrides::differences;
use crate::interop::export;
use crate::run::checkpoint::{self, CONFIG_FILE, METRICS_FILE};
use crate::run::job::{self, TrainJob};
use crate::run::lock::{LockError, RunLock};
use crate::run::metrics;
use crate::train::Interrupted;

pub const SWEEP_FILE: &str = "sweep.toml";
pub const SUMMARY_FILE: &str = "summary.csv";
pub const POINTS_DIR: &str = "points";
/// Written into a point's folder when its training failed (the error), removed when it
/// trains again.
pub const FAILED_FILE: &str = "FAILED";

/// The config keys a point may change between two `sweep run`s and still resume.
const RESUMABLE: [&str; 6] = [
    "train.epochs",
    "train.step_form",
    "train.cuda_graph",
    "data.dir",
    "data.cache_dir",
    "data.stream",
];

/// How a sweep runs, beside the sweep itself.
#[derive(Debug, Clone)]
pub struct SweepRun {
    pub out: PathBuf,
    pub device: Device,
    pub shard: Shard,
    pub quiet: bool,
    /// Write each point's export folder.
    pub export: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Done,
    Running,
    Failed,
    Pending,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Done => "done",
            Status::Running => "running",
            Status::Failed => "failed",
            Status::Pending => "pending",
        })
    }
}

pub fn point_dir(out: &Path, point: &Point) -> PathBuf {
    out.join(POINTS_DIR).join(&point.name)
}

/// Epochs finished in a point's folder.
fn epochs_done(dir: &Path) -> usize {
    checkpoint::read_state(dir).map_or(0, |s| s.epoch)
}

/// Whether another process holds the point's lock (probing takes and drops it when free).
fn held(dir: &Path) -> bool {
    dir.is_dir() && matches!(RunLock::acquire(dir), Err(LockError::Busy { .. }))
}

/// A point's status on disk.
pub fn status(dir: &Path, epochs: usize) -> Status {
    if held(dir) {
        Status::Running
    } else if epochs_done(dir) >= epochs {
        Status::Done
    } else if dir.join(FAILED_FILE).is_file() {
        Status::Failed
    } else {
        Status::Pending
    }
}

/// What `train` writes after the last epoch: the figures and the export.
fn finished_extras(dir: &Path) -> bool {
    dir.join("loss.png").is_file() && export::default_dir(dir).join(export::VAE_FILE).is_file()
}

/// The outcome of one `sweep run` process.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Points this process trained (or finished).
    pub trained: Vec<String>,
    /// Points another process held.
    pub busy: Vec<String>,
    /// (point, error) of the points that failed here.
    pub failed: Vec<(String, String)>,
}

/// Checks that no existing point folder was trained with other settings than the sweep now asks
/// (only epochs and where the data are may change), before anything trains.
fn check_existing(sweep: &Sweep, out: &Path) -> Result<()> {
    for p in &sweep.points {
        let dir = point_dir(out, p);
        let Ok(saved) = checkpoint::read_config(&dir) else {
            continue;
        };
        let changed: Vec<String> = differences(&saved, &p.config)
            .into_iter()
            .filter(|d| !RESUMABLE.contains(&d.key.as_str()))
            .map(|d| d.to_string())
            .collect();
        if !changed.is_empty() {
            anyhow::bail!(
                "{}: this point was trained with other settings than the sweep gives it now ({}); use another --out, or remove the folder",
                dir.display(),
                changed.join("; ")
            );
        }
    }
    Ok(())
}

/// Trains the sweep's points that are this process's to train, then writes summary.csv.
pub fn run(sweep: &Sweep, file: &SweepFile, opts: &SweepRun) -> Result<Outcome> {
    let out = &opts.out;
    std::fs::create_dir_all(out.join(POINTS_DIR))
        .with_context(|| format!("creating the sweep folder {}", out.display()))?;
    check_existing(sweep, out)?;
    let sweep_file = out.join(SWEEP_FILE);
    crate::util::fsutil::write_atomic(&sweep_file, sweep.to_toml(file).as_bytes())
        .with_context(|| format!("writing {}", sweep_file.display()))?;
    // This shard's points first, then the rest (points left behind, or not yet started).
    let (mine, others): (Vec<(usize, &Point)>, Vec<(usize, &Point)>) = sweep
        .points
        .iter()
        .enumerate()
        .partition(|(i, _)| opts.shard.owns(*i));
    let mut outcome = Outcome::default();
    let total = sweep.points.len();
    for (helping, (i, point)) in mine
        .into_iter()
        .map(|p| (false, p))
        .chain(others.into_iter().map(|p| (true, p)))
    {
        let dir = point_dir(out, point);
        let epochs = point.config.train.epochs;
        match status(&dir, epochs) {
            // Trained, and its figures and export written (a kill can come between them).
            Status::Done if !opts.export || finished_extras(&dir) => continue,
            Status::Done => {}
            Status::Running => {
                outcome.busy.push(point.name.clone());
                continue;
            }
            // Another shard's failure is its own to retry.
            Status::Failed if helping => continue,
            Status::Failed | Status::Pending => {}
        }
        if !opts.quiet {
            eprintln!("sweep: point {}/{total}: {}", i + 1, point.name);
        }
        match train_point(point, &dir, opts) {
            Ok(()) => outcome.trained.push(point.name.clone()),
            Err(e) if e.downcast_ref::<Interrupted>().is_some() => return Err(e),
            Err(e) if matches!(e.downcast_ref::<LockError>(), Some(LockError::Busy { .. })) => {
                outcome.busy.push(point.name.clone())
            }
            Err(e) => {
                let message = format!("{e:#}");
                eprintln!("warning: sweep point {} failed: {message}", point.name);
                let _ = std::fs::write(dir.join(FAILED_FILE), &message);
                outcome.failed.push((point.name.clone(), message));
            }
        }
    }
    write_summary(sweep, out)?;
    Ok(outcome)
}

/// One point: trained (or resumed) into `dir` by the same job as `train`, then its figures and
/// export.
fn train_point(point: &Point, dir: &Path, opts: &SweepRun) -> Result<()> {
    let _ = std::fs::remove_file(dir.join(FAILED_FILE));
    let job = TrainJob {
        run: dir.to_path_buf(),
        config: point.config.clone(),
        resume: dir.join(CONFIG_FILE).is_file(),
        device: opts.device,
        quiet: opts.quiet,
        force_data: false,
    };
    if epochs_done(dir) < point.config.train.epochs {
        job::train(&job)?;
    }
    // The figures and the export under the point's lock too: another process that finds the
    // point trained but not finished must not write the same export folder at the same time.
    let _lock = RunLock::acquire(dir)?;
    if opts.export && finished_extras(dir) {
        return Ok(());
    }
    finish(&job, opts.export)
}

/// One row of summary.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub values: Vec<String>,
    pub status: Status,
    pub epochs_done: usize,
    pub epochs: usize,
    /// The last epoch's losses, when there is one.
    pub last: Option<metrics::EpochRow>,
    /// Seconds over all epochs (metrics.csv).
    pub seconds: f64,
}

/// The sweep's rows, read from the point folders as they are now.
pub fn rows(sweep: &Sweep, out: &Path) -> Vec<Row> {
    sweep
        .points
        .iter()
        .map(|p| {
            let dir = point_dir(out, p);
            let history = metrics::read(&dir.join(METRICS_FILE)).unwrap_or_default();
            Row {
                name: p.name.clone(),
                values: sweep
                    .keys
                    .iter()
                    .map(|k| {
                        p.values
                            .iter()
                            .find(|(key, _)| key == k)
                            .map_or(String::new(), |(_, v)| value_text(v))
                    })
                    .collect(),
                status: status(&dir, p.config.train.epochs),
                epochs_done: epochs_done(&dir),
                epochs: p.config.train.epochs,
                last: history.last().copied(),
                seconds: history.iter().map(|r| r.seconds).sum(),
            }
        })
        .collect()
}

/// `<sweep>/summary.csv`: one row per point with its values, status, epochs and final losses.
pub fn write_summary(sweep: &Sweep, out: &Path) -> Result<()> {
    let path = out.join(SUMMARY_FILE);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(sweep.keys.iter().cloned());
    header.extend(
        [
            "status",
            "epochs_done",
            "epochs",
            "train_loss",
            "train_r_loss",
            "train_kl_loss",
            "test_loss",
            "test_r_loss",
            "test_kl_loss",
            "seconds",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for r in rows(sweep, out) {
        let mut rec = vec![r.name.clone()];
        rec.extend(r.values.iter().cloned());
        rec.push(r.status.to_string());
        rec.push(r.epochs_done.to_string());
        rec.push(r.epochs.to_string());
        let l = r.last;
        for v in [
            l.map(|l| l.train_loss),
            l.map(|l| l.train_r_loss),
            l.map(|l| l.train_kl_loss),
            l.map(|l| l.test_loss),
            l.map(|l| l.test_r_loss),
            l.map(|l| l.test_kl_loss),
        ] {
            rec.push(v.map_or(String::new(), |v| format!("{v:.6}")));
        }
        rec.push(format!("{:.2}", r.seconds));
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::util::fsutil::write_atomic(&path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}
