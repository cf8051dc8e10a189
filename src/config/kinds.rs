//! The plain enums that a config names: which data set, how images are resized, which step
//! form trains on CUDA. They live with the config (its bottom floor) so that the floors above
//! (data, train) import them from here, never the other way round.
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
    /// Your own images: every PNG and JPEG under --data-dir (see data::folder).
    Folder,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
            DatasetKind::Folder => "folder",
        }
    }

    /// Class names by label, for legends (a folder's come from its sub-folders).
    pub fn class_names(self) -> Vec<String> {
        let names: &[&str] = match self {
            DatasetKind::Mnist => &["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::Folder => &[],
            // Zalando's fashion-mnist README, "Labels".
            DatasetKind::FashionMnist => &[
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// The default folder for this data set: `data/<name>`.
    pub fn default_dir(self) -> PathBuf {
        Path::new("data").join(self.name())
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How an image reaches the model's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ResizeMode {
    /// Stretch the whole image to the size (Keras's flow_from_directory), nearest-neighbour.
    #[default]
    Squash,
    /// Cut the largest centred window of the size's aspect ratio, then resize, nearest-neighbour.
    Crop,
}

impl ResizeMode {
    /// The flag's word: `squash` or `crop`.
    pub fn name(self) -> &'static str {
        match self {
            ResizeMode::Squash => "squash",
            ResizeMode::Crop => "crop",
        }
    }
}

impl std::fmt::Display for ResizeMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `train --cuda-graph`: which form to use on CUDA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CudaGraphMode {
    /// The graph on CUDA; eager (with one warning) if capture fails, and on the CPU.
    #[default]
    Auto,
    /// The graph; an error where it cannot run.
    On,
    /// Always eager.
    Off,
}

/// `sweep run --stack`: whether points of one shape train as one stacked model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum StackMode {
    /// Stacked on CUDA, where one step is launch-bound and a stack of 16 costs little more
    /// than one model; one point at a time on the CPU, where a stack of 8 ran 1.3x slower than
    /// 8 single steps in their faster layout (2 cores, 2026-12-02: 242 against 186 ms).
    #[default]
    Auto,
    /// Stacked on any device.
    On,
    /// One point at a time.
    Off,
}

impl StackMode {
    /// Whether to stack on `device`.
    pub fn stacks(self, device: tch::Device) -> bool {
        match self {
            StackMode::Auto => device.is_cuda(),
            StackMode::On => true,
            StackMode::Off => false,
        }
    }
}

impl std::fmt::Display for StackMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StackMode::Auto => "auto",
            StackMode::On => "on",
            StackMode::Off => "off",
        })
    }
}

/// The form that ran, recorded in the run's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepForm {
    Eager,
    CudaGraph,
}

impl std::fmt::Display for StepForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepForm::Eager => "eager",
            StepForm::CudaGraph => "cuda-graph",
        })
    }
}

impl std::fmt::Display for CudaGraphMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CudaGraphMode::Auto => "auto",
            CudaGraphMode::On => "on",
            CudaGraphMode::Off => "off",
        })
    }
}

/// `train --precision`: the arithmetic of the training step's convolutions and matmuls. The
/// weights, Adam's state, the loss and BatchNorm's statistics are float32 in every mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Precision {
    /// Full float32: TF32 off for convolutions and matmuls on CUDA. Exact Keras parity.
    Fp32,
    /// torch's defaults on CUDA: TF32 convolutions (cuDNN), float32 matmuls. The same as fp32
    /// on the CPU.
    #[default]
    Tf32,
    /// Autocast to bfloat16 for convolutions and matmuls, as Keras's `mixed_bfloat16` policy
    /// (BatchNorm computes in float32, the outputs are cast back to float32 for the loss).
    Bf16,
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Precision::Fp32 => "fp32",
            Precision::Tf32 => "tf32",
            Precision::Bf16 => "bf16",
        })
    }
}
