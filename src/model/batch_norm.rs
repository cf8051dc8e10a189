//! Keras's BatchNormalization (the book's faces model) on torch's batch-norm kernels.
use tch::{nn, Tensor};

use super::activation::in_kind_of;

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
    pub fn new(p: nn::Path, c: i64) -> BatchNorm {
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
