//! The VAE of Foster, "Generative Deep Learning", ch. 3, mirrored from its Keras code layer for
//! layer (see ../shared/keras-semantics.md): TF 'same' padding (asymmetric at stride 2), LeakyReLU
//! slope 0.3, glorot-uniform kernels with zero biases, and for the faces model
//! BatchNormalization and Dropout with Keras's semantics (`BatchNorm`). Variable paths are the
//! state_dict keys of `scripts/vae_torch.py` (`encoder.conv1.weight`, ...), in PyTorch layouts.
//! `forward(.., train)` is Keras's `training` flag: batch statistics and dropout when true,
//! moving statistics and no dropout when false (evaluation, figures, exports).
use tch::{nn, Tensor};

use crate::config::VaeConfig;

/// LeakyReLU as one kernel forward and one backward, the same kernels as torch's
/// `nn.LeakyReLU(slope)`: `leaky_relu_backward(grad_output = x, self = x.detach())` is x where
/// x > 0, else slope * x, and its derivative in `grad_output` is leaky_relu_backward again.
/// (tch's `leaky_relu()` fixes the slope at 0.01; max(x, slope * x) costs three kernels.) No
/// tensor constant is made, so it traces safely (tch-rs issue #766).
pub fn leaky_relu(x: &Tensor, slope: f64) -> Tensor {
    x.detach().leaky_relu_backward(x, slope, false)
}

/// The same values in channels-last memory order (NHWC strides, NCHW shape), as torch's
/// `x.contiguous(memory_format=torch.channels_last)`; tch has no memory-format API. oneDNN's
/// convolutions run faster on such tensors (see `Vae::set_channels_last`).
pub fn channels_last(x: &Tensor) -> Tensor {
    x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

/// Keras/TF 'same' padding for one dimension: (before, after), the odd pixel after
/// (tensorflow/core/framework/kernel_shape_util.cc, GetWindowedOutputSize).
pub fn same_padding(n: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let out = (n + stride - 1) / stride;
    let total = ((out - 1) * stride + kernel - n).max(0);
    (total / 2, total - total / 2)
}

/// Keras glorot_uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)).
fn glorot(fan_in: i64, fan_out: i64) -> nn::Init {
    let l = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -l, up: l }
}

/// Conv2D with 'same' padding; weight `[out, in, k, k]`.
#[derive(Debug)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: i64,
}

impl Conv {
    fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> Conv {
        let weight = p.var(
            "weight",
            &[c_out, c_in, k, k],
            glorot(c_in * k * k, c_out * k * k),
        );
        let bias = p.var("bias", &[c_out], nn::Init::Const(0.0));
        Conv {
            weight,
            bias,
            stride,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let (size, k) = (x.size(), self.weight.size()[2]);
        let (t, b) = same_padding(size[2], k, self.stride);
        let (l, r) = same_padding(size[3], k, self.stride);
        // The symmetric part goes to the conv; only the odd extra pixel needs an explicit pad.
        let (ph, pw) = (t.min(b), l.min(r));
        let x = if t != b || l != r {
            x.constant_pad_nd([l - pw, r - pw, t - ph, b - ph])
        } else {
            x.shallow_clone()
        };
        x.conv2d(
            &self.weight,
            Some(&self.bias),
            [self.stride, self.stride],
            [ph, pw],
            [1, 1],
            1,
        )
    }
}

/// Conv2DTranspose with 'same' padding (output = n * stride); weight `[in, out, k, k]`.
#[derive(Debug)]
pub struct ConvTranspose {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: i64,
}

impl ConvTranspose {
    fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> ConvTranspose {
        let weight = p.var(
            "weight",
            &[c_in, c_out, k, k],
            glorot(c_out * k * k, c_in * k * k),
        );
        let bias = p.var("bias", &[c_out], nn::Init::Const(0.0));
        ConvTranspose {
            weight,
            bias,
            stride,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        // The full transposed conv is (n - 1) * s + k wide; 'same' keeps n * s of it, cropping
        // (k - s) / 2 before and the rest after, as TF does. torch's `padding` crops both sides
        // equally, so an odd crop needs more: see `odd_crop_padding`.
        let (k, s) = (self.weight.size()[2], self.stride);
        let crop = k - s;
        let before = crop / 2;
        if crop - before == before {
            return x.conv_transpose2d(
                &self.weight,
                Some(&self.bias),
                [s, s],
                [before, before],
                [0, 0],
                1,
                [1, 1],
            );
        }
        let (padding, output_padding) = odd_crop_padding(k, s);
        x.constant_pad_nd([1, 0, 1, 0]).conv_transpose2d(
            &self.weight,
            Some(&self.bias),
            [s, s],
            [padding, padding],
            [output_padding, output_padding],
            1,
            [1, 1],
        )
    }
}

/// TF 'same' for a transposed conv whose crop k - s is odd keeps the full output's
/// [before, before + n * s), before = (k - s) / 2: one pixel more is cut after than before.
/// One zero row and column put before the input shift the full output by s. torch's symmetric
/// `padding` p = before + s with `output_padding` op = 2s - k + 2 * before = s - 1 then cut
/// exactly that window: length (n + 1 - 1) * s + k - 2p + op = n * s. op = s - 1 is always
/// below the stride, as torch requires. These are the same numbers as the crop (3.6e-15 in f64
/// for every odd crop with k <= 7 and s <= 3), with no strided crop. oneDNN ran this form 3-4x
/// faster on the CPU than the full transposed conv plus crop (2026-11-28, 2 cores).
pub fn odd_crop_padding(k: i64, s: i64) -> (i64, i64) {
    ((k - s) / 2 + s, s - 1)
}

/// Keras BatchNormalization() defaults (keras/src/layers/normalization/batch_normalization.py):
/// momentum 0.99 (torch's momentum 0.01 is 1 - this) and epsilon 1e-3.
pub const BN_MOMENTUM: f64 = 0.99;
pub const BN_EPSILON: f64 = 1e-3;

/// Keras BatchNormalization over the channels: gamma (`weight`, ones), beta (`bias`, zeros), and
/// the moving statistics as non-trainable buffers (`running_mean` zeros, `running_var` ones).
/// In training it normalizes with the batch's mean and biased variance and updates
///   moving = moving * 0.99 + batch * 0.01
/// with the *biased* variance, as Keras does (torch's own update uses the unbiased one, so it is
/// written out here).
#[derive(Debug)]
pub struct BatchNorm {
    pub weight: Tensor,
    pub bias: Tensor,
    pub running_mean: Tensor,
    pub running_var: Tensor,
}

impl BatchNorm {
    fn new(p: nn::Path, c: i64) -> BatchNorm {
        BatchNorm {
            weight: p.var("weight", &[c], nn::Init::Const(1.0)),
            bias: p.var("bias", &[c], nn::Init::Const(0.0)),
            running_mean: p.zeros_no_train("running_mean", &[c]),
            running_var: p.ones_no_train("running_var", &[c]),
        }
    }

    pub fn forward(&self, x: &Tensor, train: bool) -> Tensor {
        if !train {
            return x.batch_norm(
                Some(&self.weight),
                Some(&self.bias),
                Some(&self.running_mean),
                Some(&self.running_var),
                false,
                0.0,
                BN_EPSILON,
                true,
            );
        }
        tch::no_grad(|| {
            let (var, mean) = x.var_mean_correction([0i64, 2, 3].as_slice(), 0, false);
            let m = BN_MOMENTUM;
            let new_mean = &self.running_mean * m + mean * (1.0 - m);
            let new_var = &self.running_var * m + var * (1.0 - m);
            self.running_mean.shallow_clone().copy_(&new_mean);
            self.running_var.shallow_clone().copy_(&new_var);
        });
        x.batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            0.0,
            BN_EPSILON,
            true,
        )
    }
}

/// Dense; weight `[out, in]` as torch's Linear.
#[derive(Debug)]
pub struct Dense {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Dense {
    fn new(p: nn::Path, d_in: i64, d_out: i64) -> Dense {
        let weight = p.var("weight", &[d_out, d_in], glorot(d_in, d_out));
        let bias = p.var("bias", &[d_out], nn::Init::Const(0.0));
        Dense { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}

#[derive(Debug)]
pub struct Encoder {
    pub convs: Vec<Conv>,
    /// One per conv with `use_batch_norm`, else none.
    pub bns: Vec<BatchNorm>,
    dropout: Option<f64>,
    pub mu: Dense,
    pub log_var: Dense,
    slope: f64,
    /// Feed the convolutions channels-last inputs.
    pub channels_last: bool,
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
            channels_last: false,
        }
    }

    /// Images `[n, c, h, w]` in [0, 1] to (mu, log_var), each `[n, latent_dim]`; inference
    /// (moving statistics, no dropout).
    pub fn forward(&self, x: &Tensor) -> (Tensor, Tensor) {
        self.forward_t(x, false)
    }

    /// The same with Keras's `training` flag.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> (Tensor, Tensor) {
        let mut h = if self.channels_last {
            channels_last(x)
        } else {
            x.shallow_clone()
        };
        for (i, conv) in self.convs.iter().enumerate() {
            h = conv.forward(&h);
            if let Some(bn) = self.bns.get(i) {
                h = bn.forward(&h, train);
            }
            h = leaky_relu(&h, self.slope);
            if let Some(rate) = self.dropout {
                h = h.dropout(rate, train);
            }
        }
        // Flatten in torch's (c, h, w) order; only weight transfers to Keras care (NHWC).
        let h = h.flatten(1, -1);
        (self.mu.forward(&h), self.log_var.forward(&h))
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
    /// Feed the transposed convolutions channels-last inputs.
    pub channels_last: bool,
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
            channels_last: false,
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
        let mut x = self.fc.forward(z).view([-1, c, h, w]);
        if self.channels_last {
            x = channels_last(&x);
        }
        let last = self.deconvs.len() - 1;
        for (i, deconv) in self.deconvs.iter().enumerate() {
            x = deconv.forward(&x);
            if i == last {
                return x.sigmoid();
            }
            if let Some(bn) = self.bns.get(i) {
                x = bn.forward(&x, train);
            }
            x = leaky_relu(&x, self.slope);
            if let Some(rate) = self.dropout {
                x = x.dropout(rate, train);
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

    /// Runs the convolutions in channels-last memory order (same numbers up to float rounding):
    /// puts every 4-D variable of `vs` (this model's) in that order with `set_data`, and feeds
    /// the convolutions channels-last inputs. On 2 CPU cores, oneDNN took a PyTorch replica of
    /// this model's batch-32 step from 19.2 to 16.7 ms (2026-11-28). Call it before the
    /// optimizer takes the parameters.
    pub fn set_channels_last(&mut self, vs: &nn::VarStore) {
        tch::no_grad(|| {
            for (_, var) in vs.variables() {
                if var.dim() == 4 {
                    var.shallow_clone().set_data(&channels_last(&var));
                }
            }
        });
        self.encoder.channels_last = true;
        self.decoder.channels_last = true;
    }

    /// Encode, sample z with eps ~ N(0, I) from torch's generator, decode; `train` is Keras's
    /// `training` flag (true in a training step, false in evaluation).
    pub fn forward(&self, x: &Tensor, train: bool) -> VaeOutput {
        let (mu, log_var) = self.encoder.forward_t(x, train);
        let eps = mu.randn_like();
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
