//! The VAE of Foster, "Generative Deep Learning", ch. 3, mirrored from its Keras code layer for
//! layer (see ../shared/keras-semantics.md): TF 'same' padding (asymmetric at stride 2), LeakyReLU
//! slope 0.3, glorot-uniform kernels with zero biases, and for the faces model
//! BatchNormalization and Dropout with Keras's semantics (`BatchNorm`). Variable paths are the
//! state_dict keys of `scripts/vae_torch.py` (`encoder.conv1.weight`, ...), in PyTorch layouts.
//! `forward(.., train)` is Keras's `training` flag: batch statistics and dropout when true,
//! moving statistics and no dropout when false (evaluation, figures, exports).
pub mod activation;
pub mod batch_norm;
pub mod conv;
pub mod dense;
pub mod dropout;
pub mod init;
pub mod layout;
pub mod loss;
pub mod stack;
pub mod summary;
pub mod vae;

use tch::nn;

pub use activation::{in_kind_of, leaky_relu};
pub use batch_norm::{BatchNorm, BN_EPSILON, BN_MOMENTUM};
pub use conv::{conv_padding, conv_t_padding, odd_crop_padding, same_padding, Conv, ConvTranspose};
pub use dense::Dense;
pub use layout::{channels_last, flip_if, Layout};
pub use vae::{reparameterize, Decoder, Encoder, Vae, VaeOutput};

/// A model and its variables on a device.
pub struct Loaded {
    pub vs: nn::VarStore,
    pub vae: Vae,
    pub config: crate::config::RunConfig,
}

/// The tensors of `named` that hold NaN or infinite values: (name, how many, of how many).
pub fn non_finite(named: &[(String, tch::Tensor)]) -> Vec<(String, i64, i64)> {
    named
        .iter()
        .filter_map(|(name, t)| {
            let bad = t
                .isfinite()
                .logical_not()
                .sum(tch::Kind::Int64)
                .int64_value(&[]);
            (bad > 0).then(|| (name.clone(), bad, t.numel() as i64))
        })
        .collect()
}

/// Named tensors that do not fit a model: `source` names where they came from.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}", file = .file.display())]
pub struct StateError {
    pub file: std::path::PathBuf,
    pub message: String,
}

impl Loaded {
    /// The trainable variables by name (not BatchNorm's moving statistics): the optimizer's.
    pub fn trainable(&self) -> Vec<(String, tch::Tensor)> {
        self.vs
            .variables()
            .into_iter()
            .filter(|(_, t)| t.requires_grad())
            .collect()
    }

    /// The state dict: every variable by name, sorted, as contiguous copies whatever the memory
    /// order it trains in (safetensors stores only contiguous data).
    pub fn state_dict(&self) -> Vec<(String, tch::Tensor)> {
        let mut named: Vec<(String, tch::Tensor)> = self
            .vs
            .variables()
            .into_iter()
            .map(|(name, t)| (name, t.detach().contiguous()))
            .collect();
        named.sort_by(|a, b| a.0.cmp(&b.0));
        named
    }

    /// Copies `named` (state_dict key, tensor) into the variables, after checking that the keys
    /// are exactly the model's and every shape matches; `source` names their file in errors.
    pub fn load_state(
        &self,
        named: &[(String, tch::Tensor)],
        source: &std::path::Path,
    ) -> Result<(), StateError> {
        let bad = |message: String| StateError {
            file: source.to_path_buf(),
            message,
        };
        let vars = self.vs.variables();
        let mut want: Vec<&String> = vars.keys().collect();
        let mut got: Vec<&String> = named.iter().map(|(k, _)| k).collect();
        want.sort();
        got.sort();
        if want != got {
            let extra: Vec<_> = got.iter().filter(|k| !want.contains(k)).collect();
            let missing: Vec<_> = want.iter().filter(|k| !got.contains(k)).collect();
            return Err(bad(format!(
                "keys do not match the model: missing {missing:?}, unexpected {extra:?}"
            )));
        }
        for (name, src) in named {
            let dst = &vars[name];
            if dst.size() != src.size() {
                return Err(bad(format!(
                    "{name} has shape {:?}, the model {:?}",
                    src.size(),
                    dst.size()
                )));
            }
        }
        tch::no_grad(|| {
            for (name, src) in named {
                let mut dst = vars[name].shallow_clone();
                dst.copy_(&src.to_kind(dst.kind()).to_device(dst.device()));
            }
        });
        Ok(())
    }

    /// A copy of this model (its config, weights and moving statistics) in the plain layout on
    /// `device`.
    pub fn copy_to(&self, device: tch::Device) -> Loaded {
        let copy = build(&self.config, device, self.config.train.seed);
        copy.load_state(&self.state_dict(), std::path::Path::new("(in memory)"))
            .expect("a model's own state fits a model of its config");
        copy
    }
}

/// Builds the model of `config` with fresh glorot weights from `seed`.
pub fn build(config: &crate::config::RunConfig, device: tch::Device, seed: u64) -> Loaded {
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(device);
    let vae = Vae::new(&vs.root(), &config.model);
    Loaded {
        vs,
        vae,
        config: config.clone(),
    }
}
