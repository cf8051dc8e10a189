"""The exports, proven from Python: TorchScript and safetensors against the Rust model's own
outputs (reference_io.safetensors, written by `vae-tch export`), the PyTorch reference module,
Keras 3 itself, and Keras weight files imported back with `vae-tch import-keras`."""
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import keras_seed
import vae_torch
from conftest import vae_tch

TOL = 1e-5


from conftest import jit


def test_torchscript_modules_equal_the_rust_outputs(export_dir, io):
    out = jit(export_dir, "encoder.pt")(io["x"])
    assert isinstance(out, tuple) and len(out) == 2
    mu, log_var = out
    torch.testing.assert_close(mu, io["mu"], atol=TOL, rtol=0)
    torch.testing.assert_close(log_var, io["log_var"], atol=TOL, rtol=0)
    torch.testing.assert_close(jit(export_dir, "decoder.pt")(io["z"]), io["decoded"], atol=TOL, rtol=0)
    torch.testing.assert_close(jit(export_dir, "vae.pt")(io["x"]), io["reconstruction"], atol=TOL, rtol=0)


@pytest.mark.parametrize("n", [1, 6, 33])
def test_torchscript_takes_any_batch_size(export_dir, n):
    x = torch.rand(n, 1, 28, 28)
    mu, log_var = jit(export_dir, "encoder.pt")(x)
    assert mu.shape == log_var.shape == (n, 2)
    assert jit(export_dir, "decoder.pt")(torch.randn(n, 2)).shape == (n, 1, 28, 28)
    recon = jit(export_dir, "vae.pt")(x)
    assert recon.shape == (n, 1, 28, 28) and 0 < recon.min() and recon.max() < 1


def test_reference_module_loads_the_safetensors_strictly(export_dir, io):
    model = vae_torch.VAE.from_config(export_dir / "config.toml")
    model.load_state_dict(load_file(export_dir / "model.safetensors"), strict=True)
    with torch.no_grad():
        mu, log_var = model.encoder(io["x"])
        torch.testing.assert_close(mu, io["mu"], atol=TOL, rtol=0)
        torch.testing.assert_close(log_var, io["log_var"], atol=TOL, rtol=0)
        torch.testing.assert_close(model.decoder(io["z"]), io["decoded"], atol=TOL, rtol=0)
        torch.testing.assert_close(model.reconstruct_mean(io["x"]), jit(export_dir, "vae.pt")(io["x"]), atol=TOL, rtol=0)


def test_keras_model_with_the_vae_tch_weights_gives_the_same_numbers(export_dir, io):
    from keras import ops

    encoder, decoder, _ = keras_seed.build()
    assert (encoder.count_params(), decoder.count_params()) == (105_220, 102_017)
    keras_seed.torch_to_keras(load_file(export_dir / "model.safetensors"), encoder, decoder)
    rng = np.random.default_rng(0)
    x = rng.random((8, 1, 28, 28), dtype=np.float32)
    z = rng.normal(size=(8, 2)).astype(np.float32)
    k_mu, k_log_var = (ops.convert_to_numpy(t) for t in encoder(x.transpose(0, 2, 3, 1)))
    k_dec = ops.convert_to_numpy(decoder(z)).transpose(0, 3, 1, 2)
    mu, log_var = jit(export_dir, "encoder.pt")(torch.from_numpy(x))
    np.testing.assert_allclose(mu.detach().numpy(), k_mu, atol=1e-4)
    np.testing.assert_allclose(log_var.detach().numpy(), k_log_var, atol=1e-4)
    np.testing.assert_allclose(jit(export_dir, "decoder.pt")(torch.from_numpy(z)).detach().numpy(), k_dec, atol=1e-4)


@pytest.mark.parametrize("fmt", ["keras3", "legacy"])
def test_import_keras_weight_files(tmp_path, fmt):
    from keras import ops

    encoder, decoder, vae = keras_seed.build()  # Keras's own random init, not vae-tch's
    path = keras_seed.save(vae, tmp_path, "seed", fmt)
    vae_tch("import-keras", str(path), "--out", "imported", cwd=tmp_path)
    vae_tch("export", "imported", cwd=tmp_path)
    out = tmp_path / "imported" / "export"
    rng = np.random.default_rng(1)
    x = rng.random((5, 1, 28, 28), dtype=np.float32)
    z = rng.normal(size=(5, 2)).astype(np.float32)
    k_mu, k_log_var = (ops.convert_to_numpy(t) for t in encoder(x.transpose(0, 2, 3, 1)))
    mu, log_var = jit(out, "encoder.pt")(torch.from_numpy(x))
    np.testing.assert_allclose(mu.detach().numpy(), k_mu, atol=1e-4)
    np.testing.assert_allclose(log_var.detach().numpy(), k_log_var, atol=1e-4)
    k_dec = ops.convert_to_numpy(decoder(z)).transpose(0, 3, 1, 2)
    np.testing.assert_allclose(jit(out, "decoder.pt")(torch.from_numpy(z)).detach().numpy(), k_dec, atol=1e-4)
    # The imported run is a real run: it resumes training (epoch 0 -> 1).
    from conftest import write_synthetic

    write_synthetic(tmp_path / "data")
    vae_tch("train", "--resume", "imported", "--epochs", "1", "--device", "cpu", "--quiet", "--data-dir", "data", cwd=tmp_path)
    assert (tmp_path / "imported" / "metrics.csv").read_text().count("\n") == 2


def test_import_keras_rejects_a_file_of_another_model(tmp_path):
    import h5py
    import subprocess

    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("dense/dense/kernel:0", data=np.zeros((3, 4), np.float32))
        f.create_dataset("dense/dense/bias:0", data=np.zeros(4, np.float32))
    with pytest.raises(subprocess.CalledProcessError) as e:
        vae_tch("import-keras", str(path), "--out", "x", cwd=tmp_path)
    assert "other.h5" in e.value.stderr and "Conv2D" in e.value.stderr


def test_import_keras_names_a_bias_of_the_wrong_length(tmp_path):
    import h5py
    import subprocess

    _, _, vae = keras_seed.build()
    path = tmp_path / "seed.weights.h5"
    vae.save_weights(path)
    with h5py.File(path, "r+") as f:
        # The decoder's Dense bias (3136 values) cut to 100: once an unchecked view's panic.
        names = []
        f.visit(lambda n: names.append(n) if n.endswith("vars/1") and f[n].shape == (3136,) else None)
        assert names, "no decoder Dense bias found"
        del f[names[0]]
        f.create_dataset(names[0], data=np.zeros(100, np.float32))
    with pytest.raises(subprocess.CalledProcessError) as e:
        vae_tch("import-keras", str(path), "--out", "x", cwd=tmp_path)
    assert "bias of shape [100], the model needs [3136]" in e.value.stderr
    assert "panicked" not in e.value.stderr


def test_import_keras_refuses_non_finite_weights_unless_forced(tmp_path):
    import subprocess

    encoder, _, vae = keras_seed.build()
    w, b = encoder.get_layer("mu").get_weights()
    w[0, 0] = np.nan
    encoder.get_layer("mu").set_weights([w, b])
    path = tmp_path / "nan.weights.h5"
    vae.save_weights(path)
    with pytest.raises(subprocess.CalledProcessError) as e:
        vae_tch("import-keras", str(path), "--out", "x", cwd=tmp_path)
    assert "encoder.mu.weight has 1 NaN or infinite values" in e.value.stderr and "--force" in e.value.stderr
    vae_tch("import-keras", str(path), "--out", "x", "--force", cwd=tmp_path)
