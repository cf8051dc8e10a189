//! A run folder and its checkpoint. Layout:
//!   <run>/config.toml                    the RunConfig that rebuilds the model
//!   <run>/metrics.csv                    one row per epoch
//!   <run>/checkpoint/model.safetensors   weights under the PyTorch state_dict keys
//!   <run>/checkpoint/optimizer.safetensors  Adam's m and v
//!   <run>/checkpoint/state.toml          epoch, step, seed and the RNG state
//!   <run>/checkpoint/checksums.toml      XXH3-64 of the two safetensors files: a file changed
//!                                        on disk (damaged, or edited) is refused when read
//! A checkpoint is written whole into `checkpoint.partial/`, then swapped in by renames, so a
//! crash leaves either the old checkpoint or the new one (`checkpoint.prev/` during the swap:
//! crate::util::fsutil::replace_dir).
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Device;

use crate::config::{ConfigError, RunConfig};
use crate::model::{build, Loaded};
use crate::train::epoch_seed;
use crate::train::models::Saved;

pub const CONFIG_FILE: &str = "config.toml";
pub const METRICS_FILE: &str = "metrics.csv";
pub const CHECKPOINT_DIR: &str = "checkpoint";
pub const MODEL_FILE: &str = "model.safetensors";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const STATE_FILE: &str = "state.toml";
pub const CHECKSUMS_FILE: &str = "checksums.toml";
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
    #[error(transparent)]
    State(#[from] crate::model::StateError),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: {message}")]
    Format { path: PathBuf, message: String },
    #[error("{path}: {cause}")]
    Tch { path: PathBuf, cause: tch::TchError },
    #[error("{path} does not match its checksum in {CHECKSUMS_FILE}: the file changed on disk after it was written (damaged, or edited); train from an earlier copy, or delete {CHECKSUMS_FILE} to use it as it is")]
    Damaged { path: PathBuf },
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

pub fn read_config(run: &Path) -> Result<RunConfig, CheckpointError> {
    let path = run.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(CheckpointError::NotARun(run.to_path_buf()));
    }
    Ok(RunConfig::load(&path)?)
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
    load_model_from(run, Pick::Last, device)
}

/// Which checkpoint of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The last finished epoch's (`checkpoint/`).
    Last,
    /// The lowest test loss's (`best/`).
    Best,
}

/// The folder of a run's checkpoint `which`.
pub fn dir_of(run: &Path, which: Pick) -> Result<PathBuf, CheckpointError> {
    match which {
        Pick::Last => Ok(checkpoint_dir(run)),
        Pick::Best => {
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
pub fn read_state_of(run: &Path, which: Pick) -> Result<TrainState, CheckpointError> {
    match which {
        Pick::Last => read_state(run),
        Pick::Best => read_state_file(dir_of(run, which)?.join(STATE_FILE)),
    }
}

/// Loads a run's model from its checkpoint `which` onto `device`.
pub fn load_model_from(run: &Path, which: Pick, device: Device) -> Result<Loaded, CheckpointError> {
    let config = read_config(run)?;
    read_state(run)?;
    let loaded = build(&config, device, config.train.seed);
    let path = dir_of(run, which)?.join(MODEL_FILE);
    load_weights(&loaded, &path)?;
    Ok(loaded)
}

/// Copies the run's last checkpoint to `best/`, whole: into `best.partial/`, then swapped in.
pub fn save_best(run: &Path) -> Result<(), CheckpointError> {
    let src = run.join(CHECKPOINT_DIR);
    let dir = run.join(BEST_DIR);
    let partial = run.join(format!("{BEST_DIR}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io(&partial))?;
    }
    fs::create_dir_all(&partial).map_err(io(&partial))?;
    for name in [MODEL_FILE, OPTIMIZER_FILE, STATE_FILE, CHECKSUMS_FILE] {
        let to = partial.join(name);
        if name == CHECKSUMS_FILE && !src.join(name).is_file() {
            continue;
        }
        fs::copy(src.join(name), &to).map_err(io(&to))?;
        fs::File::open(&to)
            .and_then(|f| f.sync_all())
            .map_err(io(&to))?;
    }
    crate::util::fsutil::replace_dir(&partial, &dir).map_err(io(&dir))
}

/// Loads safetensors weights into `model`, checking that the keys are exactly the model's.
pub fn load_weights(model: &Loaded, path: &Path) -> Result<(), CheckpointError> {
    let saved = read_tensors(path)?;
    Ok(model.load_state(&saved, path)?)
}

/// The named tensors of a safetensors file of a checkpoint folder, checked against the folder's
/// checksums.toml when it has one (checkpoints from before it load unchecked).
fn read_tensors(path: &Path) -> Result<Vec<(String, tch::Tensor)>, CheckpointError> {
    let bytes = fs::read(path).map_err(io(path))?;
    if let Some(want) = checksum_of(path)? {
        if crate::util::fsutil::checksum(&bytes) != want {
            return Err(CheckpointError::Damaged {
                path: path.to_path_buf(),
            });
        }
    }
    let format = |message: String| CheckpointError::Format {
        path: path.to_path_buf(),
        message,
    };
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| format(e.to_string()))?;
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            Ok((
                name,
                tch::Tensor::try_from(view).map_err(|e| format(e.to_string()))?,
            ))
        })
        .collect()
}

/// The checksum recorded for the file at `path` in its folder's checksums.toml, if any.
fn checksum_of(path: &Path) -> Result<Option<String>, CheckpointError> {
    let file = path.with_file_name(CHECKSUMS_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text = fs::read_to_string(&file).map_err(io(&file))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| CheckpointError::Format {
        path: file.clone(),
        message: e.to_string(),
    })?;
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    Ok(table
        .get(name.as_ref())
        .and_then(|v| v.as_str())
        .map(String::from))
}

/// Writes the checkpoint of `run` atomically as a whole: the model's state dict and the
/// optimizer's m and v (`KerasAdam::state_tensors`' names, or a stacked model's part of them),
/// and where training stands.
pub fn save(
    run: &Path,
    weights: &[(String, tch::Tensor)],
    optimizer: &[(String, tch::Tensor)],
    state: &TrainState,
) -> Result<(), CheckpointError> {
    let tch_err = |path: &Path| {
        let path = path.to_path_buf();
        move |cause: tch::TchError| match os_error(&cause.to_string()) {
            // The safetensors crate reports a failed write as `IoError(Os { code: 27, .. })`:
            // said as the OS says it ("File too large (os error 27)").
            Some(io) => CheckpointError::Io { path, cause: io },
            None => CheckpointError::Tch { path, cause },
        }
    };
    let dir = run.join(CHECKPOINT_DIR);
    let partial = run.join(format!("{CHECKPOINT_DIR}.partial"));
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
    let sums = partial.join(CHECKSUMS_FILE);
    let mut table = toml::Table::new();
    for f in [&model, &optim] {
        let bytes = fs::read(f).map_err(io(f))?;
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        table.insert(name, crate::util::fsutil::checksum(&bytes).into());
    }
    fs::write(&sums, toml::to_string(&table).expect("a table")).map_err(io(&sums))?;
    for f in [&model, &optim, &state_path, &sums] {
        fs::File::open(f)
            .and_then(|f| f.sync_all())
            .map_err(io(f))?;
    }
    crate::util::fsutil::replace_dir(&partial, &dir).map_err(io(&dir))
}

/// The OS error in a Debug dump such as `IoError(Os { code: 27, kind: FileTooLarge, .. })`.
fn os_error(text: &str) -> Option<std::io::Error> {
    let code = text.split("Os { code: ").nth(1)?.split(',').next()?.trim();
    code.parse().ok().map(std::io::Error::from_raw_os_error)
}

/// The run's last checkpoint as a state to continue training from (crate::train::models).
pub fn saved(run: &Path) -> Result<Saved, CheckpointError> {
    let state = read_state(run)?;
    let dir = checkpoint_dir(run);
    let weights = read_tensors(&dir.join(MODEL_FILE))?;
    let file = dir.join(OPTIMIZER_FILE);
    let optimizer = read_tensors(&file)?.into_iter().collect();
    Ok(Saved {
        weights,
        optimizer,
        step: state.step,
        file,
    })
}

/// The first free `runs/<dataset>-<n>` folder under `base`.
pub fn new_run_dir(base: &Path, dataset: &str) -> PathBuf {
    (1..)
        .map(|n| base.join(format!("{dataset}-{n}")))
        .find(|p| !p.exists())
        .expect("an unbounded range has a free name")
}
