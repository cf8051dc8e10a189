//! Keras's kernel initializer (keras/src/initializers/random_initializers.py, GlorotUniform);
//! biases start at zero.
use tch::nn;

/// Keras glorot_uniform: U(-l, l) with l = sqrt(6 / (fan_in + fan_out)).
pub fn glorot(fan_in: i64, fan_out: i64) -> nn::Init {
    let l = (6.0 / (fan_in + fan_out) as f64).sqrt();
    nn::Init::Uniform { lo: -l, up: l }
}
