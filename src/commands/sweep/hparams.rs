//! The sweep in TensorBoard's HParams tab (`crate::run::hparams`): each trained point's session
//! (its swept values, status, and the nats and test loss the table compares), and the sweep
//! folder's experiment summary (the swept keys with their values, the metrics). Rewritten with
//! the report, so that it follows the folder as it is.
use std::path::Path;

use anyhow::{Context, Result};
use toml::Value;

use super::points::{point_dir, Status};
use super::spec::{value_text, Sweep};
use super::summary::Row;
use crate::run::checkpoint;
use crate::run::hparams::{self, HValue, Metric, Session, SessionStatus};

pub const NEG_ELBO_TAG: &str = "eval/neg_elbo_nats";
pub const IWAE_TAG: &str = "eval/iwae_nll_nats";
/// The last epoch's test loss, as the run's own event files name it.
pub const TEST_LOSS_TAG: &str = "epoch/test_loss";

const METRICS: [Metric; 3] = [
    Metric {
        tag: NEG_ELBO_TAG,
        display: "-ELBO (nats)",
        description: "negative ELBO per image in nats (eval.json: the first 1,000 test images)",
    },
    Metric {
        tag: IWAE_TAG,
        display: "IWAE bound (nats)",
        description: "importance-weighted bound on -log p(x), k = 20",
    },
    Metric {
        tag: TEST_LOSS_TAG,
        display: "test loss",
        description: "the last epoch's test loss (r_loss_factor x MSE + KL)",
    },
];

fn hvalue(v: &Value) -> HValue {
    match v {
        Value::Integer(i) => HValue::Number(*i as f64),
        Value::Float(f) => HValue::Number(*f),
        Value::Boolean(b) => HValue::Bool(*b),
        other => HValue::Text(value_text(other)),
    }
}

fn secs(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Writes the experiment summary into `dir` and a session into every point that has trained.
pub fn write(sweep: &Sweep, dir: &Path, rows: &[Row]) -> Result<()> {
    let keys: Vec<(String, Vec<HValue>)> = sweep
        .keys
        .iter()
        .map(|k| {
            let mut values: Vec<HValue> = Vec::new();
            for p in &sweep.points {
                if let Some((_, v)) = p.values.iter().find(|(key, _)| key == k) {
                    let v = hvalue(v);
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
            }
            (k.clone(), values)
        })
        .collect();
    let created = std::fs::metadata(dir.join(super::spec::SWEEP_FILE))
        .and_then(|m| m.modified())
        .map_or(0.0, secs);
    let name = dir
        .file_name()
        .map_or("sweep".into(), |n| n.to_string_lossy().into_owned());
    hparams::write_experiment(dir, &name, &keys, &METRICS, created)
        .with_context(|| format!("writing the HParams experiment into {}", dir.display()))?;
    for (p, r) in sweep.points.iter().zip(rows) {
        debug_assert_eq!(p.name, r.name);
        let run = point_dir(dir, p);
        let Ok(state) = checkpoint::read_state(&run) else {
            continue; // no epoch yet: no session
        };
        let values: Vec<(String, HValue)> = p
            .values
            .iter()
            .map(|(k, v)| (k.clone(), hvalue(v)))
            .collect();
        let mut metrics: Vec<(&'static str, f64)> = Vec::new();
        if r.status != Status::Failed {
            metrics.extend(r.neg_elbo_nats.map(|n| (NEG_ELBO_TAG, n)));
            metrics.extend(r.iwae_nll_nats.map(|n| (IWAE_TAG, n)));
        }
        metrics.extend(r.last.map(|l| (TEST_LOSS_TAG, l.test_loss)));
        let end = std::fs::metadata(run.join(checkpoint::METRICS_FILE))
            .and_then(|m| m.modified())
            .map_or(0.0, secs);
        let status = match r.status {
            Status::Done => SessionStatus::Success,
            Status::Failed => SessionStatus::Failure,
            Status::Running | Status::Pending => SessionStatus::Running,
        };
        hparams::write_session(
            &run,
            &Session {
                hparams: &values,
                metrics: &metrics,
                step: state.step,
                start_secs: end - r.seconds,
                end_secs: end,
                status,
            },
        )
        .with_context(|| format!("writing the HParams session into {}", run.display()))?;
    }
    Ok(())
}
