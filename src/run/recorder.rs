//! A run records itself. One `Recorder` per run folder owns what training leaves there after
//! each epoch: the row of metrics.csv, the checkpoint (and `best/`, by the lowest test loss), the
//! reconstruction PNGs, the TensorBoard events and early stopping (`run::watch`). `Recorders`
//! fans the loop's events (crate::train::Observer) out over a group's runs, one per model of
//! the step (burn-train's event processors and checkpointer, without their generality).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::Tensor;

use crate::config::RunConfig;
use crate::model::loss::Losses;
use crate::run::checkpoint::{self, TrainState, CONFIG_FILE, METRICS_FILE};
use crate::run::metrics::{self, EpochRow};
use crate::run::tensorboard::{self, EventWriter};
use crate::run::watch::Watch;
use crate::train::models::Models;
use crate::train::{EpochEnd, Flow, Observer};
use crate::util::images;

/// Samples in the TensorBoard sample grid.
const SAMPLE_IMAGES: i64 = 16;

/// One run folder's side of training.
pub struct Recorder {
    run: PathBuf,
    /// The config that trains (the step form it runs in included), as config.toml holds it.
    config: RunConfig,
    watch: Watch,
    events: Option<EventWriter>,
    /// The rows this training logged.
    rows: Vec<EpochRow>,
    /// Early stopping ended this run (a stack trains it on with the others; its folder keeps
    /// the epoch it stopped at).
    stopped: bool,
}

impl Recorder {
    /// Makes `run` ready to record from `start` (its checkpoint's state; epoch 0 for a new run):
    /// metrics.csv loses the rows of epochs being redone, early stopping replays the rest
    /// (refusing a run it already ended), config.toml gets `config`, and the TensorBoard writer
    /// opens (dropping the events of older files past the checkpoint's step). Call it only after
    /// the data were checked: before, nothing of a run is rewritten.
    pub fn open(run: &Path, config: &RunConfig, start: &TrainState, resumed: bool) -> Result<Self> {
        // Rows of epochs that are being redone go: those after the checkpoint, and all of a run
        // that starts again (a kill between an epoch's row and its checkpoint leaves one).
        let path = run.join(METRICS_FILE);
        metrics::truncate_after(&path, start.epoch)
            .with_context(|| format!("rewriting {}", path.display()))?;
        // (An imported run resumes at epoch 0 with no metrics.csv yet.)
        let history = if resumed && path.exists() {
            metrics::read(&path).with_context(|| format!("reading {}", path.display()))?
        } else {
            Vec::new()
        };
        let watch = Watch::new(&config.train, &history);
        if watch.stopped() {
            let (wait, best) = watch.waited();
            bail!(
                "{}: early stopping ended this run after epoch {} ({wait} epochs without the test loss improving on {best:.4}); pass a larger --early-stopping N, or --early-stopping 0 to turn it off, to train on",
                run.display(),
                start.epoch
            );
        }
        write_config(run, config)?;
        let events = if config.train.tensorboard {
            let dir = run.join(tensorboard::TENSORBOARD_DIR);
            let context = || format!("writing TensorBoard events into {}", dir.display());
            let mut w =
                EventWriter::create(run, resumed.then_some(start.step)).with_context(context)?;
            // At the start step: a resumed run's text is the config it goes on with.
            let text = format!("```toml\n{}```", config.to_toml());
            w.text(tensorboard::CONFIG_TAG, start.step, &text)
                .with_context(context)?;
            Some(w)
        } else {
            None
        };
        Ok(Recorder {
            run: run.to_path_buf(),
            config: config.clone(),
            watch,
            events,
            rows: Vec::new(),
            stopped: false,
        })
    }

    /// The running training loss into TensorBoard.
    fn running(&mut self, step: i64, losses: &Losses) -> Result<()> {
        match (&mut self.events, self.stopped) {
            (Some(w), false) => w
                .scalars(step, &[("train/running_loss", losses.loss)])
                .with_context(|| format!("writing {}", w.path().display())),
            _ => Ok(()),
        }
    }

    /// Epoch `end` of model `j`: its row, checkpoint, best copy, figures and events; early
    /// stopping's verdict.
    fn epoch(&mut self, end: &EpochEnd, j: usize, draws: &mut Draws) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        let (run, train) = (&self.run, &self.config.train);
        let lrs = end.optimizer.learning_rates();
        let lr = lrs[j.min(lrs.len() - 1)];
        let row = EpochRow::new(end.epoch, end.train[j], end.test[j], end.seconds, lr);
        let csv = run.join(METRICS_FILE);
        metrics::append(&csv, &row).with_context(|| format!("writing {}", csv.display()))?;
        let verdict = self.watch.epoch(end.test[j].loss);
        let mut state = TrainState::at(end.epoch, end.optimizer.step, train.data_seed());
        state.stopped_early = verdict.stop;
        let k = j as i64;
        checkpoint::save(
            run,
            &end.models.model_state(k),
            &end.models.optimizer_state(end.optimizer, k),
            &state,
        )?;
        if verdict.best {
            checkpoint::save_best(run)?;
        }
        let last = end.epoch == train.epochs || verdict.stop;
        let every = train.reconstruction_every;
        let draw = every > 0 && (end.epoch.is_multiple_of(every) || end.epoch == train.epochs);
        let global = end.optimizer.step;
        let images = draws.images_per_epoch;
        if draw || (self.events.is_some() && last) {
            let grid = images::reconstruction_grid(draws.inputs, &draws.reconstruction(j));
            if draw {
                images::save_png(&reconstruction_path(run, end.epoch), &grid)?;
            }
            if let Some(w) = &mut self.events {
                let sample = last.then(|| draws.sample(j));
                log_epoch(w, global, &row, images, &grid, sample.as_ref())
                    .with_context(|| format!("writing {}", w.path().display()))?;
            }
        } else if let Some(w) = &mut self.events {
            w.scalars(global, &epoch_scalars(&row, images))
                .with_context(|| format!("writing {}", w.path().display()))?;
        }
        self.rows.push(row);
        if verdict.stop {
            self.stopped = true;
            let (wait, best) = self.watch.waited();
            eprintln!(
                "{}: early stopping after epoch {}: {wait} epochs without the test loss improving on {best:.4} by more than {}; the run stays resumable (a larger --early-stopping trains on)",
                run.display(),
                end.epoch,
                train.min_delta
            );
        }
        Ok(())
    }

    pub fn run(&self) -> &Path {
        &self.run
    }

    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// The rows this training logged (taken: the recorder is done).
    pub fn take_rows(&mut self) -> Vec<EpochRow> {
        std::mem::take(&mut self.rows)
    }
}

/// What an epoch's figures draw from, computed at most once for all the group's models.
struct Draws<'a> {
    models: &'a dyn Models,
    /// The test images the reconstruction grids show, floats on the device.
    inputs: &'a Tensor,
    images_per_epoch: i64,
    reconstructions: Option<Vec<Tensor>>,
    samples: Option<Vec<Tensor>>,
}

impl Draws<'_> {
    fn reconstruction(&mut self, j: usize) -> Tensor {
        let (models, x) = (self.models, self.inputs);
        self.reconstructions
            .get_or_insert_with(|| tch::no_grad(|| models.reconstruct_mean(x)))[j]
            .shallow_clone()
    }

    fn sample(&mut self, j: usize) -> Tensor {
        let models = self.models;
        self.samples
            .get_or_insert_with(|| tch::no_grad(|| models.sample(SAMPLE_IMAGES)))[j]
            .shallow_clone()
    }
}

/// The recorders of a group's runs, in the step's model order.
pub struct Recorders {
    pub runs: Vec<Recorder>,
    /// The test images the reconstruction PNGs show (floats on the device).
    pub inputs: Tensor,
    /// Training images per epoch (of one model), for the images-per-second scalar.
    pub images_per_epoch: i64,
}

impl Observer for Recorders {
    fn steps_done(&mut self, step: i64, running: &[Losses]) -> Result<()> {
        for (r, l) in self.runs.iter_mut().zip(running) {
            r.running(step, l)?;
        }
        Ok(())
    }

    fn epoch_done(&mut self, end: &EpochEnd) -> Result<Flow> {
        let mut draws = Draws {
            models: end.models,
            inputs: &self.inputs,
            images_per_epoch: self.images_per_epoch,
            reconstructions: None,
            samples: None,
        };
        for (j, r) in self.runs.iter_mut().enumerate() {
            r.epoch(end, j, &mut draws)?;
        }
        Ok(if self.runs.iter().all(Recorder::stopped) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
}

pub fn write_config(run: &Path, cfg: &RunConfig) -> Result<()> {
    crate::util::fsutil::write_atomic(&run.join(CONFIG_FILE), cfg.to_toml().as_bytes())
        .with_context(|| format!("writing {}", run.join(CONFIG_FILE).display()))
}

/// An epoch's scalars as TensorBoard tags: metrics.csv's columns under `epoch/`, and the images
/// per second (of one model).
fn epoch_scalars(row: &EpochRow, images: i64) -> Vec<(&'static str, f64)> {
    let mut out = vec![
        ("epoch/train_loss", row.train_loss),
        ("epoch/train_r_loss", row.train_r_loss),
        ("epoch/train_kl_loss", row.train_kl_loss),
        ("epoch/test_loss", row.test_loss),
        ("epoch/test_r_loss", row.test_r_loss),
        ("epoch/test_kl_loss", row.test_kl_loss),
        ("epoch/seconds", row.seconds),
        (
            "epoch/images_per_second",
            images as f64 / row.seconds.max(1e-9),
        ),
    ];
    if let Some(lr) = row.learning_rate {
        out.push(("epoch/learning_rate", lr));
    }
    out
}

/// An epoch into TensorBoard: its scalars, the reconstruction grid, and the samples' grid.
fn log_epoch(
    w: &mut EventWriter,
    step: i64,
    row: &EpochRow,
    images: i64,
    recon: &image::RgbImage,
    samples: Option<&Tensor>,
) -> std::io::Result<()> {
    w.scalars(step, &epoch_scalars(row, images))?;
    let png = |g: &image::RgbImage| (images::png_bytes(g), (g.width(), g.height(), 3));
    let (bytes, dims) = png(recon);
    w.image("reconstructions", step, bytes, dims)?;
    if let Some(s) = samples {
        let (bytes, dims) = png(&images::grid(s, 8, 2, 2));
        w.image("samples", step, bytes, dims)?;
    }
    Ok(())
}

/// `<run>/reconstructions-epoch-0020.png`.
pub fn reconstruction_path(run: &Path, epoch: usize) -> PathBuf {
    run.join(format!("reconstructions-epoch-{epoch:04}.png"))
}
