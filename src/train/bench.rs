//! `vae-tch bench`: the training step's speed, in-process, for each form, precision and batch
//! size, on a config's model (the seed's by default) and the given images (already on the
//! device). Each measurement builds a
//! fresh model and optimizer, runs warm-up steps (and the capture, for the graph), then times
//! `steps` steps over shuffled batches with the device synchronized at both ends.
//! `scripts/bench.sh` runs it beside the PyTorch baselines and prints the ratios.
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::config::RunConfig;
use crate::config::{CudaGraphMode, Precision, StepForm};
use crate::model::stack::Noise;
use crate::model::Layout;
use crate::train::models::{self, Form};
use crate::train::step::{StepData, TrainStep};

#[derive(Debug, Clone)]
pub struct BenchConfig {
    /// The model, optimizer and `r_loss_factor` timed (the batch size is each measurement's).
    pub config: RunConfig,
    pub device: Device,
    pub batch_sizes: Vec<i64>,
    pub forms: Vec<StepForm>,
    pub steps: usize,
    pub warm_up: usize,
    pub seed: u64,
    /// Run the convolutions channels-last (crate::model::layout) [None: as train does].
    pub channels_last: Option<bool>,
    /// Run the convolutions on flipped images (crate::model::layout) [None: as train does].
    pub flipped: Option<bool>,
    /// Capture the CUDA graph with cuDNN's benchmark mode (`StepData::cudnn_benchmark`; train
    /// does).
    pub cudnn_benchmark: bool,
    /// How many models to time stacked into one step (1: the single model, in its layout).
    pub stacks: Vec<i64>,
    /// The precisions to time (crate::train::precision).
    pub precisions: Vec<Precision>,
    /// After timing, profile `profile_steps` more steps of each case (crate::train::profile)
    /// and write the Chrome trace here (a suffix per case when there are several).
    pub profile: Option<std::path::PathBuf>,
    pub profile_steps: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub trainer: String,
    pub batch_size: i64,
    /// Models trained by each step (K of a stack).
    pub models: i64,
    pub precision: Precision,
    pub steps: usize,
    pub ms_per_step: f64,
    /// Self time per op and kernel over the profiled steps (`BenchConfig::profile`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<Vec<crate::train::profile::Row>>,
}

pub fn sync(device: Device) {
    if let Device::Cuda(i) = device {
        tch::Cuda::synchronize(i as i64);
    }
}

/// The layout `form` asks for: train's (`train::layout_for`) unless `cfg` says otherwise.
fn layout(cfg: &BenchConfig, form: StepForm) -> Layout {
    let train = crate::train::layout_for(cfg.device, form == StepForm::CudaGraph);
    Layout {
        channels_last: cfg.channels_last.unwrap_or(train.channels_last),
        flipped: cfg.flipped.unwrap_or(train.flipped),
    }
}

/// One measurement: a form and precision at one batch size, for one model or `k` stacked.
#[derive(Debug, Clone, Copy)]
struct Case {
    form: StepForm,
    precision: Precision,
    bs: i64,
    k: i64,
}

/// Where the trace of `case` goes: `base` itself when it is the only case, else `base` with
/// the case in its name.
fn trace_path(base: &std::path::Path, case: Case, only: bool) -> std::path::PathBuf {
    if only {
        return base.to_path_buf();
    }
    let stem = base.file_stem().unwrap_or_default().to_string_lossy();
    let name = format!(
        "{stem}-{}-{}-b{}-k{}.json",
        case.form, case.precision, case.bs, case.k
    );
    base.with_file_name(name)
}

/// Times one case (ms per step), and profiles it after when `cfg.profile` asks.
fn time_form(
    images: &Tensor,
    case: Case,
    cfg: &BenchConfig,
    trace: Option<&std::path::Path>,
) -> Result<(f64, Option<Vec<crate::train::profile::Row>>)> {
    let Case {
        form: form_kind,
        precision,
        bs,
        k,
    } = case;
    let n = images.size()[0];
    if n < bs {
        bail!("{n} images are fewer than one batch of {bs}");
    }
    let total = (cfg.warm_up + cfg.steps) as i64;
    let mut config = cfg.config.clone();
    config.train.batch_size = bs as usize;
    // K seed models: seeds seed, seed + 1, ... (one model, or a stack of K as a sweep trains).
    let configs: Vec<RunConfig> = (0..k as u64)
        .map(|j| {
            let mut c = config.clone();
            c.train.seed = cfg.seed + j;
            c
        })
        .collect();
    let refs: Vec<&RunConfig> = configs.iter().collect();
    let form = if k == 1 {
        Form::Solo
    } else {
        Form::Stacked(Noise::Fresh)
    };
    let built = models::build(
        &refs,
        (0..k).map(|_| None).collect(),
        form,
        cfg.device,
        layout(cfg, form_kind),
        cfg.device.is_cuda().then_some(total),
    )?;
    let data = StepData {
        models: built.models.as_ref(),
        images,
        r_loss_factors: vec![config.train.r_loss_factor; k as usize],
        stream: false,
        cudnn_benchmark: cfg.cudnn_benchmark,
        precision,
    };
    let mode = match form_kind {
        StepForm::Eager => CudaGraphMode::Off,
        StepForm::CudaGraph => CudaGraphMode::On,
    };
    let (mut step, _) = TrainStep::new(data, built.opt, bs, mode)?;
    // Full batches only, from one permutation per pass over the images.
    let per_pass = n / bs;
    let mut perm = Tensor::randperm(n, (Kind::Int64, cfg.device));
    let batch = |i: i64, perm: &mut Tensor| {
        if i > 0 && i % per_pass == 0 {
            *perm = Tensor::randperm(n, (Kind::Int64, cfg.device));
        }
        perm.narrow(0, (i % per_pass) * bs, bs)
    };
    step.begin_epoch();
    for i in 0..cfg.warm_up as i64 {
        let idx = batch(i, &mut perm);
        step.run(&idx, None)?;
    }
    sync(cfg.device);
    let t0 = Instant::now();
    for i in cfg.warm_up as i64..total {
        let idx = batch(i, &mut perm);
        step.run(&idx, None)?;
    }
    sync(cfg.device);
    let seconds = t0.elapsed().as_secs_f64();
    let loss = step.sums().sum(Kind::Double).double_value(&[]);
    if !loss.is_finite() {
        bail!("the loss diverged ({loss}) while timing {form_kind} in {precision} at batch {bs}");
    }
    let ms = seconds * 1000.0 / cfg.steps as f64;
    let Some(trace) = trace else {
        return Ok((ms, None));
    };
    let recording = crate::train::profile::start(cfg.device)?;
    for i in total..total + cfg.profile_steps as i64 {
        let idx = batch(i, &mut perm);
        step.run(&idx, None)?;
    }
    sync(cfg.device);
    let events = recording.stop(Some(trace))?;
    Ok((ms, Some(crate::train::profile::summarize(&events))))
}

/// Every (batch size, form, precision, stack) of `cfg`, in that order. A measurement that
/// fails is reported on stderr and left out; the others still run.
pub fn run(images: &Tensor, cfg: &BenchConfig, mut each: impl FnMut(&BenchRow)) -> Vec<BenchRow> {
    let mut cases = Vec::new();
    for &bs in &cfg.batch_sizes {
        for &form in &cfg.forms {
            for &precision in &cfg.precisions {
                for &k in &cfg.stacks {
                    cases.push(Case {
                        form,
                        precision,
                        bs,
                        k,
                    });
                }
            }
        }
    }
    let only = cases.len() == 1;
    let mut rows = Vec::new();
    for case in cases {
        let Case {
            form,
            precision,
            bs,
            k,
        } = case;
        let trace = cfg.profile.as_deref().map(|p| trace_path(p, case, only));
        let lower = "lower --batch-size or --stack";
        let while_ = format!("while timing {form} in {precision} of {k} model(s) at batch {bs}");
        let timed = crate::util::torch_failure::guard(&while_, lower, || {
            time_form(images, case, cfg, trace.as_deref())
        });
        let (ms, profile) = match timed {
            Ok(timed) => timed,
            Err(e) => {
                eprintln!("bench: {e:#}");
                continue;
            }
        };
        let cudnn = if form == StepForm::CudaGraph && !cfg.cudnn_benchmark {
            ", no cudnn.benchmark"
        } else {
            ""
        };
        let what = format!("{form} ({}, {precision}{cudnn})", layout(cfg, form));
        let trainer = if k == 1 {
            format!("vae-tch {what}")
        } else {
            format!("vae-tch stack of {k}, {what}")
        };
        let row = BenchRow {
            trainer,
            batch_size: bs,
            models: k,
            precision,
            steps: cfg.steps,
            ms_per_step: ms,
            profile,
        };
        each(&row);
        rows.push(row);
    }
    rows
}
