//! IDX files (the MNIST container, <http://yann.lecun.com/exdb/mnist/>): a big-endian magic
//! `0x00 0x00 0x08 ndim` (type 0x08 = unsigned byte), `ndim` u32 sizes, then the bytes.
//! Reads raw and gzip'd files (detected by the gzip magic, not the name) and checks every field,
//! so a bad file is an error naming the file and what is wrong, never a panic.
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// The cap on one file's decoded size: far above MNIST's 47 MB, far below a corrupt header's 16 EB.
const MAX_BYTES: u64 = 1 << 31;

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(
        "{path}: not an IDX file of bytes (magic {magic:02x?}, expected [00, 00, 08, {ndim:02x}])"
    )]
    BadMagic {
        path: PathBuf,
        magic: [u8; 4],
        ndim: u8,
    },
    #[error("{path}: dimensions {dims:?}, expected {expected}")]
    BadDims {
        path: PathBuf,
        dims: Vec<u32>,
        expected: String,
    },
    #[error("{path}: header promises {expected} bytes of data, the file holds {actual}")]
    Truncated {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("{path}: {what}")]
    NotAFile { path: PathBuf, what: &'static str },
    #[error("{path}: {actual} bytes of data after the header, expected {expected}")]
    TrailingBytes {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },
}

/// An IDX array of bytes: its sizes and its data in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<u32>,
    pub data: Vec<u8>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IdxError + '_ {
    move |cause| IdxError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// Reads an IDX file of `ndim` dimensions, gzip'd (one or more members) or raw.
pub fn read(path: &Path, ndim: u8) -> Result<IdxArray, IdxError> {
    read_first(path, ndim, None)
}

/// The same, reading only the first `limit` items (along the first dimension) when given: the
/// rest of the file is neither read nor checked.
pub fn read_first(path: &Path, ndim: u8, limit: Option<u64>) -> Result<IdxArray, IdxError> {
    let meta = std::fs::metadata(path).map_err(io_err(path))?;
    let not_a_file = |what| IdxError::NotAFile {
        path: path.to_path_buf(),
        what,
    };
    if meta.is_dir() {
        return Err(not_a_file("is a folder, not an IDX file"));
    }
    if meta.len() == 0 {
        return Err(not_a_file("is empty (0 bytes), not an IDX file"));
    }
    let mut file = BufReader::new(File::open(path).map_err(io_err(path))?);
    let mut head = [0u8; 2];
    let n = read_up_to(&mut file, &mut head).map_err(io_err(path))?;
    let chained = std::io::Cursor::new(head[..n].to_vec()).chain(file);
    if n == 2 && head == [0x1f, 0x8b] {
        parse(path, MultiGzDecoder::new(chained), ndim, limit)
    } else {
        parse(path, chained, ndim, limit)
    }
}

fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..])? {
            0 => break,
            k => filled += k,
        }
    }
    Ok(filled)
}

fn parse(
    path: &Path,
    mut r: impl Read,
    ndim: u8,
    limit: Option<u64>,
) -> Result<IdxArray, IdxError> {
    let truncated = |actual: u64, expected: u64| IdxError::Truncated {
        path: path.to_path_buf(),
        expected,
        actual,
    };
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut r, &mut magic).map_err(io_err(path))?;
    if got < 4 {
        return Err(truncated(got as u64, 4));
    }
    if magic != [0, 0, 0x08, ndim] {
        return Err(IdxError::BadMagic {
            path: path.to_path_buf(),
            magic,
            ndim,
        });
    }
    let mut dims = Vec::with_capacity(ndim as usize);
    for _ in 0..ndim {
        let mut b = [0u8; 4];
        let got = read_up_to(&mut r, &mut b).map_err(io_err(path))?;
        if got < 4 {
            return Err(truncated(got as u64, 4));
        }
        dims.push(u32::from_be_bytes(b));
    }
    let total: u64 = dims.iter().map(|&d| d as u64).product();
    if total > MAX_BYTES {
        return Err(IdxError::BadDims {
            path: path.to_path_buf(),
            dims,
            expected: format!("at most {MAX_BYTES} bytes in all"),
        });
    }
    // Only the items asked for; the header's count is not trusted for any reservation: the
    // buffer grows with what the stream really holds.
    let item: u64 = dims.iter().skip(1).map(|&d| d as u64).product();
    let take = match limit {
        Some(l) if ndim > 0 && l < dims[0] as u64 => l,
        _ => dims.first().map_or(1, |&d| d as u64),
    };
    let expected = take * item;
    let mut data = Vec::new();
    (&mut r)
        .take(expected)
        .read_to_end(&mut data)
        .map_err(io_err(path))?;
    if (data.len() as u64) < expected {
        return Err(truncated(data.len() as u64, expected));
    }
    if expected < total {
        let mut dims = dims;
        dims[0] = take as u32;
        return Ok(IdxArray { dims, data });
    }
    // Anything after the data is counted without keeping it.
    let rest = std::io::copy(&mut r, &mut std::io::sink()).map_err(io_err(path))?;
    if rest > 0 {
        return Err(IdxError::TrailingBytes {
            path: path.to_path_buf(),
            expected,
            actual: expected + rest,
        });
    }
    Ok(IdxArray { dims, data })
}

/// Reads an image file `[n, rows, cols]` (the first `limit` images when given) and checks the
/// image size.
pub fn read_images(
    path: &Path,
    rows: u32,
    cols: u32,
    limit: Option<u64>,
) -> Result<IdxArray, IdxError> {
    let a = read_first(path, 3, limit)?;
    if a.dims[1] != rows || a.dims[2] != cols {
        return Err(IdxError::BadDims {
            path: path.to_path_buf(),
            dims: a.dims,
            expected: format!("[n, {rows}, {cols}]"),
        });
    }
    Ok(a)
}

/// Reads a label file `[n]` (the first `limit` labels when given) and checks that every label
/// is below `classes`.
pub fn read_labels(path: &Path, classes: u8, limit: Option<u64>) -> Result<IdxArray, IdxError> {
    let a = read_first(path, 1, limit)?;
    if let Some(bad) = a.data.iter().find(|&&l| l >= classes) {
        return Err(IdxError::BadDims {
            path: path.to_path_buf(),
            dims: a.dims,
            expected: format!("labels below {classes}, found {bad}"),
        });
    }
    Ok(a)
}

/// Encodes an IDX array of bytes (raw, not gzip'd).
pub fn encode(dims: &[u32], data: &[u8]) -> Vec<u8> {
    assert_eq!(
        dims.iter().map(|&d| d as usize).product::<usize>(),
        data.len()
    );
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

/// Gzip-compresses bytes (the official files are gzip'd IDX).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
