//! `vae-tch import-keras`: a Keras weight file of the book's model as a new run folder at epoch 0
//! (crate::interop::keras_import).
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::config::{DatasetKind, RunConfig};
use crate::interop::keras_import;

/// `vae-tch import-keras`, typed.
#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub weights: PathBuf,
    pub out: PathBuf,
    /// The architecture: a config file, else the seed's with this latent size and data set.
    pub config_file: Option<PathBuf>,
    pub latent_dim: i64,
    pub dataset: DatasetKind,
    /// Import NaN or infinite weights too.
    pub force: bool,
}

pub fn run(req: &ImportRequest) -> Result<String> {
    let config = match &req.config_file {
        Some(path) => super::config_file(path)?,
        None => {
            let mut c = RunConfig::default();
            c.model.latent_dim = req.latent_dim;
            c.data.dataset = req.dataset;
            c
        }
    };
    keras_import::import(&req.weights, &req.out, config, req.force).with_context(|| {
        format!(
            "importing {} into {}",
            req.weights.display(),
            req.out.display()
        )
    })?;
    Ok(format!(
        "{}: run folder from {} (epoch 0; `vae-tch train --resume {} --epochs N` trains on)\n",
        req.out.display(),
        req.weights.display(),
        req.out.display()
    ))
}
