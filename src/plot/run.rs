//! The figures of a run folder, as the CLI commands draw them: each loads what it needs (the
//! model from the checkpoint, test or train images from the run's data set) and writes into the
//! run folder unless told otherwise.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::grids::{self, Spacing};
use super::latent::{latent_means, LatentFigure};
use super::loss::LossFigure;
use super::{render, Format};
use crate::data::{Split, SplitName};
use crate::model::Loaded;
use crate::run::checkpoint::METRICS_FILE;
use crate::run::data::RunData;

pub fn out_path(run: &Path, out: Option<&Path>, name: &str, format: Format) -> PathBuf {
    out.map(Path::to_path_buf)
        .unwrap_or_else(|| run.join(format!("{name}.{}", format.extension())))
}

pub fn plot_loss(
    run: &Path,
    out: Option<&Path>,
    log_scale: bool,
    format: Format,
) -> Result<PathBuf> {
    let csv = run.join(METRICS_FILE);
    if !csv.is_file() {
        if !run.join(crate::run::checkpoint::CONFIG_FILE).is_file() {
            bail!(
                "{} is not a vae-tch run folder (no config.toml)",
                run.display()
            );
        }
        bail!(
            "{} has no finished epoch yet (no metrics.csv)",
            run.display()
        );
    }
    let rows =
        crate::run::metrics::read(&csv).with_context(|| format!("reading {}", csv.display()))?;
    if rows.is_empty() {
        bail!("{} has no epochs yet", csv.display());
    }
    let path = out_path(run, out, "loss", format);
    let title = format!(
        "{}: training and test losses per epoch{}",
        run.display(),
        if log_scale { " (log scale)" } else { "" }
    );
    render(&LossFigure::run(&rows, log_scale, title), &path, format)?;
    Ok(path)
}

pub fn latent_plot(
    src: &RunData,
    which: SplitName,
    limit: Option<usize>,
    out: Option<&Path>,
    format: Format,
) -> Result<PathBuf> {
    if limit == Some(0) {
        bail!("--limit 0: plot at least one image");
    }
    let loaded = src.model()?;
    let (split, classes) = src.split_and_classes(&loaded, which)?;
    let split = split.limit(limit);
    latent_plot_of(src, &loaded, &split, &classes, which, out, format)
}

/// The same for a model and split in memory (a run that just trained: nothing read back).
pub fn latent_plot_of(
    src: &RunData,
    loaded: &Loaded,
    split: &Split,
    classes: &[String],
    which: SplitName,
    out: Option<&Path>,
    format: Format,
) -> Result<PathBuf> {
    if split.is_empty() {
        bail!(
            "the {} split of run {} has no images to plot (--split {})",
            which.name(),
            src.run.display(),
            which.name()
        );
    }
    let z = latent_means(&loaded.vae, &split.images_f32(src.device));
    let what = format!(
        "{} {} {} images",
        split.len(),
        loaded.config.data.dataset,
        if which == SplitName::Test {
            "test"
        } else {
            "training"
        }
    );
    let names: Vec<&str> = classes.iter().map(String::as_str).collect();
    let fig = LatentFigure::new(&z, &split.labels, &names, &what);
    let path = out_path(src.run, out, "latent", format);
    render(&fig, &path, format)?;
    Ok(path)
}

pub fn manifold(
    src: &RunData,
    n: usize,
    spacing: Spacing,
    range: f64,
    out: Option<&Path>,
) -> Result<PathBuf> {
    if !(2..=100).contains(&n) {
        bail!("--n {n}: a manifold needs 2 to 100 points a side");
    }
    if spacing == Spacing::Linear && !(range.is_finite() && range > 0.0 && range <= 100.0) {
        bail!("--range {range}: the half-width of the linear grid must be a number in (0, 100]");
    }
    let loaded = src.model()?;
    let path = out_path(src.run, out, "manifold", Format::Png);
    render(
        &grids::manifold(&loaded.vae, src.device, n, spacing, range),
        &path,
        Format::Png,
    )?;
    Ok(path)
}

/// Refuses a test index past the split's end, naming the flag.
pub(super) fn check_index(i: usize, split: &Split, flag: &str) -> Result<()> {
    if i as i64 >= split.len() {
        bail!(
            "{flag} {i}: the test split has {} images (0..{})",
            split.len(),
            split.len()
        );
    }
    Ok(())
}

pub fn reconstruct(src: &RunData, n: usize, out: Option<&Path>) -> Result<PathBuf> {
    if n == 0 {
        bail!("--n must be at least 1");
    }
    let loaded = src.model()?;
    let split = src.split(&loaded, SplitName::Test)?;
    let x = split.limit(Some(n)).images_f32(src.device);
    let path = out_path(src.run, out, "reconstructions", Format::Png);
    render(&grids::reconstruct(&loaded.vae, &x), &path, Format::Png)?;
    Ok(path)
}

pub fn sample(src: &RunData, n: usize, seed: u64, out: Option<&Path>) -> Result<PathBuf> {
    if !(1..=1024).contains(&n) {
        bail!("--n {n}: draw 1 to 1024 samples");
    }
    let loaded = src.model()?;
    let path = out_path(src.run, out, "samples", Format::Png);
    render(
        &grids::sample(&loaded.vae, src.device, n, seed),
        &path,
        Format::Png,
    )?;
    Ok(path)
}

pub fn interpolate(
    src: &RunData,
    from: usize,
    to: usize,
    steps: usize,
    out: Option<&Path>,
) -> Result<PathBuf> {
    if !(2..=50).contains(&steps) {
        bail!("--steps {steps}: use 2 to 50 points");
    }
    let loaded = src.model()?;
    let split = src.split(&loaded, SplitName::Test)?;
    check_index(from, &split, "--from")?;
    check_index(to, &split, "--to")?;
    let a = split.narrow(from as i64, 1).images_f32(src.device);
    let b = split.narrow(to as i64, 1).images_f32(src.device);
    let path = out_path(
        src.run,
        out,
        &format!("interpolate-{from}-{to}"),
        Format::Png,
    );
    render(
        &grids::interpolate(&loaded.vae, &a, &b, steps, (from, to)),
        &path,
        Format::Png,
    )?;
    Ok(path)
}
