//! The stacked model (crate::model::stack): K models as one wider model give each model's solo
//! numbers (outputs, losses, gradients), and one stacked pass has as many autograd nodes at
//! K = 8 as at K = 1.
mod common;

use tch::{Device, Kind, Tensor};
use vae_tch::config::TrainConfig;
use vae_tch::model::loss::vae_loss;
use vae_tch::model::stack::{stacked_loss, StackedVae};
use vae_tch::model::{build, reparameterize, Loaded};

fn max_abs(t: &Tensor) -> f64 {
    t.abs().max().double_value(&[])
}

/// Relative difference: max |a - b| over max |b|.
fn rel(a: &Tensor, b: &Tensor) -> f64 {
    max_abs(&(a - b)) / max_abs(b).max(1e-12)
}

fn models(cfg: &TrainConfig, seeds: &[u64]) -> Vec<Loaded> {
    seeds.iter().map(|&s| build(cfg, Device::Cpu, s)).collect()
}

/// The solo gradients of every trainable tensor of `m` for its loss on `x` with noise `eps`.
fn solo(
    m: &Loaded,
    x: &Tensor,
    eps: &Tensor,
    factor: f64,
) -> (Tensor, Tensor, Vec<(String, Tensor)>) {
    let (mu, log_var) = m.vae.encoder.forward_t(x, true);
    let z = reparameterize(&mu, &log_var, eps);
    let recon = m.vae.decoder.forward_t(&z, true);
    let p = vae_loss(&recon, x, &mu, &log_var, factor);
    let trainable = m.trainable();
    let vars: Vec<Tensor> = trainable.iter().map(|(_, t)| t.shallow_clone()).collect();
    let grads = Tensor::run_backward(&[&p.loss], &vars, false, false);
    let named = trainable.into_iter().map(|(n, _)| n).zip(grads).collect();
    (
        recon,
        Tensor::stack(&[p.loss, p.r_loss, p.kl_loss], 0),
        named,
    )
}

fn check_against_solo(cfg: &TrainConfig, train: bool) {
    let _g = common::rng_lock();
    let seeds = [1, 2, 3];
    let factors = [100.0, 1000.0, 10000.0];
    let solos = models(cfg, &seeds);
    let refs: Vec<&vae_tch::model::Vae> = solos.iter().map(|m| &m.vae).collect();
    let stacked = StackedVae::new(&refs);
    tch::manual_seed(9);
    let [c, h, w] = cfg.model.input_shape;
    let x = Tensor::rand([4, c, h, w], (Kind::Float, Device::Cpu));
    let eps = Tensor::randn([3, 4, cfg.model.latent_dim], (Kind::Float, Device::Cpu));

    let (mu, log_var) = stacked.encode(&x, train);
    let z = reparameterize(&mu, &log_var, &eps);
    let recon = stacked.decode(&z, train);
    let (total, parts) = stacked_loss(&recon, &x, &mu, &log_var, &Tensor::from_slice(&factors));
    let trainable = stacked.trainable();
    let vars: Vec<Tensor> = trainable.iter().map(|(_, t)| t.shallow_clone()).collect();
    let grads = Tensor::run_backward(&[&total], &vars, false, false);

    for (j, m) in solos.iter().enumerate() {
        if !train {
            // Eval mode: no noise in the way; the outputs through the latent means.
            let mean = m.vae.reconstruct_mean(&x);
            let smean = stacked.decode(&mu, false).select(1, j as i64);
            assert!(rel(&smean, &mean) < 1e-5, "model {j}: eval outputs differ");
            continue;
        }
        let (s_recon, s_parts, s_grads) = solo(m, &x, &eps.get(j as i64), factors[j]);
        assert!(
            rel(&recon.select(1, j as i64), &s_recon) < 1e-5,
            "model {j}: reconstructions"
        );
        assert!(
            rel(&parts.get(j as i64), &s_parts) < 1e-5,
            "model {j}: losses {parts:?} {s_parts:?}"
        );
        // Gradients against the model's largest one: a gradient that is zero in exact
        // arithmetic (a conv bias under BatchNorm in training) is rounding noise in both forms.
        let scale = s_grads.iter().map(|(_, g)| max_abs(g)).fold(0.0, f64::max);
        for (name, g) in &s_grads {
            let i = trainable.iter().position(|(n, _)| n == name).unwrap();
            let sg = &grads[i];
            let part = if sg.size() == g.size() {
                sg.shallow_clone()
            } else if sg.size()[0] == 3 && sg.size()[1..] == g.size()[..] {
                sg.get(j as i64)
            } else {
                let n = g.size()[0];
                sg.narrow(0, j as i64 * n, n)
            };
            let d = max_abs(&(&part - g)) / scale;
            assert!(
                d < 1e-5,
                "model {j}: gradient of {name}: {d} of the largest gradient"
            );
        }
    }
    // Each model's slices are its own state dict.
    let state = stacked.model_state(1);
    let mine = solos[1].vs.variables();
    assert_eq!(state.len(), mine.len());
    for (name, t) in &state {
        assert!(t.equal(&mine[name]), "{name}");
    }
}

#[test]
fn a_stack_of_three_gives_each_models_solo_outputs_losses_and_gradients() {
    check_against_solo(&TrainConfig::default(), true);
}

#[test]
fn a_stack_of_batch_norm_and_dropout_models_gives_their_eval_outputs() {
    let mut cfg = TrainConfig::default();
    cfg.model.use_batch_norm = true;
    cfg.model.use_dropout = true;
    check_against_solo(&cfg, false);
    // Batch statistics (training mode) without dropout: the same per-model numbers too.
    cfg.model.use_dropout = false;
    check_against_solo(&cfg, true);
}

#[test]
fn one_stacked_pass_has_as_many_autograd_nodes_at_k_8_as_at_k_1() {
    let _g = common::rng_lock();
    let cfg = TrainConfig::default();
    let count = |k: usize| {
        let solos = models(&cfg, &(0..k as u64).collect::<Vec<_>>());
        let refs: Vec<&vae_tch::model::Vae> = solos.iter().map(|m| &m.vae).collect();
        let s = StackedVae::new(&refs);
        let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let (mu, log_var) = s.encode(&x, true);
        let z = reparameterize(&mu, &log_var, &mu.randn_like());
        let recon = s.decode(&z, true);
        let factors = Tensor::full([k as i64], 1000.0, (Kind::Float, Device::Cpu));
        let (total, _) = stacked_loss(&recon, &x, &mu, &log_var, &factors);
        vae_tch::util::autograd::nodes(&total).unwrap()
    };
    let (one, eight) = (count(1), count(8));
    assert!(one > 20, "the walk sees the graph: {one} nodes");
    assert_eq!(one, eight, "K = 8 must be one wider pass, not 8 passes");
    // And a solo model's pass for comparison is about as large (not 8 times).
    let solo = build(&cfg, Device::Cpu, 0);
    let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let out = solo.vae.forward(&x, true);
    let p = vae_loss(&out.reconstruction, &x, &out.mu, &out.log_var, 1000.0);
    let n = vae_tch::util::autograd::nodes(&p.loss).unwrap();
    assert!(n * 2 > one, "solo {n} against stacked {one}");
}
