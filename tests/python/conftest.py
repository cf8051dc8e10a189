"""Fixtures for the Python side: the vae-tch binary built by scripts/setup.sh, a tiny
synthetic data set, and a tiny run trained with it."""
from __future__ import annotations

import gzip
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
BINARY = ROOT / "target" / "release" / "vae-tch"


def write_idx(path: Path, array: np.ndarray) -> None:
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_synthetic(directory: Path, n_train: int = 24, n_test: int = 8) -> None:
    """Small MNIST-style IDX files: a bright square whose place depends on the label."""
    rng = np.random.default_rng(0)
    directory.mkdir(parents=True, exist_ok=True)
    names = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for i, n in enumerate([n_train, n_test]):
        labels = np.arange(n) % 10
        images = rng.integers(0, 32, size=(n, 28, 28))
        for k, label in enumerate(labels):
            oy, ox = 2 + (label // 5) * 12, 2 + (label % 5) * 4
            images[k, oy : oy + 8, ox : ox + 8] = 255
        write_idx(directory / names[2 * i], images)
        write_idx(directory / names[2 * i + 1], labels)


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
