//! What the figures, `eval` and the exports read from a run folder: its model from a checkpoint
//! (the last or the best) and its data set's splits (from the folder its config names, or one
//! given when the data moved).
use std::path::Path;

use anyhow::{Context, Result};
use tch::Device;

use crate::data::{self, Split, SplitName};
use crate::model::Loaded;
use crate::run::checkpoint;

/// Where a run's data lives, unless `data_dir` overrides it.
pub struct RunData<'a> {
    pub run: &'a Path,
    pub data_dir: Option<&'a Path>,
    pub device: Device,
    /// The last checkpoint, or the best one (`--best`).
    pub checkpoint: checkpoint::Pick,
}

impl RunData<'_> {
    pub fn model(&self) -> Result<Loaded> {
        Ok(checkpoint::load_model_from(
            self.run,
            self.checkpoint,
            self.device,
        )?)
    }

    pub fn split(&self, loaded: &Loaded, which: SplitName) -> Result<Split> {
        Ok(self.split_and_classes(loaded, which)?.0)
    }

    /// The split and the data set's class names (by label).
    pub fn split_and_classes(
        &self,
        loaded: &Loaded,
        which: SplitName,
    ) -> Result<(Split, Vec<String>)> {
        let dir = self
            .data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| loaded.config.data.dir());
        data::open_split(&loaded.config, &dir, which).with_context(|| {
            format!(
                "the images of run {} (pass --data-dir to point elsewhere)",
                self.run.display()
            )
        })
    }
}
