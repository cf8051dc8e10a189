//! The data of the sweep's parameter figure (`crate::plot::params`): for each swept numeric key
//! that is not a seed, the negative ELBO in nats against its values, one series per setting of
//! the other keys that are not seeds, the seeds folded into a mean and a range.
use std::collections::BTreeMap;

use toml::Value;

use super::spec::{value_text, Sweep};
use super::summary::Row;
use crate::plot::params::{ParamPanel, Series, Spread};

/// Whether a swept key is a seed (`train.seed`, `train.shuffle_seed`, `data.split_seed`): its
/// points are repeats, folded into a mean and a range.
pub fn is_seed(key: &str) -> bool {
    key.rsplit('.').next().is_some_and(|k| k.contains("seed"))
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Float(f) if f.is_finite() => Some(*f),
        _ => None,
    }
}

/// `key` without its table (`train.r_loss_factor` is `r_loss_factor`).
fn short(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// The panels: one per numeric key with at least two values. `rows` are the summary's, in any
/// order; points with no nats yet (or failed) are left out.
pub fn panels(sweep: &Sweep, rows: &[Row]) -> Vec<ParamPanel> {
    let nats: BTreeMap<&str, f64> = rows
        .iter()
        .filter(|r| r.status != super::points::Status::Failed)
        .filter_map(|r| r.neg_elbo_nats.map(|n| (r.name.as_str(), n)))
        .collect();
    let value = |p: &super::spec::Point, key: &str| {
        p.values
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let mut out = Vec::new();
    for key in sweep.keys.iter().filter(|k| !is_seed(k)) {
        let xs: Vec<f64> = sweep
            .points
            .iter()
            .filter_map(|p| value(p, key).as_ref().and_then(number))
            .collect();
        if xs.len() != sweep.points.len() {
            continue; // not numeric at every point
        }
        let (lo, hi) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        if lo == hi {
            continue;
        }
        // series label -> (x, nats) of its points
        let mut series: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for p in &sweep.points {
            let Some(&n) = nats.get(p.name.as_str()) else {
                continue;
            };
            let x = value(p, key).as_ref().and_then(number).expect("numeric");
            let label: Vec<String> = sweep
                .keys
                .iter()
                .filter(|k| *k != key && !is_seed(k))
                .map(|k| {
                    let v = value(p, k).map_or(String::new(), |v| value_text(&v));
                    format!("{}={v}", short(k))
                })
                .collect();
            let label = if label.is_empty() {
                "all points".to_string()
            } else {
                label.join(", ")
            };
            series.entry(label).or_default().push((x, n));
        }
        if series.is_empty() {
            continue;
        }
        let series = series
            .into_iter()
            .map(|(label, mut xn)| {
                xn.sort_by(|a, b| a.0.total_cmp(&b.0));
                let points = xn
                    .chunk_by(|a, b| a.0 == b.0)
                    .map(|seeds| {
                        let ns = seeds.iter().map(|&(_, n)| n);
                        Spread {
                            x: seeds[0].0,
                            mean: ns.clone().sum::<f64>() / seeds.len() as f64,
                            lo: ns.clone().fold(f64::INFINITY, f64::min),
                            hi: ns.fold(f64::NEG_INFINITY, f64::max),
                            n: seeds.len(),
                        }
                    })
                    .collect();
                Series { label, points }
            })
            .collect();
        out.push(ParamPanel {
            key: key.clone(),
            log_x: lo > 0.0 && hi / lo > 10.0,
            series,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn seeds_are_keys_that_name_a_seed() {
        assert!(super::is_seed("train.seed") && super::is_seed("data.split_seed"));
        assert!(!super::is_seed("train.r_loss_factor"));
    }
}
