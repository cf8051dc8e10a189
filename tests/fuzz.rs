//! Property fuzzing on the stable toolchain (cargo-fuzz needs nightly): every reader of user
//! files gets mutated real files (bytes flipped, runs overwritten, truncated, cut out,
//! duplicated) and must answer Ok or Err, never panic. Seeded and deterministic. CI runs
//! VAE_TCH_FUZZ_CASES cases per target (2,000 by default); scripts/fuzz.sh runs 100,000.
//! Targets: the IDX reader, the config loader, the checkpoint loader, the Keras HDF5 importer
//! (seeded with tests/fixtures/*.h5 from scripts/fuzz_fixtures.py), the image-folder decoder
//! (PNG, JPEG, grey), the image-folder cache reader, and the TensorBoard event reader (alone,
//! and as `train --resume` meets a damaged file of the run's).
mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use vae_tch::config::RunConfig;

fn cases() -> usize {
    std::env::var("VAE_TCH_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000)
}

/// SplitMix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of `seed`: 1 to 3 edits of the kinds above.
fn mutate(seed: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(3) {
        if b.is_empty() {
            b.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(b.len());
        match rng.below(6) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = rng.next() as u8,
            2 => {
                let n = 1 + rng.below(8).min(b.len() - at - 1);
                for v in &mut b[at..at + n] {
                    *v = [0, 0xff, 0x7f, 0x80][rng.below(4)];
                }
            }
            3 => b.truncate(at),
            4 => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                b.drain(at..end);
            }
            _ => {
                let end = (at + 1 + rng.below(64)).min(b.len());
                let chunk = b[at..end].to_vec();
                b.splice(at..at, chunk);
            }
        }
    }
    b
}

/// Runs `cases()` mutations of `seed` through `read` (given a path holding them); fails on a
/// panic. Returns how many were accepted (Ok).
fn fuzz(name: &str, seed: &[u8], file: &str, mut read: impl FnMut(&Path) -> bool) -> usize {
    let n = cases();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join(file);
    let mut rng = Rng(0x5eed ^ name.len() as u64);
    let mut ok = 0;
    for i in 0..n {
        let bytes = mutate(seed, &mut rng);
        std::fs::write(&path, &bytes).unwrap();
        match catch_unwind(AssertUnwindSafe(|| read(&path))) {
            Ok(accepted) => ok += accepted as usize,
            Err(_) => {
                let keep = tmp.path().join(format!("{name}-crash-{i}"));
                std::fs::copy(&path, &keep).unwrap();
                let _ = tmp.keep();
                panic!(
                    "{name}: case {i} panicked; input kept at {}",
                    keep.display()
                );
            }
        }
    }
    eprintln!(
        "fuzz {name}: {n} cases, {ok} accepted, {} refused, no panic",
        n - ok
    );
    ok
}

#[test]
fn the_idx_reader_never_panics() {
    let (images, _) = common::synthetic_images(3, 1);
    let raw = vae_tch::data::idx::encode(&[3, 28, 28], &images);
    fuzz("idx", &raw, "x-idx3-ubyte", |p| {
        vae_tch::data::idx::read_images(p, 28, 28, None).is_ok()
    });
    fuzz(
        "idx-gz",
        &vae_tch::data::idx::gzip(&raw),
        "x-idx3-ubyte.gz",
        |p| vae_tch::data::idx::read_images(p, 28, 28, Some(2)).is_ok(),
    );
    let labels = vae_tch::data::idx::encode(&[5], &[1, 2, 3, 4, 9]);
    fuzz("idx-labels", &labels, "l-idx1-ubyte", |p| {
        vae_tch::data::idx::read_labels(p, 10, None).is_ok()
    });
}

#[test]
fn the_config_loader_never_panics() {
    let mut cfg = RunConfig::default();
    cfg.model.use_batch_norm = true;
    cfg.data.train_limit = Some(100);
    let text = cfg.to_toml();
    fuzz("config", text.as_bytes(), "config.toml", |p| {
        match RunConfig::load(p) {
            // A config that loads describes a model whose sizes are checked: estimating them
            // must not overflow or panic either.
            Ok(c) => c.model.param_estimate() > 0 && c.model.largest_activation() > 0,
            Err(_) => false,
        }
    });
}

#[test]
fn the_checkpoint_loader_never_panics() {
    // train_tiny_run takes common::rng_lock itself; no other test here seeds torch.
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 8, 4, 1, 2);
    let ckpt = run.join("checkpoint");
    // The state file, the weights and the optimizer state, each mutated in place; loaded the
    // way `train --resume` loads them: the checkpoint read, then the model and Adam built from it.
    let config = vae_tch::run::checkpoint::read_config(&run).unwrap();
    for file in ["state.toml", "model.safetensors", "optimizer.safetensors"] {
        let seed = std::fs::read(ckpt.join(file)).unwrap();
        let target = ckpt.join(file);
        fuzz(file, &seed, file, |p| {
            std::fs::copy(p, &target).unwrap();
            let Ok(saved) = vae_tch::run::checkpoint::saved(&run) else {
                return false;
            };
            vae_tch::train::models::build(
                &[&config],
                vec![Some(saved)],
                vae_tch::train::models::Form::Solo,
                tch::Device::Cpu,
                vae_tch::model::Layout::default(),
                None,
            )
            .is_ok()
        });
        std::fs::write(&target, &seed).unwrap();
    }
}

#[test]
fn the_keras_importer_never_panics() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cfg = RunConfig::default();
    for (file, name) in [
        ("tiny.weights.h5", "keras3"),
        ("tiny-legacy.h5", "keras-legacy"),
    ] {
        let seed = std::fs::read(fixtures.join(file)).unwrap();
        fuzz(name, &seed, file, |p| {
            vae_tch::interop::keras_import::read_keras_weights(p, &cfg).is_ok()
        });
    }
}

#[test]
fn the_image_folder_decoder_never_panics() {
    // The path every file of an image folder takes: the format from the content, then the
    // decoder and the resize, grey and RGB, squash and crop.
    use vae_tch::data::folder::{decode, ResizeMode};
    let tmp = tempfile::tempdir().unwrap();
    let rgb = image::RgbImage::from_fn(13, 9, |x, y| image::Rgb([x as u8 * 19, y as u8 * 27, 90]));
    let mut seeds = Vec::new();
    for (fmt, file) in [
        (image::ImageFormat::Png, "seed.png"),
        (image::ImageFormat::Jpeg, "seed.jpg"),
    ] {
        let p = tmp.path().join(file);
        rgb.save_with_format(&p, fmt).unwrap();
        seeds.push((file, std::fs::read(&p).unwrap()));
    }
    let grey = tmp.path().join("grey.png");
    image::GrayImage::from_fn(7, 11, |x, y| image::Luma([(x * y) as u8]))
        .save(&grey)
        .unwrap();
    seeds.push(("grey.png", std::fs::read(&grey).unwrap()));
    for (i, (file, seed)) in seeds.iter().enumerate() {
        let (shape, resize) = if i % 2 == 0 {
            ([3, 8, 8], ResizeMode::Squash)
        } else {
            ([1, 6, 10], ResizeMode::Crop)
        };
        let name = format!("image-{file}");
        fuzz(&name, seed, file, |p| match decode(p, shape, resize) {
            Ok(px) => px.len() == shape.iter().product::<i64>() as usize,
            Err(_) => false,
        });
    }
}

#[test]
fn the_image_cache_reader_never_panics() {
    use vae_tch::data::folder::{self, FolderOptions, ResizeMode};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("imgs");
    std::fs::create_dir_all(dir.join("a")).unwrap();
    for i in 0..4u8 {
        image::GrayImage::from_pixel(5, 5, image::Luma([i * 40]))
            .save(dir.join("a").join(format!("{i}.png")))
            .unwrap();
    }
    let shape = [1, 4, 4];
    let opts = FolderOptions {
        shape,
        resize: ResizeMode::Squash,
        test_fraction: 0.25,
        split_seed: 1,
        cache_dir: Some(tmp.path().join("cache")),
        quiet: true,
    };
    drop(folder::load(&dir, &opts).unwrap());
    let cached = std::fs::read_dir(tmp.path().join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let key = cached.file_stem().unwrap().to_string_lossy().into_owned();
    let seed = std::fs::read(&cached).unwrap();
    // Counted as accepted: a mutation that changed the bytes and still opened. (A mutation may
    // write a byte's own value back and change nothing.)
    let changed_and_opened = fuzz("image-cache", &seed, "c.vaecache", |p| {
        folder::open_cache(p, &key, shape).is_ok() && std::fs::read(p).unwrap() != seed
    });
    assert_eq!(changed_and_opened, 0, "a changed cache file was accepted");
}

#[test]
fn the_event_file_reader_never_panics() {
    use vae_tch::run::tensorboard::{read_events, EventWriter, TENSORBOARD_DIR};
    // A real file of the run's: the file version, the config text, scalars of two epochs,
    // the running loss and an image (what a tiny run writes).
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 16, 8, 2, 2);
    let dir = run.join(TENSORBOARD_DIR);
    let seed_path = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let seed = std::fs::read(&seed_path).unwrap();
    let events = read_events(&seed);
    assert!(events.damage.is_none() && events.events.len() > 4);
    let name = seed_path.file_name().unwrap().to_owned();
    fuzz("events", &seed, "events.out.tfevents.x", |p| {
        let bytes = std::fs::read(p).unwrap();
        let clean = read_events(&bytes).damage.is_none();
        // As a resumed run finds it: set aside when damaged, cut to the checkpoint's step.
        std::fs::write(dir.join(&name), &bytes).unwrap();
        let w = EventWriter::create(&run, Some(4));
        if let Ok(w) = &w {
            std::fs::remove_file(w.path()).unwrap();
        }
        let _ = std::fs::remove_dir_all(run.join("tensorboard.damaged"));
        clean && w.is_ok()
    });
}
