//! K models of one shape side by side, as one wider model: the sweep's stacked form (issue 16).
//! Every model sees the same batch. The first conv is one conv with K x its filters (the input is
//! shared); every later conv and transposed conv is one grouped conv (`groups = K`, model j's
//! channels at j * c .. (j + 1) * c); BatchNorm runs over the K x c channels, which is each
//! model's own per-channel statistics; the Dense layers are one batched matmul over `[K, B, .]`.
//! So one stacked pass is the same number of kernels whatever K is, and each model's numbers
//! are its solo numbers (tests/stack.rs: outputs, losses and gradients of K = 3 against 3 solo
//! models). Latents are `[K, B, L]`; images out are `[B, K, C, H, W]`. It is built from solo
//! models in the plain layout (NCHW, unflipped) and may then run channels-last and flipped as
//! a solo model does (`set_layout`: crate::model::layout::put); its tensors in and out stay plain.
use tch::{Kind, Tensor};

use super::{
    channels_last, flip_if, in_kind_of, leaky_relu, reparameterize, BatchNorm, Conv, ConvTranspose,
    Layout, Vae,
};
use crate::config::VaeConfig;

/// Where a stacked pass's random numbers (the latent noise, dropout's masks) come from.
#[derive(Debug)]
pub enum Noise {
    /// Fresh draws for the K models.
    Fresh,
    /// One draw for `pool` models, of which model j takes row `rows[j]` (int64 `[K]`, on the
    /// model's device): a model's noise is then the same whichever models share its stack, so
    /// a sweep gives the same numbers however its groups are split (over shards, or to fit in
    /// memory). It costs drawing the pool's noise, `pool / K` times a stack's own.
    Rows { pool: i64, rows: Tensor },
}

impl Noise {
    /// Standard normal noise of `shape` `[K, ...]`.
    pub fn randn(&self, shape: &[i64], like: &Tensor) -> Tensor {
        self.draw(shape, like, |s, o| Tensor::randn(s, o))
    }

    /// Uniform [0, 1) noise of `shape` `[K, ...]`.
    fn rand(&self, shape: &[i64], like: &Tensor) -> Tensor {
        self.draw(shape, like, |s, o| Tensor::rand(s, o))
    }

    fn draw(
        &self,
        shape: &[i64],
        like: &Tensor,
        f: fn(&[i64], (Kind, tch::Device)) -> Tensor,
    ) -> Tensor {
        let opts = (like.kind(), like.device());
        match self {
            Noise::Fresh => f(shape, opts),
            Noise::Rows { pool, rows } => {
                let mut s = shape.to_vec();
                s[0] = *pool;
                f(&s, opts).index_select(0, rows)
            }
        }
    }
}

/// Whether a stacked tensor of `name` holds the K models on a new first axis (the Dense
/// layers), rather than side by side along its first axis (convolutions, BatchNorm).
fn on_new_axis(name: &str) -> bool {
    let name = name.trim_start_matches("m.").trim_start_matches("v.");
    name.starts_with("encoder.mu.")
        || name.starts_with("encoder.log_var.")
        || name.starts_with("decoder.fc.")
}

/// Model `j`'s part (of `k`) of the stacked tensor `t` of `name` (a state dict key, or an
/// optimizer's `m.<key>` / `v.<key>`): a contiguous copy of the solo tensor.
pub fn part(name: &str, t: &Tensor, j: i64, k: i64) -> Tensor {
    let t = t.detach();
    if on_new_axis(name) {
        t.get(j).contiguous()
    } else {
        let n = t.size()[0] / k;
        t.narrow(0, j * n, n).contiguous()
    }
}

/// The stacked tensor of `name` from the K models' solo tensors (the inverse of `part`).
pub fn join(name: &str, parts: &[Tensor]) -> Tensor {
    tch::no_grad(|| {
        if on_new_axis(name) {
            Tensor::stack(parts, 0)
        } else {
            Tensor::cat(parts, 0)
        }
    })
}

/// Dense layers of K models: weight `[K, out, in]`, bias `[K, out]`.
#[derive(Debug)]
pub struct StackedDense {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl StackedDense {
    /// `x` `[K, B, in]` -> `[K, B, out]`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        self.bias
            .unsqueeze(1)
            .baddbmm(x, &self.weight.transpose(1, 2), 1.0, 1.0)
    }
}

/// A new leaf tensor of `t`'s values, trainable when `grad`.
fn leaf(t: Tensor, grad: bool) -> Tensor {
    let t = t.detach();
    if grad {
        t.set_requires_grad(true)
    } else {
        t
    }
}

/// The K models' tensors of one parameter, joined along `dim` (conv channels).
fn cat(parts: Vec<Tensor>, dim: i64, grad: bool) -> Tensor {
    leaf(tch::no_grad(|| Tensor::cat(&parts, dim)), grad)
}

/// The K models' tensors of one parameter, on a new first axis (Dense layers).
fn stack(parts: Vec<Tensor>, grad: bool) -> Tensor {
    leaf(tch::no_grad(|| Tensor::stack(&parts, 0)), grad)
}

fn bn(models: &[&Vae], get: impl Fn(&Vae) -> &BatchNorm) -> BatchNorm {
    let part = |f: fn(&BatchNorm) -> &Tensor, grad| {
        cat(models.iter().map(|m| f(get(m)).copy()).collect(), 0, grad)
    };
    BatchNorm {
        weight: part(|b| &b.weight, true),
        bias: part(|b| &b.bias, true),
        running_mean: part(|b| &b.running_mean, false),
        running_var: part(|b| &b.running_var, false),
    }
}

/// K VAEs of one config as one model.
#[derive(Debug)]
pub struct StackedVae {
    pub k: i64,
    pub config: VaeConfig,
    pub convs: Vec<Conv>,
    pub enc_bns: Vec<BatchNorm>,
    pub mu: StackedDense,
    pub log_var: StackedDense,
    pub fc: StackedDense,
    pub deconvs: Vec<ConvTranspose>,
    pub dec_bns: Vec<BatchNorm>,
    /// How the convolutions run (`set_layout`).
    pub layout: Layout,
}

impl StackedVae {
    /// The stacked model of `models` (same config, NCHW unflipped layout), with copies of their
    /// weights and moving statistics.
    pub fn new(models: &[&Vae]) -> StackedVae {
        assert!(!models.is_empty(), "a stack needs at least one model");
        let config = models[0].config.clone();
        assert!(
            models.iter().all(|m| m.config == config),
            "stacked models share one config"
        );
        assert!(
            models
                .iter()
                .all(|m| m.encoder.layout == Layout::default()
                    && m.decoder.layout == Layout::default()),
            "a stack is built from models in the plain layout (NCHW, unflipped)"
        );
        let k = models.len() as i64;
        let convs = (0..config.encoder_conv_filters.len())
            .map(|i| {
                let layers: Vec<&Conv> = models.iter().map(|m| &m.encoder.convs[i]).collect();
                Conv {
                    weight: cat(layers.iter().map(|l| l.weight.copy()).collect(), 0, true),
                    bias: cat(layers.iter().map(|l| l.bias.copy()).collect(), 0, true),
                    stride: layers[0].stride,
                    // The first conv reads the shared images; later ones their own channels.
                    groups: if i == 0 { 1 } else { k },
                }
            })
            .collect();
        let deconvs = (0..config.decoder_conv_t_filters.len())
            .map(|i| {
                let layers: Vec<&ConvTranspose> =
                    models.iter().map(|m| &m.decoder.deconvs[i]).collect();
                ConvTranspose {
                    weight: cat(layers.iter().map(|l| l.weight.copy()).collect(), 0, true),
                    bias: cat(layers.iter().map(|l| l.bias.copy()).collect(), 0, true),
                    stride: layers[0].stride,
                    groups: k,
                }
            })
            .collect();
        let dense = |get: fn(&Vae) -> &super::Dense| StackedDense {
            weight: stack(models.iter().map(|m| get(m).weight.copy()).collect(), true),
            bias: stack(models.iter().map(|m| get(m).bias.copy()).collect(), true),
        };
        StackedVae {
            k,
            enc_bns: (0..models[0].encoder.bns.len())
                .map(|i| bn(models, |m| &m.encoder.bns[i]))
                .collect(),
            dec_bns: (0..models[0].decoder.bns.len())
                .map(|i| bn(models, |m| &m.decoder.bns[i]))
                .collect(),
            mu: dense(|m| &m.encoder.mu),
            log_var: dense(|m| &m.encoder.log_var),
            fc: dense(|m| &m.decoder.fc),
            convs,
            deconvs,
            config,
            layout: Layout::default(),
        }
    }

    /// Puts the stack in `want` by the solo model's rule (crate::model::layout::put); returns
    /// the layout in effect. Its tensors in and out stay NCHW and unflipped.
    pub fn set_layout(&mut self, want: Layout) -> Layout {
        let weights: Vec<&Tensor> = (self.convs.iter().map(|c| &c.weight))
            .chain(self.deconvs.iter().map(|d| &d.weight))
            .collect();
        let flippable = super::conv::flippable(&self.deconvs);
        self.layout = super::layout::put(self.layout, want, &weights, flippable);
        self.layout
    }

    /// Maps `x` (unflipped, NCHW) in the layout: flipped, channels-last.
    fn in_layout(&self, x: Tensor) -> Tensor {
        let x = flip_if(&x, self.layout.flipped);
        if self.layout.channels_last {
            channels_last(&x)
        } else {
            x
        }
    }

    /// Every trainable tensor, for the optimizer (one flat Keras Adam over all K models).
    pub fn trainable(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        let mut put = |name: String, t: &Tensor| out.push((name, t.shallow_clone()));
        for (i, c) in self.convs.iter().enumerate() {
            put(format!("encoder.conv{}.weight", i + 1), &c.weight);
            put(format!("encoder.conv{}.bias", i + 1), &c.bias);
        }
        for (prefix, bns) in [("encoder", &self.enc_bns), ("decoder", &self.dec_bns)] {
            for (i, b) in bns.iter().enumerate() {
                put(format!("{prefix}.bn{}.weight", i + 1), &b.weight);
                put(format!("{prefix}.bn{}.bias", i + 1), &b.bias);
            }
        }
        for (name, d) in [
            ("encoder.mu", &self.mu),
            ("encoder.log_var", &self.log_var),
            ("decoder.fc", &self.fc),
        ] {
            put(format!("{name}.weight"), &d.weight);
            put(format!("{name}.bias"), &d.bias);
        }
        for (i, c) in self.deconvs.iter().enumerate() {
            put(format!("decoder.deconv{}.weight", i + 1), &c.weight);
            put(format!("decoder.deconv{}.bias", i + 1), &c.bias);
        }
        out
    }

    /// Model `j`'s state dict (its slices of every tensor, moving statistics included), under
    /// the solo model's keys.
    pub fn model_state(&self, j: i64) -> Vec<(String, Tensor)> {
        let mut out: Vec<(String, Tensor)> = self
            .trainable()
            .into_iter()
            .map(|(name, t)| {
                let p = part(&name, &t, j, self.k);
                (name, p)
            })
            .collect();
        for (name, t) in self.buffers() {
            let p = part(&name, &t, j, self.k);
            out.push((name, p));
        }
        out
    }

    /// BatchNorm's moving statistics by name, which training updates.
    pub fn buffers(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (prefix, bns) in [("encoder", &self.enc_bns), ("decoder", &self.dec_bns)] {
            for (i, b) in bns.iter().enumerate() {
                let name = |what: &str| format!("{prefix}.bn{}.{what}", i + 1);
                out.push((name("running_mean"), b.running_mean.shallow_clone()));
                out.push((name("running_var"), b.running_var.shallow_clone()));
            }
        }
        out
    }

    /// The stacked model's first parameter's device.
    pub fn device(&self) -> tch::Device {
        self.mu.weight.device()
    }

    /// Every model's forward pass with `noise`: (reconstructions `[B, K, C, H, W]`, mu,
    /// log_var `[K, B, L]`).
    pub fn forward(&self, x: &Tensor, train: bool, noise: &Noise) -> (Tensor, Tensor, Tensor) {
        let (mu, log_var) = self.encode_with(x, train, noise);
        let eps = noise.randn(&mu.size(), &mu);
        let z = reparameterize(&mu, &log_var, &eps);
        let recon = self.decode_with(&z, train, noise);
        (recon, mu, log_var)
    }

    fn block(&self, h: Tensor, bn: Option<&BatchNorm>, train: bool, noise: &Noise) -> Tensor {
        let h = match bn {
            Some(bn) => bn.forward(&h, train),
            None => h,
        };
        let h = leaky_relu(&h, self.config.leaky_relu_slope);
        if !self.config.use_dropout || !train {
            return h;
        }
        let rate = self.config.dropout_rate;
        match noise {
            Noise::Fresh => super::dropout::dropout(&h, rate, train),
            Noise::Rows { .. } => {
                // Each model's own mask `[B, c, h, w]`, drawn as its row of the pool's.
                let s = h.size();
                let (b, c) = (s[0], s[1] / self.k);
                let keep = noise
                    .rand(&[self.k, b, c, s[2], s[3]], &h)
                    .ge(rate)
                    .transpose(0, 1)
                    .reshape([b, self.k * c, s[2], s[3]])
                    .to_kind(h.kind());
                h * keep * (1.0 / (1.0 - rate))
            }
        }
    }

    /// Images `[B, C, H, W]` -> every model's (mu, log_var), each `[K, B, L]`.
    pub fn encode(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        self.encode_with(x, train, &Noise::Fresh)
    }

    fn encode_with(&self, x: &Tensor, train: bool, noise: &Noise) -> (Tensor, Tensor) {
        let mut h = self.in_layout(x.shallow_clone());
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(&h, self.layout);
            h = self.block(h, self.enc_bns.get(i), train, noise);
        }
        let b = h.size()[0];
        // [B, K * c, h, w] -> [K, B, c * h * w]: each model's (c, h, w) flatten (channels-last
        // maps are copied to that order first, whatever K is).
        let h = flip_if(&h, self.layout.flipped)
            .contiguous()
            .view([b, self.k, -1])
            .transpose(0, 1);
        let mu = in_kind_of(self.mu.forward(&h), &self.mu.weight);
        let log_var = in_kind_of(self.log_var.forward(&h), &self.log_var.weight);
        (mu, log_var)
    }

    /// Latents `[K, B, L]` -> every model's images `[B, K, C, H, W]`.
    pub fn decode(&self, z: &Tensor, train: bool) -> Tensor {
        self.decode_with(z, train, &Noise::Fresh)
    }

    fn decode_with(&self, z: &Tensor, train: bool, noise: &Noise) -> Tensor {
        let [c, h, w] = self.config.shape_before_flattening();
        let b = z.size()[1];
        // [K, B, c * h * w] -> [B, K * c, h, w]. A copying transpose: a plain one would be a
        // free view at K = 1 and a copy at K > 1, another autograd graph.
        let mut x =
            self.in_layout(
                self.fc
                    .forward(z)
                    .transpose_copy(0, 1)
                    .view([b, self.k * c, h, w]),
            );
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            x = deconv.forward(&x, self.layout);
            if i == last {
                x = in_kind_of(x, &deconv.weight).sigmoid();
                break;
            }
            x = self.block(x, self.dec_bns.get(i), train, noise);
        }
        let [ci, hi, wi] = self.config.input_shape;
        let x = flip_if(&x, self.layout.flipped);
        let x = if self.layout.channels_last {
            // Into NCHW by a copy at every K: `contiguous` would copy at K > 1 but not at K = 1
            // with one channel (both layouts at once), another autograd graph.
            let mut out = Tensor::empty(x.size(), (x.kind(), x.device()));
            out.copy_(&x);
            out
        } else {
            x
        };
        x.view([b, self.k, ci, hi, wi])
    }
}

/// Every model's loss on the shared batch `x` `[B, C, H, W]`: the seed's loss with its own
/// `r_loss_factors` `[K]`. Returns (the sum over models of their batch-mean losses, which
/// backpropagates each model's own loss into its own parameters; per model `[K, 3]` of (loss,
/// r_loss, kl_loss)).
pub fn stacked_loss(
    reconstruction: &Tensor,
    x: &Tensor,
    mu: &Tensor,
    log_var: &Tensor,
    r_loss_factors: &Tensor,
) -> (Tensor, Tensor) {
    // [B, K, C, H, W] - [B, 1, C, H, W]: each model's per-image mean, then the batch mean: [K].
    let err = (reconstruction - x.unsqueeze(1)).square();
    let mse = err
        .mean_dim([2i64, 3, 4].as_slice(), false, Kind::Float)
        .mean_dim(0, false, Kind::Float);
    let r_loss = mse * r_loss_factors;
    let terms = log_var - mu.square() - log_var.exp() + 1.0;
    let kl = terms
        .sum_dim_intlist(2, false, None)
        .mean_dim(1, false, Kind::Float)
        * -0.5;
    let per_model = &r_loss + &kl;
    let parts = Tensor::stack(&[&per_model, &r_loss, &kl], 1);
    (per_model.sum(Kind::Float), parts)
}
