//! The network: the book's encoder (convs, optional BatchNorm and Dropout, Dense mu and
//! log_var), the sampling step, and the mirrored decoder (Dense, Conv2DTranspose, sigmoid).
use tch::{nn, Tensor};

use super::activation::{in_kind_of, leaky_relu};
use super::batch_norm::BatchNorm;
use super::conv::{self, Conv, ConvTranspose};
use super::dense::Dense;
use super::dropout;
use super::layout::{self, channels_last, flip_if, Layout};
use crate::config::VaeConfig;

#[derive(Debug)]
pub struct Encoder {
    pub convs: Vec<Conv>,
    /// One per conv with `use_batch_norm`, else none.
    pub bns: Vec<BatchNorm>,
    dropout: Option<f64>,
    pub mu: Dense,
    pub log_var: Dense,
    slope: f64,
    /// How the convolutions run.
    pub layout: Layout,
}

impl Encoder {
    pub fn new(p: nn::Path, cfg: &VaeConfig) -> Encoder {
        let mut c_in = cfg.input_shape[0];
        let mut convs = Vec::new();
        let mut bns = Vec::new();
        for (i, ((&f, &k), &s)) in cfg
            .encoder_conv_filters
            .iter()
            .zip(&cfg.encoder_conv_kernel_size)
            .zip(&cfg.encoder_conv_strides)
            .enumerate()
        {
            convs.push(Conv::new(&p / format!("conv{}", i + 1), c_in, f, k, s));
            if cfg.use_batch_norm {
                bns.push(BatchNorm::new(&p / format!("bn{}", i + 1), f));
            }
            c_in = f;
        }
        let flat: i64 = cfg.shape_before_flattening().iter().product();
        Encoder {
            convs,
            bns,
            dropout: cfg.use_dropout.then_some(cfg.dropout_rate),
            mu: Dense::new(&p / "mu", flat, cfg.latent_dim),
            log_var: Dense::new(&p / "log_var", flat, cfg.latent_dim),
            slope: cfg.leaky_relu_slope,
            layout: Layout::default(),
        }
    }

    /// Images `[n, c, h, w]` in [0, 1] to (mu, log_var), each `[n, latent_dim]`; inference
    /// (moving statistics, no dropout).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        self.forward_t(x, false)
    }

    /// The same with Keras's `training` flag.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut h = flip_if(x, self.layout.flipped);
        if self.layout.channels_last {
            h = channels_last(&h);
        }
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(&h, self.layout);
            if let Some(bn) = self.bns.get(i) {
                h = bn.forward(&h, train);
            }
            h = leaky_relu(&h, self.slope);
            if let Some(rate) = self.dropout {
                h = dropout::dropout(&h, rate, train);
            }
        }
        // Flatten in torch's (c, h, w) order; only weight transfers to Keras care (NHWC). In
        // another layout the features are read in memory order (no copy) and the dense weights
        // are reordered to match (`Layout::features`).
        let out = |d: &Dense, y: Tensor| in_kind_of(y, &d.weight);
        if self.layout == Layout::default() {
            let h = h.flatten(1, -1);
            return (
                out(&self.mu, self.mu.forward(&h)),
                out(&self.log_var, self.log_var.forward(&h)),
            );
        }
        let size = h.size();
        let chw = [size[1], size[2], size[3]];
        let h = if self.layout.channels_last {
            h.permute([0, 2, 3, 1])
        } else {
            h.shallow_clone()
        }
        .reshape([size[0], -1]);
        let dense = |d: &Dense| {
            let weight = self
                .layout
                .features(&d.weight.view([-1, chw[0], chw[1], chw[2]]));
            out(d, h.linear(&weight, Some(&d.bias)))
        };
        (dense(&self.mu), dense(&self.log_var))
    }
}

#[derive(Debug)]
pub struct Decoder {
    pub fc: Dense,
    pub deconvs: Vec<ConvTranspose>,
    /// One per transposed conv but the last with `use_batch_norm`, else none.
    pub bns: Vec<BatchNorm>,
    dropout: Option<f64>,
    shape: [i64; 3],
    slope: f64,
    /// How the transposed convolutions run.
    pub layout: Layout,
}

impl Decoder {
    pub fn new(p: nn::Path, cfg: &VaeConfig) -> Decoder {
        let shape = cfg.shape_before_flattening();
        let fc = Dense::new(&p / "fc", cfg.latent_dim, shape.iter().product());
        let mut c_in = shape[0];
        let mut deconvs = Vec::new();
        let mut bns = Vec::new();
        let m = cfg.decoder_conv_t_filters.len();
        for (i, ((&f, &k), &s)) in cfg
            .decoder_conv_t_filters
            .iter()
            .zip(&cfg.decoder_conv_t_kernel_size)
            .zip(&cfg.decoder_conv_t_strides)
            .enumerate()
        {
            deconvs.push(ConvTranspose::new(
                &p / format!("deconv{}", i + 1),
                c_in,
                f,
                k,
                s,
            ));
            if cfg.use_batch_norm && i + 1 < m {
                bns.push(BatchNorm::new(&p / format!("bn{}", i + 1), f));
            }
            c_in = f;
        }
        Decoder {
            fc,
            deconvs,
            bns,
            dropout: cfg.use_dropout.then_some(cfg.dropout_rate),
            shape,
            slope: cfg.leaky_relu_slope,
            layout: Layout::default(),
        }
    }

    /// Latent points `[n, latent_dim]` to images `[n, c, h, w]` in (0, 1); inference (moving
    /// statistics, no dropout).
    pub fn forward(&self, z: &Tensor) -> Tensor {
        self.forward_t(z, false)
    }

    /// The same with Keras's `training` flag.
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Tensor {
        let [c, h, w] = self.shape;
        let mut x = if self.layout == Layout::default() {
            self.fc.forward(z).view([-1, c, h, w])
        } else {
            // The dense layer's outputs in the layout's memory order (`Layout::features`).
            let weight = self.fc.weight.view([c, h, w, -1]).permute([3, 0, 1, 2]);
            let bias = self.fc.bias.view([1, c, h, w]);
            let y = z.linear(
                &self.layout.features(&weight).tr(),
                Some(&self.layout.features(&bias).view([-1])),
            );
            if self.layout.channels_last {
                y.view([-1, h, w, c]).permute([0, 3, 1, 2])
            } else {
                y.view([-1, c, h, w])
            }
        };
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            x = deconv.forward(&x, self.layout);
            if i == last {
                let x = in_kind_of(x, &deconv.weight).sigmoid();
                return flip_if(&x, self.layout.flipped);
            }
            if let Some(bn) = self.bns.get(i) {
                x = bn.forward(&x, train);
            }
            x = leaky_relu(&x, self.slope);
            if let Some(rate) = self.dropout {
                x = dropout::dropout(&x, rate, train);
            }
        }
        x
    }
}

/// z = mu + exp(log_var / 2) * eps: the seed's `sampling` Lambda, with eps given.
pub fn reparameterize(mu: &Tensor, log_var: &Tensor, eps: &Tensor) -> Tensor {
    mu + (log_var * 0.5).exp() * eps
}

/// What one pass through the VAE gives.
#[derive(Debug)]
pub struct VaeOutput {
    pub mu: Tensor,
    pub log_var: Tensor,
    pub z: Tensor,
    pub reconstruction: Tensor,
}

#[derive(Debug)]
pub struct Vae {
    pub config: VaeConfig,
    pub encoder: Encoder,
    pub decoder: Decoder,
}

impl Vae {
    /// Creates the variables under `p` (`encoder.*`, `decoder.*`), glorot-initialised from
    /// torch's generator: call `tch::manual_seed` first for reproducible weights.
    pub fn new(p: &nn::Path, config: &VaeConfig) -> Vae {
        Vae {
            config: config.clone(),
            encoder: Encoder::new(p / "encoder", config),
            decoder: Decoder::new(p / "decoder", config),
        }
    }

    /// Puts the model in `want` (crate::model::layout::put: the same numbers to float rounding,
    /// tests/layout.rs) and returns the layout in effect: not flipped where a transposed conv has
    /// no exact flipped form. Call it before the optimizer takes the parameters.
    pub fn set_layout(&mut self, want: Layout) -> Layout {
        let weights: Vec<&Tensor> = (self.encoder.convs.iter().map(|c| &c.weight))
            .chain(self.decoder.deconvs.iter().map(|d| &d.weight))
            .collect();
        let flippable = conv::flippable(&self.decoder.deconvs);
        let layout = layout::put(self.encoder.layout, want, &weights, flippable);
        self.encoder.layout = layout;
        self.decoder.layout = layout;
        layout
    }

    /// Encode, sample z with eps ~ N(0, I) from torch's generator, decode; `train` is Keras's
    /// `training` flag (true in a training step, false in evaluation).
    pub fn forward(&self, x: &Tensor, train: bool) -> VaeOutput {
        self.forward_noise(x, train, |mu| mu.randn_like())
    }

    /// The same with eps drawn by `eps` (given mu): how a sweep holds a model's noise to its
    /// own row of a shared draw (`stack::Noise`).
    pub fn forward_noise(
        &self,
        x: &Tensor,
        train: bool,
        eps: impl FnOnce(&Tensor) -> Tensor,
    ) -> VaeOutput {
        let (mu, log_var) = self.encoder.forward_t(x, train);
        let eps = eps(&mu);
        self.decode_sample(mu, log_var, &eps, train)
    }

    /// The decoder half with eps given (deterministic; eps = 0 reconstructs through mu), in
    /// inference mode.
    pub fn forward_with_eps(&self, mu: Tensor, log_var: Tensor, eps: &Tensor) -> VaeOutput {
        self.decode_sample(mu, log_var, eps, false)
    }

    fn decode_sample(&self, mu: Tensor, log_var: Tensor, eps: &Tensor, train: bool) -> VaeOutput {
        let z = reparameterize(&mu, &log_var, eps);
        let reconstruction = self.decoder.forward_t(&z, train);
        VaeOutput {
            mu,
            log_var,
            z,
            reconstruction,
        }
    }

    /// The non-trainable buffers (BatchNorm's moving statistics), which training updates.
    pub fn buffers(&self) -> Vec<Tensor> {
        self.encoder
            .bns
            .iter()
            .chain(&self.decoder.bns)
            .flat_map(|bn| {
                [
                    bn.running_mean.shallow_clone(),
                    bn.running_var.shallow_clone(),
                ]
            })
            .collect()
    }

    /// Reconstruction through the latent mean, no sampling.
    pub fn reconstruct_mean(&self, x: &Tensor) -> Tensor {
        self.decoder.forward(&self.encoder.forward(x).0)
    }
}
