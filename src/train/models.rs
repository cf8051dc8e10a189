//! What a training step trains, behind one interface: one model (`Solo`, in the layout that
//! trains it fastest) or K models of one shape stacked into one wider model (`Stack`,
//! crate::model::stack). The step, the optimizer and the loop see a loss to backpropagate and
//! each model's (loss, r_loss, kl_loss), whatever K is.
use tch::{Device, Kind, Tensor};

use crate::model::loss;
use crate::model::stack::{stacked_loss, Noise, StackedVae};
use crate::model::Vae;

/// Each model's `r_loss_factor`, on the host and (for the stack's loss) on the device.
pub struct Factors {
    pub host: Vec<f64>,
    pub device: Tensor,
}

impl Factors {
    pub fn new(host: Vec<f64>, device: Device) -> Factors {
        let t = Tensor::from_slice(&host)
            .to_kind(Kind::Float)
            .to_device(device);
        Factors { host, device: t }
    }
}

pub trait Models {
    /// How many models (K).
    fn count(&self) -> i64;
    fn device(&self) -> Device;
    /// The forward pass and the seed's loss on `x` (floats in [0, 1], `[B, C, H, W]`) with
    /// Keras's `training` flag: (what to backpropagate, the sum over models of their batch-mean
    /// losses, so each model's gradient is its own; each model's (loss, r_loss, kl_loss),
    /// `[K, 3]`).
    fn losses(&self, x: &Tensor, factors: &Factors, train: bool) -> (Tensor, Tensor);
    /// The tensors a training step changes besides the parameters (BatchNorm's moving
    /// statistics).
    fn buffers(&self) -> Vec<Tensor>;
    /// Each model's reconstructions of `x` through its latent mean, `[B, C, H, W]` each.
    fn reconstruct_mean(&self, x: &Tensor) -> Vec<Tensor>;
    /// Model `j`'s state dict where the models hold their own tensors (a stack's parts); None
    /// for a solo model, whose variable store has them.
    fn model_state(&self, j: i64) -> Option<Vec<(String, Tensor)>>;
    /// Each model's decodes of `n` draws from N(0, I), `[n, C, H, W]` each.
    fn sample(&self, n: i64) -> Vec<Tensor>;
}

/// One model. `noise` is `Noise::Fresh` (its own draws, as `train` runs) or its row of a
/// shared draw (the sameness tests hold a solo model's noise to its row of a stack's).
pub struct Solo<'a> {
    pub vae: &'a Vae,
    pub noise: Noise,
}

impl<'a> Solo<'a> {
    /// `vae` drawing its own noise, as `train` runs it.
    pub fn new(vae: &'a Vae) -> Solo<'a> {
        Solo {
            vae,
            noise: Noise::Fresh,
        }
    }
}

impl Models for Solo<'_> {
    fn count(&self) -> i64 {
        1
    }

    fn device(&self) -> Device {
        self.vae.encoder.mu.weight.device()
    }

    fn losses(&self, x: &Tensor, factors: &Factors, train: bool) -> (Tensor, Tensor) {
        let out = match &self.noise {
            Noise::Fresh => self.vae.forward(x, train),
            rows => self.vae.forward_noise(x, train, |mu| {
                rows.randn(&mu.unsqueeze(0).size(), mu).squeeze_dim(0)
            }),
        };
        let p = loss::vae_loss(
            &out.reconstruction,
            x,
            &out.mu,
            &out.log_var,
            factors.host[0],
        );
        let parts = Tensor::stack(&[p.loss.shallow_clone(), p.r_loss, p.kl_loss], 0).unsqueeze(0);
        (p.loss, parts)
    }

    fn buffers(&self) -> Vec<Tensor> {
        self.vae.buffers()
    }

    fn reconstruct_mean(&self, x: &Tensor) -> Vec<Tensor> {
        vec![self.vae.reconstruct_mean(x)]
    }

    fn model_state(&self, _: i64) -> Option<Vec<(String, Tensor)>> {
        None
    }

    fn sample(&self, n: i64) -> Vec<Tensor> {
        let l = self.vae.config.latent_dim;
        let z = Tensor::randn([n, l], (Kind::Float, self.device()));
        vec![self.vae.decoder.forward(&z)]
    }
}

/// K stacked models and where their noise comes from.
pub struct Stack {
    pub model: StackedVae,
    pub noise: Noise,
}

impl Models for Stack {
    fn count(&self) -> i64 {
        self.model.k
    }

    fn device(&self) -> Device {
        self.model.device()
    }

    fn losses(&self, x: &Tensor, factors: &Factors, train: bool) -> (Tensor, Tensor) {
        let (recon, mu, log_var) = self.model.forward(x, train, &self.noise);
        stacked_loss(&recon, x, &mu, &log_var, &factors.device)
    }

    fn buffers(&self) -> Vec<Tensor> {
        self.model.buffers().into_iter().map(|(_, t)| t).collect()
    }

    fn reconstruct_mean(&self, x: &Tensor) -> Vec<Tensor> {
        let (mu, _) = self.model.encode(x, false);
        let recon = self.model.decode(&mu, false);
        (0..self.model.k).map(|j| recon.select(1, j)).collect()
    }

    fn model_state(&self, j: i64) -> Option<Vec<(String, Tensor)>> {
        let mut state = self.model.model_state(j);
        state.sort_by(|a, b| a.0.cmp(&b.0));
        Some(state)
    }

    fn sample(&self, n: i64) -> Vec<Tensor> {
        let (k, l) = (self.model.k, self.model.config.latent_dim);
        let z = Tensor::randn([k, n, l], (Kind::Float, self.device()));
        let images = self.model.decode(&z, false);
        (0..k).map(|j| images.select(1, j)).collect()
    }
}
