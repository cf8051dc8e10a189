//! Loss curves: `vae-tch plot-loss` (train and test loss, r_loss and kl_loss against epoch, one
//! panel each, from `<run>/metrics.csv`) and the sweep's comparison (the test losses of many
//! runs, one line each). Both draw `LinePanel`s.
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{tick, DrawResult, Figure, FONT, PALETTE};
use crate::run::metrics::EpochRow;

/// One named line of (epoch, value) points.
pub struct Line {
    pub label: String,
    pub color: RGBColor,
    pub points: Vec<(f64, f64)>,
}

/// A chart of lines against epoch, with a legend.
pub struct LinePanel {
    pub title: String,
    pub lines: Vec<Line>,
}

type Get = fn(&EpochRow) -> (f64, f64);

/// The three panels: (title, (train, test) of a row).
const PANELS: [(&str, Get); 3] = [
    ("loss (r_loss + kl_loss)", |r| (r.train_loss, r.test_loss)),
    ("r_loss (r_loss_factor x pixel MSE)", |r| {
        (r.train_r_loss, r.test_r_loss)
    }),
    ("kl_loss", |r| (r.train_kl_loss, r.test_kl_loss)),
];

impl LinePanel {
    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        log_scale: bool,
    ) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let all = || self.lines.iter().flat_map(|l| l.points.iter().copied());
        let (lo, hi) = all()
            .map(|(_, y)| y)
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let x_min = all().map(|(x, _)| x).fold(f64::INFINITY, f64::min);
        let x_min = if x_min.is_finite() { x_min } else { 1.0 };
        let x_max = all().map(|(x, _)| x).fold(x_min + 1.0, f64::max);
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(area);
        chart
            .caption(&self.title, (FONT, 18))
            .margin(8)
            .x_label_area_size(36)
            .y_label_area_size(60);
        macro_rules! finish {
            ($chart:expr) => {{
                let mut c = $chart;
                c.configure_mesh()
                    .x_desc("epoch")
                    // Whole epochs: no more ticks than epochs (else "1 1 1 2").
                    .x_labels(((x_max - x_min).round() as usize + 1).clamp(2, 10))
                    .x_label_formatter(&|v| format!("{v:.0}"))
                    .y_label_formatter(&|v| tick(*v))
                    .label_style((FONT, 13))
                    .axis_desc_style((FONT, 14))
                    .draw()
                    .map_err(e)?;
                for line in &self.lines {
                    let color = line.color;
                    c.draw_series(LineSeries::new(line.points.clone(), color.stroke_width(2)))
                        .map_err(e)?
                        .label(line.label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                    if line.points.len() <= 60 {
                        c.draw_series(
                            line.points
                                .iter()
                                .map(|&p| Circle::new(p, 3, color.filled())),
                        )
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
        if log_scale {
            let lo = lo.max(1e-6) * 0.9;
            finish!(chart
                .build_cartesian_2d(x_min..x_max, (lo..hi * 1.1).log_scale())
                .map_err(e)?);
        } else {
            finish!(chart
                .build_cartesian_2d(x_min..x_max, (lo - pad)..(hi + pad))
                .map_err(e)?);
        }
        Ok(())
    }
}

/// A row of panels under a title.
pub struct LossFigure {
    pub panels: Vec<LinePanel>,
    pub log_scale: bool,
    pub title: String,
}

impl LossFigure {
    /// One run's curves: train and test in each of the three panels.
    pub fn run(rows: &[EpochRow], log_scale: bool, title: String) -> LossFigure {
        let xs = || rows.iter().map(|r| r.epoch as f64);
        let panels = PANELS
            .iter()
            .map(|(name, get)| LinePanel {
                title: name.to_string(),
                lines: vec![
                    Line {
                        label: "train".into(),
                        color: PALETTE[0],
                        points: xs().zip(rows.iter().map(|r| get(r).0)).collect(),
                    },
                    Line {
                        label: "test".into(),
                        color: PALETTE[1],
                        points: xs().zip(rows.iter().map(|r| get(r).1)).collect(),
                    },
                ],
            })
            .collect();
        LossFigure {
            panels,
            log_scale,
            title,
        }
    }

    /// Many runs' test curves, one line per run in each of the three panels; on a log scale
    /// when the runs' losses span more than 50x (as r_loss_factor sweeps do).
    pub fn compare(runs: &[(String, Vec<EpochRow>)], title: String) -> LossFigure {
        let losses = runs
            .iter()
            .flat_map(|(_, rows)| rows.iter().map(|r| r.test_loss));
        let (lo, hi) = losses
            .filter(|v| v.is_finite() && *v > 0.0)
            .fold((f64::INFINITY, 0f64), |(a, b), v| (a.min(v), b.max(v)));
        let log_scale = hi / lo > 50.0;
        let panels = PANELS
            .iter()
            .map(|(name, get)| LinePanel {
                title: format!("test {name}"),
                lines: runs
                    .iter()
                    .enumerate()
                    .map(|(i, (label, rows))| Line {
                        label: label.clone(),
                        color: PALETTE[i % PALETTE.len()],
                        points: rows.iter().map(|r| (r.epoch as f64, get(r).1)).collect(),
                    })
                    .collect(),
            })
            .collect();
        LossFigure {
            panels,
            log_scale,
            title: if log_scale {
                format!("{title} (log scale)")
            } else {
                title
            },
        }
    }
}

impl Figure for LossFigure {
    fn size(&self) -> (u32, u32) {
        (500 * self.panels.len().max(1) as u32, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&self.title, (FONT, 22))
            .map_err(|e| e.to_string())?;
        let n = self.panels.len().max(1);
        for (area, panel) in root.split_evenly((1, n)).iter().zip(&self.panels) {
            panel.draw(area, self.log_scale)?;
        }
        Ok(())
    }
}
