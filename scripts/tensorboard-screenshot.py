#!/usr/bin/env python3
"""A screenshot of TensorBoard's HParams tab on a sweep folder, for the guide: starts
`tensorboard --logdir SWEEP` (the pip package's own web page, no network needed), opens the tab in
Debian's chromium (Playwright, headless), and saves a PNG.

    .venv/bin/python scripts/tensorboard-screenshot.py sweeps/r-loss-mnist docs/sweep-hparams.png
    .venv/bin/python scripts/tensorboard-screenshot.py sweeps/r-loss-mnist docs/sweep-parallel.png --view parallel
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
import urllib.request

from playwright.sync_api import sync_playwright


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sweep", help="a sweep folder")
    ap.add_argument("out", help="the PNG to write")
    ap.add_argument("--view", choices=["table", "parallel", "scatter"], default="table",
                    help="the HParams tab's view")
    ap.add_argument("--width", type=int, default=1400)
    ap.add_argument("--height", type=int, default=800)
    args = ap.parse_args()
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", args.sweep,
                             "--host", "127.0.0.1", "--port", str(port), "--load_fast", "false"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(300):
            try:
                urllib.request.urlopen(url, timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(url + "#hparams")
            page.wait_for_selector("text=Trial ID", timeout=120000)
            label = {"table": "TABLE VIEW", "parallel": "PARALLEL COORDINATES VIEW", "scatter": "SCATTER PLOT MATRIX VIEW"}
            if args.view != "table":
                page.get_by_text(label[args.view], exact=False).first.click()
            page.wait_for_timeout(3000)
            page.screenshot(path=args.out)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(args.out)


if __name__ == "__main__":
    main()
