//! `vae-tch plot-loss`: train and test loss, r_loss and kl_loss against epoch, one panel each,
//! from `<run>/metrics.csv`.
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{tick, DrawResult, Figure, FONT, PALETTE};
use crate::run::metrics::EpochRow;

pub struct LossFigure {
    pub rows: Vec<EpochRow>,
    pub log_scale: bool,
    pub title: String,
}

type Series = (&'static str, fn(&EpochRow) -> (f64, f64));

const PANELS: [Series; 3] = [
    ("loss (r_loss + kl_loss)", |r| (r.train_loss, r.test_loss)),
    ("r_loss (1000 x pixel MSE)", |r| {
        (r.train_r_loss, r.test_r_loss)
    }),
    ("kl_loss", |r| (r.train_kl_loss, r.test_kl_loss)),
];

impl LossFigure {
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        (name, get): &Series,
    ) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let xs: Vec<f64> = self.rows.iter().map(|r| r.epoch as f64).collect();
        let (train, test): (Vec<f64>, Vec<f64>) = self.rows.iter().map(get).unzip();
        let all = train.iter().chain(&test).copied().filter(|v| v.is_finite());
        let (lo, hi) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let x_max = xs.last().copied().unwrap_or(1.0).max(xs[0] + 1.0);
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(area);
        chart
            .caption(*name, (FONT, 18))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(60);
        let lines = [(&train, PALETTE[0], "train"), (&test, PALETTE[1], "test")];
        macro_rules! finish {
            ($chart:expr) => {{
                let mut c = $chart;
                c.configure_mesh()
                    .x_desc("epoch")
                    .x_label_formatter(&|v| format!("{v:.0}"))
                    .y_label_formatter(&|v| tick(*v))
                    .label_style((FONT, 13))
                    .axis_desc_style((FONT, 14))
                    .draw()
                    .map_err(e)?;
                for (ys, color, label) in lines {
                    let pts: Vec<(f64, f64)> = xs.iter().copied().zip(ys.iter().copied()).collect();
                    c.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                        .map_err(e)?
                        .label(label)
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                    if pts.len() <= 60 {
                        c.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                            .map_err(e)?;
                    }
                }
                c.configure_series_labels()
                    .label_font((FONT, 14))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(e)?;
            }};
        }
        if self.log_scale {
            let lo = lo.max(1e-6) * 0.9;
            finish!(chart
                .build_cartesian_2d(xs[0]..x_max, (lo..hi * 1.1).log_scale())
                .map_err(e)?);
        } else {
            finish!(chart
                .build_cartesian_2d(xs[0]..x_max, (lo - pad)..(hi + pad))
                .map_err(e)?);
        }
        Ok(())
    }
}

impl Figure for LossFigure {
    fn size(&self) -> (u32, u32) {
        (1500, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&self.title, (FONT, 22))
            .map_err(|e| e.to_string())?;
        for (area, panel) in root.split_evenly((1, 3)).iter().zip(&PANELS) {
            self.panel(area, panel)?;
        }
        Ok(())
    }
}
