//! `vae-tch sweep`: many settings of one model from one file (`spec`), each point an ordinary run
//! folder (`points`) trained by the same job and finished by the same `crate::finish` as `train`
//! (`scheduler`), split across processes by a scheduler's array index (`shard`), stacked where
//! points share a shape (`group`), summed up in summary.csv (`summary`) and compared in figures
//! and a table (`report`); `slurm` writes a sweep's sbatch script and `status` tells where a
//! sweep stands.
pub mod group;
pub mod hparams;
pub mod params;
pub mod points;
pub mod report;
pub mod scheduler;
pub mod shard;
pub mod slurm;
pub mod spec;
pub mod status;
pub mod summary;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;
use tch::Device;

use crate::config::overrides::Overrides;
use crate::config::StackMode;
use crate::train::Interrupted;

/// `vae-tch sweep run`, typed.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub sweep: PathBuf,
    /// The sweep folder [default: sweeps/<file stem>].
    pub out: Option<PathBuf>,
    /// `--shard I/N`, else the scheduler's environment.
    pub shard: Option<String>,
    pub shards: Option<usize>,
    /// What the flags set in every point (epochs, limits, data folder, precision).
    pub overrides: Overrides,
    pub device: Device,
    /// Train more than `spec::MAX_POINTS` points.
    pub force: bool,
    pub stack: StackMode,
    pub stack_max: usize,
    pub export: bool,
    pub quiet: bool,
}

impl RunRequest {
    /// This request as the command line that makes it (every flag it was given, the folder
    /// spelled out), shell-quoted: what goes on after a stop.
    pub fn command_line(&self) -> String {
        let o = &self.overrides;
        let path = |p: &Path| p.display().to_string();
        let mut args: Vec<String> = vec!["vae-tch".into(), "sweep".into(), "run".into()];
        args.push(path(&self.sweep));
        args.extend(["--out".into(), path(&self.out())]);
        let mut flag = |name: &str, value: Option<String>| {
            if let Some(v) = value {
                args.push(name.to_string());
                args.push(v);
            }
        };
        flag("--shard", self.shard.clone());
        flag("--shards", self.shards.map(|n| n.to_string()));
        flag("--epochs", o.run.epochs.map(|n| n.to_string()));
        flag("--device", Some(crate::util::device::name(self.device)));
        flag("--data-dir", o.run.data_dir.as_deref().map(path));
        flag("--precision", o.run.precision.map(|p| p.to_string()));
        flag("--train-limit", o.train_limit.map(|n| n.to_string()));
        flag("--test-limit", o.test_limit.map(|n| n.to_string()));
        flag("--stack", Some(self.stack.to_string()));
        flag("--stack-max", Some(self.stack_max.to_string()));
        for (on, name) in [
            (self.force, "--force"),
            (!self.export, "--no-export"),
            (self.quiet, "--quiet"),
        ] {
            if on {
                args.push(name.to_string());
            }
        }
        args.iter()
            .map(|a| crate::util::shell::quote(a))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The sweep folder.
    pub fn out(&self) -> PathBuf {
        self.out.clone().unwrap_or_else(|| {
            let stem = self.sweep.file_stem().unwrap_or_default();
            Path::new("sweeps").join(stem)
        })
    }
}

/// Trains this process's points of the sweep, then writes the report; returns the table and the
/// report's path, as printed. A failed point is marked FAILED and the others train on; the
/// command then ends in an error naming the failed points.
pub fn run(req: &RunRequest) -> Result<String> {
    let (sweep, file) = spec::load(&req.sweep, &req.overrides, req.force)?;
    let shard = shard::resolve(req.shard.as_deref(), req.shards, |k| std::env::var(k).ok())?;
    let out = req.out();
    let opts = scheduler::SweepRun {
        out: out.clone(),
        device: req.device,
        shard,
        quiet: req.quiet,
        export: req.export,
        stack: req.stack,
        stack_max: req.stack_max,
    };
    if !req.quiet {
        let mine: Vec<&str> = scheduler::owned(&sweep, &opts)
            .into_iter()
            .map(|i| sweep.points[i].name.as_str())
            .collect();
        eprintln!(
            "sweep: {} points over {} into {} (shard {shard}: {} of them first{}{})",
            sweep.points.len(),
            sweep.keys.join(", "),
            out.display(),
            mine.len(),
            if mine.is_empty() { "" } else { ": " },
            mine.join(", ")
        );
    }
    let outcome = match scheduler::run(&sweep, &file, &opts) {
        Err(mut e) => {
            if let Some(stop) = e.downcast_mut::<Interrupted>() {
                stop.goes_on = Some(req.command_line());
            }
            return Err(e);
        }
        Ok(outcome) => outcome,
    };
    if !req.quiet {
        eprintln!(
            "sweep: this process trained {} point(s); {} were held by other processes",
            outcome.trained.len(),
            outcome.busy.len()
        );
    }
    let report = report::report(&out, req.device, &outcome.failed_here())?;
    let mut printed = report.table;
    let _ = writeln!(printed, "{}", out.join("report.md").display());
    if !outcome.failed.is_empty() {
        let names: Vec<&str> = outcome.failed.iter().map(|(n, _)| n.as_str()).collect();
        return Err(super::FailedAfter {
            printed,
            message: format!(
                "{} of the points failed (see {}/points/<name>/FAILED): {}",
                outcome.failed.len(),
                out.display(),
                names.join(", ")
            ),
        }
        .into());
    }
    Ok(printed)
}

/// `vae-tch sweep report DIR`: the comparison as the folder holds it now; returns the table and
/// the files written, as printed.
pub fn report(dir: &Path, device: Device) -> Result<String> {
    let r = report::report(dir, device, &Default::default())?;
    let mut printed = r.table;
    for f in r.files {
        let _ = writeln!(printed, "{}", f.display());
    }
    Ok(printed)
}
