//! A training run in its folder: take the lock, load and check the data, write config.toml and
//! data.toml, build or restore the model and Adam, then drive `crate::train::fit`, writing after
//! each epoch a row of metrics.csv, a checkpoint (and `best/` when the test loss is the lowest
//! yet), TensorBoard events and every `reconstruction_every` epochs a PNG of test
//! reconstructions; early stopping (`run::watch`) may end it sooner. A sweep's group of runs of
//! one shape trains the same way as one stacked model (`train_group`), each run folder getting
//! what it would have got alone.
use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::{Device, Tensor};

use crate::config::{CudaGraphMode, DatasetKind, TrainConfig};
use crate::data::{self, batch, source::SourceInfo, Split};
use crate::model::loss::Losses;
use crate::model::stack::{self, Noise, StackedVae};
use crate::model::Layout;
use crate::run::checkpoint::{self, TrainState, CONFIG_FILE, METRICS_FILE};
use crate::run::data_identity::{self, DataIdentity};
use crate::run::metrics::{self, EpochRow};
use crate::run::tensorboard::{self, EventWriter};
use crate::run::watch::Watch;
use crate::train::models::{Models, Solo, Stack};
use crate::train::optim::KerasAdam;
use crate::train::step::{StepData, TrainStep};
use crate::train::{fit, layout_for, Flow, Schedule};
use crate::util::images;

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
    _lock: crate::run::lock::RunLock,
    state: TrainState,
    resumed: bool,
}

fn prepare(job: &TrainJob) -> Result<Prepared> {
    let cfg = &job.config;
    cfg.validate()?;
    let run = &job.run;
    std::fs::create_dir_all(run)
        .with_context(|| format!("creating the run folder {}", run.display()))?;
    // One trainer per run folder; held until the training returns (or the process ends).
    let lock = crate::run::lock::RunLock::acquire(run)?;
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
        TrainState::at(0, 0, cfg.train.data_seed())
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
/// call. With `stacking`, the jobs (of one shape, on the same data and device, at the same
/// epoch: a sweep's group) train as one stacked model, each run folder getting its own config,
/// metrics, checkpoint and reconstructions as if it had trained alone; without it, `jobs` is
/// one job, trained alone in the layout fastest on its device.
pub fn train_group(jobs: &[TrainJob], stacking: Option<&Stacking>) -> Result<Finished> {
    assert!(
        stacking.is_some() || jobs.len() == 1,
        "several jobs train as a stack"
    );
    let prepared = jobs.iter().map(prepare).collect::<Result<Vec<_>>>()?;
    check_group(jobs, &prepared)?;
    let (job, start) = (&jobs[0], prepared[0].state.clone());
    let cfg = &job.config;
    let quiet = job.quiet;
    let data_dir = cfg.data.dir();
    let data = data::open(cfg, &data_dir, quiet)?;
    let class_names = data.classes.clone();
    let classes = class_names.len();
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
    // Nothing of a run is rewritten before these checks: a typo in --data-dir changes nothing.
    for (job, p) in jobs.iter().zip(&prepared) {
        if p.resumed {
            match data_identity::check(&job.run, &data_dir, &identity) {
                Err(e) if job.force_data => eprintln!("warning: training on anyway (--force): {e}"),
                other => other?,
            }
        }
    }
    let mut watches = Vec::with_capacity(jobs.len());
    for (job, p) in jobs.iter().zip(&prepared) {
        let run = &job.run;
        // Rows of epochs that are being redone go: those after the checkpoint, and all of a
        // run that starts again (a kill between an epoch's row and its checkpoint leaves one).
        let path = run.join(METRICS_FILE);
        metrics::truncate_after(&path, p.state.epoch)
            .with_context(|| format!("rewriting {}", path.display()))?;
        // (An imported run resumes at epoch 0 with no metrics.csv yet.)
        let history = if p.resumed && path.exists() {
            metrics::read(&path).with_context(|| format!("reading {}", path.display()))?
        } else {
            Vec::new()
        };
        let watch = Watch::new(&job.config.train, &history);
        if watch.stopped() {
            let (wait, best) = watch.waited();
            bail!(
                "{}: early stopping ended this run after epoch {} ({wait} epochs without the test loss improving on {best:.4}); pass a larger --early-stopping N, or --early-stopping 0 to turn it off, to train on",
                run.display(),
                p.state.epoch
            );
        }
        watches.push(watch);
        write_config(run, &job.config)?;
        data_identity::record(run, &identity)?;
    }
    let say = |s: String| {
        if !quiet {
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
    let what = if jobs.len() == 1 {
        job.run.display().to_string()
    } else {
        format!("{} runs stacked as one model", jobs.len())
    };
    say(format!(
        "run: {what} | device {} | {} train / {} test images | epochs {}..{} of {}",
        crate::util::device::describe(job.device),
        n,
        test_split.len(),
        start.epoch + 1,
        cfg.train.epochs,
        cfg.train.epochs
    ));

    let bs = cfg.train.batch_size as i64;
    let steps_per_epoch = batch::ranges(n, bs).count() as i64;
    // Graph-safe on CUDA: Adam's step factors live on the device.
    let capacity = job.device.is_cuda().then_some(steps_per_epoch);
    let trainer = match stacking {
        None => Trainer::solo(job, capacity, prepared[0].resumed)?,
        Some(stacking) => Trainer::stack(jobs, stacking, capacity, &start)?,
    };
    let Trainer {
        models,
        opt,
        layout,
    } = trainer;
    let solo_view;
    let dyn_models: &dyn Models = match &models {
        TrainedModels::Solo(m) => {
            solo_view = Solo {
                vae: &m.vae,
                noise: Noise::Fresh,
            };
            &solo_view
        }
        TrainedModels::Stack(s) => s.as_ref(),
    };
    let data = StepData {
        models: dyn_models,
        images: &train_x,
        r_loss_factors: jobs.iter().map(|j| j.config.train.r_loss_factor).collect(),
        stream,
        // cuDNN's benchmark mode is on only while the graph is captured (`StepData`): left
        // on, it cost about 0.5 s of autotuning in the first epoch, for the test pass's new
        // shapes, and the eager NCHW step gained nothing from it (H200, gpu-check 2026-11-28).
        cudnn_benchmark: true,
        precision: cfg.train.precision,
    };
    let (mut step, fallback) = TrainStep::new(data, opt, bs, cfg.train.cuda_graph)?;
    if let Some(why) = fallback {
        eprintln!("warning: CUDA graph capture failed: {why}");
    }
    let mut ran_configs = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut ran = job.config.clone();
        ran.train.step_form = Some(step.form());
        write_config(&job.run, &ran)?;
        ran_configs.push(ran);
    }
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
    let mut rows = vec![Vec::new(); jobs.len()];
    let writers = jobs
        .iter()
        .zip(&prepared)
        .map(|(job, p)| -> Result<Option<EventWriter>> {
            if !job.config.train.tensorboard {
                return Ok(None);
            }
            let dir = job.run.join(tensorboard::TENSORBOARD_DIR);
            let context = || format!("writing TensorBoard events into {}", dir.display());
            let mut w = EventWriter::create(&job.run, p.resumed.then_some(p.state.step))
                .with_context(context)?;
            if !p.resumed {
                let text = format!("```toml\n{}```", job.config.to_toml());
                w.text("config", 0, &text).with_context(context)?;
            }
            Ok(Some(w))
        })
        .collect::<Result<Vec<_>>>()?;
    let schedule = Schedule {
        test_images: &test_x,
        images_at,
        train_images: n,
        batch_size: bs,
        seed: cfg.train.data_seed(),
        start: start.epoch,
        end: cfg.train.epochs,
        quiet,
        run_label: job.run.display().to_string(),
        model_labels: jobs.iter().map(|j| j.run.display().to_string()).collect(),
        lr_factor: &|epoch| cfg.train.lr_factor(epoch),
        report_steps: jobs.iter().any(|j| j.config.train.tensorboard),
    };
    // Models that early stopping has ended: a stack trains them on with the others, but their
    // run folders keep the epoch they stopped at.
    let stopped = RefCell::new(vec![false; jobs.len()]);
    let writers = RefCell::new(writers);
    let on_steps = |global: i64, running: &[Losses]| -> Result<()> {
        let stopped = stopped.borrow();
        for (j, w) in writers.borrow_mut().iter_mut().enumerate() {
            if let (Some(w), false) = (w, stopped[j]) {
                w.scalars(global, &[("train/running_loss", running[j].loss)])
                    .with_context(|| format!("writing {}", w.path().display()))?;
            }
        }
        Ok(())
    };
    fit(&mut step, &schedule, on_steps, |end| {
        let mut stopped = stopped.borrow_mut();
        let mut writers = writers.borrow_mut();
        let mut recons: Option<Vec<Tensor>> = None;
        let mut samples: Option<Vec<Tensor>> = None;
        // Each run's own `reconstruction_every` (a stack's models may differ in it).
        let draws: Vec<bool> = jobs
            .iter()
            .map(|j| {
                let every = j.config.train.reconstruction_every;
                every > 0 && (end.epoch % every == 0 || end.epoch == cfg.train.epochs)
            })
            .collect();
        let lrs = end.optimizer.learning_rates();
        let global = end.optimizer.step;
        for (j, job) in jobs.iter().enumerate() {
            if stopped[j] {
                continue;
            }
            let run = &job.run;
            let lr = lrs[j.min(lrs.len() - 1)];
            let row = EpochRow::new(end.epoch, end.train[j], end.test[j], end.seconds, lr);
            metrics::append(&run.join(METRICS_FILE), &row)
                .with_context(|| format!("writing {}", run.join(METRICS_FILE).display()))?;
            let verdict = watches[j].epoch(end.test[j].loss);
            let mut state = TrainState::at(end.epoch, end.optimizer.step, cfg.train.data_seed());
            state.stopped_early = verdict.stop;
            models.save_checkpoint(run, j as i64, end.optimizer, &state)?;
            if verdict.best {
                checkpoint::save_best(run)?;
            }
            let last = end.epoch == cfg.train.epochs || verdict.stop;
            let writer = writers[j].as_mut();
            if draws[j] || (writer.is_some() && last) {
                let all = recons
                    .get_or_insert_with(|| tch::no_grad(|| dyn_models.reconstruct_mean(&recon_x)));
                let grid = images::reconstruction_grid(&recon_x, &all[j]);
                if draws[j] {
                    let path = reconstruction_path(run, end.epoch);
                    images::save_png(&path, &grid)?;
                }
                if let Some(w) = writer {
                    let sample = last.then(|| {
                        samples.get_or_insert_with(|| {
                            tch::no_grad(|| dyn_models.sample(SAMPLE_IMAGES))
                        })[j]
                            .shallow_clone()
                    });
                    log_epoch(w, global, &row, n, &grid, sample.as_ref())
                        .with_context(|| format!("writing {}", w.path().display()))?;
                }
            } else if let Some(w) = writer {
                w.scalars(global, &epoch_scalars(&row, n))
                    .with_context(|| format!("writing {}", w.path().display()))?;
            }
            rows[j].push(row);
            if verdict.stop {
                stopped[j] = true;
                let (wait, best) = watches[j].waited();
                eprintln!(
                    "{}: early stopping after epoch {}: {wait} epochs without the test loss improving on {best:.4} by more than {}; the run stays resumable (a larger --early-stopping trains on)",
                    run.display(),
                    end.epoch,
                    job.config.train.min_delta
                );
            }
        }
        Ok(if stopped.iter().all(|&s| s) {
            Flow::Stop
        } else {
            Flow::Continue
        })
    })?;
    drop(step);
    let stopped = stopped.into_inner();
    let mut runs = Vec::with_capacity(jobs.len());
    for ((job, rows), ran) in jobs.iter().zip(rows).zip(ran_configs) {
        let j = runs.len();
        // A model that early stopping ended inside a stack trained on with the others: its
        // run's state is its checkpoint, not the stack's tensors now.
        let model = if stopped[j] && jobs.len() > 1 {
            checkpoint::load_model(&job.run, job.device)?
        } else {
            models.copy_of(j as i64, &ran, job.device, &job.run)?
        };
        runs.push(Trained {
            epochs: rows.last().map_or(start.epoch, |r| r.epoch),
            rows,
            model,
        });
    }
    Ok(Finished {
        runs,
        test: test_split,
        classes: class_names,
    })
}

fn write_config(run: &Path, cfg: &TrainConfig) -> Result<()> {
    crate::util::fsutil::write_atomic(&run.join(CONFIG_FILE), cfg.to_toml().as_bytes())
        .with_context(|| format!("writing {}", run.join(CONFIG_FILE).display()))
}

/// The model (one, or K stacked) and its optimizer.
enum TrainedModels {
    Solo(Box<crate::model::Loaded>),
    Stack(Box<Stack>),
}

impl TrainedModels {
    /// Model `j`'s trained weights, copied into a fresh model of `config` (the plain layout).
    fn copy_of(
        &self,
        j: i64,
        config: &TrainConfig,
        device: Device,
        run: &Path,
    ) -> Result<crate::model::Loaded> {
        let named = match self {
            TrainedModels::Solo(m) => checkpoint::weights_of(&m.vs),
            TrainedModels::Stack(s) => s.model_state(j).expect("a stack holds its models' tensors"),
        };
        let copy = crate::model::build(config, device, config.train.seed);
        checkpoint::set_weights(&copy.vs, &named, run)?;
        Ok(copy)
    }

    /// Model `j`'s checkpoint into `run`.
    fn save_checkpoint(
        &self,
        run: &Path,
        j: i64,
        opt: &KerasAdam,
        state: &TrainState,
    ) -> Result<()> {
        match self {
            TrainedModels::Solo(m) => checkpoint::save(run, &m.vs, opt, state)?,
            TrainedModels::Stack(s) => {
                let k = s.model.k;
                let weights = s.model_state(j).expect("a stack holds its models' tensors");
                let optimizer: Vec<(String, Tensor)> = opt
                    .state_tensors()
                    .into_iter()
                    .map(|(name, t)| {
                        let p = stack::part(&name, &t, j, k);
                        (name, p)
                    })
                    .collect();
                checkpoint::save_named(run, &weights, &optimizer, state)?
            }
        }
        Ok(())
    }
}

struct Trainer {
    models: TrainedModels,
    opt: KerasAdam,
    layout: Layout,
}

impl Trainer {
    /// One model from its seed, or its run's checkpoint, in the layout fastest on its device.
    fn solo(job: &TrainJob, capacity: Option<i64>, resumed: bool) -> Result<Trainer> {
        let cfg = &job.config;
        let mut model = crate::model::build(cfg, job.device, cfg.train.seed);
        let graphed = job.device.is_cuda() && cfg.train.cuda_graph != CudaGraphMode::Off;
        let layout = model
            .vae
            .set_layout(&model.vs, layout_for(job.device, graphed));
        let params = model.trainable();
        let mut opt = match capacity {
            Some(c) => KerasAdam::with_device_scalars(params, cfg.optim.clone(), c),
            None => KerasAdam::new(params, cfg.optim.clone()),
        };
        if resumed {
            let dir = checkpoint::checkpoint_dir(&job.run);
            checkpoint::load_weights(&model.vs, &dir.join(checkpoint::MODEL_FILE))?;
            let state = checkpoint::read_state(&job.run)?;
            checkpoint::load_optimizer(&job.run, &mut opt, &state)?;
        }
        Ok(Trainer {
            models: TrainedModels::Solo(Box::new(model)),
            opt,
            layout,
        })
    }

    /// K models, each from its own seed or its run's checkpoint, stacked into one (NCHW) with
    /// one optimizer over them all.
    fn stack(
        jobs: &[TrainJob],
        stacking: &Stacking,
        capacity: Option<i64>,
        start: &TrainState,
    ) -> Result<Trainer> {
        let mut solos = Vec::with_capacity(jobs.len());
        let mut optim_parts: Vec<std::collections::HashMap<String, Tensor>> = Vec::new();
        for job in jobs {
            let cfg = &job.config;
            let m = crate::model::build(cfg, job.device, cfg.train.seed);
            if start.epoch > 0 {
                let dir = checkpoint::checkpoint_dir(&job.run);
                checkpoint::load_weights(&m.vs, &dir.join(checkpoint::MODEL_FILE))?;
                let path = dir.join(checkpoint::OPTIMIZER_FILE);
                let saved = Tensor::read_safetensors(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                optim_parts.push(
                    saved
                        .into_iter()
                        .map(|(k, t)| (k, t.to_device(job.device)))
                        .collect(),
                );
            }
            solos.push(m);
        }
        let refs: Vec<&crate::model::Vae> = solos.iter().map(|m| &m.vae).collect();
        let mut model = StackedVae::new(&refs);
        let device = jobs[0].device;
        // The solo model's layout rule (`layout_for`): on 2 CPU cores a stack of 8 ran 203 ms
        // a step channels-last and flipped against 233 NCHW (2026-12-02).
        let cfg = &jobs[0].config;
        let graphed = device.is_cuda() && cfg.train.cuda_graph != CudaGraphMode::Off;
        let layout = model.set_layout(layout_for(device, graphed));
        let configs = jobs.iter().map(|j| j.config.optim.clone()).collect();
        let mut opt = KerasAdam::stacked(model.trainable(), configs, capacity);
        if start.epoch > 0 {
            let mut joined = std::collections::HashMap::new();
            for key in optim_parts[0].keys() {
                let parts = optim_parts
                    .iter()
                    .zip(jobs)
                    .map(|(p, job)| {
                        p.get(key).map(|t| t.shallow_clone()).with_context(|| {
                            format!("{}: the optimizer state has no {key}", job.run.display())
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                joined.insert(key.clone(), stack::join(key, &parts));
            }
            opt.set_state(&joined, start.step, &jobs[0].run.display().to_string())?;
        }
        let rows = Tensor::from_slice(&stacking.rows).to_device(device);
        Ok(Trainer {
            models: TrainedModels::Stack(Box::new(Stack {
                model,
                noise: Noise::Rows {
                    pool: stacking.pool,
                    rows,
                },
            })),
            opt,
            layout,
        })
    }
}

/// Samples in the TensorBoard sample grid.
const SAMPLE_IMAGES: i64 = 16;

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
