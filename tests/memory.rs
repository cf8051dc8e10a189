//! Memory is a budget, not a crash (issue 24): under a process limit (`ulimit -v`, as a
//! container's or a Slurm job's), a libtorch allocation that does not fit is an error that names
//! what was being done and what to lower (exit 1, never "internal error"); a sweep point that
//! runs out is FAILED and the sweep goes on; the stack's size and the sweep's point count are
//! sized from the process's real limit before anything is allocated.
mod common;

use std::path::Path;
use std::process::Output;

/// The binary's address space at start is 2-3 GB (libtorch and its CUDA libraries mapped); a
/// 4 GB limit leaves it about 1.2 GB to allocate (2026-12-04, torch 2.11).
const LIMIT_KB: u64 = 4_000_000;

/// `vae-tch ARGS` under `ulimit -v LIMIT_KB` in `cwd`.
fn capped(args: &[&str], cwd: &Path) -> Output {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -v {LIMIT_KB} && exec '{}' {}",
            env!("CARGO_BIN_EXE_vae-tch"),
            quoted.join(" ")
        ))
        .current_dir(cwd)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn out_of_memory(o: &Output, what: &str, lower: &str) {
    let t = common::text(o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains(&format!("out of memory {what}")), "{t}");
    assert!(t.contains("on the CPU failed"), "{t}");
    assert!(t.contains(lower), "{t}");
    assert!(
        !t.contains("internal error") && !t.contains("frame #"),
        "{t}"
    );
}

#[test]
fn a_batch_k_or_stack_too_big_for_the_limit_is_an_error_naming_what_to_lower() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 3000, 16);
    // One step over all 3,000 images: its activations need more than the ~1.2 GB left.
    let o = capped(
        &[
            "train",
            "--data-dir",
            "data",
            "--device",
            "cpu",
            "--batch-size",
            "60000",
            "--epochs",
            "1",
            "--out",
            "big",
            "-q",
        ],
        tmp.path(),
    );
    out_of_memory(&o, "while training big", "lower --batch-size (it is 60000)");
    // A run with a finished epoch, evaluated with more samples than fit.
    let o = common::vae_tch(
        &[
            "train",
            "--data-dir",
            "data",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--train-limit",
            "64",
            "--out",
            "r",
            "-q",
            "--no-export",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let o = capped(&["eval", "r", "--k", "10000000"], tmp.path());
    out_of_memory(&o, "while evaluating r", "lower --k (it is 10000000");
    let o = capped(
        &[
            "bench",
            "--device",
            "cpu",
            "--data-dir",
            "data",
            "--stack",
            "4096",
            "--steps",
            "1",
            "--warm-up",
            "0",
        ],
        tmp.path(),
    );
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("bench: out of memory while timing eager"), "{t}");
    assert!(t.contains("lower --batch-size or --stack"), "{t}");
    assert!(!t.contains("internal error"), "{t}");
}

#[test]
fn a_sweep_point_that_runs_out_of_memory_fails_alone() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 32, 8);
    // latent_dim 50000: 470 million parameters (under the config's 500 million), 1.9 GB of
    // weights alone: more than the limit leaves. latent_dim 2 is the seed's model.
    std::fs::write(
        tmp.path().join("s.toml"),
        "[train]\nbatch_size = 8\nreconstruction_every = 0\n[axes]\n\"model.latent_dim\" = [50000, 2]\n",
    )
    .unwrap();
    let o = capped(
        &[
            "sweep",
            "run",
            "s.toml",
            "--data-dir",
            "data",
            "--device",
            "cpu",
            "--epochs",
            "1",
            "--no-export",
            "-q",
        ],
        tmp.path(),
    );
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("1 of the points failed") && t.contains("latent_dim=50000"),
        "{t}"
    );
    let failed = tmp.path().join("sweeps/s/points/latent_dim=50000/FAILED");
    let why = std::fs::read_to_string(&failed).unwrap();
    assert!(why.starts_with("out of memory while training"), "{why}");
    assert!(why.contains("lower the point's batch size"), "{why}");
    // The next point trained, and summary.csv says which failed and why.
    let summary = std::fs::read_to_string(tmp.path().join("sweeps/s/summary.csv")).unwrap();
    let row = |name: &str| {
        summary
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(row("latent_dim=2,").contains(",done,1,1,"), "{summary}");
    let bad = row("latent_dim=50000,");
    assert!(
        bad.contains(",failed,0,1,") && bad.contains("out of memory"),
        "{bad}"
    );
}

#[test]
fn a_stack_on_the_cpu_is_sized_from_the_process_limit() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 64, 8);
    // 8 seed models at batch 256: about 250 MB each by the estimate. The host's available
    // memory holds all 8 in one stack; the ~1.2 GB under the limit (half of it for stacks)
    // holds 2.
    std::fs::write(
        tmp.path().join("s.toml"),
        "[train]\nbatch_size = 256\nreconstruction_every = 0\n[axes]\n\"train.seed\" = [1, 2, 3, 4, 5, 6, 7, 8]\n",
    )
    .unwrap();
    let args = [
        "sweep",
        "run",
        "s.toml",
        "--data-dir",
        "data",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--no-export",
        "-q",
        "--stack",
        "on",
        "--out",
        "capped",
    ];
    let o = capped(&args, tmp.path());
    let t = common::text(&o);
    let line = t
        .lines()
        .find(|l| l.contains("points of one shape"))
        .unwrap_or_else(|| panic!("no stack size said: {t}"));
    let most: usize = line
        .split("stacks of at most ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!((1..=4).contains(&most), "{line}");
    assert!(o.status.success(), "{t}");
}

#[test]
fn a_sweep_too_big_to_hold_is_refused_before_any_point_is_made() {
    // 10^12 points: the old sweep aborted asking for 24 TB (SIGABRT).
    let tmp = tempfile::tempdir().unwrap();
    let axis = (0..1000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        tmp.path().join("s.toml"),
        format!(
            "[axes]\n\"train.seed\" = [{axis}]\n\"data.split_seed\" = [{axis}]\n\"train.shuffle_seed\" = [{axis}]\n\"train.lr_decay_every\" = [{axis}]\n"
        ),
    )
    .unwrap();
    let o = common::vae_tch(&["sweep", "run", "s.toml", "--force"], tmp.path());
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("1000000000000 points take about") && t.contains("split the sweep"),
        "{t}"
    );
}
