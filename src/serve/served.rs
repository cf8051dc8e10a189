//! What `vae-tch serve` serves: one run folder, or a sweep folder's points (each a run folder
//! under `points/`) with their values and nats as `<sweep>/summary.csv` gives them. Read from
//! the files alone, nothing loaded: the models load when the page first asks for them.
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::run::checkpoint::{self, Pick, CONFIG_FILE};

/// `<sweep>/summary.csv`, as `vae-tch sweep run` writes it: `point`, one column per swept key,
/// then `status` and the results.
const SUMMARY_FILE: &str = "summary.csv";
const POINTS_DIR: &str = "points";

#[derive(Debug, thiserror::Error)]
pub enum ServedError {
    #[error(
        "{path}: not a vae-tch run folder (no config.toml) nor a sweep folder (no summary.csv)"
    )]
    Neither { path: PathBuf },
    #[error("{path}: {message}")]
    Summary { path: PathBuf, message: String },
    #[error("sweep {path}: no point has a checkpoint yet (run `vae-tch sweep run` first), or with --best, a best/ one")]
    NoPoints { path: PathBuf },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

/// One model the page can pick.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub name: String,
    #[serde(skip)]
    pub dir: PathBuf,
    /// The swept keys and this point's values (empty for a run).
    pub values: Vec<(String, String)>,
    pub status: String,
    pub neg_elbo_nats: Option<f64>,
    pub latent_dim: i64,
    pub input_shape: [i64; 3],
    pub dataset: String,
    pub epochs_done: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Served {
    /// "run" or "sweep".
    pub kind: &'static str,
    pub path: String,
    /// The swept keys, in the summary's order (empty for a run).
    pub keys: Vec<String>,
    pub points: Vec<Point>,
}

fn point(name: String, dir: PathBuf, values: Vec<(String, String)>) -> Result<Point, ServedError> {
    let config = checkpoint::read_config(&dir)?;
    let state = checkpoint::read_state(&dir)?;
    Ok(Point {
        name,
        dir,
        values,
        status: "done".into(),
        neg_elbo_nats: None,
        latent_dim: config.model.latent_dim,
        input_shape: config.model.input_shape,
        dataset: config.data.dataset.to_string(),
        epochs_done: state.epoch,
    })
}

/// The run or sweep at `path`, with checkpoint `pick` of each model: a run without it is an
/// error now (not at the page's first request), a sweep point without it is left out.
pub fn open(path: &Path, pick: Pick) -> Result<Served, ServedError> {
    let shown = path.display().to_string();
    if path.join(CONFIG_FILE).is_file() {
        let name = path
            .file_name()
            .map_or(shown.clone(), |n| n.to_string_lossy().into_owned());
        checkpoint::dir_of(path, pick)?;
        let mut p = point(name, path.to_path_buf(), Vec::new())?;
        p.neg_elbo_nats = crate::eval::nats_of(path, p.epochs_done).0;
        return Ok(Served {
            kind: "run",
            path: shown,
            keys: Vec::new(),
            points: vec![p],
        });
    }
    let summary = path.join(SUMMARY_FILE);
    if !summary.is_file() {
        return Err(ServedError::Neither {
            path: path.to_path_buf(),
        });
    }
    let bad = |message: String| ServedError::Summary {
        path: summary.clone(),
        message,
    };
    let mut reader = csv::Reader::from_path(&summary).map_err(|e| bad(e.to_string()))?;
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| bad(e.to_string()))?
        .iter()
        .map(String::from)
        .collect();
    let status_at = header
        .iter()
        .position(|h| h == "status")
        .filter(|&i| i >= 1 && header[0] == "point")
        .ok_or_else(|| {
            bad("no `point` and `status` columns: not a vae-tch sweep summary".into())
        })?;
    let keys: Vec<String> = header[1..status_at].to_vec();
    let nats_at = header.iter().position(|h| h == "neg_elbo_nats");
    let mut points = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let name = record.get(0).unwrap_or("").to_string();
        let dir = path.join(POINTS_DIR).join(&name);
        // A point without a checkpoint (pending, or failed in its first epoch) has no model.
        if name.is_empty()
            || name.contains(['/', '\\'])
            || checkpoint::read_state(&dir).is_err()
            || checkpoint::dir_of(&dir, pick).is_err()
        {
            continue;
        }
        let values = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), record.get(i + 1).unwrap_or("").to_string()))
            .collect();
        let mut p = point(name, dir, values)?;
        p.status = record.get(status_at).unwrap_or("").to_string();
        p.neg_elbo_nats = nats_at
            .and_then(|i| record.get(i))
            .and_then(|v| v.parse().ok());
        points.push(p);
    }
    if points.is_empty() {
        return Err(ServedError::NoPoints {
            path: path.to_path_buf(),
        });
    }
    Ok(Served {
        kind: "sweep",
        path: shown,
        keys,
        points,
    })
}
