"""`scripts/bench.sh --faces`: the book's faces model (configs/faces-celeba.toml: 4 stride-2 convs
with BatchNorm and Dropout, z = 200) at SxSx3, vae-tch against the same model as a PyTorch user
writes it, each in the forms that user reaches for, on random images (the timing does not depend
on the pixels), in one run, alternating repeats.

  vae-tch                 `vae-tch bench --config configs/faces-celeba.toml`: eager, and the CUDA
                          graph on CUDA, in each --precision (fp32, tf32, bf16);
  pytorch eager fp32      stock modules (nn.Conv2d(padding=1), nn.ConvTranspose2d(padding=1,
                          output_padding=1), nn.BatchNorm2d(eps=1e-3, momentum=0.01),
                          nn.Dropout(0.25)), torch Adam, TF32 off;
  pytorch eager bf16+cl   the same under torch.autocast(bfloat16), model and images channels-last;
  pytorch compile         torch.compile(model) (mode default, and max-autotune), bf16 autocast and
                          channels-last (CUDA; on the CPU with --compile);
  pytorch graph bf16+cl   the whole step (gather, forward, backward, Adam(capturable=True)) in one
                          torch.cuda.graph under autocast(cache_enabled=False) (CUDA).

Prints ms/step (min and median), images per second, and the implied time of one CelebA epoch
(202,599 images), each median against vae-tch's fastest form.

    scripts/bench.sh --faces --device cuda --batch-size 32,128
    scripts/bench.sh --faces --device cpu --image-size 64 --batch-size 8 --steps 30 --warm-up 5
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, batches, device_label, header, print_tables, run_vae_tch, timed, write_json  # noqa: E402

CELEBA_IMAGES = 202_599
CONFIG = ROOT / "configs" / "faces-celeba.toml"


class PlainFaces(nn.Module):
    """The faces model as a PyTorch user ports it: stock modules, symmetric padding."""

    def __init__(self, size: int, latent: int = 200):
        super().__init__()
        enc, c = [], 3
        for f in (32, 64, 64, 64):
            enc += [nn.Conv2d(c, f, 3, 2, 1), nn.BatchNorm2d(f, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.3),
                    nn.Dropout(0.25)]
            c = f
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.side = size // 16
        flat = 64 * self.side * self.side
        self.mu, self.log_var, self.fc = nn.Linear(flat, latent), nn.Linear(flat, latent), nn.Linear(latent, flat)
        dec, c = [], 64
        for i, f in enumerate((64, 64, 32, 3)):
            dec.append(nn.ConvTranspose2d(c, f, 3, 2, 1, 1))
            if i < 3:
                dec += [nn.BatchNorm2d(f, eps=1e-3, momentum=0.01), nn.LeakyReLU(0.3), nn.Dropout(0.25)]
            c = f
        self.decoder = nn.Sequential(*dec, nn.Sigmoid())

    def forward(self, x):
        h = self.encoder(x)
        mu, log_var = self.mu(h), self.log_var(h)
        z = mu + torch.exp(log_var / 2) * torch.randn_like(mu)
        return self.decoder(self.fc(z).view(-1, 64, self.side, self.side)), mu, log_var


def faces_loss(recon, x, mu, log_var):
    recon, mu, log_var = recon.float(), mu.float(), log_var.float()
    r = 10000 * F.mse_loss(recon, x)
    kl = (-0.5 * torch.sum(1 + log_var - mu.square() - log_var.exp(), dim=1)).mean()
    return r + kl


def time_torch(kind: str, x: torch.Tensor, size: int, bs: int, steps: int, warm_up: int) -> float:
    """ms per step of one PyTorch form (`kind`) at batch `bs` on the uint8 images `x`."""
    device = x.device
    cuda = device.type == "cuda"
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = kind != "eager-fp32"
    torch.backends.cudnn.benchmark = kind != "eager-fp32"
    bf16 = kind != "eager-fp32"
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = PlainFaces(size).to(device).to(memory_format=fmt)
    run = model
    if kind.startswith("compile"):
        torch._dynamo.reset()
        run = torch.compile(model, mode="max-autotune" if kind == "compile-max-autotune" else None)
    graphed = kind == "graph-bf16"
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, capturable=graphed)
    it = batches(x.shape[0], bs, device)

    def step(idx):
        xb = (x.index_select(0, idx).float() / 255).contiguous(memory_format=fmt)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16, cache_enabled=False if graphed else None):
            recon, mu, log_var = run(xb)
        loss = faces_loss(recon, xb, mu, log_var)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return timed(step, opt, it, steps, warm_up, graphed and cuda)


def time_vae_tch(binary: Path, device: str, size: int, sizes: list[int], precisions: list[str], steps: int,
                 warm_up: int, n: int) -> list[dict]:
    return run_vae_tch(binary, ["--config", str(CONFIG), "--input-shape", f"3,{size},{size}", "--synthetic",
                                str(n), "--device", device, "--batch-size", ",".join(map(str, sizes)),
                                "--precision", ",".join(precisions), "--steps", str(steps),
                                "--warm-up", str(warm_up)])


def faces(args) -> None:
    cuda = args.device.startswith("cuda")
    size = args.image_size or (128 if cuda else 64)
    sizes = [int(s) for s in args.batch_size.split(",")]
    precisions = ["fp32", "tf32", "bf16"] if cuda else ["fp32", "bf16"]
    kinds = ["eager-fp32", "eager-bf16"]
    if cuda or args.compile:
        kinds += ["compile", "compile-max-autotune"]
    if cuda:
        kinds.append("graph-bf16")
    names = {"eager-fp32": "pytorch eager fp32", "eager-bf16": "pytorch eager bf16+cl",
             "compile": "pytorch compile bf16+cl", "compile-max-autotune": "pytorch compile max-autotune bf16+cl",
             "graph-bf16": "pytorch graph bf16+cl"}
    only = set(filter(None, args.only.split(",")))
    n = max(sizes) * 8
    torch.manual_seed(0)
    x = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, device=args.device)
    runs: dict[tuple[str, int], list[float]] = {}
    for r in range(args.repeats):
        if not only or any(o.startswith("vae-tch") for o in only):
            for row in time_vae_tch(args.binary, args.device, size, sizes, precisions, args.steps, args.warm_up, n):
                runs.setdefault((row["trainer"], row["batch_size"]), []).append(row["ms_per_step"])
        for bs in sizes:
            for kind in kinds:
                if only and names[kind] not in only:
                    continue
                try:
                    ms = time_torch(kind, x, size, bs, args.steps, args.warm_up)
                except Exception as e:  # noqa: BLE001 -- report and go on
                    print(f"{names[kind]} at batch {bs} failed: {e}", file=sys.stderr)
                    continue
                runs.setdefault((names[kind], bs), []).append(ms)
        print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    dev = device_label(cuda)
    header(args, dev, f"faces model at {size}x{size}x3, {n} random images")
    rows = print_tables(runs, sizes, [
        ("images/s", "images_per_s", lambda med, bs: bs * 1000 / med, "{:.0f}"),
        ("CelebA epoch (s)", "celeba_epoch_s", lambda med, bs: med * CELEBA_IMAGES / bs / 1000, "{:.1f}"),
    ])
    write_json(args, dev, rows, image_size=size)
