//! `vae-tch train` end to end: the run's config from a file (or the defaults) and the flags
//! given, the training job in its run folder (crate::run::job), then what every trained run gets
//! (crate::finish: the figures, eval.json and the export).
use std::path::{Path, PathBuf};

use anyhow::Result;
use tch::Device;

use crate::config::overrides::{differences, Difference, Overrides};
use crate::config::RunConfig;
use crate::finish::{self, InMemory};
use crate::run::checkpoint;
use crate::run::job::{self, TrainJob};
use crate::run::lock::RunLock;
use crate::util::torch_failure::guard;

/// Everything `train` was asked, typed.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// `--config FILE`: the base of a new run [default: the built-in defaults].
    pub config_file: Option<PathBuf>,
    /// The values given as flags; a resumed run takes only `overrides.run`.
    pub overrides: Overrides,
    /// The run folder of a new run [default: runs/<dataset>-<n>].
    pub out: Option<PathBuf>,
    /// Continue this run folder.
    pub resume: Option<PathBuf>,
    pub device: Device,
    pub quiet: bool,
    /// With `resume`: train on although the data differ from the run's.
    pub force_data: bool,
    /// Write `<run>/export` at the end.
    pub export: bool,
    /// Print the config it would train with, and train nothing.
    pub print_config: bool,
}

/// The config a request trains with, and the keys where the flags changed the base (the file,
/// or the defaults).
pub fn new_run_config(req: &TrainRequest) -> Result<(RunConfig, Vec<Difference>)> {
    let base = match &req.config_file {
        Some(path) => super::config_file(path)?,
        None => RunConfig::default(),
    };
    let mut c = base.clone();
    req.overrides.apply(&mut c);
    check_epochs(&c)?;
    refuse_idle_flags(&req.overrides, &c)?;
    c.validate()?;
    let changed = differences(&base, &c);
    Ok((c, changed))
}

/// A flag that does nothing without its companion, given alone where the config has no use for
/// it either, is refused, not ignored. (Given with its companion, even one that turns the
/// feature off, it is a setting the user spelled out.)
fn refuse_idle_flags(o: &Overrides, c: &RunConfig) -> Result<()> {
    if o.lr_decay_every.is_some() && o.lr_decay.is_none() && c.train.lr_decay == 1.0 {
        anyhow::bail!(
            "--lr-decay-every does nothing without a --lr-decay F other than 1 (the rate is multiplied by F every N epochs)"
        );
    }
    let stopping = o.run.early_stopping.is_some();
    if o.run.min_delta.is_some() && !stopping && c.train.early_stopping.is_none() {
        anyhow::bail!(
            "--min-delta does nothing without --early-stopping N (the least fall of the test loss that counts as an improvement)"
        );
    }
    Ok(())
}

/// A config's epochs: at least one to train (an imported run's config.toml says 0).
fn check_epochs(c: &RunConfig) -> Result<()> {
    if c.train.epochs == 0 {
        anyhow::bail!("train.epochs is 0: pass --epochs N to train N epochs");
    }
    Ok(())
}

/// The job of a request: a new run, or the resumed one with the flags it may change.
pub fn job(req: &TrainRequest) -> Result<(TrainJob, Vec<Difference>)> {
    let (run, config, changed) = match &req.resume {
        Some(run) => {
            let saved = checkpoint::read_config(run)?;
            let mut config = saved.clone();
            req.overrides.run.apply(&mut config);
            // A run with no finished epoch resumes from the beginning (the job says so).
            let done = checkpoint::read_state(run).map_or(0, |s| s.epoch);
            if config.train.epochs < done {
                anyhow::bail!(
                    "--epochs {}: {} already has {done} epochs done; pass --epochs N with N above {done} to train on",
                    config.train.epochs,
                    run.display()
                );
            }
            check_epochs(&config)?;
            config.validate()?;
            let changed = differences(&saved, &config);
            (run.clone(), config, changed)
        }
        None => {
            let (config, changed) = new_run_config(req)?;
            let run = match &req.out {
                Some(dir) => dir.clone(),
                None => checkpoint::new_run_dir(Path::new("runs"), config.data.dataset.name()),
            };
            (run, config, changed)
        }
    };
    let job = TrainJob {
        run,
        config,
        resume: req.resume.is_some(),
        device: req.device,
        quiet: req.quiet,
        force_data: req.force_data,
    };
    Ok((job, changed))
}

/// Trains the request's run, then finishes it (figures, eval.json, export); returns the line
/// printed at the end (or the config, with `print_config`).
pub fn run(req: &TrainRequest) -> Result<String> {
    let (job, changed) = job(req)?;
    if req.print_config {
        return Ok(job.config.to_toml());
    }
    if !req.quiet && !changed.is_empty() {
        let base = match (&req.resume, &req.config_file) {
            (Some(run), _) => run.join(checkpoint::CONFIG_FILE).display().to_string(),
            (None, Some(file)) => file.display().to_string(),
            (None, None) => "the defaults".to_string(),
        };
        eprintln!("config: flags over {base}:");
        for d in &changed {
            eprintln!("  {d}");
        }
    }
    let run = &job.run;
    let lower = format!("lower --batch-size (it is {})", job.config.train.batch_size);
    let done = guard(&format!("while training {}", run.display()), &lower, || {
        job::train(&job)
    })?;
    let trained = &done.runs[0];
    // Finished from memory when it just trained; from the folder when an earlier call trained
    // it but did not finish it (a kill during the export).
    if !trained.rows.is_empty() || !finish::is_finished(run, req.export) {
        let _lock = RunLock::acquire(run)?;
        let in_memory = (!trained.rows.is_empty()).then(|| InMemory {
            model: &trained.model,
            test: &done.test,
            classes: &done.classes,
            epochs: trained.epochs,
        });
        guard(
            &format!(
                "while finishing {} (figures, eval.json, export)",
                run.display()
            ),
            "free some memory, then `vae-tch train --resume` finishes it",
            || finish::finish(run, job.device, req.export, job.quiet, in_memory),
        )?;
    }
    Ok(match trained.rows.last() {
        Some(last) => format!(
            "{}: epoch {}: train loss {:.3} (r {:.3}, kl {:.3}), test loss {:.3} (r {:.3}, kl {:.3})\n",
            run.display(),
            last.epoch,
            last.train_loss,
            last.train_r_loss,
            last.train_kl_loss,
            last.test_loss,
            last.test_r_loss,
            last.test_kl_loss
        ),
        None => format!(
            "{}: already trained to {} epochs; raise --epochs to go on\n",
            run.display(),
            job.config.train.epochs
        ),
    })
}
