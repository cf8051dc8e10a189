//! One model as the page explores it: the trained model in the fast layout (eval mode), its
//! test images, the latent means of the first of them (the scatter, and the dimensions of
//! largest variance the sliders move), and its attribute vectors where the run has
//! `attributes.safetensors` (`vae-tch attributes`).
use std::path::Path;

use anyhow::Result;
use serde::Serialize;
use tch::{Device, Kind, Tensor};

use crate::analysis::vectors_file::{Vectors, VECTORS_FILE};
use crate::data::{Split, SplitName};
use crate::run::checkpoint::Pick;
use crate::run::data::RunData;
use crate::train::inference::Inference;
use crate::util::images::{grid, png_bytes};

/// Test images whose latent means make the scatter and the variances.
pub const SCATTER_IMAGES: i64 = 5000;
/// Sliders for at most this many dimensions (those of largest variance).
pub const SLIDERS: usize = 12;

/// A latent dimension the page gives a slider: its mean and standard deviation over the test
/// images' latent means.
#[derive(Debug, Clone, Serialize)]
pub struct Dim {
    pub dim: usize,
    pub mean: f64,
    pub std: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Attribute {
    pub name: String,
    pub vector: Vec<f32>,
    pub positives: usize,
    pub norm_before_scaling: f64,
}

/// What `/api/model` answers.
#[derive(Debug, Clone, Serialize)]
pub struct About {
    pub latent_dim: i64,
    pub input_shape: [i64; 3],
    pub dataset: String,
    pub classes: Vec<String>,
    pub test_images: i64,
    pub scatter_images: i64,
    pub dims: Vec<Dim>,
    pub attributes: Vec<Attribute>,
    /// Where `attributes.safetensors` could not be read, why.
    pub attributes_note: Option<String>,
    /// Where the run's test images could not be read, why (no scatter, no test images then).
    pub data_note: Option<String>,
}

/// What `/api/scatter` answers: the latent means `[x, y, label]` of the first test images (a
/// 2-D latent only), and the bounds the page maps to its canvas (and the manifold covers).
#[derive(Debug, Clone, Serialize)]
pub struct Scatter {
    pub points: Vec<[f64; 3]>,
    /// [x_min, x_max, y_min, y_max].
    pub bounds: [f64; 4],
}

pub struct Explorer {
    pub model: Inference,
    test: Split,
    pub about: About,
    scatter: Option<Scatter>,
}

impl Explorer {
    pub fn load(
        run: &Path,
        data_dir: Option<&Path>,
        device: Device,
        pick: Pick,
    ) -> Result<Explorer> {
        let src = RunData {
            run,
            data_dir,
            device,
            checkpoint: pick,
        };
        let loaded = src.model()?;
        // Without its data (moved, or a relative folder seen from elsewhere) a model still
        // decodes: no scatter, no test images, and the page says why.
        let (test, classes, data_note) = match src.split_and_classes(&loaded, SplitName::Test) {
            Ok((test, classes)) => (test, classes, None),
            Err(e) => {
                let [c, h, w] = loaded.config.model.input_shape;
                let empty = Split {
                    images: Tensor::zeros([0, c, h, w], (Kind::Uint8, Device::Cpu)),
                    labels: Tensor::zeros([0], (Kind::Int64, Device::Cpu)),
                    backing: None,
                    names: Vec::new(),
                };
                eprintln!("warning: {e:#}: serving its model without test images");
                (empty, Vec::new(), Some(format!("{e:#}")))
            }
        };
        let model = Inference::new(&loaded, device);
        let shown = test.len().min(SCATTER_IMAGES);
        let means = model
            .encode(&test.images.narrow(0, 0, shown), |_| ())
            .0
            .to_device(Device::Cpu)
            .to_kind(Kind::Double);
        let latent = model.latent_dim();
        let dims = top_dims(&means, SLIDERS);
        let scatter =
            (latent == 2 && shown > 0).then(|| scatter(&means, &test.labels.narrow(0, 0, shown)));
        let (attributes, attributes_note) = attributes(run);
        let about = About {
            latent_dim: latent,
            input_shape: loaded.config.model.input_shape,
            dataset: loaded.config.data.dataset.to_string(),
            classes,
            test_images: test.len(),
            scatter_images: shown,
            dims,
            attributes,
            attributes_note,
            data_note,
        };
        Ok(Explorer {
            model,
            test,
            about,
            scatter,
        })
    }

    pub fn scatter(&self) -> Option<&Scatter> {
        self.scatter.as_ref()
    }

    /// Test image `index` as bytes `[1, C, H, W]`, or None past the end.
    pub fn image(&self, index: i64) -> Option<Tensor> {
        (0..self.test.len())
            .contains(&index)
            .then(|| self.test.images.narrow(0, index, 1))
    }

    /// The latent mean of test image `index`.
    pub fn encode(&self, index: i64) -> Option<(Vec<f32>, i64)> {
        let image = self.image(index)?;
        let mu = self.model.encode(&image, |_| ()).0.to_device(Device::Cpu);
        let z = Vec::<f32>::try_from(&mu.view(-1).to_kind(Kind::Float)).expect("float");
        Some((z, self.test.labels.int64_value(&[index])))
    }

    /// The PNG of test image `index`.
    pub fn image_png(&self, index: i64) -> Option<Vec<u8>> {
        Some(png(&crate::data::to_unit_float(&self.image(index)?)))
    }

    /// An `n` x `n` grid of decodes over the scatter's bounds, each cell decoded at its centre,
    /// one model pixel per pixel, no gaps (the page stretches it under the scatter).
    pub fn manifold(&self, n: i64) -> Option<Vec<u8>> {
        let [x0, x1, y0, y1] = self.scatter.as_ref()?.bounds;
        let centre = |lo: f64, hi: f64, i: i64| lo + (i as f64 + 0.5) * (hi - lo) / n as f64;
        let mut z = Vec::with_capacity((n * n * 2) as usize);
        for row in 0..n {
            // Rows from the top: y from its maximum down.
            let y = centre(y0, y1, n - 1 - row);
            for col in 0..n {
                z.extend([centre(x0, x1, col) as f32, y as f32]);
            }
        }
        let images = self.model.decode(&Tensor::from_slice(&z).view([n * n, 2]));
        Some(png_bytes(&grid(&images, n as usize, 1, 0)))
    }
}

/// The PNG of one image `[1, C, H, W]` in [0, 1].
pub fn png(image: &Tensor) -> Vec<u8> {
    png_bytes(&grid(image, 1, 1, 0))
}

/// The `k` dimensions of largest variance of `means` `[n, L]`, largest first.
fn top_dims(means: &Tensor, k: usize) -> Vec<Dim> {
    if means.size()[0] == 0 {
        return Vec::new();
    }
    let mean = Vec::<f64>::try_from(&means.mean_dim(0, false, Kind::Double)).expect("double");
    let std = Vec::<f64>::try_from(&means.std_dim(0, false, false)).expect("double");
    let mut dims: Vec<Dim> = (0..mean.len())
        .map(|d| Dim {
            dim: d,
            mean: mean[d],
            std: std[d],
        })
        .collect();
    dims.sort_by(|a, b| b.std.total_cmp(&a.std));
    dims.truncate(k);
    dims
}

/// The scatter of 2-D latent means, with bounds 10% wider than the points (at least +-1).
fn scatter(means: &Tensor, labels: &Tensor) -> Scatter {
    let xy = Vec::<f64>::try_from(&means.contiguous().view(-1)).expect("double");
    let labels = Vec::<i64>::try_from(labels).expect("int64");
    let points: Vec<[f64; 3]> = xy
        .chunks(2)
        .zip(&labels)
        .map(|(p, &l)| [p[0], p[1], l as f64])
        .collect();
    let range = |i: usize| {
        let (lo, hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p[i]), hi.max(p[i]))
        });
        let pad = ((hi - lo) * 0.1).max(1e-3);
        ((lo - pad).min(-1.0), (hi + pad).max(1.0))
    };
    let ((x0, x1), (y0, y1)) = (range(0), range(1));
    Scatter {
        points,
        bounds: [x0, x1, y0, y1],
    }
}

/// The run's attribute vectors, or none (and why, where the file is there but unreadable).
fn attributes(run: &Path) -> (Vec<Attribute>, Option<String>) {
    if !run.join(VECTORS_FILE).is_file() {
        return (Vec::new(), None);
    }
    match Vectors::of_run(run) {
        Ok(mut v) => (
            {
                v.vectors.sort_by(|a, b| a.0.cmp(&b.0));
                v.vectors.iter()
            }
            .map(|(name, t)| {
                let found = v.about.vectors.get(name);
                Attribute {
                    name: name.clone(),
                    vector: Vec::<f32>::try_from(&t.to_kind(Kind::Float)).expect("float"),
                    positives: found.map_or(0, |f| f.positives),
                    norm_before_scaling: found.map_or(0.0, |f| f.norm_before_scaling),
                }
            })
            .collect(),
            None,
        ),
        Err(e) => (Vec::new(), Some(e.to_string())),
    }
}
