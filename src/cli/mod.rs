//! The command line (clap derive): one subcommand per user action. The clap types live here with
//! their value parsers and their `request()`, which turns the flags into the library's typed
//! request (crate::commands); the library never sees clap. A bad flag value or combination is
//! a usage error: clap's message naming the flag, exit 2.
mod args;
mod faces;
mod figures;
mod serve;
mod sweep;
mod tools;
mod train;

use clap::{Parser, Subcommand};

pub use faces::{ArithmeticArgs, AttributesArgs, LatentHistArgs, MorphArgs};
pub use figures::{
    InterpolateArgs, LatentPlotArgs, ManifoldArgs, PlotLossArgs, ReconstructArgs, SampleArgs,
};
pub use serve::ServeArgs;
pub use sweep::SweepCommand;
pub use tools::{BenchArgs, DataCommand, EvalArgs, ExportArgs, ImportKerasArgs, SummaryArgs};
pub use train::TrainArgs;

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
    /// The faces chapter: a vector in the latent space per attribute (CelebA's table, or the
    /// classes one-vs-rest), by the book's rule [default: <run>/attributes.safetensors].
    Attributes(AttributesArgs),
    /// Face arithmetic: test faces without an attribute, then decodes of z + factor x its
    /// vector [default: <run>/arithmetic-<attribute>.png].
    Arithmetic(ArithmeticArgs),
    /// Morphing: decodes between two images' latent points, the images at the ends
    /// [default: <run>/morph-<from>-<to>.png].
    Morph(MorphArgs),
    /// Histograms of the first latent dimensions over test images, each under the N(0, 1)
    /// density [default: <run>/latent-hist.png].
    LatentHist(LatentHistArgs),
    /// What a trained model is worth, in nats: the negative ELBO, the importance-weighted
    /// (IWAE) bound on the negative log-likelihood, reconstruction MSE and PSNR, KL per latent
    /// dimension and the active units; comparable across r_loss_factor values.
    Eval(EvalArgs),
    /// Explore a run or a sweep in the browser: a local web server with one page (scatter,
    /// sliders, attributes, morphing) and a JSON API; prints the URL.
    Serve(ServeArgs),
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

impl Command {
    /// Whether the command trains: Ctrl-C then finishes the step and keeps the last checkpoint
    /// (crate::util::interrupt) instead of ending the process at once.
    pub fn trains(&self) -> bool {
        matches!(
            self,
            Command::Train(_)
                | Command::Sweep {
                    command: SweepCommand::Run(_)
                }
        )
    }
}
