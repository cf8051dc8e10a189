#!/usr/bin/env python3
"""A screenshot of `vae-tch serve`'s page on a run or sweep folder, for the guide: starts the
server, opens the page in Debian's chromium (Playwright, headless), does what the flags say, and
saves a PNG.

    .venv/bin/python scripts/serve-screenshot.py runs/readme docs/serve-mnist-2d.png --backdrop --hover 0.3,0.6
    .venv/bin/python scripts/serve-screenshot.py runs/faces docs/serve-faces.png --attribute Eyeglasses=3
"""
from __future__ import annotations

import argparse
import subprocess
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("path", help="a run or sweep folder")
    ap.add_argument("out", help="the PNG to write")
    ap.add_argument("--backdrop", action="store_true", help="show the manifold under the scatter")
    ap.add_argument("--hover", help="X,Y: move the pointer there, as fractions of the scatter's width and height")
    ap.add_argument("--attribute", action="append", default=[], help="NAME=FACTOR: set an attribute slider")
    ap.add_argument("--face", type=int, help="the test face the attribute sliders start from")
    ap.add_argument("--point-b", type=int, help="a sweep: show this point beside the first")
    ap.add_argument("--width", type=int, default=1300)
    ap.add_argument("--height", type=int, default=900)
    args = ap.parse_args()
    proc = subprocess.Popen([str(ROOT / "target/release/vae-tch"), "serve", args.path, "--port", "0", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = next(w for w in proc.stdout.readline().split() if w.startswith("http://"))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": args.width, "height": args.height})
            page.goto(url)
            page.wait_for_selector("body[data-ready='1']", timeout=120000)
            if args.point_b is not None:
                page.select_option("#pointB", str(args.point_b))
            if args.backdrop:
                page.check("#backdrop")
                page.wait_for_timeout(1500)
            if args.hover:
                fx, fy = (float(v) for v in args.hover.split(","))
                box = page.query_selector("#scatter").bounding_box()
                page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            if args.face is not None:
                page.fill("#face", str(args.face))
                page.dispatch_event("#face", "change")
            for a in args.attribute:
                name, value = a.split("=")
                page.fill(f"#attr-{name}", value)
            page.wait_for_timeout(1500)
            page.screenshot(path=args.out)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    print(args.out)


if __name__ == "__main__":
    main()
