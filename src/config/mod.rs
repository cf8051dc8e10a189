//! Configuration as data: defaults equal the seed (Foster, "Generative Deep Learning", ch. 3,
//! `VariationalAutoencoder(...)` for MNIST and its training cell), validation with errors that
//! name the field, and TOML saved beside every checkpoint so that a run rebuilds its model.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod error;
pub mod kinds;
pub mod model;
pub mod overrides;

pub(crate) use error::invalid;
pub use error::ConfigError;
pub use kinds::{CudaGraphMode, DatasetKind, Precision, ResizeMode, StackMode, StepForm};
pub use model::{VaeConfig, MAX_ACTIVATION, MAX_PARAMS};

/// Adam as Keras defines it (keras/src/optimizers/adam.py).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    pub learning_rate: f64,
    pub beta_1: f64,
    pub beta_2: f64,
    /// Keras's "epsilon hat" (added to sqrt(v) before the bias correction), default 1e-7.
    pub epsilon: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            learning_rate: 5e-4,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    pub dataset: DatasetKind,
    /// Where the IDX files are; None means `data/<dataset>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Use only the first N training images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test_limit: Option<usize>,
    /// Image folders: how images reach the model's size.
    pub resize: ResizeMode,
    /// Image folders: the fraction of the images in the test split.
    pub test_fraction: f64,
    /// Image folders: the seed of the train/test split.
    pub split_seed: u64,
    /// Image folders: where the decoded cache goes [default: <data dir>/.vae-tch-cache].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<PathBuf>,
    /// Keep the training images in host memory and stream each batch to the device (for sets
    /// bigger than the GPU's memory); otherwise they go to the device whole.
    pub stream: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::Mnist,
            dir: None,
            train_limit: None,
            test_limit: None,
            resize: ResizeMode::Squash,
            test_fraction: 0.1,
            split_seed: 42,
            cache_dir: None,
            stream: false,
        }
    }
}

impl DataConfig {
    pub fn dir(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| self.dataset.default_dir())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainingConfig {
    pub epochs: usize,
    pub batch_size: usize,
    /// The seed's `r_loss_factor`: weight of the per-image mean squared error against the KL.
    pub r_loss_factor: f64,
    pub seed: u64,
    /// The seed of the data order (each epoch's shuffle) [default: `seed`]. A sweep gives every
    /// model of a stacked group the same one, so that the point trained alone from its config
    /// sees the same batches in the same order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shuffle_seed: Option<u64>,
    /// Write reconstructions of test images every N epochs (and after the last); 0 turns it off.
    pub reconstruction_every: usize,
    /// CUDA graph or eager training steps on CUDA (`train --cuda-graph`).
    pub cuda_graph: CudaGraphMode,
    /// The arithmetic of the step's convolutions and matmuls (`train --precision`); configs
    /// from before the key train as tf32, as they did.
    pub precision: Precision,
    /// The book's `step_decay_schedule`: the learning rate of epoch e (0-based) is
    /// `optim.learning_rate * lr_decay ^ floor(e / lr_decay_every)`; 1.0 is no decay.
    pub lr_decay: f64,
    pub lr_decay_every: usize,
    /// Keras's `EarlyStopping(patience = N)` on the test loss: stop after N epochs in a row
    /// without the best test loss falling by more than `min_delta` [default: off].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub early_stopping: Option<usize>,
    pub min_delta: f64,
    /// Write TensorBoard event files into `<run>/tensorboard/` (`--no-tensorboard`: off).
    pub tensorboard: bool,
    /// The step form that ran last (written by the trainer; not an input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_form: Option<StepForm>,
}

impl TrainingConfig {
    /// The seed each epoch's shuffle derives from (`crate::train::epoch_seed`).
    pub fn data_seed(&self) -> u64 {
        self.shuffle_seed.unwrap_or(self.seed)
    }

    /// The factor on the learning rate in epoch `epoch` (0-based), as the book's
    /// `step_decay_schedule` computes it: `lr_decay ^ floor(epoch / lr_decay_every)`.
    pub fn lr_factor(&self, epoch: usize) -> f64 {
        self.lr_decay
            .powi((epoch / self.lr_decay_every.max(1)) as i32)
    }
}

impl Default for TrainingConfig {
    fn default() -> Self {
        TrainingConfig {
            epochs: 200,
            batch_size: 32,
            r_loss_factor: 1000.0,
            seed: 42,
            shuffle_seed: None,
            reconstruction_every: 20,
            cuda_graph: CudaGraphMode::Auto,
            precision: Precision::default(),
            lr_decay: 1.0,
            lr_decay_every: 1,
            early_stopping: None,
            min_delta: 0.0,
            tensorboard: true,
            step_form: None,
        }
    }
}

/// Everything a run needs; saved as `config.toml` in the run folder.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunConfig {
    pub model: VaeConfig,
    pub optim: AdamConfig,
    pub data: DataConfig,
    pub train: TrainingConfig,
}

impl RunConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        let o = &self.optim;
        if !(o.learning_rate.is_finite() && o.learning_rate > 0.0) {
            return Err(invalid(
                "optim.learning_rate",
                format!("{} is not > 0", o.learning_rate),
            ));
        }
        for (field, b) in [("optim.beta_1", o.beta_1), ("optim.beta_2", o.beta_2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(invalid(field, format!("{b} is not in [0, 1)")));
            }
        }
        if !(o.epsilon.is_finite() && o.epsilon > 0.0) {
            return Err(invalid(
                "optim.epsilon",
                format!("{} is not > 0", o.epsilon),
            ));
        }
        let t = &self.train;
        // TOML's integers are i64: a larger one would not save into config.toml.
        let d = &self.data;
        let integers: [(&'static str, Option<u64>); 10] = [
            ("train.epochs", Some(t.epochs as u64)),
            ("train.batch_size", Some(t.batch_size as u64)),
            ("train.seed", Some(t.seed)),
            ("train.shuffle_seed", t.shuffle_seed),
            (
                "train.reconstruction_every",
                Some(t.reconstruction_every as u64),
            ),
            ("train.lr_decay_every", Some(t.lr_decay_every as u64)),
            ("train.early_stopping", t.early_stopping.map(|v| v as u64)),
            ("data.train_limit", d.train_limit.map(|v| v as u64)),
            ("data.test_limit", d.test_limit.map(|v| v as u64)),
            ("data.split_seed", Some(d.split_seed)),
        ];
        for (field, v) in integers {
            if let Some(v) = v.filter(|&v| v > i64::MAX as u64) {
                return Err(invalid(
                    field,
                    format!(
                        "{v} is more than the largest whole number a config holds ({})",
                        i64::MAX
                    ),
                ));
            }
        }
        if t.batch_size == 0 {
            return Err(invalid("train.batch_size", "must be at least 1"));
        }
        if !(t.lr_decay.is_finite() && t.lr_decay > 0.0) {
            return Err(invalid(
                "train.lr_decay",
                format!("{} is not > 0", t.lr_decay),
            ));
        }
        if t.lr_decay_every == 0 {
            return Err(invalid("train.lr_decay_every", "must be at least 1"));
        }
        if t.early_stopping == Some(0) {
            return Err(invalid("train.early_stopping", "must be at least 1 epoch"));
        }
        if !(t.min_delta.is_finite() && t.min_delta >= 0.0) {
            return Err(invalid(
                "train.min_delta",
                format!("{} is not >= 0", t.min_delta),
            ));
        }
        if !(t.r_loss_factor.is_finite() && t.r_loss_factor >= 0.0) {
            return Err(invalid(
                "train.r_loss_factor",
                format!("{} is not >= 0", t.r_loss_factor),
            ));
        }
        if !(self.data.test_fraction > 0.0 && self.data.test_fraction < 1.0) {
            return Err(invalid(
                "data.test_fraction",
                format!("{} is not in (0, 1)", self.data.test_fraction),
            ));
        }
        let [c, ..] = self.model.input_shape;
        if self.data.dataset == DatasetKind::Folder && c != 1 && c != 3 {
            return Err(invalid(
                "model.input_shape",
                format!("{c} channels: image folders give 1 (grey) or 3 (RGB)"),
            ));
        }
        for (field, l) in [
            ("data.train_limit", self.data.train_limit),
            ("data.test_limit", self.data.test_limit),
        ] {
            if l == Some(0) {
                return Err(invalid(field, "must be at least 1"));
            }
        }
        Ok(())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("RunConfig serializes to TOML")
    }

    pub fn load(path: &Path) -> Result<RunConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let cfg: RunConfig = toml::from_str(&text).map_err(|cause| ConfigError::Parse {
            path: path.to_path_buf(),
            cause,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }
}
