//! Data sets: which files make MNIST and Fashion-MNIST, where they come from, and loading them
//! into tensors. `idx` reads the files, `fetch` downloads them, `offline` builds them from the
//! copies that packages ship, `batch` cuts shuffled batches.
pub mod batch;
pub mod dataset;
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod offline;
pub mod prefetch;
pub mod source;

use std::path::Path;

use tch::{Kind, Tensor};

pub use crate::config::DatasetKind;
pub use dataset::{to_unit_float, DataError, Dataset, Split};

pub const ROWS: u32 = 28;
pub const COLS: u32 = 28;

/// The four files of an MNIST-style data set, in the order train images, train labels, test
/// images, test labels.
pub const FILES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// The file written beside the data that says where it came from.
pub const SOURCE_FILE: &str = "SOURCE";

/// MD5 of the four IDX files of `dir`, in order (streamed).
fn idx_fingerprint(dir: &Path) -> Result<String, DataError> {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for name in FILES {
        let path = dir.join(name);
        let mut f = std::fs::File::open(&path).map_err(|cause| DataError::Io {
            path: path.clone(),
            cause,
        })?;
        std::io::copy(&mut f, &mut h).map_err(|cause| DataError::Io { path, cause })?;
    }
    Ok(format!("{:x}", h.finalize()))
}

/// Which split of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Test,
    Train,
}

impl Which {
    /// The flag's word: `test` or `train`.
    pub fn name(self) -> &'static str {
        match self {
            Which::Test => "test",
            Which::Train => "train",
        }
    }
}

/// Loads a data set from `dir`, where `data fetch` put it.
pub fn load(kind: DatasetKind, dir: &Path) -> Result<Dataset, DataError> {
    Ok(Dataset {
        kind,
        train: load_split(kind, dir, Which::Train)?,
        test: load_split(kind, dir, Which::Test)?,
        classes: kind.class_names(),
        fingerprint: idx_fingerprint(dir)?,
    })
}

/// The data set of a run's config from `dir`: MNIST-style IDX files, or an image folder at the
/// model's input size; checks that the images fit the model.
pub fn open(
    config: &crate::config::TrainConfig,
    dir: &Path,
    quiet: bool,
) -> Result<Dataset, DataError> {
    let kind = config.data.dataset;
    if kind == DatasetKind::Folder {
        return folder::load(
            dir,
            &folder::FolderOptions::new(&config.data, config.model.input_shape, quiet),
        );
    }
    check_idx_shape(kind, config.model.input_shape)?;
    let d = &config.data;
    Ok(Dataset {
        kind,
        train: load_split_first(kind, dir, Which::Train, d.train_limit)?,
        test: load_split_first(kind, dir, Which::Test, d.test_limit)?,
        classes: kind.class_names(),
        fingerprint: idx_fingerprint(dir)?,
    })
}

/// One split of a run's data set (an IDX data set reads only that split's files).
pub fn open_split(
    config: &crate::config::TrainConfig,
    dir: &Path,
    which: Which,
) -> Result<(Split, Vec<String>), DataError> {
    let kind = config.data.dataset;
    if kind == DatasetKind::Folder {
        let d = open(config, dir, true)?;
        let split = if which == Which::Train {
            d.train
        } else {
            d.test
        };
        return Ok((split, d.classes));
    }
    check_idx_shape(kind, config.model.input_shape)?;
    Ok((load_split(kind, dir, which)?, kind.class_names()))
}

/// MNIST and Fashion-MNIST images are [1, 28, 28].
fn check_idx_shape(kind: DatasetKind, model: [i64; 3]) -> Result<(), DataError> {
    let data = [1, ROWS as i64, COLS as i64];
    if model != data {
        return Err(DataError::ShapeMismatch { kind, model, data });
    }
    Ok(())
}

/// Loads one split (its two files) of a data set from `dir`.
pub fn load_split(kind: DatasetKind, dir: &Path, which: Which) -> Result<Split, DataError> {
    load_split_first(kind, dir, which, None)
}

/// The same, reading only the first `limit` examples when given (the rest of the files is
/// neither read nor kept).
pub fn load_split_first(
    kind: DatasetKind,
    dir: &Path,
    which: Which,
    limit: Option<usize>,
) -> Result<Split, DataError> {
    if kind == DatasetKind::Folder {
        return Err(DataError::FolderNeedsModel(dir.to_path_buf()));
    }
    let (images, labels) = match which {
        Which::Train => (FILES[0], FILES[1]),
        Which::Test => (FILES[2], FILES[3]),
    };
    for name in [images, labels] {
        if !dir.join(name).exists() {
            return Err(DataError::Missing {
                kind,
                dir: dir.to_path_buf(),
                missing: name.into(),
            });
        }
    }
    let (ip, lp) = (dir.join(images), dir.join(labels));
    let limit = limit.map(|l| l as u64);
    let im = idx::read_images(&ip, ROWS, COLS, limit)?;
    let lb = idx::read_labels(&lp, 10, limit)?;
    if im.dims[0] != lb.dims[0] {
        return Err(DataError::CountMismatch {
            images: ip,
            n_images: im.dims[0],
            labels: lp,
            n_labels: lb.dims[0],
        });
    }
    let n = im.dims[0] as i64;
    Ok(Split {
        images: Tensor::from_slice(&im.data).view([n, 1, ROWS as i64, COLS as i64]),
        labels: Tensor::from_slice(&lb.data).to_kind(Kind::Int64),
        backing: None,
    })
}

/// Writes a data set's four files (gzip'd IDX) into `dir`: used by the offline converters and
/// by tests that need a small data set.
pub fn write_dataset(
    dir: &Path,
    train: (&[u8], &[u8]),
    test: (&[u8], &[u8]),
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let px = (ROWS * COLS) as usize;
    for (i, (images, labels)) in [train, test].into_iter().enumerate() {
        assert_eq!(
            images.len(),
            labels.len() * px,
            "images and labels disagree in count"
        );
        let n = labels.len() as u32;
        let im = idx::gzip(&idx::encode(&[n, ROWS, COLS], images));
        let lb = idx::gzip(&idx::encode(&[n], labels));
        crate::util::fsutil::write_atomic(&dir.join(FILES[2 * i]), &im)?;
        crate::util::fsutil::write_atomic(&dir.join(FILES[2 * i + 1]), &lb)?;
    }
    Ok(())
}
