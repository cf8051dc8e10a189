//! What the figures, `eval` and the exports read from a run folder: its model from a checkpoint
//! (the last or the best) and its data set's splits (from the folder its config names, or one
//! given when the data moved), and the attributes of a split's images (crate::data::labels).
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::Device;

use crate::config::DatasetKind;
use crate::data::labels::{self, Attributes, LabelError};
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

    /// The folder of the run's data.
    pub fn dir(&self, loaded: &Loaded) -> PathBuf {
        self.data_dir
            .map(Path::to_path_buf)
            .unwrap_or_else(|| loaded.config.data.dir())
    }

    fn context(&self) -> String {
        format!(
            "the images of run {} (pass --data-dir to point elsewhere)",
            self.run.display()
        )
    }

    /// The split and the data set's class names (by label).
    pub fn split_and_classes(
        &self,
        loaded: &Loaded,
        which: SplitName,
    ) -> Result<(Split, Vec<String>)> {
        data::open_split(&loaded.config, &self.dir(loaded), which).with_context(|| self.context())
    }

    /// Both splits (train, test) of the run's data set.
    pub fn splits(&self, loaded: &Loaded) -> Result<(Split, Split)> {
        let d =
            data::open(&loaded.config, &self.dir(loaded), true).with_context(|| self.context())?;
        Ok((d.train, d.test))
    }

    /// The split `which` and its images' attributes: from the table `labels`, else from the
    /// table beside an image folder (labels::find_table), else the class labels one-vs-rest
    /// (MNIST, Fashion-MNIST, a folder with two or more class sub-folders).
    pub fn attributes(
        &self,
        loaded: &Loaded,
        which: SplitName,
        labels: Option<&Path>,
    ) -> Result<(Split, Attributes)> {
        let dir = self.dir(loaded);
        let kind = loaded.config.data.dataset;
        if kind != DatasetKind::Folder {
            let (split, classes) = self.split_and_classes(loaded, which)?;
            if let Some(table) = labels {
                bail!(
                    "--labels {}: a table names images by file, and {kind} comes as IDX files with none; its attributes are its classes ({})",
                    table.display(),
                    classes.join(", ")
                );
            }
            let attrs = labels::from_classes(&split.labels, &classes);
            return Ok((split, attrs));
        }
        let d = data::open(&loaded.config, &dir, true).with_context(|| self.context())?;
        let table = labels
            .map(Path::to_path_buf)
            .or_else(|| labels::find_table(&dir));
        let split = match which {
            SplitName::Train => &d.train,
            SplitName::Test => &d.test,
        };
        let attrs = match table {
            Some(path) => {
                let table = labels::read_table(&path)?;
                let all: Vec<&str> = d
                    .train
                    .names
                    .iter()
                    .chain(&d.test.names)
                    .map(String::as_str)
                    .collect();
                labels::join(&table, &split.names, &all)?
            }
            None if d.classes.len() >= 2 => labels::from_classes(&split.labels, &d.classes),
            None => return Err(LabelError::NoTable { dir }.into()),
        };
        Ok((split.narrow(0, split.len()), attrs))
    }
}
