//! `vae-tch eval`: what a trained model is worth, in the units VAE papers report (Burda et al.,
//! "Importance Weighted Autoencoders", 2015; pythae's evaluation), so that runs with another
//! `r_loss_factor` can be compared.
//!
//! The seed's loss is a Gaussian decoder with a fixed variance. With D pixels per image and
//! r = `r_loss_factor`,
//!   r x mean squared error = sum (x - x_hat)^2 / (2 sigma^2)   with   sigma^2 = D / (2 r),
//! so the decoder's negative log-likelihood is
//!   -log p(x | z) = r x MSE + (D / 2) ln(2 pi sigma^2),
//! a density on continuous pixels in nats per image. From it, per image:
//! - the negative ELBO: E_q[-log p(x | z)] (over the k samples) + KL(q(z | x) || N(0, I)) (exact);
//! - the importance-weighted bound with k samples z_i ~ q(z | x):
//!   -log p(x) ~= -(logsumexp_i [log p(x | z_i) + log p(z_i) - log q(z_i | x)] - ln k),
//!   which is the ELBO in expectation at k = 1 and tightens (falls) as k grows;
//! - both also in bits per dimension: nats / (D ln 2);
//! - the reconstruction through the latent mean: MSE, and PSNR = 10 log10(1 / MSE) for pixels in
//!   [0, 1], from the mean MSE over the images;
//! - the KL per latent dimension, and the active units: dimensions whose latent mean varies over
//!   the data, Cov_x(E_q[z_i]) = Var_x(mu_i) > 0.01 (Burda et al., section 5.2).
use serde::{Deserialize, Serialize};
use tch::{Device, Kind, Tensor};

use crate::data::batch;
use crate::model::{Loaded, Vae};

/// A run's evaluation as `crate::finish` writes it when its training ends (a `Record`).
pub const EVAL_FILE: &str = "eval.json";

/// The IWAE paper's threshold on Var_x(mu_i) for an active unit.
pub const ACTIVE_THRESHOLD: f64 = 0.01;
/// At most this many decoded images per decoder call (k samples x images).
const DECODE_CHUNK: i64 = 2048;

/// The noise of the k samples: drawn from torch's generator, or given (`eps` `[k, N, L]`,
/// a test hook that lets an independent computation use the same samples).
pub enum Samples<'a> {
    Drawn,
    Given(&'a Tensor),
}

/// What was evaluated, and how: `eval --json` and a finished run's eval.json.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    /// `test` or `train`.
    pub split: String,
    /// `last` or `best`.
    pub checkpoint: String,
    /// The epoch of the checkpoint evaluated.
    pub epoch: usize,
    /// The seed of the samples.
    pub seed: u64,
    #[serde(flatten)]
    pub report: Report,
}

/// The negative ELBO and the IWAE bound (nats per image) of a run's eval.json, when it is of
/// epoch `epoch`; an older, unreadable or missing file gives neither. Read leniently (only
/// these fields), so that a record of an older vae-tch still counts.
pub fn nats_of(run: &std::path::Path, epoch: usize) -> (Option<f64>, Option<f64>) {
    #[derive(Deserialize)]
    struct Nats {
        epoch: u64,
        neg_elbo_nats: Option<f64>,
        iwae_nll_nats: Option<f64>,
    }
    std::fs::read(run.join(EVAL_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<Nats>(&b).ok())
        .filter(|n| n.epoch == epoch as u64)
        .map_or((None, None), |n| (n.neg_elbo_nats, n.iwae_nll_nats))
}

/// Everything `eval` reports, per image unless named otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub images: i64,
    pub k: i64,
    pub pixels: i64,
    pub r_loss_factor: f64,
    /// sigma^2 = D / (2 r), the decoder's variance.
    pub sigma2: f64,
    /// (D / 2) ln(2 pi sigma^2): -log p(x | z) = r x MSE + this.
    pub log_norm: f64,
    pub neg_elbo_nats: f64,
    pub neg_elbo_bits_per_dim: f64,
    pub iwae_nll_nats: f64,
    pub iwae_nll_bits_per_dim: f64,
    /// Mean squared error per pixel through the latent mean, and its PSNR in dB.
    pub mse: f64,
    pub psnr_db: f64,
    pub kl_nats: f64,
    pub kl_per_dim: Vec<f64>,
    /// Var_x(mu_i) per latent dimension.
    pub mean_variance: Vec<f64>,
    pub active_units: usize,
}

/// `evaluate` of a trained model, on a copy of it in the layout its device runs fastest
/// (`train::layout_for`; the same numbers to float rounding): on 2 CPU cores channels-last and
/// flipped took 1,000 test images at k = 100 from 34 to 17 s (2026-12-02). What `eval` and a
/// finished run's eval.json both use.
pub fn evaluate_model(
    model: &Loaded,
    images: &Tensor,
    k: i64,
    samples: Samples,
    device: Device,
) -> Report {
    let fast = crate::train::inference::Inference::new(model, device);
    let r = model.config.train.r_loss_factor;
    evaluate(&fast.model.vae, images, r, k, samples, device)
}

/// Sums over images, in f64 on the device.
struct Sums {
    neg_elbo: Tensor,
    iwae: Tensor,
    sq_err: Tensor,
    kl: Tensor,
    mu: Tensor,
    mu2: Tensor,
}

/// Evaluates `vae` on `images` (bytes or floats in [0, 1], `[N, C, H, W]`) with `k` samples per
/// image and the decoder variance of `r_loss_factor`.
pub fn evaluate(
    vae: &Vae,
    images: &Tensor,
    r_loss_factor: f64,
    k: i64,
    samples: Samples,
    device: Device,
) -> Report {
    let n = images.size()[0];
    let [c, h, w] = vae.config.input_shape;
    let d = c * h * w;
    let latent = vae.config.latent_dim;
    let sigma2 = d as f64 / (2.0 * r_loss_factor);
    let log_norm = 0.5 * d as f64 * (2.0 * std::f64::consts::PI * sigma2).ln();
    let half_ln_2pi = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let f64_zeros = |size: &[i64]| Tensor::zeros(size, (Kind::Double, device));
    let mut s = Sums {
        neg_elbo: f64_zeros(&[]),
        iwae: f64_zeros(&[]),
        sq_err: f64_zeros(&[]),
        kl: f64_zeros(&[latent]),
        mu: f64_zeros(&[latent]),
        mu2: f64_zeros(&[latent]),
    };
    let per_batch = (crate::train::inference_batch(device) / 4).max(1);
    tch::no_grad(|| {
        for (start, len) in batch::ranges(n, per_batch) {
            let x = crate::data::to_unit_float(&images.narrow(0, start, len).to_device(device));
            let (mu, log_var) = vae.encoder.forward(&x);
            // Through the mean.
            let recon = vae.decoder.forward(&mu);
            s.sq_err += (&recon - &x).square().sum(Kind::Double);
            // KL per dimension, exact.
            let kl = (mu.square() + log_var.exp() - 1.0 - &log_var) * 0.5;
            s.kl += kl.sum_dim_intlist(0, false, Kind::Double);
            let mu64 = mu.to_kind(Kind::Double);
            s.mu += mu64.sum_dim_intlist(0, false, Kind::Double);
            s.mu2 += mu64.square().sum_dim_intlist(0, false, Kind::Double);
            // k samples per image: eps [k, len, L].
            let eps = match &samples {
                Samples::Drawn => Tensor::randn([k, len, latent], (mu.kind(), device)),
                Samples::Given(e) => e.narrow(1, start, len).to_device(device).to_kind(mu.kind()),
            };
            let std = (&log_var * 0.5).exp();
            let z = mu.unsqueeze(0) + std.unsqueeze(0) * &eps;
            // -log p(x | z_i) per sample, [k, len].
            let flat = z.reshape([k * len, latent]);
            let parts: Vec<Tensor> = batch::ranges(k * len, DECODE_CHUNK)
                .map(|(s0, l0)| {
                    let xi = vae.decoder.forward(&flat.narrow(0, s0, l0));
                    let idx =
                        Tensor::arange_start(s0, s0 + l0, (Kind::Int64, device)).remainder(len);
                    let target = x.index_select(0, &idx);
                    (xi - target)
                        .square()
                        .mean_dim([1i64, 2, 3].as_slice(), false, Kind::Double)
                })
                .collect();
            let nll_x = Tensor::cat(&parts, 0).view([k, len]) * r_loss_factor + log_norm;
            // log p(z) - log q(z | x) = -0.5 sum(z^2) + 0.5 sum(eps^2 + log_var) (the 2 pi terms cancel).
            let z64 = z.to_kind(Kind::Double);
            let eps64 = eps.to_kind(Kind::Double);
            let log_pz = z64.square().sum_dim_intlist(2, false, Kind::Double) * -0.5
                - half_ln_2pi * latent as f64;
            let log_qz = (eps64.square() + log_var.to_kind(Kind::Double).unsqueeze(0))
                .sum_dim_intlist(2, false, Kind::Double)
                * -0.5
                - half_ln_2pi * latent as f64;
            let log_w = -&nll_x + log_pz - log_qz;
            let log_px = log_w.logsumexp([0i64].as_slice(), false) - (k as f64).ln();
            s.iwae += (-log_px).sum(Kind::Double);
            let elbo_rec = nll_x.mean_dim(0, false, Kind::Double);
            s.neg_elbo += elbo_rec.sum(Kind::Double) + kl.sum(Kind::Double);
        }
    });
    let nf = n.max(1) as f64;
    let scalar = |t: &Tensor| t.to_device(Device::Cpu).double_value(&[]);
    let vec = |t: &Tensor| -> Vec<f64> {
        Vec::try_from(&t.to_device(Device::Cpu)).expect("a 1-D double tensor")
    };
    let bits = |nats: f64| nats / (d as f64 * std::f64::consts::LN_2);
    let neg_elbo = scalar(&s.neg_elbo) / nf;
    let iwae = scalar(&s.iwae) / nf;
    let mse = scalar(&s.sq_err) / (nf * d as f64);
    let kl_per_dim: Vec<f64> = vec(&s.kl).iter().map(|v| v / nf).collect();
    let mean: Vec<f64> = vec(&s.mu).iter().map(|v| v / nf).collect();
    let mean_variance: Vec<f64> = vec(&s.mu2)
        .iter()
        .zip(&mean)
        .map(|(m2, m)| (m2 / nf - m * m).max(0.0))
        .collect();
    Report {
        images: n,
        k,
        pixels: d,
        r_loss_factor,
        sigma2,
        log_norm,
        neg_elbo_nats: neg_elbo,
        neg_elbo_bits_per_dim: bits(neg_elbo),
        iwae_nll_nats: iwae,
        iwae_nll_bits_per_dim: bits(iwae),
        mse,
        psnr_db: 10.0 * (1.0 / mse).log10(),
        kl_nats: kl_per_dim.iter().sum(),
        active_units: mean_variance
            .iter()
            .filter(|v| **v > ACTIVE_THRESHOLD)
            .count(),
        kl_per_dim,
        mean_variance,
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[f64]| {
            let shown: Vec<String> = v.iter().take(16).map(|x| format!("{x:.3}")).collect();
            let more = if v.len() > 16 {
                format!(", ... ({} in all)", v.len())
            } else {
                String::new()
            };
            format!("[{}{more}]", shown.join(", "))
        };
        writeln!(
            f,
            "Gaussian decoder: sigma^2 = D / (2 r) = {} / (2 x {}) = {:.6}",
            self.pixels, self.r_loss_factor, self.sigma2
        )?;
        writeln!(
            f,
            "  -log p(x|z) = r x MSE + (D/2) ln(2 pi sigma^2) = r x MSE + {:.4} nats",
            self.log_norm
        )?;
        writeln!(f, "| measure | value | unit |")?;
        writeln!(f, "|---|---|---|")?;
        writeln!(
            f,
            "| negative ELBO | {:.4} | nats/image ({:.6} bits/dim) |",
            self.neg_elbo_nats, self.neg_elbo_bits_per_dim
        )?;
        writeln!(
            f,
            "| IWAE NLL estimate, k = {} | {:.4} | nats/image ({:.6} bits/dim) |",
            self.k, self.iwae_nll_nats, self.iwae_nll_bits_per_dim
        )?;
        writeln!(
            f,
            "| reconstruction MSE (latent mean) | {:.6} | per pixel, PSNR {:.2} dB |",
            self.mse, self.psnr_db
        )?;
        writeln!(f, "| KL | {:.4} | nats/image |", self.kl_nats)?;
        writeln!(
            f,
            "| active units (Var_x(mu_i) > {ACTIVE_THRESHOLD}) | {} of {} | |",
            self.active_units,
            self.kl_per_dim.len()
        )?;
        writeln!(f, "KL per dimension: {}", list(&self.kl_per_dim))?;
        write!(
            f,
            "Var_x(mu_i) per dimension: {}",
            list(&self.mean_variance)
        )
    }
}
