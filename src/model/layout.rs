//! How the convolutions run: plain NCHW, channels-last memory order, and/or on spatially flipped
//! maps, where Keras's asymmetric 'same' padding is torch's symmetric one. The same model and
//! numbers to float rounding in every layout (tests/layout.rs); `put` is the one rule that puts a
//! model (solo or stacked) in a layout.
use tch::Tensor;

/// How the convolutions run: the same model and numbers up to float rounding either way
/// (tests/layout.rs); what is fastest depends on the device and step (`train::layout_for`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layout {
    /// Channels-last memory order (`put`).
    pub channels_last: bool,
    /// On spatially flipped images (`put`).
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
pub fn flip_if(t: &Tensor, flipped: bool) -> Tensor {
    if flipped {
        t.flip([-2, -1])
    } else {
        t.shallow_clone()
    }
}

/// The same values in channels-last memory order (NHWC strides, NCHW shape), as torch's
/// `x.contiguous(memory_format=torch.channels_last)`; tch has no memory-format API. oneDNN's
/// convolutions run faster on such tensors (see `put`).
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

/// The one rule that puts a model (solo or stacked) in a layout, from the layout it is in now:
/// - channels-last: every 4-D weight (`weights`, the convs' and transposed convs') goes to that
///   memory order in place (`set_data`, which every handle of the variable sees). On 2 CPU cores
///   oneDNN took a PyTorch replica of the seed's batch-32 step from 19.2 to 16.7 ms
///   (2026-11-28). The flat optimizer keeps that order, so call it before the optimizer takes
///   the parameters.
/// - flipped: the convolutions run on spatially flipped maps, where Keras's asymmetric 'same'
///   padding becomes torch's symmetric one: a stride-2 conv needs no explicit zero row and
///   column (`conv_padding`), a stride-2 transposed conv is torch's plain (padding 1,
///   output_padding 1) (`conv_t_padding`). Kernels and the dense weights next to the maps flip in
///   the forward pass, images on the way in and out. 1.15x on the CPU step (16.44 -> 14.32 ms,
///   2 cores, 2026-11-28). Only where every transposed conv has an exact flipped form
///   (`flippable`: crate::model::conv::flippable).
///
/// Returns the layout in effect. A layout is only ever added to, never taken back.
pub fn put(now: Layout, want: Layout, weights: &[&Tensor], flippable: bool) -> Layout {
    if want.channels_last && !now.channels_last {
        tch::no_grad(|| {
            for w in weights {
                w.shallow_clone().set_data(&channels_last(w));
            }
        });
    }
    Layout {
        channels_last: now.channels_last || want.channels_last,
        flipped: now.flipped || (want.flipped && flippable),
    }
}
