//! `vae-tch attributes`: the book's attribute vectors of a run (crate::analysis::attributes),
//! from CelebA's attribute table or the data set's classes, into `<run>/attributes.safetensors`;
//! prints each search as the book does, then a table.
use std::path::PathBuf;

use anyhow::{bail, Result};
use tch::Device;

use crate::analysis::attributes::{self, Rule, Vector};
use crate::analysis::vectors_file::{self, Source, Vectors, VECTORS_FILE};
use crate::data::SplitName;
use crate::run::checkpoint::{self, Pick};
use crate::run::data::RunData;
use crate::train::inference::Inference;
use crate::util::torch_failure::guard;

/// `vae-tch attributes`, typed.
#[derive(Debug, Clone)]
pub struct AttributesRequest {
    pub run: PathBuf,
    pub data_dir: Option<PathBuf>,
    pub device: Device,
    pub checkpoint: Pick,
    /// A table (CelebA's, either layout) [default: the one beside the images, or the classes].
    pub labels: Option<PathBuf>,
    /// Which attributes [None: every one].
    pub names: Option<Vec<String>>,
    pub rule: Rule,
    pub split: SplitName,
    /// The table of results only, not each search's trace.
    pub brief: bool,
}

pub fn run(req: &AttributesRequest) -> Result<String> {
    let src = RunData {
        run: &req.run,
        data_dir: req.data_dir.as_deref(),
        device: req.device,
        checkpoint: req.checkpoint,
    };
    let loaded = src.model()?;
    let epoch = checkpoint::read_state_of(&req.run, req.checkpoint)?.epoch;
    let (split, attrs) = src.attributes(&loaded, req.split, req.labels.as_deref())?;
    let names = match &req.names {
        Some(names) => {
            for n in names {
                attrs.column(n)?;
            }
            names.clone()
        }
        None => attrs.names.clone(),
    };
    if split.is_empty() {
        bail!(
            "the {} split of run {} has no images",
            req.split.name(),
            req.run.display()
        );
    }
    let bar = crate::util::progress::count_bar(split.len() as u64, "encoding images");
    let while_ = format!("while finding attribute vectors of {}", req.run.display());
    let lower = format!("lower --batch (it is {})", req.rule.batch);
    let results = guard(&while_, &lower, || {
        let model = Inference::new(&loaded, req.device);
        Ok(attributes::vectors(
            &model,
            &split.images,
            &attrs,
            &names,
            &req.rule,
            |done| bar.set_position(done as u64),
        )?)
    })?;
    bar.finish_and_clear();
    let mut out = String::new();
    let mut found: Vec<Vector> = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(v) => found.push(v),
            Err(e) => failed.push(e.to_string()),
        }
    }
    if found.is_empty() {
        bail!("no attribute vector could be found: {}", failed.join("; "));
    }
    if !req.brief {
        for v in &found {
            out += &attributes::trace(v);
            out += "\n";
        }
    }
    out += &table(&found);
    let path = req.run.join(VECTORS_FILE);
    let old = path
        .is_file()
        .then(|| Vectors::of_run(&req.run))
        .transpose();
    let source = Source {
        rule: req.rule.clone(),
        split: req.split.name().into(),
        checkpoint: match req.checkpoint {
            Pick::Last => "last".into(),
            Pick::Best => "best".into(),
        },
        epoch,
        labels: attrs.source.clone(),
    };
    // A file we cannot read is replaced (said below), not a reason to lose this search.
    let (old, unreadable) = match old {
        Ok(old) => (old, None),
        Err(e) => (None, Some(e.to_string())),
    };
    let (named, about, dropped) = vectors_file::merge(old, &found, source);
    Vectors::write(&path, &named, &about)?;
    if let Some(why) = unreadable {
        eprintln!("warning: replaced {} ({why})", path.display());
    }
    if !dropped.is_empty() {
        eprintln!(
            "warning: {} held vectors found with other settings (checkpoint, epoch, rule, split or table): {} dropped",
            path.display(),
            dropped.join(", ")
        );
    }
    for f in &failed {
        eprintln!("warning: {f}");
    }
    out += &format!(
        "{} vectors ({}) in {}\n",
        about.vectors.len(),
        about.vectors.keys().cloned().collect::<Vec<_>>().join(", "),
        path.display()
    );
    Ok(out)
}

/// One line per vector: how it ended, on how many images, and its length before scaling.
fn table(found: &[Vector]) -> String {
    let width = found.iter().map(|v| v.name.len()).max().unwrap_or(9).max(9);
    let mut out = format!(
        "{:<width$}  {:<9}  {:>9}  {:>9}  {:>7}  {:>7}\n",
        "attribute", "ending", "with", "without", "batches", "|diff|"
    );
    for v in found {
        out += &format!(
            "{:<width$}  {:<9}  {:>9}  {:>9}  {:>7}  {:>7.3}\n",
            v.name,
            v.ending.to_string(),
            v.positives,
            v.negatives,
            v.steps.len(),
            v.norm
        );
    }
    out
}
