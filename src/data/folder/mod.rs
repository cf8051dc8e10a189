//! Your own images: `--dataset folder --data-dir DIR`. Every PNG and JPEG under DIR (recursively)
//! becomes one example. When DIR has sub-folders, the first sub-folder below DIR is the label, and
//! the figures use it as the class name. Images are resized to the model's input size, as Keras's
//! `ImageDataGenerator.flow_from_directory(target_size=...)` does: `squash` (the default, as
//! Keras) stretches the whole image; `crop` first cuts the largest centred window of the target's
//! aspect ratio. Both use nearest-neighbour interpolation (Keras's default `interpolation`).
//! The model's channel count decides grey or RGB.
//!
//! The first run decodes the folder in parallel (rayon, with a progress bar) into a uint8 cache
//! file, `<cache dir>/<key>.vaecache`. The key covers the file list, each file's size and mtime,
//! the image size, the resize mode and the channels. Every later run memory-maps that file and
//! draws its batches from the mapping. A corrupt or unreadable image, an unreadable sub-folder
//! and a symlink loop are reported and skipped, with the count (even with --quiet). The format
//! is read from the content, not the extension. A truncated or changed cache file is rebuilt,
//! with a message. Here: the options, the cache key, loading and the train/test split; `scan`
//! finds the files, `decode` reads one, `cache` holds the decoded images.
pub mod cache;
pub mod decode;
pub mod options;
pub mod scan;

use std::fs;
use std::path::Path;
use std::sync::Arc;

use md5::{Digest, Md5};
use tch::{Device, Kind, Tensor};

use super::dataset::{DataError, Dataset, Split};
use crate::config::DatasetKind;
pub use crate::config::ResizeMode;
use cache::{build_cache, PREFIX};
pub use cache::{content_hash, open_cache};
pub use decode::decode;
pub use options::FolderOptions;
use scan::{scan, Entry, Scan};

/// The cache key: the file list with sizes and mtimes, the size, the resize mode, the channels,
/// and the split (the file stores the training images, then the test images).
fn cache_key(entries: &[Entry], opts: &FolderOptions) -> String {
    let mut h = Md5::new();
    h.update(format!(
        "{:?} {:?} {} {}\n",
        opts.shape, opts.resize, opts.test_fraction, opts.split_seed
    ));
    for e in entries {
        h.update(format!("{}\t{}\t{}\n", e.path.display(), e.size, e.mtime));
    }
    format!("{:x}", h.finalize())
}

/// Loads the image folder `dir` as a data set (building or reusing its cache).
pub fn load(dir: &Path, opts: &FolderOptions) -> Result<Dataset, DataError> {
    let Scan {
        entries,
        classes,
        unreadable,
    } = scan(dir)?;
    if entries.is_empty() {
        return Err(DataError::NoImages(dir.to_path_buf()));
    }
    let key = cache_key(&entries, opts);
    let cache_dir = opts
        .cache_dir
        .clone()
        .unwrap_or_else(|| dir.join(".vae-tch-cache"));
    fs::create_dir_all(&cache_dir).map_err(DataError::io(&cache_dir))?;
    let path = cache_dir.join(format!("{key}.vaecache"));
    let opened = match open_cache(&path, &key, opts.shape) {
        Ok(ok) => ok,
        Err(why) => {
            if path.exists() {
                eprintln!("warning: rebuilding the cache {}: {why}", path.display());
            }
            let (train, test) = split_indices(entries.len(), opts.test_fraction, opts.split_seed);
            let ordered: Vec<&Entry> = train
                .iter()
                .chain(&test)
                .map(|&i| &entries[i as usize])
                .collect();
            build_cache(&path, &ordered, train.len(), &classes, &key, opts)?;
            open_cache(&path, &key, opts.shape).map_err(|why| DataError::Cache {
                path: path.clone(),
                why,
            })?
        }
    };
    let (map, header, n) = opened;
    // Warnings, printed even with --quiet: a skipped file changes what trains.
    let skipped: Vec<&(String, String)> = unreadable.iter().chain(&header.skipped).collect();
    if !skipped.is_empty() {
        let shown: Vec<String> = skipped
            .iter()
            .take(5)
            .map(|(p, why)| format!("  {p}: {why}"))
            .collect();
        eprintln!(
            "warning: skipped {} of {} entries under {} that could not be read as images:\n{}{}",
            skipped.len(),
            entries.len() + unreadable.len(),
            dir.display(),
            shown.join("\n"),
            if skipped.len() > 5 { "\n  ..." } else { "" }
        );
    }
    if n == 0 {
        return Err(DataError::NoImages(dir.to_path_buf()));
    }
    let [c, h, w] = opts.shape;
    let img_len = (c * h * w) as usize;
    let map = Arc::new(map);
    // The images stay in the mapping: the tensor borrows it, and each Split keeps it alive.
    let images = unsafe {
        Tensor::from_blob(
            map[PREFIX..].as_ptr(),
            &[n as i64, c, h, w],
            &[],
            Kind::Uint8,
            Device::Cpu,
        )
    };
    let labels_at = PREFIX + n * img_len;
    let labels: Vec<i64> = map[labels_at..labels_at + 4 * n]
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()) as i64)
        .collect();
    let labels = Tensor::from_slice(&labels);
    // Both splits are views into the mapping (the file holds the training images first).
    // Each image's file relative to the folder (the cache holds the full paths it read).
    let names: Vec<String> = header
        .files
        .iter()
        .map(|f| {
            let p = Path::new(f);
            p.strip_prefix(dir)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let part = |start: usize, len: usize| Split {
        images: images.narrow(0, start as i64, len as i64),
        labels: labels.narrow(0, start as i64, len as i64),
        backing: Some(map.clone()),
        names: names[start..start + len].to_vec(),
    };
    let n_train = header.n_train.min(n);
    Ok(Dataset {
        kind: DatasetKind::Folder,
        train: part(0, n_train),
        test: part(n_train, n - n_train),
        classes: header.classes,
        fingerprint: key,
    })
}

/// Indices of the training and test images: the test split is drawn by a shuffle seeded with
/// `seed` (SplitMix64, independent of torch's generator); each split is in file order. With two
/// or more images, both splits get at least one.
pub fn split_indices(n: usize, fraction: f64, seed: u64) -> (Vec<i64>, Vec<i64>) {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    let n_test = if n < 2 {
        0
    } else {
        ((n as f64 * fraction).round() as usize).clamp(1, n - 1)
    };
    let mut test: Vec<i64> = order[..n_test].iter().map(|&i| i as i64).collect();
    let mut train: Vec<i64> = order[n_test..].iter().map(|&i| i as i64).collect();
    test.sort_unstable();
    train.sort_unstable();
    (train, test)
}
