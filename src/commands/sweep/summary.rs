//! `<sweep>/summary.csv`: one row per point (its values, status, epochs, last losses, nats from
//! eval.json, a note, seconds), always regenerated from the point folders as they are now. A
//! failed point says why in its note (its FAILED file, or this process's own record of the
//! failure where the file could not be written); a point whose metrics.csv cannot be read, or
//! that trained more epochs than the sweep now asks, says so.
use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::points::{epochs_done, point_dir, status, Status, FAILED_FILE};
use super::spec::{value_text, Sweep};
use crate::run::checkpoint::METRICS_FILE;
use crate::run::metrics;

pub const SUMMARY_FILE: &str = "summary.csv";

/// One row of summary.csv.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub values: Vec<String>,
    pub status: Status,
    pub epochs_done: usize,
    pub epochs: usize,
    /// The last epoch's losses, when there is one.
    pub last: Option<metrics::EpochRow>,
    /// Seconds over all epochs (metrics.csv).
    pub seconds: f64,
    /// The negative ELBO and the IWAE bound in nats per image (eval.json, of the point's last
    /// epoch), when written.
    pub neg_elbo_nats: Option<f64>,
    pub iwae_nll_nats: Option<f64>,
    /// Why a point failed, or what else its numbers need said.
    pub note: String,
}

/// The first line of a point's FAILED file.
fn failure(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(FAILED_FILE)).ok()?;
    Some(text.lines().next().unwrap_or("").to_string())
}

/// The sweep's rows, read from the point folders as they are now; `failed_here` (point ->
/// error) are the points this process saw fail, shown failed even where their FAILED file
/// could not be written.
pub fn rows(sweep: &Sweep, out: &Path, failed_here: &HashMap<String, String>) -> Vec<Row> {
    sweep
        .points
        .iter()
        .map(|p| {
            let dir = point_dir(out, p);
            let (history, unreadable) = match metrics::read(&dir.join(METRICS_FILE)) {
                Ok(rows) => (rows, None),
                Err(_) if !dir.join(METRICS_FILE).exists() => (Vec::new(), None),
                Err(e) => (Vec::new(), Some(format!("{METRICS_FILE} unreadable: {e}"))),
            };
            let done = epochs_done(&dir);
            let (neg_elbo_nats, iwae_nll_nats) = crate::eval::nats_of(&dir, done);
            let mut status = status(&dir, p.config.train.epochs);
            let here = failed_here
                .get(&p.name)
                .map(|m| m.lines().next().unwrap_or("").to_string());
            if here.is_some() {
                status = Status::Failed;
            }
            let note = match (status, here, unreadable) {
                (Status::Failed, Some(why), _) => why,
                (Status::Failed, None, _) => failure(&dir).unwrap_or_default(),
                (_, _, Some(why)) => why,
                _ if done > p.config.train.epochs => format!(
                    "trained {done} epochs, more than the {} the sweep now asks",
                    p.config.train.epochs
                ),
                _ => String::new(),
            };
            Row {
                name: p.name.clone(),
                values: sweep
                    .keys
                    .iter()
                    .map(|k| {
                        p.values
                            .iter()
                            .find(|(key, _)| key == k)
                            .map_or(String::new(), |(_, v)| value_text(v))
                    })
                    .collect(),
                status,
                epochs_done: done,
                epochs: p.config.train.epochs,
                last: history.last().copied(),
                // Never "-0.0": a garbage metrics.csv may hold negative seconds.
                seconds: history.iter().map(|r| r.seconds.max(0.0)).sum::<f64>() + 0.0,
                neg_elbo_nats,
                iwae_nll_nats,
                note,
            }
        })
        .collect()
}

/// `<sweep>/summary.csv`: one row per point with its values, status, epochs and final losses.
pub fn write_summary(
    sweep: &Sweep,
    out: &Path,
    failed_here: &HashMap<String, String>,
) -> Result<()> {
    write_rows(sweep, out, &rows(sweep, out, failed_here))
}

/// `<sweep>/summary.csv` from rows already read (`rows`, in the sweep's order).
pub fn write_rows(sweep: &Sweep, out: &Path, rows: &[Row]) -> Result<()> {
    let path = out.join(SUMMARY_FILE);
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["point".into()];
    header.extend(sweep.keys.iter().cloned());
    header.extend(
        [
            "status",
            "epochs_done",
            "epochs",
            "train_loss",
            "train_r_loss",
            "train_kl_loss",
            "test_loss",
            "test_r_loss",
            "test_kl_loss",
            "neg_elbo_nats",
            "iwae_nll_nats",
            "note",
            "seconds",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for r in rows {
        let mut rec = vec![r.name.clone()];
        rec.extend(r.values.iter().cloned());
        rec.push(r.status.to_string());
        rec.push(r.epochs_done.to_string());
        rec.push(r.epochs.to_string());
        let l = r.last;
        for v in [
            l.map(|l| l.train_loss),
            l.map(|l| l.train_r_loss),
            l.map(|l| l.train_kl_loss),
            l.map(|l| l.test_loss),
            l.map(|l| l.test_r_loss),
            l.map(|l| l.test_kl_loss),
            r.neg_elbo_nats,
            r.iwae_nll_nats,
        ] {
            rec.push(v.map_or(String::new(), |v| format!("{v:.6}")));
        }
        rec.push(r.note.clone());
        rec.push(format!("{:.2}", r.seconds));
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::util::fsutil::write_atomic(&path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}
