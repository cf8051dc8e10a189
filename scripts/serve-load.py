#!/usr/bin/env python3
"""Load check of `vae-tch serve`: starts the server on a run folder, then POSTs /api/decode with
random z (N(0, 1), the model's latent size) from 1 and from 8 concurrent clients (threads, each
with its own keep-alive connection), and prints the latency p50 / p99 and the requests per
second of each. Standard library only.

    .venv/bin/python scripts/serve-load.py runs/mnist-... [--seconds 10] [--clients 1,8]

The server decodes on one thread and batches the requests that wait together, so 8 clients get
more requests per second than 1 at a higher latency each."""
from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import subprocess
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def client(host: str, port: int, dim: int, until: float, seed: int, out: list[float], errors: list[str]):
    rng = random.Random(seed)
    conn = http.client.HTTPConnection(host, port, timeout=30)
    while time.perf_counter() < until:
        body = json.dumps({"z": [rng.gauss(0, 1) for _ in range(dim)]})
        t = time.perf_counter()
        conn.request("POST", "/api/decode", body, {"content-type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        out.append(time.perf_counter() - t)
        if r.status != 200 or not data.startswith(b"\x89PNG"):
            errors.append(f"{r.status}: {data[:100]!r}")


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", help="a run folder")
    ap.add_argument("--seconds", type=float, default=10.0, help="per level of concurrency")
    ap.add_argument("--clients", default="1,8", help="levels of concurrency")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--binary", default=str(ROOT / "target/release/vae-tch"))
    args = ap.parse_args()
    proc = subprocess.Popen([args.binary, "serve", args.run, "--port", "0", "--device", args.device],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = next(w for w in proc.stdout.readline().split() if w.startswith("http://")).rstrip("/")
        host, port = url.removeprefix("http://").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port))
        conn.request("GET", "/api/info")
        point = json.load(conn.getresponse())["points"][0]
        dim, shape = point["latent_dim"], point["input_shape"]
        # Warm-up: the model loads on the first request.
        warm: list[float] = []
        client(host, int(port), dim, time.perf_counter() + 2, 0, warm, [])
        print(f"vae-tch serve {args.run}: {shape[0]}x{shape[1]}x{shape[2]} images, {dim}-D latent, "
              f"device {args.device}, {args.seconds:.0f} s per level")
        print(f"{'clients':>7} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for n in [int(c) for c in args.clients.split(",")]:
            lat: list[list[float]] = [[] for _ in range(n)]
            errors: list[str] = []
            until = time.perf_counter() + args.seconds
            threads = [threading.Thread(target=client, args=(host, int(port), dim, until, i + 1, lat[i], errors))
                       for i in range(n)]
            t0 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t0
            all_ = [x for xs in lat for x in xs]
            if errors:
                raise SystemExit(f"{len(errors)} failed requests, the first: {errors[0]}")
            print(f"{n:>7} {len(all_):>9} {len(all_) / wall:>8.1f} {1000 * statistics.median(all_):>8.2f} "
                  f"{1000 * percentile(all_, 99):>8.2f} {1000 * max(all_):>8.2f}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
