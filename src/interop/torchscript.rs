//! The exported TorchScript modules of a `Vae`, built as real modules (crate::interop::script): every
//! layer is a submodule with its `weight` and `bias` as parameters, so `state_dict()` keys are
//! the model.safetensors keys (`encoder.conv1.weight`, ...), the parameters train, and
//! `.eval()`, `.double()` and `.to(device)` work as on any module. The methods are TorchScript
//! source generated from the model config, written for a reader: `torch.conv2d`,
//! `torch.conv_transpose2d`, `torch.linear`, `torch.leaky_relu(x, 0.3)`, and the TF 'same'
//! padding as an explicit `torch.constant_pad_nd`. The numbers are the Rust model's (the
//! same ops), checked by tests/export.rs and tests/python/test_export.py.
//!
//! Three roots: `encoder.pt` (submodule `encoder`), `decoder.pt` (submodule `decoder`) and
//! `vae.pt` (both, with `forward`, `encode`, `decode`, `reparameterize` and `sample`). Each root
//! checks its inputs (a floating dtype, the rank, the channels and the size, or the latent
//! size) with a message that says what it expected and what came. With its `check_range`
//! attribute set, it also checks that the image values lie in [0, 1]. Latent points in float16
//! or bfloat16 (what the encoder gives under `torch.autocast`) are taken by a float32 model and
//! widened (no loss): TorchScript cannot ask whether autocast is on (`torch.is_autocast_cpu_
//! enabled()` in a scripted function crashed the process under CPU autocast, torch 2.11).
use tch::TchError;

use crate::config::VaeConfig;
use crate::interop::script::ScriptModule;
use crate::model::{
    conv_padding, conv_t_padding, BatchNorm, Conv, ConvTranspose, Dense, Vae, BN_EPSILON,
    BN_MOMENTUM,
};

/// A float as a TorchScript literal (always with a decimal point).
fn lit(x: f64) -> String {
    let s = format!("{x:?}");
    if s.contains(['.', 'e', 'E']) {
        s
    } else {
        format!("{s}.0")
    }
}

/// A leaf layer module (weight and bias) with one `forward`.
fn layer(
    class: &str,
    weight: &tch::Tensor,
    bias: &tch::Tensor,
    body: &str,
) -> Result<ScriptModule, TchError> {
    let mut m = ScriptModule::new(class)?;
    m.parameter("weight", weight)?.parameter("bias", bias)?;
    m.define(&format!("def forward(self, x: Tensor) -> Tensor:\n{body}"))?;
    Ok(m)
}

/// Keras Conv2D(padding='same') on an input of `n` (h, w), padded as the Rust model's NCHW
/// layout does (`model::conv_padding`): the symmetric part in the conv, the odd pixel after.
fn conv(class: &str, c: &Conv, (h, w): (i64, i64)) -> Result<ScriptModule, TchError> {
    let k = c.weight.size()[2];
    let s = c.stride;
    let (ph, t, b) = conv_padding(h, k, s, false);
    let (pw, l, r) = conv_padding(w, k, s, false);
    let pad = if [t, b, l, r].iter().any(|&e| e != 0) {
        format!("    x = torch.constant_pad_nd(x, [{l}, {r}, {t}, {b}], 0.0)\n")
    } else {
        String::new()
    };
    let body = format!(
        "{pad}    return torch.conv2d(x, self.weight, self.bias, [{s}, {s}], [{ph}, {pw}])\n"
    );
    layer(class, &c.weight, &c.bias, &body)
}

/// Keras Conv2DTranspose(padding='same'): output (h * s, w * s), as the Rust model's NCHW layout
/// computes it (`model::conv_t_padding`): an odd crop is one zero row and column before the
/// input, then symmetric padding with output_padding cutting exactly TF's window.
fn conv_transpose(class: &str, c: &ConvTranspose) -> Result<ScriptModule, TchError> {
    let k = c.weight.size()[2];
    let s = c.stride;
    let (p, op, before) =
        conv_t_padding(k, s, false).expect("every transposed conv has an unflipped form");
    let pad = if before > 0 {
        format!("    x = torch.constant_pad_nd(x, [{before}, 0, {before}, 0], 0.0)\n")
    } else {
        String::new()
    };
    let body = format!(
        "{pad}    return torch.conv_transpose2d(x, self.weight, self.bias, [{s}, {s}], [{p}, {p}], [{op}, {op}])\n"
    );
    layer(class, &c.weight, &c.bias, &body)
}

fn dense(class: &str, d: &Dense) -> Result<ScriptModule, TchError> {
    layer(
        class,
        &d.weight,
        &d.bias,
        "    return torch.linear(x, self.weight, self.bias)\n",
    )
}

/// Keras BatchNormalization (model::BatchNorm): in training, batch statistics and Keras's
/// moving-average update with the biased variance; in eval, the moving statistics.
fn batch_norm(class: &str, bn: &BatchNorm) -> Result<ScriptModule, TchError> {
    let mut m = ScriptModule::new(class)?;
    m.parameter("weight", &bn.weight)?
        .parameter("bias", &bn.bias)?
        .buffer("running_mean", &bn.running_mean)?
        .buffer("running_var", &bn.running_var)?;
    let (mom, keep, eps) = (lit(1.0 - BN_MOMENTUM), lit(BN_MOMENTUM), lit(BN_EPSILON));
    m.define(&format!(
        r#"def forward(self, x: Tensor) -> Tensor:
    if self.training:
        var, mean = torch.var_mean(x, [0, 2, 3], correction=0)
        self.running_mean.copy_(self.running_mean * {keep} + mean.detach() * {mom})
        self.running_var.copy_(self.running_var * {keep} + var.detach() * {mom})
        return torch.batch_norm(x, self.weight, self.bias, None, None, True, 0.0, {eps}, True)
    return torch.batch_norm(x, self.weight, self.bias, self.running_mean, self.running_var, False, 0.0, {eps}, True)
"#
    ))?;
    Ok(m)
}

/// The activation block after a conv: BatchNorm, LeakyReLU, Dropout as the config has them.
fn block(
    m: &mut ScriptModule,
    prefix: &str,
    i: usize,
    bn: Option<&BatchNorm>,
    cfg: &VaeConfig,
) -> Result<String, TchError> {
    let mut body = String::new();
    if let Some(bn) = bn {
        let name = format!("bn{}", i + 1);
        m.submodule(
            &name,
            &batch_norm(&format!("vae_tch.{prefix}.Bn{}", i + 1), bn)?,
        )?;
        body += &format!("    x = self.{name}.forward(x)\n");
    }
    body += &format!(
        "    x = torch.leaky_relu(x, {})\n",
        lit(cfg.leaky_relu_slope)
    );
    if cfg.use_dropout {
        body += &format!(
            "    x = torch.dropout(x, {}, self.training)\n",
            lit(cfg.dropout_rate)
        );
    }
    Ok(body)
}

fn encoder(vae: &Vae) -> Result<ScriptModule, TchError> {
    let cfg = &vae.config;
    let mut m = ScriptModule::new("vae_tch.Encoder")?;
    let mut size = (cfg.input_shape[1], cfg.input_shape[2]);
    let mut body = String::new();
    for (i, (c, out)) in vae
        .encoder
        .convs
        .iter()
        .zip(cfg.encoder_sizes())
        .enumerate()
    {
        let name = format!("conv{}", i + 1);
        m.submodule(
            &name,
            &conv(&format!("vae_tch.encoder.Conv{}", i + 1), c, size)?,
        )?;
        body += &format!("    x = self.{name}.forward(x)\n");
        body += &block(&mut m, "encoder", i, vae.encoder.bns.get(i), cfg)?;
        size = out;
    }
    m.submodule("mu", &dense("vae_tch.encoder.Mu", &vae.encoder.mu)?)?;
    m.submodule(
        "log_var",
        &dense("vae_tch.encoder.LogVar", &vae.encoder.log_var)?,
    )?;
    m.define(&format!(
        "def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:\n{body}    \
         x = torch.flatten(x, 1)\n    return self.mu.forward(x), self.log_var.forward(x)\n"
    ))?;
    Ok(m)
}

fn decoder(vae: &Vae) -> Result<ScriptModule, TchError> {
    let cfg = &vae.config;
    let [c, h, w] = cfg.shape_before_flattening();
    let mut m = ScriptModule::new("vae_tch.Decoder")?;
    m.submodule("fc", &dense("vae_tch.decoder.Fc", &vae.decoder.fc)?)?;
    let mut body = format!("    x = self.fc.forward(z).reshape([-1, {c}, {h}, {w}])\n");
    let last = vae.decoder.deconvs.len();
    for (i, d) in vae.decoder.deconvs.iter().enumerate() {
        let name = format!("deconv{}", i + 1);
        let class = format!("vae_tch.decoder.Deconv{}", i + 1);
        m.submodule(&name, &conv_transpose(&class, d)?)?;
        if i + 1 == last {
            body += &format!("    return torch.sigmoid(self.{name}.forward(x))\n");
        } else {
            body += &format!("    x = self.{name}.forward(x)\n");
            body += &block(&mut m, "decoder", i, vae.decoder.bns.get(i), cfg)?;
        }
    }
    m.define(&format!("def forward(self, z: Tensor) -> Tensor:\n{body}"))?;
    Ok(m)
}

/// What a root module takes: images (encoder.pt), latent points (decoder.pt), or both (vae.pt).
#[derive(Clone, Copy, PartialEq)]
enum Takes {
    Images,
    Latent,
    Both,
}

/// The input checks of a root (see the module header). The expected dtype is the weights'
/// (`self.encoder.conv1.weight`, `self.decoder.fc.weight`), so `.double()` moves it along. An
/// empty batch passes the range check (nothing to check).
fn checks(cfg: &VaeConfig, takes: Takes) -> String {
    let [c, h, w] = cfg.input_shape;
    let l = cfg.latent_dim;
    let mut src = String::from(
        r#"def _dtype_name(self, dtype: int) -> str:
    names = ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "complex32", "complex64", "complex128", "bool", "qint8", "quint8", "qint32", "bfloat16"]
    if dtype >= 0 and dtype < len(names):
        return names[dtype]
    return "dtype {}".format(dtype)
"#,
    );
    if takes != Takes::Latent {
        src += &format!(
            r#"
def _check_images(self, x: Tensor, who: str):
    want = self.encoder.conv1.weight.dtype
    ok = x.dtype == want and x.dim() == 4
    if ok:
        ok = x.size(1) == {c} and x.size(2) == {h} and x.size(3) == {w}
    assert ok, "vae-tch {{}}: expected {{}} images [N, {c}, {h}, {w}] (the model's dtype) with values in [0, 1], got {{}} {{}}".format(who, self._dtype_name(want), self._dtype_name(x.dtype), x.shape)
    if self.check_range and x.numel() > 0:
        lo = float(x.min())
        hi = float(x.max())
        assert lo >= 0.0 and hi <= 1.0, "vae-tch {{}}: expected image values in [0, 1] (check_range is on), got values in [{{}}, {{}}]".format(who, lo, hi)
"#
        );
    }
    if takes != Takes::Images {
        src += &format!(
            r#"
def _latent(self, z: Tensor, who: str) -> Tensor:
    want = self.decoder.fc.weight.dtype
    half = want == 6 and (z.dtype == 5 or z.dtype == 15)
    ok = (z.dtype == want or half) and z.dim() == 2
    if ok:
        ok = z.size(1) == {l}
    assert ok, "vae-tch {{}}: expected {{}} latent points [N, {l}] (the model's dtype), got {{}} {{}}".format(who, self._dtype_name(want), self._dtype_name(z.dtype), z.shape)
    if half:
        return z.to(want)
    return z
"#
        );
    }
    src
}

/// A root with its submodules, the input checks and `check_range` (off).
fn root(class: &str, vae: &Vae, takes: Takes) -> Result<ScriptModule, TchError> {
    let mut m = ScriptModule::new(class)?;
    m.bool_attribute("check_range", false)?;
    if takes != Takes::Latent {
        m.submodule("encoder", &encoder(vae)?)?;
    }
    if takes != Takes::Images {
        m.submodule("decoder", &decoder(vae)?)?;
    }
    m.define(&checks(&vae.config, takes))?;
    Ok(m)
}

/// encoder.pt: images -> (mu, log_var).
pub fn encoder_module(vae: &Vae) -> Result<ScriptModule, TchError> {
    let mut m = root("vae_tch.EncoderModel", vae, Takes::Images)?;
    m.define(
        "def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:\n    \
         self._check_images(x, \"encoder\")\n    return self.encoder.forward(x)\n",
    )?;
    Ok(m)
}

/// decoder.pt: z -> images.
pub fn decoder_module(vae: &Vae) -> Result<ScriptModule, TchError> {
    let mut m = root("vae_tch.DecoderModel", vae, Takes::Latent)?;
    m.define(
        "def forward(self, z: Tensor) -> Tensor:\n    \
         return self.decoder.forward(self._latent(z, \"decoder\"))\n",
    )?;
    Ok(m)
}

/// vae.pt: the whole workflow.
pub fn vae_module(vae: &Vae) -> Result<ScriptModule, TchError> {
    let mut m = root("vae_tch.VAE", vae, Takes::Both)?;
    let l = vae.config.latent_dim;
    m.define(&format!(
        r#"def forward(self, x: Tensor) -> Tensor:
    self._check_images(x, "vae")
    return self.decoder.forward(self.encoder.forward(x)[0])

def encode(self, x: Tensor) -> Tuple[Tensor, Tensor]:
    self._check_images(x, "vae.encode")
    return self.encoder.forward(x)

def decode(self, z: Tensor) -> Tensor:
    return self.decoder.forward(self._latent(z, "vae.decode"))

def reparameterize(self, mu: Tensor, log_var: Tensor) -> Tensor:
    return mu + torch.exp(log_var * 0.5) * torch.randn_like(mu)

def sample(self, n: int) -> Tensor:
    w = self.decoder.fc.weight
    return self.decoder.forward(torch.randn([n, {l}], dtype=w.dtype, device=w.device))
"#
    ))?;
    Ok(m)
}
