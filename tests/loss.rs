//! The VAE loss: KL closed forms and the seed's reduction, against the PyTorch reference.
use tch::{Device, Kind, Tensor};
use vae_tch::model::loss::{kl_loss, kl_per_image, vae_loss};

fn t(v: &[f32], shape: &[i64]) -> Tensor {
    Tensor::from_slice(v).view(shape)
}

#[test]
fn kl_closed_form_cases() {
    // KL(N(mu, s^2) || N(0, 1)) = 0.5 * (mu^2 + s^2 - 1 - ln s^2) per dimension.
    let zero = kl_per_image(&t(&[0.0, 0.0], &[1, 2]), &t(&[0.0, 0.0], &[1, 2]));
    assert_eq!(zero.double_value(&[0]), 0.0);
    let shifted = kl_per_image(&t(&[1.0, 2.0], &[1, 2]), &t(&[0.0, 0.0], &[1, 2]));
    assert!((shifted.double_value(&[0]) - 2.5).abs() < 1e-6);
    let wide = kl_per_image(&t(&[0.0], &[1, 1]), &t(&[4f32.ln()], &[1, 1]));
    let want = 0.5 * (4.0 - 1.0 - 4f64.ln());
    assert!((wide.double_value(&[0]) - want).abs() < 1e-6);
    // The batch mean of per-image KLs.
    let batch = kl_loss(&t(&[1.0, 2.0, 0.0, 0.0], &[2, 2]), &t(&[0.0; 4], &[2, 2]));
    assert!((batch.double_value(&[]) - 1.25).abs() < 1e-6);
}

#[test]
fn loss_equals_the_pytorch_reference_on_a_fixed_input() {
    // From scripts/vae_torch.py (torch 2.11.0, float32):
    //   i = torch.arange(2 * 784, dtype=torch.float32)
    //   x = ((i * 7) % 11 / 10).reshape(2, 1, 28, 28)
    //   recon = ((i * 5) % 13 / 13).reshape(2, 1, 28, 28)
    //   mu = torch.tensor([[0.5, -1.0], [0.25, 2.0]])
    //   log_var = torch.tensor([[0.1, -0.3], [-1.0, 0.5]])
    //   vae_loss(recon, x, mu, log_var, 1000.0) -> (185.351761, 183.882996, 1.468772)
    let i = Tensor::arange(2 * 784, (Kind::Float, Device::Cpu));
    let x = ((&i * 7.0).fmod(11.0) / 10.0).view([2, 1, 28, 28]);
    let recon = ((&i * 5.0).fmod(13.0) / 13.0).view([2, 1, 28, 28]);
    let mu = t(&[0.5, -1.0, 0.25, 2.0], &[2, 2]);
    let log_var = t(&[0.1, -0.3, -1.0, 0.5], &[2, 2]);
    let p = vae_loss(&recon, &x, &mu, &log_var, 1000.0);
    let close = |t: &Tensor, want: f64| {
        let got = t.double_value(&[]);
        assert!((got - want).abs() < 1e-3, "got {got}, want {want}");
    };
    close(&p.loss, 185.351761);
    close(&p.r_loss, 183.882996);
    close(&p.kl_loss, 1.468772);
}

#[test]
fn r_loss_factor_scales_only_the_reconstruction_term() {
    let x = Tensor::full([2, 1, 4, 4], 0.5, (Kind::Float, Device::Cpu));
    let r = Tensor::full([2, 1, 4, 4], 0.25, (Kind::Float, Device::Cpu));
    let mu = t(&[1.0, 0.0, 0.0, 0.0], &[2, 2]);
    let lv = t(&[0.0; 4], &[2, 2]);
    let a = vae_loss(&r, &x, &mu, &lv, 1.0);
    let b = vae_loss(&r, &x, &mu, &lv, 1000.0);
    assert!((a.r_loss.double_value(&[]) - 0.0625).abs() < 1e-7);
    assert!((b.r_loss.double_value(&[]) - 62.5).abs() < 1e-4);
    assert_eq!(a.kl_loss.double_value(&[]), b.kl_loss.double_value(&[]));
}
