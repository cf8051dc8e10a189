//! The activation and dtype helpers every layer uses: Keras's LeakyReLU as torch's own kernels,
//! and outputs cast back to the weights' dtype under autocast.
use tch::Tensor;

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
