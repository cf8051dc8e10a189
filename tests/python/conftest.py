"""Fixtures for the Python side: the vae-tch binary built by scripts/setup.sh, a tiny
synthetic data set, and a tiny run trained with it."""
from __future__ import annotations

import gzip
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
BINARY = ROOT / "target" / "release" / "vae-tch"


def write_idx(path: Path, dims: tuple[int, ...], data: bytes) -> None:
    """A gzip'd IDX file of unsigned bytes (pure Python: the GPU check runs without numpy)."""
    header = struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims)
    path.write_bytes(gzip.compress(header + data))


def write_synthetic(directory: Path, n_train: int = 24, n_test: int = 8) -> None:
    """Small MNIST-style IDX files: a bright square whose place depends on the label."""
    rng = random.Random(0)
    directory.mkdir(parents=True, exist_ok=True)
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for i, n in enumerate([n_train, n_test]):
        labels = [k % 10 for k in range(n)]
        images = bytearray(rng.randrange(32) for _ in range(n * 784))
        for k, label in enumerate(labels):
            oy, ox = 2 + (label // 5) * 12, 2 + (label % 5) * 4
            for y in range(oy, oy + 8):
                start = k * 784 + y * 28 + ox
                images[start : start + 8] = b"\xff" * 8
        write_idx(directory / names[2 * i], (n, 28, 28), bytes(images))
        write_idx(directory / names[2 * i + 1], (n,), bytes(labels))


# A sweep file of 4 tiny points (2 r_loss_factors x 2 seeds), for the sweep tests.
TINY_SWEEP = """[train]
batch_size = 8
reconstruction_every = 0
[axes]
"train.r_loss_factor" = [100, 1000]
"train.seed" = [1, 2]
"""


def vae_tch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run scripts/setup.sh (it builds the release binary)")
    return subprocess.run([str(BINARY), *args], cwd=cwd, capture_output=True, text=True, check=True)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A 1-epoch vae-tch run on synthetic data (CPU)."""
    work = tmp_path_factory.mktemp("vae_tch")
    write_synthetic(work / "data")
    vae_tch("train", "--device", "cpu", "--quiet", "--data-dir", "data", "--epochs", "1", "--batch-size", "8", "--out", "run", cwd=work)
    return work / "run"


@pytest.fixture(scope="session")
def export_dir(tiny_run) -> Path:
    out = tiny_run / "export"  # written by `train` at its end
    assert out.is_dir(), "train did not export"
    return out


@pytest.fixture(scope="session")
def io(export_dir):
    from safetensors.torch import load_file

    return load_file(export_dir / "reference_io.safetensors")


def jit(export_dir: Path, name: str, map_location: str = "cpu"):
    import torch

    return torch.jit.load(str(export_dir / name), map_location=map_location)


BN_CONFIG = """[model]
use_batch_norm = true
use_dropout = true
"""


@pytest.fixture(scope="session")
def bn_run(tmp_path_factory) -> Path:
    """A 2-epoch BatchNorm + Dropout run (the faces model's layers at MNIST size), trained with an
    absolute --data-dir (the export must not carry it); the folder holding data/ and run/."""
    work = tmp_path_factory.mktemp("bn")
    write_synthetic(work / "data", n_train=48, n_test=8)
    (work / "bn.toml").write_text(BN_CONFIG)
    vae_tch("train", "--config", "bn.toml", "--device", "cpu", "--quiet", "--data-dir", str(work / "data"),
            "--epochs", "2", "--batch-size", "8", "--out", "run", cwd=work)
    return work
