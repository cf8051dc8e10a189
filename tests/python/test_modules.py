"""The exported TorchScript modules as a PyTorch user goes on with them: real parameters under the
model.safetensors keys, fine-tuning, dtype and device moves, freeze / optimize_for_inference /
torch.compile on a fresh load, ONNX, input checks with clear messages, and the self-contained
loader (vae_torch.py, from_pretrained) with its model card. Each subprocess test runs in a fresh
interpreter, as a user's script would."""
import ast
import gzip
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ROOT, jit

TOL = 1e-5


def run_python(code: str, cwd: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("name, prefix", [("encoder.pt", "encoder."), ("decoder.pt", "decoder."), ("vae.pt", "")])
def test_state_dict_keys_are_the_safetensors_keys(export_dir, name, prefix):
    m = jit(export_dir, name)
    want = sorted(k for k in load_file(export_dir / "model.safetensors") if k.startswith(prefix))
    assert sorted(m.state_dict()) == want
    params = list(m.parameters())
    assert params and all(p.requires_grad for p in params)
    weights = load_file(export_dir / "model.safetensors")
    for k, v in m.state_dict().items():
        assert torch.equal(v, weights[k]), k


def images(n: int) -> torch.Tensor:
    """Real MNIST digits when setup fetched them, else the test's synthetic data."""
    path = ROOT / "data" / "mnist" / "train-images-idx3-ubyte.gz"
    if not path.exists():
        from conftest import write_synthetic
        import tempfile

        d = Path(tempfile.mkdtemp())
        write_synthetic(d, n_train=n, n_test=1)
        path = d / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    x = torch.frombuffer(bytearray(raw[16 : 16 + n * 784]), dtype=torch.uint8)
    return x.view(n, 1, 28, 28).float() / 255


def test_twenty_adam_steps_on_the_loaded_vae_lower_its_loss(export_dir):
    torch.manual_seed(0)
    vae = jit(export_dir, "vae.pt")
    x = images(64)
    before = {k: v.clone() for k, v in vae.state_dict().items()}
    opt = torch.optim.Adam(vae.parameters(), lr=1e-3)

    def loss_of(batch):
        mu, log_var = vae.encode(batch)
        recon = vae.decode(vae.reparameterize(mu, log_var))
        kl = -0.5 * torch.sum(1 + log_var - mu.square() - log_var.exp(), dim=1)
        return 1000 * torch.mean((batch - recon) ** 2) + kl.mean()

    with torch.no_grad():
        torch.manual_seed(1)
        start = loss_of(x).item()
    for i in range(20):
        opt.zero_grad()
        loss_of(x[(i % 4) * 16 : (i % 4) * 16 + 16]).backward()
        opt.step()
    with torch.no_grad():
        torch.manual_seed(1)
        end = loss_of(x).item()
    assert end < start, (start, end)
    changed = [k for k, v in vae.state_dict().items() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)


def test_double_gives_the_float64_result(export_dir, io):
    vae = jit(export_dir, "vae.pt").double()
    out = vae(io["x"].double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out.float(), io["reconstruction"], atol=TOL, rtol=0)
    assert vae.sample(2).dtype == torch.float64


def test_freeze_optimize_and_compile_on_a_fresh_load(export_dir, tmp_path):
    out = run_python(f"""
import torch
from safetensors.torch import load_file
io = load_file({str(export_dir / 'reference_io.safetensors')!r})
vae = torch.jit.load({str(export_dir / 'vae.pt')!r})
assert not vae.training                                # exports load in eval mode, as from_pretrained's module
fast = torch.jit.optimize_for_inference(torch.jit.freeze(vae.eval()))
print(float((fast(io['x']) - io['reconstruction']).abs().max()))
compiled = torch.compile(torch.jit.load({str(export_dir / 'vae.pt')!r}))
print(float((compiled(io['x']) - io['reconstruction']).abs().max()))
""", tmp_path)
    assert all(float(v) < TOL for v in out.split()), out


def test_onnx_export_matches_torchscript(export_dir, io, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    for name, x in [("encoder.pt", io["x"]), ("decoder.pt", io["z"])]:
        m = jit(export_dir, name).eval()
        path = tmp_path / name.replace(".pt", ".onnx")
        torch.onnx.export(m, (x,), str(path), dynamo=False, input_names=["input"],
                          dynamic_axes={"input": {0: "n"}})
        session = ort.InferenceSession(str(path))
        for n in (1, x.shape[0]):
            got = session.run(None, {"input": x[:n].numpy()})
            want = m(x[:n])
            want = want if isinstance(want, tuple) else (want,)
            assert len(got) == len(want)
            for g, w in zip(got, want):
                torch.testing.assert_close(torch.from_numpy(g), w.detach(), atol=TOL, rtol=0)


@pytest.mark.parametrize("call, x, message", [
    ("encoder", torch.zeros(16, 28, 28, dtype=torch.uint8),
     "vae-tch encoder: expected float32 images [N, 1, 28, 28] (the model's dtype) with values in [0, 1], got uint8 [16, 28, 28]"),
    ("encoder", torch.zeros(16, 28, 28), "got float32 [16, 28, 28]"),
    ("encoder", torch.zeros(2, 3, 28, 28), "got float32 [2, 3, 28, 28]"),
    ("encoder", torch.zeros(2, 1, 32, 32), "got float32 [2, 1, 32, 32]"),
    ("decoder", torch.zeros(2), "vae-tch decoder: expected float32 latent points [N, 2] (the model's dtype), got float32 [2]"),
    ("decoder", torch.zeros(2, 3), "got float32 [2, 3]"),
    ("decoder", torch.zeros(2, 2, dtype=torch.int64), "got int64 [2, 2]"),
    ("vae.decode", torch.zeros(5), "vae-tch vae.decode: expected float32 latent points [N, 2]"),
])
def test_bad_inputs_get_clear_messages(export_dir, call, x, message):
    module = {"encoder": "encoder.pt", "decoder": "decoder.pt"}.get(call, "vae.pt")
    m = jit(export_dir, module)
    fn = m.decode if call == "vae.decode" else m
    with pytest.raises(torch.jit.Error) as e:  # TorchScript's exception class
        fn(x)
    assert message in str(e.value)


def test_the_range_check_is_off_by_default_and_catches_0_to_255(export_dir):
    vae = jit(export_dir, "vae.pt")
    x = torch.rand(2, 1, 28, 28) * 255
    vae(x)  # off: a silent wrong answer, as with any module
    vae.check_range = True
    with pytest.raises(torch.jit.Error) as e:
        vae(x)
    assert "vae-tch vae: expected image values in [0, 1] (check_range is on)" in str(e.value)
    vae(x / 255)


def test_from_pretrained_needs_only_the_export_folder(export_dir, tmp_path):
    # A fresh interpreter that does not see the repository (cwd elsewhere, scripts/ not on
    # sys.path) and has no tomllib (as on Python 3.9/3.10): config.json is enough.
    out = run_python(f"""
import sys
sys.modules['tomllib'] = None
sys.path.insert(0, {str(export_dir)!r})
assert not any(p.rstrip('/').endswith('scripts') for p in sys.path)
from vae_torch import VAE
from safetensors.torch import load_file
model = VAE.from_pretrained({str(export_dir)!r})
assert not model.training
io = load_file({str(export_dir / 'reference_io.safetensors')!r})
print(float((model.reconstruct_mean(io['x']) - io['reconstruction']).abs().max()))
""", tmp_path)
    assert float(out) < TOL


def test_the_loader_parses_as_python_3_9():
    source = (ROOT / "scripts" / "vae_torch.py").read_text()
    ast.parse(source, feature_version=(3, 9))


def test_metadata_and_extra_files(export_dir):
    from safetensors import safe_open
    import json

    with safe_open(str(export_dir / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    assert meta["format"] == "pt" and meta["vae_tch_version"]
    assert json.loads(meta["config"])["latent_dim"] == 2
    config = json.loads((export_dir / "config.json").read_text())
    assert config["model"] == json.loads(meta["config"])
    for name in ("encoder.pt", "decoder.pt", "vae.pt"):
        extra = {"config.toml": "", "config.json": ""}
        torch.jit.load(str(export_dir / name), _extra_files=extra)
        assert extra["config.toml"] == (export_dir / "config.toml").read_bytes()
        assert json.loads(extra["config.json"]) == config


def test_the_model_card_says_how_to_load_and_what_goes_in(export_dir):
    card = (export_dir / "README.md").read_text()
    for needle in ["torch.jit.load(\"vae.pt\")", "VAE.from_pretrained", "values in [0, 1]",
                   "check_range", "final losses", "test loss", "207,237"]:
        assert needle in card, needle
    assert (export_dir / "vae_torch.py").read_text() == (ROOT / "scripts" / "vae_torch.py").read_text()
