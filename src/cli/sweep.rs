//! `vae-tch sweep`'s subcommands, their flags and the requests they make.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::{at_least_one, Limits, ModelDevice, TrainingDevice};
use vae_tch::commands::sweep::RunRequest;
use vae_tch::config::overrides::{Overrides, RunOverrides};
use vae_tch::config::{Precision, StackMode};

#[derive(Debug, Subcommand)]
pub enum SweepCommand {
    /// Train every point of a sweep file into DIR/points/<name>/ (ordinary run folders), then
    /// write DIR/summary.csv and the comparison report. Run again, it continues: finished
    /// points are skipped, stopped ones resume. Several processes may share DIR (--shard, or a
    /// Slurm array / Kubernetes Indexed Job): each point is locked while it trains.
    Run(SweepRunArgs),
    /// Draw the comparison of a sweep folder as it is now (finished or not): compare-loss.png,
    /// compare-latent.png, compare-samples.png, report.md and summary.csv.
    Report(SweepReportArgs),
}

#[derive(Debug, Args)]
pub struct SweepRunArgs {
    /// The sweep file: `base = "configs/seed-mnist.toml"` (and/or inline [model], [optim],
    /// [data], [train] tables), `[axes]` with "table.key" = [values] (every combination is a
    /// point), and/or `[[points]]`.
    pub sweep: PathBuf,
    /// The sweep folder [default: sweeps/<file stem>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Be shard I of N (0-based): train points I, I+N, I+2N, ... first, then any point that no
    /// process holds and that is not done. [default: from SLURM_ARRAY_TASK_ID and
    /// SLURM_ARRAY_TASK_COUNT, or JOB_COMPLETION_INDEX with --shards; else the whole sweep]
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,
    /// The number of shards, where the scheduler does not say it (Kubernetes Indexed Jobs).
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Total epochs of every point (over the sweep file's).
    #[arg(long, value_parser = at_least_one)]
    pub epochs: Option<usize>,
    #[command(flatten)]
    pub device: TrainingDevice,
    /// The data folder of every point (over the sweep file's).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The convolutions' and matmuls' arithmetic for every point: fp32, tf32 or bf16 (see
    /// `train --help`) [default: the sweep file's; tf32].
    #[arg(long, value_enum, value_name = "P")]
    pub precision: Option<Precision>,
    #[command(flatten)]
    pub limits: Limits,
    /// Train more than 10,000 points.
    #[arg(long)]
    pub force: bool,
    /// Train points of one shape (differing only in seed, r_loss_factor, Adam's settings) as
    /// one stacked model: grouped convolutions and one Adam over all, each model with its own
    /// numbers. auto: on CUDA, where it is many times faster; not on the CPU, where it is
    /// slower than one point at a time.
    #[arg(long, value_enum, default_value_t = StackMode::Auto)]
    pub stack: StackMode,
    /// The most models in one stack; a memory estimate may choose fewer, and says so.
    #[arg(long, value_name = "K", default_value_t = 64, value_parser = at_least_one)]
    pub stack_max: usize,
    /// Do not write each point's export folder.
    #[arg(long)]
    pub no_export: bool,
    /// No progress bars or per-epoch lines (warnings still print).
    #[arg(long, short)]
    pub quiet: bool,
}

impl SweepRunArgs {
    pub fn request(&self) -> RunRequest {
        RunRequest {
            sweep: self.sweep.clone(),
            out: self.out.clone(),
            shard: self.shard.clone(),
            shards: self.shards,
            overrides: Overrides {
                train_limit: self.limits.train_limit,
                test_limit: self.limits.test_limit,
                run: RunOverrides {
                    epochs: self.epochs,
                    data_dir: self.data_dir.clone(),
                    precision: self.precision,
                    ..RunOverrides::default()
                },
                ..Overrides::default()
            },
            device: self.device.device,
            force: self.force,
            stack: self.stack,
            stack_max: self.stack_max,
            export: !self.no_export,
            quiet: self.quiet,
        }
    }
}

#[derive(Debug, Args)]
pub struct SweepReportArgs {
    /// The sweep folder.
    pub dir: PathBuf,
    /// Where the figures' encoding and decoding run.
    #[command(flatten)]
    pub device: ModelDevice,
}
