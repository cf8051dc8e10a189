//! Configuration as data: defaults equal the seed (Foster, "Generative Deep Learning", ch. 3,
//! `VariationalAutoencoder(...)` for MNIST and its training cell), validation with errors that
//! name the field, and TOML saved beside every checkpoint so that a run rebuilds its model.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod kinds;
pub mod overrides;

pub use kinds::{CudaGraphMode, DatasetKind, Precision, ResizeMode, StackMode, StepForm};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid config: {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: not a valid vae-tch config: {cause}")]
    Parse {
        path: PathBuf,
        cause: toml::de::Error,
    },
}

/// Models above these are refused before any tensor is made: 500 million parameters is 8 GB with
/// Adam's state; 200 million values per image in one layer is 25.6 GB for a batch of 32.
pub const MAX_PARAMS: u64 = 500_000_000;
pub const MAX_ACTIVATION: u64 = 200_000_000;

fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field,
        message: message.into(),
    }
}

/// The network, named as the book's constructor arguments (`z_dim` is `latent_dim` here).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeConfig {
    /// Input as (channels, height, width).
    pub input_shape: [i64; 3],
    pub encoder_conv_filters: Vec<i64>,
    pub encoder_conv_kernel_size: Vec<i64>,
    pub encoder_conv_strides: Vec<i64>,
    pub decoder_conv_t_filters: Vec<i64>,
    pub decoder_conv_t_kernel_size: Vec<i64>,
    pub decoder_conv_t_strides: Vec<i64>,
    pub latent_dim: i64,
    /// Keras `LeakyReLU()` defaults to 0.3 (torch's to 0.01).
    pub leaky_relu_slope: f64,
    /// BatchNormalization after each conv but the decoder's last (the book's faces model).
    pub use_batch_norm: bool,
    /// Dropout after each activation (the book's faces model), at `dropout_rate`.
    pub use_dropout: bool,
    pub dropout_rate: f64,
}

impl Default for VaeConfig {
    fn default() -> Self {
        VaeConfig {
            input_shape: [1, 28, 28],
            encoder_conv_filters: vec![32, 64, 64, 64],
            encoder_conv_kernel_size: vec![3, 3, 3, 3],
            encoder_conv_strides: vec![1, 2, 2, 1],
            decoder_conv_t_filters: vec![64, 64, 32, 1],
            decoder_conv_t_kernel_size: vec![3, 3, 3, 3],
            decoder_conv_t_strides: vec![1, 2, 2, 1],
            latent_dim: 2,
            leaky_relu_slope: 0.3,
            use_batch_norm: false,
            use_dropout: false,
            // The book's Dropout(rate=0.25).
            dropout_rate: 0.25,
        }
    }
}

impl VaeConfig {
    /// Spatial size after each encoder conv ('same': ceil(n / stride)), as (h, w).
    pub fn encoder_sizes(&self) -> Vec<(i64, i64)> {
        let [_, mut h, mut w] = self.input_shape;
        self.encoder_conv_strides
            .iter()
            .map(|&s| {
                h = (h + s - 1) / s;
                w = (w + s - 1) / s;
                (h, w)
            })
            .collect()
    }

    /// The encoder's last feature map (c, h, w): what Flatten sees and the decoder reshapes to.
    pub fn shape_before_flattening(&self) -> [i64; 3] {
        let (h, w) = *self
            .encoder_sizes()
            .last()
            .expect("validated: at least one conv");
        [*self.encoder_conv_filters.last().expect("validated"), h, w]
    }

    /// Spatial size after each decoder transposed conv ('same': n * stride), as (h, w).
    pub fn decoder_sizes(&self) -> Vec<(i64, i64)> {
        let [_, mut h, mut w] = self.shape_before_flattening();
        self.decoder_conv_t_strides
            .iter()
            .map(|&s| {
                h *= s;
                w *= s;
                (h, w)
            })
            .collect()
    }

    /// The parameter count (BatchNorm statistics included), from the config alone, saturating:
    /// checked before any tensor is made.
    pub fn param_estimate(&self) -> u64 {
        let u = |v: i64| v.max(0) as u64;
        let mut n = 0u64;
        let mut c_in = u(self.input_shape[0]);
        for (&f, &k) in self
            .encoder_conv_filters
            .iter()
            .zip(&self.encoder_conv_kernel_size)
        {
            n = n.saturating_add(c_in.saturating_mul(u(f)).saturating_mul(u(k * k)) + u(f));
            c_in = u(f);
        }
        let flat = self
            .encoder_sizes()
            .last()
            .map_or(0, |&(h, w)| c_in.saturating_mul(u(h)).saturating_mul(u(w)));
        let latent = u(self.latent_dim);
        // mu, log_var and the decoder's Dense, weights and biases.
        n = n
            .saturating_add(flat.saturating_mul(latent).saturating_mul(3))
            .saturating_add(latent.saturating_mul(2))
            .saturating_add(flat);
        let mut c_in = *self.encoder_conv_filters.last().unwrap_or(&0) as u64;
        for (&f, &k) in self
            .decoder_conv_t_filters
            .iter()
            .zip(&self.decoder_conv_t_kernel_size)
        {
            n = n.saturating_add(c_in.saturating_mul(u(f)).saturating_mul(u(k * k)) + u(f));
            c_in = u(f);
        }
        if self.use_batch_norm {
            let m = self.decoder_conv_t_filters.len().saturating_sub(1);
            let bn: u64 = self
                .encoder_conv_filters
                .iter()
                .chain(&self.decoder_conv_t_filters[..m])
                .map(|&f| 4 * u(f))
                .sum();
            n = n.saturating_add(bn);
        }
        n
    }

    /// The most values one image makes in any layer output (input included), saturating.
    pub fn largest_activation(&self) -> u64 {
        let u = |v: i64| v.max(0) as u64;
        let [c, h, w] = self.input_shape;
        let mut most = u(c).saturating_mul(u(h)).saturating_mul(u(w));
        let layers = self
            .encoder_conv_filters
            .iter()
            .zip(self.encoder_sizes())
            .chain(self.decoder_conv_t_filters.iter().zip(self.decoder_sizes()));
        for (&f, (h, w)) in layers {
            most = most.max(u(f).saturating_mul(u(h)).saturating_mul(u(w)));
        }
        most
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let [c, h, w] = self.input_shape;
        if c < 1 || h < 1 || w < 1 {
            return Err(invalid(
                "model.input_shape",
                format!("{:?} has a size below 1", self.input_shape),
            ));
        }
        let n = self.encoder_conv_filters.len();
        if n == 0 {
            return Err(invalid(
                "model.encoder_conv_filters",
                "needs at least one layer",
            ));
        }
        if self.encoder_conv_kernel_size.len() != n || self.encoder_conv_strides.len() != n {
            return Err(invalid(
                "model.encoder_conv_*",
                "filters, kernel sizes and strides differ in length",
            ));
        }
        let m = self.decoder_conv_t_filters.len();
        if m == 0 {
            return Err(invalid(
                "model.decoder_conv_t_filters",
                "needs at least one layer",
            ));
        }
        if self.decoder_conv_t_kernel_size.len() != m || self.decoder_conv_t_strides.len() != m {
            return Err(invalid(
                "model.decoder_conv_t_*",
                "filters, kernel sizes and strides differ in length",
            ));
        }
        let all = [
            ("model.encoder_conv_filters", &self.encoder_conv_filters),
            (
                "model.encoder_conv_kernel_size",
                &self.encoder_conv_kernel_size,
            ),
            ("model.encoder_conv_strides", &self.encoder_conv_strides),
            ("model.decoder_conv_t_filters", &self.decoder_conv_t_filters),
            (
                "model.decoder_conv_t_kernel_size",
                &self.decoder_conv_t_kernel_size,
            ),
            ("model.decoder_conv_t_strides", &self.decoder_conv_t_strides),
        ];
        for (field, v) in all {
            if v.iter().any(|&x| x < 1) {
                return Err(invalid(field, format!("{v:?} has a value below 1")));
            }
        }
        for (&k, &s) in self
            .decoder_conv_t_kernel_size
            .iter()
            .zip(&self.decoder_conv_t_strides)
        {
            if k < s {
                return Err(invalid(
                    "model.decoder_conv_t_kernel_size",
                    format!("kernel {k} is smaller than its stride {s}"),
                ));
            }
        }
        if self.decoder_conv_t_filters[m - 1] != c {
            return Err(invalid(
                "model.decoder_conv_t_filters",
                format!(
                    "the last layer has {} filters, the input {c} channels",
                    self.decoder_conv_t_filters[m - 1]
                ),
            ));
        }
        let out = *self.decoder_sizes().last().expect("m > 0");
        if out != (h, w) {
            return Err(invalid(
                "model.decoder_conv_t_strides",
                format!("the decoder ends at {out:?}, the input is {:?}", (h, w)),
            ));
        }
        if self.latent_dim < 1 {
            return Err(invalid(
                "model.latent_dim",
                format!("{} is below 1", self.latent_dim),
            ));
        }
        let act = self.largest_activation();
        if act > MAX_ACTIVATION {
            return Err(invalid(
                "model.input_shape",
                format!(
                    "{:?}: the largest layer output holds {act} values per image ({:.1} GB a batch of 32 as float32), more than the {MAX_ACTIVATION} vae-tch allows",
                    self.input_shape,
                    act as f64 * 32.0 * 4e-9
                ),
            ));
        }
        let params = self.param_estimate();
        if params > MAX_PARAMS {
            return Err(invalid(
                "model",
                format!(
                    "about {params} parameters ({:.1} GB as float32, {:.1} GB with Adam's state): more than the {MAX_PARAMS} vae-tch allows; lower latent_dim, the filters or the input size",
                    params as f64 * 4e-9,
                    params as f64 * 16e-9
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            return Err(invalid(
                "model.dropout_rate",
                format!("{} is not in [0, 1)", self.dropout_rate),
            ));
        }
        if !(self.leaky_relu_slope.is_finite() && self.leaky_relu_slope >= 0.0) {
            return Err(invalid(
                "model.leaky_relu_slope",
                format!("{} is not a slope >= 0", self.leaky_relu_slope),
            ));
        }
        Ok(())
    }
}

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
pub struct TrainConfig {
    pub model: VaeConfig,
    pub optim: AdamConfig,
    pub data: DataConfig,
    pub train: TrainingConfig,
}

impl TrainConfig {
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
        toml::to_string_pretty(self).expect("TrainConfig serializes to TOML")
    }

    pub fn load(path: &Path) -> Result<TrainConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let cfg: TrainConfig = toml::from_str(&text).map_err(|cause| ConfigError::Parse {
            path: path.to_path_buf(),
            cause,
        })?;
        cfg.validate()?;
        Ok(cfg)
    }
}
