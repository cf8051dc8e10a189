//! `vae-tch export`: a run's checkpoint (the last, or the best) as the export folder that Python
//! loads (crate::interop::export); prints the files written.
use std::path::PathBuf;

use anyhow::{Context, Result};
use tch::Device;

use crate::interop::export;
use crate::run::checkpoint::Pick;

/// `vae-tch export`, typed.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    pub run: PathBuf,
    /// [default: <run>/export, or <run>/export-best for the best checkpoint]
    pub out: Option<PathBuf>,
    pub device: Device,
    pub checkpoint: Pick,
    /// Also the book's run-folder layout for Keras (`<out>/keras/`: params.pkl and
    /// weights/weights.h5; crate::interop::keras_export).
    pub keras: bool,
}

pub fn run(req: &ExportRequest) -> Result<String> {
    let default = match req.checkpoint {
        Pick::Last => export::default_dir(&req.run),
        Pick::Best => export::best_dir(&req.run),
    };
    let out = req.out.clone().unwrap_or(default);
    let while_ = format!("while exporting {}", req.run.display());
    let written = crate::util::torch_failure::guard(&while_, "free some memory", || {
        Ok(export::export_from(
            &req.run,
            req.checkpoint,
            &out,
            req.device,
        )?)
    })
    .with_context(|| format!("exporting {}", req.run.display()))?;
    let mut written = written;
    if req.keras {
        let loaded =
            crate::run::checkpoint::load_model_from(&req.run, req.checkpoint, Device::Cpu)?;
        written.extend(crate::interop::keras_export::write(
            &loaded.config,
            &loaded.state_dict(),
            &out.join("keras"),
        )?);
    }
    Ok(written
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect())
}
