//! A sweep's parameter figure (`compare-params.png`): one panel per swept numeric key, the
//! metric (nats) against the key's values, one colour per setting of the other keys, each
//! marker the mean over the seeds with a bar from their lowest to their highest. The x axis is
//! logarithmic where the values span more than 10x.
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{tick, DrawResult, Figure, FONT, PALETTE};

/// The metric at one value of the key: over `n` seeds, their mean and range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub x: f64,
    pub mean: f64,
    pub lo: f64,
    pub hi: f64,
    pub n: usize,
}

/// One setting of the other keys across the key's values.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<Spread>,
}

/// One swept key.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamPanel {
    pub key: String,
    pub log_x: bool,
    pub series: Vec<Series>,
}

pub struct ParamFigure {
    pub panels: Vec<ParamPanel>,
    pub metric: String,
    pub title: String,
}

impl ParamPanel {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>, metric: &str) -> DrawResult {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let all = || self.series.iter().flat_map(|s| s.points.iter());
        let (x_lo, x_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.x), b.max(p.x))
        });
        let (y_lo, y_hi) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
            (a.min(p.lo), b.max(p.hi))
        });
        if !x_lo.is_finite() || !y_lo.is_finite() {
            return Ok(());
        }
        let pad = ((y_hi - y_lo) * 0.08).max(1e-3);
        let (y_lo, y_hi) = (y_lo - pad, y_hi + pad);
        let mut chart = ChartBuilder::on(area);
        chart
            .caption(format!("{metric} against {}", self.key), (FONT, 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(64);
        macro_rules! finish {
            ($chart:expr) => {{
                let mut c = $chart;
                c.configure_mesh()
                    .x_desc(self.key.as_str())
                    .y_desc(metric)
                    .x_label_formatter(&|v| tick(*v))
                    .y_label_formatter(&|v| tick(*v))
                    .label_style((FONT, 13))
                    .axis_desc_style((FONT, 14))
                    .draw()
                    .map_err(e)?;
                for (i, s) in self.series.iter().enumerate() {
                    let color = PALETTE[i % PALETTE.len()];
                    let line: Vec<(f64, f64)> = s.points.iter().map(|p| (p.x, p.mean)).collect();
                    c.draw_series(LineSeries::new(line, color.stroke_width(2)))
                        .map_err(e)?
                        .label(s.label.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2))
                        });
                    // The seeds' range: a bar from the lowest to the highest.
                    c.draw_series(s.points.iter().filter(|p| p.n > 1).map(|p| {
                        PathElement::new([(p.x, p.lo), (p.x, p.hi)], color.stroke_width(2))
                    }))
                    .map_err(e)?;
                    c.draw_series(
                        s.points
                            .iter()
                            .map(|p| Circle::new((p.x, p.mean), 4, color.filled())),
                    )
                    .map_err(e)?;
                }
                c.configure_series_labels()
                    .label_font((FONT, 13))
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(e)?;
            }};
        }
        if self.log_x {
            let (lo, hi) = (x_lo / 1.5, x_hi * 1.5);
            finish!(chart
                .build_cartesian_2d((lo..hi).log_scale(), y_lo..y_hi)
                .map_err(e)?);
        } else {
            let xpad = ((x_hi - x_lo) * 0.08).max(1e-6 + x_hi.abs() * 0.05);
            finish!(chart
                .build_cartesian_2d((x_lo - xpad)..(x_hi + xpad), y_lo..y_hi)
                .map_err(e)?);
        }
        Ok(())
    }
}

impl Figure for ParamFigure {
    fn size(&self) -> (u32, u32) {
        (620 * self.panels.len().max(1) as u32, 480)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let root = root
            .titled(&self.title, (FONT, 20))
            .map_err(|e| e.to_string())?;
        let n = self.panels.len().max(1);
        for (area, panel) in root.split_evenly((1, n)).iter().zip(&self.panels) {
            panel.draw(area, &self.metric)?;
        }
        Ok(())
    }
}
