//! Training on tiny synthetic data on the CPU: the loss goes down, checkpoints round-trip, and
//! resuming gives the same weights as never stopping.
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Tensor};
use vae_tch::config::RunConfig;
use vae_tch::run::checkpoint::{self, TrainState};
use vae_tch::run::job::TrainJob;

/// Trains `job`; its rows.
fn train(job: &TrainJob) -> anyhow::Result<Vec<vae_tch::run::metrics::EpochRow>> {
    vae_tch::run::job::train(job).map(|mut done| done.runs.remove(0).rows)
}
use vae_tch::run::metrics;
use vae_tch::train::optim::KerasAdam;

fn job(run: &Path, config: RunConfig, resume: bool) -> TrainJob {
    TrainJob {
        run: run.to_path_buf(),
        config,
        resume,
        device: Device::Cpu,
        quiet: true,
        force_data: false,
    }
}

fn weights(path: &Path) -> BTreeMap<String, Tensor> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .collect()
}

#[test]
fn twenty_steps_lower_the_loss() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 80, 16);
    // 80 images, batch 8: 10 steps an epoch, 2 epochs = 20 steps.
    let mut cfg = common::tiny_config(&tmp.path().join("data"), 2, 8);
    cfg.train.reconstruction_every = 1;
    let run = tmp.path().join("run");
    let rows = train(&job(&run, cfg, false)).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[1].train_loss < rows[0].train_loss, "{rows:?}");
    assert!(rows[1].test_loss < rows[0].test_loss, "{rows:?}");
    for r in &rows {
        assert!((r.train_loss - (r.train_r_loss + r.train_kl_loss)).abs() < 1e-3);
        assert!(r.train_kl_loss > 0.0);
    }
    let state = checkpoint::read_state(&run).unwrap();
    assert_eq!((state.epoch, state.step), (2, 20));
    assert_eq!(metrics::read(&run.join("metrics.csv")).unwrap(), rows);
    assert!(run.join("reconstructions-epoch-0001.png").is_file());
    assert!(run.join("reconstructions-epoch-0002.png").is_file());
    // The saved config rebuilds the run's model.
    let loaded = checkpoint::load_model(&run, Device::Cpu).unwrap();
    assert_eq!(loaded.config.train.epochs, 2);
    // A second train into the same folder is refused, not overwritten.
    let err = train(&job(
        &run,
        common::tiny_config(&tmp.path().join("data"), 1, 8),
        false,
    ))
    .unwrap_err();
    assert!(format!("{err:#}").contains("--resume"), "{err:#}");
}

#[test]
fn a_finished_run_hands_its_model_and_test_images_on_in_memory() {
    // What the figures and the export get straight from training equals what the run folder
    // holds (so they need not read it back).
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic(&data, 24, 8);
    let run = tmp.path().join("run");
    let done =
        vae_tch::run::job::train(&job(&run, common::tiny_config(&data, 2, 8), false)).unwrap();
    let trained = &done.runs[0];
    assert_eq!((trained.epochs, trained.rows.len()), (2, 2));
    assert_eq!(done.test.len(), 8);
    let saved = weights(&run.join("checkpoint/model.safetensors"));
    let vars = trained.model.vs.variables();
    assert_eq!(saved.len(), vars.len());
    for (name, t) in &saved {
        assert!(t.equal(&vars[name]), "{name}");
    }
    // And the model in memory is in the plain layout the export writes from.
    assert_eq!(
        trained.model.vae.encoder.layout,
        vae_tch::model::Layout::default()
    );
}

#[test]
fn checkpoint_round_trip() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let cfg = RunConfig::default();
    let model = vae_tch::model::build(&cfg, Device::Cpu, 3);
    let mut opt = KerasAdam::new(
        model.vs.variables().into_iter().collect(),
        vec![cfg.optim.clone()],
        None,
    );
    // One real step so that m and v are not zero.
    let x = Tensor::rand([4, 1, 28, 28], (tch::Kind::Float, Device::Cpu));
    let out = model.vae.forward(&x, true);
    let p = vae_tch::model::loss::vae_loss(&out.reconstruction, &x, &out.mu, &out.log_var, 1000.0);
    opt.backward(&p.loss);
    opt.step();
    let run = tmp.path();
    std::fs::write(run.join("config.toml"), cfg.to_toml()).unwrap();
    let state = TrainState {
        epoch: 1,
        step: 1,
        seed: 3,
        next_rng_seed: 9,
        stopped_early: false,
    };
    checkpoint::save(run, &model.state_dict(), &opt.state_tensors(), &state).unwrap();
    assert!(!run.join("checkpoint.partial").exists() && !run.join("checkpoint.prev").exists());
    assert_eq!(checkpoint::read_state(run).unwrap(), state);

    let loaded = checkpoint::load_model(run, Device::Cpu).unwrap();
    let (a, b) = (model.vs.variables(), loaded.vs.variables());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after reload");
    }
    let mut opt2 = KerasAdam::new(
        loaded.vs.variables().into_iter().collect(),
        vec![cfg.optim.clone()],
        None,
    );
    let saved = checkpoint::saved(run).unwrap();
    opt2.set_state(&saved.optimizer, saved.step, "checkpoint")
        .unwrap();
    assert_eq!(opt2.step, 1);
    for ((n1, t1), (n2, t2)) in opt.state_tensors().iter().zip(opt2.state_tensors()) {
        assert_eq!(n1, &n2);
        assert!(
            t1.abs().sum(tch::Kind::Double).double_value(&[]) > 0.0,
            "{n1} is zero"
        );
        assert!(t1.equal(&t2), "{n1} differs after reload");
    }

    // Weights with a missing key are refused with the file and key named.
    let partial: Vec<(String, Tensor)> = a
        .iter()
        .filter(|(k, _)| k.as_str() != "decoder.fc.bias")
        .map(|(k, t)| (k.clone(), t.shallow_clone()))
        .collect();
    let bad = run.join("bad.safetensors");
    Tensor::write_safetensors(&partial, &bad).unwrap();
    let fresh = vae_tch::model::build(&cfg, Device::Cpu, 0);
    let err = checkpoint::load_weights(&fresh, &bad)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bad.safetensors") && err.contains("decoder.fc.bias"),
        "{err}"
    );
}

#[test]
fn resume_gives_the_same_weights_as_one_run() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic(&data, 48, 8);
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    train(&job(&one, common::tiny_config(&data, 4, 8), false)).unwrap();
    train(&job(&two, common::tiny_config(&data, 2, 8), false)).unwrap();
    let mut cfg = checkpoint::read_config(&two).unwrap();
    cfg.train.epochs = 4;
    let resumed = train(&job(&two, cfg, true)).unwrap();
    assert_eq!(resumed.iter().map(|r| r.epoch).collect::<Vec<_>>(), [3, 4]);

    let (a, b) = (
        weights(&one.join("checkpoint/model.safetensors")),
        weights(&two.join("checkpoint/model.safetensors")),
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, t) in &a {
        assert!(
            t.equal(&b[name]),
            "{name}: 2 + 2 epochs differ from 4 (max diff {})",
            (t - &b[name]).abs().max()
        );
    }
    let (ma, mb) = (
        metrics::read(&one.join("metrics.csv")).unwrap(),
        metrics::read(&two.join("metrics.csv")).unwrap(),
    );
    assert_eq!(ma.len(), 4);
    assert_eq!(mb.len(), 4);
    for (x, y) in ma.iter().zip(&mb) {
        assert_eq!(
            (x.epoch, x.train_loss, x.test_loss),
            (y.epoch, y.train_loss, y.test_loss)
        );
    }
    assert_eq!(
        checkpoint::read_state(&two).unwrap().step,
        checkpoint::read_state(&one).unwrap().step
    );
}

#[test]
fn resume_without_checkpoint_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = checkpoint::read_state(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("no checkpoint"), "{err}");
    let err = checkpoint::read_config(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("not a vae-tch run folder"), "{err}");
}

#[test]
fn resume_with_batch_norm_and_dropout_is_bit_equal() {
    // BatchNorm's moving statistics are checkpointed with the weights, and dropout draws from
    // the per-epoch seeded generator: 1 + resume + 1 epochs equal 2 in one go.
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic(&data, 40, 8);
    let cfg = |epochs| {
        let mut c = common::tiny_config(&data, epochs, 8);
        c.model.use_batch_norm = true;
        c.model.use_dropout = true;
        c
    };
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    train(&job(&one, cfg(2), false)).unwrap();
    train(&job(&two, cfg(1), false)).unwrap();
    let mut c = checkpoint::read_config(&two).unwrap();
    c.train.epochs = 2;
    train(&job(&two, c, true)).unwrap();
    let (a, b) = (
        weights(&one.join("checkpoint/model.safetensors")),
        weights(&two.join("checkpoint/model.safetensors")),
    );
    assert!(a.contains_key("encoder.bn1.running_var"));
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs");
    }
    // The moving statistics moved away from their start (zeros and ones).
    assert!(
        a["encoder.bn1.running_mean"]
            .abs()
            .sum(tch::Kind::Double)
            .double_value(&[])
            > 0.0
    );
}

#[test]
fn streaming_the_batches_from_the_host_gives_the_same_weights() {
    // --stream-data: the images stay on the host and a thread prefetches each batch; the same
    // batches in the same order, so the same numbers bit for bit.
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic(&data, 44, 8); // batch 8: five full batches and one of 4
    let (direct, streamed) = (tmp.path().join("direct"), tmp.path().join("streamed"));
    train(&job(&direct, common::tiny_config(&data, 2, 8), false)).unwrap();
    let mut cfg = common::tiny_config(&data, 2, 8);
    cfg.data.stream = true;
    train(&job(&streamed, cfg, false)).unwrap();
    let (a, b) = (
        weights(&direct.join("checkpoint/model.safetensors")),
        weights(&streamed.join("checkpoint/model.safetensors")),
    );
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs");
    }
    assert!(checkpoint::read_config(&streamed).unwrap().data.stream);
}

/// The book's `step_decay_schedule`, written out independently:
/// `initial_lr * decay_factor ** np.floor(epoch / step_size)` (epoch 0-based).
fn book_rate(initial: f64, decay: f64, step: usize, epoch: usize) -> f64 {
    initial * decay.powf((epoch as f64 / step as f64).floor())
}

#[test]
fn the_learning_rate_of_every_epoch_is_the_books_step_decay() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic(&data, 24, 8);
    let mut cfg = common::tiny_config(&data, 5, 8);
    cfg.train.lr_decay = 0.5;
    cfg.train.lr_decay_every = 2;
    let rows = train(&job(&tmp.path().join("run"), cfg.clone(), false)).unwrap();
    for (e, r) in rows.iter().enumerate() {
        let want = book_rate(cfg.optim.learning_rate, 0.5, 2, e);
        let got = r.learning_rate.unwrap();
        assert!(
            (got - want).abs() <= 1e-15 * want,
            "epoch {}: {got} against {want}",
            e + 1
        );
    }
    assert_eq!(rows[4].learning_rate, Some(1.25e-4));
}

#[test]
fn a_decayed_rate_steps_as_a_fresh_optimizer_at_that_rate_in_both_scalar_forms() {
    // The rate the table gives a step after `set_lr_factor` is the one a fresh optimizer
    // configured at that rate uses: same parameters after the same gradients.
    for device_scalars in [false, true] {
        let cfg = RunConfig::default();
        let run = |lr: f64, factor: f64| {
            let p = Tensor::from_slice(&[0.5f32, -1.0, 2.0]).set_requires_grad(true);
            let mut c = cfg.optim.clone();
            c.learning_rate = lr;
            let params = vec![("p".to_string(), p.shallow_clone())];
            let mut opt = if device_scalars {
                KerasAdam::new(params, vec![c], Some(4))
            } else {
                KerasAdam::new(params, vec![c], None)
            };
            opt.set_lr_factor(factor);
            for _ in 0..3 {
                let loss = (&p * &p).sum(tch::Kind::Float);
                opt.backward(&loss);
                opt.step();
            }
            p.detach()
        };
        let decayed = run(1e-3, 0.25);
        let fresh = run(2.5e-4, 1.0);
        assert!(decayed.equal(&fresh), "{decayed} {fresh}");
        assert!(
            !decayed.equal(&run(1e-3, 1.0)),
            "the factor changed nothing"
        );
    }
}

#[test]
fn decay_early_stopping_and_best_survive_a_stop_and_resume_bit_for_bit() {
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic(&data, 24, 8);
    let mut cfg = common::tiny_config(&data, 4, 8);
    cfg.train.lr_decay = 0.7;
    cfg.train.early_stopping = Some(10);
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let whole = train(&job(&one, cfg.clone(), false)).unwrap();
    let mut half = cfg.clone();
    half.train.epochs = 2;
    train(&job(&two, half, false)).unwrap();
    let rest = train(&job(&two, cfg, true)).unwrap();
    assert_eq!(rest.iter().map(|r| r.epoch).collect::<Vec<_>>(), [3, 4]);
    for (a, b) in whole[2..].iter().zip(&rest) {
        let key = |r: &metrics::EpochRow| (r.epoch, r.train_loss, r.test_loss, r.learning_rate);
        assert_eq!(key(a), key(b), "2 + resume 2 against 4 in one go");
    }
    for dir in ["checkpoint", "best"] {
        let (a, b) = (
            weights(&one.join(dir).join("model.safetensors")),
            weights(&two.join(dir).join("model.safetensors")),
        );
        for (name, t) in &a {
            assert!(t.equal(&b[name]), "{dir}: {name}");
        }
    }
    // best/ holds the epoch of the lowest test loss.
    let best_epoch = whole
        .iter()
        .min_by(|a, b| a.test_loss.total_cmp(&b.test_loss))
        .unwrap()
        .epoch;
    let state = checkpoint::read_state_of(&one, checkpoint::Pick::Best).unwrap();
    assert_eq!(state.epoch, best_epoch);
}

#[test]
fn early_stopping_and_the_best_epoch_follow_keras() {
    use vae_tch::run::watch::{Verdict, Watch};
    let mut cfg = RunConfig::default().train;
    cfg.early_stopping = Some(2);
    cfg.min_delta = 0.1;
    let mut w = Watch::new(&cfg, &[]);
    let v = |best, stop| Verdict { best, stop };
    // Keras: improvement when loss < best - min_delta; stop when `patience` epochs in a row
    // have not improved. best/ follows the plain lowest loss.
    assert_eq!(w.epoch(10.0), v(true, false));
    assert_eq!(w.epoch(9.0), v(true, false));
    assert_eq!(w.epoch(9.5), v(false, false));
    // Lower, so best/, but not by more than min_delta: the second epoch without improvement.
    assert_eq!(w.epoch(8.95), v(true, true));
    // Replayed from metrics rows, a resumed run is where it stopped.
    let rows: Vec<metrics::EpochRow> = [10.0, 9.0, 9.5, 8.95]
        .iter()
        .enumerate()
        .map(|(i, &l)| {
            let losses = vae_tch::model::loss::Losses {
                loss: l,
                r_loss: l,
                kl_loss: 0.0,
            };
            metrics::EpochRow::new(i + 1, losses, losses, 1.0, 5e-4)
        })
        .collect();
    assert!(Watch::new(&cfg, &rows).stopped());
    cfg.early_stopping = None;
    assert!(!Watch::new(&cfg, &rows).stopped());
}
