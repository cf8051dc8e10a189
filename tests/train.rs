//! Training on tiny synthetic data on the CPU: the loss goes down, checkpoints round-trip, and
//! resuming gives the same weights as never stopping.
mod common;

use std::collections::BTreeMap;
use std::path::Path;

use tch::{Device, Tensor};
use vae_tch::config::TrainConfig;
use vae_tch::run::checkpoint::{self, TrainState};
use vae_tch::run::job::TrainJob;

/// Trains `job`; its rows.
fn train(job: &TrainJob) -> anyhow::Result<Vec<vae_tch::run::metrics::EpochRow>> {
    vae_tch::run::job::train(job).map(|mut done| done.runs.remove(0).rows)
}
use vae_tch::run::metrics;
use vae_tch::train::optim::KerasAdam;

fn job(run: &Path, config: TrainConfig, resume: bool) -> TrainJob {
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
    let cfg = TrainConfig::default();
    let model = vae_tch::model::build(&cfg, Device::Cpu, 3);
    let mut opt = KerasAdam::new(
        model.vs.variables().into_iter().collect(),
        cfg.optim.clone(),
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
    };
    checkpoint::save(run, &model.vs, &opt, &state).unwrap();
    assert!(!run.join("checkpoint.partial").exists() && !run.join("checkpoint.prev").exists());
    assert_eq!(checkpoint::read_state(run).unwrap(), state);

    let loaded = checkpoint::load_model(run, Device::Cpu).unwrap();
    let (a, b) = (model.vs.variables(), loaded.vs.variables());
    for (name, t) in &a {
        assert!(t.equal(&b[name]), "{name} differs after reload");
    }
    let mut opt2 = KerasAdam::new(
        loaded.vs.variables().into_iter().collect(),
        cfg.optim.clone(),
    );
    checkpoint::load_optimizer(run, &mut opt2, &state).unwrap();
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
    let err = checkpoint::load_weights(&fresh.vs, &bad)
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
