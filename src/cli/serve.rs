//! `vae-tch serve`'s flags.
use std::path::PathBuf;

use clap::Args;
use tch::Device;

use super::args::{device, BestFlag};
use vae_tch::commands::serve::ServeRequest;

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  vae-tch serve runs/mnist-20261204-101500\n  \
vae-tch serve sweeps/kl-weight --port 8081\n  vae-tch serve runs/faces --device cuda --best\n\n\
The page: for a 2-D latent, the scatter of the test images' latent means (hover or drag to \
decode, the manifold as a backdrop); for any latent, random samples, reconstructions, sliders \
for the dimensions of largest variance, attribute sliders (after `vae-tch attributes`) and a \
morph between two test images; for a sweep, its points with values and nats, one or two side \
by side decoding the same z. The JSON API is in docs/serve.md."
)]
pub struct ServeArgs {
    /// A run folder, or a sweep folder (its summary.csv and points/).
    pub path: PathBuf,
    /// The data folder of the run (or of every point of the sweep), if it moved [default: the
    /// one in each config.toml]. Without its data a model still decodes, with no scatter.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address to listen on: 127.0.0.1 answers this machine only; 0.0.0.0 anyone who can
    /// reach it (there is no authentication).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The port (0: any free one; the URL printed says which).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Where the models decode: auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = device)]
    pub device: Device,
    #[command(flatten)]
    pub best: BestFlag,
}

impl ServeArgs {
    pub fn request(&self) -> ServeRequest {
        ServeRequest {
            path: self.path.clone(),
            data_dir: self.data_dir.clone(),
            host: self.host.clone(),
            port: self.port,
            device: self.device,
            checkpoint: self.best.pick(),
        }
    }
}
