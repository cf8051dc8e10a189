//! `vae-tch eval` (crate::eval): the importance-weighted bound's properties (Burda et al., 2015,
//! theorem 1), on a tiny trained run. The golden numbers against an independent PyTorch
//! computation with the same weights and noise are in tests/python/test_eval.py.
mod common;

use tch::{Device, Kind, Tensor};
use vae_tch::eval::{evaluate, Report, Samples};

fn report(run: &std::path::Path, k: i64, seed: i64, n: i64) -> Report {
    let loaded = vae_tch::run::checkpoint::load_model(run, Device::Cpu).unwrap();
    let (split, _) = vae_tch::data::open_split(
        &loaded.config,
        &loaded.config.data.dir(),
        vae_tch::data::SplitName::Test,
    )
    .unwrap();
    let images = split.images.narrow(0, 0, n);
    tch::manual_seed(seed);
    evaluate(
        &loaded.vae,
        &images,
        loaded.config.train.r_loss_factor,
        k,
        Samples::Drawn,
        Device::Cpu,
    )
}

#[test]
fn the_bound_is_the_elbo_in_expectation_at_k_1_and_tightens_with_k() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 24, 16, 1, 2);
    let _g = common::rng_lock();
    // k = 1: the bound differs from the negative ELBO only by the sampled KL against the exact
    // one, zero in expectation: over 40 draws of 16 images the mean difference is within 3
    // standard errors of 0, and small against the KL itself.
    let k1: Vec<Report> = (0..40).map(|s| report(&run, 1, s, 16)).collect();
    let diffs: Vec<f64> = k1
        .iter()
        .map(|r| r.iwae_nll_nats - r.neg_elbo_nats)
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let var = diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (diffs.len() - 1) as f64;
    let se = (var / diffs.len() as f64).sqrt();
    assert!(se > 0.0, "the draws differ");
    assert!(
        mean.abs() < 3.0 * se,
        "k = 1: mean difference {mean} (se {se})"
    );
    // More samples, a tighter (lower) bound, per image on average: k = 100 against the mean of
    // the 40 draws at k = 1 (Burda et al., theorem 1: E[NLL_k] falls with k).
    let one = k1.iter().map(|r| r.iwae_nll_nats).sum::<f64>() / k1.len() as f64;
    let hundred = report(&run, 100, 5, 16);
    eprintln!(
        "k = 1: {one:.4} (mean of 40), k = 100: {:.4}",
        hundred.iwae_nll_nats
    );
    assert!(
        hundred.iwae_nll_nats < one,
        "k = 100: {} against k = 1: {one}",
        hundred.iwae_nll_nats
    );
    // And under the negative ELBO of the same samples.
    assert!(hundred.iwae_nll_nats < hundred.neg_elbo_nats);
    // The Gaussian decoder's constant: -ELBO = the seed's test loss + (D/2) ln(2 pi sigma^2),
    // up to the sampling noise of the reconstruction term.
    let d = 784.0;
    let sigma2 = d / (2.0 * 1000.0);
    assert!((hundred.sigma2 - sigma2).abs() < 1e-12);
    assert!((hundred.log_norm - 0.5 * d * (2.0 * std::f64::consts::PI * sigma2).ln()).abs() < 1e-9);
    assert_eq!(hundred.kl_per_dim.len(), 2);
    assert!((hundred.kl_nats - hundred.kl_per_dim.iter().sum::<f64>()).abs() < 1e-9);
    assert!(hundred.psnr_db > 0.0 && hundred.mse > 0.0 && hundred.mse < 1.0);
}

#[test]
fn given_noise_is_used_as_given() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 24, 16, 1, 2);
    let _g = common::rng_lock();
    let loaded = vae_tch::run::checkpoint::load_model(&run, Device::Cpu).unwrap();
    let (split, _) = vae_tch::data::open_split(
        &loaded.config,
        &loaded.config.data.dir(),
        vae_tch::data::SplitName::Test,
    )
    .unwrap();
    let eps = Tensor::randn([3, 16, 2], (Kind::Float, Device::Cpu));
    let with = |e: &Tensor| {
        evaluate(
            &loaded.vae,
            &split.images,
            1000.0,
            3,
            Samples::Given(e),
            Device::Cpu,
        )
    };
    let (a, b) = (with(&eps), with(&eps));
    assert_eq!(a.iwae_nll_nats, b.iwae_nll_nats);
    // Zero noise: every sample is the mean, so the ELBO's reconstruction term is the MSE's.
    let zero = with(&eps.zeros_like());
    let through_mean = 1000.0 * zero.mse + zero.log_norm + zero.kl_nats;
    assert!(
        (zero.neg_elbo_nats - through_mean).abs() < 1e-3 * through_mean,
        "{} {through_mean}",
        zero.neg_elbo_nats
    );
}
