//! The training loop of the seed (Keras `fit`, shuffle=True, batch 32): per epoch a fresh
//! shuffle, Adam steps on the VAE loss through a `TrainStep` (eager or CUDA graph), then the
//! test-set loss. What an epoch leaves behind (metrics.csv, the checkpoint, figures) is the
//! observer's: `fit` tells an `Observer` each finished epoch (crate::run::recorder writes the run
//! folder) and asks it whether to go on.
pub mod bench;
pub mod cuda_graph;
pub mod inference;
pub mod models;
pub mod optim;
pub mod precision;
pub mod profile;
pub mod step;

use std::time::Instant;

use anyhow::{bail, Result};
use tch::{Device, Kind, Tensor};

use crate::data::{self, batch};
use crate::model::loss::Losses;
use crate::model::Layout;
use crate::util::progress;
use models::{Factors, Models};
use optim::KerasAdam;
use step::TrainStep;

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
    /// The command that goes on where it stopped, when it is not `train --resume RUN` (a
    /// sweep's own command, with every flag it ran with).
    pub goes_on: Option<String>,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = crate::util::interrupt::name(self.signal);
        if let Some(command) = &self.goes_on {
            return write!(
                f,
                "stopped by {what} during epoch {} of {}: its last finished epoch is kept; the same command goes on where it stopped:\n  {command}",
                self.epoch, self.run
            );
        }
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

/// Each model's mean losses over a split (bytes or floats in [0, 1]), sampling z as the model
/// does (Keras `evaluate`): the test loss of an epoch.
pub fn test_losses(models: &dyn Models, images: &Tensor, factors: &Factors) -> Vec<Losses> {
    let n = images.size()[0];
    // The model's device: the images may stay on the host (data.stream).
    let device = models.device();
    tch::no_grad(|| {
        let mut sums = Tensor::zeros([models.count(), 3], (Kind::Double, device));
        for (start, len) in batch::ranges(n, inference_batch(device)) {
            let x = data::to_unit_float(&images.narrow(0, start, len).to_device(device));
            let (_, parts) = models.losses(&x, factors, false);
            sums += parts.to_kind(Kind::Double) * len as f64;
        }
        losses_from(&(sums / n.max(1) as f64))
    })
}

/// Each row's (loss, r_loss, kl_loss) of a `[K, 3]` tensor.
fn losses_from(t: &Tensor) -> Vec<Losses> {
    let v: Vec<f64> =
        Vec::try_from(&t.to_device(Device::Cpu).reshape([-1])).expect("a [K, 3] double tensor");
    v.chunks(3)
        .map(|r| Losses {
            loss: r[0],
            r_loss: r[1],
            kl_loss: r[2],
        })
        .collect()
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

/// The generator seed for an epoch (0-based): distinct per epoch and per run seed. Each epoch
/// re-seeds torch's generator with it, so (seed, epoch) is the whole RNG state: a resumed run
/// draws the same shuffles and noise as one that never stopped.
pub fn epoch_seed(seed: u64, epoch: usize) -> u64 {
    seed.wrapping_mul(1_000_003).wrapping_add(epoch as u64)
}

/// What the loop runs over, beside the step (which holds the model, the training images, the
/// loss weight and the optimizer).
pub struct Schedule<'a> {
    /// The test images (bytes or floats in [0, 1]; on the device or, streamed, on the host).
    pub test_images: &'a Tensor,
    /// Where the training images are, so the batches' indices go there.
    pub images_at: Device,
    pub train_images: i64,
    pub batch_size: i64,
    pub seed: u64,
    /// Epochs (0-based) `start..end`, of `end` in all.
    pub start: usize,
    pub end: usize,
    /// No progress bar and no per-epoch line.
    pub quiet: bool,
    /// The run folder, for the message of an interrupted run (the first model's).
    pub run_label: String,
    /// Each model's name in messages (its run folder), when there are several.
    pub model_labels: Vec<String>,
    /// The learning rate's factor in an epoch (0-based): `TrainingConfig::lr_factor`.
    pub lr_factor: &'a dyn Fn(usize) -> f64,
    /// Tell the observer the running training losses every `BAR_REFRESH_STEPS` steps
    /// (TensorBoard), also with no progress bar (each read waits for the device).
    pub report_steps: bool,
}

/// What the loop tells the run about its progress, and asks it (crate::run::recorder).
pub trait Observer {
    /// Each model's running training losses this epoch, after `step` optimizer steps (every
    /// `BAR_REFRESH_STEPS` steps, when `Schedule::report_steps`).
    fn steps_done(&mut self, step: i64, running: &[Losses]) -> Result<()>;
    /// An epoch ended (its checkpoint and figures are the observer's to write): go on or stop.
    fn epoch_done(&mut self, end: &EpochEnd) -> Result<Flow>;
}

/// What the caller of `fit` says after an epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop before the next epoch (early stopping); the epoch just ended is kept.
    Stop,
}

/// One finished epoch, handed to `fit`'s caller.
pub struct EpochEnd<'a> {
    /// 1-based.
    pub epoch: usize,
    /// Each model's losses.
    pub train: Vec<Losses>,
    pub test: Vec<Losses>,
    pub seconds: f64,
    pub optimizer: &'a KerasAdam,
    /// The models as they stand after the epoch.
    pub models: &'a dyn Models,
}

/// One model's losses, or the range over K models' losses.
fn summary(l: &[Losses]) -> String {
    if l.len() == 1 {
        return l[0].to_string();
    }
    let (lo, hi) = l
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(x.loss), hi.max(x.loss))
        });
    format!("loss {lo:.3}..{hi:.3} over {} models", l.len())
}

/// Trains the epochs of `s` with `step`, telling `observer` after each (before its line is
/// printed), which may stop the loop there; a signal stops it before the next step with
/// `Interrupted`.
pub fn fit(step: &mut TrainStep, s: &Schedule, observer: &mut dyn Observer) -> Result<()> {
    let n = s.train_images;
    for epoch in s.start..s.end {
        let t0 = Instant::now();
        tch::manual_seed(epoch_seed(s.seed, epoch) as i64);
        let batches = batch::shuffled(n, s.batch_size, s.images_at);
        let bar = if s.quiet {
            indicatif::ProgressBar::hidden()
        } else {
            progress::epoch_bar(batches.len() as u64, epoch + 1, s.end)
        };
        step.begin_epoch_at((s.lr_factor)(epoch));
        let mut seen = 0i64;
        for (i, idx) in batches.iter().enumerate() {
            if let Some(signal) = crate::util::interrupt::requested() {
                bar.finish_and_clear();
                return Err(Interrupted {
                    signal,
                    epoch: epoch + 1,
                    kept: epoch,
                    run: s.run_label.clone(),
                    goes_on: None,
                }
                .into());
            }
            step.run(idx, batches.get(i + 1))?;
            seen += idx.size()[0];
            bar.inc(1);
            // Each read of the running losses waits for the device: only for a visible bar, or
            // for `on_steps` when asked.
            let wanted = !bar.is_hidden() || s.report_steps;
            if wanted && (i % BAR_REFRESH_STEPS == 0 || i + 1 == batches.len()) {
                let l = losses_from(&(step.sums() / seen as f64));
                let rate = seen as f64 / t0.elapsed().as_secs_f64().max(1e-9);
                bar.set_message(format!("{} {rate:.0} img/s", summary(&l)));
                if s.report_steps {
                    observer.steps_done(step.optimizer().step, &l)?;
                }
            }
        }
        bar.finish_and_clear();
        let train = losses_from(&(step.sums() / seen.max(1) as f64));
        if let Some(j) = train.iter().position(|l| !l.loss.is_finite()) {
            let whose = match s.model_labels.get(j) {
                Some(label) if train.len() > 1 => format!(" of {label}"),
                _ => String::new(),
            };
            let factor = (s.lr_factor)(epoch);
            let rate = step.optimizer().learning_rates()[j.min(train.len() - 1)];
            let advice = if factor > 1.0 {
                format!(
                    "--lr-decay has raised the learning rate {factor}x to {rate:e}: try a --lr-decay below 1"
                )
            } else {
                format!("the learning rate was {rate:e}: try a smaller --lr")
            };
            bail!(
                "epoch {}: the training loss{whose} is {} (diverged); {advice}",
                epoch + 1,
                train[j].loss
            );
        }
        let d = step.data();
        let test = precision::forward(d.precision, d.models.device(), || {
            test_losses(d.models, s.test_images, step.factors())
        });
        let seconds = t0.elapsed().as_secs_f64();
        let flow = observer.epoch_done(&EpochEnd {
            epoch: epoch + 1,
            train: train.clone(),
            test: test.clone(),
            seconds,
            optimizer: step.optimizer(),
            models: d.models,
        })?;
        if !s.quiet {
            eprintln!(
                "epoch {}/{}: train {} | test {} | {seconds:.1} s, {:.0} img/s",
                epoch + 1,
                s.end,
                summary(&train),
                summary(&test),
                (n * train.len() as i64) as f64 / seconds
            );
        }
        if flow == Flow::Stop {
            break;
        }
    }
    Ok(())
}
