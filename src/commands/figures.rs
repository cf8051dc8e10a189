//! The figure commands (`plot-loss`, `latent-plot`, `manifold`, `reconstruct`, `sample`,
//! `interpolate`, and the faces chapter's `arithmetic`, `morph`, `latent-hist`): each draws one
//! figure of a run (crate::plot::run, crate::plot::run_faces) and prints its path.
use std::path::PathBuf;

use anyhow::Result;
use tch::Device;

use crate::data::SplitName;
use crate::plot::grids::Spacing;
use crate::plot::run as figures;
use crate::plot::run_faces::{self, Encoding, Output};
use crate::plot::Format;
use crate::run::checkpoint::Pick;
use crate::run::data::RunData;

/// What every figure of a trained model takes.
#[derive(Debug, Clone)]
pub struct FigureSource {
    pub run: PathBuf,
    /// [default: in the run folder]
    pub out: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub device: Device,
    pub checkpoint: Pick,
}

/// Which figure, with its own settings.
#[derive(Debug, Clone)]
pub enum Figure {
    Loss {
        log: bool,
        format: Format,
    },
    Latent {
        split: SplitName,
        limit: Option<usize>,
        format: Format,
    },
    Manifold {
        n: usize,
        spacing: Spacing,
        range: f64,
    },
    Reconstruct {
        n: usize,
    },
    Sample {
        n: usize,
        seed: u64,
    },
    Interpolate {
        from: usize,
        to: usize,
        steps: usize,
    },
    /// Test faces without `attribute`, then decodes of z + factor * its vector.
    Arithmetic {
        attribute: String,
        images: usize,
        factors: Vec<f64>,
        indices: Option<Vec<usize>>,
        labels: Option<PathBuf>,
        encoding: Encoding,
        format: Format,
        bare: bool,
    },
    /// Two images (test indices or file names) and the decodes between their z.
    Morph {
        from: String,
        to: String,
        steps: usize,
        slerp: bool,
        encoding: Encoding,
        format: Format,
        bare: bool,
    },
    /// Histograms of the first `dims` latent dimensions over `images` test images.
    LatentHist {
        dims: Option<usize>,
        images: usize,
        encoding: Encoding,
        format: Format,
    },
}

/// Draws `figure` of `src`; returns the path written.
pub fn run(src: &FigureSource, figure: &Figure) -> Result<String> {
    let data = RunData {
        run: &src.run,
        data_dir: src.data_dir.as_deref(),
        device: src.device,
        checkpoint: src.checkpoint,
    };
    let out = src.out.as_deref();
    let while_ = format!("while drawing a figure of {}", src.run.display());
    let lower = match figure {
        Figure::Arithmetic { .. } | Figure::LatentHist { .. } => "lower --images",
        Figure::Morph { .. } => "lower --steps",
        _ => "lower --n or --limit",
    };
    let path = crate::util::torch_failure::guard(&while_, lower, || draw(&data, figure, out))?;
    Ok(format!("{}\n", path.display()))
}

fn draw(
    data: &RunData,
    figure: &Figure,
    out: Option<&std::path::Path>,
) -> Result<std::path::PathBuf> {
    let src_run = data.run;
    Ok(match *figure {
        Figure::Loss { log, format } => figures::plot_loss(src_run, out, log, format)?,
        Figure::Latent {
            split,
            limit,
            format,
        } => figures::latent_plot(data, split, limit, out, format)?,
        Figure::Manifold { n, spacing, range } => figures::manifold(data, n, spacing, range, out)?,
        Figure::Reconstruct { n } => figures::reconstruct(data, n, out)?,
        Figure::Sample { n, seed } => figures::sample(data, n, seed, out)?,
        Figure::Interpolate { from, to, steps } => {
            figures::interpolate(data, from, to, steps, out)?
        }
        Figure::Arithmetic {
            ref attribute,
            images,
            ref factors,
            ref indices,
            ref labels,
            encoding,
            format,
            bare,
        } => run_faces::arithmetic(
            data,
            attribute,
            images,
            factors,
            indices.as_deref(),
            labels.as_deref(),
            encoding,
            Output { out, format, bare },
        )?,
        Figure::Morph {
            ref from,
            ref to,
            steps,
            slerp,
            encoding,
            format,
            bare,
        } => run_faces::morph(
            data,
            (from, to),
            steps,
            slerp,
            encoding,
            Output { out, format, bare },
        )?,
        Figure::LatentHist {
            dims,
            images,
            encoding,
            format,
        } => run_faces::latent_hist(
            data,
            dims,
            images,
            encoding,
            Output {
                out,
                format,
                bare: false,
            },
        )?,
    })
}
