"""PyTorch reference of the vae-tch model: the Keras VAE of Foster, "Generative Deep Learning",
ch. 3, in plain PyTorch with Keras semantics:

- Conv2D 'same' as TF pads it: the odd pixel after (stride 2: 0 before, 1 after);
- Conv2DTranspose 'same': the full transposed conv, cropped (k - s) // 2 before, the rest after;
- LeakyReLU slope 0.3; glorot-uniform kernels, zero biases;
- for the faces model, BatchNormalization with Keras's momentum 0.99, epsilon 1e-3 and moving
  variance updated with the biased variance (KerasBatchNorm2d), and Dropout.

Its state_dict keys are exactly the tensor names in model.safetensors. In an export folder (this
file, config.json, config.toml and model.safetensors travel together):

    from vae_torch import VAE
    model = VAE.from_pretrained(".")                  # the folder; eval mode

or, with fresh weights, `VAE.from_config("config.json")`. The encoder and decoder check their
inputs (dtype, rank, sizes; the value range with `check_range = True`) and raise ValueError.

Runs on Python 3.9+ with torch (and safetensors for the weights).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class VaeConfig:
    """The [model] table of a vae-tch config.toml (defaults: the seed's MNIST model)."""

    input_shape: list[int] = field(default_factory=lambda: [1, 28, 28])
    encoder_conv_filters: list[int] = field(default_factory=lambda: [32, 64, 64, 64])
    encoder_conv_kernel_size: list[int] = field(default_factory=lambda: [3, 3, 3, 3])
    encoder_conv_strides: list[int] = field(default_factory=lambda: [1, 2, 2, 1])
    decoder_conv_t_filters: list[int] = field(default_factory=lambda: [64, 64, 32, 1])
    decoder_conv_t_kernel_size: list[int] = field(default_factory=lambda: [3, 3, 3, 3])
    decoder_conv_t_strides: list[int] = field(default_factory=lambda: [1, 2, 2, 1])
    latent_dim: int = 2
    leaky_relu_slope: float = 0.3
    use_batch_norm: bool = False
    use_dropout: bool = False
    dropout_rate: float = 0.25

    @classmethod
    def from_dict(cls, model: dict) -> "VaeConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in model.items() if k in known})

    @classmethod
    def from_toml(cls, path: str | Path) -> "VaeConfig":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python < 3.11: use config.json (from_json) or tomli
            import tomli as tomllib
        with open(path, "rb") as f:
            return cls.from_dict(tomllib.load(f).get("model", {}))

    @classmethod
    def from_json(cls, path: str | Path) -> "VaeConfig":
        """The "model" object of an export's config.json."""
        with open(path) as f:
            return cls.from_dict(json.load(f).get("model", {}))

    def shape_before_flattening(self) -> tuple[int, int, int]:
        _, h, w = self.input_shape
        for s in self.encoder_conv_strides:
            h, w = -(-h // s), -(-w // s)
        return self.encoder_conv_filters[-1], h, w


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """TF 'same' padding (before, after) for one dimension."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def glorot_(weight: torch.Tensor, fan_in: int, fan_out: int) -> None:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    nn.init.uniform_(weight, -limit, limit)


class SameConv2d(nn.Conv2d):
    """Keras Conv2D(padding='same')."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int):
        super().__init__(c_in, c_out, k, stride=stride, padding=0)
        glorot_(self.weight, c_in * k * k, c_out * k * k)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        t, b = same_padding(x.shape[2], k, s)
        l, r = same_padding(x.shape[3], k, s)
        return F.conv2d(F.pad(x, (l, r, t, b)), self.weight, self.bias, stride=s)


class SameConvTranspose2d(nn.ConvTranspose2d):
    """Keras Conv2DTranspose(padding='same'): output n * stride."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int):
        super().__init__(c_in, c_out, k, stride=stride, padding=0)
        glorot_(self.weight, c_out * k * k, c_in * k * k)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.kernel_size[0], self.stride[0]
        y = F.conv_transpose2d(x, self.weight, self.bias, stride=s)
        before = (k - s) // 2
        h, w = x.shape[2] * s, x.shape[3] * s
        return y[:, :, before : before + h, before : before + w]


class Dense(nn.Linear):
    """Keras Dense: glorot-uniform kernel, zero bias."""

    def __init__(self, d_in: int, d_out: int):
        super().__init__(d_in, d_out)
        glorot_(self.weight, d_in, d_out)
        nn.init.zeros_(self.bias)


class KerasBatchNorm2d(nn.Module):
    """Keras BatchNormalization(): in training, normalize with the batch's mean and biased variance
    and update moving = moving * 0.99 + batch * 0.01 (biased variance, unlike torch's
    BatchNorm2d); in eval, normalize with the moving statistics. Epsilon 1e-3."""

    def __init__(self, c: int, momentum: float = 0.99, eps: float = 1e-3):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.register_buffer("running_mean", torch.zeros(c))
        self.register_buffer("running_var", torch.ones(c))
        self.momentum, self.eps = momentum, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            var, mean = torch.var_mean(x, dim=(0, 2, 3), correction=0)
            with torch.no_grad():
                self.running_mean.copy_(self.running_mean * self.momentum + mean * (1 - self.momentum))
                self.running_var.copy_(self.running_var * self.momentum + var * (1 - self.momentum))
            return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)


def dtype_ok(t: torch.Tensor, dtype: torch.dtype) -> bool:
    """The model's dtype, or autocast's while autocast is on for the tensor's device (under
    `torch.autocast` the encoder's outputs come in its dtype, e.g. bfloat16)."""
    if t.dtype == dtype:
        return True
    device = t.device.type
    return torch.is_autocast_enabled(device) and t.dtype == torch.get_autocast_dtype(device)


def check_images(x: torch.Tensor, cfg: VaeConfig, dtype: torch.dtype, who: str, check_range: bool) -> None:
    """The exports' input check for images, as ValueError: dtype (the model's), rank and size;
    the value range when `check_range` (an empty batch passes; NaN fails)."""
    c, h, w = cfg.input_shape
    if not dtype_ok(x, dtype) or x.dim() != 4 or tuple(x.shape[1:]) != (c, h, w):
        raise ValueError(
            f"vae-tch {who}: expected {str(dtype).replace('torch.', '')} images [N, {c}, {h}, {w}] "
            f"(the model's dtype) with values in [0, 1], got {str(x.dtype).replace('torch.', '')} {tuple(x.shape)}"
        )
    if check_range and x.numel() > 0:
        lo, hi = float(x.min()), float(x.max())
        if not (lo >= 0.0 and hi <= 1.0):  # NaN compares false: refused too
            raise ValueError(
                f"vae-tch {who}: expected image values in [0, 1] (check_range is on), got values in [{lo}, {hi}]"
            )


def check_latent(z: torch.Tensor, cfg: VaeConfig, dtype: torch.dtype, who: str) -> None:
    """The exports' input check for latent points, as ValueError."""
    l = cfg.latent_dim
    if not dtype_ok(z, dtype) or z.dim() != 2 or z.shape[1] != l:
        raise ValueError(
            f"vae-tch {who}: expected {str(dtype).replace('torch.', '')} latent points [N, {l}] "
            f"(the model's dtype), got {str(z.dtype).replace('torch.', '')} {tuple(z.shape)}"
        )


class Encoder(nn.Module):
    def __init__(self, cfg: VaeConfig):
        super().__init__()
        self.cfg = cfg
        self.check_range = False
        self.slope = cfg.leaky_relu_slope
        self.bn = cfg.use_batch_norm
        self.dropout = cfg.dropout_rate if cfg.use_dropout else 0.0
        c_in = cfg.input_shape[0]
        self.n_convs = len(cfg.encoder_conv_filters)
        for i, (f, k, s) in enumerate(
            zip(cfg.encoder_conv_filters, cfg.encoder_conv_kernel_size, cfg.encoder_conv_strides)
        ):
            setattr(self, f"conv{i + 1}", SameConv2d(c_in, f, k, s))
            if self.bn:
                setattr(self, f"bn{i + 1}", KerasBatchNorm2d(f))
            c_in = f
        flat = math.prod(cfg.shape_before_flattening())
        self.mu = Dense(flat, cfg.latent_dim)
        self.log_var = Dense(flat, cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(x, self.cfg, self.mu.weight.dtype, "encoder", self.check_range)
        for i in range(self.n_convs):
            x = getattr(self, f"conv{i + 1}")(x)
            if self.bn:
                x = getattr(self, f"bn{i + 1}")(x)
            x = F.leaky_relu(x, self.slope)
            if self.dropout:
                x = F.dropout(x, self.dropout, self.training)
        x = torch.flatten(x, 1)
        return self.mu(x), self.log_var(x)


class Decoder(nn.Module):
    def __init__(self, cfg: VaeConfig):
        super().__init__()
        self.cfg = cfg
        self.slope = cfg.leaky_relu_slope
        self.shape = cfg.shape_before_flattening()
        self.fc = Dense(cfg.latent_dim, math.prod(self.shape))
        self.bn = cfg.use_batch_norm
        self.dropout = cfg.dropout_rate if cfg.use_dropout else 0.0
        c_in = self.shape[0]
        self.n_deconvs = len(cfg.decoder_conv_t_filters)
        for i, (f, k, s) in enumerate(
            zip(cfg.decoder_conv_t_filters, cfg.decoder_conv_t_kernel_size, cfg.decoder_conv_t_strides)
        ):
            setattr(self, f"deconv{i + 1}", SameConvTranspose2d(c_in, f, k, s))
            if self.bn and i + 1 < self.n_deconvs:
                setattr(self, f"bn{i + 1}", KerasBatchNorm2d(f))
            c_in = f

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_latent(z, self.cfg, self.fc.weight.dtype, "decoder")
        x = self.fc(z).view(-1, *self.shape)
        for i in range(self.n_deconvs):
            x = getattr(self, f"deconv{i + 1}")(x)
            if i + 1 == self.n_deconvs:
                return torch.sigmoid(x)
            if self.bn:
                x = getattr(self, f"bn{i + 1}")(x)
            x = F.leaky_relu(x, self.slope)
            if self.dropout:
                x = F.dropout(x, self.dropout, self.training)
        return x


class VAE(nn.Module):
    def __init__(self, cfg: VaeConfig | None = None):
        super().__init__()
        self.config = cfg or VaeConfig()
        self.encoder = Encoder(self.config)
        self.decoder = Decoder(self.config)

    @property
    def check_range(self) -> bool:
        """Check that image values lie in [0, 1] (a min and a max per call), as vae.pt's."""
        return self.encoder.check_range

    @check_range.setter
    def check_range(self, on: bool) -> None:
        self.encoder.check_range = on

    @classmethod
    def from_config(cls, path: str | Path) -> "VAE":
        """The model of a config.toml or config.json, with fresh weights."""
        path = Path(path)
        if path.suffix == ".json":
            return cls(VaeConfig.from_json(path))
        return cls(VaeConfig.from_toml(path))

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> "VAE":
        """The model of a vae-tch export folder (config.json + model.safetensors), in eval mode."""
        from safetensors.torch import load_file

        folder = Path(folder)
        model = cls(VaeConfig.from_json(folder / "config.json"))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model.eval()

    def forward(self, x: torch.Tensor):
        """(reconstruction, mu, log_var), sampling z = mu + exp(log_var / 2) * eps."""
        mu, log_var = self.encoder(x)
        z = mu + torch.exp(log_var / 2) * torch.randn_like(mu)
        return self.decoder(z), mu, log_var

    def reconstruct_mean(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x)[0])


def vae_loss(recon, x, mu, log_var, r_loss_factor: float = 1000.0):
    """(loss, r_loss, kl_loss), batch means, as the seed's vae_r_loss + vae_kl_loss."""
    r_loss = r_loss_factor * torch.mean((x - recon) ** 2, dim=(1, 2, 3))
    kl_loss = -0.5 * torch.sum(1 + log_var - mu.square() - log_var.exp(), dim=1)
    return (r_loss + kl_loss).mean(), r_loss.mean(), kl_loss.mean()


class KerasAdam(torch.optim.Optimizer):
    """Adam as Keras computes it (epsilon hat, 1e-7): the optimizer vae-tch uses."""

    def __init__(self, params, lr=5e-4, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        super().__init__(params, dict(lr=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon))

    @torch.no_grad()
    def step(self):
        for g in self.param_groups:
            b1, b2 = g["beta_1"], g["beta_2"]
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                t = st["t"]
                alpha = g["lr"] * math.sqrt(1 - b2**t) / (1 - b1**t)
                st["m"].lerp_(p.grad, 1 - b1)
                st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                p.addcdiv_(st["m"], st["v"].sqrt().add_(g["epsilon"]), value=-alpha)


if __name__ == "__main__":
    model = VAE()
    for k, v in model.state_dict().items():
        print(f"{k:28s} {tuple(v.shape)}")
    print("parameters:", sum(p.numel() for p in model.parameters()))
