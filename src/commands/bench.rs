//! `vae-tch bench`: the training step's speed (crate::train::bench) on a config's model, over a
//! data set's training images or random ones, in every form, precision, batch size and stack
//! asked; each row as it is measured, then the profiles.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::Device;

use crate::config::overrides::Overrides;
use crate::config::{CudaGraphMode, DatasetKind, Precision, RunConfig, StepForm};
use crate::data::SplitName;
use crate::train::bench::{self, BenchConfig, BenchRow};

/// `vae-tch bench`, typed.
#[derive(Debug, Clone)]
pub struct BenchRequest {
    pub config_file: Option<PathBuf>,
    pub input_shape: Option<[i64; 3]>,
    pub dataset: Option<DatasetKind>,
    pub data_dir: Option<PathBuf>,
    /// Random images instead of a data set.
    pub synthetic: Option<i64>,
    pub device: Device,
    pub batch_sizes: Vec<i64>,
    /// Empty: the config's.
    pub precisions: Vec<Precision>,
    pub steps: usize,
    pub warm_up: usize,
    pub cuda_graph: CudaGraphMode,
    pub channels_last: Option<bool>,
    pub flipped: Option<bool>,
    pub cudnn_benchmark: bool,
    pub stacks: Vec<i64>,
    pub json: Option<PathBuf>,
    pub profile: Option<PathBuf>,
    pub profile_steps: usize,
}

/// The table's header; `row` formats each measurement under it.
pub const HEADER: &str =
    "| trainer | batch | models | ms/step | images/s (all models) |\n|---|---|---|---|---|";

/// One measurement as a table row.
pub fn row(r: &BenchRow) -> String {
    format!(
        "| {} | {} | {} | {:.3} | {:.0} |",
        r.trainer,
        r.batch_size,
        r.models,
        r.ms_per_step,
        (r.batch_size * r.models) as f64 * 1000.0 / r.ms_per_step
    )
}

/// Times every case; `each` gets each row's line as it is measured. Returns the profiles'
/// tables (empty without `--profile`).
pub fn run(req: &BenchRequest, mut each: impl FnMut(&str)) -> Result<String> {
    let device = req.device;
    let forms = match (req.cuda_graph, device.is_cuda()) {
        (CudaGraphMode::Off, _) | (CudaGraphMode::Auto, false) => vec![StepForm::Eager],
        (CudaGraphMode::On, false) => anyhow::bail!(
            "--cuda-graph on needs a CUDA device (got --device {})",
            crate::util::device::name(device)
        ),
        (CudaGraphMode::On, true) => vec![StepForm::CudaGraph],
        (CudaGraphMode::Auto, true) => vec![StepForm::Eager, StepForm::CudaGraph],
    };
    let mut config = match &req.config_file {
        Some(path) => super::config_file(path)?,
        None => RunConfig::default(),
    };
    Overrides {
        dataset: req.dataset,
        input_shape: req.input_shape,
        ..Overrides::default()
    }
    .apply(&mut config);
    config
        .validate()
        .context("the benchmark's config (--config, --input-shape)")?;
    if let Some(path) = &req.profile {
        if path.is_dir() {
            anyhow::bail!(
                "--profile {}: a folder; give the file the Chrome trace goes to, e.g. {}",
                path.display(),
                path.join("trace.json").display()
            );
        }
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            anyhow::bail!(
                "--profile {}: the folder {} does not exist",
                path.display(),
                folder.display()
            );
        }
    }
    let precisions = if req.precisions.is_empty() {
        vec![config.train.precision]
    } else {
        req.precisions.clone()
    };
    let largest = req.batch_sizes.iter().copied().max().unwrap_or(32);
    let synthetic = match req.synthetic {
        Some(n) if n < largest => {
            anyhow::bail!("--synthetic {n}: fewer images than one batch of {largest}")
        }
        Some(n) => Some(n),
        None if config.data.dataset == DatasetKind::Folder && req.data_dir.is_none() => {
            Some(largest * 8)
        }
        None => None,
    };
    // An image folder's split lives in its cache's memory map: kept until the end, as the
    // images on the CPU are views into it.
    let mut split_kept = None;
    let (images, what) = match synthetic {
        Some(n) => {
            let [c, h, w] = config.model.input_shape;
            tch::manual_seed(0);
            let x = tch::Tensor::randint(256, [n, c, h, w], (tch::Kind::Uint8, device));
            (x, format!("{n} random {c}x{h}x{w} images"))
        }
        None => {
            let kind = config.data.dataset;
            let dir = req.data_dir.clone().unwrap_or_else(|| kind.default_dir());
            let (split, _) = crate::data::open_split(&config, &dir, SplitName::Train)?;
            let what = format!("{} training images of {}", split.len(), dir.display());
            let images = split.images.to_device(device);
            split_kept = Some(split);
            (images, what)
        }
    };
    let cfg = BenchConfig {
        config,
        device,
        batch_sizes: req.batch_sizes.clone(),
        forms,
        steps: req.steps,
        warm_up: req.warm_up,
        seed: 0,
        channels_last: req.channels_last,
        flipped: req.flipped,
        cudnn_benchmark: req.cudnn_benchmark,
        stacks: req.stacks.clone(),
        precisions,
        profile: req.profile.clone(),
        profile_steps: req.profile_steps,
    };
    eprintln!("bench: {what} on {}", crate::util::device::describe(device));
    each(HEADER);
    let rows = bench::run(&images, &cfg, |r| each(&row(r)));
    drop(split_kept);
    let mut printed = String::new();
    for r in &rows {
        if let Some(profile) = &r.profile {
            let steps = cfg.profile_steps;
            printed += &format!(
                "\nWhere the time of `{}` at batch {} goes ({steps} profiled steps):\n\n{}\n",
                r.trainer,
                r.batch_size,
                crate::train::profile::table(profile, steps, 15)
            );
        }
    }
    if let Some(path) = &req.json {
        let text = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let cases = cfg.batch_sizes.len() * cfg.forms.len() * cfg.stacks.len() * cfg.precisions.len();
    if rows.len() < cases {
        anyhow::bail!("some measurements failed (see above)");
    }
    Ok(printed)
}
