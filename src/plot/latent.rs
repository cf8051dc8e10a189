//! `vae-tch latent-plot`: the latent means of a split's images as a scatter coloured by label,
//! with a legend of class names. A latent space above 2-D is projected on its first two
//! principal components (the title says so and gives the variance they explain).
use plotters::coord::Shift;
use plotters::prelude::*;
use tch::{Device, Kind, Tensor};

use super::{tick, DrawResult, Figure, FONT, PALETTE};
use crate::data::batch;
use crate::model::Vae;
use crate::train::inference_batch;

/// Width of the legend panel right of the scatter.
pub const LEGEND_WIDTH: u32 = 170;

/// Latent means `[n, latent]` of `images` (floats in [0, 1]) on the CPU.
pub fn latent_means(vae: &Vae, images: &Tensor) -> Tensor {
    let n = images.size()[0];
    tch::no_grad(|| {
        let parts: Vec<Tensor> = batch::ranges(n, inference_batch(images.device()))
            .map(|(s, l)| {
                vae.encoder
                    .forward(&images.narrow(0, s, l))
                    .0
                    .to_device(Device::Cpu)
            })
            .collect();
        Tensor::cat(&parts, 0)
    })
}

/// Projects `z` `[n, d]` on its first two principal components; returns the projection and the
/// fraction of the variance they explain.
pub fn pca_2d(z: &Tensor) -> (Tensor, f64) {
    let x = z.to_kind(Kind::Double);
    let xc = &x - x.mean_dim(0, true, Kind::Double);
    let n = (x.size()[0] - 1).max(1) as f64;
    let cov = xc.transpose(0, 1).matmul(&xc) / n;
    let (vals, vecs) = cov.linalg_eigh("L"); // ascending eigenvalues
    let d = vals.size()[0];
    let top = vecs.narrow(1, d - 2, 2).flip([1]);
    let explained = vals.narrow(0, d - 2, 2).sum(Kind::Double).double_value(&[])
        / vals
            .sum(Kind::Double)
            .double_value(&[])
            .max(f64::MIN_POSITIVE);
    (xc.matmul(&top), explained)
}

pub struct LatentFigure {
    /// (x, y, label) per point.
    pub points: Vec<(f64, f64, usize)>,
    pub class_names: Vec<String>,
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
}

impl LatentFigure {
    /// Builds the figure from latent means `z` `[n, d]` and labels `[n]`.
    pub fn new(z: &Tensor, labels: &Tensor, class_names: &[&str], what: &str) -> LatentFigure {
        let d = z.size()[1];
        let (xy, title, x_desc, y_desc) = if d == 2 {
            (
                z.to_kind(Kind::Double),
                format!("Latent means of {what}"),
                "z[0]".to_string(),
                "z[1]".to_string(),
            )
        } else if d == 1 {
            let zeros = Tensor::zeros_like(z);
            (
                Tensor::cat(&[z, &zeros], 1).to_kind(Kind::Double),
                format!("Latent means of {what} (1-D latent)"),
                "z[0]".into(),
                "".into(),
            )
        } else {
            let (p, ex) = pca_2d(z);
            (
                p,
                format!(
                    "Latent means of {what}: PCA of the {d}-D latent ({:.0}% of variance)",
                    ex * 100.0
                ),
                "PC 1".into(),
                "PC 2".into(),
            )
        };
        let v: Vec<f64> = Vec::try_from(&xy.contiguous().view(-1)).expect("double tensor");
        let l: Vec<i64> = Vec::try_from(&labels.to_kind(Kind::Int64)).expect("int tensor");
        let points = v
            .chunks(2)
            .zip(l)
            .map(|(p, c)| (p[0], p[1], c as usize % PALETTE.len()))
            .collect();
        LatentFigure {
            points,
            class_names: class_names.iter().map(|s| s.to_string()).collect(),
            title,
            x_desc,
            y_desc,
        }
    }
}

impl Figure for LatentFigure {
    fn size(&self) -> (u32, u32) {
        (900 + LEGEND_WIDTH, 800)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let (w, _) = self.size();
        let (plot, legend) = root.split_horizontally(w - LEGEND_WIDTH);
        let (mut x0, mut x1, mut y0, mut y1) = (
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::INFINITY,
            f64::NEG_INFINITY,
        );
        for &(x, y, _) in &self.points {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if self.points.is_empty() {
            (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
        }
        let (px, py) = (((x1 - x0) * 0.05).max(1e-3), ((y1 - y0) * 0.05).max(1e-3));
        let mut chart = ChartBuilder::on(&plot)
            .caption(&self.title, (FONT, 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .label_style((FONT, 14))
            .axis_desc_style((FONT, 16))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(e)?;
        chart
            .draw_series(
                self.points
                    .iter()
                    .map(|&(x, y, c)| Circle::new((x, y), 2, PALETTE[c].filled())),
            )
            .map_err(e)?;
        legend
            .draw(&Text::new("label", (14, 60), (FONT, 18)))
            .map_err(e)?;
        for (i, name) in self.class_names.iter().enumerate() {
            let y = 95 + i as i32 * 28;
            legend
                .draw(&Rectangle::new(
                    [(14, y), (30, y + 16)],
                    PALETTE[i % PALETTE.len()].filled(),
                ))
                .map_err(e)?;
            legend
                .draw(&Text::new(name.as_str(), (38, y), (FONT, 16)))
                .map_err(e)?;
        }
        Ok(())
    }
}
