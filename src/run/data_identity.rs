//! What a run was trained on: `<run>/data.toml` holds the data set's name, the numbers of training
//! and test images it used, and a fingerprint of the data (the MD5 of the IDX files, or an image
//! folder's cache key). A resumed run must see the same data. A mistyped `--data-dir`, or an
//! MNIST run resumed on Fashion-MNIST, is refused naming what differs, unless forced.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const DATA_FILE: &str = "data.toml";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataIdentity {
    pub dataset: String,
    pub train_images: i64,
    pub test_images: i64,
    pub fingerprint: String,
}

impl DataIdentity {
    /// The identity of the data a run of `config` trains on.
    pub fn of(config: &crate::config::RunConfig, data: &crate::data::TrainingData) -> DataIdentity {
        DataIdentity {
            dataset: config.data.dataset.to_string(),
            train_images: data.train.len(),
            test_images: data.test.len(),
            fingerprint: data.fingerprint.clone(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("{dir}: these are not the data run {run} was trained on: {what}; point --data-dir at the run's data, or pass --force to train on these")]
    Mismatch {
        run: PathBuf,
        dir: PathBuf,
        what: String,
    },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// Records `id` as the run's data.
pub fn record(run: &Path, id: &DataIdentity) -> Result<(), IdentityError> {
    let path = run.join(DATA_FILE);
    let text = toml::to_string(id).expect("DataIdentity serializes");
    crate::util::fsutil::write_atomic(&path, text.as_bytes())
        .map_err(|cause| IdentityError::Io { path, cause })
}

/// Checks `now` against the run's record; a run from before the record existed passes.
pub fn check(run: &Path, dir: &Path, now: &DataIdentity) -> Result<(), IdentityError> {
    let Ok(text) = std::fs::read_to_string(run.join(DATA_FILE)) else {
        return Ok(());
    };
    let Ok(was) = toml::from_str::<DataIdentity>(&text) else {
        return Ok(());
    };
    let mut diffs = Vec::new();
    if was.dataset != now.dataset {
        diffs.push(format!(
            "data set {} (the run's: {})",
            now.dataset, was.dataset
        ));
    }
    if (was.train_images, was.test_images) != (now.train_images, now.test_images) {
        diffs.push(format!(
            "{} training / {} test images (the run's: {} / {})",
            now.train_images, now.test_images, was.train_images, was.test_images
        ));
    }
    if was.fingerprint != now.fingerprint {
        diffs.push("other file contents".into());
    }
    if diffs.is_empty() {
        return Ok(());
    }
    Err(IdentityError::Mismatch {
        run: run.to_path_buf(),
        dir: dir.to_path_buf(),
        what: diffs.join(", "),
    })
}
