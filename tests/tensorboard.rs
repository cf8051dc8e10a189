//! A run's TensorBoard files are the run's, and only the run's (issue 24): a damaged or torn
//! file of the run's never stops a resume (it is cut, or set aside and named); another writer's
//! file in the folder is never rewritten; a run that starts again after a kill in its first
//! epoch, or that resumes, shows each step once; a resumed run logs the config it goes on with;
//! a dangling `tensorboard` link is named.
mod common;

use std::path::{Path, PathBuf};

use prost::Message;
use vae_tch::run::tensorboard::{read_events, Event, Kind, Summary, Value, What};

const TRAIN: [&str; 7] = [
    "train",
    "--data-dir",
    "data",
    "--device",
    "cpu",
    "--no-export",
    "-q",
];

/// `train` with `extra`; a new run trains at batch 8.
fn train(dir: &Path, extra: &[&str]) -> std::process::Output {
    let batch: &[&str] = if extra.contains(&"--resume") {
        &[]
    } else {
        &["--batch-size", "8"]
    };
    common::vae_tch(&[&TRAIN[..], batch, extra].concat(), dir)
}

fn event_files(run: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(run.join("tensorboard"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

/// (tag, step) of every summary value in the run's files.
fn tagged_steps(run: &Path) -> Vec<(String, i64)> {
    let mut out = Vec::new();
    for f in event_files(run) {
        for e in read_events(&std::fs::read(f).unwrap()).events {
            if let Some(What::Summary(s)) = &e.what {
                for v in &s.value {
                    out.push((v.tag.clone(), e.step));
                }
            }
        }
    }
    out
}

/// Fails when a (tag, step) shows twice.
fn each_step_once(run: &Path) {
    let mut seen = std::collections::HashSet::new();
    for t in tagged_steps(run) {
        assert!(seen.insert(t.clone()), "{t:?} shows twice");
    }
}

fn framed(e: &Event) -> Vec<u8> {
    // The record framing of tensorboard/summary/writer/record_writer.py.
    let masked = |d: &[u8]| crc32c::crc32c(d).rotate_right(15).wrapping_add(0xa282_ead8);
    let data = e.encode_to_vec();
    let len = (data.len() as u64).to_le_bytes();
    let mut out = len.to_vec();
    out.extend(masked(&len).to_le_bytes());
    out.extend(&data);
    out.extend(masked(&data).to_le_bytes());
    out
}

#[test]
fn another_writers_file_is_left_alone_and_a_damaged_file_of_the_runs_is_set_aside() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 32, 8);
    let o = train(tmp.path(), &["--epochs", "1", "--out", "r"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let run = tmp.path().join("r");
    // A user's own SummaryWriter file: 100 scalars at steps 1..100 (past the checkpoint's).
    let mut theirs = Vec::new();
    for step in 0..=100 {
        let what = if step == 0 {
            What::FileVersion("brain.Event:2".into())
        } else {
            What::Summary(Summary {
                value: vec![Value {
                    tag: "mine/accuracy".into(),
                    metadata: None,
                    value: Some(Kind::SimpleValue(step as f32)),
                }],
            })
        };
        theirs.extend(framed(&Event {
            wall_time: 1.0,
            step,
            what: Some(what),
            source_metadata: None,
        }));
    }
    let user_file = run.join("tensorboard/events.out.tfevents.1.host.1.0");
    std::fs::write(&user_file, &theirs).unwrap();
    // The run's own file, damaged in its middle (a byte of the second record's data).
    let ours = event_files(&run)
        .into_iter()
        .find(|p| p.to_string_lossy().ends_with(".vae-tch"))
        .unwrap();
    let mut bytes = std::fs::read(&ours).unwrap();
    let first = read_events(&bytes).events[0].encoded_len() + 16;
    bytes[first + 14] ^= 0x40;
    std::fs::write(&ours, &bytes).unwrap();
    let o = train(tmp.path(), &["--resume", "r", "--epochs", "2"]);
    let t = common::text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("is damaged at byte")
            && t.contains("set aside as")
            && t.contains("tensorboard.damaged"),
        "{t}"
    );
    let aside = run
        .join("tensorboard.damaged")
        .join(ours.file_name().unwrap());
    assert_eq!(
        std::fs::read(aside).unwrap(),
        bytes,
        "the damaged file is kept as it was"
    );
    assert_eq!(
        std::fs::read(&user_file).unwrap(),
        theirs,
        "the user's file changed"
    );
    each_step_once(&run);
}

#[test]
fn a_restart_after_a_kill_in_the_first_epoch_and_a_resume_show_each_step_once() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 64, 8);
    let o = train(
        tmp.path(),
        &["--epochs", "1", "--out", "r", "--early-stopping", "3"],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let run = tmp.path().join("r");
    // A kill in the first epoch, after its events and before its checkpoint: what is left is
    // the config, data.toml and the event file.
    std::fs::remove_dir_all(run.join("checkpoint")).unwrap();
    std::fs::remove_dir_all(run.join("best")).unwrap();
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    let o = train(
        tmp.path(),
        &["--epochs", "1", "--out", "r", "--early-stopping", "3"],
    );
    let t = common::text(&o);
    assert!(
        o.status.success() && t.contains("starting the run from the beginning"),
        "{t}"
    );
    each_step_once(&run);
    // A resume: the events go on at its global step, and its config text is the one it goes on
    // with (here --early-stopping 5), at the resume step.
    let o = train(
        tmp.path(),
        &["--resume", "r", "--epochs", "2", "--early-stopping", "5"],
    );
    assert!(o.status.success(), "{}", common::text(&o));
    each_step_once(&run);
    let mut configs: Vec<(i64, String)> = Vec::new();
    for f in event_files(&run) {
        for e in read_events(&std::fs::read(f).unwrap()).events {
            if let Some(What::Summary(s)) = &e.what {
                for v in s.value.iter().filter(|v| v.tag == "config") {
                    if let Some(Kind::Tensor(t)) = &v.value {
                        configs.push((e.step, String::from_utf8_lossy(&t.string_val[0]).into()));
                    }
                }
            }
        }
    }
    configs.sort();
    assert_eq!(configs.len(), 2, "{configs:?}");
    assert_eq!(configs[0].0, 0);
    assert!(
        configs[0].1.contains("early_stopping = 3"),
        "{}",
        configs[0].1
    );
    assert!(
        configs[1].0 > 0 && configs[1].1.contains("early_stopping = 5"),
        "{}",
        configs[1].1
    );
}

#[test]
fn a_dangling_tensorboard_link_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 16, 8);
    let o = train(tmp.path(), &["--epochs", "1", "--out", "r"]);
    assert!(o.status.success(), "{}", common::text(&o));
    let tb = tmp.path().join("r/tensorboard");
    std::fs::remove_dir_all(&tb).unwrap();
    std::os::unix::fs::symlink("/nonexistent/tb", &tb).unwrap();
    let o = train(tmp.path(), &["--resume", "r", "--epochs", "2"]);
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("r/tensorboard is a link to /nonexistent/tb, which does not exist"),
        "{t}"
    );
}
