//! `<run>/attributes.safetensors`: one unit vector per attribute (`[latent]` float32, named by
//! the attribute), and in `__metadata__["vae_tch_attributes"]` (JSON) how each was found: the
//! images with and without it, its length before scaling, whether it converged, was capped or
//! ran out of images, and the rule, split, checkpoint and epoch they came from. Read by
//! `arithmetic` and `serve`; `safetensors.torch.load_file` reads it too.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::Tensor;

use super::attributes::{Ending, Rule, Vector};

pub const VECTORS_FILE: &str = "attributes.safetensors";
const KEY: &str = "vae_tch_attributes";

/// What the metadata says of one vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub positives: usize,
    pub negatives: usize,
    pub norm_before_scaling: f64,
    pub ending: Ending,
    pub batches: usize,
}

impl Found {
    pub fn of(v: &Vector) -> Found {
        Found {
            positives: v.positives,
            negatives: v.negatives,
            norm_before_scaling: v.norm,
            ending: v.ending,
            batches: v.steps.len(),
        }
    }
}

/// Where a file's vectors come from: the same source, the same vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    pub rule: Rule,
    pub split: String,
    /// "last" or "best".
    pub checkpoint: String,
    pub epoch: usize,
    /// A table's path, or "the class labels".
    pub labels: String,
}

/// The metadata of the whole file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct About {
    #[serde(flatten)]
    pub source: Source,
    pub vectors: BTreeMap<String, Found>,
}

#[derive(Debug, thiserror::Error)]
pub enum VectorsFileError {
    #[error("{path}: {message}", path = .path.display())]
    Bad { path: PathBuf, message: String },
    #[error("{path} is missing: `vae-tch attributes {run}` finds the attribute vectors", path = .path.display(), run = .run.display())]
    Missing { path: PathBuf, run: PathBuf },
    #[error("{path} has no vector {name} (it has {known}): `vae-tch attributes {run} --attribute {name}` finds it", path = .path.display(), run = .run.display())]
    Unknown {
        path: PathBuf,
        run: PathBuf,
        name: String,
        known: String,
    },
}

/// The vectors of a run's file, by name, and what it says of them.
pub struct Vectors {
    pub path: PathBuf,
    pub about: About,
    pub vectors: Vec<(String, Tensor)>,
}

impl Vectors {
    /// The run's attributes.safetensors.
    pub fn of_run(run: &Path) -> Result<Vectors, VectorsFileError> {
        let path = run.join(VECTORS_FILE);
        if !path.is_file() {
            return Err(VectorsFileError::Missing {
                path,
                run: run.to_path_buf(),
            });
        }
        let bad = |message: String| VectorsFileError::Bad {
            path: path.clone(),
            message,
        };
        let (vectors, meta) =
            crate::util::safetensors_io::read(&path).map_err(|e| bad(e.to_string()))?;
        let about: About = meta
            .get(KEY)
            .ok_or_else(|| bad(format!("no {KEY} in its metadata: not written by vae-tch")))
            .and_then(|j| serde_json::from_str(j).map_err(|e| bad(e.to_string())))?;
        Ok(Vectors {
            path,
            about,
            vectors,
        })
    }

    /// The vector of `name` (`[latent]`).
    pub fn get(&self, name: &str) -> Result<&Tensor, VectorsFileError> {
        self.vectors
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
            .ok_or_else(|| VectorsFileError::Unknown {
                path: self.path.clone(),
                run: self.path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                name: name.into(),
                known: self
                    .vectors
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Writes `vectors` with `about` to `path`, atomically.
    pub fn write(
        path: &Path,
        vectors: &[(String, Tensor)],
        about: &About,
    ) -> Result<(), VectorsFileError> {
        let json = serde_json::to_string(about).expect("the metadata serializes");
        let meta = std::collections::HashMap::from([
            ("format".to_string(), "pt".to_string()),
            (KEY.to_string(), json),
        ]);
        let bad = |message: String| VectorsFileError::Bad {
            path: path.to_path_buf(),
            message,
        };
        crate::util::fsutil::with_atomic(path, |tmp| {
            crate::util::safetensors_io::write(vectors, meta, tmp)
                .map_err(|e| std::io::Error::other(e.to_string()))
        })
        .map_err(|e| bad(e.to_string()))
    }
}

/// The file's contents after finding `found` from `source`: the vectors already in `old` from
/// the same source are kept beside the new ones (a new vector of the same name replaces its old
/// one); from another source (another checkpoint, rule, split or table), they are dropped, and
/// their names returned.
pub fn merge(
    old: Option<Vectors>,
    found: &[Vector],
    source: Source,
) -> (Vec<(String, Tensor)>, About, Vec<String>) {
    let mut named: Vec<(String, Tensor)> = Vec::new();
    let mut about = About {
        source,
        vectors: BTreeMap::new(),
    };
    let mut dropped = Vec::new();
    if let Some(old) = old {
        let same = old.about.source == about.source;
        for (name, t) in old.vectors {
            if found.iter().any(|v| v.name == name) {
                continue;
            }
            match (same, old.about.vectors.get(&name)) {
                (true, Some(f)) => {
                    about.vectors.insert(name.clone(), f.clone());
                    named.push((name, t));
                }
                _ => dropped.push(name),
            }
        }
    }
    for v in found {
        about.vectors.insert(v.name.clone(), Found::of(v));
        named.push((v.name.clone(), v.vector.shallow_clone()));
    }
    // In a fixed order (the file's tensors come as a map): the same warning every time.
    dropped.sort();
    (named, about, dropped)
}
