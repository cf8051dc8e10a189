//! The network's config, named as the book's constructor arguments (`VariationalAutoencoder(
//! input_dim, encoder_conv_filters, ...)`; `z_dim` is `latent_dim` here), with the shapes it
//! implies and a validation that names the field, refusing absurd sizes before any tensor is
//! made.
use serde::{Deserialize, Serialize};

use super::error::{invalid, ConfigError};

/// Models above these are refused before any tensor is made: 500 million parameters is 8 GB with
/// Adam's state; 200 million values per image in one layer is 25.6 GB for a batch of 32.
pub const MAX_PARAMS: u64 = 500_000_000;
pub const MAX_ACTIVATION: u64 = 200_000_000;

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
