//! `--precision` (crate::train::precision) and the CPU dropout mask (crate::model::dropout):
//! bf16 autocast is on inside the forward pass and off after it, the model's outputs and
//! BatchNorm's statistics stay float32, a bf16 run trains to within 2% of the fp32 run's test
//! loss, and the dropout mask keeps exactly 1 - rate of the elements, in the map's own layout.
mod common;

use std::path::Path;

use tch::{nn, Device, Kind, Tensor};
use vae_tch::config::{Precision, RunConfig, VaeConfig};
use vae_tch::model::dropout::{dropout, keep_mask, mask_bits};
use vae_tch::model::{channels_last, Layout, Vae};
use vae_tch::train::precision;

use common::{rng_lock, text, vae_tch, write_synthetic};

/// A faces-like model on 1x28x28 images: BatchNorm and Dropout, two stride-2 layers.
fn small_faces() -> VaeConfig {
    VaeConfig {
        encoder_conv_filters: vec![8, 16],
        encoder_conv_kernel_size: vec![3, 3],
        encoder_conv_strides: vec![2, 2],
        decoder_conv_t_filters: vec![8, 1],
        decoder_conv_t_kernel_size: vec![3, 3],
        decoder_conv_t_strides: vec![2, 2],
        latent_dim: 8,
        use_batch_norm: true,
        use_dropout: true,
        dropout_rate: 0.25,
        ..VaeConfig::default()
    }
}

#[test]
fn mask_bits_are_exact_for_the_books_rate_and_fine_for_any_other() {
    // keep iff the signed byte >= -64: 192 of the 256 values, exactly 0.75.
    assert_eq!(mask_bits(0.25), (8, -64));
    assert_eq!(mask_bits(0.5), (8, 0));
    assert_eq!(mask_bits(1.0 / 1024.0), (16, 64 - 32768));
    let (bits, t) = mask_bits(0.1);
    assert_eq!(bits, 32);
    let p = (t + (1i64 << 31)) as f64 / (1u64 << 32) as f64;
    assert!((p - 0.1).abs() < 1e-9, "0.1 became {p}");
}

#[test]
fn the_cpu_dropout_keeps_one_minus_the_rate_in_the_maps_layout_and_repeats_with_the_seed() {
    let _g = rng_lock();
    for rate in [0.25, 0.1] {
        tch::manual_seed(3);
        let x = channels_last(&Tensor::ones([16, 32, 32, 32], (Kind::Float, Device::Cpu)));
        let mask = keep_mask(&x, rate);
        assert_eq!(
            mask.stride(),
            x.stride(),
            "the mask is in the map's memory order"
        );
        let kept = mask
            .to_kind(Kind::Double)
            .mean(Kind::Double)
            .double_value(&[]);
        // 524,288 Bernoulli draws: the standard error of the fraction is under 6e-4.
        let sd = (rate * (1.0 - rate) / x.numel() as f64).sqrt();
        assert!(
            (kept - (1.0 - rate)).abs() < 5.0 * sd,
            "rate {rate}: kept {kept}"
        );
        // Kept elements are scaled by 1 / (1 - rate), the others are 0.
        tch::manual_seed(3);
        let y = dropout(&x, rate, true);
        let scale = 1.0 / (1.0 - rate);
        let scaled = (&y - scale).abs().lt(1e-6);
        assert!(bool::try_from(scaled.logical_or(&y.eq(0.0)).all()).unwrap());
        assert!(scaled.equal(&mask), "the same seed, the same mask");
        tch::manual_seed(3);
        let again = keep_mask(&x, rate);
        assert!(again.equal(&mask), "manual_seed repeats the mask");
    }
    // A strided view (not dense) gets a mask of its own shape; inference passes through.
    let x = Tensor::ones([8, 10], (Kind::Float, Device::Cpu)).narrow(1, 0, 5);
    assert_eq!(keep_mask(&x, 0.25).size(), [8, 5]);
    assert!(dropout(&x, 0.25, false).equal(&x));
}

#[test]
fn bf16_autocasts_the_forward_pass_and_keeps_outputs_and_statistics_float32() {
    let _g = rng_lock();
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let mut vae = Vae::new(&vs.root(), &small_faces());
    let x = Tensor::rand([8, 1, 28, 28], (Kind::Float, Device::Cpu));
    for layout in [
        Layout::default(),
        Layout {
            channels_last: true,
            flipped: true,
        },
    ] {
        vae.set_layout(layout);
        assert!(!precision::autocast_enabled(Device::Cpu));
        let (fp32, bf16, inside) = {
            let fp32 = vae.reconstruct_mean(&x);
            let (bf16, inside) = precision::forward(Precision::Bf16, Device::Cpu, || {
                (
                    vae.reconstruct_mean(&x),
                    precision::autocast_enabled(Device::Cpu),
                )
            });
            (fp32, bf16, inside)
        };
        assert!(inside, "autocast is on inside the bf16 forward pass");
        assert!(
            !precision::autocast_enabled(Device::Cpu),
            "and off after it"
        );
        assert_eq!(bf16.kind(), Kind::Float, "the decoder's output is float32");
        let diff = (&fp32 - &bf16).abs().max().double_value(&[]);
        assert!(
            diff > 0.0 && diff < 0.05,
            "{layout}: bf16 convolutions differ from fp32 by {diff}"
        );
        // Tf32 and fp32 are the same arithmetic on the CPU.
        let tf32 = precision::forward(Precision::Tf32, Device::Cpu, || vae.reconstruct_mean(&x));
        assert!(tf32.equal(&fp32));

        // A training pass: float32 mu, log_var and moving statistics; gradients reach every
        // weight in float32.
        let out = precision::forward(Precision::Bf16, Device::Cpu, || vae.forward(&x, true));
        assert_eq!(out.mu.kind(), Kind::Float);
        assert_eq!(out.log_var.kind(), Kind::Float);
        assert_eq!(out.reconstruction.kind(), Kind::Float);
        for b in vae.buffers() {
            assert_eq!(b.kind(), Kind::Float);
            assert!(b.isfinite().all().int64_value(&[]) == 1);
        }
        let loss = (&out.reconstruction - &x).square().mean(Kind::Float)
            + out.mu.square().mean(Kind::Float);
        let params: Vec<Tensor> = vs.trainable_variables();
        let grads = Tensor::run_backward(&[loss], &params, false, false);
        for (p, g) in params.iter().zip(&grads) {
            assert_eq!(g.kind(), Kind::Float);
            assert_eq!(g.size(), p.size());
        }
    }
}

#[test]
fn the_tf32_switches_follow_the_precision() {
    precision::set_tf32(Precision::Fp32);
    assert_eq!(precision::tf32(), (false, false));
    precision::set_tf32(Precision::Tf32);
    assert_eq!(precision::tf32(), (true, false), "torch's defaults");
    precision::set_tf32(Precision::Bf16);
    assert_eq!(precision::tf32(), (true, false));
}

fn last_test_loss(run: &Path) -> f64 {
    let rows = vae_tch::run::metrics::read(&run.join("metrics.csv")).unwrap();
    rows.last().unwrap().test_loss
}

#[test]
fn a_bf16_run_ends_within_two_percent_of_the_fp32_runs_test_loss() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    write_synthetic(&data, 480, 96);
    let config = RunConfig {
        model: small_faces(),
        ..RunConfig::default()
    };
    std::fs::write(
        tmp.path().join("small.toml"),
        toml::to_string(&config).unwrap(),
    )
    .unwrap();
    let mut losses = Vec::new();
    for p in ["fp32", "bf16"] {
        let o = vae_tch(
            &[
                "train",
                "--config",
                "small.toml",
                "--data-dir",
                "data",
                "--device",
                "cpu",
                "--epochs",
                "4",
                "--batch-size",
                "16",
                "--precision",
                p,
                "--out",
                p,
                "--no-export",
                "--no-tensorboard",
                "--quiet",
            ],
            tmp.path(),
        );
        assert!(o.status.success(), "{}", text(&o));
        let run = tmp.path().join(p);
        let saved = RunConfig::load(&run.join("config.toml")).unwrap();
        assert_eq!(
            saved.train.precision.to_string(),
            p,
            "config.toml records it"
        );
        losses.push(last_test_loss(&run));
    }
    // A resumed run may change its precision (as --cuda-graph): the fp32 run goes on in bf16.
    let o = vae_tch(
        &[
            "train",
            "--resume",
            "fp32",
            "--epochs",
            "5",
            "--precision",
            "bf16",
            "--device",
            "cpu",
            "--no-export",
            "--quiet",
        ],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", text(&o));
    let resumed = RunConfig::load(&tmp.path().join("fp32/config.toml")).unwrap();
    assert_eq!(resumed.train.precision, Precision::Bf16);
    let rows = vae_tch::run::metrics::read(&tmp.path().join("fp32/metrics.csv")).unwrap();
    assert_eq!(rows.len(), 5);
    let (fp32, bf16) = (losses[0], losses[1]);
    assert!(fp32.is_finite() && bf16.is_finite());
    assert_ne!(fp32, bf16, "bf16 ran other arithmetic");
    let rel = (bf16 - fp32).abs() / fp32;
    eprintln!(
        "test loss: fp32 {fp32}, bf16 {bf16} ({:.3}% apart)",
        rel * 100.0
    );
    assert!(
        rel < 0.02,
        "bf16 test loss {bf16} against fp32 {fp32}: {:.2}% apart",
        rel * 100.0
    );
}

#[test]
fn a_stack_in_bf16_gives_float32_outputs_near_its_fp32_ones() {
    use vae_tch::model::stack::{Noise, StackedVae};
    let _g = rng_lock();
    let config = RunConfig {
        model: small_faces(),
        ..RunConfig::default()
    };
    let parts: Vec<_> = (0..3)
        .map(|j| vae_tch::model::build(&config, Device::Cpu, 10 + j))
        .collect();
    let refs: Vec<&Vae> = parts.iter().map(|m| &m.vae).collect();
    let mut stack = StackedVae::new(&refs);
    stack.set_layout(Layout {
        channels_last: true,
        flipped: true,
    });
    let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let run = |p: Precision| {
        tch::manual_seed(1);
        precision::forward(p, Device::Cpu, || stack.forward(&x, true, &Noise::Fresh))
    };
    let (r32, mu32, _) = run(Precision::Fp32);
    let (r16, mu16, lv16) = run(Precision::Bf16);
    for t in [&r16, &mu16, &lv16] {
        assert_eq!(t.kind(), Kind::Float);
    }
    assert_eq!(r16.size(), [4, 3, 1, 28, 28]);
    let d = (&r32 - &r16).abs().max().double_value(&[]);
    let dm = (&mu32 - &mu16).abs().max().double_value(&[]);
    assert!(d > 0.0 && d < 0.05, "reconstructions {d} apart");
    assert!(dm > 0.0 && dm < 0.05, "mu {dm} apart");
}
