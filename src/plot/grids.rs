//! Figures made of decoded images: the latent manifold (`manifold`), test images above their
//! reconstructions (`reconstruct`), draws from the prior (`sample`) and a walk between two test
//! images' latent means (`interpolate`). Each is an image grid drawn into a chart: a title, and
//! where the grid has coordinates (manifold, interpolation) axes that give them.
use image::RgbImage;
use plotters::coord::Shift;
use plotters::prelude::*;
use tch::{Device, Kind, Tensor};

use super::{blit, tick, DrawResult, Figure, FONT};
use crate::model::Vae;
use crate::util::images::grid;

/// The longest side of a grid figure's image area, in pixels (small grids are scaled up to it).
const TARGET: u32 = 900;

/// Pixels per image pixel: grids grow to about TARGET, by a factor of 1 to 4.
fn scale(img: &RgbImage) -> f64 {
    let (w, h) = img.dimensions();
    (TARGET as f64 / w.max(h).max(1) as f64).clamp(1.0, 4.0)
}

/// Coordinates along one axis of a grid: a tick label per cell.
#[derive(Debug, Clone)]
pub struct Axis {
    pub desc: String,
    pub labels: Vec<String>,
}

pub struct ImageGridFigure {
    pub image: RgbImage,
    pub title: String,
    pub x: Option<Axis>,
    pub y: Option<Axis>,
}

impl Figure for ImageGridFigure {
    fn size(&self) -> (u32, u32) {
        let (w, h) = self.image.dimensions();
        let s = scale(&self.image);
        let left = if self.y.is_some() { 80 } else { 20 };
        let bottom = if self.x.is_some() { 60 } else { 20 };
        (
            (w as f64 * s).round() as u32 + left + 20,
            (h as f64 * s).round() as u32 + bottom + 60,
        )
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let cols = self.x.as_ref().map_or(1, |a| a.labels.len().max(1));
        let rows = self.y.as_ref().map_or(1, |a| a.labels.len().max(1));
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, (FONT, 20))
            .margin(10)
            .x_label_area_size(if self.x.is_some() { 50 } else { 0 })
            .y_label_area_size(if self.y.is_some() { 70 } else { 0 })
            // One segment a cell: labels fall on cell centres (SegmentValue::CenterOf). An
            // integer range holds its end, so 0..n - 1 is n segments (0..n was n + 1, and the
            // labels drifted left of their cells).
            .build_cartesian_2d(
                (0..cols as i32 - 1).into_segmented(),
                (0..rows as i32 - 1).into_segmented(),
            )
            .map_err(e)?;
        blit(chart.plotting_area(), &self.image)?;
        if self.x.is_some() || self.y.is_some() {
            // Every `step`-th cell is labelled on a dense axis. The y axis counts from the
            // bottom row up, as the axis values ascend.
            let label = |axis: &Option<Axis>, v: &SegmentValue<i32>| -> String {
                let (Some(a), SegmentValue::CenterOf(i)) = (axis, v) else {
                    return String::new();
                };
                let step = a.labels.len().div_ceil(12).max(1) as i32;
                if *i < 0 || i % step != 0 {
                    return String::new();
                }
                a.labels.get(*i as usize).cloned().unwrap_or_default()
            };
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(cols)
                .y_labels(rows)
                .x_label_formatter(&|v| label(&self.x, v))
                .y_label_formatter(&|v| label(&self.y, v))
                .x_desc(self.x.as_ref().map_or("", |a| a.desc.as_str()))
                .y_desc(self.y.as_ref().map_or("", |a| a.desc.as_str()))
                .label_style((FONT, 13))
                .axis_desc_style((FONT, 15))
                .draw()
                .map_err(e)?;
        }
        Ok(())
    }
}

/// Where the manifold's grid points lie along each axis.
#[derive(Debug, Clone, Copy, PartialEq, clap::ValueEnum)]
pub enum Spacing {
    /// Normal quantiles of evenly spaced probabilities 0.05..0.95, as the Keras VAE example
    /// and the book do: equal areas of the prior per cell.
    Normal,
    /// Evenly spaced over [-range, range].
    Linear,
}

/// The grid values of one axis.
pub fn axis_values(n: usize, spacing: Spacing, range: f64) -> Vec<f64> {
    let t = Tensor::linspace(0.0, 1.0, n as i64, (Kind::Double, Device::Cpu));
    let v = match spacing {
        Spacing::Normal => (t * 0.9 + 0.05).special_ndtri(),
        Spacing::Linear => (t * 2.0 - 1.0) * range,
    };
    Vec::try_from(&v).expect("double tensor")
}

fn decode(vae: &Vae, z: &Tensor) -> Tensor {
    tch::no_grad(|| vae.decoder.forward(z)).to_device(Device::Cpu)
}

/// An n x n grid of decodes over latent dims 0 and 1 (others at 0): z[1] grows upwards.
pub fn manifold(
    vae: &Vae,
    device: Device,
    n: usize,
    spacing: Spacing,
    range: f64,
) -> ImageGridFigure {
    let v = axis_values(n, spacing, range);
    let d = vae.config.latent_dim;
    let mut z = vec![0f32; n * n * d as usize];
    for (row, &y) in v.iter().rev().enumerate() {
        for (col, &x) in v.iter().enumerate() {
            let k = (row * n + col) * d as usize;
            z[k] = x as f32;
            if d > 1 {
                z[k + 1] = y as f32;
            }
        }
    }
    let z = Tensor::from_slice(&z)
        .view([(n * n) as i64, d])
        .to_device(device);
    let images = decode(vae, &z);
    let spacing_name = match spacing {
        Spacing::Normal => "normal quantiles".to_string(),
        Spacing::Linear => format!("linear, +-{range}"),
    };
    let rest = if d > 2 {
        format!(", other {} dims at 0", d - 2)
    } else {
        String::new()
    };
    let labels: Vec<String> = v.iter().map(|&x| tick(x)).collect();
    ImageGridFigure {
        image: grid(&images, n, 1, 0),
        title: format!("Latent manifold: decodes over z[0], z[1] ({spacing_name}{rest})"),
        x: Some(Axis {
            desc: "z[0]".into(),
            labels: labels.clone(),
        }),
        y: (d > 1).then(|| Axis {
            desc: "z[1]".into(),
            labels,
        }),
    }
}

/// The seed's "Correct / Generated" pairs: test images (top row) above their reconstructions
/// through the latent mean (bottom row).
pub fn reconstruct(vae: &Vae, images: &Tensor) -> ImageGridFigure {
    let n = images.size()[0] as usize;
    let recon = tch::no_grad(|| vae.reconstruct_mean(images)).to_device(Device::Cpu);
    let both = Tensor::cat(&[images.to_device(Device::Cpu), recon], 0);
    ImageGridFigure {
        image: grid(&both, n, 1, 1),
        title: "Test images (top) and their reconstructions (bottom)".into(),
        x: None,
        y: None,
    }
}

/// `n` decodes of z ~ N(0, I), drawn from torch's generator seeded with `seed`.
pub fn sample(vae: &Vae, device: Device, n: usize, seed: u64) -> ImageGridFigure {
    tch::manual_seed(seed as i64);
    let z = Tensor::randn(
        [n as i64, vae.config.latent_dim],
        (Kind::Float, Device::Cpu),
    )
    .to_device(device);
    let cols = (n as f64).sqrt().ceil() as usize;
    ImageGridFigure {
        image: grid(&decode(vae, &z), cols, 1, 1),
        title: format!("{n} samples: decodes of z ~ N(0, I) (seed {seed})"),
        x: None,
        y: None,
    }
}

/// Decodes along the line from `a`'s latent mean to `b`'s in `steps` points, between the two
/// images themselves.
pub fn interpolate(
    vae: &Vae,
    a: &Tensor,
    b: &Tensor,
    steps: usize,
    names: (usize, usize),
) -> ImageGridFigure {
    let (mu, _) = tch::no_grad(|| vae.encoder.forward(&Tensor::cat(&[a, b], 0)));
    let t = Tensor::linspace(0.0, 1.0, steps as i64, (Kind::Float, mu.device())).unsqueeze(1);
    let z = mu.get(0).unsqueeze(0) * (1.0 - &t) + mu.get(1).unsqueeze(0) * &t;
    let strip = Tensor::cat(
        &[
            a.to_device(Device::Cpu),
            decode(vae, &z),
            b.to_device(Device::Cpu),
        ],
        0,
    );
    let ts: Vec<f64> =
        Vec::try_from(&t.to_kind(Kind::Double).view(-1).to_device(Device::Cpu)).expect("double");
    let labels = std::iter::once(format!("#{}", names.0))
        .chain(ts.iter().map(|&t| format!("{t:.2}")))
        .chain(std::iter::once(format!("#{}", names.1)))
        .collect();
    ImageGridFigure {
        image: grid(&strip, steps + 2, 1, 1),
        title: format!(
            "Test image #{} to #{}: decodes along the line between their latent means",
            names.0, names.1
        ),
        x: Some(Axis {
            desc: "t (z = (1 - t) mu_a + t mu_b); the ends are the test images".into(),
            labels,
        }),
        y: None,
    }
}
