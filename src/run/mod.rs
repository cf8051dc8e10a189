//! The run folder: `config.toml`, `metrics.csv`, `checkpoint/`, `data.toml`, the lock, and the
//! job that trains a run folder through `crate::train`.
pub mod checkpoint;
pub mod data;
pub mod data_identity;
pub mod hparams;
pub mod job;
pub mod lock;
pub mod metrics;
pub mod recorder;
pub mod tensorboard;
pub mod watch;
