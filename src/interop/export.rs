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

use crate::config::TrainConfig;
use crate::interop::torchscript;
use crate::model::Vae;
use crate::model::{BN_EPSILON, BN_MOMENTUM};
use crate::run::checkpoint::{self, CheckpointError, CONFIG_FILE, METRICS_FILE};

pub const ENCODER_FILE: &str = "encoder.pt";
pub const DECODER_FILE: &str = "decoder.pt";
pub const VAE_FILE: &str = "vae.pt";
pub const WEIGHTS_FILE: &str = "model.safetensors";
pub const REFERENCE_IO_FILE: &str = "reference_io.safetensors";
pub const CONFIG_JSON_FILE: &str = "config.json";
pub const LOADER_FILE: &str = "vae_torch.py";
pub const CARD_FILE: &str = "README.md";
/// The run's figures copied beside the model card.
const FIGURES: [&str; 2] = ["loss.png", "latent.png"];
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
    export_from(run, checkpoint::Which::Last, out, device)
}

/// The same from the run's checkpoint `which` (the last, or the best: `export --best`).
pub fn export_from(
    run: &Path,
    which: checkpoint::Which,
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
    let prev = sibling(out, "prev");
    if out.exists() {
        if prev.exists() {
            fs::remove_dir_all(&prev).map_err(io_err(&prev))?;
        }
        fs::rename(out, &prev).map_err(io_err(out))?;
    }
    fs::rename(&partial, out).map_err(io_err(&partial))?;
    if prev.exists() {
        fs::remove_dir_all(&prev).map_err(io_err(&prev))?;
    }
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
    put(CARD_FILE, model_card(run, loaded, epochs).as_bytes())?;
    for fig in FIGURES {
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
    crate::interop::safetensors_io::write(&named, metadata, &weights).map_err(|cause| {
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
fn portable_config(c: &TrainConfig) -> TrainConfig {
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
fn config_json(c: &TrainConfig) -> String {
    let mut v = serde_json::to_value(c).expect("TrainConfig serializes to JSON");
    let top = v.as_object_mut().expect("a JSON object");
    top.insert("model_type".into(), "vae-tch-conv-vae".into());
    top.insert("architectures".into(), serde_json::json!(["VAE"]));
    top.insert("torch_dtype".into(), "float32".into());
    serde_json::to_string_pretty(&v).expect("JSON serializes")
}

/// (trainable parameters, moving statistics) as torch counts them:
/// `sum(p.numel() for p in m.parameters())` and the buffers beside them.
fn torch_counts(loaded: &crate::model::Loaded) -> (i64, i64) {
    let vars = loaded.vs.variables();
    let count = |trainable: bool| -> i64 {
        vars.values()
            .filter(|t| t.requires_grad() == trainable)
            .map(|t| t.numel() as i64)
            .sum()
    };
    (count(true), count(false))
}

/// README.md of the export: what the model is, its data and training, how to load it.
fn model_card(run: &Path, loaded: &crate::model::Loaded, epochs: usize) -> String {
    let cfg = &loaded.config;
    let m = &cfg.model;
    let [c, h, w] = m.input_shape;
    let latent = m.latent_dim;
    let (params, buffers) = torch_counts(loaded);
    let n = crate::model::summary::thousands;
    let data_dir = cfg.data.dir();
    // Where the data came from, without the training machine's paths.
    let source = match crate::data::source::SourceInfo::read(&data_dir) {
        Some(s) => format!("{} from {}", s.dataset, s.source),
        None if cfg.data.dataset == crate::config::DatasetKind::Folder => format!(
            "an image folder (`{}`)",
            data_dir
                .file_name()
                .map_or("images".into(), |f| f.to_string_lossy())
        ),
        None => cfg.data.dataset.to_string(),
    };
    let limits = match (cfg.data.train_limit, cfg.data.test_limit) {
        (None, None) => String::new(),
        (a, b) => format!(
            " (first {} training / {} test images)",
            a.map_or("all".into(), |v| v.to_string()),
            b.map_or("all".into(), |v| v.to_string())
        ),
    };
    // The exported epoch's losses (the last one's, or the best's with `export --best`).
    let losses = crate::run::metrics::read(&run.join(METRICS_FILE))
        .ok()
        .and_then(|rows| rows.into_iter().find(|r| r.epoch == epochs))
        .map(|r| {
            format!(
                "train loss {:.3} (r_loss {:.3}, kl_loss {:.3}); test loss {:.3} (r_loss {:.3}, kl_loss {:.3})",
                r.train_loss, r.train_r_loss, r.train_kl_loss, r.test_loss, r.test_r_loss, r.test_kl_loss
            )
        })
        .unwrap_or_else(|| "not recorded (no metrics.csv in the run)".into());
    let figures: String = FIGURES
        .iter()
        .filter(|f| run.join(f).is_file())
        .map(|f| format!("![{f}]({f})\n"))
        .collect();
    let mut layers = Vec::new();
    if m.use_batch_norm {
        layers.push(format!(
            "BatchNormalization (Keras: momentum {BN_MOMENTUM}, epsilon {BN_EPSILON}) after every conv but the decoder's last: `encoder.bn1`..`encoder.bn{}`, `decoder.bn1`..`decoder.bn{}`",
            m.encoder_conv_filters.len(),
            m.decoder_conv_t_filters.len() - 1
        ));
    }
    if m.use_dropout {
        layers.push(format!(
            "Dropout (rate {}) after every activation",
            m.dropout_rate
        ));
    }
    let train_mode = if layers.is_empty() {
        "The `.pt` files load in eval mode (`vae.training` is False); `vae.train()` switches to \
         training mode for fine-tuning (this model has no BatchNorm or Dropout, so the outputs are \
         the same in both)."
            .to_string()
    } else {
        format!(
            "The `.pt` files load in **eval mode** (`vae.training` is False): the moving statistics, \
             no dropout, the same output for the same input. Call `vae.train()` only to fine-tune \
             (then {}); `vae.eval()` switches back.",
            [
                m.use_batch_norm
                    .then_some("BatchNorm uses batch statistics and moves its running_mean / running_var"),
                m.use_dropout.then_some("dropout is on"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
        )
    };
    let layer_rows: String = layers.iter().map(|l| format!("| also | {l} |\n")).collect();
    let stats = if buffers > 0 {
        format!(
            " trainable (`sum(p.numel() for p in m.parameters())`), plus {} moving statistics (BatchNorm buffers)",
            n(buffers)
        )
    } else {
        " (`sum(p.numel() for p in m.parameters())`)".to_string()
    };
    format!(
        r#"# Convolutional VAE ({dataset}, {epochs} {epoch_word})

The convolutional variational autoencoder of D. Foster, *Generative Deep Learning*, ch. 3, with
the Keras model's exact semantics (TF 'same' padding, LeakyReLU {slope}, glorot-uniform init,
Keras Adam), trained with vae-tch {version}.

| | |
|---|---|
| input | float32 images `[N, {c}, {h}, {w}]`, values in [0, 1] |
| latent size | {latent} |
| encoder | Conv2D filters {ef:?}, kernels {ek:?}, strides {es:?}; Dense mu and log_var |
| decoder | Dense, Conv2DTranspose filters {df:?}, kernels {dk:?}, strides {ds:?}; sigmoid |
{layer_rows}| parameters | {params}{stats} |
| data | {source}{limits} |
| training | {epochs} {epoch_word}, batch {batch}, Adam lr {lr} (Keras form, epsilon {eps:e}), loss = {factor} x per-image MSE + KL, seed {seed} |
| final losses | {losses} |

## Load it

Every block below runs as pasted, in this folder. With plain PyTorch (no vae-tch code):

```python
import torch
vae = torch.jit.load("vae.pt")               # eval mode; .to("cuda") for a GPU
x = torch.rand(4, {c}, {h}, {w})                 # images in [0, 1]
z = torch.randn(4, {latent})                 # latent points
recon = vae(x)                               # reconstruction through mu
mu, log_var = vae.encode(x)
images = vae.decode(z)
samples = vae.sample(16)                     # decodes of z ~ N(0, I)
```

{train_mode} `encoder.pt` and `decoder.pt` hold one half each. The modules have trainable
parameters (`vae.parameters()`, `state_dict()` keys as in `model.safetensors`): any torch
optimizer can go on training them.

As an `nn.Module` (needs only torch and safetensors):

```python
import sys; sys.path.insert(0, ".")
import torch
from vae_torch import VAE
model = VAE.from_pretrained(".")             # weights loaded, eval mode
x = torch.rand(4, {c}, {h}, {w})
with torch.no_grad():
    mu, log_var = model.encoder(x)
    recon = model.decoder(mu)
print(sum(p.numel() for p in model.parameters()))   # {params}
```

`torch.compile(model.decoder)` compiles this module (one graph). It runs the `.pt` files too,
but compiles no graph of them: they are TorchScript.

To ONNX: export the `nn.Module` with the current exporter (`pip install onnxscript`), the batch
axis dynamic:

```python
import sys; sys.path.insert(0, ".")
import torch
from vae_torch import VAE
model = VAE.from_pretrained(".")
batch = torch.export.Dim("batch")
torch.onnx.export(model.encoder, (torch.rand(2, {c}, {h}, {w}),), "encoder.onnx", dynamic_shapes={{"x": {{0: batch}}}})
torch.onnx.export(model.decoder, (torch.randn(2, {latent}),), "decoder.onnx", dynamic_shapes={{"z": {{0: batch}}}})
```

or, the legacy way, the TorchScript file with `dynamo=False`:

```python
import torch
vae = torch.jit.load("vae.pt")
torch.onnx.export(vae, (torch.rand(1, {c}, {h}, {w}),), "vae.onnx", dynamo=False,
                  input_names=["x"], output_names=["reconstruction"], dynamic_axes={{"x": {{0: "batch"}}}})
```

## Input contract

Images are float tensors `[N, {c}, {h}, {w}]` of the model's dtype (float32; `.double()` the
model for float64) with values in [0, 1] (divide 8-bit pixels by 255); latent points are
`[N, {latent}]`. The modules check the dtype, rank and sizes and say what they expected. They
cannot see a wrong value range, so set `vae.check_range = True` to have them check that too (a
min and a max per call; an empty batch passes). A failed check raises `torch.jit.Error` from the
`.pt` files (catch that class: it is not a `RuntimeError`), and `ValueError` from `vae_torch.py`.

## Files

`vae.pt`, `encoder.pt`, `decoder.pt` (TorchScript; `config.toml` and `config.json` inside as
extra files), `model.safetensors` (weights; `__metadata__` holds the config), `config.toml` /
`config.json` (the vae-tch config), `vae_torch.py` (the reference module),
`reference_io.safetensors` (fixed inputs and the outputs vae-tch computed for them).

{figures}"#,
        dataset = cfg.data.dataset,
        epoch_word = if epochs == 1 { "epoch" } else { "epochs" },
        slope = m.leaky_relu_slope,
        version = env!("CARGO_PKG_VERSION"),
        ef = m.encoder_conv_filters,
        ek = m.encoder_conv_kernel_size,
        es = m.encoder_conv_strides,
        df = m.decoder_conv_t_filters,
        dk = m.decoder_conv_t_kernel_size,
        ds = m.decoder_conv_t_strides,
        params = n(params),
        batch = cfg.train.batch_size,
        lr = cfg.optim.learning_rate,
        eps = cfg.optim.epsilon,
        factor = cfg.train.r_loss_factor,
        seed = cfg.train.seed,
    )
}

/// `<run>/export-best`, where `export --best` puts the files by default.
pub fn best_dir(run: &Path) -> PathBuf {
    run.join("export-best")
}

/// `<run>/export`, where `train` and `export` put the files by default.
pub fn default_dir(run: &Path) -> PathBuf {
    run.join("export")
}
