//! The decoded cache file of an image folder: `<key>.vaecache`, built in parallel into a
//! temporary file and renamed, memory-mapped by every later run. Layout: "VAETCHC2", then u64
//! little-endian n, json offset, json length, and the XXH3-64 checksum of everything after the
//! prefix (40 bytes); n * c * h * w pixel bytes (NCHW); n u32 labels; a JSON header (key, shape,
//! classes, files skipped). The prefix is written last. Opening checks the length, the key and
//! the checksum, so a cache whose bytes changed on disk is rebuilt, with a message.
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::decode::decode;
use super::options::FolderOptions;
use super::scan::Entry;
use crate::data::dataset::DataError;

const MAGIC: &[u8; 8] = b"VAETCHC2";
pub const PREFIX: usize = 40;

#[derive(Debug, Serialize, Deserialize)]
/// The JSON header at the end of a cache file.
pub struct Header {
    key: String,
    shape: [i64; 3],
    pub classes: Vec<String>,
    /// Files that could not be decoded: (path, reason).
    pub skipped: Vec<(String, String)>,
    /// The first `n_train` images are the training split, the rest the test split.
    pub n_train: usize,
    /// Each image's file, in the cache's order (to join a table of attributes by file name).
    #[serde(default)]
    pub files: Vec<String>,
}

/// Decodes every entry into the cache file at `path` (via `path.partial`); returns the header.
pub fn build_cache(
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
        .map_err(DataError::io(&partial))?;
    file.set_len((PREFIX + n * img_len) as u64)
        .map_err(DataError::io(&partial))?;
    let mut map = unsafe { memmap2::MmapMut::map_mut(&file) }.map_err(DataError::io(&partial))?;
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
    let mut files = Vec::with_capacity(n);
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
                files.push(e.path.display().to_string());
            }
            Err(why) => skipped.push((e.path.display().to_string(), why.clone())),
        }
    }
    map.flush().map_err(DataError::io(&partial))?;
    drop(map);
    let header = Header {
        key: key.to_string(),
        shape: opts.shape,
        classes: classes.to_vec(),
        skipped,
        n_train,
        files,
    };
    let json = serde_json::to_vec(&header).expect("the header serializes");
    let pixels_end = (PREFIX + kept.len() * img_len) as u64;
    let json_at = pixels_end + 4 * kept.len() as u64;
    file.set_len(pixels_end).map_err(DataError::io(&partial))?;
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(&partial)
        .map_err(DataError::io(&partial))?;
    let labels: Vec<u8> = kept.iter().flat_map(|l| l.to_le_bytes()).collect();
    f.write_all(&labels).map_err(DataError::io(&partial))?;
    f.write_all(&json).map_err(DataError::io(&partial))?;
    drop(f);
    let checksum = {
        let file = File::open(&partial).map_err(DataError::io(&partial))?;
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(DataError::io(&partial))?;
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
        .map_err(DataError::io(&partial))?;
    f.write_all(&prefix).map_err(DataError::io(&partial))?;
    f.sync_all().map_err(DataError::io(&partial))?;
    fs::rename(&partial, path).map_err(DataError::io(path))?;
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
    if header.files.len() != n {
        return Err("made by an older vae-tch (no list of its files)".into());
    }
    Ok((map, header, n))
}
