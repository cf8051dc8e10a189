//! What reading an image folder needs beside the folder: the model's input shape, how to resize,
//! the test split, where the cache goes.
use std::path::PathBuf;

use crate::config::{DataConfig, ResizeMode};

/// What a folder data set needs beside the folder.
#[derive(Debug, Clone)]
pub struct FolderOptions {
    /// (channels, height, width): the model's input.
    pub shape: [i64; 3],
    pub resize: ResizeMode,
    /// Fraction of the images (by a seeded shuffle) that form the test split.
    pub test_fraction: f64,
    pub split_seed: u64,
    /// Where cache files go [default: DIR/.vae-tch-cache].
    pub cache_dir: Option<PathBuf>,
    /// No progress bar or messages.
    pub quiet: bool,
}

impl FolderOptions {
    /// What a run's `[data]` table asks of a folder, for a model taking `shape` images.
    pub fn new(data: &DataConfig, shape: [i64; 3], quiet: bool) -> FolderOptions {
        FolderOptions {
            shape,
            resize: data.resize,
            test_fraction: data.test_fraction,
            split_seed: data.split_seed,
            cache_dir: data.cache_dir.clone(),
            quiet,
        }
    }
}
