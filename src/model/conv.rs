//! Conv2D and Conv2DTranspose with Keras's 'same' padding (asymmetric at stride 2, the odd pixel
//! after: tensorflow/core/framework/kernel_shape_util.cc) as torch convolutions, in any `Layout`.
use tch::{nn, Tensor};

use super::init::glorot;
use super::layout::{flip_if, Layout};

/// Keras/TF 'same' padding for one dimension: (before, after), the odd pixel after
/// (tensorflow/core/framework/kernel_shape_util.cc, GetWindowedOutputSize).
pub fn same_padding(n: i64, kernel: i64, stride: i64) -> (i64, i64) {
    let out = (n + stride - 1) / stride;
    let total = ((out - 1) * stride + kernel - n).max(0);
    (total / 2, total - total / 2)
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
    pub fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> Conv {
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
    pub fn new(p: nn::Path, c_in: i64, c_out: i64, k: i64, stride: i64) -> ConvTranspose {
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
        let (padding, output_padding, pad_before) = conv_t_padding(k, s, layout.flipped)
            .expect("layout::put flips only a flippable decoder");
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

/// Whether a decoder of `deconvs` runs flipped exactly: every transposed conv has a flipped torch
/// form (`conv_t_padding`).
pub fn flippable(deconvs: &[ConvTranspose]) -> bool {
    deconvs
        .iter()
        .all(|d| conv_t_padding(d.weight.size()[2], d.stride, true).is_some())
}
