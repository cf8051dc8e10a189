//! The export's README.md: a model card (what the model is, its data and training, its losses,
//! how to load it in Python, the input contract), written from the run's config and metrics.
use std::path::Path;

use crate::model::{BN_EPSILON, BN_MOMENTUM};
use crate::run::checkpoint::METRICS_FILE;

/// The run's figures copied beside the model card.
pub const FIGURES: [&str; 2] = ["loss.png", "latent.png"];

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
pub fn render(run: &Path, loaded: &crate::model::Loaded, epochs: usize) -> String {
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
    let nats = nats_row(run, epochs);
    let t = &cfg.train;
    let schedule = if t.lr_decay == 1.0 {
        String::new()
    } else {
        format!(
            ", the rate x {} every {} epochs (the book's step_decay_schedule)",
            t.lr_decay, t.lr_decay_every
        )
    };
    let precision = t.precision;
    // `export --best`: the checkpoint of the lowest test loss, an epoch of a longer run.
    let of_run = match crate::run::checkpoint::read_state(run) {
        Ok(last) if last.epoch != epochs => format!(
            " (the checkpoint of the lowest test loss, of a run trained {} epochs)",
            last.epoch
        ),
        _ => String::new(),
    };
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
| training | {epochs} {epoch_word}{of_run}, batch {batch}, Adam lr {lr} (Keras form, epsilon {eps:e}){schedule}, loss = {factor} x per-image MSE + KL, {precision} arithmetic, seed {seed} |
| final losses | {losses} |
{nats}
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

`torch.compile(model.decoder)` compiles this module (one graph; with `model.check_range = True`
the encoder's value check reads a min and a max back to Python: two graph breaks per call). It
runs the `.pt` files too, but compiles no graph of them: they are TorchScript.

For fine-tuning, `model.train()` first (BatchNorm and Dropout train as they trained; the module
loads in eval mode). Under `torch.autocast` (e.g. bfloat16 on the CPU) the encoder's outputs come
in autocast's dtype, and the decoder takes them.

To ONNX: export the `nn.Module` with the current exporter (`pip install onnxscript`), the batch
axis dynamic. It writes the graph in `encoder.onnx` and the weights beside it in
`encoder.onnx.data`: keep the two together (onnxruntime reads both; the `.onnx` alone fails).

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

/// The card's row of the run's eval.json (crate::eval::EVAL_FILE), when it is of the exported
/// epoch: the values that compare models of any `r_loss_factor`.
fn nats_row(run: &Path, epochs: usize) -> String {
    let record = std::fs::read(run.join(crate::eval::EVAL_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<crate::eval::Record>(&b).ok())
        .filter(|r| r.epoch == epochs);
    let Some(r) = record else {
        return String::new();
    };
    let e = &r.report;
    format!(
        "| in nats (eval.json: {} {} images, k = {}, seed {}) | negative ELBO {:.2} ({:.4} bits/dim), IWAE bound {:.2}; reconstruction PSNR {:.2} dB; {} of {} latent units active |\n",
        e.images,
        r.split,
        e.k,
        r.seed,
        e.neg_elbo_nats,
        e.neg_elbo_bits_per_dim,
        e.iwae_nll_nats,
        e.psnr_db,
        e.active_units,
        e.kl_per_dim.len()
    )
}
