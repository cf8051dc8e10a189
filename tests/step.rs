//! The training step's interface (src/step.rs) on the CPU: the eager form is exactly the loop
//! it replaced, the CUDA graph form is refused or skipped where there is no CUDA, and the
//! CUDA-graph shim is linked in.
mod common;

use tch::{Device, Kind, Tensor};
use vae_tch::config::RunConfig;
use vae_tch::config::{CudaGraphMode, StepForm};
use vae_tch::train::models::Solo;
use vae_tch::train::optim::KerasAdam;
use vae_tch::train::step::{StepData, TrainStep};

fn images(n: usize) -> Tensor {
    let (bytes, _) = common::synthetic_images(n, 3);
    Tensor::from_slice(&bytes)
        .view([n as i64, 1, 28, 28])
        .to_kind(Kind::Float)
        / 255.0
}

fn batches(n: i64, bs: i64) -> Vec<Tensor> {
    tch::manual_seed(21);
    vae_tch::data::batch::shuffled(n, bs, Device::Cpu)
}

#[test]
fn the_eager_step_is_the_hand_written_loop_bit_for_bit() {
    let _g = common::rng_lock();
    let cfg = RunConfig::default();
    let x = images(44); // batch 8: five full batches and one of 4
    let idx = batches(44, 8);

    // The loop as train.rs ran it before the step interface: gather, forward, loss, backward,
    // Adam, sum the losses.
    let mut a = vae_tch::model::build(&cfg, Device::Cpu, 9);
    a.vae.set_layout(vae_tch::model::Layout {
        channels_last: true,
        flipped: false,
    });
    let mut opt = KerasAdam::new(
        a.vs.variables().into_iter().collect(),
        vec![cfg.optim.clone()],
        None,
    );
    let mut want_sums = Tensor::zeros([3], (Kind::Double, Device::Cpu));
    tch::manual_seed(4);
    for i in &idx {
        let xb = x.index_select(0, i);
        let out = a.vae.forward(&xb, true);
        let p =
            vae_tch::model::loss::vae_loss(&out.reconstruction, &xb, &out.mu, &out.log_var, 1000.0);
        opt.backward(&p.loss);
        opt.step();
        tch::no_grad(|| {
            want_sums += Tensor::stack(&[p.loss, p.r_loss, p.kl_loss], 0).to_kind(Kind::Double)
                * i.size()[0] as f64;
        });
    }

    let mut b = vae_tch::model::build(&cfg, Device::Cpu, 9);
    b.vae.set_layout(vae_tch::model::Layout {
        channels_last: true,
        flipped: false,
    });
    let opt_b = KerasAdam::new(
        b.vs.variables().into_iter().collect(),
        vec![cfg.optim.clone()],
        None,
    );
    let solo = Solo::new(b);
    let data = StepData {
        models: &solo,
        images: &x,
        r_loss_factors: vec![1000.0],
        stream: false,
        cudnn_benchmark: true,
        precision: vae_tch::config::Precision::Fp32,
    };
    let (mut step, warning) = TrainStep::new(data, opt_b, 8, CudaGraphMode::Auto).unwrap();
    assert_eq!((step.form(), warning), (StepForm::Eager, None));
    step.begin_epoch();
    tch::manual_seed(4);
    for i in &idx {
        step.run(i, None).unwrap();
    }
    assert!(
        step.sums().view([-1]).equal(&want_sums),
        "{:?} vs {:?}",
        step.sums(),
        want_sums
    );
    assert_eq!(step.optimizer().step, idx.len() as i64);
    let (va, vb) = (a.vs.variables(), solo.model.vs.variables());
    for (name, t) in &va {
        assert!(t.equal(&vb[name]), "{name} differs");
    }
}

#[test]
fn cuda_graph_on_is_refused_on_the_cpu_and_auto_is_eager() {
    let _g = common::rng_lock();
    let cfg = RunConfig::default();
    let x = images(16);
    for (mode, ok) in [
        (CudaGraphMode::On, false),
        (CudaGraphMode::Auto, true),
        (CudaGraphMode::Off, true),
    ] {
        let m = vae_tch::model::build(&cfg, Device::Cpu, 1);
        let opt = KerasAdam::new(
            m.vs.variables().into_iter().collect(),
            vec![cfg.optim.clone()],
            None,
        );
        let solo = Solo::new(m);
        let data = StepData {
            models: &solo,
            images: &x,
            r_loss_factors: vec![1000.0],
            stream: false,
            cudnn_benchmark: true,
            precision: vae_tch::config::Precision::Fp32,
        };
        match TrainStep::new(data, opt, 8, mode) {
            Ok((step, warning)) => {
                assert!(ok, "{mode:?} was accepted on the CPU");
                assert_eq!((step.form(), warning), (StepForm::Eager, None));
            }
            Err(e) => {
                assert!(!ok, "{mode:?}: {e}");
                assert!(e.to_string().contains("--device cuda"), "{e}");
            }
        }
    }
}

#[test]
fn the_cuda_graph_shim_is_linked_in() {
    // Compiled with the CUDA runtime headers (scripts/setup.sh installs them): the real shim,
    // not the stub that reports "built without CUDA graph support".
    assert!(
        vae_tch::train::cuda_graph::supported(),
        "csrc/cuda_graph.cpp was built as a stub: rerun scripts/setup.sh (nvidia-cuda-crt)"
    );
    let binary = std::fs::read(env!("CARGO_BIN_EXE_vae-tch")).unwrap();
    for symbol in [
        "vae_tch_cuda_graph_capture_begin",
        "vae_tch_cuda_graph_replay",
        "_ZN2at4cuda9CUDAGraph6replayEv", // at::cuda::CUDAGraph::replay(), from libtorch_cuda
    ] {
        assert!(
            binary.windows(symbol.len()).any(|w| w == symbol.as_bytes()),
            "{symbol} is not in the vae-tch binary"
        );
    }
    // Without a GPU, asking for a graph is an error, never a crash.
    if !tch::Cuda::is_available() {
        assert!(vae_tch::train::cuda_graph::CudaGraph::new(0).is_err());
    }
}
