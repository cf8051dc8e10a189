//! The CPU layouts (`Vae::set_layout`: channels-last, flipped) compute the same model: the
//! flipped form's symmetric torch padding equals Keras's asymmetric 'same' padding for every
//! kernel, stride and size tried, forward and backward, in float64.
use tch::{nn, Device, Kind, Tensor};
use vae_tch::config::VaeConfig;
use vae_tch::model::{conv_padding, conv_t_padding, Layout, Vae};

fn f64_model(cfg: &VaeConfig) -> (nn::VarStore, Vae) {
    let mut vs = nn::VarStore::new(Device::Cpu);
    let vae = Vae::new(&vs.root(), cfg);
    vs.double();
    (vs, vae)
}

/// The encoder's (mu, log_var), the decoder's images, and every parameter's gradient of a loss
/// over both, for images `x` and latent points `z`.
fn outputs_and_gradients(vs: &nn::VarStore, vae: &Vae, x: &Tensor, z: &Tensor) -> Vec<Tensor> {
    let (mu, log_var) = vae.encoder.forward_t(x, true);
    let images = vae.decoder.forward_t(z, true);
    let loss = (&mu * &mu).sum(Kind::Double)
        + log_var.sin().sum(Kind::Double)
        + (&images
            * Tensor::arange(images.numel() as i64, (Kind::Double, Device::Cpu))
                .view(images.size().as_slice())
                .cos())
        .sum(Kind::Double);
    let all = vs.variables();
    let mut names: Vec<&String> = all.keys().filter(|n| all[*n].requires_grad()).collect();
    names.sort();
    let vars: Vec<Tensor> = names.iter().map(|n| all[*n].shallow_clone()).collect();
    let grads = Tensor::run_backward(&[loss], &vars, false, false);
    let mut out = vec![mu.detach(), log_var.detach(), images.detach()];
    out.extend(grads);
    out
}

fn max_difference(a: &[Tensor], b: &[Tensor]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| {
            assert_eq!(a.size(), b.size());
            (a - b).abs().max().double_value(&[])
        })
        .fold(0.0, f64::max)
}

#[test]
fn flipped_forms_equal_keras_padding_for_kernels_strides_and_sizes() {
    let mut flipped_count = 0;
    for k in 1..=5 {
        for s in 1..=3 {
            for (h, w) in [(5, 5), (6, 7), (8, 8), (9, 4), (28, 28)] {
                let dk = k.max(s); // the decoder's kernel may not be below its stride
                let cfg = VaeConfig {
                    input_shape: [2, h, w],
                    encoder_conv_filters: vec![3, 4],
                    encoder_conv_kernel_size: vec![k, 3],
                    encoder_conv_strides: vec![s, 2],
                    decoder_conv_t_filters: vec![3, 2],
                    decoder_conv_t_kernel_size: vec![dk, 3],
                    decoder_conv_t_strides: vec![s, 2],
                    latent_dim: 3,
                    use_batch_norm: true,
                    ..VaeConfig::default()
                };
                let (vs_a, a) = f64_model(&cfg);
                let (mut vs_b, mut b) = f64_model(&cfg);
                vs_b.copy(&vs_a).unwrap();
                let x = Tensor::rand([3, 2, h, w], (Kind::Double, Device::Cpu));
                let z = Tensor::randn([3, 3], (Kind::Double, Device::Cpu));
                let want = outputs_and_gradients(&vs_a, &a, &x, &z);
                let exact = conv_t_padding(dk, s, true).is_some();
                let flip = Layout {
                    channels_last: false,
                    flipped: true,
                };
                assert_eq!(b.set_layout(flip).flipped, exact, "k {dk} s {s}");
                if exact {
                    flipped_count += 1;
                } else {
                    assert_eq!(b.decoder.layout, Layout::default());
                }
                b.set_layout(Layout {
                    channels_last: true,
                    flipped: false,
                });
                let got = outputs_and_gradients(&vs_b, &b, &x, &z);
                let d = max_difference(&want, &got);
                assert!(
                    d < 1e-10,
                    "k {k} s {s} {h}x{w} {:?}: differs by {d}",
                    b.decoder.layout
                );
            }
        }
    }
    // Only odd crops at stride 1 (even kernels: k 2 and 4) lack a flipped form.
    assert_eq!(flipped_count, 5 * (3 * 5 - 2));
}

#[test]
fn the_flipped_stride_2_layers_need_no_explicit_padding() {
    // Keras pads a 28 -> 14 conv (0, 1) and crops a 14 -> 28 transposed conv (0, 1): torch
    // needs an explicit zero row there, but not on flipped images, where both are torch's
    // symmetric forms (the plain PyTorch port's padding 1 and output_padding 1).
    assert_eq!(conv_padding(28, 3, 2, false), (0, 0, 1));
    assert_eq!(conv_padding(28, 3, 2, true), (1, 0, 0));
    assert_eq!(conv_padding(14, 3, 2, true), (1, 0, 0));
    assert_eq!(conv_padding(28, 3, 1, true), (1, 0, 0));
    assert_eq!(conv_t_padding(3, 2, false), Some((2, 1, 1)));
    assert_eq!(conv_t_padding(3, 2, true), Some((1, 1, 0)));
    assert_eq!(conv_t_padding(4, 1, true), None);
    for preset in ["seed-mnist", "fashion-mnist", "faces-celeba"] {
        let path = format!("{}/configs/{preset}.toml", env!("CARGO_MANIFEST_DIR"));
        let cfg = vae_tch::config::RunConfig::load(std::path::Path::new(&path)).unwrap();
        let vs = nn::VarStore::new(Device::Cpu);
        let mut vae = Vae::new(&vs.root(), &cfg.model);
        let flip = Layout {
            channels_last: false,
            flipped: true,
        };
        assert!(vae.set_layout(flip).flipped, "{preset}");
    }
}
