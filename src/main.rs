//! The `vae-tch` binary: parse the command line, call the library, print errors with their
//! causes and exit non-zero.
mod cli;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{
    BenchArgs, Cli, Command, DataCommand, EvalArgs, ExportArgs, FetchArgs, FigureArgs,
    ImportKerasArgs, SummaryArgs, SweepCommand, SweepRunArgs, TrainArgs,
};
use vae_tch::commands::{self, train::TrainRequest};
use vae_tch::config::overrides::{Overrides, RunOverrides};
use vae_tch::config::TrainConfig;
use vae_tch::config::{CudaGraphMode, DatasetKind, StepForm};
use vae_tch::data::fetch::{self, FetchOptions};
use vae_tch::interop::{export, keras_import};
use vae_tch::model::summary;
use vae_tch::plot::grids::Spacing;
use vae_tch::plot::run::{self as figures, RunData, Which};
use vae_tch::run::checkpoint;
use vae_tch::sweep;
use vae_tch::train::bench;
use vae_tch::util::device;

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

/// The OS error codes of a failed write that the user can fix, and what to tell them.
const WRITE_LIMITS: [(i32, &str); 2] = [
    (
        libc::ENOSPC,
        "the disk is full: free some space, then run the same command again",
    ),
    (
        libc::EFBIG,
        "a file grew past the file-size limit (`ulimit -f`): raise the limit, then run the same command again",
    ),
];

/// A line for errors caused by a full disk (ENOSPC) or a file-size limit (EFBIG), which
/// libraries report in their own words ("No space left on device (os error 28)",
/// "Os { code: 28, .. }").
fn disk_full_hint(e: &anyhow::Error) -> Option<String> {
    let text = format!("{e:#}");
    WRITE_LIMITS.iter().find_map(|&(code, what)| {
        let hit = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.raw_os_error() == Some(code))
        }) || text.contains(&format!("os error {code})"))
            || text.contains(&format!("code: {code},"));
        hit.then(|| {
            format!(
                "{what} (a run continues with `vae-tch train --resume RUN`; its last complete checkpoint is kept)"
            )
        })
    })
}

/// A file-size limit (`ulimit -f`) sends SIGXFSZ, whose default action kills the process with
/// no message (exit 153). Ignored, the write fails with EFBIG instead, and that is reported like
/// a full disk: a message, the last checkpoint kept.
fn ignore_sigxfsz() {
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}

/// Exit status of an internal error (a panic): EX_SOFTWARE of sysexits.h. Usage errors exit 2
/// (clap), runtime errors 1.
const EXIT_INTERNAL: u8 = 70;

fn main() -> ExitCode {
    tune_malloc();
    ignore_sigxfsz();
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
            if let Some(stop) = e.downcast_ref::<vae_tch::train::Interrupted>() {
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
            let message = vae_tch::train::cuda_graph::panic_message(&panic);
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
        Command::Manifold(a) => {
            if a.range.is_some() && a.spacing != Spacing::Linear {
                anyhow::bail!(
                    "--range applies to --spacing linear only (the normal grid is quantiles of N(0, 1)); add --spacing linear or drop --range"
                );
            }
            with_run(&a.fig, |src, out| {
                figures::manifold(src, a.n, a.spacing, a.range.unwrap_or(3.0), out)
            })
        }
        Command::Reconstruct(a) => with_run(&a.fig, |src, out| figures::reconstruct(src, a.n, out)),
        Command::Sample(a) => with_run(&a.fig, |src, out| figures::sample(src, a.n, a.seed, out)),
        Command::Interpolate(a) => with_run(&a.fig, |src, out| {
            figures::interpolate(src, a.from, a.to, a.steps, out)
        }),
        Command::Bench(args) => run_bench(args),
        Command::Eval(args) => run_eval(args),
        Command::Info => {
            print!("{}", commands::info::report());
            Ok(())
        }
        Command::Data {
            command: DataCommand::Fetch(args),
        } => run_fetch(args),
        Command::Sweep {
            command: SweepCommand::Run(args),
        } => run_sweep(args),
        Command::Sweep {
            command: SweepCommand::Report(a),
        } => {
            let r = sweep::report::report(&a.dir, device::parse(&a.device)?)?;
            print!("{}", r.table);
            for f in r.files {
                println!("{}", f.display());
            }
            Ok(())
        }
    }
}

fn run_sweep(a: SweepRunArgs) -> Result<()> {
    let device = device::parse(&a.device)?;
    let overrides = Overrides {
        train_limit: a.train_limit,
        test_limit: a.test_limit,
        run: RunOverrides {
            epochs: a.epochs,
            data_dir: a.data_dir.clone(),
            precision: a.precision,
            ..RunOverrides::default()
        },
        ..Overrides::default()
    };
    if a.epochs == Some(0) {
        anyhow::bail!("--epochs 0: train at least one epoch");
    }
    if a.stack_max == 0 {
        anyhow::bail!("--stack-max 0: a stack holds at least one model");
    }
    let (spec, file) = sweep::spec::load(&a.sweep, &overrides, a.force)?;
    let shard = sweep::shard::resolve(a.shard.as_deref(), a.shards, |k| std::env::var(k).ok())?;
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = a
            .sweep
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        Path::new("sweeps").join(stem)
    });
    let opts = sweep::run::SweepRun {
        out: out.clone(),
        device,
        shard,
        quiet: a.quiet,
        export: !a.no_export,
        stack: a.stack,
        stack_max: a.stack_max,
    };
    if !a.quiet {
        let mine = (0..spec.points.len()).filter(|&i| shard.owns(i)).count();
        eprintln!(
            "sweep: {} points over {} into {} (shard {shard}: {mine} of them first)",
            spec.points.len(),
            spec.keys.join(", "),
            out.display()
        );
    }
    vae_tch::util::interrupt::install();
    let outcome = match sweep::run::run(&spec, &file, &opts) {
        Err(e) if e.downcast_ref::<vae_tch::train::Interrupted>().is_some() => {
            eprintln!(
                "sweep: stopped; the same command goes on where it stopped:\n  vae-tch sweep run {} --out {}",
                a.sweep.display(),
                out.display()
            );
            return Err(e);
        }
        other => other?,
    };
    if !a.quiet {
        eprintln!(
            "sweep: this process trained {} point(s); {} were held by other processes",
            outcome.trained.len(),
            outcome.busy.len()
        );
    }
    let report = sweep::report::report(&out, device)?;
    print!("{}", report.table);
    println!("{}", out.join("report.md").display());
    if !outcome.failed.is_empty() {
        anyhow::bail!(
            "{} of the points failed (see {}/points/<name>/FAILED): {}",
            outcome.failed.len(),
            out.display(),
            outcome
                .failed
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(())
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
        checkpoint: if a.best {
            checkpoint::Which::Best
        } else {
            checkpoint::Which::Last
        },
    };
    done(draw(&src, a.out.as_deref()))
}

/// The typed request of `train`'s flags: only the flags given override the config.
fn train_request(a: &TrainArgs) -> Result<TrainRequest> {
    let input_shape = input_shape(&a.input_shape)?;
    Ok(TrainRequest {
        config_file: a.config.clone(),
        overrides: Overrides {
            dataset: a.dataset,
            batch_size: a.batch_size,
            learning_rate: a.lr,
            r_loss_factor: a.r_loss_factor,
            latent_dim: a.latent_dim,
            seed: a.seed,
            reconstruction_every: a.reconstruction_every,
            lr_decay: a.lr_decay,
            lr_decay_every: a.lr_decay_every,
            train_limit: a.train_limit,
            test_limit: a.test_limit,
            input_shape,
            resize: a.resize,
            test_fraction: a.test_fraction,
            run: RunOverrides {
                epochs: a.epochs,
                data_dir: a.data_dir.clone(),
                cuda_graph: a.cuda_graph,
                precision: a.precision,
                cache_dir: a.cache_dir.clone(),
                stream: a.stream_data,
                early_stopping: a.early_stopping,
                min_delta: a.min_delta,
                no_tensorboard: a.no_tensorboard,
            },
        },
        out: a.out.clone(),
        resume: a.resume.clone(),
        device: device::parse(&a.device)?,
        quiet: a.quiet,
        force_data: a.force,
        export: !a.no_export,
    })
}

fn run_train(a: TrainArgs) -> Result<()> {
    let req = train_request(&a)?;
    if a.print_config {
        let (job, _) = commands::train::job(&req)?;
        print!("{}", job.config.to_toml());
        return Ok(());
    }
    vae_tch::util::interrupt::install();
    let outcome = commands::train::run(&req)?;
    let (job, rows) = (&outcome.job, &outcome.rows);
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
        None => println!(
            "{}: already trained to {} epochs; raise --epochs to go on",
            job.run.display(),
            job.config.train.epochs
        ),
    }
    Ok(())
}

fn run_summary(a: SummaryArgs) -> Result<()> {
    let mut config = match (&a.config, &a.run) {
        (Some(path), _) => commands::train::load_config_file(path)?,
        (None, Some(run)) => checkpoint::read_config(run)?,
        (None, None) => TrainConfig::default(),
    };
    if a.config.is_none() && a.run.is_none() {
        config.model.latent_dim = a.latent_dim;
    }
    config.validate()?;
    let model = vae_tch::model::build(&config, tch::Device::Cpu, 0);
    print!("{}", summary::render(&model.vae));
    Ok(())
}

fn run_export(a: ExportArgs) -> Result<()> {
    let device = device::parse(&a.device)?;
    let (which, default) = if a.best {
        (checkpoint::Which::Best, export::best_dir(&a.run))
    } else {
        (checkpoint::Which::Last, export::default_dir(&a.run))
    };
    let out = a.out.clone().unwrap_or(default);
    let written = export::export_from(&a.run, which, &out, device)
        .with_context(|| format!("exporting {}", a.run.display()))?;
    for path in written {
        println!("{}", path.display());
    }
    Ok(())
}

fn run_import_keras(a: ImportKerasArgs) -> Result<()> {
    let config = match &a.config {
        Some(path) => commands::train::load_config_file(path)?,
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
        install_packages: a.install,
        ..FetchOptions::default()
    };
    let info = fetch::fetch(a.dataset, &dir, &opts)
        .with_context(|| format!("fetching {} into {}", a.dataset, dir.display()))?;
    // The files must load before we call them good.
    vae_tch::data::load(a.dataset, &dir)?;
    println!("{}: {info}", dir.display());
    Ok(())
}

fn run_eval(a: EvalArgs) -> Result<()> {
    if a.k < 1 {
        anyhow::bail!("--k {}: draw at least one sample per image", a.k);
    }
    if a.limit == Some(0) {
        anyhow::bail!("--limit 0: evaluate at least one image");
    }
    let device = device::parse(&a.device)?;
    let src = RunData {
        run: &a.run,
        data_dir: a.data_dir.as_deref(),
        device,
        checkpoint: if a.best {
            checkpoint::Which::Best
        } else {
            checkpoint::Which::Last
        },
    };
    let mut loaded = src.model()?;
    // The layout the device runs fastest (the same numbers to float rounding): on 2 CPU cores
    // channels-last and flipped took 1,000 test images at k = 100 from 34 to 17 s (2026-12-02).
    let layout = vae_tch::train::layout_for(device, false);
    loaded.vae.set_layout(&loaded.vs, layout);
    let split = src.split(&loaded, a.split)?.limit(a.limit);
    if split.is_empty() {
        anyhow::bail!(
            "the {} split of run {} has no images",
            a.split.name(),
            a.run.display()
        );
    }
    let given = match &a.eps {
        Some(path) => {
            let named = tch::Tensor::read_safetensors(path)
                .with_context(|| format!("--eps {}", path.display()))?;
            let eps = named
                .into_iter()
                .find(|(n, _)| n == "eps")
                .map(|(_, t)| t)
                .with_context(|| format!("--eps {}: no tensor named eps", path.display()))?;
            let want = [a.k, split.len(), loaded.config.model.latent_dim];
            if eps.size() != want {
                anyhow::bail!(
                    "--eps {}: eps has shape {:?}, this evaluation needs {want:?} (k, images, latent)",
                    path.display(),
                    eps.size()
                );
            }
            Some(eps)
        }
        None => None,
    };
    let samples = match &given {
        Some(e) => vae_tch::eval::Samples::Given(e),
        None => vae_tch::eval::Samples::Drawn,
    };
    tch::manual_seed(a.seed as i64);
    let report = vae_tch::eval::evaluate(
        &loaded.vae,
        &split.images,
        loaded.config.train.r_loss_factor,
        a.k,
        samples,
        device,
    );
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "eval {} ({} checkpoint): {} {} images, k = {}, seed {}",
            a.run.display(),
            if a.best { "best" } else { "last" },
            report.images,
            a.split.name(),
            a.k,
            a.seed
        );
        println!("{report}");
    }
    Ok(())
}

/// `--input-shape C,H,W` as three numbers.
fn input_shape(shape: &Option<Vec<i64>>) -> Result<Option<[i64; 3]>> {
    match shape.as_deref() {
        None => Ok(None),
        Some(&[ch, h, w]) => Ok(Some([ch, h, w])),
        Some(other) => anyhow::bail!(
            "--input-shape {}: expected three numbers C,H,W (e.g. 3,64,64)",
            other
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

fn run_bench(a: BenchArgs) -> Result<()> {
    let device = device::parse(&a.device)?;
    if let Some(&bad) = a.batch_sizes.iter().find(|&&b| b < 1) {
        anyhow::bail!("--batch-size {bad}: must be at least 1");
    }
    if a.steps == 0 {
        anyhow::bail!("--steps 0: time at least one step");
    }
    if let Some(&bad) = a.stacks.iter().find(|&&k| k < 1) {
        anyhow::bail!("--stack {bad}: must be at least 1");
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
    let mut config = match &a.config {
        Some(path) => vae_tch::commands::train::load_config_file(path)?,
        None => vae_tch::config::TrainConfig::default(),
    };
    Overrides {
        dataset: a.dataset,
        input_shape: input_shape(&a.input_shape)?,
        ..Overrides::default()
    }
    .apply(&mut config);
    config
        .validate()
        .context("the benchmark's config (--config, --input-shape)")?;
    if let Some(path) = &a.profile {
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            anyhow::bail!(
                "--profile {}: the folder {} does not exist",
                path.display(),
                folder.display()
            );
        }
    }
    if a.profile_steps == 0 {
        anyhow::bail!("--profile-steps 0: profile at least one step");
    }
    let precisions = if a.precisions.is_empty() {
        vec![config.train.precision]
    } else {
        a.precisions.clone()
    };
    let largest = a.batch_sizes.iter().copied().max().unwrap_or(32);
    let synthetic = match a.synthetic {
        Some(n) if n < largest => {
            anyhow::bail!("--synthetic {n}: fewer images than one batch of {largest}")
        }
        Some(n) => Some(n),
        None if config.data.dataset == DatasetKind::Folder && a.data_dir.is_none() => {
            Some(largest * 8)
        }
        None => None,
    };
    // An image folder's split lives in its cache's memory map: kept until the end, as the
    // images on the CPU are views into it.
    let mut split_kept = None;
    let (images, what) = match synthetic {
        Some(n) => {
            let [c, h, w] = config.model.input_shape;
            tch::manual_seed(0);
            let x = tch::Tensor::randint(256, [n, c, h, w], (tch::Kind::Uint8, device));
            (x, format!("{n} random {c}x{h}x{w} images"))
        }
        None => {
            let kind = config.data.dataset;
            let dir = a.data_dir.clone().unwrap_or_else(|| kind.default_dir());
            let (split, _) = vae_tch::data::open_split(&config, &dir, Which::Train)?;
            let what = format!("{} training images of {}", split.len(), dir.display());
            let images = split.images.to_device(device);
            split_kept = Some(split);
            (images, what)
        }
    };
    let cfg = bench::BenchConfig {
        config,
        device,
        batch_sizes: a.batch_sizes.clone(),
        forms,
        steps: a.steps,
        warm_up: a.warm_up,
        seed: 0,
        channels_last: a.channels_last,
        flipped: a.flipped,
        cudnn_benchmark: a.cudnn_benchmark,
        stacks: a.stacks.clone(),
        precisions,
        profile: a.profile.clone(),
        profile_steps: a.profile_steps,
    };
    eprintln!("bench: {what} on {}", device::describe(device));
    println!("| trainer | batch | models | ms/step | images/s (all models) |");
    println!("|---|---|---|---|---|");
    let rows = bench::run(&images, &cfg, |r| {
        println!(
            "| {} | {} | {} | {:.3} | {:.0} |",
            r.trainer,
            r.batch_size,
            r.models,
            r.ms_per_step,
            (r.batch_size * r.models) as f64 * 1000.0 / r.ms_per_step
        )
    });
    for r in &rows {
        if let Some(profile) = &r.profile {
            let steps = cfg.profile_steps;
            println!(
                "\nWhere the time of `{}` at batch {} goes ({steps} profiled steps):\n",
                r.trainer, r.batch_size
            );
            println!("{}", vae_tch::train::profile::table(profile, steps, 15));
        }
    }
    drop(split_kept);
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&rows)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let cases = cfg.batch_sizes.len() * cfg.forms.len() * cfg.stacks.len() * cfg.precisions.len();
    if rows.len() < cases {
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
        let limit = std::io::Error::from_raw_os_error(libc::EFBIG);
        assert!(super::disk_full_hint(&anyhow::Error::from(limit))
            .unwrap()
            .contains("ulimit -f"));
        assert!(super::disk_full_hint(&anyhow::anyhow!("other")).is_none());
    }
}
