//! The figure commands' flags and the requests they make.
use std::path::PathBuf;

use clap::Args;

use super::args::{BestFlag, ModelDevice, RunArg};
use vae_tch::commands::figures::{Figure, FigureSource};
use vae_tch::data::SplitName;
use vae_tch::plot::grids::Spacing;
use vae_tch::plot::Format;

/// What every figure of a trained model takes.
#[derive(Debug, Args)]
pub struct FigureArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// The output file [default: in the run folder].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: ModelDevice,
    #[command(flatten)]
    pub best: BestFlag,
}

impl FigureArgs {
    pub fn source(&self) -> FigureSource {
        FigureSource {
            run: self.run.run.clone(),
            out: self.out.clone(),
            data_dir: self.run.data_dir.clone(),
            device: self.device.device,
            checkpoint: self.best.pick(),
        }
    }
}

#[derive(Debug, Args)]
pub struct PlotLossArgs {
    /// The run folder.
    pub run: PathBuf,
    /// The output file [default: <run>/loss.png].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Logarithmic loss axes.
    #[arg(long)]
    pub log: bool,
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,
}

impl PlotLossArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        let src = FigureSource {
            run: self.run.clone(),
            out: self.out.clone(),
            data_dir: None,
            device: tch::Device::Cpu,
            checkpoint: vae_tch::run::checkpoint::Pick::Last,
        };
        let fig = Figure::Loss {
            log: self.log,
            format: self.format,
        };
        (src, fig)
    }
}

#[derive(Debug, Args)]
pub struct LatentPlotArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// Which images to encode.
    #[arg(long, value_enum, default_value_t = SplitName::Test)]
    pub split: SplitName,
    /// Use the first N images of the split [default: all].
    #[arg(long, value_name = "N", value_parser = super::args::at_least_one)]
    pub limit: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,
}

impl LatentPlotArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        let fig = Figure::Latent {
            split: self.split,
            limit: self.limit,
            format: self.format,
        };
        (self.fig.source(), fig)
    }
}

#[derive(Debug, Args)]
pub struct ManifoldArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// Points per side of the grid (2 to 100).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(2..=100))]
    pub n: u16,
    /// normal: quantiles of N(0, 1) at 0.05..0.95 (the book's); linear: even steps over
    /// [-range, range].
    #[arg(long, value_enum, default_value_t = Spacing::Normal)]
    pub spacing: Spacing,
    /// Half-width of the linear grid, in (0, 100] [default: 3].
    #[arg(long, value_name = "R", value_parser = half_width)]
    pub range: Option<f64>,
}

/// `--range R`: a number in (0, 100].
fn half_width(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 && r <= 100.0 => Ok(r),
        _ => Err(format!(
            "{s}: the half-width of the linear grid must be a number in (0, 100]"
        )),
    }
}

impl ManifoldArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        if self.range.is_some() && self.spacing != Spacing::Linear {
            super::args::usage("--range applies to --spacing linear only (the normal grid is quantiles of N(0, 1)); add --spacing linear or drop --range");
        }
        let fig = Figure::Manifold {
            n: self.n as usize,
            spacing: self.spacing,
            range: self.range.unwrap_or(3.0),
        };
        (self.fig.source(), fig)
    }
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// How many test images (the first N).
    #[arg(long, default_value_t = 10, value_parser = super::args::at_least_one)]
    pub n: usize,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// How many samples (1 to 1024).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub n: u16,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// Index of the first test image.
    #[arg(long)]
    pub from: usize,
    /// Index of the second test image.
    #[arg(long)]
    pub to: usize,
    /// Decodes between them (2 to 50).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(2..=50))]
    pub steps: u8,
}

impl ReconstructArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        (self.fig.source(), Figure::Reconstruct { n: self.n })
    }
}

impl SampleArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        let fig = Figure::Sample {
            n: self.n as usize,
            seed: self.seed,
        };
        (self.fig.source(), fig)
    }
}

impl InterpolateArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        let fig = Figure::Interpolate {
            from: self.from,
            to: self.to,
            steps: self.steps as usize,
        };
        (self.fig.source(), fig)
    }
}
