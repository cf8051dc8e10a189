//! A training run in its folder, as orchestration: take the lock and read where the run stands,
//! load and check the data, build (or restore) the models and Adam, make the step, then drive
//! `crate::train::fit` with one recorder per run folder (crate::run::recorder), and hand the
//! trained models on. A sweep's group of runs of one shape trains the same way as one stacked
//! model (`train_group`), each run folder getting what it would have got alone.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use tch::{Device, Tensor};

use crate::config::{CudaGraphMode, RunConfig};
use crate::data::{self, batch, Split};
use crate::model::stack::Noise;
use crate::run::checkpoint::{self, TrainState, CONFIG_FILE};
use crate::run::data_identity::{self, DataIdentity};
use crate::run::lock::RunLock;
use crate::run::metrics::EpochRow;
use crate::run::recorder::{Recorder, Recorders};
use crate::train::models::{self, Form};
use crate::train::step::{StepData, TrainStep};
use crate::train::{fit, layout_for, Schedule};

/// How many test images the reconstruction PNGs show.
const RECONSTRUCTION_IMAGES: i64 = 10;

/// What to train and where.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The run folder: created for a new run, read for a resumed one.
    pub run: PathBuf,
    pub config: RunConfig,
    /// Continue from the run's checkpoint (config.epochs is the new total).
    pub resume: bool,
    pub device: Device,
    /// No progress bars and no per-epoch lines.
    pub quiet: bool,
    /// Resume even when the data differ from the run's (data.toml).
    pub force_data: bool,
}

/// What a run ends with, in memory, for its figures and export: nothing is read back.
pub struct Trained {
    /// The rows this call logged.
    pub rows: Vec<EpochRow>,
    /// A copy of the trained weights (and the config that ran), in the plain layout.
    pub model: crate::model::Loaded,
    /// Epochs done.
    pub epochs: usize,
}

/// A group's runs and the test split they were evaluated on.
pub struct Finished {
    pub runs: Vec<Trained>,
    pub test: Split,
    /// The data set's class names, by label.
    pub classes: Vec<String>,
}

/// Trains `job` to `config.train.epochs` epochs.
pub fn train(job: &TrainJob) -> Result<Finished> {
    train_group(std::slice::from_ref(job), None)
}

/// How a group's models draw their noise when stacked (crate::model::stack::Noise): model j
/// takes row `rows[j]` of a draw for `pool` models.
#[derive(Debug, Clone)]
pub struct Stacking {
    pub pool: i64,
    pub rows: Vec<i64>,
}

/// A job's run folder made ready: locked, its state read, checked against a resumed run.
struct Prepared {
    _lock: RunLock,
    state: TrainState,
    resumed: bool,
}

fn prepare(job: &TrainJob) -> Result<Prepared> {
    job.config.validate()?;
    let run = &job.run;
    std::fs::create_dir_all(run)
        .with_context(|| format!("creating the run folder {}", run.display()))?;
    // One trainer per run folder; held until the training returns (or the process ends).
    let lock = RunLock::acquire(run)?;
    let has_epoch = checkpoint::read_state(run).is_ok();
    let resumed = job.resume && has_epoch;
    let state = if resumed {
        checkpoint::read_state(run)?
    } else {
        if !job.resume && has_epoch {
            bail!(
                "{} already holds a run: pass --resume {} to continue it, or another --out",
                run.display(),
                run.display()
            );
        }
        if run.join(CONFIG_FILE).exists() {
            // A run stopped before its first epoch ended: nothing to keep, start it again.
            eprintln!(
                "warning: {}: no finished epoch to resume; starting the run from the beginning",
                run.display()
            );
        }
        TrainState::at(0, 0, job.config.train.data_seed())
    };
    Ok(Prepared {
        _lock: lock,
        state,
        resumed,
    })
}

/// What every job of a group must share to train as one: the data, the device, the batch
/// size, the epochs and where each run stands (they differ only in what the stack carries per
/// model: seeds, loss weights, Adam's hyperparameters).
fn check_group(jobs: &[TrainJob], prepared: &[Prepared]) -> Result<()> {
    let (first, p0) = (&jobs[0], &prepared[0]);
    for (job, p) in jobs.iter().zip(prepared).skip(1) {
        let (a, b) = (&first.config, &job.config);
        let same = a.data == b.data
            && a.model == b.model
            && a.train.batch_size == b.train.batch_size
            && a.train.epochs == b.train.epochs
            && a.train.data_seed() == b.train.data_seed()
            && job.device == first.device
            && p.state.epoch == p0.state.epoch
            && p.state.step == p0.state.step;
        if !same {
            bail!(
                "{} and {} cannot train as one stack: their model, data, batch size, epochs, data order or progress differ",
                first.run.display(),
                job.run.display()
            );
        }
    }
    Ok(())
}

/// Trains `jobs` to their `config.train.epochs` epochs; returns each job's rows logged by this
/// call and its model. With `stacking`, the jobs (of one shape, on the same data and device, at
/// the same epoch: a sweep's group) train as one stacked model, each run folder getting its own
/// config, metrics, checkpoint and reconstructions as if it had trained alone; without it,
/// `jobs` is one job, trained alone in the layout fastest on its device.
pub fn train_group(jobs: &[TrainJob], stacking: Option<&Stacking>) -> Result<Finished> {
    let new: Vec<bool> = jobs.iter().map(|j| !j.run.exists()).collect();
    let trained = train_prepared(jobs, stacking);
    if trained.is_err() {
        // A run folder this call made and then wrote nothing into (the data were missing,
        // say) goes again: a failed start leaves no empty run behind.
        for (job, _) in jobs.iter().zip(new).filter(|(_, new)| *new) {
            let only_lock = std::fs::read_dir(&job.run).is_ok_and(|entries| {
                entries
                    .flatten()
                    .all(|e| e.file_name() == crate::run::lock::LOCK_FILE)
            });
            if only_lock {
                let _ = std::fs::remove_dir_all(&job.run);
            }
        }
    }
    trained
}

fn train_prepared(jobs: &[TrainJob], stacking: Option<&Stacking>) -> Result<Finished> {
    assert!(
        stacking.is_some() || jobs.len() == 1,
        "several jobs train as a stack"
    );
    let prepared = jobs.iter().map(prepare).collect::<Result<Vec<_>>>()?;
    check_group(jobs, &prepared)?;
    let (job, start) = (&jobs[0], prepared[0].state.clone());
    let cfg = &job.config;
    let data = data::open_training(cfg, job.quiet)?;
    // Nothing of a run is rewritten before these checks: a typo in --data-dir changes nothing.
    let identity = DataIdentity::of(cfg, &data);
    for (job, _) in jobs.iter().zip(&prepared).filter(|(_, p)| p.resumed) {
        match data_identity::check(&job.run, &data.dir, &identity) {
            Err(e) if job.force_data => eprintln!("warning: training on anyway (--force): {e}"),
            other => other?,
        }
    }
    // Bytes on the device (a quarter of floats); each batch becomes x / 255 in the step. On the
    // CPU an image folder's bytes stay in its memory-mapped cache; so do they with
    // `data.stream`, and each batch is streamed to the device.
    let images_at = if cfg.data.stream {
        Device::Cpu
    } else {
        job.device
    };
    let train_x = data.train.images.to_device(images_at);
    let test_x = data.test.images.to_device(images_at);
    let n = data.train.len();
    let bs = cfg.train.batch_size as i64;
    // Graph-safe on CUDA: Adam's step factors live on the device.
    let device_steps = job
        .device
        .is_cuda()
        .then(|| batch::ranges(n, bs).count() as i64);
    let saved = jobs
        .iter()
        .zip(&prepared)
        .map(|(j, p)| p.resumed.then(|| checkpoint::saved(&j.run)).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let form = match stacking {
        None => Form::Solo,
        Some(s) => Form::Stacked(Noise::Rows {
            pool: s.pool,
            rows: Tensor::from_slice(&s.rows).to_device(job.device),
        }),
    };
    let graphed = job.device.is_cuda() && cfg.train.cuda_graph != CudaGraphMode::Off;
    let configs: Vec<&RunConfig> = jobs.iter().map(|j| &j.config).collect();
    let built = models::build(
        &configs,
        saved,
        form,
        job.device,
        layout_for(job.device, graphed),
        device_steps,
    )?;
    let step_data = StepData {
        models: built.models.as_ref(),
        images: &train_x,
        r_loss_factors: jobs.iter().map(|j| j.config.train.r_loss_factor).collect(),
        stream: cfg.data.stream,
        // cuDNN's benchmark mode is on only while the graph is captured (`StepData`): left
        // on, it cost about 0.5 s of autotuning in the first epoch, for the test pass's new
        // shapes, and the eager NCHW step gained nothing from it (H200, gpu-check 2026-11-28).
        cudnn_benchmark: true,
        precision: cfg.train.precision,
    };
    let (mut step, fallback) = TrainStep::new(step_data, built.opt, bs, cfg.train.cuda_graph)?;
    if let Some(why) = fallback {
        eprintln!("warning: CUDA graph capture failed: {why}");
    }
    let mut runs = Vec::with_capacity(jobs.len());
    for (job, p) in jobs.iter().zip(&prepared) {
        let mut ran = job.config.clone();
        ran.train.step_form = Some(step.form());
        runs.push(Recorder::open(&job.run, &ran, &p.state, p.resumed)?);
        data_identity::record(&job.run, &identity)?;
    }
    let say = |s: String| (!job.quiet).then(|| eprintln!("{s}"));
    say(data.describe(cfg));
    let what = match jobs.len() {
        1 => job.run.display().to_string(),
        k => format!("{k} runs stacked as one model"),
    };
    let device = crate::util::device::describe(job.device);
    say(format!(
        "run: {what} | device {device} | {n} train / {} test images | epochs {}..{} of {}",
        data.test.len(),
        start.epoch + 1,
        cfg.train.epochs,
        cfg.train.epochs
    ));
    say(format!(
        "step: {} ({device}; {})",
        step.form(),
        built.models.layout()
    ));
    let shown = RECONSTRUCTION_IMAGES.min(data.test.len());
    let mut recorders = Recorders {
        runs,
        inputs: data::to_unit_float(&test_x.narrow(0, 0, shown).to_device(job.device)),
        images_per_epoch: n,
    };
    let schedule = Schedule {
        test_images: &test_x,
        images_at,
        train_images: n,
        batch_size: bs,
        seed: cfg.train.data_seed(),
        start: start.epoch,
        end: cfg.train.epochs,
        quiet: job.quiet,
        run_label: job.run.display().to_string(),
        model_labels: jobs.iter().map(|j| j.run.display().to_string()).collect(),
        lr_factor: &|epoch| cfg.train.lr_factor(epoch),
        report_steps: jobs.iter().any(|j| j.config.train.tensorboard),
    };
    fit(&mut step, &schedule, &mut recorders)?;
    drop(step);
    let mut trained = Vec::with_capacity(jobs.len());
    for (j, r) in recorders.runs.iter_mut().enumerate() {
        // A model that early stopping ended inside a stack trained on with the others: its
        // run's state is its checkpoint, not the stack's tensors now.
        let model = if r.stopped() && jobs.len() > 1 {
            checkpoint::load_model(r.run(), job.device)?
        } else {
            let copy = crate::model::build(r.config(), job.device, r.config().train.seed);
            copy.load_state(&built.models.model_state(j as i64), r.run())?;
            copy
        };
        let rows = r.take_rows();
        trained.push(Trained {
            epochs: rows.last().map_or(start.epoch, |row| row.epoch),
            rows,
            model,
        });
    }
    Ok(Finished {
        runs: trained,
        test: data.test,
        classes: data.classes,
    })
}
