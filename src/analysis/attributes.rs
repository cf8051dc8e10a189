//! Attribute vectors, as the book's faces analysis finds them (Foster, "Generative Deep
//! Learning", ch. 3; `get_vector_from_label` of the notebook 03_06_vae_faces_analysis in
//! davidADSP/GDL_code): per attribute, over shuffled batches of 500 images encoded to their
//! sampled z, keep running means of z over the images with the attribute and without it; after
//! each batch, stop when the two means together moved less than 0.08 (L2), or once 10,000
//! images with it were seen; the vector is the difference of the two means, scaled to unit
//! length.
//!
//! Where this differs from the notebook, knowingly:
//! - a vector that stops at the cap (or when the data run out) is scaled to unit length too
//!   (the notebook leaves it unscaled: its arithmetic then adds a longer vector);
//! - a first batch with no image of the attribute does not crash (the notebook's mean is then
//!   undefined): a side with no image yet has not moved, and the rule cannot stop before both
//!   sides have one;
//! - a side with no image in a batch keeps its last movement, as the notebook's variable does;
//! - all attributes walk one shuffled order of the images, each batch encoded once for all of
//!   them (the notebook draws a new shuffle per attribute and encodes the batches again);
//! - `Z::Mean` uses the latent means, the option the book did not take.
use tch::{Device, Kind, Tensor};

use crate::data::labels::Attributes;
use crate::train::inference::Inference;

/// Which z an image counts with.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Z {
    /// z = mu + exp(log_var / 2) eps, as the book's encoder gives it.
    Sampled,
    /// z = mu.
    Mean,
}

impl Z {
    pub fn of(self, mu: &Tensor, log_var: &Tensor) -> Tensor {
        match self {
            Z::Sampled => mu + (log_var * 0.5).exp() * mu.randn_like(),
            Z::Mean => mu.shallow_clone(),
        }
    }
}

impl std::fmt::Display for Z {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Z::Sampled => "sampled",
            Z::Mean => "mean",
        })
    }
}

/// The rule's settings (the book's: batches of 500, 0.08, 10,000 positives, sampled z).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    pub batch: usize,
    pub tolerance: f64,
    pub max_positives: usize,
    pub z: Z,
    pub seed: u64,
}

impl Default for Rule {
    fn default() -> Self {
        Rule {
            batch: 500,
            tolerance: 0.08,
            max_positives: 10_000,
            z: Z::Sampled,
            seed: 0,
        }
    }
}

/// How the search for a vector ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ending {
    /// The two means moved less than the tolerance in a batch.
    Converged,
    /// `max_positives` images with the attribute were seen first.
    Capped,
    /// The images ran out first.
    Exhausted,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Ending::Converged => "converged",
            Ending::Capped => "capped",
            Ending::Exhausted => "exhausted",
        })
    }
}

/// One batch of the search, as the book prints it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Step {
    /// Images with the attribute seen so far.
    pub positives: usize,
    pub move_pos: f64,
    pub move_neg: f64,
    /// |mean with - mean without|.
    pub distance: f64,
    pub change: f64,
}

/// An attribute's vector and how it was found.
#[derive(Debug)]
pub struct Vector {
    pub name: String,
    /// `[L]` on the CPU, unit length.
    pub vector: Tensor,
    pub positives: usize,
    pub negatives: usize,
    /// |mean with - mean without| before scaling.
    pub norm: f64,
    pub ending: Ending,
    pub steps: Vec<Step>,
}

/// What `vectors` could not find, per attribute.
#[derive(Debug, thiserror::Error)]
pub enum VectorError {
    #[error("no image has the attribute {0} (every row says -1, or has no row)")]
    NoPositive(String),
    #[error("every image has the attribute {0}: there is no 'without' to compare with")]
    NoNegative(String),
}

/// One attribute's running state.
struct Search {
    column: usize,
    sum_pos: Tensor,
    sum_neg: Tensor,
    n_pos: usize,
    n_neg: usize,
    mean_pos: Tensor,
    mean_neg: Tensor,
    move_pos: f64,
    move_neg: f64,
    distance: f64,
    steps: Vec<Step>,
    ending: Option<Ending>,
}

impl Search {
    fn new(column: usize, latent: i64) -> Search {
        let zeros = || Tensor::zeros([latent], (Kind::Double, Device::Cpu));
        Search {
            column,
            sum_pos: zeros(),
            sum_neg: zeros(),
            n_pos: 0,
            n_neg: 0,
            mean_pos: zeros(),
            mean_neg: zeros(),
            move_pos: f64::INFINITY,
            move_neg: f64::INFINITY,
            distance: 0.0,
            steps: Vec::new(),
            ending: None,
        }
    }

    /// One batch: `z` `[b, L]` f64 and the batch's values of this attribute `[b]` (1, -1, 0).
    fn batch(&mut self, z: &Tensor, has: &Tensor, rule: &Rule) {
        let side = |value: i64| {
            let mask = has.eq(value);
            let n = mask.sum(Kind::Int64).int64_value(&[]) as usize;
            (n, z.index_select(0, &mask.nonzero().squeeze_dim(1)))
        };
        let (np, zp) = side(1);
        let (nn, zn) = side(-1);
        let norm = |t: &Tensor| t.norm().double_value(&[]);
        if np > 0 {
            self.sum_pos += zp.sum_dim_intlist(0, false, Kind::Double);
            self.n_pos += np;
            let mean = &self.sum_pos / self.n_pos as f64;
            self.move_pos = norm(&(&mean - &self.mean_pos));
            self.mean_pos = mean;
        }
        if nn > 0 {
            self.sum_neg += zn.sum_dim_intlist(0, false, Kind::Double);
            self.n_neg += nn;
            let mean = &self.sum_neg / self.n_neg as f64;
            self.move_neg = norm(&(&mean - &self.mean_neg));
            self.mean_neg = mean;
        }
        let distance = norm(&(&self.mean_pos - &self.mean_neg));
        self.steps.push(Step {
            positives: self.n_pos,
            move_pos: self.move_pos,
            move_neg: self.move_neg,
            distance,
            change: distance - self.distance,
        });
        self.distance = distance;
        if self.n_pos > 0 && self.n_neg > 0 && self.move_pos + self.move_neg < rule.tolerance {
            self.ending = Some(Ending::Converged);
        } else if self.n_pos >= rule.max_positives {
            self.ending = Some(Ending::Capped);
        }
    }

    fn finish(self, name: &str) -> Result<Vector, VectorError> {
        if self.n_pos == 0 {
            return Err(VectorError::NoPositive(name.into()));
        }
        if self.n_neg == 0 {
            return Err(VectorError::NoNegative(name.into()));
        }
        let diff = &self.mean_pos - &self.mean_neg;
        let norm = diff.norm().double_value(&[]);
        Ok(Vector {
            name: name.into(),
            vector: (diff / norm.max(1e-12)).to_kind(Kind::Float),
            positives: self.n_pos,
            negatives: self.n_neg,
            norm,
            ending: self.ending.unwrap_or(Ending::Exhausted),
            steps: self.steps,
        })
    }
}

/// The vectors of the attributes `names` over `images` (a split's bytes, `[n, C, H, W]`) whose
/// values `attrs` gives, by `rule`; `progress` is told the images encoded so far. Encoding stops
/// as soon as every attribute has stopped.
pub fn vectors(
    model: &Inference,
    images: &Tensor,
    attrs: &Attributes,
    names: &[String],
    rule: &Rule,
    mut progress: impl FnMut(usize),
) -> Result<Vec<Result<Vector, VectorError>>, crate::data::labels::LabelError> {
    let n = images.size()[0];
    let mut searches = names
        .iter()
        .map(|name| Ok(Search::new(attrs.column(name)?, model.latent_dim())))
        .collect::<Result<Vec<_>, _>>()?;
    tch::manual_seed(rule.seed as i64);
    let order = Tensor::randperm(n, (Kind::Int64, Device::Cpu));
    let mut done = 0;
    for start in (0..n).step_by(rule.batch.max(1)) {
        if searches.iter().all(|s| s.ending.is_some()) {
            break;
        }
        let len = (rule.batch as i64).min(n - start);
        let idx = order.narrow(0, start, len);
        let (mu, log_var) = model.encode(&images.index_select(0, &idx), |_| ());
        let z = tch::no_grad(|| rule.z.of(&mu, &log_var))
            .to_device(Device::Cpu)
            .to_kind(Kind::Double);
        let values = attrs.values.index_select(0, &idx).to_kind(Kind::Int64);
        for s in searches.iter_mut().filter(|s| s.ending.is_none()) {
            s.batch(&z, &values.select(1, s.column as i64), rule);
        }
        done += len as usize;
        progress(done);
    }
    Ok(searches
        .into_iter()
        .zip(names)
        .map(|(s, name)| s.finish(name))
        .collect())
}

/// The book's printout of a search: `images : POS move : NEG move : distance : change`.
pub fn trace(v: &Vector) -> String {
    let mut out = format!(
        "label: {}\nimages : POS move : NEG move : distance : \u{394} distance\n",
        v.name
    );
    for s in &v.steps {
        out += &format!(
            "{:<6} : {:>8.3} : {:>8.3} : {:>8.3} : {:>8.3}\n",
            s.positives, s.move_pos, s.move_neg, s.distance, s.change
        );
    }
    out += &format!(
        "{}: {} after {} images with it and {} without; the difference of the means was {:.3} long before scaling\n",
        v.name, v.ending, v.positives, v.negatives, v.norm
    );
    out
}
