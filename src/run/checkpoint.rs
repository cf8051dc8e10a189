//! A run folder and its checkpoint. Layout:
//!   <run>/config.toml                    the TrainConfig that rebuilds the model
//!   <run>/metrics.csv                    one row per epoch
//!   <run>/checkpoint/model.safetensors   weights under the PyTorch state_dict keys
//!   <run>/checkpoint/optimizer.safetensors  Adam's m and v
//!   <run>/checkpoint/state.toml          epoch, step, seed and the RNG state
//! A checkpoint is written whole into `checkpoint.partial/`, then swapped in by renames, so a
//! crash leaves either the old checkpoint or the new one (`checkpoint.prev/` during the swap).
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{nn, Device};

use crate::config::{ConfigError, TrainConfig};
use crate::model::{build, Loaded};
use crate::train::epoch_seed;
use crate::train::optim::KerasAdam;

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.csv";
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "state.toml";
/// `<run>/best/`: a copy of the checkpoint of the lowest test loss so far (crate::run::watch).
pub const BEST_DIR: &str = "best";

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0} is not a vae-tch run folder (no config.toml)")]
    NotARun(PathBuf),
    #[error("{0} has no finished epoch yet (no checkpoint/state.toml)")]
    NoCheckpoint(PathBuf),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: {cause}")]
    Tch { path: PathBuf, cause: tch::TchError },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |cause| CheckpointError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Where training stands after an epoch. Each epoch re-seeds torch's generator with
/// `epoch_seed(seed, epoch)`, so (seed, epoch) is the whole RNG state: resuming draws the same
/// shuffles and noise as a run that never stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: i64,
    pub seed: u64,
    /// The seed torch's generator gets at the start of the next epoch.
    pub next_rng_seed: u64,
    /// Early stopping ended the run after this epoch (`train.early_stopping`).
    #[serde(default)]
    pub stopped_early: bool,
}

impl TrainState {
    /// The state after `epoch` epochs and `step` steps of a run seeded with `seed`.
    pub fn at(epoch: usize, step: i64, seed: u64) -> TrainState {
        TrainState {
            epoch,
            step,
            seed,
            next_rng_seed: epoch_seed(seed, epoch),
            stopped_early: false,
        }
    }
}

pub fn checkpoint_dir(run: &Path) -> PathBuf {
    let dir = run.join(CHECKPOINT_DIR);
    let prev = run.join(format!("{CHECKPOINT_DIR}.prev"));
    if !dir.join(STATE_FILE).is_file() && prev.join(STATE_FILE).is_file() {
        prev
    } else {
        dir
    }
}

pub fn read_config(run: &Path) -> Result<TrainConfig, CheckpointError> {
    let path = run.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(CheckpointError::NotARun(run.to_path_buf()));
    }
    Ok(TrainConfig::load(&path)?)
}

pub fn read_state(run: &Path) -> Result<TrainState, CheckpointError> {
    let path = checkpoint_dir(run).join(STATE_FILE);
    if !path.is_file() {
        return Err(CheckpointError::NoCheckpoint(run.to_path_buf()));
    }
    read_state_file(path)
}

/// A `state.toml`.
fn read_state_file(path: PathBuf) -> Result<TrainState, CheckpointError> {
    let text = fs::read_to_string(&path).map_err(io(&path))?;
    toml::from_str(&text).map_err(|e| CheckpointError::Format {
        path,
        message: e.to_string(),
    })
}

/// Loads a run's model (config + last checkpoint's weights) onto `device`.
pub fn load_model(run: &Path, device: Device) -> Result<Loaded, CheckpointError> {
    load_model_from(run, Which::Last, device)
}

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The last finished epoch's (`checkpoint/`).
    Last,
    /// The lowest test loss's (`best/`).
    Best,
}

/// The folder of a run's checkpoint `which`.
pub fn dir_of(run: &Path, which: Which) -> Result<PathBuf, CheckpointError> {
    match which {
        Which::Last => Ok(checkpoint_dir(run)),
        Which::Best => {
            let dir = run.join(BEST_DIR);
            if dir.join(STATE_FILE).is_file() {
                Ok(dir)
            } else {
                Err(CheckpointError::Format {
                    path: dir,
                    message: "no best checkpoint (a run writes best/ after each epoch that lowers its test loss; this run has none yet)".into(),
                })
            }
        }
    }
}

/// The state of a run's checkpoint `which`.
pub fn read_state_of(run: &Path, which: Which) -> Result<TrainState, CheckpointError> {
    match which {
        Which::Last => read_state(run),
        Which::Best => read_state_file(dir_of(run, which)?.join(STATE_FILE)),
    }
}

/// Loads a run's model from its checkpoint `which` onto `device`.
pub fn load_model_from(
    run: &Path,
    which: Which,
    device: Device,
) -> Result<Loaded, CheckpointError> {
    let config = read_config(run)?;
    read_state(run)?;
    let loaded = build(&config, device, config.train.seed);
    let path = dir_of(run, which)?.join(MODEL_FILE);
    load_weights(&loaded.vs, &path)?;
    Ok(loaded)
}

/// Copies the run's last checkpoint to `best/`, whole: into `best.partial/`, then swapped in.
pub fn save_best(run: &Path) -> Result<(), CheckpointError> {
    let src = run.join(CHECKPOINT_DIR);
    let dir = run.join(BEST_DIR);
    let partial = run.join(format!("{BEST_DIR}.partial"));
    let prev = run.join(format!("{BEST_DIR}.prev"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    fs::create_dir_all(&partial).map_err(io(&partial))?;
    for name in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE] {
        let to = partial.join(name);
        fs::copy(src.join(name), &to).map_err(io(&to))?;
        fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .map_err(io(&to))?;
    }
    swap_in(&partial, &dir, &prev)
}

/// Loads safetensors weights into `vs`, checking that the keys are exactly the model's.
pub fn load_weights(vs: &nn::VarStore, path: &Path) -> Result<(), CheckpointError> {
    let saved = tch::Tensor::read_safetensors(path).map_err(|cause| CheckpointError::Tch {
        path: path.to_path_buf(),
        cause,
    })?;
    set_weights(vs, &saved, path)
}

/// Copies `named` (state_dict key, tensor) into the model's variables after checking that the
/// keys are exactly the model's and every shape matches; `source` names their file in errors.
pub fn set_weights(
    vs: &nn::VarStore,
    named: &[(String, tch::Tensor)],
    source: &Path,
) -> Result<(), CheckpointError> {
    let bad = |message: String| CheckpointError::Format {
        path: source.to_path_buf(),
        message,
    };
    let vars = vs.variables();
    let mut want: Vec<&String> = vars.keys().collect();
    let mut got: Vec<&String> = named.iter().map(|(k, _)| k).collect();
    want.sort();
    got.sort();
    if want != got {
        let extra: Vec<_> = got.iter().filter(|k| !want.contains(k)).collect();
        let missing: Vec<_> = want.iter().filter(|k| !got.contains(k)).collect();
        return Err(bad(format!(
            "keys do not match the model: missing {missing:?}, unexpected {extra:?}"
        )));
    }
    for (name, src) in named {
        let dst = &vars[name];
        if dst.size() != src.size() {
            return Err(bad(format!(
                "{name} has shape {:?}, the model {:?}",
                src.size(),
                dst.size()
            )));
        }
    }
    tch::no_grad(|| {
        for (name, src) in named {
            let mut dst = vars[name].shallow_clone();
            dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
        }
    });
    Ok(())
}

/// Writes the variables of `vs` under their names, as contiguous tensors whatever their memory
/// order (safetensors stores only contiguous data; training may run channels-last).
pub fn save_weights(vs: &nn::VarStore, path: &Path) -> Result<(), CheckpointError> {
    tch::Tensor::write_safetensors(&weights_of(vs), path).map_err(|cause| CheckpointError::Tch {
        path: path.to_path_buf(),
        cause,
    })
}

/// Writes the checkpoint of `run` (weights, optimizer, state) atomically as a whole.
pub fn save(
    run: &Path,
    vs: &nn::VarStore,
    opt: &KerasAdam,
    state: &TrainState,
) -> Result<(), CheckpointError> {
    save_named(run, &weights_of(vs), &opt.state_tensors(), state)
}

/// The variables of `vs` by name, sorted, as contiguous tensors.
pub fn weights_of(vs: &nn::VarStore) -> Vec<(String, tch::Tensor)> {
    let mut named: Vec<(String, tch::Tensor)> = vs
        .variables()
        .into_iter()
        .map(|(name, t)| (name, t.detach().contiguous()))
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
}

/// The same from named tensors: the model's state dict and the optimizer's m and v
/// (`KerasAdam::state_tensors`' names), as a stacked model's part gives them.
pub fn save_named(
    run: &Path,
    weights: &[(String, tch::Tensor)],
    optimizer: &[(String, tch::Tensor)],
    state: &TrainState,
) -> Result<(), CheckpointError> {
    let tch_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| CheckpointError::Tch { path, cause }
    };
    let dir = run.join(CHECKPOINT_DIR);
    let partial = run.join(format!("{CHECKPOINT_DIR}.partial"));
    let prev = run.join(format!("{CHECKPOINT_DIR}.prev"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    fs::create_dir_all(&partial).map_err(io(&partial))?;
    let model = partial.join(MODEL_FILE);
    tch::Tensor::write_safetensors(weights, &model).map_err(tch_err(&model))?;
    let optim = partial.join(OPTIMIZER_FILE);
    tch::Tensor::write_safetensors(optimizer, &optim).map_err(tch_err(&optim))?;
    let state_path = partial.join(STATE_FILE);
    let text = toml::to_string(state).expect("TrainState serializes");
    fs::write(&state_path, text).map_err(io(&state_path))?;
    for f in [&model, &optim, &state_path] {
        fs::File::open(f)
            .and_then(|f| f.sync_all())
            .map_err(io(f))?;
    }
    swap_in(&partial, &dir, &prev)
}

/// Puts the finished folder `partial` in `dir`'s place (the old one passing through `prev`), so
/// a crash leaves the old folder or the new one, never half of either.
fn swap_in(partial: &Path, dir: &Path, prev: &Path) -> Result<(), CheckpointError> {
    if dir.exists() {
        if prev.exists() {
            fs::remove_dir_all(prev).map_err(io(prev))?;
        }
        fs::rename(dir, prev).map_err(io(dir))?;
    }
    fs::rename(partial, dir).map_err(io(partial))?;
    if prev.exists() {
        fs::remove_dir_all(prev).map_err(io(prev))?;
    }
    Ok(())
}

/// Restores the optimizer state of a run's checkpoint.
pub fn load_optimizer(
    run: &Path,
    opt: &mut KerasAdam,
    state: &TrainState,
) -> Result<(), CheckpointError> {
    let path = checkpoint_dir(run).join(OPTIMIZER_FILE);
    opt.load(&path, state.step)
        .map_err(|cause| CheckpointError::Tch { path, cause })
}

/// The first free `runs/<dataset>-<n>` folder under `base`.
pub fn new_run_dir(base: &Path, dataset: &str) -> PathBuf {
    (1..)
        .map(|n| base.join(format!("{dataset}-{n}")))
        .find(|p| !p.exists())
        .expect("an unbounded range has a free name")
}
