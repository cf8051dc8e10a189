//! What several commands share: value parsers (a bad value is a usage error, exit 2, naming
//! the flag) and flattened groups of flags (the device, the data limits, `--best`).
use std::path::PathBuf;

use clap::Args;
use tch::Device;

use vae_tch::run::checkpoint::Pick;

/// A bad combination of flags that clap's attributes cannot say: the usage error, exit 2.
pub fn usage(message: &str) -> ! {
    use clap::CommandFactory;
    super::Cli::command()
        .error(clap::error::ErrorKind::ArgumentConflict, message)
        .exit()
}

/// `--device auto|cpu|cuda|cuda:N`; CUDA asked for and not there is refused, never a silent CPU.
pub fn device(s: &str) -> Result<Device, String> {
    vae_tch::util::device::parse(s).map_err(|e| e.to_string())
}

/// `C,H,W`: three whole numbers of at least 1, e.g. `3,64,64`.
pub fn shape(s: &str) -> Result<[i64; 3], String> {
    let parts: Vec<Result<i64, _>> = s.split(',').map(|p| p.trim().parse::<i64>()).collect();
    match parts.as_slice() {
        [Ok(c), Ok(h), Ok(w)] if *c >= 1 && *h >= 1 && *w >= 1 => Ok([*c, *h, *w]),
        _ => Err(format!(
            "{s}: expected three whole numbers C,H,W of at least 1 (e.g. 3,64,64)"
        )),
    }
}

/// A count of at least 1 (epochs, steps, images, samples).
pub fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("0: must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s}: expected a whole number of at least 1")),
    }
}

/// The same as an i64 (tensor sizes).
pub fn at_least_one_i64(s: &str) -> Result<i64, String> {
    at_least_one(s).and_then(|n| i64::try_from(n).map_err(|_| format!("{s}: too large")))
}

/// Where a command that trains runs: CUDA when there is one.
#[derive(Debug, Args)]
pub struct TrainingDevice {
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto", value_parser = device)]
    pub device: Device,
}

/// Where a command that only runs the model computes: the CPU unless asked.
#[derive(Debug, Args)]
pub struct ModelDevice {
    /// cpu, cuda or cuda:N (auto: CUDA when present).
    #[arg(long, default_value = "cpu", value_parser = device)]
    pub device: Device,
}

/// Which checkpoint of a run.
#[derive(Debug, Args)]
pub struct BestFlag {
    /// Use the checkpoint of the lowest test loss (`<run>/best/`), not the last epoch's.
    #[arg(long)]
    pub best: bool,
}

impl BestFlag {
    pub fn pick(&self) -> Pick {
        if self.best {
            Pick::Best
        } else {
            Pick::Last
        }
    }
}

/// Quick runs on part of the data.
#[derive(Debug, Args)]
pub struct Limits {
    /// Use only the first N training images (quick runs).
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub train_limit: Option<usize>,
    /// Use only the first N test images.
    #[arg(long, value_name = "N", value_parser = at_least_one)]
    pub test_limit: Option<usize>,
}

/// A run folder and where its data are when they moved.
#[derive(Debug, Args)]
pub struct RunArg {
    /// The run folder.
    pub run: PathBuf,
    /// The run's data folder, if it moved [default: the one in its config.toml].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}
