//! `vae-tch eval`: a run's checkpoint in nats (crate::eval), on a split of its data, printed as a
//! table or as JSON (with the split, the checkpoint, its epoch and the seed).
use std::path::PathBuf;

use anyhow::{Context, Result};
use tch::Device;

use crate::data::SplitName;
use crate::eval::{self, Record, Samples};
use crate::run::checkpoint::{self, Pick};
use crate::run::data::RunData;
use crate::util::torch_failure::guard;

/// `vae-tch eval`, typed.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    pub run: PathBuf,
    pub split: SplitName,
    pub limit: Option<usize>,
    /// Samples per image (at least 1).
    pub k: i64,
    pub seed: u64,
    pub device: Device,
    pub data_dir: Option<PathBuf>,
    pub checkpoint: Pick,
    pub json: bool,
    /// Test hook: the samples' noise (`eps`, `[k, N, latent]`) from a safetensors file.
    pub eps: Option<PathBuf>,
}

/// Evaluates the request's checkpoint; returns the table or the JSON.
pub fn run(req: &EvalRequest) -> Result<String> {
    let src = RunData {
        run: &req.run,
        data_dir: req.data_dir.as_deref(),
        device: req.device,
        checkpoint: req.checkpoint,
    };
    let loaded = src.model()?;
    let bad = crate::model::non_finite(&loaded.state_dict());
    if let Some((name, n, of)) = bad.first() {
        anyhow::bail!(
            "{}: the checkpoint's weights are not all finite ({name} has {n} NaN or infinite values of {of}; {} tensors in all): a model with them evaluates to nothing meaningful; train from an earlier checkpoint",
            req.run.display(),
            bad.len()
        );
    }
    let split = src.split(&loaded, req.split)?.limit(req.limit);
    if split.is_empty() {
        anyhow::bail!(
            "the {} split of run {} has no images",
            req.split.name(),
            req.run.display()
        );
    }
    let given = match &req.eps {
        Some(path) => Some(read_eps(
            path,
            [req.k, split.len(), loaded.config.model.latent_dim],
        )?),
        None => None,
    };
    let samples = match &given {
        Some(e) => Samples::Given(e),
        None => Samples::Drawn,
    };
    tch::manual_seed(req.seed as i64);
    let lower = format!(
        "lower --k (it is {}; each image's k samples are decoded together)",
        req.k
    );
    let while_ = format!("while evaluating {}", req.run.display());
    let report = guard(&while_, &lower, || {
        Ok(eval::evaluate_model(
            &loaded,
            &split.images,
            req.k,
            samples,
            req.device,
        ))
    })?;
    let record = Record {
        split: req.split.name().into(),
        checkpoint: match req.checkpoint {
            Pick::Last => "last".into(),
            Pick::Best => "best".into(),
        },
        epoch: checkpoint::read_state_of(&req.run, req.checkpoint)?.epoch,
        seed: req.seed,
        report,
    };
    if req.json {
        return Ok(serde_json::to_string_pretty(&record)? + "\n");
    }
    Ok(format!(
        "eval {} ({} checkpoint, epoch {}): {} {} images, k = {}, seed {}\n{}\n",
        req.run.display(),
        record.checkpoint,
        record.epoch,
        record.report.images,
        req.split.name(),
        req.k,
        req.seed,
        record.report
    ))
}

/// `--eps FILE`: a safetensors file's `eps` tensor of shape `want` (k, images, latent).
fn read_eps(path: &std::path::Path, want: [i64; 3]) -> Result<tch::Tensor> {
    let named =
        tch::Tensor::read_safetensors(path).with_context(|| format!("--eps {}", path.display()))?;
    let eps = named
        .into_iter()
        .find(|(n, _)| n == "eps")
        .map(|(_, t)| t)
        .with_context(|| format!("--eps {}: no tensor named eps", path.display()))?;
    if eps.size() != want {
        anyhow::bail!(
            "--eps {}: eps has shape {:?}, this evaluation needs {want:?} (k, images, latent)",
            path.display(),
            eps.size()
        );
    }
    Ok(eps)
}
