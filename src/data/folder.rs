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
//! with a message.
//!
//! Cache file layout: "VAETCHC2", then u64 little-endian n, json offset, json length, and the
//! XXH3-64 checksum of everything after the prefix (40 bytes); n * c * h * w pixel bytes
//! (NCHW); n u32 labels; a JSON header (key, shape, classes, files skipped). The prefix is
//! written last, into a `.partial` file that is then renamed. Opening checks the length, the
//! key and the checksum, so a cache whose bytes changed on disk is rebuilt, with a message.
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Instant, UNIX_EPOCH};

use image::imageops::FilterType;
use image::DynamicImage;
use md5::{Digest, Md5};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use super::dataset::{DataError, Dataset, Split};
use crate::config::DataConfig;
use crate::config::DatasetKind;
pub use crate::config::ResizeMode;

const MAGIC: &[u8; 8] = b"VAETCHC2";
const PREFIX: usize = 40;
const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

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

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    /// Index into the class list.
    label: u32,
    size: u64,
    mtime: u128,
}

#[derive(Debug, Serialize, Deserialize)]
/// The JSON header at the end of a cache file.
pub struct Header {
    key: String,
    shape: [i64; 3],
    classes: Vec<String>,
    /// Files that could not be decoded: (path, reason).
    skipped: Vec<(String, String)>,
    /// The first `n_train` images are the training split, the rest the test split.
    n_train: usize,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |cause| DataError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// What `scan` found.
struct Scan {
    entries: Vec<Entry>,
    /// The sub-folder names, or the folder's own name when it has none.
    classes: Vec<String>,
    /// Folders and files that could not be read, and links into a folder already read (loops):
    /// (path, reason). They are skipped.
    unreadable: Vec<(String, String)>,
}

/// Every image file under `dir` (sorted by path; hidden folders such as the cache skipped),
/// with the class list; what cannot be read is skipped and listed, not an error (except `dir`
/// itself).
fn scan(dir: &Path) -> Result<Scan, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NotAFolder(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    // Folders by (device, inode): a symlink back to a folder already walked is a loop.
    let mut seen = HashSet::new();
    let root = fs::metadata(dir).map_err(io(dir))?;
    seen.insert((root.dev(), root.ino()));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let listing = match fs::read_dir(&d) {
            Ok(listing) => listing,
            Err(e) if d != dir => {
                unreadable.push((d.display().to_string(), e.to_string()));
                continue;
            }
            Err(e) => return Err(io(&d)(e)),
        };
        for item in listing {
            let item = match item {
                Ok(item) => item,
                Err(e) => {
                    unreadable.push((d.display().to_string(), e.to_string()));
                    continue;
                }
            };
            let path = item.path();
            if item.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let meta = match fs::metadata(&path) {
                Ok(meta) => meta,
                Err(e) => {
                    unreadable.push((path.display().to_string(), e.to_string()));
                    continue;
                }
            };
            if meta.is_dir() {
                if seen.insert((meta.dev(), meta.ino())) {
                    stack.push(path);
                } else {
                    unreadable.push((
                        path.display().to_string(),
                        "a link to a folder already read (a symlink loop)".into(),
                    ));
                }
            } else if is_image(&path) {
                let mtime = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                files.push((path, meta.len(), mtime));
            }
        }
    }
    files.sort();
    let class_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(dir).ok()?;
        let mut parts = rel.components();
        let first = parts.next()?;
        parts
            .next()
            .map(|_| first.as_os_str().to_string_lossy().into_owned())
    };
    let mut classes: Vec<String> = files.iter().filter_map(|(p, ..)| class_of(p)).collect();
    classes.sort();
    classes.dedup();
    let root_name = dir
        .file_name()
        .map_or("images".into(), |n| n.to_string_lossy().into_owned());
    if classes.is_empty() {
        classes.push(root_name.clone());
    } else if files.iter().any(|(p, ..)| class_of(p).is_none()) {
        // Images directly in DIR beside class folders: a class of their own.
        classes.push(format!("{root_name} (top level)"));
    }
    let entries = files
        .into_iter()
        .map(|(path, size, mtime)| {
            let name = class_of(&path).unwrap_or_else(|| classes[classes.len() - 1].clone());
            let label = classes.iter().position(|c| *c == name).unwrap_or(0) as u32;
            Entry {
                path,
                label,
                size,
                mtime,
            }
        })
        .collect();
    Ok(Scan {
        entries,
        classes,
        unreadable,
    })
}

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

/// One image file as `[c, h, w]` bytes at the model's size; Err(reason) when it cannot be read
/// as an image (the file is then skipped).
pub fn decode(path: &Path, [c, h, w]: [i64; 3], resize: ResizeMode) -> Result<Vec<u8>, String> {
    // The format from the bytes, not the name: a JPEG saved as .png is common in scraped sets.
    // The reader's default limits stay on (a decompression bomb is an error, and skipped).
    let img = image::ImageReader::open(path)
        .and_then(|r| r.with_guessed_format())
        .map_err(|e| e.to_string())?
        .decode()
        .map_err(|e| e.to_string())?;
    let (tw, th) = (w as u32, h as u32);
    let img = match resize {
        ResizeMode::Squash => img,
        ResizeMode::Crop => {
            let (iw, ih) = (img.width() as u64, img.height() as u64);
            // The largest window of aspect tw:th inside iw x ih, centred.
            let (cw, ch) = if iw * th as u64 > ih * tw as u64 {
                ((ih * tw as u64 / th as u64).max(1), ih)
            } else {
                (iw, (iw * th as u64 / tw as u64).max(1))
            };
            img.crop_imm(
                ((iw - cw) / 2) as u32,
                ((ih - ch) / 2) as u32,
                cw as u32,
                ch as u32,
            )
        }
    };
    let img = img.resize_exact(tw, th, FilterType::Nearest);
    let hwc: Vec<u8> = match c {
        1 => DynamicImage::ImageLuma8(img.to_luma8()).into_bytes(),
        3 => img.to_rgb8().into_raw(),
        _ => return Err(format!("{c} channels: images have 1 (grey) or 3 (RGB)")),
    };
    // HWC -> CHW.
    let (c, plane) = (c as usize, (h * w) as usize);
    let mut chw = vec![0u8; c * plane];
    for (i, px) in hwc.chunks_exact(c).enumerate() {
        for (k, v) in px.iter().enumerate() {
            chw[k * plane + i] = *v;
        }
    }
    Ok(chw)
}

/// Decodes every entry into the cache file at `path` (via `path.partial`); returns the header.
fn build_cache(
    path: &Path,
    entries: &[&Entry],
    n_train_in: usize,
    classes: &[String],
    key: &str,
    opts: &FolderOptions,
) -> Result<Header, DataError> {
    let [c, h, w] = opts.shape;
    let img_len = (c * h * w) as usize;
    let n = entries.len();
    let partial = crate::util::fsutil::partial_path(path);
    let file = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&partial)
        .map_err(io(&partial))?;
    file.set_len((PREFIX + n * img_len) as u64)
        .map_err(io(&partial))?;
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(io(&partial))?;
    let bar = if opts.quiet {
        indicatif::ProgressBar::hidden()
    } else {
        crate::util::progress::count_bar(n as u64, "decoding images")
    };
    let t0 = Instant::now();
    let done = AtomicUsize::new(0);
    let results: Vec<Result<(), String>> = map[PREFIX..]
        .par_chunks_mut(img_len.max(1))
        .zip(entries.par_iter())
        .map(|(dst, e)| {
            let r = decode(&e.path, opts.shape, opts.resize).map(|px| dst.copy_from_slice(&px));
            if done.fetch_add(1, Ordering::Relaxed).is_multiple_of(64) {
                bar.set_position(done.load(Ordering::Relaxed) as u64);
            }
            r
        })
        .collect();
    bar.finish_and_clear();
    // Compact: the decoded images in order, the skipped ones dropped.
    let mut kept = Vec::with_capacity(n);
    let mut skipped = Vec::new();
    let mut n_train = 0;
    for (i, (r, e)) in results.iter().zip(entries).enumerate() {
        match r {
            Ok(()) => {
                if i < n_train_in {
                    n_train += 1;
                }
                let to = kept.len();
                if to != i {
                    map.copy_within(
                        PREFIX + i * img_len..PREFIX + (i + 1) * img_len,
                        PREFIX + to * img_len,
                    );
                }
                kept.push(e.label);
            }
            Err(why) => skipped.push((e.path.display().to_string(), why.clone())),
        }
    }
    map.flush().map_err(io(&partial))?;
    drop(map);
    let header = Header {
        key: key.to_string(),
        shape: opts.shape,
        classes: classes.to_vec(),
        skipped,
        n_train,
    };
    let json = serde_json::to_vec(&header).expect("the header serializes");
    let pixels_end = (PREFIX + kept.len() * img_len) as u64;
    let json_at = pixels_end + 4 * kept.len() as u64;
    file.set_len(pixels_end).map_err(io(&partial))?;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&partial)
        .map_err(io(&partial))?;
    let labels: Vec<u8> = kept.iter().flat_map(|l| l.to_le_bytes()).collect();
    f.write_all(&labels).map_err(io(&partial))?;
    f.write_all(&json).map_err(io(&partial))?;
    drop(f);
    let checksum = {
        let file = File::open(&partial).map_err(io(&partial))?;
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(io(&partial))?;
        content_hash(&map[PREFIX..])
    };
    let mut prefix = Vec::with_capacity(PREFIX);
    prefix.extend_from_slice(MAGIC);
    for v in [kept.len() as u64, json_at, json.len() as u64, checksum] {
        prefix.extend_from_slice(&v.to_le_bytes());
    }
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(&partial)
        .map_err(io(&partial))?;
    f.write_all(&prefix).map_err(io(&partial))?;
    f.sync_all().map_err(io(&partial))?;
    fs::rename(&partial, path).map_err(io(path))?;
    if !opts.quiet {
        let secs = t0.elapsed().as_secs_f64();
        eprintln!(
            "data: decoded {} images in {secs:.1} s ({:.0} images/s) into {}",
            kept.len(),
            n as f64 / secs.max(1e-9),
            path.display()
        );
    }
    Ok(header)
}

/// The cache's content checksum: XXH3-64 of everything after the prefix (pixels, labels,
/// header). About 0.4 s a GB on first touch from the page cache (README, "Your own images").
pub fn content_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// A cache file mapped into memory, checked whole (length, key, content checksum), with its
/// header and image count; Err(reason) when it must be rebuilt.
pub fn open_cache(
    path: &Path,
    key: &str,
    shape: [i64; 3],
) -> Result<(memmap2::Mmap, Header, usize), String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| e.to_string())?;
    if map.len() < PREFIX || &map[..8] != MAGIC {
        return Err("not a complete vae-tch cache file".into());
    }
    let word =
        |i: usize| u64::from_le_bytes(map[8 + 8 * i..16 + 8 * i].try_into().unwrap()) as usize;
    let (n, json_at, json_len) = (word(0), word(1), word(2));
    let checksum = word(3) as u64;
    let img_len = shape.iter().product::<i64>() as usize;
    // Checked: the counts come from the file.
    let want = n
        .checked_mul(img_len + 4)
        .and_then(|v| v.checked_add(PREFIX));
    let total = want.and_then(|w| w.checked_add(json_len));
    if want != Some(json_at) || total != Some(map.len()) {
        return Err(format!(
            "truncated or damaged ({} bytes, not what its prefix says)",
            map.len()
        ));
    }
    if content_hash(&map[PREFIX..]) != checksum {
        return Err("its content changed on disk since it was written (checksum mismatch)".into());
    }
    let header: Header =
        serde_json::from_slice(&map[json_at..]).map_err(|e| format!("header: {e}"))?;
    if header.key != key || header.shape != shape {
        return Err("made for other files or another size".into());
    }
    Ok((map, header, n))
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
    fs::create_dir_all(&cache_dir).map_err(io(&cache_dir))?;
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
    let part = |start: usize, len: usize| Split {
        images: images.narrow(0, start as i64, len as i64),
        labels: labels.narrow(0, start as i64, len as i64),
        backing: Some(map.clone()),
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
