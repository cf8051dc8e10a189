//! The latent points behind the book's faces figures:
//! - face arithmetic: `z + factor * vector` for each face and factor (`arithmetic`);
//! - morphing: `z0 * (1 - f) + z1 * f` for f = 0, 1/steps, ..., (steps - 1)/steps, as the book
//!   (it never decodes f = 1: the end image follows), or along the great circle (`morph`);
//! - the latent distribution: a histogram per dimension, as density over 20 bins between the
//!   dimension's least and greatest value (numpy's `hist(density=True, bins=20)`), under the
//!   N(0, 1) density (`histograms`, `normal_pdf`).
use tch::{Kind, Tensor};

/// `[n * F, L]`: for each face (row of `z`, `[n, L]`) its points `z + f * vector` for each
/// factor `f`, face by face.
pub fn arithmetic(z: &Tensor, vector: &Tensor, factors: &[f64]) -> Tensor {
    let (n, l) = (z.size()[0], z.size()[1]);
    let f = Tensor::from_slice(factors)
        .to_kind(z.kind())
        .to_device(z.device())
        .view([1, -1, 1]);
    let v = vector
        .to_kind(z.kind())
        .to_device(z.device())
        .view([1, 1, l]);
    (z.unsqueeze(1) + f * v).view([n * factors.len() as i64, l])
}

/// The book's morphing fractions: 0, 1/steps, ..., (steps - 1)/steps.
pub fn fractions(steps: usize) -> Vec<f64> {
    (0..steps).map(|i| i as f64 / steps as f64).collect()
}

/// `[F, L]`: the points between `z0` and `z1` (`[L]` each) at `fractions`, on the line (the
/// book) or, with `slerp`, on the great circle between them (lengths interpolated too); where
/// the two are nearly parallel the line is used.
pub fn morph(z0: &Tensor, z1: &Tensor, fractions: &[f64], slerp: bool) -> Tensor {
    let f = Tensor::from_slice(fractions)
        .to_kind(Kind::Double)
        .to_device(z0.device())
        .unsqueeze(1);
    let (a, b) = (z0.to_kind(Kind::Double), z1.to_kind(Kind::Double));
    let line = || a.unsqueeze(0) * (1.0 - &f) + b.unsqueeze(0) * &f;
    let out = if slerp {
        let (na, nb) = (a.norm().double_value(&[]), b.norm().double_value(&[]));
        let cos = if na * nb > 0.0 {
            (a.dot(&b).double_value(&[]) / (na * nb)).clamp(-1.0, 1.0)
        } else {
            1.0
        };
        let omega = cos.acos();
        if omega.sin().abs() < 1e-6 {
            line()
        } else {
            let s = omega.sin();
            let rest: Tensor = 1.0 - &f;
            let wa = (rest * omega).sin() / s;
            let wb = (&f * omega).sin() / s;
            wa * a.unsqueeze(0) + wb * b.unsqueeze(0)
        }
    } else {
        line()
    };
    out.to_kind(z0.kind())
}

/// One latent dimension's histogram.
#[derive(Debug, Clone)]
pub struct Histogram {
    pub dim: usize,
    /// `bins + 1` edges, from the least value to the greatest.
    pub edges: Vec<f64>,
    pub counts: Vec<usize>,
}

impl Histogram {
    /// Each bin's density: count / (total * width), so that the bars' area is 1.
    pub fn density(&self) -> Vec<f64> {
        let total: usize = self.counts.iter().sum();
        self.counts
            .iter()
            .zip(self.edges.windows(2))
            .map(|(&c, e)| c as f64 / (total.max(1) as f64 * (e[1] - e[0])))
            .collect()
    }
}

/// Histograms of the first `dims` columns of `z` (`[n, L]`), `bins` bins each: numpy's rule
/// (equal bins between the least and greatest value, the last bin closed; a constant column gets
/// the range value +- 0.5).
pub fn histograms(z: &Tensor, dims: usize, bins: usize) -> Vec<Histogram> {
    let z = z.to_kind(Kind::Double).to_device(tch::Device::Cpu);
    (0..dims)
        .map(|d| {
            let col: Vec<f64> = Vec::try_from(&z.select(1, d as i64)).expect("double");
            let lo = col.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = col.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let (lo, hi) = if hi > lo {
                (lo, hi)
            } else {
                (lo - 0.5, hi + 0.5)
            };
            let width = (hi - lo) / bins as f64;
            let mut counts = vec![0usize; bins];
            for v in col {
                let i = (((v - lo) / width) as usize).min(bins - 1);
                counts[i] += 1;
            }
            Histogram {
                dim: d,
                edges: (0..=bins).map(|i| lo + width * i as f64).collect(),
                counts,
            }
        })
        .collect()
}

/// The N(0, 1) density.
pub fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_adds_each_factor_to_each_face_in_order() {
        let z = Tensor::from_slice(&[1.0f32, 2.0, 10.0, 20.0]).view([2, 2]);
        let v = Tensor::from_slice(&[1.0f32, 0.0]);
        let out = arithmetic(&z, &v, &[-1.0, 0.0, 2.0]);
        let got: Vec<f32> = Vec::try_from(&out.view(-1)).unwrap();
        assert_eq!(
            got,
            vec![0.0, 2.0, 1.0, 2.0, 3.0, 2.0, 9.0, 20.0, 10.0, 20.0, 12.0, 20.0]
        );
    }

    #[test]
    fn morph_starts_at_z0_never_reaches_z1_and_slerp_keeps_length() {
        assert_eq!(fractions(4), vec![0.0, 0.25, 0.5, 0.75]);
        let a = Tensor::from_slice(&[2.0f32, 0.0]);
        let b = Tensor::from_slice(&[0.0f32, 2.0]);
        let line = morph(&a, &b, &fractions(2), false);
        let got: Vec<f32> = Vec::try_from(&line.view(-1)).unwrap();
        assert_eq!(got, vec![2.0, 0.0, 1.0, 1.0]);
        // Halfway on the circle: (sqrt 2, sqrt 2), length 2 (the line's is sqrt 2).
        let arc = morph(&a, &b, &[0.5], true);
        let got: Vec<f32> = Vec::try_from(&arc.view(-1)).unwrap();
        assert!((got[0] - 2f32.sqrt()).abs() < 1e-5 && (got[1] - 2f32.sqrt()).abs() < 1e-5);
        // Parallel points: the circle is undefined and the line is used.
        let same = morph(&a, &(&a * 3.0), &[0.5], true);
        let got: Vec<f32> = Vec::try_from(&same.view(-1)).unwrap();
        assert_eq!(got, vec![4.0, 0.0]);
    }

    #[test]
    fn histograms_count_every_value_once_and_their_density_integrates_to_one() {
        let z = Tensor::from_slice(&[0.0f64, 5.0, 1.0, 5.0, 2.0, 5.0, 3.0, 5.0]).view([4, 2]);
        let h = histograms(&z, 2, 3);
        // numpy.histogram([0, 1, 2, 3], bins=3) gives [1, 1, 2]: the last bin [2, 3] is closed.
        assert_eq!(h[0].counts, vec![1, 1, 2]);
        assert_eq!(h[0].edges, vec![0.0, 1.0, 2.0, 3.0]);
        assert_eq!(h[1].counts.iter().sum::<usize>(), 4); // constant: one bin of 4
        for hist in &h {
            let area: f64 = hist
                .density()
                .iter()
                .zip(hist.edges.windows(2))
                .map(|(d, e)| d * (e[1] - e[0]))
                .sum();
            assert!((area - 1.0).abs() < 1e-12);
        }
        assert!((normal_pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-15);
    }
}
