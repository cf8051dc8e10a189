//! Values given on the command line over a config (a preset, a `--config` file or the
//! defaults). A value is applied when it was given, whatever it equals: a flag that happens to
//! equal the default still wins over a file that says otherwise. `differences` names what the
//! overrides changed, for the line a run prints at its start.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{CudaGraphMode, DatasetKind, Precision, ResizeMode, RunConfig};

/// The config keys a resumed run may change (`RunOverrides`: `train --resume`'s flags) and a
/// sweep point may change between two `sweep run`s: how long, where the data are, how it
/// trains; never the model, the data or the hyperparameters. `train.step_form` is the trainer's
/// record, not an input.
pub const RESUMABLE_KEYS: [&str; 10] = [
    "train.epochs",
    "train.early_stopping",
    "train.min_delta",
    "train.step_form",
    "train.cuda_graph",
    "train.precision",
    "train.tensorboard",
    "data.dir",
    "data.cache_dir",
    "data.stream",
];

/// The config keys a new run may take from flags; `None` leaves the base's value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub dataset: Option<DatasetKind>,
    pub batch_size: Option<usize>,
    pub learning_rate: Option<f64>,
    pub r_loss_factor: Option<f64>,
    pub latent_dim: Option<i64>,
    pub seed: Option<u64>,
    pub reconstruction_every: Option<usize>,
    pub lr_decay: Option<f64>,
    pub lr_decay_every: Option<usize>,
    pub train_limit: Option<usize>,
    pub test_limit: Option<usize>,
    /// (channels, height, width); the decoder's last layer follows the channels.
    pub input_shape: Option<[i64; 3]>,
    pub resize: Option<ResizeMode>,
    pub test_fraction: Option<f64>,
    /// The keys a resumed run may change too.
    pub run: RunOverrides,
}

/// What a resumed run may change: how long, where the data is, how it trains.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOverrides {
    pub epochs: Option<usize>,
    pub data_dir: Option<PathBuf>,
    pub cuda_graph: Option<CudaGraphMode>,
    pub precision: Option<Precision>,
    pub cache_dir: Option<PathBuf>,
    /// `--stream-data` can only turn streaming on.
    pub stream: bool,
    /// `--early-stopping N`; 0 turns it off.
    pub early_stopping: Option<usize>,
    pub min_delta: Option<f64>,
    /// `--no-tensorboard` can only turn the event files off.
    pub no_tensorboard: bool,
}

fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
    if let Some(v) = v {
        *dst = v.clone();
    }
}

impl Overrides {
    /// Applies every value that was given to `c`.
    pub fn apply(&self, c: &mut RunConfig) {
        set(&mut c.data.dataset, &self.dataset);
        set(&mut c.train.batch_size, &self.batch_size);
        set(&mut c.optim.learning_rate, &self.learning_rate);
        set(&mut c.train.r_loss_factor, &self.r_loss_factor);
        set(&mut c.model.latent_dim, &self.latent_dim);
        set(&mut c.train.seed, &self.seed);
        set(
            &mut c.train.reconstruction_every,
            &self.reconstruction_every,
        );
        set(&mut c.train.lr_decay, &self.lr_decay);
        set(&mut c.train.lr_decay_every, &self.lr_decay_every);
        if self.train_limit.is_some() {
            c.data.train_limit = self.train_limit;
        }
        if self.test_limit.is_some() {
            c.data.test_limit = self.test_limit;
        }
        if let Some(shape) = self.input_shape {
            c.model.input_shape = shape;
            if let Some(last) = c.model.decoder_conv_t_filters.last_mut() {
                *last = shape[0];
            }
        }
        set(&mut c.data.resize, &self.resize);
        set(&mut c.data.test_fraction, &self.test_fraction);
        self.run.apply(c);
    }
}

impl RunOverrides {
    pub fn apply(&self, c: &mut RunConfig) {
        set(&mut c.train.epochs, &self.epochs);
        if self.data_dir.is_some() {
            c.data.dir = self.data_dir.clone();
        }
        set(&mut c.train.cuda_graph, &self.cuda_graph);
        set(&mut c.train.precision, &self.precision);
        if self.cache_dir.is_some() {
            c.data.cache_dir = self.cache_dir.clone();
        }
        if self.stream {
            c.data.stream = true;
        }
        match self.early_stopping {
            Some(0) => c.train.early_stopping = None,
            Some(n) => c.train.early_stopping = Some(n),
            None => {}
        }
        set(&mut c.train.min_delta, &self.min_delta);
        if self.no_tensorboard {
            c.train.tensorboard = false;
        }
    }
}

/// One key whose value differs between two configs, as TOML text (`None`: absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// `train.r_loss_factor`.
    pub key: String,
    pub base: Option<String>,
    pub effective: Option<String>,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(unset)".into());
        write!(
            f,
            "{} = {} (was {})",
            self.key,
            show(&self.effective),
            show(&self.base)
        )
    }
}

/// `table.key` -> the value as TOML text, for every key the config writes.
fn flatten(prefix: &str, v: &toml::Value, out: &mut BTreeMap<String, String>) {
    match v {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn flat(c: &RunConfig) -> BTreeMap<String, String> {
    let v = toml::Value::try_from(c).expect("RunConfig is TOML");
    let mut out = BTreeMap::new();
    flatten("", &v, &mut out);
    out
}

/// The keys whose values differ from `base` to `effective`, in key order.
pub fn differences(base: &RunConfig, effective: &RunConfig) -> Vec<Difference> {
    let (a, b) = (flat(base), flat(effective));
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (a.get(k).cloned(), b.get(k).cloned());
            (x != y).then(|| Difference {
                key: k.clone(),
                base: x,
                effective: y,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key `RunOverrides` can change is in `RESUMABLE_KEYS`, so `train --resume` and a
    /// resumed sweep point agree on what may change.
    #[test]
    fn a_resumed_runs_flags_change_only_resumable_keys() {
        let base = RunConfig::default();
        let mut c = base.clone();
        RunOverrides {
            epochs: Some(3),
            data_dir: Some("d".into()),
            cuda_graph: Some(CudaGraphMode::Off),
            precision: Some(Precision::Bf16),
            cache_dir: Some("c".into()),
            stream: true,
            early_stopping: Some(2),
            min_delta: Some(0.5),
            no_tensorboard: true,
        }
        .apply(&mut c);
        let changed: Vec<String> = differences(&base, &c).into_iter().map(|d| d.key).collect();
        assert_eq!(changed.len(), 9, "{changed:?}");
        for key in &changed {
            assert!(RESUMABLE_KEYS.contains(&key.as_str()), "{key}");
        }
    }
}
