//! `vae-tch sweep slurm`: the sbatch script of one sweep, written into its folder (and submitted
//! with `--submit`). The script is scripts/slurm/sweep.sbatch with this sweep's `#SBATCH` lines
//! (array, CPUs, GPUs, time, partition), its sweep file, folder, flags and binary spelled out, and
//! its log folder made before Slurm opens a log there.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::config::overrides::Overrides;
use crate::util::shell::quote;

/// The checked-in script: its `#SBATCH` block is replaced, its body kept.
const TEMPLATE: &str = include_str!("../../../scripts/slurm/sweep.sbatch");
/// The line that ends the template's `#SBATCH` block.
const END_OF_HEADER: &str = "# (end of the #SBATCH lines";

/// `vae-tch sweep slurm`, typed.
#[derive(Debug, Clone)]
pub struct SlurmRequest {
    pub sweep: PathBuf,
    /// The sweep folder [default: sweeps/<file stem>].
    pub out: Option<PathBuf>,
    /// Array tasks [default: the points, at most 4].
    pub array: Option<usize>,
    /// GPUs per task (0: a CPU job).
    pub gpus: usize,
    /// CPUs per task [default: 2 on CPU, 4 per GPU].
    pub cpus: Option<usize>,
    pub time: String,
    pub partition: Option<String>,
    pub mem: Option<String>,
    pub account: Option<String>,
    /// Flags for `sweep run` in every task (checked by the caller).
    pub run_flags: Vec<String>,
    pub submit: bool,
}

/// What `sweep slurm` made.
pub struct Script {
    pub path: PathBuf,
    /// The sweep folder.
    pub out: PathBuf,
    pub text: String,
    pub logs: PathBuf,
    pub tasks: usize,
    pub points: usize,
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))
}

/// The script for `req`, with `binary` as the vae-tch that tasks run.
pub fn script(req: &SlurmRequest, binary: &Path) -> Result<Script> {
    let (sweep, _) = super::spec::load(&req.sweep, &Overrides::default(), true)?;
    let points = sweep.points.len();
    let tasks = req.array.unwrap_or(points.min(4)).max(1);
    let out =
        absolute(&req.out.clone().unwrap_or_else(|| {
            Path::new("sweeps").join(req.sweep.file_stem().unwrap_or_default())
        }))?;
    let logs = out.join("slurm").join("logs");
    let cpus = req
        .cpus
        .unwrap_or(if req.gpus > 0 { 4 * req.gpus } else { 2 });
    let body = TEMPLATE
        .split_once(END_OF_HEADER)
        .and_then(|(_, rest)| rest.split_once('\n'))
        .map(|(_, body)| body)
        .expect("scripts/slurm/sweep.sbatch has its end-of-header line");
    let mut t = String::from("#!/usr/bin/env bash\n");
    let _ = writeln!(
        t,
        "# Written by `vae-tch sweep slurm` for {} ({points} points, {tasks} array tasks); submit with\n#   sbatch {}\n# Flags given to sbatch win over these lines; see scripts/slurm/sweep.sbatch.",
        req.sweep.display(),
        quote(&out.join("slurm").join("sweep.sbatch").display().to_string())
    );
    let stem = req.sweep.file_stem().unwrap_or_default().to_string_lossy();
    let mut sbatch = |line: String| {
        let _ = writeln!(t, "#SBATCH {line}");
    };
    sbatch(format!("--job-name=vae-tch-{stem}"));
    sbatch(format!("--array=0-{}", tasks - 1));
    sbatch(format!("--cpus-per-task={cpus}"));
    if req.gpus > 0 {
        sbatch(format!("--gpus-per-task={}", req.gpus));
    }
    sbatch(format!("--time={}", req.time));
    for (flag, v) in [
        ("partition", &req.partition),
        ("mem", &req.mem),
        ("account", &req.account),
    ] {
        if let Some(v) = v {
            sbatch(format!("--{flag}={v}"));
        }
    }
    sbatch(format!("--output={}/%A_%a.log", logs.display()));
    sbatch("--open-mode=append".into());
    sbatch("--signal=B:USR1@180".into());
    sbatch("--requeue".into());
    let mut args = vec![
        absolute(&req.sweep)?.display().to_string(),
        out.display().to_string(),
    ];
    // Paths in the flags as absolute ones: the script may be submitted from anywhere.
    let mut flags = req.run_flags.iter();
    while let Some(f) = flags.next() {
        if let Some(dir) = f.strip_prefix("--data-dir=") {
            args.push(format!(
                "--data-dir={}",
                absolute(Path::new(dir))?.display()
            ));
        } else if f == "--data-dir" {
            args.push(f.clone());
            if let Some(dir) = flags.next() {
                args.push(absolute(Path::new(dir))?.display().to_string());
            }
        } else {
            args.push(f.clone());
        }
    }
    if !req
        .run_flags
        .iter()
        .any(|f| f == "--device" || f.starts_with("--device="))
    {
        args.push("--device".into());
        args.push(if req.gpus > 0 { "cuda" } else { "cpu" }.into());
    }
    let words: Vec<String> = args.iter().map(|a| quote(a)).collect();
    let _ = writeln!(t, "[[ $# -gt 0 ]] || set -- {}", words.join(" "));
    let _ = writeln!(
        t,
        "export VAE_TCH=${{VAE_TCH:-{}}}",
        quote(&binary.display().to_string())
    );
    t += body;
    Ok(Script {
        path: out.join("slurm").join("sweep.sbatch"),
        out: out.clone(),
        text: t,
        logs,
        tasks,
        points,
    })
}

/// Writes the script (and its log folder); with `--submit`, submits it. Returns what is printed.
pub fn run(req: &SlurmRequest) -> Result<String> {
    let binary = std::env::current_exe().context("finding this vae-tch binary")?;
    let s = script(req, &binary)?;
    std::fs::create_dir_all(&s.logs)
        .with_context(|| format!("creating the log folder {}", s.logs.display()))?;
    crate::util::fsutil::write_atomic(&s.path, s.text.as_bytes())
        .with_context(|| format!("writing {}", s.path.display()))?;
    let mut printed = format!(
        "{}: {} array tasks over {} points, logs in {}\n",
        s.path.display(),
        s.tasks,
        s.points,
        s.logs.display()
    );
    if s.tasks > s.points {
        let _ = writeln!(
            printed,
            "note: {} tasks for {} points: the extra tasks find nothing to train and end",
            s.tasks, s.points
        );
    }
    let command = format!("sbatch {}", quote(&s.path.display().to_string()));
    if !req.submit {
        let _ = writeln!(
            printed,
            "submit with:\n  {command}\nwatch with:\n  vae-tch sweep status {}",
            quote(&s.out.display().to_string())
        );
        return Ok(printed);
    }
    let o = std::process::Command::new("sbatch")
        .arg(&s.path)
        .output()
        .with_context(|| format!("running `{command}` (is Slurm's sbatch on PATH?)"))?;
    if !o.status.success() {
        anyhow::bail!(
            "`{command}` failed ({}): {}",
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }
    printed += &String::from_utf8_lossy(&o.stdout);
    Ok(printed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(dir: &Path, gpus: usize) -> SlurmRequest {
        let sweep = dir.join("s.toml");
        std::fs::write(&sweep, "[axes]\n\"train.seed\" = [1, 2, 3, 4, 5, 6]\n").unwrap();
        SlurmRequest {
            sweep,
            out: Some(dir.join("out")),
            array: None,
            gpus,
            cpus: None,
            time: "01:00:00".into(),
            partition: Some("gpu".into()),
            mem: None,
            account: None,
            run_flags: vec![
                "--epochs".into(),
                "3".into(),
                "--data-dir".into(),
                "data".into(),
            ],
            submit: false,
        }
    }

    #[test]
    fn the_cpu_and_gpu_forms_ask_for_what_their_nodes_have() {
        let dir = tempfile::tempdir().unwrap();
        let bin = Path::new("/opt/vae tch/vae-tch");
        let cpu = script(&request(dir.path(), 0), bin).unwrap();
        assert_eq!((cpu.tasks, cpu.points), (4, 6));
        for line in [
            "#SBATCH --array=0-3",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --time=01:00:00",
            "#SBATCH --partition=gpu",
            "#SBATCH --open-mode=append",
            "#SBATCH --signal=B:USR1@180",
            "--epochs 3 --data-dir /",
            "data --device cpu",
            "export VAE_TCH=${VAE_TCH:-'/opt/vae tch/vae-tch'}",
        ] {
            assert!(cpu.text.contains(line), "no {line:?} in\n{}", cpu.text);
        }
        assert!(!cpu.text.contains("--gpus-per-task"));
        let log = format!("#SBATCH --output={}/%A_%a.log", cpu.logs.display());
        assert!(cpu.text.contains(&log));
        // The body is the checked-in script's, once.
        assert_eq!(cpu.text.matches("sweep run \"$sweep\"").count(), 1);
        assert_eq!(cpu.text.matches("#SBATCH").count(), 9);

        let gpu = script(&request(dir.path(), 2), bin).unwrap();
        for line in [
            "#SBATCH --gpus-per-task=2",
            "#SBATCH --cpus-per-task=8",
            "data --device cuda",
        ] {
            assert!(gpu.text.contains(line), "no {line:?} in\n{}", gpu.text);
        }
    }
}
