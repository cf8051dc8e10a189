//! The faces chapter's flags (`attributes`, `arithmetic`, `morph`, `latent-hist`) and the
//! requests they make.
use std::path::PathBuf;

use clap::Args;

use super::args::{at_least_one, usage, BestFlag, ModelDevice, RunArg};
use super::figures::FigureArgs;
use vae_tch::analysis::attributes::{Rule, Z};
use vae_tch::commands::attributes::AttributesRequest;
use vae_tch::commands::figures::{Figure, FigureSource};
use vae_tch::data::SplitName;
use vae_tch::plot::run_faces::Encoding;
use vae_tch::plot::Format;

#[derive(Debug, Args)]
pub struct AttributesArgs {
    #[command(flatten)]
    pub run: RunArg,
    /// The attribute table: CelebA's list_attr_celeba.csv (Kaggle's layout) or
    /// list_attr_celeba.txt (the original release's) [default: the one beside the images; for
    /// MNIST, Fashion-MNIST or a folder of class sub-folders, the classes one-vs-rest].
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    /// Which attributes, comma-separated (the book's: Attractive,Mouth_Slightly_Open,Smiling,
    /// Wearing_Lipstick,High_Cheekbones,Male,Eyeglasses,Blond_Hair), or all.
    #[arg(
        long,
        value_name = "A,B,...|all",
        value_delimiter = ',',
        default_value = "all"
    )]
    pub attribute: Vec<String>,
    /// Which z an image counts with: sampled (the book's) or mean.
    #[arg(long, value_enum, default_value_t = Z::Sampled)]
    pub z: Z,
    /// Seed of the shuffle and of the sampled z.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images per batch of the search (the book's 500).
    #[arg(long, default_value_t = 500, value_parser = at_least_one)]
    pub batch: usize,
    /// Stop when the two means together moved less than this in a batch (L2; the book's 0.08).
    #[arg(long, default_value_t = 0.08, value_parser = positive)]
    pub tolerance: f64,
    /// Stop once this many images with the attribute were seen (the book's 10,000).
    #[arg(long, default_value_t = 10_000, value_parser = at_least_one)]
    pub max_positives: usize,
    /// Which images.
    #[arg(long, value_enum, default_value_t = SplitName::Train)]
    pub split: SplitName,
    /// Print the table of results only, not each search batch by batch.
    #[arg(long)]
    pub brief: bool,
    #[command(flatten)]
    pub device: ModelDevice,
    #[command(flatten)]
    pub best: BestFlag,
}

/// A number above 0.
fn positive(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!("{s}: expected a number above 0")),
    }
}

impl AttributesArgs {
    pub fn request(&self) -> AttributesRequest {
        let all = self.attribute.iter().any(|a| a == "all");
        if all && self.attribute.len() > 1 {
            usage("--attribute: give names, or all, not both");
        }
        if self.attribute.iter().any(|a| a.trim().is_empty()) {
            usage("--attribute: an empty name (a stray comma?)");
        }
        AttributesRequest {
            run: self.run.run.clone(),
            data_dir: self.run.data_dir.clone(),
            device: self.device.device,
            checkpoint: self.best.pick(),
            labels: self.labels.clone(),
            names: (!all).then(|| self.attribute.clone()),
            rule: Rule {
                batch: self.batch,
                tolerance: self.tolerance,
                max_positives: self.max_positives,
                z: self.z,
                seed: self.seed,
            },
            split: self.split,
            brief: self.brief,
        }
    }
}

/// The factors of `--factors`.
#[derive(Debug, Clone)]
pub struct Factors(pub Vec<f64>);

/// `--factors`: `A:B` (whole steps from A to B), `A:B:STEP`, or a list `A,B,...`.
fn factors(s: &str) -> Result<Factors, String> {
    let bad = || {
        format!("{s}: expected A:B (whole steps, e.g. -4:4), A:B:STEP (e.g. -2:2:0.5) or a list (e.g. -2,0,2)")
    };
    let num = |p: &str| p.trim().parse::<f64>().ok().filter(|x| x.is_finite());
    let out: Vec<f64> = if s.contains(':') {
        let parts: Vec<Option<f64>> = s.split(':').map(num).collect();
        let (a, b, step) = match parts.as_slice() {
            [Some(a), Some(b)] => (*a, *b, 1.0),
            [Some(a), Some(b), Some(st)] if *st > 0.0 => (*a, *b, *st),
            _ => return Err(bad()),
        };
        if b < a {
            return Err(format!("{s}: the first factor is above the last"));
        }
        let n = ((b - a) / step + 1e-9).floor() as usize + 1;
        if n > 25 {
            return Err(format!("{s}: {n} factors; a row holds at most 25"));
        }
        (0..n).map(|i| a + step * i as f64).collect()
    } else {
        s.split(',')
            .map(num)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?
    };
    if out.is_empty() || out.len() > 25 {
        return Err(format!("{s}: give 1 to 25 factors"));
    }
    Ok(Factors(out))
}

/// How the figures encode their images.
#[derive(Debug, Args)]
pub struct EncodingArgs {
    /// Which z an image is encoded to: mean (the reconstruction's) or sampled (the book's
    /// notebook: a new draw each run unless --seed is kept).
    #[arg(long, value_enum)]
    pub z: Option<Z>,
    /// Seed of the sampled z.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl EncodingArgs {
    fn encoding(&self, default: Z) -> Encoding {
        Encoding {
            z: self.z.unwrap_or(default),
            seed: self.seed,
        }
    }
}

#[derive(Debug, Args)]
pub struct ArithmeticArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// The attribute whose vector is added (from <run>/attributes.safetensors, which
    /// `vae-tch attributes` writes).
    #[arg(long)]
    pub attribute: String,
    /// How many faces: the first test faces without the attribute.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=50))]
    pub images: u8,
    /// The factors: A:B in whole steps, A:B:STEP, or a list.
    #[arg(long, default_value = "-4:4", value_parser = factors, allow_hyphen_values = true)]
    pub factors: Factors,
    /// These test images instead (comma-separated indices).
    #[arg(long, value_delimiter = ',')]
    pub indices: Option<Vec<usize>>,
    /// The attribute table that tells which faces are without it [default: the one the
    /// vectors were found with].
    #[arg(long, value_name = "FILE")]
    pub labels: Option<PathBuf>,
    #[command(flatten)]
    pub out: DecodesArgs,
}

/// How a figure of decodes (arithmetic, morph) encodes its images and is written.
#[derive(Debug, Args)]
pub struct DecodesArgs {
    #[command(flatten)]
    pub encoding: EncodingArgs,
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,
    /// Write the images alone (a PNG, one pixel per pixel, 1-pixel gaps): no title or axes.
    #[arg(long)]
    pub bare: bool,
}

impl DecodesArgs {
    /// (encoding, format, bare); `--bare` with `--format svg` is a usage error.
    fn parts(&self) -> (Encoding, Format, bool) {
        if self.bare && self.format != Format::Png {
            usage("--bare writes a PNG of the images alone; drop --format svg or --bare");
        }
        (self.encoding.encoding(Z::Mean), self.format, self.bare)
    }
}

impl ArithmeticArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        let (encoding, format, bare) = self.out.parts();
        if self.indices.is_some() && self.labels.is_some() {
            usage("--indices picks the faces; --labels (to pick faces without the attribute) then has nothing to do");
        }
        let fig = Figure::Arithmetic {
            attribute: self.attribute.clone(),
            images: self.images as usize,
            factors: self.factors.0.clone(),
            indices: self.indices.clone(),
            labels: self.labels.clone(),
            encoding,
            format,
            bare,
        };
        (self.fig.source(), fig)
    }
}

#[derive(Debug, Args)]
pub struct MorphArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// The start image: a test index, or a file name in the run's data (e.g. 000123.jpg).
    #[arg(long, value_name = "IMAGE")]
    pub from: String,
    /// The end image, the same way.
    #[arg(long, value_name = "IMAGE")]
    pub to: String,
    /// Decodes between them: at f = 0, 1/steps, ..., (steps - 1)/steps (the book's 10).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u8).range(1..=50))]
    pub steps: u8,
    /// Along the great circle between the two points, not the straight line.
    #[arg(long)]
    pub slerp: bool,
    #[command(flatten)]
    pub out: DecodesArgs,
}

impl MorphArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        let (encoding, format, bare) = self.out.parts();
        let fig = Figure::Morph {
            from: self.from.clone(),
            to: self.to.clone(),
            steps: self.steps as usize,
            slerp: self.slerp,
            encoding,
            format,
            bare,
        };
        (self.fig.source(), fig)
    }
}

#[derive(Debug, Args)]
pub struct LatentHistArgs {
    #[command(flatten)]
    pub fig: FigureArgs,
    /// How many latent dimensions, the first ones [default: 50, or all of a smaller latent].
    #[arg(long, value_parser = at_least_one)]
    pub dims: Option<usize>,
    /// How many test images (the first ones; the book's 200).
    #[arg(long, default_value_t = 200, value_parser = at_least_one)]
    pub images: usize,
    #[command(flatten)]
    pub encoding: EncodingArgs,
    #[arg(long, value_enum, default_value_t = Format::Png)]
    pub format: Format,
}

impl LatentHistArgs {
    pub fn request(&self) -> (FigureSource, Figure) {
        let fig = Figure::LatentHist {
            dims: self.dims,
            images: self.images,
            encoding: self.encoding.encoding(Z::Sampled),
            format: self.format,
        };
        (self.fig.source(), fig)
    }
}

#[cfg(test)]
mod tests {
    use super::factors;

    #[test]
    fn factors_take_ranges_steps_and_lists() {
        let f = |s| factors(s).unwrap().0;
        assert_eq!(f("-4:4"), (-4..=4).map(f64::from).collect::<Vec<_>>());
        assert_eq!(f("-1:1:0.5"), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        assert_eq!(f("0,2,-3"), vec![0.0, 2.0, -3.0]);
        for bad in ["4:-4", "a:b", "0:1:0", "0:100", "", "1,,2"] {
            assert!(factors(bad).is_err(), "{bad}");
        }
    }
}
