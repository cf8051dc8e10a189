//! Exports that Python loads with no glue code (`vae-tch export`, and at the end of `train`):
//!   encoder.pt   TorchScript: images [N, c, h, w] in [0, 1] -> (mu, log_var), a tuple
//!                (traced by crate::trace: tch's own tracer cannot return tuples)
//!   decoder.pt   TorchScript: z [N, latent] -> images [N, c, h, w]
//!   vae.pt       TorchScript: images -> reconstruction through mu (deterministic)
//!   model.safetensors  the weights under scripts/vae_torch.py's state_dict keys
//!   config.toml  the run's config (its [model] table rebuilds the model)
//!   reference_io.safetensors  fixed inputs and the Rust model's outputs for them, so that any
//!     loader can check itself (the pytest suite does)
//! Tracing needs parameters that do not require grad (the var store is frozen first) and no
//! tensors created inside the traced closure (tch-rs issue #766): the model makes none.
use std::path::{Path, PathBuf};

use tch::{CModule, Device, Kind, Tensor};

use crate::checkpoint::{self, CheckpointError, CONFIG_FILE};
use crate::model::Vae;

pub const ENCODER_FILE: &str = "encoder.pt";
pub const DECODER_FILE: &str = "decoder.pt";
pub const VAE_FILE: &str = "vae.pt";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const REFERENCE_IO_FILE: &str = "reference_io.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("tracing {what}: {cause}")]
    Trace {
        what: &'static str,
        cause: tch::TchError,
    },
    #[error("{path}: {cause}")]
    Write { path: PathBuf, cause: tch::TchError },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("moving an export into place: {0}")]
    Rename(#[from] std::io::Error),
}

/// The fixed inputs of reference_io.safetensors: images x[i] = (sin(0.11 i) + 1) / 2 and latent
/// points z[i] = 2 sin(0.7 i), i over the elements in order (easy to rebuild anywhere).
pub fn reference_inputs(vae: &Vae, device: Device) -> (Tensor, Tensor) {
    let [c, h, w] = vae.config.input_shape;
    let n = 4;
    let i = Tensor::arange(n * c * h * w, (Kind::Double, Device::Cpu));
    let x = (((i * 0.11).sin() + 1.0) / 2.0)
        .to_kind(Kind::Float)
        .view([n, c, h, w]);
    let j = Tensor::arange(5 * vae.config.latent_dim, (Kind::Double, Device::Cpu));
    let z = ((j * 0.7).sin() * 2.0)
        .to_kind(Kind::Float)
        .view([5, vae.config.latent_dim]);
    (x.to_device(device), z.to_device(device))
}

fn trace(
    what: &'static str,
    example: &Tensor,
    mut f: impl FnMut(&Tensor) -> Vec<Tensor>,
) -> Result<CModule, ExportError> {
    CModule::create_by_tracing(what, "forward", &[example.shallow_clone()], &mut |inputs| {
        f(&inputs[0])
    })
    .map_err(|cause| ExportError::Trace { what, cause })
}

fn save_module(module: &CModule, path: PathBuf) -> Result<PathBuf, ExportError> {
    crate::fsutil::with_atomic(&path, |tmp| {
        module.save(tmp).map_err(|cause| ExportError::Write {
            path: path.clone(),
            cause,
        })
    })?;
    Ok(path)
}

/// Writes the exports of `run` into `out` (created if needed), tracing on `device`.
/// Returns the paths written.
pub fn export(run: &Path, out: &Path, device: Device) -> Result<Vec<PathBuf>, ExportError> {
    let mut loaded = checkpoint::load_model(run, device)?;
    loaded.vs.freeze();
    let vae = &loaded.vae;
    std::fs::create_dir_all(out).map_err(|cause| ExportError::Io {
        path: out.into(),
        cause,
    })?;
    let (x, z) = reference_inputs(vae, device);
    let mut written = Vec::new();
    tch::no_grad(|| -> Result<(), ExportError> {
        let path = out.join(ENCODER_FILE);
        crate::fsutil::with_atomic(&path, |tmp| {
            crate::trace::trace_tuple_to_file(
                "encoder",
                &[x.shallow_clone()],
                |i| {
                    let (mu, log_var) = vae.encoder.forward(&i[0]);
                    vec![mu, log_var]
                },
                tmp,
            )
            .map_err(|cause| ExportError::Trace {
                what: "encoder",
                cause,
            })
        })?;
        written.push(path);
        let dec = trace("decoder", &z, |z| vec![vae.decoder.forward(z)])?;
        written.push(save_module(&dec, out.join(DECODER_FILE))?);
        let full = trace("vae", &x, |x| vec![vae.reconstruct_mean(x)])?;
        written.push(save_module(&full, out.join(VAE_FILE))?);
        Ok(())
    })?;

    let weights = out.join(WEIGHTS_FILE);
    crate::fsutil::with_atomic(&weights, |tmp| {
        loaded.vs.save(tmp).map_err(|cause| ExportError::Write {
            path: weights.clone(),
            cause,
        })
    })?;
    written.push(weights);
    let config = out.join(CONFIG_FILE);
    crate::fsutil::write_atomic(&config, loaded.config.to_toml().as_bytes()).map_err(|cause| {
        ExportError::Io {
            path: config.clone(),
            cause,
        }
    })?;
    written.push(config);

    let io = out.join(REFERENCE_IO_FILE);
    let (mu, log_var) = tch::no_grad(|| vae.encoder.forward(&x));
    let named = [
        ("x", x.shallow_clone()),
        ("mu", mu),
        ("log_var", log_var),
        ("reconstruction", tch::no_grad(|| vae.reconstruct_mean(&x))),
        ("z", z.shallow_clone()),
        ("decoded", tch::no_grad(|| vae.decoder.forward(&z))),
    ]
    .map(|(k, t)| (k, t.to_device(Device::Cpu)));
    crate::fsutil::with_atomic(&io, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|cause| ExportError::Write {
            path: io.clone(),
            cause,
        })
    })?;
    written.push(io);
    Ok(written)
}

/// `<run>/export`, where `train` and `export` put the files by default.
pub fn default_dir(run: &Path) -> PathBuf {
    run.join("export")
}
