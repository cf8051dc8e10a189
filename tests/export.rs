//! Exports reload in Rust (tch's CModule) and give the model's outputs at any batch size; the
//! Python side (tests/python/test_export.py) checks the same files from torch and Keras.
mod common;

use tch::{CModule, Device, IValue, Kind, Tensor};
use vae_tch::interop::export::{
    self, DECODER_FILE, ENCODER_FILE, REFERENCE_IO_FILE, VAE_FILE, WEIGHTS_FILE,
};
use vae_tch::run::checkpoint;

fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    (a - b).abs().max().double_value(&[])
}

#[test]
fn exports_reload_and_match_the_model_at_any_batch_size() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 16, 8, 1, 2);
    let out = tmp.path().join("export");
    let written = export::export(&run, &out, Device::Cpu).unwrap();
    // config.toml/.json, vae_torch.py, README.md, 3 modules, weights, reference I/O (the tiny
    // run drew no figures to copy).
    assert_eq!(written.len(), 9, "{written:?}");
    assert!(written.iter().all(|p| p.is_file()), "{written:?}");
    assert!(!tmp.path().join("export.partial").exists());
    let model = checkpoint::load_model(&run, Device::Cpu).unwrap();
    let vae = &model.vae;
    let enc = CModule::load(out.join(ENCODER_FILE)).unwrap();
    let dec = CModule::load(out.join(DECODER_FILE)).unwrap();
    let full = CModule::load(out.join(VAE_FILE)).unwrap();
    // Traced at batch 4 (x) and 5 (z); other batch sizes must work too.
    for n in [1i64, 3, 9] {
        let x = Tensor::rand([n, 1, 28, 28], (Kind::Float, Device::Cpu));
        let z = Tensor::randn([n, 2], (Kind::Float, Device::Cpu));
        let (mu, log_var) = tch::no_grad(|| vae.encoder.forward(&x));
        // encoder.pt returns a tuple (mu, log_var).
        let out = enc
            .forward_is(&[IValue::Tensor(x.shallow_clone())])
            .unwrap();
        let IValue::Tuple(parts) = out else {
            panic!("encoder.pt returned {out:?}, not a tuple")
        };
        let [IValue::Tensor(m), IValue::Tensor(lv)] = parts.as_slice() else {
            panic!("tuple of {} values", parts.len())
        };
        assert_eq!(m.size(), [n, 2]);
        assert!(max_diff(m, &mu) < 1e-6);
        assert!(max_diff(lv, &log_var) < 1e-6);
        assert!(
            max_diff(
                &dec.forward_ts(&[&z]).unwrap(),
                &tch::no_grad(|| vae.decoder.forward(&z))
            ) < 1e-6
        );
        let via_ivalue = full
            .forward_is(&[IValue::Tensor(x.shallow_clone())])
            .unwrap();
        let IValue::Tensor(r) = via_ivalue else {
            panic!("vae.pt returned {via_ivalue:?}")
        };
        assert!(max_diff(&r, &tch::no_grad(|| vae.reconstruct_mean(&x))) < 1e-6);
    }
    // The golden file holds the model's own outputs on the documented inputs.
    let io: std::collections::HashMap<String, Tensor> =
        Tensor::read_safetensors(out.join(REFERENCE_IO_FILE))
            .unwrap()
            .into_iter()
            .collect();
    let (x, z) = export::reference_inputs(vae, Device::Cpu);
    assert!(io["x"].equal(&x) && io["z"].equal(&z));
    assert!(max_diff(&io["decoded"], &tch::no_grad(|| vae.decoder.forward(&z))) == 0.0);
    // model.safetensors holds the 22 state_dict tensors, equal to the checkpoint's.
    let w: Vec<(String, Tensor)> = Tensor::read_safetensors(out.join(WEIGHTS_FILE)).unwrap();
    assert_eq!(w.len(), 22);
    let vars = model.vs.variables();
    for (k, t) in &w {
        assert!(t.equal(&vars[k]), "{k}");
    }
    // The modules' parameters are the weights, under the same keys.
    let enc = CModule::load(out.join(ENCODER_FILE)).unwrap();
    let named = enc.named_parameters().unwrap();
    assert_eq!(named.len(), 12);
    for (k, t) in &named {
        assert!(t.equal(&vars[k]), "encoder.pt {k}");
    }
    // A second export replaces the first whole.
    export::export(&run, &out, Device::Cpu).unwrap();
    assert!(out.join(VAE_FILE).is_file() && !tmp.path().join("export.prev").exists());
}

#[test]
fn export_of_a_missing_run_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let err = export::export(
        &tmp.path().join("nope"),
        &tmp.path().join("out"),
        Device::Cpu,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("nope") && err.contains("not a vae-tch run folder"),
        "{err}"
    );
}

#[test]
fn exports_of_another_architecture_match_the_rust_model() {
    // Kernels 5 and 4 at stride 2 give an odd and an even 'same' crop in the decoder; latent 3.
    let _g = common::rng_lock();
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let mut cfg = vae_tch::config::RunConfig::default();
    cfg.model.encoder_conv_kernel_size = vec![3, 5, 4, 3];
    cfg.model.decoder_conv_t_kernel_size = vec![3, 5, 4, 3];
    cfg.model.latent_dim = 3;
    cfg.validate().unwrap();
    std::fs::write(run.join("config.toml"), cfg.to_toml()).unwrap();
    let model = vae_tch::model::build(&cfg, Device::Cpu, 4);
    let opt = vae_tch::train::optim::KerasAdam::new(
        model.vs.variables().into_iter().collect(),
        vec![cfg.optim.clone()],
        None,
    );
    checkpoint::save(
        &run,
        &model.state_dict(),
        &opt.state_tensors(),
        &checkpoint::TrainState::at(0, 0, 4),
    )
    .unwrap();
    let out = tmp.path().join("export");
    export::export(&run, &out, Device::Cpu).unwrap();
    let full = CModule::load(out.join(VAE_FILE)).unwrap();
    let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    let z = Tensor::randn([3, 3], (Kind::Float, Device::Cpu));
    let vae = &model.vae;
    let r = full.forward_ts(&[&x]).unwrap();
    assert!(max_diff(&r, &tch::no_grad(|| vae.reconstruct_mean(&x))) < 1e-6);
    let d = full.method_ts("decode", &[&z]).unwrap();
    assert!(max_diff(&d, &tch::no_grad(|| vae.decoder.forward(&z))) < 1e-6);
    let IValue::Tensor(samples) = full.method_is("sample", &[IValue::Int(5)]).unwrap() else {
        panic!("sample did not return a tensor")
    };
    assert_eq!(samples.size(), [5, 1, 28, 28]);
}

#[test]
fn a_trained_run_gets_eval_json_and_its_model_card_quotes_it_for_that_epoch_only() {
    // `train` finishes a run as a sweep point is finished (crate::finish): figures, eval.json
    // in the fast layout, the export whose card quotes eval.json.
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 48, 16);
    let args = [
        "train",
        "--data-dir",
        "data",
        "--device",
        "cpu",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--out",
        "r",
        "--quiet",
    ];
    let o = common::vae_tch(&args, tmp.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let run = tmp.path().join("r");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("eval.json")).unwrap()).unwrap();
    assert_eq!(record["epoch"], 1);
    assert_eq!(record["split"], "test");
    assert_eq!(record["checkpoint"], "last");
    assert_eq!(record["images"], 16);
    assert_eq!(record["k"], 20);
    let nats = record["neg_elbo_nats"].as_f64().unwrap();
    let card = std::fs::read_to_string(run.join("export/README.md")).unwrap();
    let row = card
        .lines()
        .find(|l| l.starts_with("| in nats"))
        .unwrap_or_else(|| panic!("no nats row in\n{card}"));
    assert!(row.contains(&format!("negative ELBO {nats:.2}")), "{row}");
    assert!(row.contains("16 test images, k = 20, seed 0"), "{row}");
    // An eval.json of another epoch than the exported one is not quoted.
    let mut other = record.clone();
    other["epoch"] = 7.into();
    std::fs::write(run.join("eval.json"), other.to_string()).unwrap();
    let o = common::vae_tch(&["export", "r"], tmp.path());
    assert!(o.status.success(), "{}", common::text(&o));
    let card = std::fs::read_to_string(run.join("export/README.md")).unwrap();
    assert!(!card.contains("| in nats"), "{card}");
}
