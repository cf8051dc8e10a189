//! Finding an image folder's files: every PNG and JPEG under it (sorted, hidden folders such as
//! the cache skipped), the class of each from its first sub-folder, and what could not be read
//! (skipped and listed, never an error but for the folder itself). Symlinks are followed; a link
//! back to a folder already read is a loop, and skipped.
use std::collections::HashSet;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use crate::data::dataset::DataError;

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// One image file found.
#[derive(Debug)]
pub struct Entry {
    pub path: PathBuf,
    /// Index into the class list.
    pub label: u32,
    pub size: u64,
    pub mtime: u128,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// What `scan` found.
pub struct Scan {
    pub entries: Vec<Entry>,
    /// The sub-folder names, or the folder's own name when it has none.
    pub classes: Vec<String>,
    /// Folders and files that could not be read, and links into a folder already read (loops):
    /// (path, reason). They are skipped.
    pub unreadable: Vec<(String, String)>,
}

/// Every image file under `dir` (sorted by path; hidden folders such as the cache skipped),
/// with the class list; what cannot be read is skipped and listed, not an error (except `dir`
/// itself).
pub fn scan(dir: &Path) -> Result<Scan, DataError> {
    if !dir.is_dir() {
        return Err(DataError::NotAFolder(dir.to_path_buf()));
    }
    let mut files = Vec::new();
    let mut unreadable = Vec::new();
    // Folders by (device, inode): a symlink back to a folder already walked is a loop.
    let mut seen = HashSet::new();
    let root = fs::metadata(dir).map_err(DataError::io(dir))?;
    seen.insert((root.dev(), root.ino()));
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let listing = match fs::read_dir(&d) {
            Ok(listing) => listing,
            Err(e) if d != dir => {
                unreadable.push((d.display().to_string(), e.to_string()));
                continue;
            }
            Err(e) => return Err(DataError::io(&d)(e)),
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
