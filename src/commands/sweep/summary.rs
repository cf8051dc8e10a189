//! `<sweep>/summary.csv`: one row per point (its values, status, epochs, last losses, nats from
//! eval.json, seconds), always regenerated from the point folders as they are now.
use std::path::Path;

use anyhow::{Context, Result};

use super::points::{epochs_done, point_dir, status, Status};
use super::spec::{value_text, Sweep};
use crate::finish::EVAL_FILE;
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
    /// The negative ELBO and the IWAE bound in nats per image (eval.json), when written.
    pub neg_elbo_nats: Option<f64>,
    pub iwae_nll_nats: Option<f64>,
}

/// (negative ELBO, IWAE bound) of a point's eval.json.
fn read_eval(dir: &Path) -> (Option<f64>, Option<f64>) {
    let Some(v) = std::fs::read(dir.join(EVAL_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return (None, None);
    };
    (v["neg_elbo_nats"].as_f64(), v["iwae_nll_nats"].as_f64())
}

/// The sweep's rows, read from the point folders as they are now.
pub fn rows(sweep: &Sweep, out: &Path) -> Vec<Row> {
    sweep
        .points
        .iter()
        .map(|p| {
            let dir = point_dir(out, p);
            let history = metrics::read(&dir.join(METRICS_FILE)).unwrap_or_default();
            let (neg_elbo_nats, iwae_nll_nats) = read_eval(&dir);
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
                status: status(&dir, p.config.train.epochs),
                epochs_done: epochs_done(&dir),
                epochs: p.config.train.epochs,
                last: history.last().copied(),
                seconds: history.iter().map(|r| r.seconds).sum(),
                neg_elbo_nats,
                iwae_nll_nats,
            }
        })
        .collect()
}

/// `<sweep>/summary.csv`: one row per point with its values, status, epochs and final losses.
pub fn write_summary(sweep: &Sweep, out: &Path) -> Result<()> {
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
            "seconds",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    for r in rows(sweep, out) {
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
        rec.push(format!("{:.2}", r.seconds));
        w.write_record(&rec)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::util::fsutil::write_atomic(&path, &bytes)
        .with_context(|| format!("writing {}", path.display()))
}
