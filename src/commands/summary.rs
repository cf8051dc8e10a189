//! `vae-tch summary`: the Keras-style table of layers, output shapes and parameter counts of a
//! config's model (the seed's, a file's, or a run's).
use std::path::PathBuf;

use anyhow::Result;

use crate::config::RunConfig;
use crate::model::summary;
use crate::run::checkpoint;

/// Whose model `summary` shows.
#[derive(Debug, Clone)]
pub enum SummaryOf {
    /// The seed's, with this latent size.
    Seed {
        latent_dim: i64,
    },
    ConfigFile(PathBuf),
    Run(PathBuf),
}

pub fn run(of: &SummaryOf) -> Result<String> {
    let config = match of {
        SummaryOf::Seed { latent_dim } => {
            let mut c = RunConfig::default();
            c.model.latent_dim = *latent_dim;
            c
        }
        SummaryOf::ConfigFile(path) => super::config_file(path)?,
        SummaryOf::Run(run) => checkpoint::read_config(run)?,
    };
    config.validate()?;
    let model = crate::model::build(&config, tch::Device::Cpu, 0);
    Ok(summary::render(&model.vae))
}
