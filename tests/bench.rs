//! `vae-tch bench` beyond the seed model: a config's model on random images in each precision,
//! the refusals of flags that cannot hold together, and `--profile`'s table and Chrome trace
//! (crate::train::profile's self times checked on made-up nested events).
mod common;

use common::{text, vae_tch};
use vae_tch::train::profile::{summarize, Event};

#[test]
fn self_time_is_an_ops_duration_less_its_direct_childrens() {
    let ev = |cuda, thread, start_ns, end_ns, name: &str| Event {
        cuda,
        thread,
        start_ns,
        end_ns,
        name: name.into(),
    };
    // conv (0..100) calls pad (10..30) and mkldnn (40..90), which calls copy (50..60); another
    // thread's conv (0..50) stands alone; a kernel overlapping them all counts whole.
    let rows = summarize(&[
        ev(false, 1, 0, 100, "conv"),
        ev(false, 1, 10, 30, "pad"),
        ev(false, 1, 40, 90, "mkldnn"),
        ev(false, 1, 50, 60, "copy"),
        ev(false, 2, 0, 50, "conv"),
        ev(true, 7, 20, 80, "kernel"),
    ]);
    let get = |name: &str| rows.iter().find(|r| r.name == name).unwrap();
    assert_eq!((get("conv").calls, get("conv").self_ns), (2, 30 + 50));
    assert_eq!(get("pad").self_ns, 20);
    assert_eq!(get("mkldnn").self_ns, 40);
    assert_eq!(get("copy").self_ns, 10);
    assert_eq!((get("kernel").device, get("kernel").self_ns), ("cuda", 60));
    assert_eq!(rows[0].name, "conv", "largest self time first");
}

#[test]
fn bench_times_each_precision_of_a_configs_model_on_random_images() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vae_tch(
        &[
            "bench",
            "--config",
            concat!(env!("CARGO_MANIFEST_DIR"), "/configs/faces-celeba.toml"),
            "--input-shape",
            "3,32,32",
            "--device",
            "cpu",
            "--batch-size",
            "4",
            "--precision",
            "fp32,bf16",
            "--steps",
            "2",
            "--warm-up",
            "1",
            "--json",
            "b.json",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("random 3x32x32 images"), "{t}");
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("b.json")).unwrap()).unwrap();
    let precisions: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["precision"].as_str().unwrap())
        .collect();
    assert_eq!(precisions, ["fp32", "bf16"]);
    // Refused, naming the flag: fewer random images than a batch; random images and a data
    // folder at once; profiled steps without --profile; a trace into a missing folder.
    for (args, says) in [
        (
            &["--synthetic", "2", "--batch-size", "4"][..],
            "--synthetic 2",
        ),
        (&["--synthetic", "8", "--data-dir", "d"][..], "--data-dir"),
        (&["--profile-steps", "3"][..], "--profile"),
        (
            &[
                "--synthetic",
                "8",
                "--batch-size",
                "4",
                "--profile",
                "no/t.json",
            ][..],
            "--profile no/t.json: the folder no does not exist",
        ),
    ] {
        let o = vae_tch(
            &[&["bench", "--device", "cpu"][..], args].concat(),
            tmp.path(),
        );
        assert!(!o.status.success(), "{args:?}");
        assert!(text(&o).contains(says), "{args:?}: {}", text(&o));
    }
}

#[test]
fn bench_profile_prints_where_the_time_goes_and_writes_a_chrome_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let o = vae_tch(
        &[
            "bench",
            "--device",
            "cpu",
            "--synthetic",
            "16",
            "--batch-size",
            "8",
            "--steps",
            "1",
            "--warm-up",
            "1",
            "--profile",
            "trace.json",
            "--profile-steps",
            "2",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("(2 profiled steps)"), "{out}");
    // The step's own ops, and the total.
    assert!(
        out.contains("| cpu | aten::convolution_backward |"),
        "{out}"
    );
    assert!(out.contains("| cpu | all "), "{out}");
    let trace: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("trace.json")).unwrap())
            .expect("a JSON Chrome trace");
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    assert!(events
        .iter()
        .any(|e| e["name"].as_str() == Some("aten::convolution_backward")));
}
