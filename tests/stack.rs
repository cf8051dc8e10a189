//! The stacked model (crate::model::stack): K models as one wider model give each model's solo
//! numbers (outputs, losses, gradients), and one stacked pass has as many autograd nodes at
//! K = 8 as at K = 1.
mod common;

use tch::{Device, Kind, Tensor};
use vae_tch::config::RunConfig;
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

fn models(cfg: &RunConfig, seeds: &[u64]) -> Vec<Loaded> {
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

fn check_against_solo(cfg: &RunConfig, train: bool) {
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
    check_against_solo(&RunConfig::default(), true);
}

#[test]
fn a_stack_of_batch_norm_and_dropout_models_gives_their_eval_outputs() {
    let mut cfg = RunConfig::default();
    cfg.model.use_batch_norm = true;
    cfg.model.use_dropout = true;
    check_against_solo(&cfg, false);
    // Batch statistics (training mode) without dropout: the same per-model numbers too.
    cfg.model.use_dropout = false;
    check_against_solo(&cfg, true);
}

#[test]
fn a_channels_last_flipped_stack_gives_the_nchw_stacks_numbers() {
    let _g = common::rng_lock();
    let mut cfg = RunConfig::default();
    cfg.model.use_batch_norm = true;
    let solos = models(&cfg, &[4, 5]);
    let refs: Vec<&vae_tch::model::Vae> = solos.iter().map(|m| &m.vae).collect();
    let plain = StackedVae::new(&refs);
    let mut fast = StackedVae::new(&refs);
    let want = vae_tch::model::Layout {
        channels_last: true,
        flipped: true,
    };
    assert_eq!(fast.set_layout(want), want);
    tch::manual_seed(3);
    let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let eps = Tensor::randn([2, 4, 2], (Kind::Float, Device::Cpu));
    let factors = Tensor::from_slice(&[100.0f32, 1000.0]);
    let pass = |s: &StackedVae| {
        let (mu, log_var) = s.encode(&x, true);
        let recon = s.decode(&reparameterize(&mu, &log_var, &eps), true);
        let (total, parts) = stacked_loss(&recon, &x, &mu, &log_var, &factors);
        let vars: Vec<Tensor> = s.trainable().into_iter().map(|(_, t)| t).collect();
        (
            recon,
            parts,
            Tensor::run_backward(&[&total], &vars, false, false),
        )
    };
    let (ra, pa, ga) = pass(&plain);
    let (rb, pb, gb) = pass(&fast);
    assert!(rel(&rb, &ra) < 1e-5, "reconstructions");
    assert!(rel(&pb, &pa) < 1e-5, "losses");
    let scale = ga.iter().map(max_abs).fold(0.0, f64::max);
    for (a, b) in ga.iter().zip(&gb) {
        assert!(max_abs(&(a - b)) / scale < 1e-5, "gradients");
    }
}

#[test]
fn one_stacked_pass_has_as_many_autograd_nodes_at_k_8_as_at_k_1() {
    let _g = common::rng_lock();
    let cfg = RunConfig::default();
    let count = |k: usize, fast: bool| {
        let solos = models(&cfg, &(0..k as u64).collect::<Vec<_>>());
        let refs: Vec<&vae_tch::model::Vae> = solos.iter().map(|m| &m.vae).collect();
        let mut s = StackedVae::new(&refs);
        if fast {
            // The layout training uses on the CPU and in the CUDA graph.
            s.set_layout(vae_tch::model::Layout {
                channels_last: true,
                flipped: true,
            });
        }
        let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
        let (mu, log_var) = s.encode(&x, true);
        let z = reparameterize(&mu, &log_var, &mu.randn_like());
        let recon = s.decode(&z, true);
        let factors = Tensor::full([k as i64], 1000.0, (Kind::Float, Device::Cpu));
        let (total, _) = stacked_loss(&recon, &x, &mu, &log_var, &factors);
        vae_tch::util::autograd::nodes(&total).unwrap()
    };
    let (one, eight) = (count(1, false), count(8, false));
    assert!(one > 20, "the walk sees the graph: {one} nodes");
    assert_eq!(one, eight, "K = 8 must be one wider pass, not 8 passes");
    assert_eq!(count(1, true), count(8, true), "channels-last and flipped");
    // And a solo model's pass for comparison is about as large (not 8 times).
    let solo = build(&cfg, Device::Cpu, 0);
    let x = Tensor::rand([2, 1, 28, 28], (Kind::Float, Device::Cpu));
    let out = solo.vae.forward(&x, true);
    let p = vae_loss(&out.reconstruction, &x, &out.mu, &out.log_var, 1000.0);
    let n = vae_tch::util::autograd::nodes(&p.loss).unwrap();
    assert!(n * 2 > one, "solo {n} against stacked {one}");
}

/// Trains `k` configs for `steps` steps on the same batches with their noise held equal: as one
/// stack (`Noise::Rows` of a draw for all k), and each alone (`alone(j)` gives model j's solo
/// step models, drawing its row of the same draw). Returns, per model, the stacked and the solo
/// (final state dict, logged loss sums `[3]`, eval-mode reconstructions).
type Trained = (Vec<(String, Tensor)>, Tensor, Tensor);

/// A solo run's models and the parameters its optimizer steps.
type SoloForm = (
    Box<dyn vae_tch::train::models::Models>,
    Vec<(String, Tensor)>,
);

fn train_both(
    configs: &[RunConfig],
    steps: usize,
    kind: Kind,
    solo_form: &dyn Fn(Loaded, i64, i64) -> SoloForm,
) -> Vec<(Trained, Trained)> {
    use vae_tch::model::stack::Noise;
    use vae_tch::train::models::Stack;
    use vae_tch::train::optim::KerasAdam;
    use vae_tch::train::step::{StepData, TrainStep};
    let _g = common::rng_lock();
    let k = configs.len() as i64;
    let [c, h, w] = configs[0].model.input_shape;
    tch::manual_seed(7);
    let images = Tensor::rand([48, c, h, w], (kind, Device::Cpu));
    let build = |c: &RunConfig| {
        let mut m = build(c, Device::Cpu, c.train.seed);
        m.vs.set_kind(kind);
        m
    };
    let batches: Vec<Tensor> = (0..steps)
        .map(|i| {
            Tensor::arange_start(
                (i as i64 * 8) % 40,
                (i as i64 * 8) % 40 + 8,
                (Kind::Int64, Device::Cpu),
            )
        })
        .collect();
    let probe = images.narrow(0, 0, 6);
    let run = |models: &dyn vae_tch::train::models::Models, opt: KerasAdam, factors: Vec<f64>| {
        let data = StepData {
            models,
            images: &images,
            r_loss_factors: factors,
            stream: false,
            cudnn_benchmark: false,
            precision: vae_tch::config::Precision::Fp32,
        };
        let mut step = TrainStep::eager(data, opt);
        step.begin_epoch();
        for (i, idx) in batches.iter().enumerate() {
            tch::manual_seed(1000 + i as i64);
            step.run(idx, None).unwrap();
        }
        let sums = step.sums().copy();
        let recon = tch::no_grad(|| models.reconstruct_mean(&probe));
        (sums, recon)
    };
    // The stack, from each config's own seed.
    let parts: Vec<Loaded> = configs.iter().map(build).collect();
    let refs: Vec<&vae_tch::model::Vae> = parts.iter().map(|m| &m.vae).collect();
    let stack = Stack {
        model: StackedVae::new(&refs),
        noise: Noise::Rows {
            pool: k,
            rows: Tensor::arange(k, (Kind::Int64, Device::Cpu)),
        },
    };
    let opt = KerasAdam::new(
        stack.model.trainable(),
        configs.iter().map(|c| c.optim.clone()).collect(),
        None,
    );
    let factors: Vec<f64> = configs.iter().map(|c| c.train.r_loss_factor).collect();
    let (sums, recons) = run(&stack, opt, factors);
    let mut out = Vec::new();
    for (j, cfg) in configs.iter().enumerate() {
        let stacked: Trained = (
            stack.model.model_state(j as i64),
            sums.get(j as i64),
            recons[j].shallow_clone(),
        );
        let m = build(cfg);
        let (models, params) = solo_form(m, j as i64, k);
        let opt = KerasAdam::new(params, vec![cfg.optim.clone()], None);
        let (s, r) = run(models.as_ref(), opt, vec![cfg.train.r_loss_factor]);
        let state = models.model_state(0);
        out.push((stacked, (state, s.get(0), r[0].shallow_clone())));
    }
    out
}

/// The sameness runs are in double precision: in float, 20 Adam steps grow the rounding
/// differences of two convolution algorithms (one conv of 3 x 32 filters, three of 32) to 3e-4
/// of a weight, as they would between any two conv implementations (Adam's first steps move a
/// weight by about the learning rate whatever its gradient's size, so a gradient near zero whose
/// sign rounds differently moves it the other way).
const KIND: Kind = Kind::Double;

/// Three configs that differ in what a stack carries per model.
fn three(base: &RunConfig) -> Vec<RunConfig> {
    [(1, 100.0, 5e-4), (2, 1000.0, 1e-3), (3, 10000.0, 2e-4)]
        .iter()
        .map(|&(seed, factor, lr)| {
            let mut c = base.clone();
            c.train.seed = seed;
            c.train.r_loss_factor = factor;
            c.optim.learning_rate = lr;
            c
        })
        .collect()
}

fn solo_rows(m: Loaded, j: i64, k: i64) -> SoloForm {
    let params = m.trainable();
    let models = Box::new(vae_tch::train::models::Solo {
        model: m,
        noise: vae_tch::model::stack::Noise::Rows {
            pool: k,
            rows: Tensor::from_slice(&[j]),
        },
    });
    (models, params)
}

#[test]
fn twenty_stacked_steps_agree_with_three_solo_runs_to_1e_5() {
    let configs = three(&RunConfig::default());
    for (j, (stacked, solo)) in train_both(&configs, 20, KIND, &solo_rows)
        .iter()
        .enumerate()
    {
        // Every parameter, and the logged losses: sums over the 20 batches of (loss, r_loss,
        // kl_loss).
        assert_eq!(check_trained(j, stacked, solo, |_| false), stacked.0.len());
        // The models did learn: the stack is not compared with untouched copies.
        let init = {
            let _g = common::rng_lock();
            build(&configs[j], Device::Cpu, configs[j].train.seed)
        };
        let w = &init.vs.variables()["decoder.fc.weight"];
        let moved = stacked
            .0
            .iter()
            .find(|(n, _)| n == "decoder.fc.weight")
            .unwrap();
        assert!(rel(&moved.1, w) > 1e-3, "model {j} did not train");
    }
}

/// Checks model `j`'s logged losses and every parameter and moving statistic but those that
/// rounding noise drives: a conv bias ahead of BatchNorm has a gradient that is zero in exact
/// arithmetic, whose rounding noise Adam turns into steps of about the learning rate, walking
/// the bias (and the moving mean that follows it, and so the eval-mode outputs) apart between
/// any two forms whose kernels round differently (grouped and plain convolutions; two thread
/// schedules of one reduction). Neither changes a training-mode output or loss.
fn check_batch_norm_model(j: usize, stacked: &Trained, solo: &Trained) {
    let compared = check_trained(j, stacked, solo, |name| {
        let ahead_of_bn = (name.starts_with("encoder.conv") || name.starts_with("decoder.deconv"))
            && name.ends_with(".bias")
            && name != "decoder.deconv4.bias";
        ahead_of_bn || name.ends_with("running_mean")
    });
    assert!(compared >= 20, "{compared} tensors compared");
}

/// Checks model `j`'s logged losses and every tensor of its state but those `skip` names, to
/// 1e-5 relative; returns how many tensors it compared.
fn check_trained(
    j: usize,
    stacked: &Trained,
    solo: &Trained,
    skip: impl Fn(&str) -> bool,
) -> usize {
    let d = rel(&stacked.1, &solo.1);
    assert!(
        d < 1e-5,
        "model {j}: losses {} against {}",
        stacked.1,
        solo.1
    );
    let mine: std::collections::HashMap<_, _> = solo
        .0
        .iter()
        .map(|(n, t)| (n.clone(), t.shallow_clone()))
        .collect();
    assert_eq!(stacked.0.len(), mine.len());
    let mut compared = 0;
    for (name, t) in stacked.0.iter().filter(|(n, _)| !skip(n)) {
        let d = rel(t, &mine[name]);
        assert!(d < 1e-5, "model {j}: {name} differs by {d} relative");
        compared += 1;
    }
    compared
}

#[test]
fn twenty_stacked_steps_of_batch_norm_and_dropout_models_agree_with_each_alone() {
    let mut base = RunConfig::default();
    base.model.use_batch_norm = true;
    base.model.use_dropout = true;
    let configs = three(&base);
    // Dropout's masks are held equal through the rows too: each model alone is a stack of one
    // that draws its row of the three's masks and noise.
    fn alone(m: Loaded, j: i64, k: i64) -> SoloForm {
        let model = StackedVae::new(&[&m.vae]);
        let params = model.trainable();
        let models = Box::new(vae_tch::train::models::Stack {
            model,
            noise: vae_tch::model::stack::Noise::Rows {
                pool: k,
                rows: Tensor::from_slice(&[j]),
            },
        });
        (models, params)
    }
    for (j, (stacked, solo)) in train_both(&configs, 20, KIND, &alone).iter().enumerate() {
        check_batch_norm_model(j, stacked, solo);
        // A stack of one runs the same kernels per model as the stack of three: here even the
        // eval-mode outputs (through the moving statistics) agree.
        let d = rel(&stacked.2, &solo.2);
        assert!(d < 1e-5, "model {j}: eval-mode outputs differ by {d}");
    }
    // BatchNorm in training mode, no dropout: against the plain solo model.
    base.model.use_dropout = false;
    let configs = three(&base);
    for (j, (stacked, solo)) in train_both(&configs, 20, KIND, &solo_rows)
        .iter()
        .enumerate()
    {
        check_batch_norm_model(j, stacked, solo);
    }
}
