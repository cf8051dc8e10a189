//! What a training step trains, behind one interface: one model (`Solo`) or K models of one
//! shape stacked into one wider model (`Stack`, crate::model::stack). The step, the optimizer and
//! the loop see a loss to backpropagate and each model's (loss, r_loss, kl_loss), whatever K is.
//! `build` is the one place that makes either, with its optimizer, from fresh seeds or saved
//! states: the training job and the benchmark both use it.
use std::collections::HashMap;
use std::path::PathBuf;

use tch::{Device, Kind, Tensor};

use crate::config::RunConfig;
use crate::model::loss;
use crate::model::stack::{self, stacked_loss, Noise, StackedVae};
use crate::model::{Layout, Loaded, StateError, Vae};
use crate::train::optim::KerasAdam;

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
    /// The layout the convolutions run in (crate::model::layout).
    fn layout(&self) -> Layout;
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
    /// Each model's decodes of `n` draws from N(0, I), `[n, C, H, W]` each.
    fn sample(&self, n: i64) -> Vec<Tensor>;
    /// Model `j`'s state dict under the solo model's keys, as contiguous copies sorted by key:
    /// what its checkpoint holds.
    fn model_state(&self, j: i64) -> Vec<(String, Tensor)>;
    /// Model `j`'s part of `opt`'s m and v, under a solo optimizer's names (`m.<key>`).
    fn optimizer_state(&self, opt: &KerasAdam, j: i64) -> Vec<(String, Tensor)>;
}

/// One model. `noise` is `Noise::Fresh` (its own draws, as `train` runs it) or its row of a
/// shared draw (the sameness tests hold a solo model's noise to its row of a stack's).
pub struct Solo {
    pub model: Loaded,
    pub noise: Noise,
}

impl Solo {
    /// `model` drawing its own noise, as `train` runs it.
    pub fn new(model: Loaded) -> Solo {
        Solo {
            model,
            noise: Noise::Fresh,
        }
    }

    fn vae(&self) -> &Vae {
        &self.model.vae
    }
}

impl Models for Solo {
    fn count(&self) -> i64 {
        1
    }

    fn device(&self) -> Device {
        self.vae().encoder.mu.weight.device()
    }

    fn layout(&self) -> Layout {
        self.vae().encoder.layout
    }

    fn losses(&self, x: &Tensor, factors: &Factors, train: bool) -> (Tensor, Tensor) {
        let out = match &self.noise {
            Noise::Fresh => self.vae().forward(x, train),
            rows => self.vae().forward_noise(x, train, |mu| {
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
        self.vae().buffers()
    }

    fn reconstruct_mean(&self, x: &Tensor) -> Vec<Tensor> {
        vec![self.vae().reconstruct_mean(x)]
    }

    fn sample(&self, n: i64) -> Vec<Tensor> {
        let l = self.vae().config.latent_dim;
        let z = Tensor::randn([n, l], (Kind::Float, self.device()));
        vec![self.vae().decoder.forward(&z)]
    }

    fn model_state(&self, _: i64) -> Vec<(String, Tensor)> {
        self.model.state_dict()
    }

    fn optimizer_state(&self, opt: &KerasAdam, _: i64) -> Vec<(String, Tensor)> {
        opt.state_tensors()
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

    fn layout(&self) -> Layout {
        self.model.layout
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

    fn sample(&self, n: i64) -> Vec<Tensor> {
        let (k, l) = (self.model.k, self.model.config.latent_dim);
        let z = Tensor::randn([k, n, l], (Kind::Float, self.device()));
        let images = self.model.decode(&z, false);
        (0..k).map(|j| images.select(1, j)).collect()
    }

    fn model_state(&self, j: i64) -> Vec<(String, Tensor)> {
        let mut state = self.model.model_state(j);
        state.sort_by(|a, b| a.0.cmp(&b.0));
        state
    }

    fn optimizer_state(&self, opt: &KerasAdam, j: i64) -> Vec<(String, Tensor)> {
        opt.state_tensors()
            .into_iter()
            .map(|(name, t)| {
                let p = stack::part(&name, &t, j, self.model.k);
                (name, p)
            })
            .collect()
    }
}

/// A model's saved state to continue from: its weights and Adam's m and v (a checkpoint's), and
/// the optimizer steps done.
pub struct Saved {
    pub weights: Vec<(String, Tensor)>,
    pub optimizer: HashMap<String, Tensor>,
    pub step: i64,
    /// Where it was read from, for errors.
    pub file: PathBuf,
}

/// How the models train: one alone, or K stacked, each drawing its noise as `Noise` says.
pub enum Form {
    Solo,
    Stacked(Noise),
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{file}: {cause}", file = .file.display())]
    Optimizer { file: PathBuf, cause: tch::TchError },
    #[error("{file}: the optimizer state has no {key}", file = .file.display())]
    MissingKey { file: PathBuf, key: String },
}

/// The models a step trains and their optimizer.
pub struct Trainable {
    pub models: Box<dyn Models>,
    pub opt: KerasAdam,
}

/// Builds the models of `configs` on `device` (each from its `train.seed`, or from its saved
/// state), as one model or one stack (`form`), in `layout` (or as much of it as the model has:
/// `Models::layout` says), with one Keras Adam over all of them (device scalars for
/// `device_steps` steps when given: graph capture). Saved states must all stand at the same
/// step.
pub fn build(
    configs: &[&RunConfig],
    saved: Vec<Option<Saved>>,
    form: Form,
    device: Device,
    layout: Layout,
    device_steps: Option<i64>,
) -> Result<Trainable, BuildError> {
    assert_eq!(
        configs.len(),
        saved.len(),
        "one saved state or None per model"
    );
    let mut solos = Vec::with_capacity(configs.len());
    for (cfg, s) in configs.iter().zip(&saved) {
        let m = crate::model::build(cfg, device, cfg.train.seed);
        if let Some(s) = s {
            m.load_state(&s.weights, &s.file)?;
        }
        solos.push(m);
    }
    let optim = configs.iter().map(|c| c.optim.clone()).collect();
    let (models, mut opt): (Box<dyn Models>, KerasAdam) = match form {
        Form::Solo => {
            assert_eq!(solos.len(), 1, "a solo form trains one model");
            let mut model = solos.pop().expect("one model");
            model.vae.set_layout(layout);
            let opt = KerasAdam::new(model.trainable(), optim, device_steps);
            (Box::new(Solo::new(model)), opt)
        }
        Form::Stacked(noise) => {
            let refs: Vec<&Vae> = solos.iter().map(|m| &m.vae).collect();
            let mut model = StackedVae::new(&refs);
            model.set_layout(layout);
            let opt = KerasAdam::new(model.trainable(), optim, device_steps);
            (Box::new(Stack { model, noise }), opt)
        }
    };
    let saved: Vec<Saved> = saved.into_iter().flatten().collect();
    if let Some(first) = saved.first() {
        let mut joined = HashMap::new();
        if saved.len() > 1 {
            for key in first.optimizer.keys() {
                let parts = saved
                    .iter()
                    .map(|s| {
                        s.optimizer
                            .get(key)
                            .map(|t| t.to_device(device))
                            .ok_or_else(|| BuildError::MissingKey {
                                file: s.file.clone(),
                                key: key.clone(),
                            })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                joined.insert(key.clone(), stack::join(key, &parts));
            }
        }
        let state = if saved.len() == 1 {
            &first.optimizer
        } else {
            &joined
        };
        opt.set_state(state, first.step, &first.file.display().to_string())
            .map_err(|cause| BuildError::Optimizer {
                file: first.file.clone(),
                cause,
            })?;
    }
    Ok(Trainable { models, opt })
}
