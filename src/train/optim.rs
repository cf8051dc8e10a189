//! Adam exactly as Keras computes it (keras/src/optimizers/adam.py, `update_step`):
//!   t += 1;  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
//!   m += (g - m) * (1 - beta_1);  v += (g^2 - v) * (1 - beta_2)
//!   p -= alpha * m / (sqrt(v) + epsilon)
//! i.e. Kingma & Ba's "epsilon hat" form with epsilon 1e-7; torch's Adam adds epsilon after
//! bias-correcting v instead. The state (m, v, t) is saved with every checkpoint.
//!
//! All parameters live in one flat buffer (each variable's data is a view into it, set with
//! `set_data`), and so do their gradients, m and v: an update is a handful of kernels for all
//! tensors instead of several per tensor (../shared/libtorch-recipes.md, "One flat buffer").
//! Gradients come from `backward`, which asks autograd for them (no `.grad` accumulation, no
//! zeroing) and packs them into the flat gradient buffer with one `cat`.
//!
//! Two ways to get the step size (`new`'s `device_steps`):
//! - host scalars: computed in f64 per step, as the per-tensor optimizer did;
//! - device scalars: a device table of the step factors for the next
//!   `capacity` steps and a device index into it, so that an update queues no host number and
//!   can be captured in a CUDA graph and replayed. The table holds the same f32 values the host
//!   form computes, so both forms give the same numbers.
//!
//! A stack of K models (crate::model::stack) is one optimizer over the stacked tensors, whose
//! leading dimension holds the K models in order, so each model's elements are K contiguous
//! blocks of every slot. Where the models' learning rates, betas or epsilons differ, the
//! update reads them per element (`PerModel`): still the same handful of kernels.
use tch::{Device, Kind, TchError, Tensor};

use crate::config::AdamConfig;

/// Where a parameter sits in the flat buffers, in its own memory order: contiguous, or
/// channels-last for 4-D tensors that are so (`model::channels_last`).
struct Slot {
    name: String,
    offset: i64,
    shape: Vec<i64>,
    channels_last: bool,
}

/// NHWC order of NCHW dims, and back.
const TO_NHWC: [i64; 4] = [0, 2, 3, 1];
const FROM_NHWC: [i64; 4] = [0, 3, 1, 2];

fn is_channels_last(t: &Tensor) -> bool {
    let size = t.size();
    if size.len() != 4 {
        return false;
    }
    let (c, h, w) = (size[1], size[2], size[3]);
    t.stride() == [h * w * c, 1, w * c, c]
}

impl Slot {
    fn numel(&self) -> i64 {
        self.shape.iter().product()
    }
    /// The slot's part of a flat buffer, as a tensor of the parameter's shape and strides.
    fn view(&self, flat: &Tensor) -> Tensor {
        let part = flat.narrow(0, self.offset, self.numel());
        if self.channels_last {
            let s = &self.shape;
            part.view([s[0], s[2], s[3], s[1]]).permute(FROM_NHWC)
        } else {
            part.view(self.shape.as_slice())
        }
    }
    /// `t` (of the parameter's shape) flattened in the slot's memory order: a view when `t`
    /// has the parameter's layout, else a copy.
    fn flatten(&self, t: &Tensor) -> Tensor {
        if self.channels_last {
            t.permute(TO_NHWC).reshape([-1])
        } else {
            t.reshape([-1])
        }
    }
}

/// The step factors on the device: `table[k]` is -1/alpha of step `base + k + 1`.
struct DeviceScalars {
    table: Tensor,
    k: Tensor,
    base: i64,
    capacity: i64,
}

/// The hyperparameters of K stacked models, per element of the flat buffers; a field is None
/// where all models share the value (then the scalar of `KerasAdam::config` is used).
struct PerModel {
    configs: Vec<AdamConfig>,
    /// Which model each element belongs to (int64, the flat buffers' length).
    owner: Tensor,
    one_minus_beta_1: Option<Tensor>,
    beta_2: Option<Tensor>,
    epsilon: Option<Tensor>,
    /// Whether the step factor differs between models (learning rate or betas differ).
    factors: bool,
}

impl PerModel {
    /// The per-element hyperparameters of `configs.len()` models over the flat buffers of
    /// `slots` (each slot's leading dimension holds the models in order).
    fn new(slots: &[Slot], configs: &[AdamConfig], flat: &Tensor) -> PerModel {
        let k = configs.len() as i64;
        let (kind, device) = (flat.kind(), flat.device());
        let owner: Vec<Tensor> = slots
            .iter()
            .map(|slot| {
                let n = slot.numel();
                assert!(n % k == 0, "{}: {n} elements over {k} models", slot.name);
                Tensor::arange(k, (Kind::Int64, device)).repeat_interleave_self_int(
                    n / k,
                    None,
                    None,
                )
            })
            .collect();
        let owner = Tensor::cat(&owner, 0);
        let per_element = |get: fn(&AdamConfig) -> f64| -> Option<Tensor> {
            let values: Vec<f64> = configs.iter().map(get).collect();
            if values.iter().all(|v| *v == values[0]) {
                return None;
            }
            let t = Tensor::from_slice(&values).to_kind(kind).to_device(device);
            Some(t.index_select(0, &owner))
        };
        let differs =
            |get: fn(&AdamConfig) -> f64| configs.iter().any(|c| get(c) != get(&configs[0]));
        PerModel {
            one_minus_beta_1: per_element(|c| 1.0 - c.beta_1),
            beta_2: per_element(|c| c.beta_2),
            epsilon: per_element(|c| c.epsilon),
            factors: differs(|c| c.learning_rate) || differs(|c| c.beta_1) || differs(|c| c.beta_2),
            owner,
            configs: configs.to_vec(),
        }
    }
}

pub struct KerasAdam {
    /// The (first) model's hyperparameters.
    pub config: AdamConfig,
    /// Iterations done (Keras's `optimizer.iterations`).
    pub step: i64,
    slots: Vec<Slot>,
    /// The model's variables; their data are views into `params`.
    vars: Vec<Tensor>,
    params: Tensor,
    grads: Tensor,
    m: Tensor,
    v: Tensor,
    device_scalars: Option<DeviceScalars>,
    per_model: Option<PerModel>,
    /// Each model's learning rate as configured, which `set_lr_factor` scales.
    base_lrs: Vec<f64>,
}

impl KerasAdam {
    /// One optimizer over `params` (named trainable tensors, sorted by name for a stable order),
    /// whose data move into one flat buffer: the tensors passed in see every update.
    /// - `configs`: one model's hyperparameters, or K stacked models' (every tensor's leading
    ///   dimension then holds the models in order; model j steps with `configs[j]`);
    /// - `device_steps`: keep the step factors on the device for that many steps (a table
    ///   refilled in place, `refill`), so that an update queues no host number and can be
    ///   captured in a CUDA graph; None computes them on the host each step. Both give the same
    ///   numbers (tests/optim.rs).
    pub fn new(
        mut params: Vec<(String, Tensor)>,
        configs: Vec<AdamConfig>,
        device_steps: Option<i64>,
    ) -> KerasAdam {
        params.sort_by(|a, b| a.0.cmp(&b.0));
        assert!(!params.is_empty(), "KerasAdam needs parameters");
        assert!(!configs.is_empty(), "KerasAdam needs one config per model");
        let (kind, device) = (params[0].1.kind(), params[0].1.device());
        let mut slots = Vec::with_capacity(params.len());
        let mut offset = 0;
        for (name, p) in &params {
            assert!(
                p.kind() == kind && p.device() == device,
                "{name}: every parameter must have the same kind and device"
            );
            let slot = Slot {
                name: name.clone(),
                offset,
                shape: p.size(),
                channels_last: is_channels_last(p),
            };
            offset += slot.numel();
            slots.push(slot);
        }
        let flat = Tensor::zeros([offset], (kind, device));
        let vars: Vec<Tensor> = params.into_iter().map(|(_, p)| p).collect();
        tch::no_grad(|| {
            for (slot, var) in slots.iter().zip(&vars) {
                let view = slot.view(&flat);
                view.shallow_clone().copy_(var);
                var.shallow_clone().set_data(&view);
            }
        });
        let per_model = (configs.len() > 1).then(|| PerModel::new(&slots, &configs, &flat));
        let mut opt = KerasAdam {
            step: 0,
            grads: flat.zeros_like(),
            m: flat.zeros_like(),
            v: flat.zeros_like(),
            params: flat,
            slots,
            vars,
            device_scalars: None,
            per_model,
            base_lrs: configs.iter().map(|c| c.learning_rate).collect(),
            config: configs[0].clone(),
        };
        if let Some(capacity) = device_steps {
            let capacity = capacity.max(1);
            opt.device_scalars = Some(DeviceScalars {
                table: Tensor::zeros([capacity, opt.models()], (kind, device)),
                k: Tensor::zeros([1], (Kind::Int64, device)),
                base: 0,
                capacity,
            });
            opt.refill();
        }
        opt
    }

    /// How many step factors each step has: one per model where they differ, else one.
    fn models(&self) -> i64 {
        match &self.per_model {
            Some(p) if p.factors => p.configs.len() as i64,
            _ => 1,
        }
    }

    pub fn device(&self) -> Device {
        self.params.device()
    }

    /// Sets every model's learning rate to `factor` x its configured one (a schedule's step
    /// between epochs, `train.lr_decay`), and refills the device scalars from the current step:
    /// a captured graph reads the new rate from its table, with no recapture.
    pub fn set_lr_factor(&mut self, factor: f64) {
        self.config.learning_rate = self.base_lrs[0] * factor;
        if let Some(p) = &mut self.per_model {
            for (c, base) in p.configs.iter_mut().zip(&self.base_lrs) {
                c.learning_rate = base * factor;
            }
        }
        self.refill();
    }

    /// Each model's learning rate now (one for a single model).
    pub fn learning_rates(&self) -> Vec<f64> {
        match &self.per_model {
            Some(p) => p.configs.iter().map(|c| c.learning_rate).collect(),
            None => vec![self.config.learning_rate],
        }
    }

    /// -1/alpha for step t (1-based), in f64 (see the module header), of each model whose
    /// factor differs (`models`): one value for a single model.
    fn neg_inv_alpha(&self, t: i64) -> Vec<f64> {
        let one = |c: &AdamConfig| {
            let AdamConfig {
                learning_rate: lr,
                beta_1: b1,
                beta_2: b2,
                ..
            } = *c;
            let t = t as f64;
            let alpha = lr * (1.0 - b2.powf(t)).sqrt() / (1.0 - b1.powf(t));
            -1.0 / alpha
        };
        match &self.per_model {
            Some(p) if p.factors => p.configs.iter().map(one).collect(),
            _ => vec![one(&self.config)],
        }
    }

    /// Device scalars: writes the factors of steps `step + 1 ..= step + capacity` into the table
    /// (in place: a captured graph keeps reading it) and points the index at the first.
    pub fn refill(&mut self) {
        let step = self.step;
        let Some(ds) = &self.device_scalars else {
            return;
        };
        let values: Vec<f64> = (1..=ds.capacity)
            .flat_map(|i| self.neg_inv_alpha(step + i))
            .collect();
        let host = Tensor::from_slice(&values)
            .view([ds.capacity, -1])
            .to_kind(ds.table.kind());
        let ds = self.device_scalars.as_mut().expect("checked above");
        tch::no_grad(|| {
            ds.table.copy_(&host);
            let _ = ds.k.zero_();
        });
        ds.base = step;
    }

    /// Steps the device table still covers (None for host scalars).
    pub fn steps_left(&self) -> Option<i64> {
        self.device_scalars
            .as_ref()
            .map(|ds| ds.base + ds.capacity - self.step)
    }

    /// The gradients of `loss` into the flat gradient buffer (replacing, not accumulating).
    pub fn backward(&mut self, loss: &Tensor) {
        let grads = Tensor::run_backward(&[loss], &self.vars, false, false);
        let flat: Vec<Tensor> = self
            .slots
            .iter()
            .zip(&grads)
            .map(|(slot, g)| slot.flatten(g))
            .collect();
        tch::no_grad(|| {
            let _ = Tensor::cat_out(&self.grads, &flat, 0);
        });
    }

    /// One update from the flat gradients, and the step count.
    pub fn step(&mut self) {
        if self.steps_left() == Some(0) {
            self.refill();
        }
        self.queue_update();
        self.step += 1;
    }

    /// The update's kernels without the host step count: what a CUDA graph captures (device
    /// scalars only), counted per replay with `count_replayed_step`.
    pub fn queue_update(&mut self) {
        let AdamConfig {
            beta_1: b1,
            beta_2: b2,
            epsilon: eps,
            ..
        } = self.config;
        let host_factor = self.neg_inv_alpha(self.step + 1);
        let (g, m, v, p) = (&self.grads, &mut self.m, &mut self.v, &mut self.params);
        let ds = &mut self.device_scalars;
        let per = self.per_model.as_ref();
        // The step factors of several models, per element.
        let spread = |f: Tensor| {
            let f = f.view([-1]);
            match per {
                Some(p) if p.factors => f.index_select(0, &p.owner),
                _ => f,
            }
        };
        tch::no_grad(|| {
            let _ = match per.and_then(|p| p.one_minus_beta_1.as_ref()) {
                Some(w) => m.lerp_tensor_(g, w),
                None => m.lerp_(g, 1.0 - b1),
            };
            let _ = match per.and_then(|p| p.beta_2.as_ref()) {
                Some(b2) => v.g_mul_(b2).addcmul_(&(g * (1.0 - b2)), g),
                None => v.g_mul_scalar_(b2).addcmul_(&(g * (1.0 - b2)), g),
            };
            // p += m / ((sqrt(v) + eps) / -alpha)  ==  p -= alpha * m / (sqrt(v) + eps)
            let mut denom = v.sqrt();
            let _ = match per.and_then(|p| p.epsilon.as_ref()) {
                Some(e) => denom.g_add_(e),
                None => denom.g_add_scalar_(eps),
            };
            match ds {
                None if host_factor.len() == 1 => {
                    let _ = denom.g_mul_scalar_(host_factor[0]);
                }
                None => {
                    let f = Tensor::from_slice(&host_factor)
                        .to_kind(denom.kind())
                        .to_device(denom.device());
                    let _ = denom.g_mul_(&spread(f));
                }
                Some(ds) => {
                    let _ = denom.g_mul_(&spread(ds.table.index_select(0, &ds.k)));
                    let _ = ds.k.g_add_scalar_(1);
                }
            }
            let _ = p.addcdiv_(m, &denom);
        });
    }

    /// Counts a step whose update ran in a replayed graph.
    pub fn count_replayed_step(&mut self) {
        self.step += 1;
    }

    /// The flat parameters, gradients, m and v: copies of them restore the optimizer exactly
    /// (used to undo the warm-up steps of a graph capture).
    pub fn buffers(&self) -> [&Tensor; 4] {
        [&self.params, &self.grads, &self.m, &self.v]
    }

    /// The flat gradient buffer (what `backward` wrote).
    pub fn flat_grads(&self) -> &Tensor {
        &self.grads
    }

    /// m and v under `m.<param>` / `v.<param>` (contiguous copies), for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            out.push((format!("m.{}", slot.name), slot.view(&self.m).contiguous()));
            out.push((format!("v.{}", slot.name), slot.view(&self.v).contiguous()));
        }
        out
    }

    /// Restores m and v (and sets `step`) from `state_tensors`' names and shapes; `source`
    /// names where they came from in errors.
    pub fn set_state(
        &mut self,
        saved: &std::collections::HashMap<String, Tensor>,
        step: i64,
        source: &str,
    ) -> Result<(), TchError> {
        let missing = |key: &str| TchError::FileFormat(format!("{source}: no tensor {key}"));
        for slot in &self.slots {
            for (prefix, flat) in [("m", &self.m), ("v", &self.v)] {
                let key = format!("{prefix}.{}", slot.name);
                let src = saved.get(&key).ok_or_else(|| missing(&key))?;
                if src.size() != slot.shape {
                    return Err(TchError::FileFormat(format!(
                        "{source}: {key} has shape {:?}, the model {:?}",
                        src.size(),
                        slot.shape
                    )));
                }
                tch::no_grad(|| slot.view(flat).copy_(src));
            }
        }
        self.step = step;
        self.refill();
        Ok(())
    }
}
