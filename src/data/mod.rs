//! Data sets: which files make MNIST and Fashion-MNIST, where they come from, and loading them
//! into tensors. `idx` reads the files, `fetch` downloads them, `offline` builds them from the
//! copies that packages ship, `batch` cuts shuffled batches.
pub mod batch;
pub mod dataset;
pub mod fetch;
pub mod folder;
pub mod idx;
pub mod labels;
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

pub use source::SOURCE_FILE;

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
pub enum SplitName {
    Test,
    Train,
}

impl SplitName {
    /// The flag's word: `test` or `train`.
    pub fn name(self) -> &'static str {
        match self {
            SplitName::Test => "test",
            SplitName::Train => "train",
        }
    }
}

/// Loads a data set from `dir`, where `data fetch` put it.
pub fn load(kind: DatasetKind, dir: &Path) -> Result<Dataset, DataError> {
    Ok(Dataset {
        kind,
        train: load_split(kind, dir, SplitName::Train)?,
        test: load_split(kind, dir, SplitName::Test)?,
        classes: kind.class_names(),
        fingerprint: idx_fingerprint(dir)?,
    })
}

/// The data set of a run's config from `dir`: MNIST-style IDX files, or an image folder at the
/// model's input size; checks that the images fit the model.
pub fn open(
    config: &crate::config::RunConfig,
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
        train: load_split_first(kind, dir, SplitName::Train, d.train_limit)?,
        test: load_split_first(kind, dir, SplitName::Test, d.test_limit)?,
        classes: kind.class_names(),
        fingerprint: idx_fingerprint(dir)?,
    })
}

/// A run's data set as it trains: both splits cut to the config's limits, from `dir`.
#[derive(Debug)]
pub struct TrainingData {
    pub dir: std::path::PathBuf,
    pub train: Split,
    pub test: Split,
    /// Class names by label.
    pub classes: Vec<String>,
    /// What identifies the data (`Dataset::fingerprint`).
    pub fingerprint: String,
}

/// The data set a run of `config` trains on: its folder (`data.dir`), cut to the limits;
/// refused when a split is empty (the test split gives the test loss and the figures).
pub fn open_training(
    config: &crate::config::RunConfig,
    quiet: bool,
) -> Result<TrainingData, DataError> {
    let dir = config.data.dir();
    let data = open(config, &dir, quiet)?;
    let train = data.train.limit(config.data.train_limit);
    let test = data.test.limit(config.data.test_limit);
    for (split, what) in [(&train, "training"), (&test, "test")] {
        if split.is_empty() {
            return Err(DataError::EmptySplit { dir, what });
        }
    }
    Ok(TrainingData {
        dir,
        train,
        test,
        classes: data.classes,
        fingerprint: data.fingerprint,
    })
}

impl TrainingData {
    /// The line a run prints about its data.
    pub fn describe(&self, config: &crate::config::RunConfig) -> String {
        let d = &config.data;
        match source::SourceInfo::read(&self.dir) {
            Some(src) => format!("data: {src}"),
            None if d.dataset == DatasetKind::Folder => format!(
                "data: image folder {}: {} train / {} test images ({} split by seed {}), {} classes, resized ({}) to {}",
                self.dir.display(),
                self.train.len(),
                self.test.len(),
                d.test_fraction,
                d.split_seed,
                self.classes.len(),
                d.resize,
                config.model.input_shape.map(|v| v.to_string()).join(",")
            ),
            None => format!("data: {} from {}", d.dataset, self.dir.display()),
        }
    }
}

/// One split of a run's data set (an IDX data set reads only that split's files).
pub fn open_split(
    config: &crate::config::RunConfig,
    dir: &Path,
    which: SplitName,
) -> Result<(Split, Vec<String>), DataError> {
    let kind = config.data.dataset;
    if kind == DatasetKind::Folder {
        let d = open(config, dir, true)?;
        let split = if which == SplitName::Train {
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
pub fn load_split(kind: DatasetKind, dir: &Path, which: SplitName) -> Result<Split, DataError> {
    load_split_first(kind, dir, which, None)
}

/// The same, reading only the first `limit` examples when given (the rest of the files is
/// neither read nor kept).
pub fn load_split_first(
    kind: DatasetKind,
    dir: &Path,
    which: SplitName,
    limit: Option<usize>,
) -> Result<Split, DataError> {
    if kind == DatasetKind::Folder {
        return Err(DataError::FolderNeedsModel(dir.to_path_buf()));
    }
    let (images, labels) = match which {
        SplitName::Train => (FILES[0], FILES[1]),
        SplitName::Test => (FILES[2], FILES[3]),
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
        names: Vec::new(),
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
