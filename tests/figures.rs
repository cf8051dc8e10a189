//! Every figure command on a tiny synthetic run: the PNG decodes, has the figure's size, is not
//! blank, and the latent scatter shows each class's colour.
mod common;

use std::path::{Path, PathBuf};

use image::RgbImage;
use tch::Device;
use vae_tch::data::SplitName;
use vae_tch::plot::grids::Spacing;
use vae_tch::plot::latent::{LatentFigure, LEGEND_WIDTH};
use vae_tch::plot::run as figures;
use vae_tch::plot::{Format, PALETTE};
use vae_tch::run::data::RunData;

/// A 2-epoch run on 40 synthetic images (4 of each label) and 30 test images.
fn tiny_run(dir: &Path, latent: i64) -> PathBuf {
    common::train_tiny_run(dir, 40, 30, 2, latent)
}

/// The run's data on the CPU, where its config says.
fn cpu(run: &Path) -> RunData<'_> {
    RunData {
        run,
        data_dir: None,
        device: Device::Cpu,
        checkpoint: vae_tch::run::checkpoint::Pick::Last,
    }
}

fn open(path: &Path) -> RgbImage {
    image::open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .to_rgb8()
}

/// Not blank: many distinct grey levels or colours, and both dark and light pixels.
fn assert_not_blank(img: &RgbImage, what: &str) {
    let mut seen = std::collections::HashSet::new();
    for p in img.pixels() {
        seen.insert(p.0);
    }
    assert!(
        seen.len() > 20,
        "{what}: only {} distinct colours",
        seen.len()
    );
    let lum: Vec<u32> = img
        .pixels()
        .map(|p| p.0.iter().map(|&c| c as u32).sum())
        .collect();
    assert!(
        lum.iter().any(|&l| l < 150) && lum.iter().any(|&l| l > 600),
        "{what}: no contrast"
    );
}

#[test]
fn every_figure_command_writes_a_readable_png() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let src = cpu(&run);
    let written = [
        (
            "loss",
            figures::plot_loss(&run, None, false, Format::Png).unwrap(),
            (1500, 480),
        ),
        (
            "loss --log",
            figures::plot_loss(&run, Some(&tmp.path().join("log.png")), true, Format::Png).unwrap(),
            (1500, 480),
        ),
        (
            "latent",
            figures::latent_plot(&src, SplitName::Test, None, None, Format::Png).unwrap(),
            (900 + LEGEND_WIDTH, 800),
        ),
        (
            "manifold",
            figures::manifold(&src, 8, Spacing::Normal, 3.0, None).unwrap(),
            (0, 0),
        ),
        (
            "manifold linear",
            figures::manifold(
                &src,
                5,
                Spacing::Linear,
                2.0,
                Some(&tmp.path().join("m.png")),
            )
            .unwrap(),
            (0, 0),
        ),
        (
            "reconstruct",
            figures::reconstruct(&src, 6, None).unwrap(),
            (0, 0),
        ),
        ("sample", figures::sample(&src, 9, 1, None).unwrap(), (0, 0)),
        (
            "interpolate",
            figures::interpolate(&src, 0, 3, 5, None).unwrap(),
            (0, 0),
        ),
    ];
    for (what, path, size) in &written {
        assert!(
            path.starts_with(&run) || path.starts_with(tmp.path()),
            "{what}: {}",
            path.display()
        );
        let img = open(path);
        if *size != (0, 0) {
            assert_eq!(img.dimensions(), *size, "{what}");
        }
        assert!(
            img.width() >= 300 && img.height() >= 150,
            "{what}: {:?}",
            img.dimensions()
        );
        assert_not_blank(&img, what);
    }
    for name in [
        "loss.png",
        "latent.png",
        "manifold.png",
        "reconstructions.png",
        "samples.png",
        "interpolate-0-3.png",
    ] {
        assert!(run.join(name).is_file(), "{name} not in the run folder");
    }
    // Grid sizes follow the grid: 8 x 8 cells are square, a 1 x 7 strip is wide.
    let m = open(&run.join("manifold.png"));
    assert!(
        (m.width() as i64 - m.height() as i64).abs() < 60,
        "{:?}",
        m.dimensions()
    );
    let s = open(&run.join("interpolate-0-3.png"));
    assert!(s.width() > 3 * s.height(), "{:?}", s.dimensions());
}

#[test]
fn latent_scatter_shows_every_class_colour() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let src = cpu(&run);
    let path = figures::latent_plot(&src, SplitName::Train, None, None, Format::Png).unwrap();
    let img = open(&path);
    // Only the scatter panel, left of the legend: each label's points are there in its colour.
    let scatter_w = img.width() - LEGEND_WIDTH;
    for (label, colour) in PALETTE.iter().enumerate() {
        let n = img
            .enumerate_pixels()
            .filter(|(x, _, p)| *x < scatter_w && p.0 == [colour.0, colour.1, colour.2])
            .count();
        assert!(
            n >= 5,
            "label {label}: {n} pixels of its colour in the scatter"
        );
    }
}

#[test]
fn latent_above_two_dims_is_a_pca_projection() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 4);
    let src = cpu(&run);
    let loaded = src.model().unwrap();
    let split = src.split(&loaded, SplitName::Test).unwrap();
    let z = vae_tch::plot::latent::latent_means(&loaded.vae, &split.images_f32(Device::Cpu));
    assert_eq!(z.size(), [30, 4]);
    let fig = LatentFigure::new(
        &z,
        &split.labels,
        &loaded
            .config
            .data
            .dataset
            .class_names()
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "test",
    );
    assert!(fig.title.contains("PCA of the 4-D latent"), "{}", fig.title);
    assert_eq!((fig.x_desc.as_str(), fig.y_desc.as_str()), ("PC 1", "PC 2"));
    assert_eq!(fig.points.len(), 30);
    // The projection keeps the spread: PC 1 has the largest variance of any direction.
    let (p, explained) = vae_tch::plot::latent::pca_2d(&z);
    assert!(explained > 0.0 && explained <= 1.0 + 1e-9);
    let var = |t: &tch::Tensor| t.var(true).double_value(&[]);
    for d in 0..4 {
        assert!(
            var(&p.select(1, 0)) + 1e-9 >= var(&z.select(1, d).to_kind(tch::Kind::Double)),
            "dim {d}"
        );
    }
    // SVG works too, with its text as text.
    let svg = figures::latent_plot(
        &src,
        SplitName::Test,
        Some(10),
        Some(&tmp.path().join("l.svg")),
        Format::Svg,
    )
    .unwrap();
    let text = std::fs::read_to_string(svg).unwrap();
    assert!(
        text.starts_with("<svg") && text.contains("PCA"),
        "{}",
        &text[..200.min(text.len())]
    );
}

#[test]
fn bad_figure_requests_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tiny_run(tmp.path(), 2);
    let src = cpu(&run);
    let err = figures::interpolate(&src, 0, 99, 5, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--to 99") && err.contains("30 images"),
        "{err}"
    );
    let err = figures::manifold(&src, 1, Spacing::Normal, 3.0, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--n 1"), "{err}");
    let moved = RunData {
        run: &run,
        data_dir: Some(&tmp.path().join("gone")),
        device: Device::Cpu,
        checkpoint: vae_tch::run::checkpoint::Pick::Last,
    };
    let err = format!("{:#}", figures::reconstruct(&moved, 4, None).unwrap_err());
    assert!(err.contains("--data-dir") && err.contains("gone"), "{err}");
    let err = format!(
        "{:#}",
        figures::plot_loss(&tmp.path().join("none"), None, false, Format::Png).unwrap_err()
    );
    assert!(err.contains("none is not a vae-tch run folder"), "{err}");
}
