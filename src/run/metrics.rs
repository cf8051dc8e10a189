//! The per-epoch metric log `<run>/metrics.csv`: epoch, train loss, r_loss, kl_loss, test loss,
//! r_loss, kl_loss, seconds, and the epoch's learning rate. Appended one row per epoch, so a
//! resumed run continues the file (a file written before the learning-rate column reads with
//! the column empty, and gets it on its next row).
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::model::loss::Losses;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: f64,
    pub train_r_loss: f64,
    pub train_kl_loss: f64,
    pub test_loss: f64,
    pub test_r_loss: f64,
    pub test_kl_loss: f64,
    pub seconds: f64,
    /// The (first model's) learning rate in this epoch, after `train.lr_decay`.
    #[serde(default)]
    pub learning_rate: Option<f64>,
}

impl EpochRow {
    pub fn new(
        epoch: usize,
        train: Losses,
        test: Losses,
        seconds: f64,
        learning_rate: f64,
    ) -> EpochRow {
        EpochRow {
            epoch,
            train_loss: train.loss,
            train_r_loss: train.r_loss,
            train_kl_loss: train.kl_loss,
            test_loss: test.loss,
            test_r_loss: test.r_loss,
            test_kl_loss: test.kl_loss,
            seconds,
            learning_rate: Some(learning_rate),
        }
    }
}

/// Appends one row, writing the header when the file is new. The file is rewritten whole
/// through a temporary file and a rename (it is small), so a full disk or a kill never leaves
/// half a row.
pub fn append(path: &Path, row: &EpochRow) -> Result<(), csv::Error> {
    let mut rows = if path.exists() {
        read(path)?
    } else {
        Vec::new()
    };
    rows.push(*row);
    write_rows(path, &rows)
}

/// Writes `rows` as the whole file, atomically.
fn write_rows(path: &Path, rows: &[EpochRow]) -> Result<(), csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(!rows.is_empty())
        .from_writer(Vec::new());
    for r in rows {
        w.serialize(r)?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    crate::util::fsutil::write_atomic(path, &bytes)?;
    Ok(())
}

/// Reads all rows.
pub fn read(path: &Path) -> Result<Vec<EpochRow>, csv::Error> {
    csv::Reader::from_path(path)?.deserialize().collect()
}

/// Keeps the rows of epochs up to `epoch` (a run resumed from an older checkpoint may have
/// logged epochs that are being redone). The file is rewritten atomically (a temporary file,
/// then a rename), so a kill at that moment loses no row; an unchanged file is left alone.
pub fn truncate_after(path: &Path, epoch: usize) -> Result<(), csv::Error> {
    if !path.exists() {
        return Ok(());
    }
    let all = read(path)?;
    let rows: Vec<EpochRow> = all.iter().filter(|r| r.epoch <= epoch).copied().collect();
    if rows.len() == all.len() {
        return Ok(());
    }
    write_rows(path, &rows)
}
