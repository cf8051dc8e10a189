//! `vae-tch summary`: a Keras-style `model.summary()` table of layers, output shapes and
//! parameter counts. Counts come from the model's own tensors; shapes are (None, c, h, w) in
//! torch's channel-first order. For the default model they equal Keras's: encoder 105,220,
//! decoder 102,017, total 207,237 (../shared/keras-semantics.md). BatchNormalization counts its
//! moving statistics as non-trainable parameters, as Keras does.
use crate::model::{BatchNorm, Vae};

#[derive(Debug, Clone, PartialEq)]
pub struct LayerRow {
    pub name: String,
    pub kind: &'static str,
    pub shape: Vec<i64>,
    pub params: i64,
    /// Of `params`, those no optimizer trains (BatchNorm's moving statistics).
    pub non_trainable: i64,
}

fn numel(ts: &[&tch::Tensor]) -> i64 {
    ts.iter().map(|t| t.numel() as i64).sum()
}

/// The encoder's rows then the decoder's.
pub fn layers(vae: &Vae) -> (Vec<LayerRow>, Vec<LayerRow>) {
    let cfg = &vae.config;
    let row = |name: String, kind, shape: Vec<i64>, params| LayerRow {
        name,
        kind,
        shape,
        params,
        non_trainable: 0,
    };
    let bn_row = |name: String, bn: &BatchNorm, shape: Vec<i64>| LayerRow {
        name,
        kind: "BatchNormalization",
        shape,
        params: numel(&[&bn.weight, &bn.bias, &bn.running_mean, &bn.running_var]),
        non_trainable: numel(&[&bn.running_mean, &bn.running_var]),
    };
    let dropout =
        |i: usize, shape: Vec<i64>| row(format!("dropout_{}", i + 1), "Dropout", shape, 0);
    let [c, h, w] = cfg.input_shape;
    let mut enc = vec![row("encoder_input".into(), "InputLayer", vec![c, h, w], 0)];
    for (i, (conv, (h, w))) in vae
        .encoder
        .convs
        .iter()
        .zip(cfg.encoder_sizes())
        .enumerate()
    {
        let f = conv.weight.size()[0];
        enc.push(row(
            format!("encoder.conv{}", i + 1),
            "Conv2D",
            vec![f, h, w],
            numel(&[&conv.weight, &conv.bias]),
        ));
        if let Some(bn) = vae.encoder.bns.get(i) {
            enc.push(bn_row(format!("encoder.bn{}", i + 1), bn, vec![f, h, w]));
        }
        enc.push(row(
            format!("leaky_relu_{}", i + 1),
            "LeakyReLU",
            vec![f, h, w],
            0,
        ));
        if cfg.use_dropout {
            enc.push(dropout(i, vec![f, h, w]));
        }
    }
    let flat: i64 = cfg.shape_before_flattening().iter().product();
    enc.push(row("flatten".into(), "Flatten", vec![flat], 0));
    let (mu, lv) = (&vae.encoder.mu, &vae.encoder.log_var);
    enc.push(row(
        "encoder.mu".into(),
        "Dense",
        vec![cfg.latent_dim],
        numel(&[&mu.weight, &mu.bias]),
    ));
    enc.push(row(
        "encoder.log_var".into(),
        "Dense",
        vec![cfg.latent_dim],
        numel(&[&lv.weight, &lv.bias]),
    ));
    enc.push(row(
        "encoder_output".into(),
        "Sampling",
        vec![cfg.latent_dim],
        0,
    ));

    let mut dec = vec![row(
        "decoder_input".into(),
        "InputLayer",
        vec![cfg.latent_dim],
        0,
    )];
    let fc = &vae.decoder.fc;
    dec.push(row(
        "decoder.fc".into(),
        "Dense",
        vec![flat],
        numel(&[&fc.weight, &fc.bias]),
    ));
    dec.push(row(
        "reshape".into(),
        "Reshape",
        cfg.shape_before_flattening().to_vec(),
        0,
    ));
    let last = vae.decoder.deconvs.len();
    for (i, (d, (h, w))) in vae
        .decoder
        .deconvs
        .iter()
        .zip(cfg.decoder_sizes())
        .enumerate()
    {
        let f = d.weight.size()[1];
        dec.push(row(
            format!("decoder.deconv{}", i + 1),
            "Conv2DTranspose",
            vec![f, h, w],
            numel(&[&d.weight, &d.bias]),
        ));
        if i + 1 == last {
            dec.push(row(
                format!("sigmoid_{}", i + 1),
                "Sigmoid",
                vec![f, h, w],
                0,
            ));
            continue;
        }
        if let Some(bn) = vae.decoder.bns.get(i) {
            dec.push(bn_row(format!("decoder.bn{}", i + 1), bn, vec![f, h, w]));
        }
        dec.push(row(
            format!("leaky_relu_{}", i + 1),
            "LeakyReLU",
            vec![f, h, w],
            0,
        ));
        if cfg.use_dropout {
            dec.push(dropout(i, vec![f, h, w]));
        }
    }
    (enc, dec)
}

/// (encoder, decoder) parameter counts, as Keras's `count_params()` (moving statistics included).
pub fn counts(vae: &Vae) -> (i64, i64) {
    let (e, d) = layers(vae);
    (
        e.iter().map(|r| r.params).sum(),
        d.iter().map(|r| r.params).sum(),
    )
}

/// (encoder, decoder) non-trainable parameter counts (BatchNorm's moving statistics).
pub fn non_trainable_counts(vae: &Vae) -> (i64, i64) {
    let (e, d) = layers(vae);
    (
        e.iter().map(|r| r.non_trainable).sum(),
        d.iter().map(|r| r.non_trainable).sum(),
    )
}

/// 207237 -> "207,237".
pub fn thousands(n: i64) -> String {
    let s = n.abs().to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn table(title: &str, rows: &[LayerRow]) -> String {
    let shape = |s: &[i64]| {
        let parts: Vec<String> = std::iter::once("None".to_string())
            .chain(s.iter().map(|d| d.to_string()))
            .collect();
        format!("({})", parts.join(", "))
    };
    let cells: Vec<[String; 3]> = rows
        .iter()
        .map(|r| {
            [
                format!("{} ({})", r.name, r.kind),
                shape(&r.shape),
                thousands(r.params),
            ]
        })
        .collect();
    let head = [
        "Layer (type)".to_string(),
        "Output Shape".into(),
        "Param #".into(),
    ];
    let mut width = [0usize; 3];
    for c in cells.iter().chain(std::iter::once(&head)) {
        for (w, s) in width.iter_mut().zip(c) {
            *w = (*w).max(s.len());
        }
    }
    let line = |ch: &str| ch.repeat(width.iter().sum::<usize>() + 6);
    let fmt = |c: &[String; 3]| {
        format!(
            "{:<w0$}   {:<w1$}   {:>w2$}\n",
            c[0],
            c[1],
            c[2],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2]
        )
    };
    let mut out = format!(
        "Model: \"{title}\"\n{}\n{}{}\n",
        line("_"),
        fmt(&head),
        line("=")
    );
    for c in &cells {
        out += &fmt(c);
    }
    let total: i64 = rows.iter().map(|r| r.params).sum();
    let frozen: i64 = rows.iter().map(|r| r.non_trainable).sum();
    out += &format!(
        "{}\nTotal params: {}\nTrainable params: {}\nNon-trainable params: {}\n",
        line("="),
        thousands(total),
        thousands(total - frozen),
        thousands(frozen)
    );
    out
}

/// The whole summary: encoder table, decoder table, VAE total.
pub fn render(vae: &Vae) -> String {
    let (e, d) = layers(vae);
    let (ne, nd) = counts(vae);
    format!(
        "{}\n{}\nVAE total params: {} (encoder {} + decoder {})\n",
        table("encoder", &e),
        table("decoder", &d),
        thousands(ne + nd),
        thousands(ne),
        thousands(nd)
    )
}
