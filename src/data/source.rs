//! Where a data folder's files came from: `<dir>/SOURCE`, written by `data fetch` and the
//! offline builders, shown by `train`, `info` and the model card.
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::util::fsutil;

/// The file written beside the data that says where it came from.
pub const SOURCE_FILE: &str = "SOURCE";

/// Where a data folder's files came from: written to `<dir>/SOURCE` and shown by `train`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceInfo {
    pub dataset: String,
    pub source: String,
    pub detail: String,
}

impl SourceInfo {
    pub fn read(dir: &Path) -> Option<SourceInfo> {
        toml::from_str(&std::fs::read_to_string(dir.join(SOURCE_FILE)).ok()?).ok()
    }

    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let text = toml::to_string(self).expect("SourceInfo serializes");
        fsutil::write_atomic(&dir.join(SOURCE_FILE), text.as_bytes())
    }
}

impl std::fmt::Display for SourceInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} from {} ({})", self.dataset, self.source, self.detail)
    }
}
