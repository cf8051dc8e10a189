#!/usr/bin/env python3
"""A synthetic stand-in for CelebA's img_align_celeba: COUNT JPEGs of 178x218 (CelebA's aligned
size) named 000001.jpg, 000002.jpg, ... in one folder, for timing the image-folder pipeline (cache
build, epochs) at full size where the real set cannot be downloaded. Each image is a smooth
background, a skin-toned ellipse with darker features and fine noise, saved at JPEG quality 90,
so that files (about 6-9 KB) and decoding cost are of CelebA's order. Deterministic per index.
Needs Pillow; uses every core.

    python3 scripts/make-celeba.py --out /tmp/celeba --count 202599
    vae-tch train --config configs/faces-celeba.toml --data-dir /tmp/celeba --epochs 1
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

CELEBA_IMAGES = 202_599
WIDTH, HEIGHT = 178, 218


def face(index: int) -> Image.Image:
    """Image `index` (1-based): the same pixels for the same index on every machine."""
    rnd = random.Random(index)
    top = tuple(rnd.randrange(40, 220) for _ in range(3))
    bottom = tuple(rnd.randrange(20, 200) for _ in range(3))
    img = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    img = Image.composite(Image.new("RGB", img.size, bottom), Image.new("RGB", img.size, top), img)
    draw = ImageDraw.Draw(img)
    skin = (rnd.randrange(150, 240), rnd.randrange(100, 190), rnd.randrange(80, 160))
    cx, cy = WIDTH // 2 + rnd.randrange(-8, 9), HEIGHT // 2 + rnd.randrange(-6, 7)
    w, h = rnd.randrange(50, 70), rnd.randrange(65, 90)
    hair = tuple(rnd.randrange(0, 120) for _ in range(3))
    draw.ellipse((cx - w - 6, cy - h - 14, cx + w + 6, cy + h // 2), fill=hair)
    draw.ellipse((cx - w, cy - h, cx + w, cy + h), fill=skin)
    dark = tuple(max(0, c - 90) for c in skin)
    for side in (-1, 1):
        ex = cx + side * w // 2
        draw.ellipse((ex - 9, cy - 22, ex + 9, cy - 12), fill=(250, 250, 250))
        draw.ellipse((ex - 4, cy - 21, ex + 4, cy - 13), fill=hair)
        draw.line((ex - 12, cy - 30, ex + 12, cy - 32 + rnd.randrange(0, 5)), fill=hair, width=3)
    draw.line((cx, cy - 8, cx - 4, cy + 14), fill=dark, width=2)
    draw.arc((cx - 22, cy + 18, cx + 22, cy + 42), 20, 160, fill=(150, 40, 50), width=4)
    noise = Image.effect_noise((WIDTH, HEIGHT), rnd.uniform(8, 20)).convert("RGB")
    img = Image.blend(img.filter(ImageFilter.GaussianBlur(1.2)), noise, 0.12)
    return img


def write_range(args: tuple[str, int, int]) -> int:
    out, start, stop = args
    for i in range(start, stop):
        face(i).save(os.path.join(out, f"{i:06d}.jpg"), quality=90)
    return stop - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="the folder to fill (made if missing)")
    ap.add_argument("--count", type=int, default=CELEBA_IMAGES, help=f"how many images [default: {CELEBA_IMAGES}]")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes [default: every core]")
    args = ap.parse_args()
    if args.count < 1:
        sys.exit(f"make-celeba: --count {args.count}: make at least one image")
    if args.workers < 1:
        sys.exit(f"make-celeba: --workers {args.workers}: use at least one process")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        probe = args.out / ".make-celeba-probe"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        sys.exit(f"make-celeba: --out {args.out}: cannot write there ({e.strerror or e})")
    t0 = time.perf_counter()
    chunk = 500
    jobs = [(str(args.out), s, min(s + chunk, args.count + 1)) for s in range(1, args.count + 1, chunk)]
    done = 0
    try:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for n in pool.map(write_range, jobs):
                done += n
    except OSError as e:
        sys.exit(f"make-celeba: writing into {args.out} failed after {done} images: {e}")
    size = sum(p.stat().st_size for p in args.out.glob("*.jpg"))
    print(f"make-celeba: {done} JPEGs of {WIDTH}x{HEIGHT} in {args.out} ({size / 2**20:.0f} MiB) "
          f"in {time.perf_counter() - t0:.1f} s with {args.workers} processes")


if __name__ == "__main__":
    main()
