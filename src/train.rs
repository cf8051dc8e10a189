//! The training loop of the seed (Keras `fit`, shuffle=True, batch 32): per epoch a fresh
//! shuffle, Adam steps on the VAE loss, then the test-set loss; a row in metrics.csv, a
//! checkpoint, and every `reconstruction_every` epochs a PNG of test reconstructions.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use tch::{Device, Kind, Tensor};

use crate::checkpoint::{self, TrainState, CONFIG_FILE, METRICS_FILE};
use crate::config::TrainConfig;
use crate::data::{self, batch, fetch::SourceInfo};
use crate::data_identity::{self, DataIdentity};
use crate::loss;
use crate::metrics::{self, EpochRow, Losses};
use crate::model::{Layout, Vae};
use crate::optim::KerasAdam;
use crate::progress;
use crate::step::{CudaGraphMode, StepData, TrainStep};

/// How many test images the reconstruction PNGs show.
const RECONSTRUCTION_IMAGES: i64 = 10;
/// Batch size for inference (evaluation, encoding for figures) on the CPU. Larger batches were
/// slower there: encoding 10,000 images took 2.7 s at 1000 and 1.4 s at 128 (2 cores,
/// 2026-11-27).
pub const INFERENCE_BATCH: i64 = 128;
/// The same on CUDA, where each batch costs a few dozen kernel launches: fewer, larger batches.
pub const INFERENCE_BATCH_CUDA: i64 = 1000;

/// The inference batch size for `device`.
pub fn inference_batch(device: Device) -> i64 {
    if device.is_cuda() {
        INFERENCE_BATCH_CUDA
    } else {
        INFERENCE_BATCH
    }
}
/// Refresh the running losses on the progress bar every this many steps (each read syncs).
const BAR_REFRESH_STEPS: usize = 25;

/// A run stopped by a signal: the last finished epoch's checkpoint is kept.
#[derive(Debug)]
pub struct Interrupted {
    pub signal: i32,
    /// The epoch (1-based) the signal came in.
    pub epoch: usize,
    /// Epochs finished and checkpointed.
    pub kept: usize,
    pub run: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = crate::interrupt::name(self.signal);
        if self.kept == 0 {
            write!(
                f,
                "stopped by {what} during epoch 1: no epoch had finished, nothing is kept; start again with:\n  vae-tch train --resume {}",
                self.run
            )
        } else {
            write!(
                f,
                "stopped by {what} during epoch {}: the checkpoint of epoch {} is kept in {}; resume with:\n  vae-tch train --resume {}",
                self.epoch, self.kept, self.run, self.run
            )
        }
    }
}

impl std::error::Error for Interrupted {}

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

/// Mean losses over a split (bytes or floats in [0, 1]), sampling z as the model does (Keras
/// `evaluate`).
pub fn evaluate(vae: &Vae, images: &Tensor, r_loss_factor: f64) -> Losses {
    let n = images.size()[0];
    // The model's device: the images may stay on the host (data.stream).
    let device = vae.encoder.mu.weight.device();
    tch::no_grad(|| {
        let mut sums = Tensor::zeros([3], (Kind::Double, device));
        for (start, len) in batch::ranges(n, inference_batch(device)) {
            let x = data::to_unit_float(&images.narrow(0, start, len).to_device(device));
            let out = vae.forward(&x, false);
            let p = loss::vae_loss(
                &out.reconstruction,
                &x,
                &out.mu,
                &out.log_var,
                r_loss_factor,
            );
            sums +=
                Tensor::stack(&[p.loss, p.r_loss, p.kl_loss], 0).to_kind(Kind::Double) * len as f64;
        }
        losses_from(&(sums / n.max(1) as f64))
    })
}

fn losses_from(t: &Tensor) -> Losses {
    let v: Vec<f64> = Vec::try_from(&t.to_device(Device::Cpu)).expect("a [3] double tensor");
    Losses {
        loss: v[0],
        r_loss: v[1],
        kl_loss: v[2],
    }
}

/// The layout the convolutions train in on `device` (`model::Layout`: the same numbers up to
/// float rounding), as measured on 2026-11-28: channels-last and flipped on the CPU (2 cores,
/// batch 32: flipping 1.15x, channels-last about 4%) and in the CUDA graph (H200: 0.784 against
/// 0.796 ms/step at batch 32, 1.56 against 1.67 at 256, 3.93 against 4.99 at 1024); torch's
/// default for the eager CUDA step, where the flips' extra kernel launches cost more than they
/// save (4.41 against 3.14 ms at batch 32).
pub fn layout_for(device: Device, graphed: bool) -> Layout {
    let fast = !device.is_cuda() || graphed;
    Layout {
        channels_last: fast,
        flipped: fast,
    }
}

/// Trains `job` to `config.train.epochs` epochs; returns the rows logged by this call.
pub fn train(job: &TrainJob) -> Result<Vec<EpochRow>> {
    let cfg = &job.config;
    cfg.validate()?;
    let run = &job.run;
    std::fs::create_dir_all(run)
        .with_context(|| format!("creating the run folder {}", run.display()))?;
    // One trainer per run folder; held until this returns (or the process ends).
    let _lock = crate::runlock::RunLock::acquire(run)?;
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
        if run.join(CONFIG_FILE).exists() && !job.quiet {
            // A run stopped before its first epoch ended: nothing to keep, start it again.
            eprintln!(
                "{}: no finished epoch to resume; starting the run from the beginning",
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
        if !job.force_data {
            data_identity::check(run, &data_dir, &identity)?;
        }
        metrics::truncate_after(&run.join(METRICS_FILE), state.epoch)
            .with_context(|| format!("rewriting {}", run.join(METRICS_FILE).display()))?;
    }
    crate::fsutil::write_atomic(&run.join(CONFIG_FILE), cfg.to_toml().as_bytes())
        .with_context(|| format!("writing {}", run.join(CONFIG_FILE).display()))?;
    data_identity::record(run, &identity)?;
    let say = |s: String| {
        if !job.quiet {
            eprintln!("{s}");
        }
    };
    match SourceInfo::read(&data_dir) {
        Some(src) => say(format!("data: {src}")),
        None if cfg.data.dataset == data::DatasetKind::Folder => say(format!(
            "data: image folder {}: {} train / {} test images ({} split by seed {}), {} classes, resized ({:?}) to {:?}",
            data_dir.display(),
            train_split.len(),
            test_split.len(),
            cfg.data.test_fraction,
            cfg.data.split_seed,
            classes,
            cfg.data.resize,
            cfg.model.input_shape
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
        crate::device::describe(job.device),
        n,
        test_split.len(),
        state.epoch + 1,
        cfg.train.epochs,
        cfg.train.epochs
    ));

    let mut model = checkpoint::build(cfg, job.device, cfg.train.seed);
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
    crate::fsutil::write_atomic(&run.join(CONFIG_FILE), ran.to_toml().as_bytes())
        .with_context(|| format!("writing {}", run.join(CONFIG_FILE).display()))?;
    say(format!(
        "step: {} ({}; {layout})",
        step.form(),
        crate::device::describe(job.device)
    ));
    let recon_x = data::to_unit_float(
        &test_x
            .narrow(0, 0, RECONSTRUCTION_IMAGES.min(test_split.len()))
            .to_device(job.device),
    );
    let mut rows = Vec::new();

    for epoch in state.epoch..cfg.train.epochs {
        let t0 = Instant::now();
        tch::manual_seed(checkpoint::epoch_seed(cfg.train.seed, epoch) as i64);
        let batches = batch::shuffled(n, bs, images_at);
        let bar = if job.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            progress::epoch_bar(batches.len() as u64, epoch + 1, cfg.train.epochs)
        };
        step.begin_epoch();
        let mut seen = 0i64;
        for (i, idx) in batches.iter().enumerate() {
            if let Some(signal) = crate::interrupt::requested() {
                bar.finish_and_clear();
                return Err(Interrupted {
                    signal,
                    epoch: epoch + 1,
                    kept: epoch,
                    run: run.display().to_string(),
                }
                .into());
            }
            step.run(idx, batches.get(i + 1))?;
            seen += idx.size()[0];
            bar.inc(1);
            // Each read of the running losses waits for the device: only for a visible bar.
            if !bar.is_hidden() && (i % BAR_REFRESH_STEPS == 0 || i + 1 == batches.len()) {
                let l = losses_from(&(step.sums() / seen as f64));
                let rate = seen as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{l} {rate:.0} img/s"));
            }
        }
        bar.finish_and_clear();
        let train_losses = losses_from(&(step.sums() / seen.max(1) as f64));
        if !train_losses.loss.is_finite() {
            bail!(
                "epoch {}: the training loss is {} (diverged); try a smaller --lr",
                epoch + 1,
                train_losses.loss
            );
        }
        let test_losses = evaluate(vae, &test_x, factor);
        let opt = step.optimizer();
        let seconds = t0.elapsed().as_secs_f64();
        let row = EpochRow::new(epoch + 1, train_losses, test_losses, seconds);
        metrics::append(&run.join(METRICS_FILE), &row)
            .with_context(|| format!("writing {}", run.join(METRICS_FILE).display()))?;
        let state = TrainState::at(epoch + 1, opt.step, cfg.train.seed);
        checkpoint::save(run, &model.vs, opt, &state)?;
        let every = cfg.train.reconstruction_every;
        if every > 0 && ((epoch + 1) % every == 0 || epoch + 1 == cfg.train.epochs) {
            let recon = tch::no_grad(|| vae.reconstruct_mean(&recon_x));
            let path = reconstruction_path(run, epoch + 1);
            crate::images::save_reconstructions(&path, &recon_x, &recon)?;
        }
        say(format!(
            "epoch {}/{}: train {train_losses} | test {test_losses} | {seconds:.1} s, {:.0} img/s",
            epoch + 1,
            cfg.train.epochs,
            n as f64 / seconds
        ));
        rows.push(row);
    }
    Ok(rows)
}

/// `<run>/reconstructions-epoch-0020.png`.
pub fn reconstruction_path(run: &Path, epoch: usize) -> PathBuf {
    run.join(format!("reconstructions-epoch-{epoch:04}.png"))
}
