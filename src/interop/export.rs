//! Exports that Python loads with no glue code (`vae-tch export`, and at the end of `train`),
//! written into `<out>.partial/` and then swapped in whole, so an interrupted export never
//! leaves a half-written folder:
//!   encoder.pt   TorchScript: images [N, c, h, w] in [0, 1] -> (mu, log_var)
//!   decoder.pt   TorchScript: z [N, latent] -> images [N, c, h, w]
//!   vae.pt       TorchScript: forward (reconstruction through mu), encode, decode,
//!                reparameterize, sample
//!     All three are real modules with trainable parameters under the model.safetensors keys
//!     (crate::interop::torchscript) and carry config.toml and config.json as extra files.
//!   model.safetensors  the weights under scripts/vae_torch.py's state_dict keys, with
//!     __metadata__ {format: pt, vae_tch_version, config: the [model] table as JSON}
//!   config.toml, config.json  the run's config (its model table rebuilds the model)
//!   vae_torch.py  the PyTorch reference module (Python 3.9+, torch and safetensors only):
//!     `VAE.from_pretrained(folder)`
//!   README.md    a model card: the model, data, epochs, final losses, how to load it, the input
//!     contract; loss.png and latent.png beside it when the run has them
//!   reference_io.safetensors  fixed inputs and the Rust model's outputs for them, so that any
//!     loader can check itself (the pytest suite does)
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use tch::{Device, Kind, Tensor};

use crate::config::RunConfig;
use crate::interop::{model_card, torchscript};
use crate::model::Vae;
use crate::run::checkpoint::{self, CheckpointError, CONFIG_FILE};

pub const ENCODER_FILE: &str = "encoder.pt";
pub const DECODER_FILE: &str = "decoder.pt";
pub const VAE_FILE: &str = "vae.pt";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const REFERENCE_IO_FILE: &str = "reference_io.safetensors";
pub const CONFIG_JSON_FILE: &str = "config.json";
pub const LOADER_FILE: &str = "vae_torch.py";
pub const CARD_FILE: &str = "README.md";
/// The PyTorch reference module, written into every export.
const LOADER_SOURCE: &str = include_str!("../../scripts/vae_torch.py");

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("building {what}: {cause}")]
    Build {
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
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |cause| ExportError::Io {
        path: path.to_path_buf(),
        cause,
    }
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

/// `<dir>.<suffix>` beside `dir`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let name = dir.file_name().unwrap_or_default().to_string_lossy();
    dir.with_file_name(format!("{name}.{suffix}"))
}

/// Writes the exports of `run` into `out` (replacing what was there), computing the reference
/// outputs on `device`. Returns the paths written.
pub fn export(run: &Path, out: &Path, device: Device) -> Result<Vec<PathBuf>, ExportError> {
    export_from(run, checkpoint::Pick::Last, out, device)
}

/// The same from the run's checkpoint `which` (the last, or the best: `export --best`).
pub fn export_from(
    run: &Path,
    which: checkpoint::Pick,
    out: &Path,
    device: Device,
) -> Result<Vec<PathBuf>, ExportError> {
    let loaded = checkpoint::load_model_from(run, which, device)?;
    let state = checkpoint::read_state_of(run, which)?;
    export_loaded(run, out, &loaded, state.epoch)
}

/// The same for a model in memory after `epochs` epochs (a run that just trained: nothing read
/// back but its figures, which the model card shows).
pub fn export_loaded(
    run: &Path,
    out: &Path,
    loaded: &crate::model::Loaded,
    epochs: usize,
) -> Result<Vec<PathBuf>, ExportError> {
    let partial = sibling(out, "partial");
    if partial.exists() {
        fs::remove_dir_all(&partial).map_err(io_err(&partial))?;
    }
    fs::create_dir_all(&partial).map_err(io_err(&partial))?;
    let names = write_all(run, &partial, loaded, epochs)?;
    // Swap the finished folder in: a crash leaves the old export, or the new one.
    crate::util::fsutil::replace_dir(&partial, out).map_err(io_err(out))?;
    Ok(names.into_iter().map(|n| out.join(n)).collect())
}

/// Every file of the export into `dir`; returns their names.
fn write_all(
    run: &Path,
    dir: &Path,
    loaded: &crate::model::Loaded,
    epochs: usize,
) -> Result<Vec<String>, ExportError> {
    let vae = &loaded.vae;
    let portable = portable_config(&loaded.config);
    let config_toml = portable.to_toml();
    let config_json = config_json(&portable);
    let mut names = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), ExportError> {
        let path = dir.join(name);
        fs::write(&path, bytes).map_err(io_err(&path))?;
        names.push(name.to_string());
        Ok(())
    };
    put(CONFIG_FILE, config_toml.as_bytes())?;
    put(CONFIG_JSON_FILE, config_json.as_bytes())?;
    put(LOADER_FILE, LOADER_SOURCE.as_bytes())?;
    put(
        CARD_FILE,
        model_card::render(run, loaded, epochs).as_bytes(),
    )?;
    for fig in model_card::FIGURES {
        if let Ok(bytes) = fs::read(run.join(fig)) {
            put(fig, &bytes)?;
        }
    }

    let extra: [(&str, &[u8]); 2] = [
        (CONFIG_FILE, config_toml.as_bytes()),
        (CONFIG_JSON_FILE, config_json.as_bytes()),
    ];
    let modules = [
        (ENCODER_FILE, "encoder.pt", torchscript::encoder_module(vae)),
        (DECODER_FILE, "decoder.pt", torchscript::decoder_module(vae)),
        (VAE_FILE, "vae.pt", torchscript::vae_module(vae)),
    ];
    for (file, what, module) in modules {
        let module = module.map_err(|cause| ExportError::Build { what, cause })?;
        let path = dir.join(file);
        module
            .save(&path, &extra)
            .map_err(|cause| ExportError::Write {
                path: path.clone(),
                cause,
            })?;
        names.push(file.to_string());
    }

    let weights = dir.join(WEIGHTS_FILE);
    let mut named: Vec<(String, Tensor)> = loaded.vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    let model_json = serde_json::to_string(&loaded.config.model).expect("VaeConfig serializes");
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "vae_tch_version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
        ("config".to_string(), model_json),
    ]);
    crate::util::safetensors_io::write(&named, metadata, &weights).map_err(|cause| {
        ExportError::Write {
            path: weights.clone(),
            cause,
        }
    })?;
    names.push(WEIGHTS_FILE.to_string());

    let io = dir.join(REFERENCE_IO_FILE);
    let device = loaded.vs.device();
    let (x, z) = reference_inputs(vae, device);
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
    Tensor::write_safetensors(&named, &io).map_err(|cause| ExportError::Write {
        path: io.clone(),
        cause,
    })?;
    names.push(REFERENCE_IO_FILE.to_string());
    Ok(names)
}

/// The run's config as it travels: no absolute path of the training machine (the data and
/// cache folders are dropped when absolute; relative ones stay).
fn portable_config(c: &RunConfig) -> RunConfig {
    let mut c = c.clone();
    if c.data.dir.as_deref().is_some_and(Path::is_absolute) {
        c.data.dir = None;
    }
    if c.data.cache_dir.as_deref().is_some_and(Path::is_absolute) {
        c.data.cache_dir = None;
    }
    c
}

/// config.json: the config's tables, and at the top level the keys that model hubs and
/// `transformers`-style tools look for first.
fn config_json(c: &RunConfig) -> String {
    let mut v = serde_json::to_value(c).expect("RunConfig serializes to JSON");
    let top = v.as_object_mut().expect("a JSON object");
    top.insert("model_type".into(), "vae-tch-conv-vae".into());
    top.insert("architectures".into(), serde_json::json!(["VAE"]));
    top.insert("torch_dtype".into(), "float32".into());
    serde_json::to_string_pretty(&v).expect("JSON serializes")
}

/// `<run>/export-best`, where `export --best` puts the files by default.
pub fn best_dir(run: &Path) -> PathBuf {
    run.join("export-best")
}

/// `<run>/export`, where `train` and `export` put the files by default.
pub fn default_dir(run: &Path) -> PathBuf {
    run.join("export")
}
