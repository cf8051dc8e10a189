//! `vae-tch train` end to end: the run's config from a file (or the defaults) and the flags
//! given, the training job in its run folder, then what follows a run: the loss and latent
//! figures and the export folder. A sweep point reuses the same request.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::Device;

use crate::config::overrides::{differences, Difference, Overrides};
use crate::config::TrainConfig;
use crate::interop::export;
use crate::plot::run::{self as figures, RunData, Which};
use crate::plot::Format;
use crate::run::checkpoint;
use crate::run::job::{self, Finished, TrainJob};
use crate::run::metrics::EpochRow;

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
}

/// The config a request trains with, and the keys where the flags changed the base (the file,
/// or the defaults).
pub fn new_run_config(req: &TrainRequest) -> Result<(TrainConfig, Vec<Difference>)> {
    let base = match &req.config_file {
        Some(path) => load_config_file(path)?,
        None => TrainConfig::default(),
    };
    let mut c = base.clone();
    req.overrides.apply(&mut c);
    check_epochs(&c)?;
    c.validate()?;
    let changed = differences(&base, &c);
    Ok((c, changed))
}

/// A `--config` file, with the flag named in its errors.
pub fn load_config_file(path: &Path) -> Result<TrainConfig> {
    TrainConfig::load(path).with_context(|| format!("--config {}", path.display()))
}

fn check_epochs(c: &TrainConfig) -> Result<()> {
    if c.train.epochs == 0 {
        anyhow::bail!("--epochs 0: train at least one epoch");
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
            check_epochs(&config)?;
            // A run with no finished epoch resumes from the beginning (the job says so).
            let done = checkpoint::read_state(run).map_or(0, |s| s.epoch);
            if config.train.epochs < done {
                anyhow::bail!(
                    "--epochs {}: {} already has {done} epochs done; pass --epochs N with N above {done} to train on",
                    config.train.epochs,
                    run.display()
                );
            }
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

/// What a finished `train` left: the job and the epochs this call trained.
pub struct Outcome {
    pub job: TrainJob,
    pub rows: Vec<EpochRow>,
}

/// Trains the request's run, then draws its figures and writes its export.
pub fn run(req: &TrainRequest) -> Result<Outcome> {
    let (job, changed) = job(req)?;
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
    let mut done = job::train(&job)?;
    if !done.runs[0].rows.is_empty() {
        finish(&job, req.export, Some((&done, 0)))?;
    }
    let rows = std::mem::take(&mut done.runs[0].rows);
    Ok(Outcome { job, rows })
}

/// After training: the loss curves and the test set's latent means, then, with `export`, the
/// export folder (whose model card shows those figures). `trained` is run j of a training that
/// just ended (its model and test images in memory); without it, they are read from the run.
pub fn finish(job: &TrainJob, export: bool, trained: Option<(&Finished, usize)>) -> Result<()> {
    figures::plot_loss(&job.run, None, false, Format::Png)?;
    let src = RunData {
        run: &job.run,
        data_dir: None,
        device: job.device,
        checkpoint: crate::run::checkpoint::Which::Last,
    };
    match trained {
        Some((done, j)) => figures::latent_plot_of(
            &src,
            &done.runs[j].model,
            &done.test,
            &done.classes,
            Which::Test,
            None,
            Format::Png,
        )?,
        None => figures::latent_plot(
            &src,
            Which::Test,
            job.config.data.test_limit,
            None,
            Format::Png,
        )?,
    };
    if !job.quiet {
        eprintln!(
            "figures: {}, {}",
            job.run.join("loss.png").display(),
            job.run.join("latent.png").display()
        );
    }
    if export {
        let out = export::default_dir(&job.run);
        match trained {
            Some((done, j)) => {
                let run = &done.runs[j];
                export::export_loaded(&job.run, &out, &run.model, run.epochs)
            }
            None => export::export(&job.run, &out, job.device),
        }
        .with_context(|| format!("exporting {}", job.run.display()))?;
        if !job.quiet {
            eprintln!(
                "exported TorchScript, safetensors and a model card to {}",
                out.display()
            );
        }
    }
    Ok(())
}
