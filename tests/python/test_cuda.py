"""CUDA from Python: skipped without a GPU; scripts/gpu-check.sh runs them on one. They need only
torch, safetensors and pytest (no numpy, no Keras), as the GPU machine may have nothing else."""
import csv
import re

import pytest
import torch

from conftest import jit, vae_tch, write_synthetic

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here")


def test_torchscript_loads_on_cuda_with_a_map_location(export_dir, io):
    enc = jit(export_dir, "encoder.pt", map_location="cuda")
    mu, _ = enc(io["x"].cuda())
    torch.testing.assert_close(mu.cpu(), io["mu"], atol=1e-4, rtol=0)
    dec = jit(export_dir, "decoder.pt", map_location="cuda")
    torch.testing.assert_close(dec(io["z"].cuda()).cpu(), io["decoded"], atol=1e-4, rtol=0)


def test_an_export_traced_on_cuda_loads_on_the_cpu(tiny_run, io, tmp_path):
    vae_tch("export", str(tiny_run), "--out", str(tmp_path / "exp"), "--device", "cuda", cwd=tmp_path)
    mu, _ = jit(tmp_path / "exp", "encoder.pt", map_location="cpu")(io["x"])
    torch.testing.assert_close(mu, io["mu"], atol=1e-4, rtol=0)


def test_graphed_and_eager_training_agree(tmp_path):
    write_synthetic(tmp_path / "data", n_train=200, n_test=40)  # batch 16: 12 graphed + 1 eager
    losses = {}
    for form in ("on", "off"):
        run = tmp_path / f"run-{form}"
        vae_tch("train", "--device", "cuda", "--cuda-graph", form, "--quiet", "--data-dir", "data",
                "--epochs", "2", "--batch-size", "16", "--no-export", "--out", run.name, cwd=tmp_path)
        with open(run / "metrics.csv") as f:
            losses[form] = [float(r["test_loss"]) for r in csv.DictReader(f)]
        want = "cuda-graph" if form == "on" else "eager"
        assert re.search(rf'^step_form = "{want}"$', (run / "config.toml").read_text(), re.M)
    for a, b in zip(losses["on"], losses["off"]):
        assert abs(a - b) / b < 1e-2, losses
