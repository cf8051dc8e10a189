"""The book's faces-model layers (BatchNormalization and Dropout, Foster ch. 3) against Keras 3 itself:
vae-tch's exports of a BN + dropout model equal the Keras model with the same weights in eval mode
(1e-4), Keras weight files with BN layers import back (both formats), and Keras's parameter counts
of the faces model equal `vae-tch summary`'s."""
import re

import numpy as np
import pytest
import torch

import keras_seed
from conftest import jit, vae_tch

from conftest import BN_CONFIG


def keras_outputs(encoder, decoder, x, z):
    from keras import ops

    mu, log_var = (ops.convert_to_numpy(t) for t in encoder(x.transpose(0, 2, 3, 1), training=False))
    return mu, log_var, ops.convert_to_numpy(decoder(z, training=False)).transpose(0, 3, 1, 2)


def assert_same_as_keras(export_dir, encoder, decoder, seed):
    rng = np.random.default_rng(seed)
    x = rng.random((6, 1, 28, 28), dtype=np.float32)
    z = rng.normal(size=(6, 2)).astype(np.float32)
    k_mu, k_lv, k_dec = keras_outputs(encoder, decoder, x, z)
    with torch.no_grad():
        mu, log_var = jit(export_dir, "encoder.pt").eval()(torch.from_numpy(x))
        dec = jit(export_dir, "decoder.pt").eval()(torch.from_numpy(z))
    np.testing.assert_allclose(mu.numpy(), k_mu, atol=1e-4)
    np.testing.assert_allclose(log_var.numpy(), k_lv, atol=1e-4)
    np.testing.assert_allclose(dec.numpy(), k_dec, atol=1e-4)


def test_a_trained_bn_dropout_model_equals_keras_in_eval_mode(bn_run):
    from safetensors.torch import load_file

    export_dir = bn_run / "run" / "export"
    weights = load_file(export_dir / "model.safetensors")
    # Training moved the moving statistics: the comparison exercises them.
    assert not torch.equal(weights["encoder.bn2.running_var"], torch.ones(64))
    encoder, decoder, _ = keras_seed.build(use_batch_norm=True, use_dropout=True)
    keras_seed.torch_to_keras(weights, encoder, decoder)
    assert_same_as_keras(export_dir, encoder, decoder, seed=0)
    # The exported modules honour train/eval: dropout and batch statistics only in training.
    vae = jit(export_dir, "vae.pt")
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(vae.eval()(x), vae(x))
        vae.train()
        assert not torch.equal(vae(x), vae(x))


@pytest.mark.parametrize("fmt", ["keras3", "legacy"])
def test_keras_bn_weights_import(tmp_path, fmt):
    encoder, decoder, vae = keras_seed.build(use_batch_norm=True, use_dropout=True)
    rng = np.random.default_rng(3)
    for model in (encoder, decoder):  # moving statistics away from their initial 0 / 1
        for layer in model.layers:
            if "batch_normalization" in layer.name:
                g, b, m, v = layer.get_weights()
                layer.set_weights([g * 1.5, b + 0.1, rng.normal(size=m.shape).astype(np.float32),
                                   rng.uniform(0.5, 2.0, size=v.shape).astype(np.float32)])
    path = keras_seed.save(vae, tmp_path, "bn", fmt)
    (tmp_path / "bn.toml").write_text(BN_CONFIG)
    vae_tch("import-keras", str(path), "--config", "bn.toml", "--out", "imported", cwd=tmp_path)
    vae_tch("export", "imported", cwd=tmp_path)
    assert_same_as_keras(tmp_path / "imported" / "export", encoder, decoder, seed=1)


def test_import_of_a_bn_file_into_a_model_without_bn_says_so(tmp_path):
    import subprocess

    _, _, vae = keras_seed.build(use_batch_norm=True)
    path = tmp_path / "bn.weights.h5"
    vae.save_weights(path)
    with pytest.raises(subprocess.CalledProcessError) as e:
        vae_tch("import-keras", str(path), "--out", "x", cwd=tmp_path)
    assert "7 BatchNormalization layers" in e.value.stderr and "use_batch_norm = false" in e.value.stderr


def test_keras_counts_of_the_faces_model_equal_vae_tch_summary(tmp_path):
    encoder, decoder, _ = keras_seed.build(latent_dim=200, input_shape=(128, 128, 3), strides_e=[2, 2, 2, 2],
                                           strides_d=[2, 2, 2, 2], filters_d=[64, 64, 32, 3],
                                           use_batch_norm=True, use_dropout=True)
    trainable = [sum(int(np.prod(w.shape)) for w in m.trainable_weights) for m in (encoder, decoder)]
    assert (encoder.count_params(), decoder.count_params()) == (1_732_944, 917_123)
    assert trainable == [1_732_496, 916_803]
    (tmp_path / "faces.toml").write_text(
        "[model]\ninput_shape = [3, 128, 128]\nencoder_conv_strides = [2, 2, 2, 2]\n"
        "decoder_conv_t_filters = [64, 64, 32, 3]\ndecoder_conv_t_strides = [2, 2, 2, 2]\n"
        "latent_dim = 200\nuse_batch_norm = true\nuse_dropout = true\n")
    text = vae_tch("summary", "--config", "faces.toml", cwd=tmp_path).stdout
    totals = re.findall(r"^Total params: ([\d,]+)$", text, re.M)
    frozen = re.findall(r"^Non-trainable params: ([\d,]+)$", text, re.M)
    assert totals == ["1,732,944", "917,123"] and frozen == ["448", "320"], text


FACES_TOML = ("[model]\ninput_shape = [3, 128, 128]\nencoder_conv_strides = [2, 2, 2, 2]\n"
              "decoder_conv_t_filters = [64, 64, 32, 3]\ndecoder_conv_t_strides = [2, 2, 2, 2]\n"
              "latent_dim = 200\nuse_batch_norm = true\nuse_dropout = true\n")


@pytest.mark.parametrize("fmt", ["keras3", "legacy"])
def test_the_books_faces_weights_import_as_the_book_wires_the_model(tmp_path, fmt):
    """The book's faces model (models/VAE.py wiring: encoder layers in the top model, the decoder
    nested), with moved BN statistics, saved both ways: the imported model's eval outputs equal
    Keras's (1e-5 relative to the outputs' scale) and every moving statistic arrives in its place."""
    import vae_torch
    from safetensors.torch import load_file

    encoder, decoder, vae = keras_seed.build(latent_dim=200, input_shape=(128, 128, 3), strides_e=[2, 2, 2, 2],
                                             strides_d=[2, 2, 2, 2], filters_d=[64, 64, 32, 3],
                                             use_batch_norm=True, use_dropout=True, book_wiring=True)
    rng = np.random.default_rng(5)
    stats = {}
    for prefix, model in (("encoder", encoder), ("decoder", decoder)):
        bns = [l for l in model.layers if "batch_normalization" in l.name]
        for i, layer in enumerate(bns):
            g, b, m, v = layer.get_weights()
            new = [g * rng.uniform(0.5, 1.5, size=g.shape).astype(np.float32), b + 0.1,
                   rng.normal(size=m.shape).astype(np.float32), rng.uniform(0.5, 2.0, size=v.shape).astype(np.float32)]
            layer.set_weights(new)
            stats[f"{prefix}.bn{i + 1}"] = new
    path = keras_seed.save(vae, tmp_path, "faces", fmt)
    (tmp_path / "faces.toml").write_text(FACES_TOML)
    vae_tch("import-keras", str(path), "--config", "faces.toml", "--out", "imported", cwd=tmp_path)
    state = load_file(tmp_path / "imported" / "checkpoint" / "model.safetensors")
    for key, (g, b, m, v) in stats.items():
        for field, want in zip(["weight", "bias", "running_mean", "running_var"], [g, b, m, v]):
            np.testing.assert_array_equal(state[f"{key}.{field}"].numpy(), want, err_msg=f"{key}.{field}")
    model = vae_torch.VAE.from_config(tmp_path / "imported" / "config.toml")
    model.load_state_dict(state)
    model.eval()
    x = rng.random((2, 3, 128, 128), dtype=np.float32)
    z = rng.normal(size=(2, 200)).astype(np.float32)
    k_mu, k_lv, k_dec = keras_outputs(encoder, decoder, x, z)
    with torch.no_grad():
        mu, log_var = model.encoder(torch.from_numpy(x))
        dec = model.decoder(torch.from_numpy(z))
    for got, want in [(mu.numpy(), k_mu), (log_var.numpy(), k_lv), (dec.numpy(), k_dec)]:
        assert np.abs(got - want).max() <= 1e-5 * max(1.0, np.abs(want).max())
