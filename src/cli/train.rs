//! `vae-tch train`'s flags and the request they make.
use std::path::PathBuf;

use clap::Args;

use super::args::{at_least_one, shape, Limits, TrainingDevice};
use vae_tch::commands::train::TrainRequest;
use vae_tch::config::overrides::{Overrides, RunOverrides};
use vae_tch::config::{CudaGraphMode, DatasetKind, Precision, ResizeMode};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Data set to train on [default: mnist].
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Folder with the data set's IDX files, or with your images for --dataset folder
    /// [default: data/<dataset>].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The model's input as C,H,W, e.g. 3,64,64 for RGB images resized to 64x64 (image folders;
    /// the strides must divide H and W) [default: 1,28,28].
    #[arg(long, value_name = "C,H,W", value_parser = shape)]
    pub input_shape: Option<[i64; 3]>,
    /// Image folders: squash (stretch to the size, as Keras) or crop (centre crop to its aspect
    /// ratio first); both nearest-neighbour.
    #[arg(long, value_enum)]
    pub resize: Option<ResizeMode>,
    /// Image folders: the fraction of the images held out as the test split [default: 0.1].
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
    /// Image folders: where the decoded cache goes [default: <data dir>/.vae-tch-cache].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep the training images in host memory (an image folder's memory-mapped cache) and
    /// stream each batch to the GPU, prefetched through pinned memory: for sets bigger than the
    /// GPU's memory. Without it they are copied to the GPU whole.
    #[arg(long)]
    pub stream_data: bool,
    #[command(flatten)]
    pub device: TrainingDevice,
    /// Total number of epochs (with --resume: the new total) [default: 200, as the seed].
    #[arg(long, value_parser = at_least_one)]
    pub epochs: Option<usize>,
    /// Images per training step [default: 32].
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 0.0005].
    #[arg(long, value_name = "RATE")]
    pub lr: Option<f64>,
    /// Weight of the per-image mean squared error against the KL term [default: 1000].
    #[arg(long, value_name = "F")]
    pub r_loss_factor: Option<f64>,
    /// Size of the latent space [default: 2].
    #[arg(long, value_name = "N")]
    pub latent_dim: Option<i64>,
    /// Seed for the initial weights, the shuffles and the sampling noise [default: 42].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub limits: Limits,
    /// Write test reconstructions every N epochs and after the last (0: never) [default: 20].
    #[arg(long, value_name = "N")]
    pub reconstruction_every: Option<usize>,
    /// Multiply the learning rate by F every --lr-decay-every epochs, as the book's
    /// step_decay_schedule: lr x F^floor(epoch / N) [default: 1.0, no decay].
    #[arg(long, value_name = "F")]
    pub lr_decay: Option<f64>,
    /// Epochs between two --lr-decay steps [default: 1].
    #[arg(long, value_name = "N")]
    pub lr_decay_every: Option<usize>,
    /// Stop after N epochs in a row without the test loss improving on its best by more than
    /// --min-delta (Keras's EarlyStopping on val_loss); the run stays resumable. 0 turns it
    /// off (e.g. with --resume, to train a stopped run on) [default: off].
    #[arg(long, value_name = "N")]
    pub early_stopping: Option<usize>,
    /// The least fall of the test loss that counts as an improvement for --early-stopping
    /// [default: 0].
    #[arg(long, value_name = "D")]
    pub min_delta: Option<f64>,
    /// Write no TensorBoard event files (<run>/tensorboard/; on by default).
    #[arg(long)]
    pub no_tensorboard: bool,
    /// Start from this TOML config (a preset in configs/, or a run's config.toml). Every flag
    /// given wins over it, even one equal to its default; the run prints what the flags changed.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The run folder [default: runs/<dataset>-<n>, the first free n].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint. The model, the data and the
    /// hyperparameters are the run's: only --epochs, --device, --data-dir, --cache-dir,
    /// --stream-data, --cuda-graph, --precision, --early-stopping, --min-delta and
    /// --no-tensorboard may be given with it.
    #[arg(
        long,
        value_name = "RUN",
        conflicts_with_all = [
            "dataset", "input_shape", "resize", "test_fraction", "batch_size", "lr",
            "r_loss_factor", "latent_dim", "seed", "train_limit", "test_limit",
            "reconstruction_every", "lr_decay", "lr_decay_every", "config", "out",
        ]
    )]
    pub resume: Option<PathBuf>,
    /// With --resume: train on even if the data differ from the run's (its data.toml).
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// Training step form on CUDA: auto (a CUDA graph, or eager steps with a warning if the
    /// capture fails), on (the graph or an error), off (eager). The CPU always runs eager
    /// steps. [default: auto, or the run's with --resume]
    #[arg(long, value_enum, value_name = "MODE")]
    pub cuda_graph: Option<CudaGraphMode>,
    /// Arithmetic of the convolutions and matmuls: fp32 (full float32, TF32 off on CUDA: exact
    /// Keras parity), tf32 (torch's CUDA defaults: TF32 convolutions), bf16 (autocast to
    /// bfloat16, as Keras's mixed_bfloat16; weights, Adam, the loss and BatchNorm's statistics
    /// stay float32). The same as fp32 on the CPU but bf16. [default: tf32, or the run's with
    /// --resume]
    #[arg(long, value_enum, value_name = "P")]
    pub precision: Option<Precision>,
    /// Do not write the TorchScript/safetensors exports into <run>/export at the end.
    #[arg(long)]
    pub no_export: bool,
    /// Print the config this command would train with (TOML) and exit without training.
    #[arg(long)]
    pub print_config: bool,
    /// No progress bars or per-epoch lines (warnings and errors still print).
    #[arg(long, short)]
    pub quiet: bool,
}

impl TrainArgs {
    /// The typed request: only the flags given override the config.
    pub fn request(&self) -> TrainRequest {
        TrainRequest {
            config_file: self.config.clone(),
            overrides: Overrides {
                dataset: self.dataset,
                batch_size: self.batch_size,
                learning_rate: self.lr,
                r_loss_factor: self.r_loss_factor,
                latent_dim: self.latent_dim,
                seed: self.seed,
                reconstruction_every: self.reconstruction_every,
                lr_decay: self.lr_decay,
                lr_decay_every: self.lr_decay_every,
                train_limit: self.limits.train_limit,
                test_limit: self.limits.test_limit,
                input_shape: self.input_shape,
                resize: self.resize,
                test_fraction: self.test_fraction,
                run: RunOverrides {
                    epochs: self.epochs,
                    data_dir: self.data_dir.clone(),
                    cuda_graph: self.cuda_graph,
                    precision: self.precision,
                    cache_dir: self.cache_dir.clone(),
                    stream: self.stream_data,
                    early_stopping: self.early_stopping,
                    min_delta: self.min_delta,
                    no_tensorboard: self.no_tensorboard,
                },
            },
            out: self.out.clone(),
            resume: self.resume.clone(),
            device: self.device.device,
            quiet: self.quiet,
            force_data: self.force,
            export: !self.no_export,
            print_config: self.print_config,
        }
    }
}
