//! Keras's Dense, as torch's Linear (weight `[out, in]`).
use tch::{nn, Tensor};

use super::init::glorot;

/// Dense; weight `[out, in]` as torch's Linear.
#[derive(Debug)]
pub struct Dense {
    pub weight: Tensor,
    pub bias: Tensor,
}

impl Dense {
    pub fn new(p: nn::Path, d_in: i64, d_out: i64) -> Dense {
        let weight = p.var("weight", &[d_out, d_in], glorot(d_in, d_out));
        let bias = p.var("bias", &[d_out], nn::Init::Const(0.0));
        Dense { weight, bias }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        x.linear(&self.weight, Some(&self.bias))
    }
}
