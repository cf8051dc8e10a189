//! `vae-tch import-keras`: Keras weight files of the seed's model into a vae-tch run folder.
//! Reads both formats the book's users have:
//! - Keras 3 `.weights.h5`: `layers/<model>/layers/<class_name>[_k]/vars/{0,1}` (kernel, bias),
//!   layers named by class and creation order (conv2d, conv2d_1, ..., dense, dense_1);
//! - legacy Keras 2 `.h5` (`save_weights` to HDF5): `<layer>/[<layer>/]kernel[:0]` and `bias[:0]`,
//!   layers named as the book names them (encoder_conv_i, mu, log_var, decoder_conv_t_i).
//!
//! Layers are told apart by kind (Conv2D, Conv2DTranspose, Dense) and by shape, ordered by the
//! number in their name, then moved to PyTorch layouts (../shared/keras-semantics.md): Conv2D
//! (kh, kw, in, out) and Conv2DTranspose (kh, kw, out, in) kernels permute(3, 2, 0, 1); Dense
//! kernels transpose, with Keras's (h, w, c) flatten order turned into torch's (c, h, w).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tch::{Device, Tensor};

use crate::config::RunConfig;
use crate::run::checkpoint::{self, TrainState};
use crate::train::optim::KerasAdam;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{path}: not a readable HDF5 file: {message}")]
    Hdf5 { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Layout { path: PathBuf, message: String },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
}

/// A dataset read from the file: (shape, float32 data).
type Array = (Vec<i64>, Vec<f32>);
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum LayerKind {
    Conv,
    ConvTranspose,
    Dense,
}

#[derive(Debug)]
struct KerasLayer {
    /// Path of the layer's group, for messages.
    path: String,
    kind: LayerKind,
    /// The number ending the layer's name (conv2d_3 -> 3, encoder_conv_0 -> 0, conv2d -> -1).
    order: i64,
    name: String,
    kernel: Array,
    bias: Array,
}

fn layer_name(path: &str) -> String {
    // Keras 3: .../<name>/vars; legacy: .../<name>/<name> or .../<name>.
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != "vars")
        .collect();
    parts.last().copied().unwrap_or_default().to_string()
}

fn classify(name: &str, kernel_rank: usize) -> Option<LayerKind> {
    let n = name.to_ascii_lowercase();
    match kernel_rank {
        4 if n.contains("transpose") || n.contains("conv_t") || n.contains("deconv") => {
            Some(LayerKind::ConvTranspose)
        }
        4 => Some(LayerKind::Conv),
        2 => Some(LayerKind::Dense),
        _ => None,
    }
}

fn trailing_number(name: &str) -> i64 {
    let digits: String = name
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits
        .chars()
        .rev()
        .collect::<String>()
        .parse()
        .unwrap_or(-1)
}

/// Groups visited at most, and how deep: far above a Keras file's, and a bound on a damaged
/// file whose links form a cycle.
const MAX_GROUPS: usize = 10_000;
const MAX_DEPTH: usize = 32;

/// Every dataset in the file: path -> (shape, f32 data). A dataset that declares more bytes
/// than the file could hold (Keras stores weights uncompressed) is an error, not an allocation.
fn read_all(path: &Path) -> Result<BTreeMap<String, Array>, ImportError> {
    let h5 = |e: hdf5_pure::Error| ImportError::Hdf5 {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let damaged = |message: String| ImportError::Hdf5 {
        path: path.to_path_buf(),
        message,
    };
    let file_len = std::fs::metadata(path)
        .map_err(|cause| ImportError::Io {
            path: path.to_path_buf(),
            cause,
        })?
        .len();
    let file = hdf5_pure::File::open(path).map_err(h5)?;
    let mut out = BTreeMap::new();
    let mut stack = vec![(String::new(), file.root(), 0usize)];
    let mut visited = 0usize;
    while let Some((prefix, group, depth)) = stack.pop() {
        visited += 1;
        if visited > MAX_GROUPS || depth > MAX_DEPTH {
            return Err(damaged(format!(
                "more than {MAX_GROUPS} groups or {MAX_DEPTH} levels: a damaged file (its links may form a cycle)"
            )));
        }
        for name in group.datasets().map_err(h5)? {
            let ds = group.dataset(&name).map_err(h5)?;
            let dims = ds.shape().map_err(h5)?;
            let bytes = dims
                .iter()
                .try_fold(4u64, |acc, &d| acc.checked_mul(d))
                .unwrap_or(u64::MAX);
            if bytes > file_len.saturating_mul(16).saturating_add(1 << 20) {
                return Err(damaged(format!(
                    "{prefix}{name} declares {dims:?} ({bytes} bytes), more than a {file_len}-byte file holds"
                )));
            }
            let shape = dims.iter().map(|&d| d as i64).collect();
            // Keras stores float32; other numeric datasets (e.g. an optimizer's step count) are
            // not weights and are skipped.
            if let Ok(data) = ds.read_f32() {
                out.insert(format!("{prefix}{name}"), (shape, data));
            }
        }
        for name in group.groups().map_err(h5)? {
            let child = group.group(&name).map_err(h5)?;
            stack.push((format!("{prefix}{name}/"), child, depth + 1));
        }
    }
    Ok(out)
}

/// A BatchNormalization layer: gamma, beta, moving mean, moving variance.
#[derive(Debug)]
struct KerasBatchNorm {
    /// The model the layer sits in (`container`).
    model: String,
    /// The number ending its name: the creation order within its model.
    order: i64,
    vars: [Array; 4],
}

/// The model a layer group sits in, as a path ("" for the saved model itself). Keras 3 files
/// nest `layers/<model>/layers/<layer>/vars` (names numbered per model); legacy files keep each
/// top-level layer as `<layer>/<layer>/...` and a nested model's layers as
/// `<model>/<layer>/...` (names numbered globally). The book wires its VAE with the encoder's
/// layers in the top model and the decoder nested; other code nests both.
fn container(group: &str) -> String {
    let parts: Vec<&str> = group.split('/').filter(|p| !p.is_empty()).collect();
    if parts.first() == Some(&"layers") {
        let end = parts.iter().rposition(|p| *p == "layers").unwrap_or(0);
        parts[..end].join("/")
    } else {
        let layer = layer_name(group);
        match parts.first() {
            Some(top) if *top != layer => top.to_string(),
            _ => String::new(),
        }
    }
}

/// The BatchNormalization groups (Keras 3 `vars/0..3`, legacy `gamma`, `beta`, `moving_mean`,
/// `moving_variance`), in creation order.
fn batch_norms(groups: &BTreeMap<String, BTreeMap<String, Array>>) -> Vec<KerasBatchNorm> {
    let mut out = Vec::new();
    for (group, vars) in groups {
        let name = layer_name(group);
        if !name.contains("batch_norm") || group.starts_with("optimizer") {
            continue;
        }
        let get = |a: &str, b: &str| vars.get(a).or_else(|| vars.get(b)).cloned();
        if let (Some(g), Some(b), Some(m), Some(v)) = (
            get("gamma", "0"),
            get("beta", "1"),
            get("moving_mean", "2"),
            get("moving_variance", "3"),
        ) {
            out.push(KerasBatchNorm {
                model: container(group),
                order: trailing_number(&name),
                vars: [g, b, m, v],
            });
        }
    }
    out
}

/// The BatchNormalization layers split into the encoder's and the decoder's, each in creation
/// order. Each goes by the model it sits in (the one holding the Conv2D layers is the encoder's,
/// the one holding the Conv2DTranspose layers the decoder's), not by a global order of names:
/// numbering restarts per nested model in Keras 3 and runs across models in legacy files.
fn split_batch_norms(
    mut bns: Vec<KerasBatchNorm>,
    encoder_model: &str,
    decoder_model: &str,
    n_encoder: usize,
) -> Result<(Vec<KerasBatchNorm>, Vec<KerasBatchNorm>), String> {
    bns.sort_by_key(|bn| bn.order);
    if encoder_model == decoder_model {
        // One model holds both halves: creation order, the encoder's first.
        let dec = bns.split_off(n_encoder.min(bns.len()));
        return Ok((bns, dec));
    }
    let (enc, rest): (Vec<_>, Vec<_>) = bns.into_iter().partition(|b| b.model == encoder_model);
    let (dec, stray): (Vec<_>, Vec<_>) = rest.into_iter().partition(|b| b.model == decoder_model);
    if let Some(b) = stray.first() {
        return Err(format!(
            "a BatchNormalization layer in model '{}', which holds neither the Conv2D ('{encoder_model}') nor the Conv2DTranspose layers ('{decoder_model}')",
            b.model
        ));
    }
    Ok((enc, dec))
}

/// Every group's datasets by leaf name (`:0` suffixes dropped).
fn groups(datasets: BTreeMap<String, Array>) -> BTreeMap<String, BTreeMap<String, Array>> {
    let mut groups: BTreeMap<String, BTreeMap<String, Array>> = BTreeMap::new();
    for (p, t) in datasets {
        let (parent, leaf) = p.rsplit_once('/').unwrap_or(("", p.as_str()));
        let leaf = leaf.trim_end_matches(":0").to_string();
        groups
            .entry(parent.to_string())
            .or_default()
            .insert(leaf, t);
    }
    groups
}

/// Pairs kernels with biases by their group.
fn layers(
    path: &Path,
    groups: &BTreeMap<String, BTreeMap<String, Array>>,
) -> Result<Vec<KerasLayer>, ImportError> {
    let mut out = Vec::new();
    for (group, vars) in groups {
        let name = layer_name(group);
        if name.contains("batch_norm") {
            continue;
        }
        let get = |a: &str, b: &str| vars.get(a).or_else(|| vars.get(b)).cloned();
        let (Some(kernel), Some(bias)) = (get("kernel", "0"), get("bias", "1")) else {
            continue;
        };
        let group = group.clone();
        let Some(kind) = classify(&name, kernel.0.len()) else {
            continue;
        };
        if !group.starts_with("optimizer") {
            out.push(KerasLayer {
                path: group,
                kind,
                order: trailing_number(&name),
                name,
                kernel,
                bias,
            });
        }
    }
    if out.is_empty() {
        return Err(ImportError::Layout {
            path: path.into(),
            message: "no Keras layer weights (kernel + bias) found".into(),
        });
    }
    Ok(out)
}

fn tensor((shape, data): &Array) -> Tensor {
    Tensor::from_slice(data).view(shape.as_slice())
}

/// Reads a Keras weight file into `(state_dict key, tensor)` pairs for `config`'s model.
pub fn read_keras_weights(
    path: &Path,
    config: &RunConfig,
) -> Result<Vec<(String, Tensor)>, ImportError> {
    let bad = |message: String| ImportError::Layout {
        path: path.to_path_buf(),
        message,
    };
    let groups = groups(read_all(path)?);
    let all = layers(path, &groups)?;
    let bns = batch_norms(&groups);
    let m = &config.model;
    let [c, h, w] = m.shape_before_flattening();
    let flat = c * h * w;
    let latent = m.latent_dim;
    let by_kind = |kind| {
        let mut v: Vec<&KerasLayer> = all.iter().filter(|l| l.kind == kind).collect();
        v.sort_by_key(|l| l.order);
        v
    };
    let convs = by_kind(LayerKind::Conv);
    let deconvs = by_kind(LayerKind::ConvTranspose);
    let denses = by_kind(LayerKind::Dense);
    if convs.len() != m.encoder_conv_filters.len()
        || deconvs.len() != m.decoder_conv_t_filters.len()
    {
        return Err(bad(format!(
            "found {} Conv2D and {} Conv2DTranspose layers, the model has {} and {} (pass --config for another architecture)",
            convs.len(),
            deconvs.len(),
            m.encoder_conv_filters.len(),
            m.decoder_conv_t_filters.len()
        )));
    }
    // Encoder Dense kernels are (flat, latent); the decoder's is (latent, flat).
    let enc_dense: Vec<&&KerasLayer> = denses
        .iter()
        .filter(|l| l.kernel.0 == [flat, latent])
        .collect();
    let dec_dense: Vec<&&KerasLayer> = denses
        .iter()
        .filter(|l| l.kernel.0 == [latent, flat])
        .collect();
    if enc_dense.len() != 2 || dec_dense.len() != 1 {
        return Err(bad(format!(
            "expected two Dense ({flat}, {latent}) kernels (mu, log_var) and one ({latent}, {flat}) (decoder), found {:?}",
            denses.iter().map(|l| (&l.path, &l.kernel.0)).collect::<Vec<_>>()
        )));
    }
    // mu and log_var by name where the file keeps the book's names, else by creation order.
    let (mu, log_var) = match enc_dense.iter().position(|l| l.name.contains("log_var")) {
        Some(i) => (enc_dense[1 - i], enc_dense[i]),
        None => (enc_dense[0], enc_dense[1]),
    };

    let mut out = Vec::new();
    for (prefix, list) in [("encoder.conv", &convs), ("decoder.deconv", &deconvs)] {
        for (i, l) in list.iter().enumerate() {
            out.push((
                format!("{prefix}{}.weight", i + 1),
                tensor(&l.kernel).permute([3, 2, 0, 1]).contiguous(),
            ));
            out.push((format!("{prefix}{}.bias", i + 1), tensor(&l.bias)));
        }
    }
    for (key, l) in [("encoder.mu", mu), ("encoder.log_var", log_var)] {
        // (h*w*c, latent) rows in (h, w, c) order -> [latent, c*h*w].
        let k = tensor(&l.kernel)
            .view([h, w, c, latent])
            .permute([3, 2, 0, 1])
            .reshape([latent, flat]);
        out.push((format!("{key}.weight"), k));
        out.push((format!("{key}.bias"), tensor(&l.bias)));
    }
    let want_bns = if m.use_batch_norm {
        m.encoder_conv_filters.len() + m.decoder_conv_t_filters.len() - 1
    } else {
        0
    };
    if bns.len() != want_bns {
        return Err(bad(format!(
            "found {} BatchNormalization layers, the model has {want_bns} (use_batch_norm = {})",
            bns.len(),
            m.use_batch_norm
        )));
    }
    let n_enc = m.encoder_conv_filters.len();
    let (enc_bns, dec_bns) = split_batch_norms(
        bns,
        &container(&convs[0].path),
        &container(&deconvs[0].path),
        n_enc,
    )
    .map_err(&bad)?;
    if m.use_batch_norm && (enc_bns.len() != n_enc || dec_bns.len() + 1 != deconvs.len()) {
        return Err(bad(format!(
            "found {} BatchNormalization layers beside the Conv2D layers and {} beside the Conv2DTranspose layers, the model has {n_enc} and {}",
            enc_bns.len(),
            dec_bns.len(),
            deconvs.len() - 1
        )));
    }
    for (prefix, list) in [("encoder", &enc_bns), ("decoder", &dec_bns)] {
        for (i, bn) in list.iter().enumerate() {
            let key = format!("{prefix}.bn{}", i + 1);
            for (field, var) in ["weight", "bias", "running_mean", "running_var"]
                .iter()
                .zip(&bn.vars)
            {
                out.push((format!("{key}.{field}"), tensor(var)));
            }
        }
    }
    let d = dec_dense[0];
    for (l, want) in [(mu, latent), (log_var, latent), (d, flat)] {
        if l.bias.0 != [want] {
            return Err(bad(format!(
                "{}: bias of shape {:?}, the model needs [{want}]",
                l.path, l.bias.0
            )));
        }
    }
    // (latent, h*w*c) columns in (h, w, c) order -> [c*h*w, latent]; the bias likewise.
    let k = tensor(&d.kernel)
        .view([latent, h, w, c])
        .permute([3, 1, 2, 0])
        .reshape([flat, latent]);
    let b = tensor(&d.bias)
        .view([h, w, c])
        .permute([2, 0, 1])
        .reshape([flat]);
    out.push(("decoder.fc.weight".into(), k));
    out.push(("decoder.fc.bias".into(), b));
    Ok(out)
}

/// Creates the run folder `out` from a Keras weight file: config.toml (with epochs = 0), the
/// weights as a checkpoint, a fresh optimizer state. `export`, `train --resume` and the plots
/// accept it.
/// Unless `force`, weights with NaN or infinite values are refused (naming the tensor).
pub fn import(
    path: &Path,
    out: &Path,
    mut config: RunConfig,
    force: bool,
) -> Result<(), ImportError> {
    config.train.epochs = 0;
    config
        .validate()
        .map_err(checkpoint::CheckpointError::from)?;
    if out.join(checkpoint::CONFIG_FILE).exists() {
        return Err(ImportError::Layout {
            path: out.into(),
            message: "already holds a run; choose another --out".into(),
        });
    }
    let weights = read_keras_weights(path, &config)?;
    if let Some((name, bad, of)) = crate::model::non_finite(&weights)
        .first()
        .filter(|_| !force)
    {
        return Err(ImportError::Layout {
            path: path.into(),
            message: format!(
                "{name} has {bad} NaN or infinite values (of {of}); pass --force to import it anyway"
            ),
        });
    }
    let model = crate::model::build(&config, Device::Cpu, config.train.seed);
    model
        .load_state(&weights, path)
        .map_err(checkpoint::CheckpointError::from)?;
    std::fs::create_dir_all(out).map_err(|cause| ImportError::Io {
        path: out.into(),
        cause,
    })?;
    let cfg_path = out.join(checkpoint::CONFIG_FILE);
    crate::util::fsutil::write_atomic(&cfg_path, config.to_toml().as_bytes()).map_err(|cause| {
        ImportError::Io {
            path: cfg_path,
            cause,
        }
    })?;
    let opt = KerasAdam::new(model.trainable(), vec![config.optim.clone()], None);
    let state = TrainState::at(0, 0, config.train.seed);
    checkpoint::save(out, &model.state_dict(), &opt.state_tensors(), &state)?;
    Ok(())
}
