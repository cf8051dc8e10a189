//! What a loaded data set is: two splits of byte images with labels, its classes and the
//! fingerprint a run records; and the errors of loading one.
use std::path::PathBuf;

use tch::{Device, Kind, Tensor};

use super::idx;
use crate::config::DatasetKind;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("no {kind} data in {dir}: {missing} is missing (run `vae-tch data fetch {kind} --dir {dir}`)")]
    Missing {
        kind: DatasetKind,
        dir: PathBuf,
        missing: String,
    },
    #[error(transparent)]
    Idx(#[from] idx::IdxError),
    #[error(
        "{0} is not a folder (--dataset folder reads the PNG and JPEG files under --data-dir)"
    )]
    NotAFolder(PathBuf),
    #[error("{0}: an image folder is read at a model's input size (train --dataset folder, or a run of it), not as MNIST-style files")]
    FolderNeedsModel(PathBuf),
    #[error("{0} holds no PNG or JPEG images that could be read")]
    NoImages(PathBuf),
    #[error("{dir}: no {what} images: training needs at least one of each (the test split gives the test loss and the figures)", dir = .dir.display())]
    EmptySplit { dir: PathBuf, what: &'static str },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{path}: the cache just written does not read back: {why}")]
    Cache { path: PathBuf, why: String },
    #[error("the model takes {model:?} (c, h, w) images, the {kind} data are {data:?}; set model.input_shape = {data:?} or use another data set")]
    ShapeMismatch {
        kind: DatasetKind,
        model: [i64; 3],
        data: [i64; 3],
    },
    #[error("{images}: {n_images} images but {labels}: {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        n_images: u32,
        labels: PathBuf,
        n_labels: u32,
    },
}

impl DataError {
    /// An I/O error on `path`, as `map_err` takes it.
    pub fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
        move |cause| DataError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// One split: images `[n, c, h, w]` as bytes (0-255) and labels `[n]` as i64, on the CPU.
#[derive(Debug)]
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
    /// The memory map the images live in (image folders' caches), kept alive with them.
    pub backing: Option<std::sync::Arc<memmap2::Mmap>>,
    /// Each image's file, relative to the data folder (image folders; empty for IDX files).
    pub names: Vec<String>,
}

impl Split {
    pub fn len(&self) -> i64 {
        self.images.size()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The first `n` examples (all when `n` is None or larger).
    pub fn limit(self, n: Option<usize>) -> Split {
        match n {
            Some(n) if (n as i64) < self.len() => self.narrow(0, n as i64),
            _ => self,
        }
    }

    /// Examples `start..start + len` (views, no copy).
    pub fn narrow(&self, start: i64, len: i64) -> Split {
        let names = if self.names.is_empty() {
            Vec::new()
        } else {
            self.names[start as usize..(start + len) as usize].to_vec()
        };
        Split {
            images: self.images.narrow(0, start, len),
            labels: self.labels.narrow(0, start, len),
            backing: self.backing.clone(),
            names,
        }
    }

    /// Images as float in [0, 1] on `device`, as the seed feeds the model (x / 255).
    pub fn images_f32(&self, device: Device) -> Tensor {
        to_unit_float(&self.images.to_device(device))
    }
}

/// Model input from stored images: bytes become x / 255 (as the seed feeds the model); floats
/// pass through.
pub fn to_unit_float(images: &Tensor) -> Tensor {
    if images.kind() == Kind::Uint8 {
        images.to_kind(Kind::Float) / 255.0
    } else {
        images.shallow_clone()
    }
}

#[derive(Debug)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub train: Split,
    pub test: Split,
    /// Class names by label.
    pub classes: Vec<String>,
    /// What identifies the data: the MD5 of the IDX files, or an image folder's cache key (its
    /// file list, sizes, mtimes, size, resize mode and split).
    pub fingerprint: String,
}
