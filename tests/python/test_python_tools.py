"""The exports with the Python tools users reach for: eval mode on load, ONNX by both exporters
through onnxruntime, torch.compile, the input checks (dtype, empty batches, the exception
classes, from_pretrained's ValueError), and the model card's own code blocks run as pasted."""
import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import vae_torch
from conftest import jit

FILES = ["encoder.pt", "decoder.pt", "vae.pt"]


def test_exports_load_in_eval_mode_and_a_call_changes_nothing(bn_run):
    export_dir = bn_run / "run" / "export"
    x = torch.rand(5, 1, 28, 28)
    for name in FILES:
        m = jit(export_dir, name)
        assert not m.training and not any(s.training for s in m.modules()), name
    vae = jit(export_dir, "vae.pt")
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    with torch.no_grad():
        a, b = vae(x), vae(x)
    assert torch.equal(a, b), "two calls on the same input differ: dropout or batch statistics ran"
    for k, v in vae.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} moved"
    # Training mode stays one call away.
    vae.train()
    with torch.no_grad():
        vae(x)
    assert not torch.equal(vae.state_dict()["encoder.bn1.running_mean"], before["encoder.bn1.running_mean"])


def ort_run(path, x):
    import onnxruntime as ort

    s = ort.InferenceSession(str(path))
    return s.run(None, {s.get_inputs()[0].name: x.numpy()})


def test_onnx_by_both_exporters_runs_in_onnxruntime(export_dir, tmp_path):
    pytest.importorskip("onnxscript")
    model = vae_torch.VAE.from_pretrained(export_dir)
    batch = torch.export.Dim("batch")
    torch.onnx.export(model.encoder, (torch.rand(2, 1, 28, 28),), tmp_path / "encoder.onnx",
                      dynamic_shapes={"x": {0: batch}})
    torch.onnx.export(model.decoder, (torch.randn(2, 2),), tmp_path / "decoder.onnx",
                      dynamic_shapes={"z": {0: batch}})
    vae = jit(export_dir, "vae.pt")
    torch.onnx.export(vae, (torch.rand(1, 1, 28, 28),), tmp_path / "vae.onnx", dynamo=False,
                      input_names=["x"], output_names=["reconstruction"], dynamic_axes={"x": {0: "batch"}})
    for n in [1, 7]:
        x, z = torch.rand(n, 1, 28, 28), torch.randn(n, 2)
        with torch.no_grad():
            mu, log_var = model.encoder(x)
            dec = model.decoder(z)
            recon = vae(x)
        got_mu, got_lv = ort_run(tmp_path / "encoder.onnx", x)
        np.testing.assert_allclose(got_mu, mu.numpy(), atol=1e-5)
        np.testing.assert_allclose(got_lv, log_var.numpy(), atol=1e-5)
        np.testing.assert_allclose(ort_run(tmp_path / "decoder.onnx", z)[0], dec.numpy(), atol=1e-5)
        np.testing.assert_allclose(ort_run(tmp_path / "vae.onnx", x)[0], recon.numpy(), atol=1e-5)


def test_torch_compile_compiles_the_from_pretrained_module_not_the_torchscript_file(export_dir):
    from torch._dynamo.testing import CompileCounter

    model = vae_torch.VAE.from_pretrained(export_dir)
    z = torch.randn(3, 2)
    torch._dynamo.reset()
    counter = CompileCounter()
    with torch.no_grad():
        out = torch.compile(model.decoder, backend=counter)(z)
        torch.testing.assert_close(out, model.decoder(z))
    assert counter.frame_count == 1, "README's route: one graph"
    torch._dynamo.reset()
    counter = CompileCounter()
    with torch.no_grad():
        torch.compile(jit(export_dir, "vae.pt"), backend=counter)(torch.rand(3, 1, 28, 28))
    assert counter.frame_count == 0, "a TorchScript file compiles no graph (README says so)"


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_wrong_dtype_is_named_before_any_layer_runs(export_dir, dtype):
    name = str(dtype).replace("torch.", "")
    vae = jit(export_dir, "vae.pt")
    with pytest.raises(torch.jit.Error, match=f"expected float32 images .* got {name}"):
        vae(torch.rand(2, 1, 28, 28).to(dtype))
    if dtype == torch.float16:
        # Half-precision latent points are what the encoder gives under torch.autocast: a float32
        # model takes them, widened (TorchScript cannot ask whether autocast is on).
        assert vae.decode(torch.randn(2, 2).to(dtype)).dtype == torch.float32
    else:
        with pytest.raises(torch.jit.Error, match=f"expected float32 latent points .* got {name}"):
            vae.decode(torch.randn(2, 2).to(dtype))
    model = vae_torch.VAE.from_pretrained(export_dir)
    with pytest.raises(ValueError, match=f"expected float32 images .* got {name}"):
        model.encoder(torch.rand(2, 1, 28, 28).to(dtype))
    # The model's dtype moves the expectation along.
    assert jit(export_dir, "vae.pt").double()(torch.rand(2, 1, 28, 28, dtype=torch.float64)).dtype == torch.float64


def test_the_check_failure_class_is_the_one_readme_names():
    # README and the card tell users to catch torch.jit.Error: `except RuntimeError` misses it.
    assert not issubclass(torch.jit.Error, RuntimeError)


def test_an_empty_batch_gives_empty_outputs_with_the_range_check_on(export_dir):
    vae = jit(export_dir, "vae.pt")
    vae.check_range = True
    assert vae(torch.rand(0, 1, 28, 28)).shape == (0, 1, 28, 28)
    model = vae_torch.VAE.from_pretrained(export_dir)
    model.check_range = True
    with torch.no_grad():
        mu, _ = model.encoder(torch.rand(0, 1, 28, 28))
    assert mu.shape == (0, 2)
    with pytest.raises(ValueError, match=r"values in \[0, 1\] \(check_range is on\)"):
        model.encoder(torch.rand(1, 1, 28, 28) * 3)


def test_from_pretrained_checks_its_inputs_like_the_torchscript_files(export_dir):
    model = vae_torch.VAE.from_pretrained(export_dir)
    with pytest.raises(ValueError, match=r"expected float32 images \[N, 1, 28, 28\]"):
        model.encoder(torch.rand(1, 28, 28))
    with pytest.raises(ValueError, match=r"expected float32 images \[N, 1, 28, 28\].*\(2, 3, 28, 28\)"):
        model.encoder(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match=r"expected float32 latent points \[N, 2\].*\(2,\)"):
        model.decoder(torch.randn(2))


def test_config_json_has_the_hub_keys_and_no_absolute_path(bn_run):
    export_dir = bn_run / "run" / "export"
    cfg = json.loads((export_dir / "config.json").read_text())
    assert cfg["model_type"] == "vae-tch-conv-vae" and cfg["architectures"] == ["VAE"]
    assert cfg["torch_dtype"] == "float32" and cfg["model"]["use_batch_norm"] is True
    for name in ["config.json", "config.toml", "README.md"]:
        text = (export_dir / name).read_text()
        assert str(bn_run) not in text, f"{name} names the training machine's folder"
    # The TorchScript files carry the same config.
    extra = {"config.json": ""}
    torch.jit.load(str(export_dir / "vae.pt"), _extra_files=extra)
    assert json.loads(extra["config.json"]) == cfg


def card_blocks(card: str):
    return re.findall(r"```python\n(.*?)```", card, re.S)


def test_the_model_card_names_its_layers_counts_like_torch_and_its_code_runs(bn_run, tmp_path):
    pytest.importorskip("onnxscript")
    export_dir = tmp_path / "export"
    shutil.copytree(bn_run / "run" / "export", export_dir)
    card = (export_dir / "README.md").read_text()
    model = vae_torch.VAE.from_pretrained(export_dir)
    params = sum(p.numel() for p in model.parameters())
    buffers = sum(b.numel() for b in model.buffers())
    assert f"| parameters | {params:,} trainable" in card, card
    assert f"plus {buffers:,} moving statistics" in card
    assert "BatchNormalization" in card and "`encoder.bn1`" in card and "Dropout (rate 0.25)" in card
    assert "load in **eval mode**" in card and "vae.train()" in card
    blocks = card_blocks(card)
    assert len(blocks) == 4, blocks
    out = []
    for block in blocks:
        r = subprocess.run([sys.executable, "-c", block], cwd=export_dir, capture_output=True, text=True)
        assert r.returncode == 0, f"{block}\n{r.stderr[-2000:]}"
        out.append(r.stdout)
    assert (export_dir / "encoder.onnx").is_file() and (export_dir / "vae.onnx").is_file()
    # The count printed by the nn.Module block is the card's.
    assert out[1].strip().endswith(str(params))


def test_the_loader_names_only_files_that_travel_with_it(export_dir):
    doc = vae_torch.__doc__
    names = set(re.findall(r"[\w./-]+\.(?:json|toml|safetensors|py|md)\b", doc))
    travel = {p.name for p in export_dir.iterdir()}
    assert names and names <= travel, names - travel
    state = load_file(export_dir / "model.safetensors")
    assert set(state) == set(vae_torch.VAE.from_pretrained(export_dir).state_dict())
