//! The book's faces figures (Foster, ch. 3; the notebook 03_06_vae_faces_analysis):
//! - face arithmetic: a row per face, its original then the decodes of z + factor * vector
//!   (`arithmetic`);
//! - morphing: the start image, the decodes between the two latent points, the end image
//!   (`morph`);
//! - the latent distribution: a histogram per latent dimension under the N(0, 1) density
//!   (`latent_histograms`).
use plotters::coord::Shift;
use plotters::prelude::*;
use tch::{Device, Tensor};

use super::grids::{Axis, ImageGridFigure};
use super::panels::PanelGrid;
use super::{tick, DrawResult, Figure, FONT, PALETTE};
use crate::analysis::faces::{normal_pdf, Histogram};
use crate::util::images::grid;

/// Originals `[n, C, H, W]` and their decodes `[n * F, C, H, W]` (face by face, as
/// analysis::faces::arithmetic orders them): a row per face, the original first.
pub fn arithmetic(
    originals: &Tensor,
    decodes: &Tensor,
    factors: &[f64],
    title: String,
) -> ImageGridFigure {
    let n = originals.size()[0];
    let f = factors.len() as i64;
    let rows: Vec<Tensor> = (0..n)
        .map(|i| {
            Tensor::cat(
                &[
                    originals.narrow(0, i, 1).to_device(Device::Cpu),
                    decodes.narrow(0, i * f, f).to_device(Device::Cpu),
                ],
                0,
            )
        })
        .collect();
    let labels = std::iter::once("original".to_string())
        .chain(factors.iter().map(|&x| factor_label(x)))
        .collect();
    ImageGridFigure {
        image: grid(&Tensor::cat(&rows, 0), factors.len() + 1, 1, 1),
        title,
        x: Some(Axis {
            desc: "factor (the original, then decodes of z + factor x vector; 0 is the reconstruction)"
                .into(),
            labels,
        }),
        y: None,
    }
}

fn factor_label(x: f64) -> String {
    if x == x.round() {
        format!("{x:+.0}").replace("+0", "0")
    } else {
        format!("{x:+.2}")
    }
}

/// The start image, the decodes at `fractions`, the end image, in one row.
pub fn morph(
    start: &Tensor,
    decodes: &Tensor,
    end: &Tensor,
    fractions: &[f64],
    title: String,
) -> ImageGridFigure {
    let strip = Tensor::cat(
        &[
            start.to_device(Device::Cpu),
            decodes.to_device(Device::Cpu),
            end.to_device(Device::Cpu),
        ],
        0,
    );
    let labels = std::iter::once("start".to_string())
        .chain(fractions.iter().map(|f| format!("{f:.2}")))
        .chain(std::iter::once("end".to_string()))
        .collect();
    ImageGridFigure {
        image: grid(&strip, fractions.len() + 2, 1, 1),
        title,
        x: Some(Axis {
            desc: "f (decodes of z = (1 - f) z_start + f z_end); the ends are the images".into(),
            labels,
        }),
        y: None,
    }
}

/// One dimension's histogram (density) under the N(0, 1) density.
pub struct HistogramPanel {
    pub hist: Histogram,
}

impl Figure for HistogramPanel {
    fn size(&self) -> (u32, u32) {
        (190, 150)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let h = &self.hist;
        let density = h.density();
        let lo = h.edges[0].min(-3.0);
        let hi = h.edges[h.edges.len() - 1].max(3.0);
        let top = density.iter().copied().fold(normal_pdf(0.0), f64::max) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(format!("z[{}]", h.dim), (FONT, 13))
            .margin(4)
            .x_label_area_size(18)
            .y_label_area_size(0)
            .build_cartesian_2d(lo..hi, 0.0..top)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .disable_y_axis()
            .x_labels(3)
            .x_label_formatter(&|v| tick(*v))
            .label_style((FONT, 10))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(density.iter().zip(h.edges.windows(2)).map(|(&d, w)| {
                Rectangle::new([(w[0], 0.0), (w[1], d)], PALETTE[0].mix(0.7).filled())
            }))
            .map_err(e)?;
        let curve = (0..=100).map(|i| {
            let x = lo + (hi - lo) * i as f64 / 100.0;
            (x, normal_pdf(x))
        });
        chart
            .draw_series(LineSeries::new(curve, PALETTE[1].stroke_width(2)))
            .map_err(e)?;
        Ok(())
    }
}

/// The histograms, ten to a row, under one title.
pub fn latent_histograms(hists: Vec<Histogram>, title: String) -> PanelGrid<HistogramPanel> {
    let panels: Vec<HistogramPanel> = hists
        .into_iter()
        .map(|hist| HistogramPanel { hist })
        .collect();
    let cols = panels.len().clamp(1, 10);
    PanelGrid {
        panels,
        cols,
        title,
    }
}
