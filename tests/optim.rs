//! Keras Adam (keras/src/optimizers/adam.py): epsilon added to sqrt(v) before the bias
//! correction, which is folded into the step size.
use tch::{Kind, Tensor};
use vae_tch::config::AdamConfig;
use vae_tch::optim::KerasAdam;

#[test]
fn steps_follow_the_keras_formula() {
    let cfg = AdamConfig {
        learning_rate: 0.1,
        beta_1: 0.9,
        beta_2: 0.999,
        epsilon: 1e-7,
    };
    let p = Tensor::from_slice(&[1.0f64, -2.0, 0.5]).set_requires_grad(true);
    let mut opt = KerasAdam::new(vec![("p".into(), p.shallow_clone())], cfg.clone());
    let grads = [[0.5f64, -1e-4, 0.0], [0.2, 0.3, -1e-6]];
    // The same recurrence written out in f64 scalars.
    let (mut m, mut v, mut want) = ([0.0f64; 3], [0.0f64; 3], [1.0f64, -2.0, 0.5]);
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as f64;
        let alpha =
            cfg.learning_rate * (1.0 - cfg.beta_2.powf(t)).sqrt() / (1.0 - cfg.beta_1.powf(t));
        for j in 0..3 {
            m[j] += (g[j] - m[j]) * (1.0 - cfg.beta_1);
            v[j] += (g[j] * g[j] - v[j]) * (1.0 - cfg.beta_2);
            want[j] -= alpha * m[j] / (v[j].sqrt() + cfg.epsilon);
        }
        opt.zero_grad();
        (&p * Tensor::from_slice(g)).sum(Kind::Double).backward();
        opt.step();
    }
    let got: Vec<f64> = Vec::try_from(&p.detach()).unwrap();
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "got {got:?}, want {want:?}");
    }
    assert_eq!(opt.step, 2);
    // Unlike torch's Adam (eps 1e-8 after bias correction), a tiny gradient moves the weight
    // by less than lr: Keras's first step is lr * g * sqrt(1-b2) / (|g| sqrt(1-b2) + eps).
    let tiny = Tensor::from_slice(&[0.0f64]).set_requires_grad(true);
    let mut o = KerasAdam::new(vec![("t".into(), tiny.shallow_clone())], cfg.clone());
    (&tiny * 1e-6).sum(Kind::Double).backward();
    o.step();
    let s = 1e-6 * 0.001f64.sqrt();
    let want = -0.1 * s / (s + 1e-7);
    assert!(
        (tiny.double_value(&[0]) - want).abs() < 1e-12,
        "{} vs {want}",
        tiny.double_value(&[0])
    );
}
