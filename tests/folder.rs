//! Image folders (`--dataset folder`): a generated folder with two classes, odd sizes and aspect
//! ratios, PNG and JPEG, grey and RGB, and a corrupt file; the uint8 cache (hit, miss after a
//! change, a truncated file rebuilt); and the same tensors and losses as the IDX path.
mod common;

use std::path::Path;

use image::{GrayImage, Luma, Rgb, RgbImage};
use tch::{Kind, Tensor};
use vae_tch::data::folder::{self, FolderOptions, ResizeMode};
use vae_tch::data::DatasetKind;

fn opts(shape: [i64; 3], resize: ResizeMode) -> FolderOptions {
    FolderOptions {
        shape,
        resize,
        test_fraction: 0.25,
        split_seed: 3,
        cache_dir: None,
        quiet: true,
    }
}

/// cats/: 4 RGB PNGs 40x20 (red left half); dogs/: 3 grey JPEGs 15x33 and a grey PNG; and a
/// corrupt "broken.png".
fn make_folder(dir: &Path) {
    for (class, n) in [("cats", 4), ("dogs", 4)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..n {
            if class == "cats" {
                let img = RgbImage::from_fn(40, 20, |x, _| {
                    if x < 20 {
                        Rgb([255, 0, 0])
                    } else {
                        Rgb([0, 0, 200 + i as u8])
                    }
                });
                img.save(dir.join(class).join(format!("{i}.png"))).unwrap();
            } else {
                let img = GrayImage::from_fn(15, 33, |_, y| Luma([if y < 16 { 250 } else { 10 }]));
                let ext = if i == 3 { "png" } else { "jpg" };
                img.save(dir.join(class).join(format!("{i}.{ext}")))
                    .unwrap();
            }
        }
    }
    std::fs::write(dir.join("dogs").join("broken.png"), b"\x89PNG not really").unwrap();
}

#[test]
fn a_folder_of_mixed_images_loads_with_labels_and_skips_the_corrupt_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pets");
    make_folder(&dir);
    let d = folder::load(&dir, &opts([3, 16, 16], ResizeMode::Squash)).unwrap();
    assert_eq!(d.kind, DatasetKind::Folder);
    assert_eq!(d.classes, ["cats", "dogs"]);
    // 8 readable images (the corrupt one skipped): 2 test (0.25), 6 train.
    assert_eq!((d.train.len(), d.test.len()), (6, 2));
    assert_eq!(d.train.images.size(), [6, 3, 16, 16]);
    assert_eq!(d.train.images.kind(), Kind::Uint8);
    let labels = Tensor::cat(&[&d.train.labels, &d.test.labels], 0);
    assert_eq!(
        labels.sum(Kind::Int64).int64_value(&[]),
        4,
        "four dogs (label 1)"
    );
    // A cat squashed to 16x16: red on the left, blue on the right, in RGB channel order.
    let images = Tensor::cat(&[&d.train.images, &d.test.images], 0);
    let cat = (0..8).find(|&i| labels.int64_value(&[i]) == 0).unwrap();
    let px = |c: i64, x: i64| images.int64_value(&[cat, c, 8, x]);
    assert_eq!((px(0, 2), px(1, 2), px(2, 2)), (255, 0, 0));
    assert_eq!((px(0, 13), px(2, 13) >= 200), (0, true));
    // A grey dog has equal RGB channels, bright on top and dark below.
    let dog = (0..8).find(|&i| labels.int64_value(&[i]) == 1).unwrap();
    let g = |c: i64, y: i64| images.int64_value(&[dog, c, y, 8]);
    assert_eq!((g(0, 1), g(1, 1), g(2, 1)), (g(0, 1), g(0, 1), g(0, 1)));
    assert!(g(0, 1) > 200 && g(0, 14) < 40, "{} {}", g(0, 1), g(0, 14));
    // Grey output from colour images: one channel.
    let grey = folder::load(&dir, &opts([1, 8, 8], ResizeMode::Crop)).unwrap();
    assert_eq!(grey.train.images.size(), [6, 1, 8, 8]);
}

#[test]
fn crop_keeps_the_centre_and_squash_keeps_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("one");
    std::fs::create_dir_all(&dir).unwrap();
    // 30x10: black, white, black thirds. Crop to a square keeps the white middle third.
    let img = GrayImage::from_fn(30, 10, |x, _| {
        Luma([if (10..20).contains(&x) { 255 } else { 0 }])
    });
    for i in 0..2 {
        img.save(dir.join(format!("{i}.png"))).unwrap();
    }
    let crop = folder::load(&dir, &opts([1, 6, 6], ResizeMode::Crop)).unwrap();
    assert_eq!(crop.train.images.min().int64_value(&[]), 255);
    let squash = folder::load(&dir, &opts([1, 6, 6], ResizeMode::Squash)).unwrap();
    let row: Vec<i64> = (0..6)
        .map(|x| squash.train.images.int64_value(&[0, 0, 3, x]))
        .collect();
    assert_eq!(row, [0, 0, 255, 255, 0, 0]);
    assert_eq!(
        crop.classes,
        ["one"],
        "no sub-folders: one class named after the folder"
    );
}

fn cache_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir.join(".vae-tch-cache"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn the_cache_is_hit_missed_after_a_change_and_rebuilt_when_truncated() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pets");
    make_folder(&dir);
    let o = opts([3, 16, 16], ResizeMode::Squash);
    let first = folder::load(&dir, &o).unwrap();
    let files = cache_files(&dir);
    assert_eq!(files.len(), 1);
    let stamp = std::fs::metadata(&files[0]).unwrap().modified().unwrap();
    // Hit: the same file, not rewritten, the same bytes.
    let second = folder::load(&dir, &o).unwrap();
    assert_eq!(cache_files(&dir), files);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().modified().unwrap(),
        stamp
    );
    assert!(second.train.images.equal(&first.train.images));
    // Truncated (a crash while writing it, say): rebuilt with the same contents. The mappings
    // are dropped first: truncating a file under a live mapping is a SIGBUS for any reader.
    let want = first.test.images.copy();
    drop((first, second));
    let len = std::fs::metadata(&files[0]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&files[0])
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let rebuilt = folder::load(&dir, &o).unwrap();
    assert_eq!(std::fs::metadata(&files[0]).unwrap().len(), len);
    assert!(rebuilt.test.images.equal(&want));
    // Miss: a new image makes a new key.
    GrayImage::from_pixel(5, 5, Luma([7]))
        .save(dir.join("dogs").join("new.png"))
        .unwrap();
    let third = folder::load(&dir, &o).unwrap();
    assert_eq!(third.train.len() + third.test.len(), 9);
    assert_eq!(cache_files(&dir).len(), 2);
}

#[test]
fn a_cache_whose_bytes_changed_on_disk_is_rebuilt() {
    // Same size, other bytes: 500 in the middle of the pixels, or one near the end (the labels
    // and header). Either must be caught by the checksum and rebuilt to the true contents.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pets");
    make_folder(&dir);
    let o = opts([3, 16, 16], ResizeMode::Squash);
    let first = folder::load(&dir, &o).unwrap();
    let (want_train, want_test) = (first.train.images.copy(), first.test.images.copy());
    let want_split = (first.train.len(), first.test.len());
    drop(first);
    let file = cache_files(&dir)[0].clone();
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    for (at, n) in [(len / 2 - 250, 500), (len - 3, 1)] {
        let mut bytes = std::fs::read(&file).unwrap();
        for b in &mut bytes[at..at + n] {
            *b ^= 0x5a;
        }
        std::fs::write(&file, &bytes).unwrap();
        let d = folder::load(&dir, &o).unwrap();
        assert!(d.train.images.equal(&want_train) && d.test.images.equal(&want_test));
        assert_eq!((d.train.len(), d.test.len()), want_split);
        assert_eq!(std::fs::read(&file).unwrap().len(), len);
        assert_ne!(std::fs::read(&file).unwrap(), bytes, "rebuilt");
    }
}

#[test]
fn symlink_loops_and_unreadable_folders_are_skipped_and_formats_read_from_the_content() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pets");
    make_folder(&dir);
    // A loop back to the top, and a link to a folder that is not there.
    std::os::unix::fs::symlink(&dir, dir.join("cats").join("loop")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("gone"), dir.join("dogs").join("gone")).unwrap();
    // A JPEG saved as .png (common in scraped sets): read by its content.
    let jpeg = dir.join("dogs").join("really-a-jpeg.png");
    GrayImage::from_pixel(9, 9, Luma([128]))
        .save_with_format(&jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    assert_eq!(&std::fs::read(&jpeg).unwrap()[..2], b"\xff\xd8");
    let d = folder::load(&dir, &opts([1, 8, 8], ResizeMode::Squash)).unwrap();
    // 8 readable images plus the JPEG; the corrupt PNG and both links skipped.
    assert_eq!(d.train.len() + d.test.len(), 9);
    assert_eq!(d.classes, ["cats", "dogs"]);
}

#[test]
fn the_folder_path_gives_the_idx_paths_tensors_and_losses() {
    // The fixture: 300 real Fashion-MNIST (else MNIST, else synthetic) images written out as
    // PNG files in class folders (lossless), the folder loaded, and the same splits written
    // back as IDX files; one seed trains both.
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let (images, labels) = fixture_images(300);
    let dir = tmp.path().join("pngs");
    for (i, label) in labels.iter().enumerate() {
        let class = dir.join(format!("class{label}"));
        std::fs::create_dir_all(&class).unwrap();
        let img = GrayImage::from_raw(28, 28, images[i * 784..(i + 1) * 784].to_vec()).unwrap();
        img.save(class.join(format!("{i:03}.png"))).unwrap();
    }
    let mut cfg = common::tiny_config(&dir, 2, 32);
    cfg.data.dataset = DatasetKind::Folder;
    let d = vae_tch::data::open(&cfg, &dir, true).unwrap();
    // Every PNG came back byte for byte (compare as sets of images).
    let n = labels.len() as i64;
    let all = Tensor::cat(&[&d.train.images, &d.test.images], 0).view([n, 784]);
    let want = Tensor::from_slice(&images).view([n, 784]);
    let key = |t: &Tensor| {
        t.to_kind(Kind::Int64)
            .sum_dim_intlist(1, false, None)
            .sort(0, false)
            .0
    };
    assert!(key(&all).equal(&key(&want)));
    let bytes = |t: &Tensor| Vec::<u8>::try_from(&t.contiguous().view(-1)).unwrap();
    let idx_dir = tmp.path().join("idx");
    vae_tch::data::write_dataset(
        &idx_dir,
        (
            &bytes(&d.train.images),
            &bytes(&d.train.labels.to_kind(Kind::Uint8)),
        ),
        (
            &bytes(&d.test.images),
            &bytes(&d.test.labels.to_kind(Kind::Uint8)),
        ),
    )
    .unwrap();
    let run = |config: vae_tch::config::RunConfig, name: &str| {
        common::train_quietly(&tmp.path().join(name), config)
            .runs
            .remove(0)
            .rows
    };
    let from_folder = run(cfg.clone(), "folder-run");
    let mut idx_cfg = common::tiny_config(&idx_dir, 2, 32);
    idx_cfg.data.dataset = DatasetKind::Mnist;
    let from_idx = run(idx_cfg, "idx-run");
    for (a, b) in from_folder.iter().zip(&from_idx) {
        assert_eq!((a.train_loss, a.test_loss), (b.train_loss, b.test_loss));
    }
    let saved = vae_tch::run::checkpoint::read_config(&tmp.path().join("folder-run")).unwrap();
    assert_eq!((saved.data.test_fraction, saved.data.split_seed), (0.1, 42));
}

/// The first `n` training images of data/fashion-mnist, else data/mnist (real images, where
/// setup fetched them), else synthetic ones.
fn fixture_images(n: usize) -> (Vec<u8>, Vec<u8>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    for (kind, name) in [
        (DatasetKind::FashionMnist, "fashion-mnist"),
        (DatasetKind::Mnist, "mnist"),
    ] {
        let dir = root.join(name);
        if let Ok(split) = vae_tch::data::load_split(kind, &dir, vae_tch::data::SplitName::Train) {
            let split = split.limit(Some(n));
            let images = Vec::<u8>::try_from(&split.images.contiguous().view(-1)).unwrap();
            let labels = Vec::<u8>::try_from(&split.labels.to_kind(Kind::Uint8)).unwrap();
            return (images, labels);
        }
    }
    common::synthetic_images(n, 5)
}
