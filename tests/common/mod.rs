//! Helpers shared by the integration tests: tiny synthetic data sets and configs.
#![allow(dead_code)]
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

use vae_tch::config::RunConfig;
use vae_tch::data::{write_dataset, DatasetKind};

/// torch's generator is global to the process: tests that seed it and train take this lock so
/// that parallel test threads do not interleave their random draws.
pub fn rng_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// A deterministic pseudo-random byte stream (an LCG; no dependency needed for test data).
fn lcg(seed: u64) -> impl FnMut() -> u8 {
    let mut s = seed;
    move || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 56) as u8
    }
}

/// `n` 28x28 images: a bright 8x8 square whose place depends on the label, plus faint noise.
pub fn synthetic_images(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rnd = lcg(seed);
    let mut images = vec![0u8; n * 784];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let label = (i % 10) as u8;
        labels.push(label);
        let (oy, ox) = (2 + (label as usize / 5) * 12, 2 + (label as usize % 5) * 4);
        for y in 0..28 {
            for x in 0..28 {
                let inside = (oy..oy + 8).contains(&y) && (ox..ox + 8).contains(&x);
                let noise = rnd() / 8;
                images[i * 784 + y * 28 + x] = if inside { 255 - noise } else { noise };
            }
        }
    }
    (images, labels)
}

/// Writes a small MNIST-style data set (gzip'd IDX) into `dir`.
pub fn write_synthetic(dir: &Path, n_train: usize, n_test: usize) {
    let (ti, tl) = synthetic_images(n_train, 1);
    let (vi, vl) = synthetic_images(n_test, 2);
    write_dataset(dir, (&ti, &tl), (&vi, &vl)).expect("writing the synthetic data set");
}

/// A config for a few quick CPU epochs on `data_dir`.
pub fn tiny_config(data_dir: &Path, epochs: usize, batch_size: usize) -> RunConfig {
    let mut c = RunConfig::default();
    c.data.dataset = DatasetKind::Mnist;
    c.data.dir = Some(data_dir.to_path_buf());
    c.train.epochs = epochs;
    c.train.batch_size = batch_size;
    c.train.reconstruction_every = 0;
    c.train.seed = 7;
    c
}

/// A sweep file `s.toml` of 4 points (2 r_loss_factors x 2 seeds) over tiny synthetic data in
/// `<dir>/data`.
pub fn tiny_sweep(dir: &Path) {
    write_synthetic(&dir.join("data"), 24, 8);
    std::fs::write(
        dir.join("s.toml"),
        "[train]\nbatch_size = 8\nreconstruction_every = 0\n[axes]\n\"train.r_loss_factor\" = [100, 1000]\n\"train.seed\" = [1, 2]\n",
    )
    .expect("writing s.toml");
}

/// `sweep run s.toml` on the CPU over `data`, quiet and without exports.
pub const SWEEP_RUN: [&str; 9] = [
    "sweep",
    "run",
    "s.toml",
    "--data-dir",
    "data",
    "--device",
    "cpu",
    "--no-export",
    "-q",
];

/// Trains `config` into the new run folder `run` on the CPU, quietly (the caller holds
/// `rng_lock` where other tests' numbers matter).
pub fn train_quietly(run: &Path, config: RunConfig) -> vae_tch::run::job::Finished {
    vae_tch::run::job::train(&vae_tch::run::job::TrainJob {
        run: run.to_path_buf(),
        config,
        resume: false,
        device: tch::Device::Cpu,
        quiet: true,
        force_data: false,
    })
    .expect("training the tiny run")
}

/// Trains a quick CPU run (batch 8, seed 7) on `n_train` / `n_test` synthetic images written to
/// `<dir>/data`; returns the run folder `<dir>/run`.
pub fn train_tiny_run(
    dir: &Path,
    n_train: usize,
    n_test: usize,
    epochs: usize,
    latent_dim: i64,
) -> std::path::PathBuf {
    let _g = rng_lock();
    write_synthetic(&dir.join("data"), n_train, n_test);
    let mut config = tiny_config(&dir.join("data"), epochs, 8);
    config.model.latent_dim = latent_dim;
    let run = dir.join("run");
    train_quietly(&run, config);
    run
}

/// Runs the vae-tch binary built for these tests in `cwd`.
pub fn vae_tch(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vae-tch"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running vae-tch")
}

/// What a run of the binary printed, stdout then stderr, for assertions on messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
