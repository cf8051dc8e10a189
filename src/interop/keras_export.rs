//! `vae-tch export --keras`: a run as the book's own run-folder layout, which its code loads with
//! `load_model(VariationalAutoencoder, folder)` (davidADSP/GDL_code, master, utils/loaders.py):
//! - `params.pkl`: the 10 constructor arguments as a pickle (protocol 2, written here with the
//!   handful of opcodes a list of ints, bools and one tuple needs);
//! - `weights/weights.h5`: the Keras-2 HDF5 weight layout of the book's VAE, which Keras loads
//!   **by position**: root attributes `layer_names` (every layer, weightless ones too),
//!   `backend` and `keras_version` (without a version Keras 2 takes the file for Keras 1 and
//!   transposes every Conv2DTranspose kernel), one group per layer with `weight_names`; the
//!   decoder, a nested model, is one group with its trainable weights first and its
//!   BatchNormalization moving statistics last;
//! - `vae.weights.h5`: the same weights in Keras 3's own format (`layers/<class>[_k]/vars/<i>`),
//!   for the book's model built with today's Keras.
//!
//! Layouts are the exact inverse of `import-keras` (../shared/keras-semantics.md): Conv2D kernels
//! (kh, kw, in, out), Conv2DTranspose (kh, kw, out, in), Dense (in, out) with the (h, w, c)
//! flatten order.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hdf5_pure::{AttrValue, FileBuilder};
use tch::{Kind, Tensor};

use crate::config::RunConfig;

/// The Keras version written into weights.h5: the book's own (requirements.txt, master).
pub const KERAS_VERSION: &str = "2.2.4";

#[derive(Debug, thiserror::Error)]
pub enum KerasExportError {
    #[error("the model has no {0} (a state_dict key vae-tch always writes)")]
    Missing(String),
    #[error("{path}: {message}")]
    Write { path: PathBuf, message: String },
}

/// One weight as Keras holds it: its name in the file and its value in Keras's layout.
pub struct Weight {
    pub name: String,
    pub shape: Vec<u64>,
    pub data: Vec<f32>,
}

/// A layer of the book's top model, in order, with its weights in `layer.weights` order.
pub struct Layer {
    pub name: String,
    pub weights: Vec<Weight>,
}

fn weight(name: String, t: &Tensor) -> Weight {
    let t = t.to_kind(Kind::Float).contiguous();
    Weight {
        name,
        shape: t.size().iter().map(|&d| d as u64).collect(),
        data: Vec::<f32>::try_from(&t.view(-1)).expect("float"),
    }
}

/// The book's VAE (models/VAE.py as `_build` wires it, with Keras 2's global layer counters)
/// as a list of layers with their weights, from a vae-tch state_dict.
pub fn book_layers(
    cfg: &RunConfig,
    state: &[(String, Tensor)],
) -> Result<Vec<Layer>, KerasExportError> {
    let s: HashMap<&str, &Tensor> = state.iter().map(|(k, t)| (k.as_str(), t)).collect();
    let get = |k: &str| -> Result<&Tensor, KerasExportError> {
        s.get(k)
            .copied()
            .ok_or_else(|| KerasExportError::Missing(k.into()))
    };
    let m = &cfg.model;
    let [c, h, w] = m.shape_before_flattening();
    let latent = m.latent_dim;
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut next = |kind: &'static str| {
        let n = count.entry(kind).or_insert(0);
        *n += 1;
        format!("{kind}_{n}")
    };
    let bn = |name: &str, prefix: &str| -> Result<(Vec<Weight>, Vec<Weight>), KerasExportError> {
        let t = |f: &str| get(&format!("{prefix}.{f}"));
        Ok((
            vec![
                weight(format!("{name}/gamma:0"), t("weight")?),
                weight(format!("{name}/beta:0"), t("bias")?),
            ],
            vec![
                weight(format!("{name}/moving_mean:0"), t("running_mean")?),
                weight(format!("{name}/moving_variance:0"), t("running_var")?),
            ],
        ))
    };
    let mut layers = vec![Layer {
        name: "encoder_input".into(),
        weights: Vec::new(),
    }];
    for i in 0..m.encoder_conv_filters.len() {
        let name = format!("encoder_conv_{i}");
        let k = get(&format!("encoder.conv{}.weight", i + 1))?.permute([2, 3, 1, 0]);
        let b = get(&format!("encoder.conv{}.bias", i + 1))?;
        layers.push(Layer {
            weights: vec![
                weight(format!("{name}/kernel:0"), &k),
                weight(format!("{name}/bias:0"), b),
            ],
            name,
        });
        if m.use_batch_norm {
            let name = next("batch_normalization");
            let (mut ws, stats) = bn(&name, &format!("encoder.bn{}", i + 1))?;
            ws.extend(stats);
            layers.push(Layer { name, weights: ws });
        }
        layers.push(Layer {
            name: next("leaky_re_lu"),
            weights: Vec::new(),
        });
        if m.use_dropout {
            layers.push(Layer {
                name: next("dropout"),
                weights: Vec::new(),
            });
        }
    }
    layers.push(Layer {
        name: next("flatten"),
        weights: Vec::new(),
    });
    for name in ["mu", "log_var"] {
        // [latent, c*h*w] in (c, h, w) order -> (h*w*c, latent) in (h, w, c) order.
        let k = get(&format!("encoder.{name}.weight"))?
            .reshape([latent, c, h, w])
            .permute([2, 3, 1, 0])
            .reshape([h * w * c, latent]);
        let b = get(&format!("encoder.{name}.bias"))?;
        layers.push(Layer {
            name: name.into(),
            weights: vec![
                weight(format!("{name}/kernel:0"), &k),
                weight(format!("{name}/bias:0"), b),
            ],
        });
    }
    layers.push(Layer {
        name: "encoder_output".into(),
        weights: Vec::new(),
    });
    // The decoder, one nested model: trainable weights in layer order, then the moving stats.
    let (mut trainable, mut stats) = (Vec::new(), Vec::new());
    let k = get("decoder.fc.weight")?
        .reshape([c, h, w, latent])
        .permute([3, 1, 2, 0])
        .reshape([latent, h * w * c]);
    let b = get("decoder.fc.bias")?
        .reshape([c, h, w])
        .permute([1, 2, 0])
        .reshape([-1]);
    trainable.push(weight("decoder_dense/kernel:0".into(), &k));
    trainable.push(weight("decoder_dense/bias:0".into(), &b));
    let n = m.decoder_conv_t_filters.len();
    for i in 0..n {
        let name = format!("decoder_conv_t_{i}");
        let k = get(&format!("decoder.deconv{}.weight", i + 1))?.permute([2, 3, 1, 0]);
        trainable.push(weight(format!("{name}/kernel:0"), &k));
        trainable.push(weight(
            format!("{name}/bias:0"),
            get(&format!("decoder.deconv{}.bias", i + 1))?,
        ));
        if i + 1 < n && m.use_batch_norm {
            let (ws, st) = bn(
                &next("batch_normalization"),
                &format!("decoder.bn{}", i + 1),
            )?;
            trainable.extend(ws);
            stats.extend(st);
        }
    }
    trainable.extend(stats);
    layers.push(Layer {
        name: "decoder".into(),
        weights: trainable,
    });
    Ok(layers)
}

/// The Keras-2 HDF5 weight file of `layers` (what Keras 2's `save_weights` writes).
pub fn weights_h5(layers: &[Layer]) -> Result<Vec<u8>, hdf5_pure::Error> {
    let mut fb = FileBuilder::new();
    let names: Vec<String> = layers.iter().map(|l| l.name.clone()).collect();
    fb.set_attr("layer_names", AttrValue::AsciiStringArray(names));
    fb.set_attr("backend", AttrValue::AsciiString("tensorflow".into()));
    fb.set_attr(
        "keras_version",
        AttrValue::AsciiString(KERAS_VERSION.into()),
    );
    for layer in layers {
        let mut g = fb.create_group(&layer.name);
        let weight_names: Vec<String> = layer.weights.iter().map(|w| w.name.clone()).collect();
        // Keras writes an empty list for a weightless layer (h5py stores it as float64).
        g.set_attr(
            "weight_names",
            if weight_names.is_empty() {
                AttrValue::F64Array(Vec::new())
            } else {
                AttrValue::AsciiStringArray(weight_names)
            },
        );
        // `<sub>/<leaf>`: one group per Keras layer the weight belongs to, in first-seen order.
        let mut subs: Vec<(String, Vec<&Weight>)> = Vec::new();
        for w in &layer.weights {
            let (sub, _) = w.name.split_once('/').expect("layer/leaf");
            match subs.iter_mut().find(|(s, _)| s == sub) {
                Some((_, v)) => v.push(w),
                None => subs.push((sub.to_string(), vec![w])),
            }
        }
        for (sub, ws) in subs {
            let mut sg = g.create_group(&sub);
            for w in ws {
                let leaf = w.name.split_once('/').expect("layer/leaf").1;
                sg.create_dataset(leaf)
                    .with_f32_data(&w.data)
                    .with_shape(&w.shape);
            }
            g.add_group(sg.finish());
        }
        fb.add_group(g.finish());
    }
    fb.finish()
}

/// One layer of a Keras 3 `.weights.h5`: its key (`layers/<class>[_k]`, counted per class
/// within its model), its name and its variables in order.
struct Keras3Layer<'a> {
    key: String,
    name: String,
    vars: Vec<&'a Weight>,
}

/// The Keras 3 `.weights.h5` of the book's VAE as Keras 3 builds it (the encoder's layers in the
/// top model, a Lambda for z, the decoder nested as a Functional): `layers/<key>/vars/<i>`, each
/// `vars` group naming its layer, the decoder under `layers/functional/layers/...`, and the top
/// model's own `vars`. The values are those of `layers` (book_layers), by weight name.
pub fn keras3_h5<'a>(cfg: &RunConfig, layers: &'a [Layer]) -> Result<Vec<u8>, hdf5_pure::Error> {
    let mut by_name: HashMap<&str, &'a Weight> = HashMap::new();
    for l in layers {
        for w in &l.weights {
            by_name.insert(w.name.as_str(), w);
        }
    }
    let vars =
        |names: &[String]| -> Vec<&Weight> { names.iter().map(|n| by_name[n.as_str()]).collect() };
    let kb = |layer: &str| vec![format!("{layer}/kernel:0"), format!("{layer}/bias:0")];
    let bn = |layer: &str| {
        ["gamma", "beta", "moving_mean", "moving_variance"]
            .map(|v| format!("{layer}/{v}:0"))
            .to_vec()
    };
    let m = &cfg.model;
    // Keras 2 names of the BatchNormalization layers, in creation order (as book_layers named them).
    let mut bn_names = layers
        .iter()
        .flat_map(|l| &l.weights)
        .filter_map(|w| w.name.strip_suffix("/gamma:0"))
        .map(String::from)
        .collect::<Vec<_>>()
        .into_iter();
    struct Keys(HashMap<&'static str, usize>);
    impl Keys {
        fn key(&mut self, class: &'static str) -> String {
            let n = self.0.entry(class).or_insert(0);
            *n += 1;
            if *n == 1 {
                class.to_string()
            } else {
                format!("{class}_{}", *n - 1)
            }
        }
    }
    let layer =
        |keys: &mut Keys, class: &'static str, name: &str, v: Vec<&'a Weight>| Keras3Layer {
            key: keys.key(class),
            name: name.to_string(),
            vars: v,
        };
    let mut keys = Keys(HashMap::new());
    let mut top = vec![layer(&mut keys, "input_layer", "encoder_input", Vec::new())];
    for i in 0..m.encoder_conv_filters.len() {
        let conv = format!("encoder_conv_{i}");
        top.push(layer(&mut keys, "conv2d", &conv, vars(&kb(&conv))));
        if m.use_batch_norm {
            let b = bn_names.next().expect("a BN per conv");
            top.push(layer(&mut keys, "batch_normalization", &b, vars(&bn(&b))));
        }
        top.push(layer(&mut keys, "leaky_re_lu", "leaky_re_lu", Vec::new()));
        if m.use_dropout {
            top.push(layer(&mut keys, "dropout", "dropout", Vec::new()));
        }
    }
    top.push(layer(&mut keys, "flatten", "flatten", Vec::new()));
    top.push(layer(&mut keys, "dense", "mu", vars(&kb("mu"))));
    top.push(layer(&mut keys, "dense", "log_var", vars(&kb("log_var"))));
    top.push(layer(&mut keys, "lambda", "encoder_output", Vec::new()));
    let mut dkeys = Keys(HashMap::new());
    let mut dec = vec![
        layer(&mut dkeys, "input_layer", "decoder_input", Vec::new()),
        layer(
            &mut dkeys,
            "dense",
            "decoder_dense",
            vars(&kb("decoder_dense")),
        ),
        layer(&mut dkeys, "reshape", "reshape", Vec::new()),
    ];
    let n = m.decoder_conv_t_filters.len();
    for i in 0..n {
        let conv = format!("decoder_conv_t_{i}");
        dec.push(layer(
            &mut dkeys,
            "conv2d_transpose",
            &conv,
            vars(&kb(&conv)),
        ));
        if i + 1 < n {
            if m.use_batch_norm {
                let b = bn_names.next().expect("a BN per conv but the last");
                dec.push(layer(&mut dkeys, "batch_normalization", &b, vars(&bn(&b))));
            }
            dec.push(layer(&mut dkeys, "leaky_re_lu", "leaky_re_lu", Vec::new()));
            if m.use_dropout {
                dec.push(layer(&mut dkeys, "dropout", "dropout", Vec::new()));
            }
        } else {
            dec.push(layer(&mut dkeys, "activation", "activation", Vec::new()));
        }
    }
    fn add(parent: &mut hdf5_pure::GroupBuilder, l: &Keras3Layer) {
        let mut g = parent.create_group(&l.key);
        let mut v = g.create_group("vars");
        v.set_attr("name", AttrValue::String(l.name.clone()));
        for (i, w) in l.vars.iter().enumerate() {
            v.create_dataset(&i.to_string())
                .with_f32_data(&w.data)
                .with_shape(&w.shape);
        }
        g.add_group(v.finish());
        parent.add_group(g.finish());
    }
    let mut fb = FileBuilder::new();
    let mut lg = fb.create_group("layers");
    for l in &top {
        add(&mut lg, l);
    }
    let mut func = lg.create_group(&keys.key("functional"));
    let mut flg = func.create_group("layers");
    for l in &dec {
        add(&mut flg, l);
    }
    func.add_group(flg.finish());
    let mut fv = func.create_group("vars");
    fv.set_attr("name", AttrValue::String("decoder".into()));
    func.add_group(fv.finish());
    lg.add_group(func.finish());
    fb.add_group(lg.finish());
    let mut v = fb.create_group("vars");
    v.set_attr("name", AttrValue::String("vae".into()));
    fb.add_group(v.finish());
    fb.finish()
}

/// `params.pkl`: the book's 10 constructor arguments, `[input_dim (a tuple), encoder filters,
/// kernel sizes, strides, decoder filters, kernel sizes, strides, z_dim, use_batch_norm,
/// use_dropout]`, as pickle protocol 2.
pub fn params_pickle(cfg: &RunConfig) -> Vec<u8> {
    fn int(out: &mut Vec<u8>, v: i64) {
        if (0..256).contains(&v) {
            out.extend([b'K', v as u8]); // BININT1
        } else if (0..65536).contains(&v) {
            out.push(b'M'); // BININT2
            out.extend((v as u16).to_le_bytes());
        } else {
            out.push(b'J'); // BININT (signed 32-bit)
            out.extend((v as i32).to_le_bytes());
        }
    }
    fn list(out: &mut Vec<u8>, vs: &[i64]) {
        out.extend([b']', b'(']); // EMPTY_LIST, MARK
        for &v in vs {
            int(out, v);
        }
        out.push(b'e'); // APPENDS
    }
    let m = &cfg.model;
    let [c, h, w] = m.input_shape;
    let mut out = vec![0x80, 2]; // PROTO 2
    out.extend([b']', b'(']);
    out.push(b'('); // MARK: the input_dim tuple (h, w, c)
    for v in [h, w, c] {
        int(&mut out, v);
    }
    out.push(b't'); // TUPLE
    for l in [
        &m.encoder_conv_filters,
        &m.encoder_conv_kernel_size,
        &m.encoder_conv_strides,
        &m.decoder_conv_t_filters,
        &m.decoder_conv_t_kernel_size,
        &m.decoder_conv_t_strides,
    ] {
        list(&mut out, l);
    }
    int(&mut out, m.latent_dim);
    for b in [m.use_batch_norm, m.use_dropout] {
        out.push(if b { 0x88 } else { 0x89 }); // NEWTRUE / NEWFALSE
    }
    out.extend([b'e', b'.']); // APPENDS, STOP
    out
}

/// Writes `params.pkl`, `weights/weights.h5` (Keras 2) and `vae.weights.h5` (Keras 3) into
/// `out`; returns the files written.
pub fn write(
    cfg: &RunConfig,
    state: &[(String, Tensor)],
    out: &Path,
) -> Result<Vec<PathBuf>, KerasExportError> {
    let fail = |path: &Path, message: String| KerasExportError::Write {
        path: path.to_path_buf(),
        message,
    };
    let layers = book_layers(cfg, state)?;
    let h5 = out.join("weights").join("weights.h5");
    let bytes = weights_h5(&layers).map_err(|e| fail(&h5, e.to_string()))?;
    std::fs::create_dir_all(h5.parent().expect("weights/"))
        .map_err(|e| fail(&h5, e.to_string()))?;
    crate::util::fsutil::write_atomic(&h5, &bytes).map_err(|e| fail(&h5, e.to_string()))?;
    let k3 = out.join("vae.weights.h5");
    let bytes = keras3_h5(cfg, &layers).map_err(|e| fail(&k3, e.to_string()))?;
    crate::util::fsutil::write_atomic(&k3, &bytes).map_err(|e| fail(&k3, e.to_string()))?;
    let pkl = out.join("params.pkl");
    crate::util::fsutil::write_atomic(&pkl, &params_pickle(cfg))
        .map_err(|e| fail(&pkl, e.to_string()))?;
    Ok(vec![pkl, h5, k3])
}
