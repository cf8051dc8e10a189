//! Adam exactly as Keras computes it (keras/src/optimizers/adam.py, `update_step`):
//!   t += 1;  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
//!   m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
//!   p -= alpha * m / (sqrt(v) + epsilon)
//! i.e. Kingma & Ba's "epsilon hat" form with epsilon 1e-7; torch's Adam adds epsilon after
//! bias-correcting v instead. The state (m, v, t) is saved with every checkpoint.
use std::path::Path;

use tch::{TchError, Tensor};

use crate::config::AdamConfig;

pub struct KerasAdam {
    pub config: AdamConfig,
    /// Iterations done (Keras's `optimizer.iterations`).
    pub step: i64,
    params: Vec<(String, Tensor)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl KerasAdam {
    /// Takes the named trainable parameters (sorted by name for a stable order).
    pub fn new(mut params: Vec<(String, Tensor)>, config: AdamConfig) -> KerasAdam {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let m = params.iter().map(|(_, p)| p.zeros_like()).collect();
        let v = params.iter().map(|(_, p)| p.zeros_like()).collect();
        KerasAdam {
            config,
            step: 0,
            params,
            m,
            v,
        }
    }

    pub fn zero_grad(&mut self) {
        for (_, p) in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }

    /// One update from the gradients in `.grad()`.
    pub fn step(&mut self) {
        let AdamConfig {
            learning_rate: lr,
            beta_1: b1,
            beta_2: b2,
            epsilon: eps,
        } = self.config;
        self.step += 1;
        let t = self.step as f64;
        let alpha = lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
        tch::no_grad(|| {
            for (((_, p), m), v) in self.params.iter().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                if !g.defined() {
                    continue;
                }
                let _ = m.lerp_(&g, 1.0 - b1);
                let _ = v.g_mul_scalar_(b2).addcmul_(&(&g * (1.0 - b2)), &g);
                // p += m / ((sqrt(v) + eps) / -alpha)  ==  p -= alpha * m / (sqrt(v) + eps)
                let mut denom = v.sqrt();
                let _ = denom.g_add_scalar_(eps).g_mul_scalar_(-1.0 / alpha);
                let mut p = p.shallow_clone();
                let _ = p.addcdiv_(m, &denom);
            }
        });
    }

    /// m and v under `m.<param>` / `v.<param>`, for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.params.len());
        for ((name, _), (m, v)) in self.params.iter().zip(self.m.iter().zip(&self.v)) {
            out.push((format!("m.{name}"), m.shallow_clone()));
            out.push((format!("v.{name}"), v.shallow_clone()));
        }
        out
    }

    pub fn save(&self, path: &Path) -> Result<(), TchError> {
        Tensor::write_safetensors(&self.state_tensors(), path)
    }

    /// Restores m and v (and sets `step`) from a file written by `save`.
    pub fn load(&mut self, path: &Path, step: i64) -> Result<(), TchError> {
        let saved: std::collections::HashMap<String, Tensor> =
            Tensor::read_safetensors(path)?.into_iter().collect();
        let missing =
            |key: &str| TchError::FileFormat(format!("{}: no tensor {key}", path.display()));
        for ((name, p), (m, v)) in self
            .params
            .iter()
            .zip(self.m.iter_mut().zip(self.v.iter_mut()))
        {
            for (prefix, state) in [("m", m), ("v", v)] {
                let key = format!("{prefix}.{name}");
                let src = saved.get(&key).ok_or_else(|| missing(&key))?;
                if src.size() != p.size() {
                    return Err(TchError::FileFormat(format!(
                        "{}: {key} has shape {:?}, the model {:?}",
                        path.display(),
                        src.size(),
                        p.size()
                    )));
                }
                tch::no_grad(|| state.copy_(src));
            }
        }
        self.step = step;
        Ok(())
    }
}
