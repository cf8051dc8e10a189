//! `vae-tch sweep report DIR` (also the end of `sweep run`): the points side by side, from
//! whatever the sweep folder holds now (a partial sweep too):
//! - `compare-loss.png`: test loss, r_loss and kl_loss per epoch, one line per point;
//! - `compare-latent.png`: one latent scatter of test images per point;
//! - `compare-samples.png`: per point, a manifold (2-D latents) or samples of N(0, I);
//! - `compare-params.png`: the nats against each swept numeric key (`params`);
//! - `report.md`: the summary table sorted by the negative ELBO in nats, the best point with the
//!   command that trains it again, and the figures; the same table and best point are printed;
//! - TensorBoard's HParams for the points and the sweep (`hparams`).
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use tch::Device;

use super::points::{point_dir, Status};
use super::spec::{self, Sweep};
use super::summary::{rows, write_rows, Row, SUMMARY_FILE};
use crate::data::SplitName;
use crate::plot::grids::{self, Spacing};
use crate::plot::latent::{latent_means, LatentFigure};
use crate::plot::loss::LossFigure;
use crate::plot::panels::PanelGrid;
use crate::plot::params::ParamFigure;
use crate::plot::{render, Format};
use crate::run::data::RunData;
use crate::run::metrics;

/// Test images per latent panel at most.
const LATENT_IMAGES: usize = 2_000;

/// What `report` wrote.
pub struct Report {
    pub files: Vec<PathBuf>,
    /// The table, as printed.
    pub table: String,
}

/// Rows by the negative ELBO in nats (comparable across `r_loss_factor`), then those with no
/// eval.json yet by test loss, then the rest (failed points last) in sweep order.
fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    let key = |r: &Row| {
        let failed = r.status == Status::Failed;
        let loss = r.last.map_or(f64::INFINITY, |l| l.test_loss);
        (
            failed,
            r.neg_elbo_nats.is_none(),
            r.neg_elbo_nats.unwrap_or(loss),
        )
    };
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        (ka.0, ka.1).cmp(&(kb.0, kb.1)).then(ka.2.total_cmp(&kb.2))
    });
    rows
}

/// The summary as a Markdown table: a column per swept key, the nats that compare points of any
/// `r_loss_factor`, the test loss, and a note (why a point failed; its numbers are left out).
pub fn table(sweep: &Sweep, rows: &[Row]) -> String {
    let mut t = String::from("| point | ");
    for k in &sweep.keys {
        let _ = write!(t, "{k} | ");
    }
    t += "status | epochs | -ELBO (nats) | IWAE bound (nats) | test loss | seconds | note |\n|";
    for _ in 0..sweep.keys.len() + 8 {
        t += "---|";
    }
    t.push('\n');
    for r in rows {
        let _ = write!(t, "| {} | ", r.name);
        for v in &r.values {
            let _ = write!(t, "{v} | ");
        }
        let failed = r.status == Status::Failed;
        let f = |v: Option<f64>, digits: usize| match v {
            Some(v) if !failed => format!("{v:.digits$}"),
            _ => "-".to_string(),
        };
        let _ = writeln!(
            t,
            "{} | {}/{} | {} | {} | {} | {:.1} | {} |",
            r.status,
            r.epochs_done,
            r.epochs,
            f(r.neg_elbo_nats, 2),
            f(r.iwae_nll_nats, 2),
            f(r.last.map(|l| l.test_loss), 3),
            r.seconds,
            r.note.replace('|', "/")
        );
    }
    t
}

/// The best point: the first of the sorted rows, when it is done and has its nats.
pub fn best(rows: &[Row]) -> Option<&Row> {
    rows.first()
        .filter(|r| r.status == Status::Done && r.neg_elbo_nats.is_some())
}

/// The command that trains `point` again from its own config.toml, into `runs/<point>` (words
/// quoted for the shell).
pub fn reproduce(dir: &Path, point: &str, device: Device) -> String {
    let config = dir
        .join(super::points::POINTS_DIR)
        .join(point)
        .join("config.toml");
    let out = Path::new("runs").join(format!("best-{point}"));
    [
        "vae-tch",
        "train",
        "--config",
        &config.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--device",
        &crate::util::device::name(device),
    ]
    .map(crate::util::shell::quote)
    .join(" ")
}

/// The best point as Markdown: folder, values, nats, and the command that reproduces it.
fn best_text(sweep: &Sweep, dir: &Path, best: &Row, device: Device) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "**{}**: -ELBO {:.2} nats, IWAE bound {} nats, test loss {}.
",
        best.name,
        best.neg_elbo_nats.unwrap_or(f64::NAN),
        best.iwae_nll_nats.map_or("-".into(), |v| format!("{v:.2}")),
        best.last
            .map_or("-".into(), |l| format!("{:.3}", l.test_loss)),
    );
    let _ = writeln!(
        t,
        "- folder: `{}`",
        dir.join(super::points::POINTS_DIR)
            .join(&best.name)
            .display()
    );
    for (k, v) in sweep.keys.iter().zip(&best.values) {
        let _ = writeln!(t, "- `{k}` = {v}");
    }
    let _ = writeln!(
        t,
        "
Trained again from its own config.toml (from the folder the sweep ran in; on the CPU, a point trained one at a time gives the same losses bit for bit):

```sh
{}
```",
        reproduce(dir, &best.name, device)
    );
    t
}

/// Writes the comparison figures, summary.csv and report.md into `dir`; figures are computed
/// on `device`.
pub fn report(
    dir: &Path,
    device: Device,
    failed_here: &std::collections::HashMap<String, String>,
) -> Result<Report> {
    let sweep = spec::load_ran(dir)?;
    // Read once: summary.csv and the HParams take them in the sweep's order, the table sorted.
    let in_order = rows(&sweep, dir, failed_here);
    write_rows(&sweep, dir, &in_order)?;
    let rows = sorted(in_order.clone());
    let trained: Vec<&Row> = rows.iter().filter(|r| r.epochs_done > 0).collect();
    let mut files = vec![dir.join(SUMMARY_FILE)];
    let mut figures = Vec::new();
    if !trained.is_empty() {
        let point = |name: &str| {
            sweep
                .points
                .iter()
                .find(|p| p.name == name)
                .expect("rows come from the sweep's points")
        };
        let curves: Vec<(String, Vec<metrics::EpochRow>)> = trained
            .iter()
            .map(|r| {
                let m = metrics::read(&point_dir(dir, point(&r.name)).join("metrics.csv"))
                    .unwrap_or_default();
                (r.name.clone(), m)
            })
            .collect();
        let path = dir.join("compare-loss.png");
        render(
            &LossFigure::compare(&curves, format!("{}: test losses per epoch", dir.display())),
            &path,
            Format::Png,
        )?;
        figures.push(("Test losses per epoch", path));

        let mut latents = Vec::new();
        let mut samples = Vec::new();
        for r in &trained {
            let run = point_dir(dir, point(&r.name));
            let src = RunData {
                run: &run,
                data_dir: None,
                device,
                checkpoint: crate::run::checkpoint::Pick::Last,
            };
            let loaded = src.model()?;
            let (split, classes) = src.split_and_classes(&loaded, SplitName::Test)?;
            let split = split.limit(Some(LATENT_IMAGES));
            let z = latent_means(&loaded.vae, &split.images_f32(device));
            let names: Vec<&str> = classes.iter().map(String::as_str).collect();
            let mut fig = LatentFigure::new(&z, &split.labels, &names, &r.name);
            fig.title = r.name.clone();
            latents.push(fig);
            let mut grid = if loaded.config.model.latent_dim == 2 {
                grids::manifold(&loaded.vae, device, 12, Spacing::Normal, 3.0)
            } else {
                grids::sample(&loaded.vae, device, 36, 0)
            };
            grid.title = r.name.clone();
            samples.push(grid);
        }
        let path = dir.join("compare-latent.png");
        render(
            &PanelGrid::new(latents, "Latent means of test images, per point".into()),
            &path,
            Format::Png,
        )?;
        figures.push(("Latent means of test images", path));
        let path = dir.join("compare-samples.png");
        render(
            &PanelGrid::new(
                samples,
                "Decodes per point: the latent manifold (2-D latents) or samples of N(0, I)".into(),
            ),
            &path,
            Format::Png,
        )?;
        figures.push(("Decodes", path));
    }
    let panels = super::params::panels(&sweep, &rows);
    if !panels.is_empty() {
        let path = dir.join("compare-params.png");
        let seeds = sweep.keys.iter().any(|k| super::params::is_seed(k));
        render(
            &ParamFigure {
                panels,
                metric: "-ELBO (nats)".into(),
                title: format!(
                    "{}{}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    if seeds {
                        ": seeds as mean and range"
                    } else {
                        ""
                    }
                ),
            },
            &path,
            Format::Png,
        )?;
        figures.insert(0, ("The negative ELBO against each swept value", path));
    }
    super::hparams::write(&sweep, dir, &in_order)?;
    let mut table = table(&sweep, &rows);
    let mut md = format!(
        "# Sweep {}\n\n{} points over {}; sorted by the negative ELBO in nats (eval.json: the first 1,000 test images, k = 20), which compares points of any r_loss_factor.\n\n{table}\n",
        dir.display(),
        sweep.points.len(),
        sweep.keys.join(", ")
    );
    if let Some(b) = best(&rows) {
        let _ = write!(
            md,
            "## Best point\n\n{}\n",
            best_text(&sweep, dir, b, device)
        );
        let _ = writeln!(
            table,
            "best: {} ({:.2} nats); train it again with:\n  {}",
            b.name,
            b.neg_elbo_nats.unwrap_or(f64::NAN),
            reproduce(dir, &b.name, device)
        );
    }
    for (title, path) in &figures {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let _ = write!(md, "## {title}\n\n![{name}]({name})\n\n");
        files.push(path.clone());
    }
    let path = dir.join("report.md");
    crate::util::fsutil::write_atomic(&path, md.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    files.push(path);
    Ok(Report { files, table })
}
