//! The VAE of Foster, "Generative Deep Learning", ch. 3, mirrored from its Keras code layer for
//! layer (see ../shared/keras-semantics.md): TF 'same' padding (asymmetric at stride 2), LeakyReLU
//! slope 0.3, glorot-uniform kernels with zero biases, and for the faces model
//! BatchNormalization and Dropout with Keras's semantics (`BatchNorm`). Variable paths are the
//! state_dict keys of `scripts/vae_torch.py` (`encoder.conv1.weight`, ...), in PyTorch layouts.
//! `forward(.., train)` is Keras's `training` flag: batch statistics and dropout when true,
//! moving statistics and no dropout when false (evaluation, figures, exports).
pub mod dropout;
pub mod loss;
pub mod stack;
pub mod summary;

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

/// `t` in the dtype of `param` (a no-op when it is already): under bfloat16 autocast
/// (crate::train::precision) convolutions and matmuls return bfloat16, and the model's outputs
/// (mu, log_var, the decoder's logits) and BatchNorm's statistics go back to the weights' dtype,
/// as Keras's `mixed_bfloat16` keeps them float32.
pub fn in_kind_of(t: Tensor, param: &Tensor) -> Tensor {
    if t.kind() == param.kind() {
        t
    } else {
        t.to_kind(param.kind())
    }
}

/// The same values in channels-last memory order (NHWC strides, NCHW shape), as torch's
/// `x.contiguous(memory_format=torch.channels_last)`; tch has no memory-format API. oneDNN's
/// convolutions run faster on such tensors (see `Vae::set_channels_last`).
///
/// A single channel is both layouts, and oneDNN then goes by the strides: torch calls a
/// `[n, 1, h, w]` tensor channels-last only if its channel stride is 1. Without that, the
/// first conv ran NCHW and its output and gradient were copied between the layouts each step.
pub fn channels_last(x: &Tensor) -> Tensor {
    let y = x.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2]);
    let (size, stride) = (y.size(), y.stride());
    if size[1] == 1 && stride[1] != 1 {
        // The same memory; only the unused stride of the channel dimension changes.
        return y.as_strided(&size, [stride[0], 1, stride[2], stride[3]], None);
    }
    y
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

/// Conv2D with 'same' padding; weight `[out, in / groups, k, k]` (`groups` > 1: K models
/// side by side, crate::model::stack).
#[derive(Debug)]
pub struct Conv {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: i64,
    pub groups: i64,
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
            groups: 1,
        }
    }

    /// 'same' conv of `x` in `layout` (flipped: `x` is spatially flipped and so is the result).
    pub fn forward(&self, x: &Tensor, layout: Layout) -> Tensor {
        let flipped = layout.flipped;
        let (size, k) = (x.size(), self.weight.size()[2]);
        let (ph, t, b) = conv_padding(size[2], k, self.stride, flipped);
        let (pw, l, r) = conv_padding(size[3], k, self.stride, flipped);
        let x = if [t, b, l, r].iter().any(|&e| e != 0) {
            x.constant_pad_nd([l, r, t, b])
        } else {
            x.shallow_clone()
        };
        let weight = flip_if(&self.weight, flipped);
        x.conv2d(
            &weight,
            Some(&self.bias),
            [self.stride, self.stride],
            [ph, pw],
            [1, 1],
            self.groups,
        )
    }
}

/// How the convolutions run: the same model and numbers up to float rounding either way
/// (tests/layout.rs); what is fastest depends on the device and step (`train::layout_for`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// Channels-last memory order (`Vae::set_channels_last`).
    pub channels_last: bool,
    /// On spatially flipped images (`Vae::set_flipped`).
    pub flipped: bool,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.channels_last, self.flipped) {
            (false, false) => write!(f, "NCHW"),
            (true, false) => write!(f, "channels-last"),
            (false, true) => write!(f, "flipped"),
            (true, true) => write!(f, "channels-last, flipped"),
        }
    }
}

impl Layout {
    /// `t` `[m, c, h, w]` as `[m, c * h * w]` with the (c, h, w) axis in this layout's memory
    /// order: flipped in h and w, and (h, w, c) when channels-last. The dense layers next to
    /// the feature maps reorder their weights so (a few thousand numbers) rather than copy the
    /// maps to torch's (c, h, w) order.
    pub fn features(&self, t: &Tensor) -> Tensor {
        let t = flip_if(t, self.flipped);
        let t = if self.channels_last {
            t.permute([0, 2, 3, 1])
        } else {
            t
        };
        t.reshape([t.size()[0], -1])
    }
}

/// `t` flipped in its last two dimensions when `flipped`, else `t` itself.
pub(crate) fn flip_if(t: &Tensor, flipped: bool) -> Tensor {
    if flipped {
        t.flip([-2, -1])
    } else {
        t.shallow_clone()
    }
}

/// How torch computes a 'same' conv's padding for one dimension of size `n`: (torch's
/// symmetric `padding` p, explicit zeros before, explicit zeros after; negative: rows cut).
/// TF pads (before, after) = `same_padding`, the odd pixel after. Mirrored, its windows start
/// `after` before the flipped input (where the last window overhangs the input's end), or
/// `n - (out - 1) * s - k` rows into it (where the last rows are never read), and end `before`
/// after it. torch's p = that front pad reads the same windows, plus at most
/// zeros after the last one that the stride's floor drops when torch's output size is the
/// 'same' size: so a flipped stride-2 conv (28 -> 14, k 3) needs no explicit pad at all.
/// Otherwise the symmetric part goes to the conv and only the rest is padded (or cut)
/// explicitly: an unflipped stride-2 layer gets one zero row and column after.
pub fn conv_padding(n: i64, k: i64, s: i64, flipped: bool) -> (i64, i64, i64) {
    let (before, after) = same_padding(n, k, s);
    let out = (n + s - 1) / s;
    let (front, back) = if flipped {
        ((out - 1) * s + k - n - before, before)
    } else {
        (before, after)
    };
    if front >= back && (n + 2 * front - k) / s + 1 == out {
        return (front, 0, 0);
    }
    let p = front.min(back).max(0);
    (p, front - p, back - p)
}

/// Conv2DTranspose with 'same' padding (output = n * stride); weight `[in, out / groups, k, k]`.
#[derive(Debug)]
pub struct ConvTranspose {
    pub weight: Tensor,
    pub bias: Tensor,
    pub stride: i64,
    pub groups: i64,
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
            groups: 1,
        }
    }

    /// 'same' transposed conv of `x` in `layout` (flipped: `x` is spatially flipped and so is
    /// the result).
    pub fn forward(&self, x: &Tensor, layout: Layout) -> Tensor {
        let (k, s) = (self.weight.size()[2], self.stride);
        let (padding, output_padding, pad_before) =
            conv_t_padding(k, s, layout.flipped).expect("Vae::set_flipped checked the layers");
        let x = if pad_before > 0 {
            x.constant_pad_nd([pad_before, 0, pad_before, 0])
        } else {
            x.shallow_clone()
        };
        // oneDNN's channels-last transposed conv computes the bias gradient with a reference
        // loop (`ref_deconvolution_bwd_weights_t::compute_bwd_bias_ndhwc`, 2.6% of a CPU step
        // in perf); a separate add, whose gradient is torch's sum, made the step about 4% faster
        // (2 cores, 2026-11-28).
        let fused_bias = (!layout.channels_last).then_some(&self.bias);
        let y = x.conv_transpose2d(
            &flip_if(&self.weight, layout.flipped),
            fused_bias,
            [s, s],
            [padding, padding],
            [output_padding, output_padding],
            self.groups,
            [1, 1],
        );
        if layout.channels_last {
            y + self.bias.view([1, -1, 1, 1])
        } else {
            y
        }
    }
}

/// torch's (`padding`, `output_padding`, zero rows/columns put before the input) for a 'same'
/// transposed conv. The full transposed conv is (n - 1) * s + k wide; 'same' keeps n * s of it,
/// cropping (front, back) = ((k - s) / 2, the rest) as TF does, the odd pixel after; on a
/// flipped input the odd pixel comes first. torch's `padding` crops both sides equally and its
/// `output_padding` (below the stride) gives back pixels after, so crop (c + 1, c) is
/// `padding` c + 1 with `output_padding` 1: a flipped k3 s2 layer is torch's plain
/// (padding 1, output_padding 1). An unflipped odd crop needs `odd_crop_padding`. None where
/// the flipped form has no exact torch form (crop < 0, or an odd crop at stride 1).
pub fn conv_t_padding(k: i64, s: i64, flipped: bool) -> Option<(i64, i64, i64)> {
    let crop = k - s;
    let before = crop / 2;
    let after = crop - before;
    if crop - before == before {
        return Some((before, 0, 0));
    }
    if !flipped {
        let (padding, output_padding) = odd_crop_padding(k, s);
        return Some((padding, output_padding, 1));
    }
    (crop > 0 && after - before < s).then_some((after, after - before, 0))
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
/// written out here). A bfloat16 input (autocast) is normalized in float32 and comes out
/// bfloat16 (torch's mixed-dtype kernel), and the statistics are taken from its float32 values,
/// as Keras's BatchNormalization computes in float32 under a mixed policy.
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
        if x.device() == tch::Device::Cpu {
            return self.train_cpu(x);
        }
        tch::no_grad(|| {
            let x = in_kind_of(x.shallow_clone(), &self.running_mean);
            let (var, mean) = x.var_mean_correction([0i64, 2, 3].as_slice(), 0, false);
            self.update_moving(mean, var);
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

    /// moving = moving * 0.99 + batch * 0.01, for the mean and the biased variance.
    fn update_moving(&self, mean: Tensor, var: Tensor) {
        let m = BN_MOMENTUM;
        let new_mean = &self.running_mean * m + mean * (1.0 - m);
        let new_var = &self.running_var * m + var * (1.0 - m);
        self.running_mean.shallow_clone().copy_(&new_mean);
        self.running_var.shallow_clone().copy_(&new_var);
    }

    /// The training pass on the CPU, where a separate `var_mean` over the map cost 4x the
    /// normalization itself (3.3 against 0.8 ms of a 64x64 faces step at batch 8, 2 cores,
    /// 2026-12-02): the statistics come from the normalization's own (`native_batch_norm`'s
    /// mean and 1 / sqrt(var + eps)), the variance back as 1 / invstd^2 - eps in double. That
    /// is the batch's biased variance to float rounding of var + eps: 1e-6 relative for
    /// variances of 0.01-10, 6e-5 for one of 1e-6 under eps 1e-3, against var_mean's 6e-8
    /// (float64 reference, 2026-12-02); tests/model.rs and tests/layout.rs hold. On CUDA the
    /// statistics stay a `var_mean` kernel (a few microseconds in a graph) beside cuDNN's
    /// normalization.
    fn train_cpu(&self, x: &Tensor) -> Tensor {
        let (y, mean, invstd) = x.native_batch_norm(
            Some(&self.weight),
            Some(&self.bias),
            None::<&Tensor>,
            None::<&Tensor>,
            true,
            0.0,
            BN_EPSILON,
        );
        tch::no_grad(|| {
            let var = invstd.to_kind(tch::Kind::Double).pow_tensor_scalar(-2) - BN_EPSILON;
            self.update_moving(
                in_kind_of(mean.detach(), &self.running_mean),
                var.to_kind(self.running_var.kind()),
            );
        });
        y
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
        self.encoder.layout.channels_last = true;
        self.decoder.layout.channels_last = true;
    }

    /// Runs the convolutions on spatially flipped images, where Keras's asymmetric 'same'
    /// padding becomes torch's symmetric one: a stride-2 conv then needs no explicit zero row and
    /// column (`conv_padding`), a stride-2 transposed conv is torch's plain (padding 1,
    /// output_padding 1) (`conv_t_padding`). The kernels and the dense weights next to the
    /// feature maps are flipped in the forward pass (their gradients flip back), the images are
    /// flipped on the way in and the reconstructions on the way out: the same model and
    /// parameters, the same numbers up to float rounding (tests/layout.rs). On 2 CPU cores it
    /// made the batch-32 step 1.15x faster (16.44 -> 14.32 ms, 2026-11-28): the padded copies
    /// and the convolutions on 29 x 29 and 15 x 15 inputs are gone. False, and nothing
    /// changed, where a transposed conv has no exact flipped form.
    pub fn set_flipped(&mut self) -> bool {
        let ok = self
            .decoder
            .deconvs
            .iter()
            .all(|d| conv_t_padding(d.weight.size()[2], d.stride, true).is_some());
        self.encoder.layout.flipped = ok;
        self.decoder.layout.flipped = ok;
        ok
    }

    /// Puts the model in `layout` (`set_channels_last`, `set_flipped`); returns the layout in
    /// effect (not flipped where the model has no exact flipped form).
    pub fn set_layout(&mut self, vs: &nn::VarStore, layout: Layout) -> Layout {
        if layout.channels_last {
            self.set_channels_last(vs);
        }
        if layout.flipped {
            self.set_flipped();
        }
        self.encoder.layout
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

/// A model and its variables on a device.
pub struct Loaded {
    pub vs: nn::VarStore,
    pub vae: Vae,
    pub config: crate::config::TrainConfig,
}

impl Loaded {
    /// The trainable variables by name (not BatchNorm's moving statistics): the optimizer's.
    pub fn trainable(&self) -> Vec<(String, tch::Tensor)> {
        self.vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect()
    }
}

/// Builds the model of `config` with fresh glorot weights from `seed`.
pub fn build(config: &crate::config::TrainConfig, device: tch::Device, seed: u64) -> Loaded {
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(device);
    let vae = Vae::new(&vs.root(), &config.model);
    Loaded {
        vs,
        vae,
        config: config.clone(),
    }
}
