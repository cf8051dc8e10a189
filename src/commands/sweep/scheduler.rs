//! Which process trains which point of a sweep, and how: every point an ordinary, resumable
//! run folder (`points`), trained by the same job as `train` and finished by the same
//! `crate::finish`, one after another or stacked by groups (`group`); then `summary.csv`. Any number of processes (shards) may share one
//! sweep folder: each point is locked while it trains (crate::run::lock), a process trains its
//! own shard's points and then any point that no process holds and that is not done (so a point
//! that a dead shard left behind resumes when any shard runs again), and a finished point is
//! skipped. Nothing is shared but the folders, so no coordinator is needed.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::Device;

use super::group;
use super::points::{epochs_done, held, point_dir, status, Status, FAILED_FILE, POINTS_DIR};
use super::shard::Shard;
use super::spec::{Point, Sweep, SweepFile, SWEEP_FILE};
use super::summary::write_summary;
use crate::config::overrides::{differences, RESUMABLE_KEYS};
use crate::config::StackMode;
use crate::finish::{self, InMemory};
use crate::run::checkpoint::{self, CONFIG_FILE};
use crate::run::job::{self, Stacking, TrainJob};
use crate::run::lock::{LockError, RunLock};
use crate::train::Interrupted;
use crate::util::torch_failure::guard;

/// How a sweep runs, beside the sweep itself.
#[derive(Debug, Clone)]
pub struct SweepRun {
    pub out: PathBuf,
    pub device: Device,
    pub shard: Shard,
    pub quiet: bool,
    /// Write each point's export folder.
    pub export: bool,
    /// Train a group's points as one stacked model (`group`).
    pub stack: StackMode,
    /// The most models in one stack (the memory estimate may allow fewer).
    pub stack_max: usize,
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
    /// The points that failed here, by name, with their error.
    pub fn failed_here(&self) -> std::collections::HashMap<String, String> {
        self.failed.iter().cloned().collect()
    }

    /// What became of `point` (in `dir`): trained, held by another process, or failed (its
    /// `FAILED` file gets the error, and a warning says it).
    fn record(&mut self, point: &Point, dir: &Path, done: Result<()>) {
        match done {
            Ok(()) => self.trained.push(point.name.clone()),
            Err(e) if matches!(e.downcast_ref::<LockError>(), Some(LockError::Busy { .. })) => {
                self.busy.push(point.name.clone())
            }
            Err(e) => {
                let mut message = format!("{e:#}");
                if let Some(hint) = crate::util::errors::disk_full_hint(&e) {
                    message = format!("{message}; {hint}");
                }
                eprintln!("warning: sweep point {} failed: {message}", point.name);
                let path = dir.join(FAILED_FILE);
                if let Err(why) = crate::util::fsutil::write_atomic(&path, message.as_bytes()) {
                    eprintln!(
                        "warning: could not write {} ({why}): summary.csv marks the point failed from this process's record",
                        path.display()
                    );
                }
                self.failed.push((point.name.clone(), message));
            }
        }
    }
}

/// Checks that no existing point folder was trained with other settings than the sweep now asks
/// (only the keys a resumed run may change: `RESUMABLE_KEYS`), before anything trains.
fn check_existing(sweep: &Sweep, out: &Path) -> Result<()> {
    for p in &sweep.points {
        let dir = point_dir(out, p);
        let Ok(saved) = checkpoint::read_config(&dir) else {
            continue;
        };
        let changed: Vec<String> = differences(&saved, &p.config)
            .into_iter()
            .filter(|d| !RESUMABLE_KEYS.contains(&d.key.as_str()))
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

/// A sweep folder belongs to one sweep: `sweep` may continue the one in `out` (the same points,
/// differing at most in the keys a resumed run may change), or start an empty folder.
fn check_same_sweep(sweep: &Sweep, out: &Path) -> Result<()> {
    if !out.join(SWEEP_FILE).is_file() {
        return Ok(());
    }
    let (ran, file) = super::spec::load_ran_file(out)?;
    let from = file.from.unwrap_or_else(|| "an earlier sweep file".into());
    let theirs: std::collections::HashMap<&str, &Point> =
        ran.points.iter().map(|p| (p.name.as_str(), p)).collect();
    let mut why = None;
    if ran.points.len() != sweep.points.len() {
        why = Some(format!(
            "{} points against its {}",
            sweep.points.len(),
            ran.points.len()
        ));
    }
    for p in &sweep.points {
        if why.is_some() {
            break;
        }
        why = match theirs.get(p.name.as_str()) {
            None => Some(format!("the point {} that it does not have", p.name)),
            Some(q) => differences(&q.config, &p.config)
                .into_iter()
                .find(|d| !RESUMABLE_KEYS.contains(&d.key.as_str()))
                .map(|d| format!("the point {} with {d}", p.name)),
        };
    }
    match why {
        None => Ok(()),
        Some(why) => anyhow::bail!(
            "{} holds the sweep of {from} (its {SWEEP_FILE}); {} is another sweep: it gives {why}; use another --out",
            out.display(),
            sweep.path.display()
        ),
    }
}

/// The points (indices) that are this shard's own, trained before any other: round robin, or
/// by groups when the sweep trains stacked.
pub fn owned(sweep: &Sweep, opts: &SweepRun) -> Vec<usize> {
    if opts.stack.stacks(opts.device) {
        let configs: Vec<&crate::config::RunConfig> =
            sweep.points.iter().map(|p| &p.config).collect();
        let mut mine = opts.shard.owned_of_groups(&group::groups(&configs));
        mine.sort_unstable();
        mine
    } else {
        (0..sweep.points.len())
            .filter(|&i| opts.shard.owns(i))
            .collect()
    }
}

/// Trains the sweep's points that are this process's to train, then writes summary.csv.
pub fn run(sweep: &Sweep, file: &SweepFile, opts: &SweepRun) -> Result<Outcome> {
    let out = &opts.out;
    std::fs::create_dir_all(out.join(POINTS_DIR))
        .with_context(|| format!("creating the sweep folder {}", out.display()))?;
    {
        // Two sweeps started at once into one folder: the second waits here, then sees the
        // first's sweep.toml.
        let _turn = RunLock::wait_for(out, ".sweep-lock")?;
        check_same_sweep(sweep, out)?;
        check_existing(sweep, out)?;
        let sweep_file = out.join(SWEEP_FILE);
        crate::util::fsutil::write_atomic(&sweep_file, sweep.to_toml(file).as_bytes())
            .with_context(|| format!("writing {}", sweep_file.display()))?;
    }
    let mut outcome = Outcome::default();
    if opts.stack.stacks(opts.device) {
        run_stacked(sweep, opts, &mut outcome)?;
        write_summary(sweep, out, &outcome.failed_here())?;
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
        match need(&dir, point, helping, opts) {
            (Need::Nothing, Status::Running) => {
                outcome.busy.push(point.name.clone());
                continue;
            }
            (Need::Nothing, _) => continue,
            (Need::Finish | Need::Train, _) => {}
        }
        if !opts.quiet {
            eprintln!("sweep: point {}/{total}: {}", i + 1, point.name);
        }
        match train_point(point, &dir, opts) {
            Err(e) if e.downcast_ref::<Interrupted>().is_some() => return Err(e),
            done => outcome.record(point, &dir, done),
        }
    }
    write_summary(sweep, out, &outcome.failed_here())?;
    Ok(outcome)
}

/// What a point needs from this process: nothing, only what `crate::finish` writes, or
/// training. Another shard's failure is its own to retry; a done point whose figures, eval.json
/// or export are missing or of an older epoch (a kill came between them, or --epochs grew) is
/// finished again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Nothing,
    Finish,
    Train,
}

fn need(dir: &Path, point: &Point, helping: bool, opts: &SweepRun) -> (Need, Status) {
    let status = status(dir, point.config.train.epochs);
    let need = match status {
        Status::Done if finish::is_finished(dir, opts.export) => Need::Nothing,
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
    let configs: Vec<&crate::config::RunConfig> = sweep.points.iter().map(|p| &p.config).collect();
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
        let lower = format!(
            "lower --stack-max (it is {}) or the batch size (it is {})",
            opts.stack_max, points[0].config.train.batch_size
        );
        let while_ = format!("while training {} stacked points", points.len());
        match guard(&while_, &lower, || job::train_group(&jobs, Some(&stacking))) {
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

/// A point's figures, eval.json and export (after its training; from memory when it just
/// trained), recorded in `outcome`.
fn finish_point(
    point: &Point,
    dir: &Path,
    opts: &SweepRun,
    outcome: &mut Outcome,
    trained: Option<(&job::Finished, usize)>,
) {
    let done = RunLock::acquire(dir)
        .map_err(anyhow::Error::from)
        .and_then(|_lock| finish_locked(dir, opts, trained));
    outcome.record(point, dir, done);
}

/// `crate::finish` of a point whose lock the caller holds.
fn finish_locked(
    dir: &Path,
    opts: &SweepRun,
    trained: Option<(&job::Finished, usize)>,
) -> Result<()> {
    let in_memory = trained.map(|(done, j)| InMemory {
        model: &done.runs[j].model,
        test: &done.test,
        classes: &done.classes,
        epochs: done.runs[j].epochs,
    });
    finish::finish(dir, opts.device, opts.export, opts.quiet, in_memory)
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

/// One point: trained (or resumed) into `dir` by the same job as `train`, then finished.
fn train_point(point: &Point, dir: &Path, opts: &SweepRun) -> Result<()> {
    let _ = std::fs::remove_file(dir.join(FAILED_FILE));
    let job = point_job(point, dir, opts);
    let done = if epochs_done(dir) < point.config.train.epochs {
        let lower = format!(
            "lower the point's batch size (it is {})",
            point.config.train.batch_size
        );
        let while_ = format!("while training {}", dir.display());
        Some(guard(&while_, &lower, || job::train(&job))?)
    } else {
        None
    };
    // The figures and the export under the point's lock too: another process that finds the
    // point trained but not finished must not write the same export folder at the same time.
    let _lock = RunLock::acquire(dir)?;
    finish_locked(dir, opts, done.as_ref().map(|d| (d, 0)))
}
