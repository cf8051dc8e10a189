//! Data sets: which files make MNIST and Fashion-MNIST, where they come from, and loading them
//! into tensors. `idx` reads the files, `fetch` downloads them, `offline` builds them from the
//! copies that packages ship, `batch` cuts shuffled batches.
pub mod batch;
pub mod fetch;
pub mod idx;
pub mod offline;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Class names by label, for legends.
    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            // Zalando's fashion-mnist README, "Labels".
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// The default folder for this data set: `data/<name>`.
    pub fn default_dir(self) -> PathBuf {
        Path::new("data").join(self.name())
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

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
    #[error("{images}: {n_images} images but {labels}: {n_labels} labels")]
    CountMismatch {
        images: PathBuf,
        n_images: u32,
        labels: PathBuf,
        n_labels: u32,
    },
}

/// One split: images `[n, 1, 28, 28]` as bytes (0-255) and labels `[n]` as i64, on the CPU.
#[derive(Debug)]
pub struct Split {
    pub images: Tensor,
    pub labels: Tensor,
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
        Split {
            images: self.images.narrow(0, start, len),
            labels: self.labels.narrow(0, start, len),
        }
    }

    /// Images as float in [0, 1] on `device`, as the seed feeds the model (x / 255).
    pub fn images_f32(&self, device: Device) -> Tensor {
        self.images.to_device(device).to_kind(Kind::Float) / 255.0
    }
}

#[derive(Debug)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub train: Split,
    pub test: Split,
}

/// Which split of a data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Which {
    Test,
    Train,
}

/// Loads a data set from `dir`, where `data fetch` put it.
pub fn load(kind: DatasetKind, dir: &Path) -> Result<Dataset, DataError> {
    Ok(Dataset {
        kind,
        train: load_split(kind, dir, Which::Train)?,
        test: load_split(kind, dir, Which::Test)?,
    })
}

/// Loads one split (its two files) of a data set from `dir`.
pub fn load_split(kind: DatasetKind, dir: &Path, which: Which) -> Result<Split, DataError> {
    let (images, labels) = match which {
        Which::Train => (FILES[0], FILES[1]),
        Which::Test => (FILES[2], FILES[3]),
    };
    for name in [images, labels] {
        if !dir.join(name).is_file() {
            return Err(DataError::Missing {
                kind,
                dir: dir.to_path_buf(),
                missing: name.into(),
            });
        }
    }
    let (ip, lp) = (dir.join(images), dir.join(labels));
    let im = idx::read_images(&ip, ROWS, COLS)?;
    let lb = idx::read_labels(&lp, 10)?;
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
        crate::fsutil::write_atomic(&dir.join(FILES[2 * i]), &im)?;
        crate::fsutil::write_atomic(&dir.join(FILES[2 * i + 1]), &lb)?;
    }
    Ok(())
}
