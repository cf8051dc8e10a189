"""scripts/vae_torch.py, the PyTorch reference: it loads vae-tch checkpoints under the same
state_dict keys, and its layers compute what Keras 3's layers compute."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vae_torch


def test_checkpoint_loads_strict_into_the_reference(tiny_run):
    model = vae_torch.VAE.from_config(tiny_run / "config.toml")
    state = load_file(tiny_run / "checkpoint" / "model.safetensors")
    model.load_state_dict(state, strict=True)
    assert sum(p.numel() for p in model.parameters()) == 207_237
    x = torch.rand(3, 1, 28, 28)
    recon, mu, log_var = model(x)
    assert recon.shape == (3, 1, 28, 28) and mu.shape == (3, 2) and log_var.shape == (3, 2)


@pytest.mark.parametrize("stride", [1, 2])
def test_same_conv_matches_keras(stride):
    from keras import layers, ops

    x = np.random.default_rng(stride).random((2, 14, 14, 3), dtype=np.float32)
    layer = layers.Conv2D(5, 3, strides=stride, padding="same")
    want = ops.convert_to_numpy(layer(x))
    kernel, bias = (torch.tensor(ops.convert_to_numpy(w)) for w in layer.weights)
    conv = vae_torch.SameConv2d(3, 5, 3, stride)
    with torch.no_grad():
        conv.weight.copy_(kernel.permute(3, 2, 0, 1))
        conv.bias.copy_(bias)
        got = conv(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("stride", [1, 2])
def test_same_conv_transpose_matches_keras(stride):
    from keras import layers, ops

    x = np.random.default_rng(10 + stride).random((2, 7, 7, 4), dtype=np.float32)
    layer = layers.Conv2DTranspose(3, 3, strides=stride, padding="same")
    want = ops.convert_to_numpy(layer(x))
    kernel, bias = (torch.tensor(ops.convert_to_numpy(w)) for w in layer.weights)
    conv = vae_torch.SameConvTranspose2d(4, 3, 3, stride)
    with torch.no_grad():
        # Keras Conv2DTranspose kernel (kh, kw, out, in) -> torch (in, out, kh, kw).
        conv.weight.copy_(kernel.permute(3, 2, 0, 1))
        conv.bias.copy_(bias)
        got = conv(torch.tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert got.shape == want.shape == (2, 7 * stride, 7 * stride, 3)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_keras_defaults_are_the_ones_mirrored():
    from keras import layers, optimizers

    assert layers.LeakyReLU().negative_slope == pytest.approx(0.3)
    assert optimizers.Adam().epsilon == pytest.approx(1e-7)
