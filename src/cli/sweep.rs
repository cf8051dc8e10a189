//! `vae-tch sweep`'s subcommands, their flags and the requests they make.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::args::{at_least_one, Limits, ModelDevice, TrainingDevice};
use vae_tch::commands::sweep::slurm::SlurmRequest;
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
    /// Write the Slurm job-array script of a sweep into DIR/slurm/sweep.sbatch (its log folder
    /// DIR/slurm/logs made first), for CPU nodes or, with --gpus, GPU nodes; --submit runs
    /// sbatch with it. Flags after `--` go to every task's `sweep run`, e.g.
    /// `vae-tch sweep slurm my.toml --array 8 --gpus 1 --submit -- --epochs 20`.
    Slurm(SweepSlurmArgs),
    /// Where a sweep folder stands: each point done, running, pending or failed, its epochs and
    /// seconds per epoch, and the time left at the running points' speed (for watching an
    /// array run: `watch vae-tch sweep status DIR`).
    Status(SweepStatusArgs),
}

#[derive(Debug, Args)]
pub struct SweepSlurmArgs {
    /// The sweep file.
    pub sweep: PathBuf,
    /// The sweep folder, on a file system every node sees [default: sweeps/<file stem>].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Array tasks: --array=0-(N-1) [default: the points, at most 4]. More tasks than points
    /// end at once; fewer train several points each.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub array: Option<usize>,
    /// GPUs per task (--gpus-per-task); 0 is a CPU job on --device cpu.
    #[arg(long, value_name = "G", default_value_t = 0)]
    pub gpus: usize,
    /// CPUs per task (--cpus-per-task), also libtorch's threads [default: 2, or 4 per GPU].
    #[arg(long, value_name = "C", value_parser = at_least_one)]
    pub cpus: Option<usize>,
    /// Each task's time limit (--time); 3 minutes before it a task stops at a step and
    /// requeues itself.
    #[arg(long, value_name = "T", default_value = "04:00:00")]
    pub time: String,
    /// The partition (--partition) [default: the cluster's].
    #[arg(long, value_name = "P")]
    pub partition: Option<String>,
    /// Memory per node (--mem, e.g. 16G) [default: the cluster's].
    #[arg(long, value_name = "M")]
    pub mem: Option<String>,
    /// The account to charge (--account).
    #[arg(long, value_name = "A")]
    pub account: Option<String>,
    /// Run sbatch with the script (else print the command).
    #[arg(long)]
    pub submit: bool,
    /// Flags for `sweep run` in every task (after `--`): --epochs, --data-dir, --stack, ...
    #[arg(last = true, value_name = "SWEEP RUN FLAGS")]
    pub run_flags: Vec<String>,
}

/// `sweep run`'s flags alone, to check those that `sweep slurm` passes on.
#[derive(Debug, clap::Parser)]
#[command(name = "vae-tch sweep run")]
struct RunFlags {
    #[command(flatten)]
    args: SweepRunArgs,
}

impl SweepSlurmArgs {
    /// The request, once the flags for `sweep run` parse as its own do (else clap's error,
    /// naming the flag, before any script is written).
    pub fn request(&self) -> anyhow::Result<SlurmRequest> {
        use clap::Parser;
        let mut line: Vec<std::ffi::OsString> =
            vec!["vae-tch sweep run".into(), self.sweep.clone().into()];
        line.extend(self.run_flags.iter().map(Into::into));
        if let Err(e) = RunFlags::try_parse_from(&line) {
            anyhow::bail!("the flags after `--` are not `sweep run`'s: {}", e.render());
        }
        for taken in ["--out", "--shard", "--shards"] {
            if self
                .run_flags
                .iter()
                .any(|f| f == taken || f.starts_with(&format!("{taken}=")))
            {
                anyhow::bail!("{taken} after `--`: `sweep slurm` sets the folder and the shards itself (use --out before `--`)");
            }
        }
        Ok(SlurmRequest {
            sweep: self.sweep.clone(),
            out: self.out.clone(),
            array: self.array,
            gpus: self.gpus,
            cpus: self.cpus,
            time: self.time.clone(),
            partition: self.partition.clone(),
            mem: self.mem.clone(),
            account: self.account.clone(),
            run_flags: self.run_flags.clone(),
            submit: self.submit,
        })
    }
}

#[derive(Debug, Args)]
pub struct SweepStatusArgs {
    /// The sweep folder.
    pub dir: PathBuf,
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
