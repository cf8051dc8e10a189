//! The top floor: one module per command, each taking a typed request (the binary's flags become
//! one in src/cli/) and returning what goes to stdout; progress and warnings go to stderr. No
//! command imports another: what two share sits a floor below (`crate::finish`,
//! `crate::run::job`, `crate::eval`).
pub mod attributes;
pub mod bench;
pub mod ending;
pub mod eval;
pub mod export;
pub mod fetch;
pub mod figures;
pub mod import_keras;
pub mod info;
pub mod serve;
pub mod summary;
pub mod sweep;
pub mod train;

/// An error that comes after output that still belongs on stdout (a sweep's table when some of
/// its points failed): the binary prints `printed`, then the error.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct FailedAfter {
    pub printed: String,
    pub message: String,
}

/// A `--config FILE` (a preset, or a run's config.toml), with the flag named in its errors.
pub fn config_file(path: &std::path::Path) -> anyhow::Result<crate::config::RunConfig> {
    use anyhow::Context;
    crate::config::RunConfig::load(path).with_context(|| format!("--config {}", path.display()))
}
