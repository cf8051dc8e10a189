"""Training speed of the seed's model: vae-tch against PyTorch, in one run, on one device, on the
same images. Run it through scripts/bench.sh (which picks the Python and the library path).

Trainers, each timed over --steps steps of shuffled full batches after --warm-up untimed steps,
with the device synchronized at both ends; the data lives on the device and each step gathers
its batch by index (as vae-tch does):
  vae-tch eager, vae-tch cuda-graph (CUDA)   `vae-tch bench`, in its own process per repeat;
  pytorch plain eager     the port a PyTorch user writes: nn.Conv2d(padding=1),
                          nn.ConvTranspose2d(padding=1, output_padding=1) (symmetric padding:
                          not Keras's numbers, fine for timing), nn.LeakyReLU(0.3), torch Adam;
  pytorch reference eager scripts/vae_torch.py (Keras semantics), torch Adam;
  pytorch graph           scripts/vae_torch.py with the whole step (gather, forward, backward,
                          Adam(capturable=True)) in one torch.cuda.graph, as PyTorch documents
                          (CUDA only); once with PyTorch's defaults, once with
                          torch.backends.cudnn.benchmark = True (vae-tch leaves it off).
With --stack K,... it also times K models trained at once (a sweep's stacked step), against:
  vae-tch stack of K      `vae-tch bench --stack K`: grouped convolutions, one flat Keras Adam;
  K solo steps            K x vae-tch's single-model step (its fastest form), run one after
                          another;
  pytorch vmap ensemble   what a PyTorch user writes: torch.func.stack_module_state +
                          functional_call + vmap(randomness="different") over
                          scripts/vae_torch.py, torch Adam over the stacked parameters; eager,
                          and (CUDA) with the whole step in one torch.cuda.graph.
and prints images per second over all models.
Repeats alternate the trainers (r1: all, r2: all, ...) so machine noise hits each alike. Prints
ms/step (min and median over repeats), s per 60,000-image epoch, and each median against
vae-tch's fastest form; --json writes every number.

    scripts/bench.sh --device cpu --batch-size 32 --repeats 5
    scripts/bench.sh --device cuda --batch-size 32,256,1024 --json bench.json
With --faces it times the book's faces model instead (scripts/bench_faces.py says how).
"""
from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ROOT, batches, device_label, header, print_tables, run_vae_tch, timed, write_json  # noqa: E402
from vae_torch import VAE, vae_loss  # noqa: E402

EPOCH_IMAGES = 60_000


class PlainVAE(nn.Module):
    """The seed's model as a PyTorch user ports it: symmetric padding, stock modules."""

    def __init__(self, latent: int = 2):
        super().__init__()
        act = nn.LeakyReLU(0.3)
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, 1, 1), act, nn.Conv2d(32, 64, 3, 2, 1), act,
            nn.Conv2d(64, 64, 3, 2, 1), act, nn.Conv2d(64, 64, 3, 1, 1), act, nn.Flatten())
        self.mu = nn.Linear(3136, latent)
        self.log_var = nn.Linear(3136, latent)
        self.fc = nn.Linear(latent, 3136)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 64, 3, 1, 1), act, nn.ConvTranspose2d(64, 64, 3, 2, 1, 1), act,
            nn.ConvTranspose2d(64, 32, 3, 2, 1, 1), act, nn.ConvTranspose2d(32, 1, 3, 1, 1), nn.Sigmoid())

    def forward(self, x):
        h = self.encoder(x)
        mu, log_var = self.mu(h), self.log_var(h)
        z = mu + torch.exp(log_var / 2) * torch.randn_like(mu)
        return self.decoder(self.fc(z).view(-1, 64, 7, 7)), mu, log_var


def plain_loss(recon, x, mu, log_var):
    r = 1000 * F.mse_loss(recon, x)
    kl = (-0.5 * torch.sum(1 + log_var - mu.square() - log_var.exp(), dim=1)).mean()
    return r + kl


def load_images(data_dir: Path) -> torch.Tensor:
    raw = gzip.decompress((data_dir / "train-images-idx3-ubyte.gz").read_bytes())
    n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    x = torch.frombuffer(bytearray(raw[16 : 16 + n * rows * cols]), dtype=torch.uint8)
    return x.view(n, 1, rows, cols).float() / 255.0


def time_torch(kind: str, x: torch.Tensor, bs: int, steps: int, warm_up: int) -> float:
    device = x.device
    torch.manual_seed(0)
    if kind == "plain":
        model = PlainVAE().to(device)
    else:
        model = VAE().to(device)
    capturable = kind.startswith("graph")
    torch.backends.cudnn.benchmark = kind == "graph-bench"
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, capturable=capturable)
    it = batches(x.shape[0], bs, device)

    def step(idx):
        xb = x.index_select(0, idx)
        recon, mu, log_var = model(xb)
        loss = plain_loss(recon, xb, mu, log_var) if kind == "plain" else vae_loss(recon, xb, mu, log_var)[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return timed(step, opt, it, steps, warm_up, capturable)


def time_ensemble(k: int, graphed: bool, x: torch.Tensor, bs: int, steps: int, warm_up: int) -> float:
    """K reference models as a torch.func vmap ensemble (the PyTorch ensembling tutorial's
    recipe), one torch Adam over the stacked parameters; the whole step in a CUDA graph when
    `graphed`."""
    import copy

    from torch.func import functional_call, stack_module_state, vmap

    device = x.device
    torch.manual_seed(0)
    models = [VAE().to(device) for _ in range(k)]
    params, buffers = stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")

    def one(p, b, xb):
        recon, mu, log_var = functional_call(base, (p, b), (xb,))
        return vae_loss(recon, xb, mu, log_var)[0]

    losses = vmap(one, in_dims=(0, 0, None), randomness="different")
    opt = torch.optim.Adam(params.values(), lr=5e-4, capturable=graphed)
    it = batches(x.shape[0], bs, device)

    def step(idx):
        xb = x.index_select(0, idx)
        loss = losses(params, buffers, xb).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return timed(step, opt, it, steps, warm_up, graphed)


def time_vae_tch(binary: Path, data_dir: Path, device: str, sizes: list[int], steps: int, warm_up: int,
                 stacks: list[int] | None = None) -> list[dict]:
    return run_vae_tch(binary, ["--device", device, "--data-dir", str(data_dir),
                                "--batch-size", ",".join(map(str, sizes)), "--steps", str(steps),
                                "--warm-up", str(warm_up), "--stack", ",".join(map(str, stacks or [1]))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--batch-size", default=None,
                    help="comma-separated batch sizes [default: 32; --faces: 32,128 on CUDA, 8 on the CPU]")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warm-up", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="IDX folder [default: data/fashion-mnist, else data/mnist, else synthetic]")
    ap.add_argument("--binary", type=Path, default=ROOT / "target" / "release" / "vae-tch")
    ap.add_argument("--json", type=Path, help="write every measurement here")
    ap.add_argument("--only", default="", help="comma-separated trainer names to run (default: all)")
    ap.add_argument("--stack", default="", help="comma-separated K: time K models trained at once instead "
                    "(vae-tch's stack, K solo steps, PyTorch's vmap ensemble), e.g. 1,4,16,64")
    ap.add_argument("--faces", action="store_true", help="time the faces model (configs/faces-celeba.toml) "
                    "instead, against PyTorch's eager, autocast, torch.compile and CUDA-graph forms "
                    "(scripts/bench_faces.py)")
    ap.add_argument("--image-size", type=int, default=None,
                    help="--faces: the image side [default: 128 on CUDA, 64 on the CPU]")
    ap.add_argument("--compile", action="store_true", help="--faces on the CPU: also time torch.compile "
                    "(inductor's first compile takes minutes on 2 cores)")
    args = ap.parse_args()
    if args.batch_size is None:
        args.batch_size = "32"
        if args.faces:
            args.batch_size = "32,128" if args.device.startswith("cuda") else "8"
    if args.faces:
        from bench_faces import faces

        return faces(args)
    if args.stack:
        return stacked(args)
    sizes = [int(s) for s in args.batch_size.split(",")]
    cuda = args.device.startswith("cuda")
    data_dir = pick_data(args, sizes)
    x = load_images(data_dir).to(args.device)
    torch_kinds = ["plain", "reference"] + (["graph", "graph-bench"] if cuda else [])
    names = {"plain": "pytorch plain eager", "reference": "pytorch reference eager", "graph": "pytorch graph",
             "graph-bench": "pytorch graph + cudnn.benchmark"}
    only = set(filter(None, args.only.split(",")))
    runs: dict[tuple[str, int], list[float]] = {}
    for r in range(args.repeats):
        if not only or any(o.startswith("vae-tch") for o in only):
            for row in time_vae_tch(args.binary, data_dir, args.device, sizes, args.steps, args.warm_up):
                runs.setdefault((row["trainer"], row["batch_size"]), []).append(row["ms_per_step"])
        for bs in sizes:
            for kind in torch_kinds:
                if only and names[kind] not in only:
                    continue
                runs.setdefault((names[kind], bs), []).append(time_torch(kind, x, bs, args.steps, args.warm_up))
        print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    dev = device_label(cuda)
    header(args, dev, f"{x.shape[0]} images of {data_dir.name}")
    rows = print_tables(runs, sizes, [("s/epoch (60k)", "s_per_epoch", lambda med, bs: med * EPOCH_IMAGES / bs / 1000,
                                       "{:.2f}")])
    write_json(args, dev, rows, data=str(data_dir))


def pick_data(args, sizes: list[int]) -> Path:
    """--data-dir, else data/fashion-mnist, else data/mnist, else a synthetic IDX set."""
    if args.data_dir is not None:
        return args.data_dir
    for d in ("fashion-mnist", "mnist"):
        if (ROOT / "data" / d / "train-images-idx3-ubyte.gz").exists():
            return ROOT / "data" / d
    sys.path.insert(0, str(ROOT / "tests" / "python"))
    from conftest import write_synthetic

    data_dir = Path(tempfile.mkdtemp()) / "synthetic"
    write_synthetic(data_dir, n_train=max(sizes) * 8, n_test=32)
    return data_dir


def stacked(args) -> None:
    """--stack: K models at once, for each K, at each batch size."""
    sizes = [int(s) for s in args.batch_size.split(",")]
    ks = [int(k) for k in args.stack.split(",")]
    cuda = args.device.startswith("cuda")
    data_dir = pick_data(args, sizes)
    x = load_images(data_dir).to(args.device)
    runs: dict[tuple[str, int, int], list[float]] = {}
    for r in range(args.repeats):
        for row in time_vae_tch(args.binary, data_dir, args.device, sizes, args.steps, args.warm_up, sorted(set(ks) | {1})):
            form = "cuda-graph" if "cuda-graph" in row["trainer"] else "eager"
            if row["models"] == 1:
                for k in ks:
                    # K solo steps, one after another: K times the single step.
                    runs.setdefault((f"{k} solo steps (vae-tch {form})", row["batch_size"], k), []).append(
                        row["ms_per_step"] * k)
            else:
                runs.setdefault((f"vae-tch stack, {form}", row["batch_size"], row["models"]), []).append(
                    row["ms_per_step"])
        for bs in sizes:
            for k in ks:
                for graphed in ([False, True] if cuda else [False]):
                    name = "pytorch vmap ensemble" + (", cuda graph" if graphed else ", eager")
                    try:
                        ms = time_ensemble(k, graphed, x, bs, args.steps, args.warm_up)
                    except Exception as e:  # noqa: BLE001 -- report and go on
                        print(f"{name}, K={k}, batch {bs} failed: {e}", file=sys.stderr)
                        continue
                    runs.setdefault((name, bs, k), []).append(ms)
        print(f"repeat {r + 1}/{args.repeats} done", file=sys.stderr)
    dev = device_label(cuda)
    header(args, dev, f"{x.shape[0]} images of {data_dir.name}")
    rows = []
    for bs in sizes:
        for k in ks:
            here = {name: ts for (name, b, kk), ts in runs.items() if b == bs and kk == k}
            ours = [statistics.median(ts) for name, ts in here.items() if name.startswith("vae-tch stack")]
            best = min(ours) if ours else None
            print(f"\n| K = {k}, batch {bs} | min ms/step | median ms/step | images/s (all models) | median vs vae-tch stack |")
            print("|---|---|---|---|---|")
            for name, ts in sorted(here.items(), key=lambda kv: statistics.median(kv[1])):
                med = statistics.median(ts)
                ratio = f"{med / best:.2f}x" if best else "-"
                print(f"| {name} | {min(ts):.3f} | {med:.3f} | {k * bs * 1000 / med:.0f} | {ratio} |")
                rows.append({"trainer": name, "batch_size": bs, "models": k, "ms_per_step": ts, "min": min(ts),
                             "median": med, "images_per_s": k * bs * 1000 / med})
    write_json(args, dev, rows, data=str(data_dir))


if __name__ == "__main__":
    main()
