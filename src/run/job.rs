//! A training run in its folder: take the lock, load and check the data, write config.toml and
//! data.toml, build or restore the model and Adam, then drive `crate::train::fit`, writing a row
//! of metrics.csv, a checkpoint and every `reconstruction_every` epochs a PNG of test
//! reconstructions after each epoch.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::Device;

use crate::config::{CudaGraphMode, DatasetKind, TrainConfig};
use crate::data::{self, batch, source::SourceInfo};
use crate::run::checkpoint::{self, TrainState, CONFIG_FILE, METRICS_FILE};
use crate::run::data_identity::{self, DataIdentity};
use crate::run::metrics::{self, EpochRow};
use crate::train::optim::KerasAdam;
use crate::train::step::{StepData, TrainStep};
use crate::train::{fit, layout_for, Schedule};

/// How many test images the reconstruction PNGs show.
const RECONSTRUCTION_IMAGES: i64 = 10;

/// What to train and where.
#[derive(Debug, Clone)]
pub struct TrainJob {
    /// The run folder: created for a new run, read for a resumed one.
    pub run: PathBuf,
    pub config: TrainConfig,
    /// Continue from the run's checkpoint (config.epochs is the new total).
    pub resume: bool,
    pub device: Device,
    /// No progress bars and no per-epoch lines.
    pub quiet: bool,
    /// Resume even when the data differ from the run's (data.toml).
    pub force_data: bool,
}

/// Trains `job` to `config.train.epochs` epochs; returns the rows logged by this call.
pub fn train(job: &TrainJob) -> Result<Vec<EpochRow>> {
    let cfg = &job.config;
    cfg.validate()?;
    let run = &job.run;
    std::fs::create_dir_all(run)
        .with_context(|| format!("creating the run folder {}", run.display()))?;
    // One trainer per run folder; held until this returns (or the process ends).
    let _lock = crate::run::lock::RunLock::acquire(run)?;
    let has_epoch = checkpoint::read_state(run).is_ok();
    let state = if job.resume && has_epoch {
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
        TrainState::at(0, 0, cfg.train.seed)
    };
    let data_dir = cfg.data.dir();
    let data = data::open(cfg, &data_dir, job.quiet)?;
    let classes = data.classes.len();
    let train_split = data.train.limit(cfg.data.train_limit);
    let test_split = data.test.limit(cfg.data.test_limit);
    for (split, what) in [(&train_split, "training"), (&test_split, "test")] {
        if split.is_empty() {
            bail!(
                "{}: no {what} images: training needs at least one of each (the test split gives the test loss and the figures)",
                data_dir.display()
            );
        }
    }
    let identity = DataIdentity {
        dataset: cfg.data.dataset.to_string(),
        train_images: train_split.len(),
        test_images: test_split.len(),
        fingerprint: data.fingerprint.clone(),
    };
    // Nothing of the run is rewritten before these checks: a typo in --data-dir changes nothing.
    if job.resume && has_epoch {
        match data_identity::check(run, &data_dir, &identity) {
            Err(e) if job.force_data => eprintln!("warning: training on anyway (--force): {e}"),
            other => other?,
        }
        metrics::truncate_after(&run.join(METRICS_FILE), state.epoch)
            .with_context(|| format!("rewriting {}", run.join(METRICS_FILE).display()))?;
    }
    crate::util::fsutil::write_atomic(&run.join(CONFIG_FILE), cfg.to_toml().as_bytes())
        .with_context(|| format!("writing {}", run.join(CONFIG_FILE).display()))?;
    data_identity::record(run, &identity)?;
    let say = |s: String| {
        if !job.quiet {
            eprintln!("{s}");
        }
    };
    match SourceInfo::read(&data_dir) {
        Some(src) => say(format!("data: {src}")),
        None if cfg.data.dataset == DatasetKind::Folder => say(format!(
            "data: image folder {}: {} train / {} test images ({} split by seed {}), {} classes, resized ({}) to {}",
            data_dir.display(),
            train_split.len(),
            test_split.len(),
            cfg.data.test_fraction,
            cfg.data.split_seed,
            classes,
            cfg.data.resize,
            cfg.model.input_shape.map(|v| v.to_string()).join(",")
        )),
        None => say(format!(
            "data: {} from {}",
            cfg.data.dataset,
            data_dir.display()
        )),
    }
    // Bytes on the device (a quarter of floats); each batch becomes x / 255 in the step. On the
    // CPU an image folder's bytes stay in its memory-mapped cache; so do they with
    // `data.stream`, and each batch is streamed to the device.
    let stream = cfg.data.stream;
    let images_at = if stream { Device::Cpu } else { job.device };
    let train_x = train_split.images.to_device(images_at);
    let test_x = test_split.images.to_device(images_at);
    let n = train_split.len();
    say(format!(
        "run: {} | device {} | {} train / {} test images | epochs {}..{} of {}",
        run.display(),
        crate::util::device::describe(job.device),
        n,
        test_split.len(),
        state.epoch + 1,
        cfg.train.epochs,
        cfg.train.epochs
    ));

    let mut model = crate::model::build(cfg, job.device, cfg.train.seed);
    let graphed = job.device.is_cuda() && cfg.train.cuda_graph != CudaGraphMode::Off;
    let layout = model
        .vae
        .set_layout(&model.vs, layout_for(job.device, graphed));
    let bs = cfg.train.batch_size as i64;
    let steps_per_epoch = batch::ranges(n, bs).count() as i64;
    let params = model.trainable();
    let mut opt = if job.device.is_cuda() {
        // Graph-safe: Adam's step factors live on the device.
        KerasAdam::with_device_scalars(params, cfg.optim.clone(), steps_per_epoch)
    } else {
        KerasAdam::new(params, cfg.optim.clone())
    };
    if job.resume && has_epoch {
        checkpoint::load_weights(
            &model.vs,
            &checkpoint::checkpoint_dir(run).join(checkpoint::MODEL_FILE),
        )?;
        checkpoint::load_optimizer(run, &mut opt, &state)?;
    }
    // cuDNN's benchmark mode is on only while the graph is captured (`StepData`): left on, it
    // cost about 0.5 s of autotuning in the first epoch, for the test pass's new shapes, and
    // the eager NCHW step gained nothing from it (H200, gpu-check 2026-11-28).
    let vae = &model.vae;
    let factor = cfg.train.r_loss_factor;
    let data = StepData {
        vae,
        images: &train_x,
        r_loss_factor: factor,
        stream,
        cudnn_benchmark: true,
    };
    let (mut step, fallback) = TrainStep::new(data, opt, bs, cfg.train.cuda_graph)?;
    if let Some(why) = fallback {
        eprintln!("warning: CUDA graph capture failed: {why}");
    }
    let mut ran = cfg.clone();
    ran.train.step_form = Some(step.form());
    crate::util::fsutil::write_atomic(&run.join(CONFIG_FILE), ran.to_toml().as_bytes())
        .with_context(|| format!("writing {}", run.join(CONFIG_FILE).display()))?;
    say(format!(
        "step: {} ({}; {layout})",
        step.form(),
        crate::util::device::describe(job.device)
    ));
    let recon_x = data::to_unit_float(
        &test_x
            .narrow(0, 0, RECONSTRUCTION_IMAGES.min(test_split.len()))
            .to_device(job.device),
    );
    let mut rows = Vec::new();
    let schedule = Schedule {
        test_images: &test_x,
        images_at,
        train_images: n,
        batch_size: bs,
        seed: cfg.train.seed,
        start: state.epoch,
        end: cfg.train.epochs,
        quiet: job.quiet,
        run_label: run.display().to_string(),
    };
    fit(&mut step, &schedule, |end| {
        let row = EpochRow::new(end.epoch, end.train, end.test, end.seconds);
        metrics::append(&run.join(METRICS_FILE), &row)
            .with_context(|| format!("writing {}", run.join(METRICS_FILE).display()))?;
        let state = TrainState::at(end.epoch, end.optimizer.step, cfg.train.seed);
        checkpoint::save(run, &model.vs, end.optimizer, &state)?;
        let every = cfg.train.reconstruction_every;
        if every > 0 && (end.epoch % every == 0 || end.epoch == cfg.train.epochs) {
            let recon = tch::no_grad(|| vae.reconstruct_mean(&recon_x));
            let path = reconstruction_path(run, end.epoch);
            crate::util::images::save_reconstructions(&path, &recon_x, &recon)?;
        }
        rows.push(row);
        Ok(())
    })?;
    Ok(rows)
}

/// `<run>/reconstructions-epoch-0020.png`.
pub fn reconstruction_path(run: &Path, epoch: usize) -> PathBuf {
    run.join(format!("reconstructions-epoch-{epoch:04}.png"))
}
