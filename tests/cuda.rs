//! CUDA-only checks of the graphed training step. Each is `#[ignore = "needs CUDA"]`, so a CPU
//! run lists them as ignored (not as passed); scripts/gpu-check.sh runs this test binary with
//! `--ignored` on a GPU machine, where a missing device is a failure.
mod common;

use tch::{Device, Kind, Tensor};
use vae_tch::config::RunConfig;
use vae_tch::config::{CudaGraphMode, Precision, StepForm};
use vae_tch::model::Layout;
use vae_tch::run::checkpoint;
use vae_tch::train::cuda_graph::CudaGraph;
use vae_tch::train::models::Solo;
use vae_tch::train::optim::KerasAdam;
use vae_tch::train::step::{StepData, TrainStep};

/// The GPU these tests need (they are ignored unless asked for with --ignored).
fn cuda() -> Device {
    assert!(
        tch::Cuda::is_available(),
        "this test needs a CUDA device (run it where libtorch sees one)"
    );
    Device::Cuda(0)
}

#[test]
#[ignore = "needs CUDA"]
fn replays_draw_fresh_noise_and_reseeding_repeats_it() {
    let _g = common::rng_lock();
    let dev = cuda();
    let mut out = Tensor::zeros([4096], (Kind::Float, dev));
    let mut graph = CudaGraph::new(0).unwrap();
    let target = out.shallow_clone();
    graph
        .capture(1, || {
            target
                .shallow_clone()
                .copy_(&Tensor::randn([4096], (Kind::Float, dev)))
        })
        .unwrap();
    let draw = |seed: Option<i64>| {
        if let Some(s) = seed {
            tch::manual_seed(s);
        }
        graph.replay().unwrap();
        out.copy()
    };
    let (a, b) = (draw(Some(3)), draw(None));
    assert!(!a.equal(&b), "two replays drew the same noise");
    let std = f64::try_from(a.std(true)).unwrap();
    assert!((std - 1.0).abs() < 0.1, "not N(0, 1): std {std}");
    assert!(draw(Some(3)).equal(&a), "reseeding did not repeat the draw");
    let _ = out.zero_();
}

/// `steps` steps of `form` on the seed's model over fixed batches (seeded alike); the weights
/// and the loss sums.
fn run_form(
    form: CudaGraphMode,
    x: &Tensor,
    idx: &[Tensor],
) -> (Vec<(String, Tensor)>, Tensor, StepForm) {
    run_form_on(form, x, idx, false)
}

/// The same, with `stream`: `x` and `idx` on the CPU, each batch prefetched to the GPU.
fn run_form_on(
    form: CudaGraphMode,
    x: &Tensor,
    idx: &[Tensor],
    stream: bool,
) -> (Vec<(String, Tensor)>, Tensor, StepForm) {
    let cfg = RunConfig::default();
    run_model(
        &cfg,
        Precision::Fp32,
        Layout::default(),
        form,
        x,
        idx,
        stream,
    )
}

/// The same for `cfg`'s model in `precision` and `layout`.
fn run_model(
    cfg: &RunConfig,
    precision: Precision,
    layout: Layout,
    form: CudaGraphMode,
    x: &Tensor,
    idx: &[Tensor],
    stream: bool,
) -> (Vec<(String, Tensor)>, Tensor, StepForm) {
    let device = if stream { Device::Cuda(0) } else { x.device() };
    let mut m = vae_tch::model::build(cfg, device, 5);
    m.vae.set_layout(layout);
    let opt = KerasAdam::new(
        m.trainable(),
        vec![cfg.optim.clone()],
        Some(idx.len() as i64),
    );
    let solo = Solo::new(m);
    let data = StepData {
        models: &solo,
        images: x,
        r_loss_factors: vec![cfg.train.r_loss_factor],
        stream,
        cudnn_benchmark: true,
        precision,
    };
    let (mut step, warning) = TrainStep::new(data, opt, 32, form).unwrap();
    assert_eq!(warning, None);
    step.begin_epoch();
    tch::manual_seed(8);
    for (k, i) in idx.iter().enumerate() {
        step.run(i, idx.get(k + 1)).unwrap();
    }
    // Weights back in the plain layout (a graph's are channels-last).
    let w = solo.model.state_dict();
    (w, step.sums().copy(), step.form())
}

/// 300 synthetic images on `dev` and one shuffle of them in batches of 32.
fn synthetic_batches(dev: Device) -> (Tensor, Vec<Tensor>) {
    let (bytes, _) = common::synthetic_images(300, 4);
    let x = (Tensor::from_slice(&bytes)
        .view([300, 1, 28, 28])
        .to_kind(Kind::Float)
        / 255.0)
        .to_device(dev);
    tch::manual_seed(2);
    (x, vae_tch::data::batch::shuffled(300, 32, dev))
}

#[test]
#[ignore = "needs CUDA"]
fn the_graphed_step_trains_like_the_eager_step() {
    let _g = common::rng_lock();
    let dev = cuda();
    // 9 full batches of 32 and a last one of 12, which runs eagerly beside the graph.
    let (x, idx) = synthetic_batches(dev);
    let (we, se, fe) = run_form(CudaGraphMode::Off, &x, &idx);
    let (wg, sg, fg) = run_form(CudaGraphMode::On, &x, &idx);
    assert_eq!((fe, fg), (StepForm::Eager, StepForm::CudaGraph));
    let (le, lg) = (
        se.double_value(&[0, 0]) / 300.0,
        sg.double_value(&[0, 0]) / 300.0,
    );
    let mut worst = 0f64;
    for ((n, a), (_, b)) in we.iter().zip(&wg) {
        let d = f64::try_from((a - b).abs().max()).unwrap();
        worst = worst.max(d);
        assert!(d < 1e-2, "{n}: eager and graphed weights differ by {d}");
    }
    eprintln!("eager loss {le:.5}, graphed {lg:.5}; max weight difference {worst:.2e}");
    assert!((le - lg).abs() / le < 1e-3, "eager loss {le}, graphed {lg}");
    // Streamed from the host through the prefetch thread, into the graph's static batch.
    let host_idx: Vec<Tensor> = idx.iter().map(|i| i.to_device(Device::Cpu)).collect();
    let (ws, ss, fs) = run_form_on(
        CudaGraphMode::On,
        &x.to_device(Device::Cpu),
        &host_idx,
        true,
    );
    assert_eq!(fs, StepForm::CudaGraph);
    let ls = ss.double_value(&[0, 0]) / 300.0;
    eprintln!("streamed + graphed loss {ls:.5}");
    assert!(
        (le - ls).abs() / le < 1e-3,
        "eager loss {le}, streamed {ls}"
    );
    for ((n, a), (_, b)) in we.iter().zip(&ws) {
        let d = f64::try_from((a - b).abs().max()).unwrap();
        assert!(d < 1e-2, "{n}: eager and streamed weights differ by {d}");
    }
}

#[test]
#[ignore = "needs CUDA"]
fn a_graphed_run_trains_resumes_and_records_its_form() {
    let _g = common::rng_lock();
    let dev = cuda();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    common::write_synthetic(&data, 100, 20); // batch 8: 12 graphed steps + one of 4 per epoch
    let job = |run: &std::path::Path, epochs, resume| {
        let mut config = common::tiny_config(&data, epochs, 8);
        config.train.cuda_graph = CudaGraphMode::On;
        vae_tch::run::job::TrainJob {
            run: run.to_path_buf(),
            config,
            resume,
            device: dev,
            quiet: true,
            force_data: false,
        }
    };
    let (one, two) = (tmp.path().join("one"), tmp.path().join("two"));
    let rows = vae_tch::run::job::train(&job(&one, 3, false))
        .unwrap()
        .runs
        .remove(0)
        .rows;
    assert!(rows[2].train_loss < rows[0].train_loss, "{rows:?}");
    let cfg = checkpoint::read_config(&one).unwrap();
    assert_eq!(cfg.train.step_form, Some(StepForm::CudaGraph));
    assert_eq!(checkpoint::read_state(&one).unwrap().step, 3 * 13);
    vae_tch::run::job::train(&job(&two, 1, false)).unwrap();
    let resumed = vae_tch::run::job::train(&job(&two, 3, true))
        .unwrap()
        .runs
        .remove(0)
        .rows;
    let a = &rows[2];
    let b = resumed.last().unwrap();
    eprintln!(
        "3 epochs: test loss {:.5}; 1 + resume 2: {:.5}",
        a.test_loss, b.test_loss
    );
    assert!(
        (a.test_loss - b.test_loss).abs() / a.test_loss < 1e-3,
        "{a:?} vs {b:?}"
    );
}

/// A stack of 3 seed models (a sweep's group) for `idx`'s steps in `form`: each model's
/// state and the loss sums `[3, 3]`.
fn run_stack(form: CudaGraphMode, x: &Tensor, idx: &[Tensor]) -> (Vec<Tensor>, Tensor, StepForm) {
    use vae_tch::model::stack::{Noise, StackedVae};
    use vae_tch::train::models::{Models, Stack};
    let cfg = RunConfig::default();
    let dev = x.device();
    let parts: Vec<_> = (0..3)
        .map(|s| vae_tch::model::build(&cfg, dev, s))
        .collect();
    let refs: Vec<&vae_tch::model::Vae> = parts.iter().map(|m| &m.vae).collect();
    let stack = Stack {
        model: StackedVae::new(&refs),
        noise: Noise::Rows {
            pool: 3,
            rows: Tensor::arange(3, (Kind::Int64, dev)),
        },
    };
    let mut lrs = vec![cfg.optim.clone(); 3];
    lrs[1].learning_rate = 1e-3;
    let opt = KerasAdam::new(stack.model.trainable(), lrs, Some(idx.len() as i64));
    let data = StepData {
        models: &stack,
        images: x,
        r_loss_factors: vec![100.0, 1000.0, 10000.0],
        stream: false,
        cudnn_benchmark: true,
        precision: vae_tch::config::Precision::Fp32,
    };
    let (mut step, warning) = TrainStep::new(data, opt, 32, form).unwrap();
    assert_eq!(warning, None);
    step.begin_epoch();
    tch::manual_seed(8);
    for (k, i) in idx.iter().enumerate() {
        step.run(i, idx.get(k + 1)).unwrap();
    }
    let states = (0..3)
        .map(|j| {
            let s = stack.model_state(j);
            Tensor::cat(&s.iter().map(|(_, t)| t.view([-1])).collect::<Vec<_>>(), 0)
        })
        .collect();
    (states, step.sums().copy(), step.form())
}

#[test]
#[ignore = "needs CUDA"]
fn the_graphed_stack_trains_like_the_eager_stack() {
    let _g = common::rng_lock();
    let dev = cuda();
    let (x, idx) = synthetic_batches(dev);
    let (we, se, fe) = run_stack(CudaGraphMode::Off, &x, &idx);
    let (wg, sg, fg) = run_stack(CudaGraphMode::On, &x, &idx);
    assert_eq!((fe, fg), (StepForm::Eager, StepForm::CudaGraph));
    for j in 0..3 {
        let (le, lg) = (se.double_value(&[j, 0]), sg.double_value(&[j, 0]));
        eprintln!("model {j}: eager loss sum {le:.3}, graphed {lg:.3}");
        assert!(
            (le - lg).abs() / le < 1e-3,
            "model {j}: eager {le}, graphed {lg}"
        );
        let d = f64::try_from((&we[j as usize] - &wg[j as usize]).abs().max()).unwrap();
        assert!(d < 1e-2, "model {j}: weights differ by {d}");
    }
}

/// The faces model (configs/faces-celeba.toml: BatchNorm, Dropout, z = 200) at 3x32x32 on 300
/// random images.
fn faces_batches(dev: Device) -> (RunConfig, Tensor, Vec<Tensor>) {
    let mut cfg = RunConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/configs/faces-celeba.toml"
    )))
    .unwrap();
    cfg.model.input_shape = [3, 32, 32];
    tch::manual_seed(6);
    let x = Tensor::rand([300, 3, 32, 32], (Kind::Float, dev));
    tch::manual_seed(2);
    (cfg, x, vae_tch::data::batch::shuffled(300, 32, dev))
}

#[test]
#[ignore = "needs CUDA"]
fn the_bf16_faces_step_trains_in_the_graph_like_eager_and_near_fp32() {
    let _g = common::rng_lock();
    let dev = cuda();
    let (cfg, x, idx) = faces_batches(dev);
    let loss = |s: &Tensor| s.double_value(&[0, 0]) / 300.0;
    // Each form in the layout train gives it (train::layout_for).
    let run = |p, form| {
        let layout = vae_tch::train::layout_for(dev, form == CudaGraphMode::On);
        run_model(&cfg, p, layout, form, &x, &idx, false)
    };
    let (w32, s32, _) = run(Precision::Fp32, CudaGraphMode::Off);
    let (we, se, fe) = run(Precision::Bf16, CudaGraphMode::Off);
    let (wg, sg, fg) = run(Precision::Bf16, CudaGraphMode::On);
    assert_eq!((fe, fg), (StepForm::Eager, StepForm::CudaGraph));
    let (l32, le, lg) = (loss(&s32), loss(&se), loss(&sg));
    let worst = |a: &[(String, Tensor)], b: &[(String, Tensor)]| {
        a.iter()
            .zip(b)
            .map(|((_, a), (_, b))| f64::try_from((a - b).abs().max()).unwrap())
            .fold(0f64, f64::max)
    };
    let (d_graph, d_fp32) = (worst(&we, &wg), worst(&we, &w32));
    eprintln!(
        "faces 32x32: fp32 eager loss {l32:.4}, bf16 eager {le:.4}, bf16 graph {lg:.4}; \
         weight difference bf16 graph-eager {d_graph:.2e}, bf16-fp32 {d_fp32:.2e}"
    );
    assert_ne!(le, l32, "bf16 ran other arithmetic than fp32");
    assert!(
        (le - l32).abs() / l32 < 0.02,
        "bf16 {le} against fp32 {l32}"
    );
    assert!((le - lg).abs() / le < 0.01, "bf16 eager {le}, graphed {lg}");
    assert!(
        d_graph < 5e-2,
        "bf16 graph and eager weights differ by {d_graph}"
    );
    for (n, t) in &wg {
        assert_eq!(t.kind(), Kind::Float, "{n} stays float32");
    }
}
