//! The faces chapter's figures of a run folder (crate::plot::faces draws them): face arithmetic
//! with a vector of `<run>/attributes.safetensors`, morphing between two images of the run's
//! data, and the histograms of the latent dimensions. Each loads the model and images, encodes
//! and decodes in the fast layout (crate::train::inference), and writes the figure (or, `bare`,
//! the images alone) into the run folder unless told otherwise.
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use tch::{Kind, Tensor};

use super::faces;
use super::run::{check_index, out_path};
use super::{render, Format};
use crate::analysis::attributes::Z;
use crate::analysis::faces as points;
use crate::analysis::vectors_file::Vectors;
use crate::data::{Split, SplitName};
use crate::model::Loaded;
use crate::run::checkpoint;
use crate::run::data::RunData;
use crate::train::inference::Inference;
use crate::util::images::{grid, save_png};

/// How a figure is written: as a chart (PNG or SVG), or `bare` (the images alone in a PNG, one
/// pixel per pixel with 1-pixel gaps: for a figure of one's own).
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    pub out: Option<&'a Path>,
    pub format: Format,
    pub bare: bool,
}

/// Which z each image is encoded to, and the seed of the draws when sampled.
#[derive(Debug, Clone, Copy)]
pub struct Encoding {
    pub z: Z,
    pub seed: u64,
}

fn encode(model: &Inference, images: &Tensor, how: Encoding) -> Tensor {
    let (mu, log_var) = model.encode(images, |_| ());
    tch::manual_seed(how.seed as i64);
    tch::no_grad(|| how.z.of(&mu, &log_var))
}

/// Writes the figure, or with `bare` the images alone (`images`, their grid).
fn write(
    fig: &super::grids::ImageGridFigure,
    images: &image::RgbImage,
    path: &Path,
    output: Output,
) -> Result<()> {
    if output.bare {
        save_png(path, images)?;
    } else {
        render(fig, path, output.format)?;
    }
    Ok(())
}

/// A part of a file name from a flag's value: an image's file name without its folders and
/// extension, other characters than letters, digits, '-', '_' and '.' as '_'.
fn name_part(s: &str) -> String {
    let p = Path::new(s);
    let s = if p.extension().is_some() {
        p.file_stem().map_or(s.into(), |x| x.to_string_lossy())
    } else {
        s.into()
    };
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The faces of a face-arithmetic figure: `indices` of the test split, or the first `n` test
/// faces without `attribute` (by the table or classes the vectors came from, or `labels`).
fn faces_without(
    src: &RunData,
    loaded: &Loaded,
    attribute: &str,
    n: usize,
    indices: Option<&[usize]>,
    labels: Option<&Path>,
) -> Result<(Tensor, Vec<String>)> {
    if let Some(indices) = indices {
        let split = src.split(loaded, SplitName::Test)?;
        for &i in indices {
            check_index(i, &split, "--indices")?;
        }
        let idx: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
        let names = indices.iter().map(|i| format!("#{i}")).collect();
        return Ok((
            split.images.index_select(0, &Tensor::from_slice(&idx)),
            names,
        ));
    }
    let (split, attrs) = src.attributes(loaded, SplitName::Test, labels)?;
    let column = attrs.values.select(1, attrs.column(attribute)? as i64);
    let without = column.eq(-1).nonzero().squeeze_dim(1);
    let found = without.size()[0] as usize;
    if found == 0 {
        bail!(
            "no test image of run {} is without {attribute}: pick faces with --indices",
            src.run.display()
        );
    }
    if found < n {
        eprintln!("warning: only {found} test images are without {attribute}; drawing those");
    }
    let idx = without.narrow(0, 0, n.min(found) as i64);
    let names = Vec::<i64>::try_from(&idx)
        .expect("int64")
        .iter()
        .map(|i| format!("#{i}"))
        .collect();
    Ok((split.images.index_select(0, &idx), names))
}

/// What `arithmetic` draws, as tensors: the faces `[n, C, H, W]` (floats), and for each the
/// decodes of z + factor * vector `[n * F, C, H, W]`, face by face.
pub struct Arithmetic {
    pub originals: Tensor,
    pub decodes: Tensor,
    pub faces: Vec<String>,
}

/// The run's vector of `attribute`, checked against the model.
fn vector_of(src: &RunData, loaded: &Loaded, attribute: &str) -> Result<(Tensor, Vectors)> {
    let file = Vectors::of_run(src.run)?;
    let v = file.get(attribute)?.shallow_clone();
    let latent = loaded.config.model.latent_dim;
    if v.size() != [latent] {
        bail!(
            "{}: the vector {attribute} has shape {:?}, and the model of {} a {latent}-D latent: find the vectors again (`vae-tch attributes {}`)",
            file.path.display(),
            v.size(),
            src.run.display(),
            src.run.display()
        );
    }
    let now = checkpoint::read_state_of(src.run, src.checkpoint)?.epoch;
    if file.about.source.epoch != now {
        eprintln!(
            "warning: {} was found with the model of epoch {}, and this checkpoint is of epoch {now}: `vae-tch attributes {}` finds them again",
            file.path.display(),
            file.about.source.epoch,
            src.run.display()
        );
    }
    Ok((v, file))
}

#[allow(clippy::too_many_arguments)]
pub fn arithmetic_images(
    src: &RunData,
    loaded: &Loaded,
    attribute: &str,
    n: usize,
    factors: &[f64],
    indices: Option<&[usize]>,
    labels: Option<&Path>,
    how: Encoding,
) -> Result<Arithmetic> {
    let (vector, file) = vector_of(src, loaded, attribute)?;
    let table = file.about.source.labels.clone();
    let labels = labels
        .map(Path::to_path_buf)
        .or_else(|| Some(PathBuf::from(&table)).filter(|p| p.is_file()));
    let (images, faces) = faces_without(src, loaded, attribute, n, indices, labels.as_deref())?;
    let model = Inference::new(loaded, src.device);
    let z = encode(&model, &images, how);
    let decodes = model.decode(&points::arithmetic(&z, &vector, factors));
    Ok(Arithmetic {
        originals: crate::data::to_unit_float(&images),
        decodes,
        faces,
    })
}

#[allow(clippy::too_many_arguments)]
pub fn arithmetic(
    src: &RunData,
    attribute: &str,
    n: usize,
    factors: &[f64],
    indices: Option<&[usize]>,
    labels: Option<&Path>,
    how: Encoding,
    output: Output,
) -> Result<PathBuf> {
    let loaded = src.model()?;
    let a = arithmetic_images(src, &loaded, attribute, n, factors, indices, labels, how)?;
    let title = format!(
        "{attribute}: test faces {} without it, decodes of z + factor x its vector ({} z)",
        a.faces.join(" "),
        how.z
    );
    let fig = faces::arithmetic(&a.originals, &a.decodes, factors, title);
    let path = out_path(
        src.run,
        output.out,
        &format!("arithmetic-{}", name_part(attribute)),
        if output.bare {
            Format::Png
        } else {
            output.format
        },
    );
    write(&fig, &fig.image, &path, output)?;
    Ok(path)
}

/// An image of the run's data named on the command line: a test index (digits), or a file name
/// (relative to the data folder, or its last part) of either split.
fn find_image(
    src: &RunData,
    (train, test): (&Split, &Split),
    which: &str,
    flag: &str,
) -> Result<(Tensor, String)> {
    if let Ok(i) = which.parse::<usize>() {
        check_index(i, test, flag)?;
        return Ok((test.images.narrow(0, i as i64, 1), format!("test #{i}")));
    }
    for split in [test, train] {
        let hit = split
            .names
            .iter()
            .position(|n| n == which || n.rsplit('/').next() == Some(which));
        if let Some(i) = hit {
            return Ok((split.images.narrow(0, i as i64, 1), which.to_string()));
        }
    }
    if train.names.is_empty() {
        bail!(
            "{flag} {which}: the images of run {} have no file names (IDX files): give a test index",
            src.run.display()
        );
    }
    bail!(
        "{flag} {which}: no image of that name in the data of run {} ({} training and {} test images; a test index works too)",
        src.run.display(),
        train.len(),
        test.len()
    )
}

/// What `morph` draws, as tensors: the two images `[1, C, H, W]` (floats) and the decodes
/// between them.
pub struct Morph {
    pub start: Tensor,
    pub end: Tensor,
    pub decodes: Tensor,
    pub names: (String, String),
    pub fractions: Vec<f64>,
}

pub fn morph_images(
    src: &RunData,
    loaded: &Loaded,
    (from, to): (&str, &str),
    steps: usize,
    slerp: bool,
    how: Encoding,
) -> Result<Morph> {
    let (train, test) = src.splits(loaded)?;
    let (a, na) = find_image(src, (&train, &test), from, "--from")?;
    let (b, nb) = find_image(src, (&train, &test), to, "--to")?;
    let model = Inference::new(loaded, src.device);
    let z = encode(
        &model,
        &Tensor::cat(&[a.shallow_clone(), b.shallow_clone()], 0),
        how,
    );
    let fractions = points::fractions(steps);
    let decodes = model.decode(&points::morph(&z.get(0), &z.get(1), &fractions, slerp));
    Ok(Morph {
        start: crate::data::to_unit_float(&a),
        end: crate::data::to_unit_float(&b),
        decodes,
        names: (na, nb),
        fractions,
    })
}

pub fn morph(
    src: &RunData,
    (from, to): (&str, &str),
    steps: usize,
    slerp: bool,
    how: Encoding,
    output: Output,
) -> Result<PathBuf> {
    let loaded = src.model()?;
    let m = morph_images(src, &loaded, (from, to), steps, slerp, how)?;
    let title = format!(
        "{} to {}: decodes {} their {} z",
        m.names.0,
        m.names.1,
        if slerp {
            "along the great circle between"
        } else {
            "on the line between"
        },
        how.z
    );
    let fig = faces::morph(&m.start, &m.decodes, &m.end, &m.fractions, title);
    let path = out_path(
        src.run,
        output.out,
        &format!("morph-{}-{}", name_part(from), name_part(to)),
        if output.bare {
            Format::Png
        } else {
            output.format
        },
    );
    let bare = grid(
        &Tensor::cat(&[&m.start, &m.decodes, &m.end], 0),
        steps + 2,
        1,
        1,
    );
    write(&fig, &bare, &path, output)?;
    Ok(path)
}

/// The latent points of the first `n` test images, and their histograms over `dims`
/// dimensions (all of a latent of fewer than 50 when not given).
pub fn latent_histograms(
    src: &RunData,
    loaded: &Loaded,
    dims: Option<usize>,
    n: usize,
    bins: usize,
    how: Encoding,
) -> Result<(Vec<points::Histogram>, usize)> {
    let latent = loaded.config.model.latent_dim as usize;
    let dims = match dims {
        Some(d) if d > latent => bail!(
            "--dims {d}: the model of run {} has a {latent}-D latent: ask for at most {latent}",
            src.run.display()
        ),
        Some(d) => d,
        None => latent.min(50),
    };
    let split = src.split(loaded, SplitName::Test)?.limit(Some(n));
    if split.is_empty() {
        bail!("the test split of run {} has no images", src.run.display());
    }
    let model = Inference::new(loaded, src.device);
    let z = encode(&model, &split.images, how).to_kind(Kind::Double);
    Ok((points::histograms(&z, dims, bins), split.len() as usize))
}

pub fn latent_hist(
    src: &RunData,
    dims: Option<usize>,
    n: usize,
    how: Encoding,
    output: Output,
) -> Result<PathBuf> {
    let loaded = src.model()?;
    let (hists, n) = latent_histograms(src, &loaded, dims, n, 20, how)?;
    let title = format!(
        "The first {} latent dimensions of {n} test images ({} z): histograms under the N(0, 1) density",
        hists.len(),
        how.z
    );
    let path = out_path(src.run, output.out, "latent-hist", output.format);
    render(
        &faces::latent_histograms(hists, title),
        &path,
        output.format,
    )?;
    Ok(path)
}
