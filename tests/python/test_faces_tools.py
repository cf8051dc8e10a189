"""The faces model's tools (issue 18): scripts/make-celeba.py writes deterministic CelebA-size
JPEGs that vae-tch reads as an image folder, and scripts/bench.sh --faces times the same model in
PyTorch as vae-tch (same parameter count) and reports every trainer it ran."""
import json
import subprocess
import sys

import torch
from PIL import Image

import vae_torch
from conftest import BINARY, ROOT, vae_tch

sys.path.insert(0, str(ROOT / "scripts"))


def make_celeba(out, count):
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make-celeba.py"), "--out", str(out), "--count",
                    str(count), "--workers", "2"], check=True, capture_output=True, text=True)


def test_make_celeba_writes_deterministic_celeba_size_jpegs_that_vae_tch_reads(tmp_path):
    make_celeba(tmp_path / "a", 9)
    make_celeba(tmp_path / "b", 3)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == [f"{i:06d}.jpg" for i in range(1, 10)]
    for name in names:
        with Image.open(tmp_path / "a" / name) as im:
            assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (178, 218))
    # The same index gives the same file, whatever the count; two indices differ.
    a1, b1 = (tmp_path / d / "000001.jpg" for d in "ab")
    assert a1.read_bytes() == b1.read_bytes()
    assert a1.read_bytes() != (tmp_path / "a" / "000002.jpg").read_bytes()
    # vae-tch's faces preset reads the folder (bench through the cache, 8 training images).
    done = vae_tch("bench", "--config", str(ROOT / "configs" / "faces-celeba.toml"), "--input-shape", "3,32,32",
                   "--data-dir", "a", "--device", "cpu", "--batch-size", "4", "--steps", "1", "--warm-up", "0",
                   cwd=tmp_path)
    assert "8 training images of a" in done.stderr


def test_the_pytorch_faces_port_is_the_presets_model():
    from bench_faces import PlainFaces

    cfg = vae_torch.VaeConfig.from_toml(ROOT / "configs" / "faces-celeba.toml")
    reference = vae_torch.VAE(cfg)
    port = PlainFaces(128)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(port) == count(reference)
    recon, mu, log_var = port(torch.rand(2, 3, 128, 128))
    assert recon.shape == (2, 3, 128, 128) and mu.shape == log_var.shape == (2, 200)


def test_bench_faces_times_vae_tch_and_pytorch_side_by_side(tmp_path):
    assert BINARY.exists()
    out = tmp_path / "faces.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--faces", "--device", "cpu", "--image-size", "32",
         "--batch-size", "4", "--steps", "2", "--warm-up", "1", "--repeats", "1", "--json", str(out)],
        capture_output=True, text=True, check=True,
    )
    rows = json.loads(out.read_text())["rows"]
    names = {r["trainer"] for r in rows}
    assert {"pytorch eager fp32", "pytorch eager bf16+cl"} <= names, names
    assert any(n.startswith("vae-tch") and "fp32" in n for n in names), names
    assert any(n.startswith("vae-tch") and "bf16" in n for n in names), names
    for r in rows:
        assert r["median"] > 0 and abs(r["celeba_epoch_s"] - r["median"] * 202_599 / 4 / 1000) < 1e-6
    assert "CelebA epoch" in done.stdout


def test_make_celeba_answers_bad_arguments_in_a_line_not_a_traceback(tmp_path):
    (tmp_path / "a-file").write_text("")
    for args, want in [
        (["--out", str(tmp_path / "a-file")], "--out"),
        (["--out", "/proc/no/such", "--count", "2"], "cannot write there"),
        (["--out", str(tmp_path / "f"), "--workers", "0"], "--workers 0: use at least one process"),
        (["--out", str(tmp_path / "f"), "--count", "0"], "--count 0"),
    ]:
        r = subprocess.run([sys.executable, str(ROOT / "scripts" / "make-celeba.py"), *args],
                           capture_output=True, text=True)
        assert r.returncode != 0 and want in r.stderr, r.stderr
        assert "Traceback" not in r.stderr, r.stderr
