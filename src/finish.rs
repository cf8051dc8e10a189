//! What a trained run gets after its last epoch, the same for `vae-tch train` and for every sweep
//! point: the loss curves (`loss.png`), the test set's latent means (`latent.png`), its value in
//! nats (`eval.json`: the first `EVAL_IMAGES` test images, `EVAL_K` samples each, seed 0, in the
//! fast layout), and with `export` the export folder, whose model card quotes eval.json. Then
//! `finished.toml` records the epoch they are of: a run trained on later (more `--epochs`) is
//! finished again, and one killed half-way through this is finished by the next command.
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::Device;

use crate::data::{Split, SplitName};
use crate::eval::{self, Record, Samples};
use crate::interop::export;
use crate::model::Loaded;
use crate::plot::run as figures;
use crate::plot::Format;
use crate::run::checkpoint::{self, Pick};
use crate::run::data::RunData;

pub use crate::eval::EVAL_FILE;
/// eval.json's test images and samples per image (seed 0): about 1 s for the seed model on 2 CPU
/// cores.
pub const EVAL_IMAGES: i64 = 1000;
pub const EVAL_K: i64 = 20;
/// The seed of eval.json's samples.
pub const EVAL_SEED: u64 = 0;
/// Written last: the epoch the figures, eval.json and the export are of.
pub const FINISHED_FILE: &str = "finished.toml";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Finished {
    /// The checkpoint's epoch the products are of.
    epoch: usize,
    /// Whether the export folder is among them.
    export: bool,
}

/// A model that just trained, in memory: nothing is read back from disk.
pub struct InMemory<'a> {
    pub model: &'a Loaded,
    pub test: &'a Split,
    /// The data set's class names, by label.
    pub classes: &'a [String],
    pub epochs: usize,
}

/// Whether `run` holds everything `finish` writes (the export too when `export`) for the epoch
/// its checkpoint is at.
pub fn is_finished(run: &Path, export: bool) -> bool {
    let Ok(state) = checkpoint::read_state(run) else {
        return false;
    };
    std::fs::read_to_string(run.join(FINISHED_FILE))
        .ok()
        .and_then(|t| toml::from_str::<Finished>(&t).ok())
        .is_some_and(|f| f.epoch == state.epoch && (f.export || !export))
}

/// Writes the figures, eval.json and (with `export`) the export of `run`'s last checkpoint,
/// from `trained` when the model just trained, else from the run folder. The caller holds the
/// run's lock (two processes must not write one export folder at once).
pub fn finish(
    run: &Path,
    device: Device,
    export: bool,
    quiet: bool,
    trained: Option<InMemory>,
) -> Result<()> {
    let src = RunData {
        run,
        data_dir: None,
        device,
        checkpoint: Pick::Last,
    };
    let loaded;
    let (model, test, classes, epochs) = match &trained {
        Some(t) => (t.model, t.test, t.classes, t.epochs),
        None => {
            let m = src.model()?;
            let (split, classes) = src.split_and_classes(&m, SplitName::Test)?;
            let split = split.limit(m.config.data.test_limit);
            loaded = (m, split, classes, checkpoint::read_state(run)?.epoch);
            (&loaded.0, &loaded.1, &loaded.2[..], loaded.3)
        }
    };
    figures::plot_loss(run, None, false, Format::Png)?;
    figures::latent_plot_of(
        &src,
        model,
        test,
        classes,
        SplitName::Test,
        None,
        Format::Png,
    )?;
    let record = evaluate(model, test, epochs, device);
    let path = run.join(EVAL_FILE);
    crate::util::fsutil::write_atomic(&path, serde_json::to_string_pretty(&record)?.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    if !quiet {
        eprintln!(
            "figures: {}, {}; eval: negative ELBO {:.2} nats, IWAE bound {:.2} nats ({})",
            run.join("loss.png").display(),
            run.join("latent.png").display(),
            record.report.neg_elbo_nats,
            record.report.iwae_nll_nats,
            path.display()
        );
    }
    if export {
        let out = export::default_dir(run);
        export::export_loaded(run, &out, model, epochs)
            .with_context(|| format!("exporting {}", run.display()))?;
        if !quiet {
            eprintln!(
                "exported TorchScript, safetensors and a model card to {}",
                out.display()
            );
        }
    }
    let marker = toml::to_string(&Finished {
        epoch: epochs,
        export,
    })
    .expect("serializes");
    let path = run.join(FINISHED_FILE);
    crate::util::fsutil::write_atomic(&path, marker.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// eval.json's record: the first `EVAL_IMAGES` test images, `EVAL_K` samples each, seed 0.
fn evaluate(model: &Loaded, test: &Split, epoch: usize, device: Device) -> Record {
    let n = test.len().min(EVAL_IMAGES);
    tch::manual_seed(EVAL_SEED as i64);
    let images = test.images.narrow(0, 0, n);
    let report = eval::evaluate_model(model, &images, EVAL_K, Samples::Drawn, device);
    Record {
        split: SplitName::Test.name().into(),
        checkpoint: "last".into(),
        epoch,
        seed: EVAL_SEED,
        report,
    }
}
