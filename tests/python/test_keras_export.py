"""`vae-tch export --keras` (issue 27): the book's run-folder layout (and a Keras 3 `.weights.h5`) loads
into the book's model in Keras 3 (`KERAS_BACKEND=torch`; Keras 3 reads Keras-2 weight files through its legacy loader).
The numbers equal vae-tch's reference_io in inference mode, for the seed model and for a
BatchNorm + Dropout model whose moving statistics moved; the silent traps (root attributes, the
positional order, mu before log_var, the decoder's moving statistics last) are asserted; and
`import-keras` of the export gives the run's tensors back bit for bit."""
from __future__ import annotations

import pickle
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch

import keras_seed
from conftest import vae_tch


def export_keras(run: Path, tmp_path: Path) -> Path:
    vae_tch("export", str(run), "--keras", "--out", str(tmp_path / "exp"), cwd=tmp_path)
    return tmp_path / "exp"


def check(run: Path, tmp_path: Path, bn: bool):
    import h5py
    from keras import ops
    from safetensors.torch import load_file

    exp = export_keras(run, tmp_path)
    model = tomllib.loads((run / "config.toml").read_text())["model"]
    params = pickle.loads((exp / "keras" / "params.pkl").read_bytes())
    c, h, w = model["input_shape"]
    assert params == [(h, w, c), model["encoder_conv_filters"], model["encoder_conv_kernel_size"],
                      model["encoder_conv_strides"], model["decoder_conv_t_filters"],
                      model["decoder_conv_t_kernel_size"], model["decoder_conv_t_strides"],
                      model["latent_dim"], bn, bn]
    assert isinstance(params[0], tuple)

    h5 = exp / "keras" / "weights" / "weights.h5"
    with h5py.File(h5, "r") as f:
        assert f.attrs["keras_version"] == b"2.2.4", "without it Keras takes the file for Keras 1"
        assert f.attrs["backend"] == b"tensorflow"
        names = [n.decode() for n in f.attrs["layer_names"]]
        assert names[0] == "encoder_input" and "flatten_1" in names and "leaky_re_lu_1" in names
        weighted = [n for n in names if len(f[n].attrs["weight_names"])]
        expected = []
        for i in range(4):
            expected.append(f"encoder_conv_{i}")
            if bn:
                expected.append(f"batch_normalization_{i + 1}")
        assert weighted == expected + ["mu", "log_var", "decoder"]
        dec = [n.decode() for n in f["decoder"].attrs["weight_names"]]
        assert dec[:2] == ["decoder_dense/kernel:0", "decoder_dense/bias:0"]
        if bn:
            stats = [n for n in dec if "moving" in n]
            assert dec[-len(stats):] == stats and len(stats) == 6, "moving statistics last"
        kernel = f["decoder/decoder_conv_t_3/kernel:0"]
        f_d = model["decoder_conv_t_filters"]
        assert kernel.shape == (3, 3, f_d[3], f_d[2]), "Conv2DTranspose kernels are (kh, kw, out, in)"

    # The book's model, wired as the book wires it, loads the Keras-2 file by position, and
    # the Keras 3 file by its paths.
    io = load_file(exp / "reference_io.safetensors")
    for path in [h5, exp / "keras" / "vae.weights.h5"]:
        encoder, decoder, vae = keras_seed.build(
            latent_dim=model["latent_dim"], input_shape=(h, w, c), strides_e=model["encoder_conv_strides"],
            strides_d=model["decoder_conv_t_strides"], filters_d=model["decoder_conv_t_filters"],
            use_batch_norm=bn, use_dropout=bn, book_wiring=True)
        vae.load_weights(str(path))
        mu, log_var = (ops.convert_to_numpy(t) for t in encoder(io["x"].numpy().transpose(0, 2, 3, 1), training=False))
        decoded = ops.convert_to_numpy(decoder(io["z"].numpy(), training=False)).transpose(0, 3, 1, 2)
        np.testing.assert_allclose(mu, io["mu"].numpy(), atol=1e-5, err_msg=str(path))
        np.testing.assert_allclose(log_var, io["log_var"].numpy(), atol=1e-5, err_msg=str(path))
        np.testing.assert_allclose(decoded, io["decoded"].numpy(), atol=1e-5, err_msg=str(path))
    if bn:
        state = load_file(run / "checkpoint" / "model.safetensors")
        bns = [l for l in decoder.layers if "batch_normalization" in l.name]
        assert not np.allclose(state["decoder.bn1.running_var"].numpy(), 1.0), "the statistics moved"
        np.testing.assert_array_equal(bns[0].get_weights()[3], state["decoder.bn1.running_var"].numpy())

    # import-keras of either file of the export: the run's tensors, bit for bit.
    a = load_file(run / "checkpoint" / "model.safetensors")
    for i, path in enumerate([h5, exp / "keras" / "vae.weights.h5"]):
        vae_tch("import-keras", str(path), "--config", str(run / "config.toml"), "--out", f"back{i}", cwd=tmp_path)
        b = load_file(tmp_path / f"back{i}" / "checkpoint" / "model.safetensors")
        assert sorted(a) == sorted(b)
        for k in a:
            assert torch.equal(a[k], b[k]), (path.name, k)


def test_the_seed_model_goes_back_to_the_books_keras_model(tiny_run, tmp_path):
    check(tiny_run, tmp_path, bn=False)


def test_a_bn_dropout_model_goes_back_with_its_moving_statistics(bn_run, tmp_path):
    check(bn_run / "run", tmp_path, bn=True)


def test_the_faces_model_goes_back_too(tmp_path):
    """The faces preset (200-D latent, RGB, stride 2 throughout, BN and dropout) at 32x32."""
    import subprocess
    import sys

    from conftest import ROOT

    subprocess.run([sys.executable, str(ROOT / "scripts" / "make-celeba.py"), "--out", str(tmp_path / "faces"),
                    "--count", "40", "--workers", "1"], check=True, capture_output=True)
    vae_tch("train", "--config", str(ROOT / "configs" / "faces-celeba.toml"), "--data-dir", "faces",
            "--input-shape", "3,32,32", "--epochs", "1", "--batch-size", "8", "--device", "cpu", "--quiet",
            "--no-tensorboard", "--no-export", "--out", "run", cwd=tmp_path)
    check(tmp_path / "run", tmp_path, bn=True)


def test_a_swap_of_mu_and_log_var_would_be_caught(tiny_run, tmp_path):
    """The file's order is what Keras trusts: mu and log_var have the same shapes, so a swapped
    file loads without an error. Swapping them in the file must change the loaded encoder."""
    import h5py
    from keras import ops
    from safetensors.torch import load_file

    exp = export_keras(tiny_run, tmp_path)
    h5 = exp / "keras" / "weights" / "weights.h5"
    with h5py.File(h5, "r+") as f:
        names = [n for n in f.attrs["layer_names"]]
        i, j = names.index(b"mu"), names.index(b"log_var")
        names[i], names[j] = names[j], names[i]
        f.attrs["layer_names"] = np.array(names)
    encoder, _, vae = keras_seed.build(book_wiring=True)
    vae.load_weights(str(h5))
    io = load_file(exp / "reference_io.safetensors")
    mu, _ = (ops.convert_to_numpy(t) for t in encoder(io["x"].numpy().transpose(0, 2, 3, 1), training=False))
    assert not np.allclose(mu, io["mu"].numpy(), atol=1e-5)
