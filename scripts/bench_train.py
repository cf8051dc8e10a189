"""Training speed: vae-tch against the PyTorch reference (scripts/vae_torch.py), in one run.

Both train the seed's model (batch 32, Keras Adam) on the same images for one epoch of
--steps steps; runs alternate (vae-tch, PyTorch, vae-tch, ...) so machine noise hits both, and
the table gives min and median ms/step over --repeats runs. vae-tch's time is its epoch time
from metrics.csv (the steps plus a tiny test pass and the checkpoint write); PyTorch's is the
step loop alone, with torch's own Adam (foreach) and with the Keras-exact Adam.

    .venv/bin/python scripts/bench_train.py --device cpu --steps 200 --repeats 5
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests" / "python"))
from vae_torch import VAE, KerasAdam, vae_loss  # noqa: E402


def load_images(data_dir: Path, n: int) -> torch.Tensor:
    import gzip

    raw = gzip.decompress((data_dir / "train-images-idx3-ubyte.gz").read_bytes())
    count = int.from_bytes(raw[4:8], "big")
    if count < n:
        raise SystemExit(f"{data_dir} holds {count} training images, the benchmark needs {n}")
    x = torch.frombuffer(bytearray(raw[16 : 16 + n * 784]), dtype=torch.uint8)
    return x.view(n, 1, 28, 28).float() / 255.0


def torch_epoch(x: torch.Tensor, device: str, adam: str, seed: int) -> float:
    torch.manual_seed(seed)
    model = VAE().to(device)
    opt = KerasAdam(model.parameters()) if adam == "keras" else torch.optim.Adam(model.parameters(), lr=5e-4)
    x = x.to(device)
    n = x.shape[0]
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    sync()
    t0 = time.perf_counter()
    perm = torch.randperm(n).to(device)
    for s in range(0, n, 32):
        xb = x.index_select(0, perm[s : s + 32])
        recon, mu, log_var = model(xb)
        loss, _, _ = vae_loss(recon, xb, mu, log_var, 1000.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync()
    return time.perf_counter() - t0


def vae_tch_epoch(data_dir: Path, n: int, device: str, seed: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [str(ROOT / "target/release/vae-tch"), "train", "--quiet", "--device", device,
             "--data-dir", str(data_dir), "--train-limit", str(n), "--test-limit", "32",
             "--epochs", "1", "--reconstruction-every", "0", "--seed", str(seed), "--out", f"{tmp}/run"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(f"{tmp}/run/metrics.csv") as f:
            return float(next(csv.DictReader(f))["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, default=ROOT / "data" / "mnist")
    args = ap.parse_args()
    n = args.steps * 32
    if not (args.data_dir / "train-images-idx3-ubyte.gz").exists():
        from conftest import write_synthetic

        args.data_dir = Path(tempfile.mkdtemp()) / "synthetic"
        write_synthetic(args.data_dir, n_train=n, n_test=32)
    x = load_images(args.data_dir, n)
    runs = {"vae-tch": [], "pytorch (torch Adam)": [], "pytorch (Keras Adam)": []}
    vae_tch_epoch(args.data_dir, 32 * 5, args.device, 0)  # warm-up: page cache, CUDA context
    torch_epoch(x[: 32 * 5], args.device, "torch", 0)
    for r in range(args.repeats):
        runs["vae-tch"].append(vae_tch_epoch(args.data_dir, n, args.device, r))
        runs["pytorch (torch Adam)"].append(torch_epoch(x, args.device, "torch", r))
        runs["pytorch (Keras Adam)"].append(torch_epoch(x, args.device, "keras", r))
    dev = torch.cuda.get_device_name() if args.device.startswith("cuda") else f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
    print(f"# {time.strftime('%Y-%m-%d')}, {args.device} ({dev}), torch {torch.__version__}, "
          f"{args.steps} steps of batch 32, {args.repeats} runs each, alternating")
    base = statistics.median(runs["vae-tch"]) / args.steps
    print("| trainer | min ms/step | median ms/step | median vs vae-tch |")
    print("|---|---|---|---|")
    for name, ts in runs.items():
        per = [t / args.steps * 1000 for t in ts]
        print(f"| {name} | {min(per):.2f} | {statistics.median(per):.2f} | {statistics.median(per) / 1000 / base:.2f}x |")


if __name__ == "__main__":
    main()
