"""What scripts/bench.py (the seed's model) and scripts/bench_faces.py (the faces model) share:
the batches, the timing loop (eager, or the whole step in one CUDA graph), running `vae-tch
bench` for its JSON rows, and the Markdown tables and JSON of the results."""
from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def batches(n: int, bs: int, device: str):
    """Endless full batches of indices, a fresh permutation per pass."""
    while True:
        perm = torch.randperm(n, device=device)
        for s in range(0, n - bs + 1, bs):
            yield perm[s : s + bs]


def timed(step, opt, it, steps: int, warm_up: int, graphed: bool) -> float:
    """ms per `step(indices)` over `steps` batches of `it` after `warm_up`: eager, or with the
    whole step captured in one torch.cuda.graph and replayed (PyTorch's whole-network capture,
    docs/source/notes/cuda.rst, "Whole-network capture")."""
    sync = torch.cuda.synchronize if graphed or torch.cuda.is_initialized() else (lambda: None)
    if not graphed:
        for _ in range(warm_up):
            step(next(it))
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            step(next(it))
        sync()
        return (time.perf_counter() - t0) * 1000 / steps
    static_idx = next(it).clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step(static_idx)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    opt.zero_grad(set_to_none=True)
    with torch.cuda.graph(graph):
        step(static_idx)
    for _ in range(warm_up):
        static_idx.copy_(next(it))
        graph.replay()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        static_idx.copy_(next(it))
        graph.replay()
    sync()
    return (time.perf_counter() - t0) * 1000 / steps


def run_vae_tch(binary: Path, args: list[str]) -> list[dict]:
    """The rows of `vae-tch bench ARGS --json FILE`; what was measured is kept when some case
    fails (said on stderr)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        done = subprocess.run([str(binary), "bench", *args, "--json", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if done.returncode != 0:  # keep what was measured; say what failed
            print(f"vae-tch bench exited {done.returncode}: {done.stderr.strip()[-2000:]}", file=sys.stderr)
        return json.loads(out.read_text()) if out.exists() else []


def device_label(cuda: bool) -> str:
    """The GPU's name, or the CPU's kind and torch's thread count."""
    if cuda:
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


def print_tables(runs: dict, sizes: list[int], extra: list[tuple]) -> list[dict]:
    """One Markdown table per batch size of `runs` ({(trainer, batch): [ms per step per repeat]}):
    min and median ms/step, the `extra` columns ((header, json key, f(median ms, batch), format)),
    and each median against vae-tch's fastest form; returns the rows for --json."""
    rows = []
    for bs in sizes:
        here = {name: ts for (name, b), ts in runs.items() if b == bs}
        ours = [statistics.median(ts) for name, ts in here.items() if name.startswith("vae-tch")]
        best = min(ours) if ours else None
        heads = "".join(f" {h} |" for h, _, _, _ in extra)
        print(f"\n| batch {bs} | min ms/step | median ms/step |{heads} median vs vae-tch best |")
        print("|---|---|---|" + "---|" * len(extra) + "---|")
        for name, ts in sorted(here.items(), key=lambda kv: statistics.median(kv[1])):
            med = statistics.median(ts)
            ratio = f"{med / best:.2f}x" if best else "-"
            values = [(key, fmt, f(med, bs)) for _, key, f, fmt in extra]
            cells = "".join(f" {fmt.format(v)} |" for _, fmt, v in values)
            print(f"| {name} | {min(ts):.3f} | {med:.3f} |{cells} {ratio} |")
            rows.append({"trainer": name, "batch_size": bs, "ms_per_step": ts, "min": min(ts), "median": med,
                         **{key: v for key, _, v in values}})
    return rows


def header(args, dev: str, what: str) -> None:
    """The line above the tables: date, device, torch, what was timed and how."""
    print(f"# {time.strftime('%Y-%m-%d')}, {args.device} ({dev}), torch {torch.__version__}, "
          f"{what}, {args.steps} timed steps, {args.repeats} repeats, alternating")


def write_json(args, dev: str, rows: list[dict], **extra) -> None:
    """--json: every number, with the device, torch, the date and the settings."""
    if args.json:
        args.json.write_text(json.dumps({"device": args.device, "device_name": dev, "torch": torch.__version__,
                                         "date": time.strftime("%Y-%m-%d"), **extra, "steps": args.steps,
                                         "repeats": args.repeats, "rows": rows}, indent=1))
