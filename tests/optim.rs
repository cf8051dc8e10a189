//! Keras Adam (keras/src/optimizers/adam.py): epsilon added to sqrt(v) before the bias
//! correction, which is folded into the step size. The flat-buffer optimizer against the
//! written-out recurrence and against the per-tensor optimizer it replaced.
mod common;

use tch::{Device, Kind, Tensor};
use vae_tch::config::{AdamConfig, RunConfig};
use vae_tch::train::optim::KerasAdam;

#[test]
fn steps_follow_the_keras_formula() {
    let cfg = AdamConfig {
        learning_rate: 0.1,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
    let p = Tensor::from_slice(&[1.0f64, -2.0, 0.5]).set_requires_grad(true);
    let mut opt = KerasAdam::new(
        vec![("p".into(), p.shallow_clone())],
        vec![cfg.clone()],
        None,
    );
    let grads = [[0.5f64, -1e-4, 0.0], [0.2, 0.3, -1e-6]];
    // The same recurrence written out in f64 scalars.
    let (mut m, mut v, mut want) = ([0.0f64; 3], [0.0f64; 3], [1.0f64, -2.0, 0.5]);
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as f64;
        let alpha =
            cfg.learning_rate * (1.0 - cfg.beta_2.powf(t)).sqrt() / (1.0 - cfg.beta_1.powf(t));
        for j in 0..3 {
            m[j] += (g[j] - m[j]) * (1.0 - cfg.beta_1);
            v[j] += (g[j] * g[j] - v[j]) * (1.0 - cfg.beta_2);
            want[j] -= alpha * m[j] / (v[j].sqrt() + cfg.epsilon);
        }
        opt.backward(&(&p * Tensor::from_slice(g)).sum(Kind::Double));
        opt.step();
    }
    let got: Vec<f64> = Vec::try_from(&p.detach()).unwrap();
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "got {got:?}, want {want:?}");
    }
    assert_eq!(opt.step, 2);
    // Unlike torch's Adam (eps 1e-8 after bias correction), a tiny gradient moves the weight
    // by less than lr: Keras's first step is lr * g * sqrt(1-b2) / (|g| sqrt(1-b2) + eps).
    let tiny = Tensor::from_slice(&[0.0f64]).set_requires_grad(true);
    let mut o = KerasAdam::new(
        vec![("t".into(), tiny.shallow_clone())],
        vec![cfg.clone()],
        None,
    );
    o.backward(&(&tiny * 1e-6).sum(Kind::Double));
    o.step();
    let s = 1e-6 * 0.001f64.sqrt();
    let want = -0.1 * s / (s + 1e-7);
    assert!(
        (tiny.double_value(&[0]) - want).abs() < 1e-12,
        "{} vs {want}",
        tiny.double_value(&[0])
    );
}

/// The optimizer vae-tch had before the flat buffers (src/optim.rs up to commit ea85433): a
/// loop over the tensors, several kernels each, gradients from `.grad()`.
struct PerTensorAdam {
    config: AdamConfig,
    step: i64,
    params: Vec<Tensor>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
}

impl PerTensorAdam {
    fn new(params: Vec<Tensor>, config: AdamConfig) -> Self {
        let m = params.iter().map(|p| p.zeros_like()).collect();
        let v = params.iter().map(|p| p.zeros_like()).collect();
        PerTensorAdam {
            config,
            step: 0,
            params,
            m,
            v,
        }
    }
    fn zero_grad(&mut self) {
        for p in &self.params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.zero_();
            }
        }
    }
    fn step(&mut self) {
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
            for ((p, m), v) in self.params.iter().zip(&mut self.m).zip(&mut self.v) {
                let g = p.grad();
                let _ = m.lerp_(&g, 1.0 - b1);
                let _ = v.g_mul_scalar_(b2).addcmul_(&(&g * (1.0 - b2)), &g);
                let mut denom = v.sqrt();
                let _ = denom.g_add_scalar_(eps).g_mul_scalar_(-1.0 / alpha);
                let _ = p.shallow_clone().addcdiv_(m, &denom);
            }
        });
    }
}

/// `steps` training steps of the seed's model on fixed random batches (seeded), with the flat
/// optimizer (`device_scalars`: its graph-safe form, with a table of `capacity` steps) or the
/// per-tensor one; returns the weights by name.
fn train_steps(flat: Option<(bool, i64)>, steps: usize) -> Vec<(String, Tensor)> {
    let cfg = RunConfig::default();
    let model = vae_tch::model::build(&cfg, Device::Cpu, 11);
    let mut named: Vec<(String, Tensor)> = model.vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let params = || -> Vec<(String, Tensor)> {
        named
            .iter()
            .map(|(n, t)| (n.clone(), t.shallow_clone()))
            .collect()
    };
    let mut flat_opt = flat.map(|(device_scalars, capacity)| {
        if device_scalars {
            KerasAdam::new(params(), vec![cfg.optim.clone()], Some(capacity))
        } else {
            KerasAdam::new(params(), vec![cfg.optim.clone()], None)
        }
    });
    let mut old = PerTensorAdam::new(
        params().into_iter().map(|(_, t)| t).collect(),
        cfg.optim.clone(),
    );
    tch::manual_seed(5);
    for _ in 0..steps {
        let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
        let eps = Tensor::randn([4, 2], (Kind::Float, Device::Cpu));
        let (mu, log_var) = model.vae.encoder.forward(&x);
        let out = model.vae.forward_with_eps(mu, log_var, &eps);
        let p =
            vae_tch::model::loss::vae_loss(&out.reconstruction, &x, &out.mu, &out.log_var, 1000.0);
        match &mut flat_opt {
            Some(opt) => {
                opt.backward(&p.loss);
                opt.step();
            }
            None => {
                old.zero_grad();
                p.loss.backward();
                old.step();
            }
        }
    }
    named
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect()
}

fn max_diff(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> f64 {
    a.iter()
        .zip(b)
        .map(|((na, ta), (nb, tb))| {
            assert_eq!(na, nb);
            (ta - tb).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

#[test]
fn flat_adam_equals_the_per_tensor_adam_over_100_steps() {
    let _g = common::rng_lock();
    let old = train_steps(None, 100);
    let host = train_steps(Some((false, 0)), 100);
    // The issue asked for 1e-6; on the CPU the flat buffers give the very same numbers.
    let diff = max_diff(&old, &host);
    assert!(
        diff < 1e-6,
        "flat vs per-tensor Adam: max weight difference {diff}"
    );
    // The weights moved: the comparison is not between two untrained models.
    let start = train_steps(None, 0);
    assert!(max_diff(&start, &old) > 1e-3);
}

#[test]
fn device_scalars_give_the_host_numbers_exactly() {
    // The graph-safe form reads -1/alpha from a device table (refilled every 7 steps here)
    // instead of a host scalar: the same f32 values, so the same weights bit for bit.
    let _g = common::rng_lock();
    let host = train_steps(Some((false, 0)), 30);
    let device = train_steps(Some((true, 7)), 30);
    assert_eq!(max_diff(&host, &device), 0.0);
}

#[test]
fn parameters_are_views_into_one_buffer_in_their_memory_order() {
    let _g = common::rng_lock();
    let cfg = RunConfig::default();
    let mut model = vae_tch::model::build(&cfg, Device::Cpu, 3);
    model.vae.set_layout(vae_tch::model::Layout {
        channels_last: true,
        flipped: false,
    });
    let before: Vec<(String, Tensor)> = model
        .vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.detach().copy()))
        .collect();
    let mut opt = KerasAdam::new(
        model.vs.variables().into_iter().collect(),
        vec![cfg.optim],
        None,
    );
    // Channels-last stays channels-last (NHWC strides) inside the flat buffer.
    let w = &model.vs.variables()["encoder.conv2.weight"];
    assert_eq!(w.size(), [64, 32, 3, 3]);
    assert_eq!(w.stride(), [288, 1, 96, 32]);
    for (name, t) in &before {
        assert!(t.equal(&model.vs.variables()[name]), "{name} changed value");
    }
    // One step moves every tensor: all are in the flat buffer the update works on.
    let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let out = model.vae.forward(&x, true);
    let p = vae_tch::model::loss::vae_loss(&out.reconstruction, &x, &out.mu, &out.log_var, 1000.0);
    opt.backward(&p.loss);
    assert_eq!(
        opt.flat_grads().size(),
        [207_237] // Keras summary(): 105,220 + 102,017 (../shared/keras-semantics.md)
    );
    opt.step();
    for (name, t) in &before {
        let now = &model.vs.variables()[name];
        assert!(!t.equal(now), "{name} did not move");
    }
    // Checkpoint tensors are contiguous copies under the per-tensor keys.
    let state = opt.state_tensors();
    assert_eq!(state.len(), 2 * before.len());
    assert!(state.iter().all(|(_, t)| t.is_contiguous()));
    assert!(state.iter().any(|(n, _)| n == "m.encoder.conv2.weight"));
}
