//! `vae-tch sweep status DIR`: where a sweep stands, for watching an array run: each point done,
//! running, pending or failed, its epochs and speed, and an estimate of the time left from the
//! running points' speed.
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use super::points::{epochs_done, point_dir, status, Status};
use super::spec;
use crate::run::checkpoint::METRICS_FILE;
use crate::run::metrics;

/// One point as `status` sees it.
#[derive(Debug, Clone)]
pub struct PointState {
    pub name: String,
    pub status: Status,
    pub epochs_done: usize,
    pub epochs: usize,
    /// Mean seconds per epoch of its last (up to 3) epochs.
    pub seconds_per_epoch: Option<f64>,
}

/// The sweep as it stands, and the estimated seconds left (None: nothing to go by).
pub struct SweepState {
    pub points: Vec<PointState>,
    pub eta_seconds: Option<f64>,
}

impl SweepState {
    pub fn count(&self, s: Status) -> usize {
        self.points.iter().filter(|p| p.status == s).count()
    }
}

/// Reads the sweep folder `dir`.
pub fn state(dir: &Path) -> Result<SweepState> {
    let sweep = spec::load_ran(dir)?;
    let points: Vec<PointState> = sweep
        .points
        .iter()
        .map(|p| {
            let d = point_dir(dir, p);
            let rows = metrics::read(&d.join(METRICS_FILE)).unwrap_or_default();
            let last: Vec<f64> = rows.iter().rev().take(3).map(|r| r.seconds).collect();
            PointState {
                name: p.name.clone(),
                status: status(&d, p.config.train.epochs),
                epochs_done: epochs_done(&d).min(p.config.train.epochs),
                epochs: p.config.train.epochs,
                seconds_per_epoch: (!last.is_empty())
                    .then(|| last.iter().sum::<f64>() / last.len() as f64),
            }
        })
        .collect();
    Ok(SweepState {
        eta_seconds: eta(&points),
        points,
    })
}

/// Seconds left: the epochs left of the running and pending points, each at its own speed (a
/// pending point, or one with no epoch yet, at the mean speed of the points that have one),
/// shared among the running points. None when nothing is running or no speed is known.
pub fn eta(points: &[PointState]) -> Option<f64> {
    let running = points
        .iter()
        .filter(|p| p.status == Status::Running)
        .count();
    let speeds: Vec<f64> = points.iter().filter_map(|p| p.seconds_per_epoch).collect();
    if running == 0 || speeds.is_empty() {
        return None;
    }
    let mean = speeds.iter().sum::<f64>() / speeds.len() as f64;
    let work: f64 = points
        .iter()
        .filter(|p| matches!(p.status, Status::Running | Status::Pending))
        .map(|p| (p.epochs - p.epochs_done) as f64 * p.seconds_per_epoch.unwrap_or(mean))
        .sum();
    Some(work / running as f64)
}

/// `12 s`, `3 min 20 s`, `2 h 05 min`.
pub fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// `vae-tch sweep status DIR`, as printed.
pub fn run(dir: &Path) -> Result<String> {
    let st = state(dir)?;
    let mut t = format!(
        "{}: {} points: {} done, {} running, {} pending, {} failed\n",
        dir.display(),
        st.points.len(),
        st.count(Status::Done),
        st.count(Status::Running),
        st.count(Status::Pending),
        st.count(Status::Failed)
    );
    let width = st
        .points
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let _ = writeln!(t, "{:width$}  status   epochs  s/epoch", "point");
    for p in &st.points {
        let _ = writeln!(
            t,
            "{:width$}  {:7}  {:>6}  {:>7}",
            p.name,
            p.status.to_string(),
            format!("{}/{}", p.epochs_done, p.epochs),
            p.seconds_per_epoch
                .map_or("-".to_string(), |s| format!("{s:.1}"))
        );
    }
    let left = st.count(Status::Running) + st.count(Status::Pending);
    let _ = match st.eta_seconds {
        Some(s) => writeln!(
            t,
            "about {} left at the running points' speed ({} running at once)",
            duration(s),
            st.count(Status::Running)
        ),
        None if left == 0 => writeln!(t, "nothing left to train"),
        None => writeln!(
            t,
            "no estimate: nothing is running now, or no epoch has finished yet"
        ),
    };
    if st.count(Status::Failed) > 0 {
        let _ = writeln!(
            t,
            "failed points say why in {}/points/<name>/FAILED; `sweep run` trains them again",
            dir.display()
        );
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(status: Status, done: usize, epochs: usize, speed: Option<f64>) -> PointState {
        PointState {
            name: "p".into(),
            status,
            epochs_done: done,
            epochs,
            seconds_per_epoch: speed,
        }
    }

    #[test]
    fn the_eta_shares_the_work_left_among_the_running_points() {
        // Running: 2 epochs left at 10 s, 1 left at 30 s; pending: 4 epochs at the mean of
        // 10, 30 and 20 (done) = 20 s; failed and done points add nothing. 130 s over 2.
        let points = [
            p(Status::Running, 3, 5, Some(10.0)),
            p(Status::Running, 4, 5, Some(30.0)),
            p(Status::Pending, 0, 4, None),
            p(Status::Done, 5, 5, Some(20.0)),
            p(Status::Failed, 1, 5, None),
        ];
        assert_eq!(eta(&points), Some(65.0));
        // Nothing running: no estimate.
        assert_eq!(eta(&points[2..]), None);
        assert_eq!(duration(65.0), "1 min 05 s");
        assert_eq!(duration(7500.0), "2 h 05 min");
    }
}
