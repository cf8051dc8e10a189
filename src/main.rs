//! The `vae-tch` binary: parse the command line, call the library, print errors with their
//! causes and exit non-zero.
mod cli;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{
    BenchArgs, Cli, Command, DataCommand, ExportArgs, FetchArgs, FigureArgs, ImportKerasArgs,
    SummaryArgs, TrainArgs,
};
use vae_tch::config::TrainConfig;
use vae_tch::data::fetch::{self, FetchOptions};
use vae_tch::plot::run::{self as figures, RunData, Which};
use vae_tch::plot::Format;
use vae_tch::step::{CudaGraphMode, StepForm};
use vae_tch::train::{self, TrainJob};
use vae_tch::{bench, checkpoint, device, export, keras_import, summary};

/// Keeps glibc from returning every large buffer to the kernel: by default each activation of
/// 128 KiB or more is its own mmap, freed with munmap and faulted in again the next step. With
/// the thresholds raised, freed buffers are reused: 3% off a CPU training step (16.9 -> 16.3
/// ms, 2 cores, 2026-11-28; jemalloc was slower, 18-20 ms).
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

/// A line for errors caused by a full disk (ENOSPC), which libraries report in their own words
/// ("No space left on device (os error 28)", "Os { code: 28, .. }").
fn disk_full_hint(e: &anyhow::Error) -> Option<String> {
    let full = e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::ENOSPC))
    }) || {
        let text = format!("{e:#}");
        text.contains("os error 28") || text.contains("code: 28")
    };
    full.then(|| {
        "the disk is full: free some space, then run the same command again (a run continues with \
         `vae-tch train --resume RUN`; its last complete checkpoint is kept)"
            .to_string()
    })
}

/// Exit status of an internal error (a panic): EX_SOFTWARE of sysexits.h. Usage errors exit 2
/// (clap), runtime errors 1.
const EXIT_INTERNAL: u8 = 70;

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    // A panic is a bug: one line that says so, no backtrace wall (RUST_BACKTRACE=1 shows it).
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            default_hook(info);
        }
    }));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            if let Some(stop) = e.downcast_ref::<train::Interrupted>() {
                eprintln!("{stop}");
                return ExitCode::from(128 + stop.signal as u8);
            }
            eprintln!("error: {e:#}");
            if let Some(hint) = disk_full_hint(&e) {
                eprintln!("{hint}");
            }
            ExitCode::FAILURE
        }
        Err(panic) => {
            let message = vae_tch::cuda_graph::panic_message(&panic);
            let first = message.lines().next().unwrap_or("panic");
            eprintln!(
                "internal error: {first} (please report it with the command that caused it; RUST_BACKTRACE=1 shows where)"
            );
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Train(args) => run_train(args),
        Command::Summary(args) => run_summary(args),
        Command::Export(args) => run_export(args),
        Command::ImportKeras(args) => run_import_keras(args),
        Command::PlotLoss(a) => done(figures::plot_loss(
            &a.run,
            a.out.as_deref(),
            a.log,
            a.format,
        )),
        Command::LatentPlot(a) => with_run(&a.fig, |src, out| {
            figures::latent_plot(src, a.split, a.limit, out, a.format)
        }),
        Command::Manifold(a) => with_run(&a.fig, |src, out| {
            figures::manifold(src, a.n, a.spacing, a.range, out)
        }),
        Command::Reconstruct(a) => with_run(&a.fig, |src, out| figures::reconstruct(src, a.n, out)),
        Command::Sample(a) => with_run(&a.fig, |src, out| figures::sample(src, a.n, a.seed, out)),
        Command::Interpolate(a) => with_run(&a.fig, |src, out| {
            figures::interpolate(src, a.from, a.to, a.steps, out)
        }),
        Command::Bench(args) => run_bench(args),
        Command::Info => {
            print!("{}", vae_tch::info::report());
            Ok(())
        }
        Command::Data {
            command: DataCommand::Fetch(args),
        } => run_fetch(args),
    }
}

/// Prints the path a figure command wrote.
fn done(written: Result<std::path::PathBuf>) -> Result<()> {
    println!("{}", written?.display());
    Ok(())
}

fn with_run(
    a: &FigureArgs,
    draw: impl FnOnce(&RunData, Option<&Path>) -> Result<std::path::PathBuf>,
) -> Result<()> {
    let src = RunData {
        run: &a.run,
        data_dir: a.data_dir.as_deref(),
        device: device::parse(&a.device)?,
    };
    done(draw(&src, a.out.as_deref()))
}

fn load_config_file(path: &Path) -> Result<TrainConfig> {
    TrainConfig::load(path).with_context(|| format!("--config {}", path.display()))
}

/// The config of a new run: --config (or the defaults), then each flag.
fn new_run_config(a: &TrainArgs) -> Result<TrainConfig> {
    let mut c = match &a.config {
        Some(path) => load_config_file(path)?,
        None => TrainConfig::default(),
    };
    // Flags left at their defaults do not override a --config file.
    let d = TrainConfig::default();
    let file = a.config.is_some();
    macro_rules! set {
        ($dst:expr, $val:expr, $default:expr) => {
            if !file || $val != $default {
                $dst = $val;
            }
        };
    }
    set!(c.data.dataset, a.dataset, d.data.dataset);
    set!(c.train.batch_size, a.batch_size, d.train.batch_size);
    set!(c.optim.learning_rate, a.lr, d.optim.learning_rate);
    set!(
        c.train.r_loss_factor,
        a.r_loss_factor,
        d.train.r_loss_factor
    );
    set!(c.model.latent_dim, a.latent_dim, d.model.latent_dim);
    set!(c.train.seed, a.seed, d.train.seed);
    set!(
        c.train.reconstruction_every,
        a.reconstruction_every,
        d.train.reconstruction_every
    );
    if a.train_limit.is_some() {
        c.data.train_limit = a.train_limit;
    }
    if a.test_limit.is_some() {
        c.data.test_limit = a.test_limit;
    }
    if let Some(shape) = &a.input_shape {
        let &[ch, h, w] = shape.as_slice() else {
            anyhow::bail!(
                "--input-shape {}: expected three numbers C,H,W (e.g. 3,64,64)",
                shape
                    .iter()
                    .map(|v| v.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            );
        };
        c.model.input_shape = [ch, h, w];
        // The decoder's last layer gives the channels.
        if let Some(last) = c.model.decoder_conv_t_filters.last_mut() {
            *last = ch;
        }
    }
    if let Some(r) = a.resize {
        c.data.resize = r;
    }
    if let Some(f) = a.test_fraction {
        c.data.test_fraction = f;
    }
    apply_run_flags(&mut c, a)?;
    c.validate()?;
    Ok(c)
}

/// The flags a resumed run may change too: epochs, where the data is, how it trains.
fn apply_run_flags(c: &mut TrainConfig, a: &TrainArgs) -> Result<()> {
    if let Some(e) = a.epochs {
        if e == 0 {
            anyhow::bail!("--epochs 0: train at least one epoch");
        }
        c.train.epochs = e;
    }
    if a.data_dir.is_some() {
        c.data.dir = a.data_dir.clone();
    }
    if let Some(mode) = a.cuda_graph {
        c.train.cuda_graph = mode;
    }
    if a.cache_dir.is_some() {
        c.data.cache_dir = a.cache_dir.clone();
    }
    if a.stream_data {
        c.data.stream = true;
    }
    Ok(())
}

fn run_train(a: TrainArgs) -> Result<()> {
    let device = device::parse(&a.device)?;
    vae_tch::interrupt::install();
    let job = match &a.resume {
        Some(run) => {
            let mut config = checkpoint::read_config(run)?;
            apply_run_flags(&mut config, &a)?;
            // A run with no finished epoch resumes from the beginning (train says so).
            let done = checkpoint::read_state(run).map_or(0, |s| s.epoch);
            if config.train.epochs < done {
                anyhow::bail!(
                    "--epochs {}: {} already has {done} epochs done; pass --epochs N with N above {done} to train on",
                    config.train.epochs,
                    run.display()
                );
            }
            TrainJob {
                run: run.clone(),
                config,
                resume: true,
                device,
                quiet: a.quiet,
                force_data: a.force,
            }
        }
        None => {
            let config = new_run_config(&a)?;
            let run = match &a.out {
                Some(dir) => dir.clone(),
                None => checkpoint::new_run_dir(Path::new("runs"), config.data.dataset.name()),
            };
            TrainJob {
                run,
                config,
                resume: false,
                device,
                quiet: a.quiet,
                force_data: a.force,
            }
        }
    };
    let rows = train::train(&job)?;
    if !rows.is_empty() {
        // The run's figures: loss curves and the test set's latent means.
        figures::plot_loss(&job.run, None, false, Format::Png)?;
        let src = RunData {
            run: &job.run,
            data_dir: None,
            device,
        };
        figures::latent_plot(
            &src,
            Which::Test,
            job.config.data.test_limit,
            None,
            Format::Png,
        )?;
        if !a.quiet {
            eprintln!(
                "figures: {}, {}",
                job.run.join("loss.png").display(),
                job.run.join("latent.png").display()
            );
        }
    }
    // After the figures, which the export's model card shows.
    if !a.no_export && !rows.is_empty() {
        let out = export::default_dir(&job.run);
        export::export(&job.run, &out, device)
            .with_context(|| format!("exporting {}", job.run.display()))?;
        if !a.quiet {
            eprintln!(
                "exported TorchScript, safetensors and a model card to {}",
                out.display()
            );
        }
    }
    match rows.last() {
        Some(last) => println!(
            "{}: epoch {}: train loss {:.3} (r {:.3}, kl {:.3}), test loss {:.3} (r {:.3}, kl {:.3})",
            job.run.display(),
            last.epoch,
            last.train_loss,
            last.train_r_loss,
            last.train_kl_loss,
            last.test_loss,
            last.test_r_loss,
            last.test_kl_loss
        ),
        None => println!("{}: already trained to {} epochs; raise --epochs to go on", job.run.display(), job.config.train.epochs),
    }
    Ok(())
}

fn run_summary(a: SummaryArgs) -> Result<()> {
    let mut config = match (&a.config, &a.run) {
        (Some(path), _) => load_config_file(path)?,
        (None, Some(run)) => checkpoint::read_config(run)?,
        (None, None) => TrainConfig::default(),
    };
    if a.config.is_none() && a.run.is_none() {
        config.model.latent_dim = a.latent_dim;
    }
    config.validate()?;
    let model = checkpoint::build(&config, tch::Device::Cpu, 0);
    print!("{}", summary::render(&model.vae));
    Ok(())
}

fn run_export(a: ExportArgs) -> Result<()> {
    let device = device::parse(&a.device)?;
    let out = a.out.clone().unwrap_or_else(|| export::default_dir(&a.run));
    let written = export::export(&a.run, &out, device)
        .with_context(|| format!("exporting {}", a.run.display()))?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

fn run_import_keras(a: ImportKerasArgs) -> Result<()> {
    let config = match &a.config {
        Some(path) => load_config_file(path)?,
        None => {
            let mut c = TrainConfig::default();
            c.model.latent_dim = a.latent_dim;
            c.data.dataset = a.dataset;
            c
        }
    };
    keras_import::import(&a.weights, &a.out, config, a.force)
        .with_context(|| format!("importing {} into {}", a.weights.display(), a.out.display()))?;
    println!(
        "{}: run folder from {} (epoch 0; `vae-tch train --resume {} --epochs N` trains on)",
        a.out.display(),
        a.weights.display(),
        a.out.display()
    );
    Ok(())
}

fn run_fetch(a: FetchArgs) -> Result<()> {
    if a.dataset == vae_tch::data::DatasetKind::Folder {
        anyhow::bail!("data fetch folder: `folder` is your own images, nothing to fetch; train on them with --dataset folder --data-dir DIR");
    }
    let dir = a.dir.clone().unwrap_or_else(|| a.dataset.default_dir());
    let opts = FetchOptions {
        connect_timeout: Duration::from_secs(a.timeout),
        read_timeout: Duration::from_secs(a.timeout),
        attempts: a.retries.max(1),
        offline_only: a.offline,
        ..FetchOptions::default()
    };
    let info = fetch::fetch(a.dataset, &dir, &opts)
        .with_context(|| format!("fetching {} into {}", a.dataset, dir.display()))?;
    // The files must load before we call them good.
    vae_tch::data::load(a.dataset, &dir)?;
    println!("{}: {info}", dir.display());
    Ok(())
}

fn run_bench(a: BenchArgs) -> Result<()> {
    let device = device::parse(&a.device)?;
    if let Some(&bad) = a.batch_sizes.iter().find(|&&b| b < 1) {
        anyhow::bail!("--batch-size {bad}: must be at least 1");
    }
    if a.steps == 0 {
        anyhow::bail!("--steps 0: time at least one step");
    }
    let forms = match (a.cuda_graph, device.is_cuda()) {
        (CudaGraphMode::Off, _) | (CudaGraphMode::Auto, false) => vec![StepForm::Eager],
        (CudaGraphMode::On, false) => {
            anyhow::bail!(
                "--cuda-graph on needs a CUDA device (got --device {})",
                a.device
            )
        }
        (CudaGraphMode::On, true) => vec![StepForm::CudaGraph],
        (CudaGraphMode::Auto, true) => vec![StepForm::Eager, StepForm::CudaGraph],
    };
    let dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| a.dataset.default_dir());
    let split = vae_tch::data::load_split(a.dataset, &dir, Which::Train)?;
    let images = split.images_f32(device);
    let cfg = bench::BenchConfig {
        device,
        batch_sizes: a.batch_sizes.clone(),
        forms,
        steps: a.steps,
        warm_up: a.warm_up,
        seed: 0,
        channels_last: a.channels_last,
        flipped: a.flipped,
        cudnn_benchmark: a.cudnn_benchmark,
    };
    eprintln!(
        "bench: {} training images of {} on {}",
        split.len(),
        dir.display(),
        device::describe(device)
    );
    println!("| trainer | batch | ms/step |");
    println!("|---|---|---|");
    let rows = bench::run(&images, &cfg, |r| {
        println!(
            "| {} | {} | {:.3} |",
            r.trainer, r.batch_size, r.ms_per_step
        )
    });
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if rows.len() < cfg.batch_sizes.len() * cfg.forms.len() {
        anyhow::bail!("some measurements failed (see above)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_disk_is_named() {
        let io = std::io::Error::from_raw_os_error(libc::ENOSPC);
        let e = anyhow::Error::from(io).context("writing runs/x/metrics.csv");
        assert!(super::disk_full_hint(&e)
            .unwrap()
            .contains("the disk is full"));
        let tch_style = anyhow::anyhow!("IoError(Os {{ code: 28, kind: StorageFull }})");
        assert!(super::disk_full_hint(&tch_style).is_some());
        assert!(super::disk_full_hint(&anyhow::anyhow!("other")).is_none());
    }
}
