//! The model: shapes, parameter names and counts, Keras semantics, and outputs against the
//! PyTorch reference `scripts/vae_torch.py`.
use tch::{nn, Device, Kind, Tensor};
use vae_tch::config::VaeConfig;
use vae_tch::model::summary;
use vae_tch::model::{leaky_relu, same_padding, Layout, Vae};

fn model(cfg: &VaeConfig) -> (nn::VarStore, Vae) {
    let vs = nn::VarStore::new(Device::Cpu);
    let vae = Vae::new(&vs.root(), cfg);
    (vs, vae)
}

#[test]
fn output_shapes() {
    let (_vs, vae) = model(&VaeConfig::default());
    let x = Tensor::rand([3, 1, 28, 28], (Kind::Float, Device::Cpu));
    let out = vae.forward(&x, true);
    assert_eq!(out.mu.size(), [3, 2]);
    assert_eq!(out.log_var.size(), [3, 2]);
    assert_eq!(out.z.size(), [3, 2]);
    assert_eq!(out.reconstruction.size(), [3, 1, 28, 28]);
    let (lo, hi) = (
        out.reconstruction.min().double_value(&[]),
        out.reconstruction.max().double_value(&[]),
    );
    assert!(
        lo > 0.0 && hi < 1.0,
        "sigmoid output in (0, 1), got [{lo}, {hi}]"
    );
    let cfg = VaeConfig {
        latent_dim: 5,
        ..VaeConfig::default()
    };
    let (_vs, vae) = model(&cfg);
    let (mu, _) = vae.encoder.forward(&x);
    assert_eq!(mu.size(), [3, 5]);
    assert_eq!(vae.decoder.forward(&mu).size(), [3, 1, 28, 28]);
}

#[test]
fn parameter_counts_equal_keras_summary() {
    // Keras summary() of the seed's model: encoder 105,220, decoder 102,017, total 207,237
    // (../shared/keras-semantics.md; 320 + 18,496 + 2 x 36,928 + 2 x 6,274 and
    // 9,408 + 2 x 36,928 + 18,464 + 289).
    let (vs, vae) = model(&VaeConfig::default());
    assert_eq!(summary::counts(&vae), (105_220, 102_017));
    let total: i64 = vs.variables().values().map(|t| t.numel() as i64).sum();
    assert_eq!(total, 207_237);
    let text = summary::render(&vae);
    assert!(text.contains("Total params: 105,220"), "{text}");
    assert!(text.contains("Total params: 102,017"), "{text}");
    assert!(text.contains("VAE total params: 207,237"), "{text}");
}

#[test]
fn parameter_names_are_the_pytorch_state_dict_keys() {
    // `python scripts/vae_torch.py` prints these keys of VAE().state_dict().
    let mut want: Vec<String> = ["conv1", "conv2", "conv3", "conv4", "mu", "log_var"]
        .iter()
        .map(|l| format!("encoder.{l}"))
        .chain(
            ["fc", "deconv1", "deconv2", "deconv3", "deconv4"]
                .iter()
                .map(|l| format!("decoder.{l}")),
        )
        .flat_map(|l| [format!("{l}.weight"), format!("{l}.bias")])
        .collect();
    want.sort();
    let (vs, _) = model(&VaeConfig::default());
    let vars = vs.variables();
    let mut got: Vec<String> = vars.keys().cloned().collect();
    got.sort();
    assert_eq!(got, want);
    // PyTorch layouts: Conv2d [out, in, k, k], ConvTranspose2d [in, out, k, k], Linear [out, in].
    assert_eq!(vars["encoder.conv2.weight"].size(), [64, 32, 3, 3]);
    assert_eq!(vars["decoder.deconv3.weight"].size(), [64, 32, 3, 3]);
    assert_eq!(vars["decoder.fc.weight"].size(), [3136, 2]);
}

#[test]
fn glorot_uniform_kernels_and_zero_biases() {
    tch::manual_seed(0);
    let (vs, _) = model(&VaeConfig::default());
    let vars = vs.variables();
    for (name, t) in &vars {
        if name.ends_with(".bias") {
            assert_eq!(t.abs().max().double_value(&[]), 0.0, "{name} is not zero");
        }
    }
    // conv2: fan_in 32*9, fan_out 64*9 -> limit sqrt(6 / 864) = 0.0833; uniform std = limit / sqrt(3).
    let w = &vars["encoder.conv2.weight"];
    let limit = (6.0f64 / (288.0 + 576.0)).sqrt();
    assert!(w.abs().max().double_value(&[]) <= limit);
    let std = w.std(true).double_value(&[]);
    assert!(
        (std - limit / 3f64.sqrt()).abs() < 0.05 * limit,
        "std {std} vs {}",
        limit / 3f64.sqrt()
    );
}

#[test]
fn tf_same_padding_puts_the_odd_pixel_after() {
    // TF: total = max((ceil(n/s) - 1) * s + k - n, 0), before = total / 2.
    assert_eq!(same_padding(28, 3, 2), (0, 1));
    assert_eq!(same_padding(14, 3, 2), (0, 1));
    assert_eq!(same_padding(28, 3, 1), (1, 1));
    assert_eq!(same_padding(7, 3, 1), (1, 1));
    assert_eq!(same_padding(8, 5, 2), (1, 2));
}

#[test]
fn leaky_relu_has_slope_and_gradient_of_keras_leakyrelu() {
    let x = Tensor::from_slice(&[-2.0f32, -0.5, 0.0, 0.25, 3.0]).set_requires_grad(true);
    let y = leaky_relu(&x, 0.3);
    let want = [-0.6f32, -0.15, 0.0, 0.25, 3.0];
    let got: Vec<f32> = Vec::try_from(&y.detach()).unwrap();
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-7, "{got:?} vs {want:?}");
    }
    (y * Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0, 5.0]))
        .sum(None)
        .backward();
    let grad: Vec<f32> = Vec::try_from(&x.grad()).unwrap();
    // d/dx = slope below 0, 1 above (torch's leaky_relu_backward also gives slope at 0).
    let want = [0.3f32, 0.6, 0.9, 4.0, 5.0];
    for (g, w) in grad.iter().zip(want) {
        assert!((g - w).abs() < 1e-6, "{grad:?} vs {want:?}");
    }
}

/// Sets every variable, in sorted-name order k, to 0.2 * sin(0.37 * i + k) for i in 0..numel.
fn formula_weights(vs: &nn::VarStore) {
    let vars = vs.variables();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    tch::no_grad(|| {
        for (k, name) in names.into_iter().enumerate() {
            let t = &vars[name];
            let v = ((Tensor::arange(t.numel() as i64, (Kind::Double, Device::Cpu)) * 0.37
                + k as f64)
                .sin()
                * 0.2)
                .to_kind(Kind::Float)
                .view(t.size().as_slice());
            t.shallow_clone().copy_(&v);
        }
    });
}

#[test]
fn outputs_equal_the_pytorch_reference() {
    // Golden numbers from scripts/vae_torch.py (torch 2.11.0, CPU, float32):
    //   m = VAE()
    //   for k, (name, p) in enumerate(sorted(m.state_dict().items())):
    //       p.copy_((0.2 * torch.sin(torch.arange(p.numel(), dtype=torch.float64) * 0.37 + k)).reshape(p.shape))
    //   i = torch.arange(2 * 784, dtype=torch.float32)
    //   x = ((torch.sin(i.double() * 0.11) + 1) / 2).float().reshape(2, 1, 28, 28)
    //   mu, lv = m.encoder(x); r = m.decoder(mu)
    // A port with torch's symmetric padding misses mu by 0.217 here. Every layout the CPU or
    // CUDA runs (channels-last, flipped) gives these numbers.
    for (channels_last, flipped) in [(false, false), (true, false), (false, true), (true, true)] {
        let (vs, mut vae) = model(&VaeConfig::default());
        formula_weights(&vs);
        let want = Layout {
            channels_last,
            flipped,
        };
        assert_eq!(vae.set_layout(want), want);
        reference_outputs(&vae);
    }
}

fn reference_outputs(vae: &Vae) {
    let i = Tensor::arange(2 * 784, (Kind::Double, Device::Cpu));
    let x = (((i * 0.11).sin() + 1.0) / 2.0)
        .to_kind(Kind::Float)
        .view([2, 1, 28, 28]);
    let (mu, lv) = vae.encoder.forward(&x);
    let r = vae.decoder.forward(&mu);
    let close = |t: &Tensor, want: &[f64], tol: f64| {
        let got: Vec<f64> = Vec::try_from(&t.to_kind(Kind::Double).view(-1)).unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < tol, "got {got:?}, want {want:?}");
        }
    };
    close(
        &mu,
        &[
            0.30198171734809875,
            0.3441103398799896,
            0.300150990486145,
            0.31799477338790894,
        ],
        2e-5,
    );
    close(
        &lv,
        &[
            0.008670568466186523,
            -0.34741389751434326,
            -0.018510878086090088,
            -0.32172441482543945,
        ],
        2e-5,
    );
    close(
        &r.get(0).get(0).get(0).narrow(0, 0, 4),
        &[
            0.44879084825515747,
            0.3959604501724243,
            0.36841028928756714,
            0.3342316746711731,
        ],
        2e-5,
    );
    close(
        &r.get(1).get(0).get(27).narrow(0, 24, 4),
        &[
            0.13804566860198975,
            0.09703639894723892,
            0.134453684091568,
            0.20071664452552795,
        ],
        2e-5,
    );
    close(
        &r.get(0).get(0).get(13).narrow(0, 13, 1),
        &[0.11471324414014816],
        2e-5,
    );
    close(&r.sum(Kind::Double), &[253.68429565429688], 2e-3);
}

#[test]
fn batch_norm_follows_keras_in_training_and_in_eval() {
    // Keras BatchNormalization (keras/src/layers/normalization/batch_normalization.py, `call`):
    // training normalizes with the batch mean and biased variance, eps 1e-3, and updates
    // moving = moving * 0.99 + batch * 0.01 with the biased variance; eval uses the moving ones.
    let cfg = VaeConfig {
        use_batch_norm: true,
        ..VaeConfig::default()
    };
    let (_vs, vae) = model(&cfg);
    let bn = &vae.encoder.bns[0];
    tch::no_grad(|| {
        bn.weight.shallow_clone().copy_(&Tensor::linspace(
            0.5,
            2.0,
            32,
            (Kind::Float, Device::Cpu),
        ));
        bn.bias
            .shallow_clone()
            .copy_(&Tensor::linspace(-1.0, 1.0, 32, (Kind::Float, Device::Cpu)));
    });
    let x =
        Tensor::randn([6, 32, 5, 5], (Kind::Double, Device::Cpu)).to_kind(Kind::Float) * 3.0 + 1.0;
    let y = tch::no_grad(|| bn.forward(&x, true));
    let xd = x.to_kind(Kind::Double);
    let mean = xd.mean_dim([0i64, 2, 3].as_slice(), true, Kind::Double);
    let var = (&xd - &mean)
        .square()
        .mean_dim([0i64, 2, 3].as_slice(), true, Kind::Double);
    let g = bn.weight.to_kind(Kind::Double).view([1, 32, 1, 1]);
    let b = bn.bias.to_kind(Kind::Double).view([1, 32, 1, 1]);
    let want = (&xd - &mean) / (&var + 1e-3).sqrt() * g + b;
    let diff = (y.to_kind(Kind::Double) - want)
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff < 1e-4, "training output off by {diff}");
    let want_mean = mean.view([32]) * 0.01;
    let want_var = var.view([32]) * 0.01 + 0.99;
    let d_mean = (bn.running_mean.to_kind(Kind::Double) - want_mean)
        .abs()
        .max()
        .double_value(&[]);
    let d_var = (bn.running_var.to_kind(Kind::Double) - want_var)
        .abs()
        .max()
        .double_value(&[]);
    assert!(
        d_mean < 1e-6 && d_var < 1e-5,
        "moving stats off by {d_mean}, {d_var}"
    );
    // Eval: the moving statistics, and no update.
    let before = bn.running_mean.copy();
    let y = tch::no_grad(|| bn.forward(&x, false));
    let rm = bn.running_mean.to_kind(Kind::Double).view([1, 32, 1, 1]);
    let rv = bn.running_var.to_kind(Kind::Double).view([1, 32, 1, 1]);
    let g = bn.weight.to_kind(Kind::Double).view([1, 32, 1, 1]);
    let b = bn.bias.to_kind(Kind::Double).view([1, 32, 1, 1]);
    let want = (&xd - rm) / (rv + 1e-3).sqrt() * g + b;
    assert!(
        (y.to_kind(Kind::Double) - want)
            .abs()
            .max()
            .double_value(&[])
            < 1e-4
    );
    assert!(bn.running_mean.equal(&before));
}

#[test]
fn dropout_is_active_only_in_training() {
    let cfg = VaeConfig {
        use_dropout: true,
        ..VaeConfig::default()
    };
    let (_vs, vae) = model(&cfg);
    let x = Tensor::rand([4, 1, 28, 28], (Kind::Float, Device::Cpu));
    let eval = vae.encoder.forward(&x).0;
    assert!(
        eval.equal(&vae.encoder.forward(&x).0),
        "eval is deterministic"
    );
    let (a, b) = (
        vae.encoder.forward_t(&x, true).0,
        vae.encoder.forward_t(&x, true).0,
    );
    assert!(!a.equal(&b), "training draws dropout masks");
}

/// The book's faces model (Foster ch. 3, CelebA): 128x128x3, strides 2, z_dim 200, batch norm
/// and dropout.
fn faces_config() -> VaeConfig {
    VaeConfig {
        input_shape: [3, 128, 128],
        encoder_conv_strides: vec![2, 2, 2, 2],
        decoder_conv_t_filters: vec![64, 64, 32, 3],
        decoder_conv_t_strides: vec![2, 2, 2, 2],
        latent_dim: 200,
        use_batch_norm: true,
        use_dropout: true,
        ..VaeConfig::default()
    }
}

#[test]
fn the_faces_model_counts_equal_keras_summary() {
    // Keras 3.15 summary() of the book's faces model (input 128x128x3, z_dim 200, batch norm and
    // dropout; tests/python/test_export.py builds it and checks count_params()): encoder
    // 1,732,944 (448 non-trainable), decoder 917,123 (320 non-trainable), total 2,650,067.
    let cfg = faces_config();
    cfg.validate().unwrap();
    let (_vs, vae) = model(&cfg);
    assert_eq!(summary::counts(&vae), (1_732_944, 917_123));
    assert_eq!(summary::non_trainable_counts(&vae), (448, 320));
    let text = summary::render(&vae);
    assert!(text.contains("Trainable params: 1,732,496"), "{text}");
    assert!(text.contains("Non-trainable params: 320"), "{text}");
    assert!(text.contains("VAE total params: 2,650,067"), "{text}");
}

#[test]
fn model_sizes_are_estimated_and_absurd_ones_refused_before_any_tensor() {
    // The estimate is the exact count (Keras's, as summary gives it) for both models.
    let faces = faces_config();
    for cfg in [VaeConfig::default(), faces] {
        let (_vs, vae) = model(&cfg);
        let (e, d) = summary::counts(&vae);
        assert_eq!(cfg.param_estimate(), (e + d) as u64);
    }
    // --latent-dim 1000000000: 3 x 3136 x 1e9 parameters, refused by validate, not by malloc.
    let huge = VaeConfig {
        latent_dim: 1_000_000_000,
        ..VaeConfig::default()
    };
    let err = huge.validate().unwrap_err().to_string();
    assert!(
        err.contains("parameters") && err.contains("latent_dim"),
        "{err}"
    );
    let wide = VaeConfig {
        input_shape: [1, 100_000, 100_000],
        encoder_conv_strides: vec![1, 1, 1, 1],
        decoder_conv_t_strides: vec![1, 1, 1, 1],
        ..VaeConfig::default()
    };
    let err = wide.validate().unwrap_err().to_string();
    assert!(
        err.contains("model.input_shape") && err.contains("values per image"),
        "{err}"
    );
}
