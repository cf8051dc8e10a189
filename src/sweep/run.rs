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

use super::group;
use super::shard::Shard;
use super::spec::{value_text, Point, Sweep, SweepFile};
use crate::commands::train::finish;
use crate::config::overrides::differences;
use crate::config::StackMode;
use crate::interop::export;
use crate::run::checkpoint::{self, CONFIG_FILE, METRICS_FILE};
use crate::run::job::{self, Stacking, TrainJob};
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
const RESUMABLE: [&str; 9] = [
    "train.epochs",
    "train.early_stopping",
    "train.min_delta",
    "train.step_form",
    "train.cuda_graph",
    "train.precision",
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
    /// Train a group's points as one stacked model (crate::sweep::group).
    pub stack: StackMode,
    /// The most models in one stack (the memory estimate may allow fewer).
    pub stack_max: usize,
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

/// A point's status on disk. A point whose epochs are all done (or that early stopping ended)
/// is done, even while a process holds it to draw its figures (or another process's status
/// probe holds it for a moment).
pub fn status(dir: &Path, epochs: usize) -> Status {
    let stopped = checkpoint::read_state(dir).is_ok_and(|s| s.stopped_early);
    if stopped || epochs_done(dir) >= epochs {
        Status::Done
    } else if held(dir) {
        Status::Running
    } else if dir.join(FAILED_FILE).is_file() {
        Status::Failed
    } else {
        Status::Pending
    }
}

/// A point's evaluation in nats (crate::eval), for summary.csv: on the first
/// `EVAL_IMAGES` test images with `EVAL_K` samples each, seed 0.
pub const EVAL_FILE: &str = "eval.json";
pub const EVAL_IMAGES: i64 = 1000;
pub const EVAL_K: i64 = 20;

/// What `train` writes after the last epoch (the figures, and with `export` the export).
fn drawn(dir: &Path, export: bool) -> bool {
    dir.join("loss.png").is_file()
        && (!export || export::default_dir(dir).join(export::VAE_FILE).is_file())
}

/// What a finished point has beside its checkpoint: the figures, the export and eval.json.
fn finished_extras(dir: &Path, export: bool) -> bool {
    drawn(dir, export) && dir.join(EVAL_FILE).is_file()
}

/// The figures, the export and eval.json that `dir` lacks, from the model in memory when it
/// just trained (`trained`), else from the run folder. Call it under the point's lock.
fn finish_extras(
    job: &TrainJob,
    export: bool,
    trained: Option<(&job::Finished, usize)>,
) -> Result<()> {
    let dir = &job.run;
    if !drawn(dir, export) {
        finish(job, export, trained)?;
    }
    if dir.join(EVAL_FILE).is_file() {
        return Ok(());
    }
    let on_disk;
    let (model, images) = match trained {
        Some((done, j)) => (&done.runs[j].model, done.test.images.shallow_clone()),
        None => {
            on_disk = checkpoint::load_model(dir, job.device)?;
            let (split, _) = crate::data::open_split(
                &on_disk.config,
                &on_disk.config.data.dir(),
                crate::data::Which::Test,
            )?;
            let images = split.limit(on_disk.config.data.test_limit).images;
            (&on_disk, images)
        }
    };
    let n = images.size()[0].min(EVAL_IMAGES);
    tch::manual_seed(0);
    let report = crate::eval::evaluate(
        &model.vae,
        &images.narrow(0, 0, n),
        model.config.train.r_loss_factor,
        EVAL_K,
        crate::eval::Samples::Drawn,
        job.device,
    );
    let path = dir.join(EVAL_FILE);
    crate::util::fsutil::write_atomic(&path, serde_json::to_string_pretty(&report)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
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

impl Outcome {
    /// What became of `point` (in `dir`): trained, held by another process, or failed (its
    /// `FAILED` file gets the error, and a warning says it).
    fn record(&mut self, point: &Point, dir: &Path, done: Result<()>) {
        match done {
            Ok(()) => self.trained.push(point.name.clone()),
            Err(e) if matches!(e.downcast_ref::<LockError>(), Some(LockError::Busy { .. })) => {
                self.busy.push(point.name.clone())
            }
            Err(e) => {
                let message = format!("{e:#}");
                eprintln!("warning: sweep point {} failed: {message}", point.name);
                let _ = std::fs::write(dir.join(FAILED_FILE), &message);
                self.failed.push((point.name.clone(), message));
            }
        }
    }
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
    let mut outcome = Outcome::default();
    if opts.stack.stacks(opts.device) {
        run_stacked(sweep, opts, &mut outcome)?;
        write_summary(sweep, out)?;
        return Ok(outcome);
    }
    // This shard's points first, then the rest (points left behind, or not yet started).
    type Numbered<'a> = Vec<(usize, &'a Point)>;
    let (mine, others): (Numbered, Numbered) = sweep
        .points
        .iter()
        .enumerate()
        .partition(|(i, _)| opts.shard.owns(*i));
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
            Status::Done if finished_extras(&dir, opts.export) => continue,
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
            Err(e) if e.downcast_ref::<Interrupted>().is_some() => return Err(e),
            done => outcome.record(point, &dir, done),
        }
    }
    write_summary(sweep, out)?;
    Ok(outcome)
}

/// What a point needs from this process: nothing, only its figures and export, or training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Finish,
    Train,
}

fn need(dir: &Path, point: &Point, helping: bool, opts: &SweepRun) -> (Need, Status) {
    let status = status(dir, point.config.train.epochs);
    let need = match status {
        Status::Done if finished_extras(dir, opts.export) => Need::Nothing,
        Status::Done => Need::Finish,
        Status::Running => Need::Nothing,
        Status::Failed if helping => Need::Nothing,
        Status::Failed | Status::Pending => Need::Train,
    };
    (need, status)
}

/// The stacked sweep: per group, this shard's points first (`Shard::owned_of_groups`), then
/// any other that no process holds; the points to train that stand at the same epoch train as
/// stacks of at most the memory estimate's size, each point drawing its noise as its row of its
/// whole group's.
fn run_stacked(sweep: &Sweep, opts: &SweepRun, outcome: &mut Outcome) -> Result<()> {
    let out = &opts.out;
    let configs: Vec<&crate::config::TrainConfig> =
        sweep.points.iter().map(|p| &p.config).collect();
    let groups = group::groups(&configs);
    let mine: std::collections::HashSet<usize> =
        opts.shard.owned_of_groups(&groups).into_iter().collect();
    let budget = group::memory_budget(opts.device);
    let total = sweep.points.len();
    for helping in [false, true] {
        for g in &groups {
            let first = &sweep.points[g[0]].config;
            let max = group::max_stack(first, budget, opts.stack_max);
            // Points to train, by the epoch they stand at.
            let mut by_epoch: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
            for &i in g.iter().filter(|i| mine.contains(i) != helping) {
                let point = &sweep.points[i];
                let dir = point_dir(out, point);
                match need(&dir, point, helping, opts) {
                    (Need::Nothing, Status::Running) => outcome.busy.push(point.name.clone()),
                    (Need::Nothing, _) => {}
                    (Need::Finish, _) => finish_point(point, &dir, opts, outcome, None),
                    (Need::Train, _) => by_epoch.entry(epochs_done(&dir)).or_default().push(i),
                }
            }
            for (_, ready) in by_epoch {
                // Said even with --quiet: it decides how the sweep trains.
                if ready.len() > max {
                    eprintln!(
                        "sweep: {} points of one shape; about {} MB each, so stacks of at most {max} (--stack-max {})",
                        ready.len(),
                        group::bytes_per_model(first) >> 20,
                        opts.stack_max
                    );
                }
                for chunk in group::chunks(&ready, max) {
                    train_stack(sweep, g, chunk, total, opts, outcome)?;
                }
            }
        }
    }
    Ok(())
}

/// Trains `chunk` (indices of points of group `g`) as one stack, then finishes each point. A
/// point that another process took meanwhile is left to it and the rest tried again.
fn train_stack(
    sweep: &Sweep,
    g: &[usize],
    mut chunk: Vec<usize>,
    total: usize,
    opts: &SweepRun,
    outcome: &mut Outcome,
) -> Result<()> {
    let out = &opts.out;
    while !chunk.is_empty() {
        let points: Vec<&Point> = chunk.iter().map(|&i| &sweep.points[i]).collect();
        if !opts.quiet {
            let names: Vec<String> = chunk
                .iter()
                .map(|&i| format!("{}/{total}: {}", i + 1, sweep.points[i].name))
                .collect();
            eprintln!(
                "sweep: {} stacked: point {}",
                points.len(),
                names.join(", point ")
            );
        }
        let jobs: Vec<TrainJob> = points
            .iter()
            .map(|p| {
                let dir = point_dir(out, p);
                let _ = std::fs::remove_file(dir.join(FAILED_FILE));
                point_job(p, &dir, opts)
            })
            .collect();
        let stacking = Stacking {
            pool: g.len() as i64,
            rows: chunk
                .iter()
                .map(|i| g.iter().position(|j| j == i).expect("a group's point") as i64)
                .collect(),
        };
        match job::train_group(&jobs, Some(&stacking)) {
            Ok(done) => {
                for (j, (p, job)) in points.iter().zip(&jobs).enumerate() {
                    finish_point(p, &job.run, opts, outcome, Some((&done, j)));
                }
                return Ok(());
            }
            Err(e) if e.downcast_ref::<Interrupted>().is_some() => return Err(e),
            Err(e) if matches!(e.downcast_ref::<LockError>(), Some(LockError::Busy { .. })) => {
                // Leave the taken points to their process; try the others again.
                let before = chunk.len();
                chunk.retain(|&i| {
                    let p = &sweep.points[i];
                    let held = held(&point_dir(out, p));
                    if held {
                        outcome.busy.push(p.name.clone());
                    }
                    !held
                });
                if chunk.len() == before {
                    return Err(e);
                }
            }
            Err(e) => {
                let message = format!("{e:#}");
                for p in &points {
                    outcome.record(p, &point_dir(out, p), Err(anyhow::anyhow!("{message}")));
                }
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A point's figures and export (after its training; from memory when it just trained),
/// recorded in `outcome`.
fn finish_point(
    point: &Point,
    dir: &Path,
    opts: &SweepRun,
    outcome: &mut Outcome,
    trained: Option<(&job::Finished, usize)>,
) {
    let job = point_job(point, dir, opts);
    let done = RunLock::acquire(dir)
        .map_err(anyhow::Error::from)
        .and_then(|_lock| finish_extras(&job, opts.export, trained));
    outcome.record(point, dir, done);
}

/// The job that trains (or resumes) `point` in `dir`.
fn point_job(point: &Point, dir: &Path, opts: &SweepRun) -> TrainJob {
    TrainJob {
        run: dir.to_path_buf(),
        config: point.config.clone(),
        resume: dir.join(CONFIG_FILE).is_file(),
        device: opts.device,
        quiet: opts.quiet,
        force_data: false,
    }
}

/// One point: trained (or resumed) into `dir` by the same job as `train`, then its figures and
/// export.
fn train_point(point: &Point, dir: &Path, opts: &SweepRun) -> Result<()> {
    let _ = std::fs::remove_file(dir.join(FAILED_FILE));
    let job = point_job(point, dir, opts);
    let done = if epochs_done(dir) < point.config.train.epochs {
        Some(job::train(&job)?)
    } else {
        None
    };
    // The figures and the export under the point's lock too: another process that finds the
    // point trained but not finished must not write the same export folder at the same time.
    let _lock = RunLock::acquire(dir)?;
    finish_extras(&job, opts.export, done.as_ref().map(|d| (d, 0)))
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
    /// The negative ELBO and the IWAE bound in nats per image (eval.json), when written.
    pub neg_elbo_nats: Option<f64>,
    pub iwae_nll_nats: Option<f64>,
}

/// (negative ELBO, IWAE bound) of a point's eval.json.
fn read_eval(dir: &Path) -> (Option<f64>, Option<f64>) {
    let Some(v) = std::fs::read(dir.join(EVAL_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return (None, None);
    };
    (v["neg_elbo_nats"].as_f64(), v["iwae_nll_nats"].as_f64())
}

/// The sweep's rows, read from the point folders as they are now.
pub fn rows(sweep: &Sweep, out: &Path) -> Vec<Row> {
    sweep
        .points
        .iter()
        .map(|p| {
            let dir = point_dir(out, p);
            let history = metrics::read(&dir.join(METRICS_FILE)).unwrap_or_default();
            let (neg_elbo_nats, iwae_nll_nats) = read_eval(&dir);
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
                neg_elbo_nats,
                iwae_nll_nats,
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
            "neg_elbo_nats",
            "iwae_nll_nats",
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
            r.neg_elbo_nats,
            r.iwae_nll_nats,
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
