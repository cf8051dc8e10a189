#!/usr/bin/env python3
"""A synthetic stand-in for CelebA's img_align_celeba: COUNT JPEGs of 178x218 (CelebA's aligned
size) named 000001.jpg, 000002.jpg, ... in one folder, for timing the image-folder pipeline (cache
build, epochs) at full size where the real set cannot be downloaded. Each image is a smooth
background, a skin-toned ellipse with darker features and fine noise, saved at JPEG quality 90,
so that files (about 6-9 KB) and decoding cost are of CelebA's order. Deterministic per index.
Needs Pillow; uses every core.

With --attributes each face is drawn with seeded attributes, and the folder gets CelebA's
attribute table in both layouts: `list_attr_celeba.csv` (Kaggle's: `image_id` and one column per
attribute, 1 / -1) and `list_attr_celeba.txt` (the original release's: the count, the 40 names,
then `000001.jpg -1  1 ...`). Drawn, so that a model can learn them: Eyeglasses (thick dark
frames over the eyes), Smiling (a curved mouth, else a straight one), Mouth_Slightly_Open (a dark
opening), Wearing_Lipstick (a red mouth), Blond_Hair (yellow hair, else dark), Male (short hair
and a shaded chin). The other 34 of CelebA's 40 columns are drawn at random, with no mark in the
image (as an attribute the pixels do not show).

    python3 scripts/make-celeba.py --out /tmp/celeba --count 202599
    vae-tch train --config configs/faces-celeba.toml --data-dir /tmp/celeba --epochs 1
    python3 scripts/make-celeba.py --out /tmp/faces --count 5000 --attributes
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
# CelebA's 40 attributes, in its tables' order (list_attr_celeba.txt, line 2).
ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
# The drawn attributes and how often each is on.
DRAWN = {"Eyeglasses": 0.25, "Smiling": 0.5, "Mouth_Slightly_Open": 0.4, "Wearing_Lipstick": 0.35,
         "Blond_Hair": 0.2, "Male": 0.45}
# Where the glasses go, as a fraction of the image's height: the band of rows around the eyes.
GLASSES_BAND = (0.30, 0.48)


def attributes_of(index: int) -> dict[str, bool]:
    """Face `index`'s attributes: seeded by the index alone (not by the drawing's own draws)."""
    rnd = random.Random(1_000_003 * index + 17)
    on = {name: rnd.random() < p for name, p in DRAWN.items()}
    for name in ATTRIBUTES:
        if name not in on:
            on[name] = rnd.random() < 0.3
    return on


def face_with(index: int, attr: dict[str, bool]) -> Image.Image:
    """A face drawn with `attr` (see the module's header); the rest seeded by `index`."""
    rnd = random.Random(index)
    top = tuple(rnd.randrange(120, 230) for _ in range(3))
    bottom = tuple(rnd.randrange(100, 210) for _ in range(3))
    img = Image.linear_gradient("L").resize((WIDTH, HEIGHT))
    img = Image.composite(Image.new("RGB", img.size, bottom), Image.new("RGB", img.size, top), img)
    draw = ImageDraw.Draw(img)
    skin = (rnd.randrange(190, 245), rnd.randrange(150, 200), rnd.randrange(120, 170))
    cx, cy = WIDTH // 2 + rnd.randrange(-4, 5), HEIGHT // 2 + rnd.randrange(-3, 4)
    w, h = rnd.randrange(52, 62), rnd.randrange(70, 80)
    if attr["Blond_Hair"]:
        hair = (rnd.randrange(225, 250), rnd.randrange(195, 225), rnd.randrange(80, 130))
    else:
        hair = tuple(rnd.randrange(30, 90) for _ in range(3))
    if attr["Male"]:
        draw.ellipse((cx - w - 2, cy - h - 10, cx + w + 2, cy - h // 3), fill=hair)
    else:
        draw.ellipse((cx - w - 14, cy - h - 14, cx + w + 14, cy + h), fill=hair)
    draw.ellipse((cx - w, cy - h, cx + w, cy + h), fill=skin)
    if attr["Male"]:
        shade = tuple(max(0, c - 45) for c in skin)
        draw.chord((cx - w + 6, cy + 10, cx + w - 6, cy + h), 20, 160, fill=shade)
    eye_y = cy - 18
    for side in (-1, 1):
        ex = cx + side * w // 2
        draw.ellipse((ex - 9, eye_y - 5, ex + 9, eye_y + 5), fill=(250, 250, 250))
        draw.ellipse((ex - 4, eye_y - 4, ex + 4, eye_y + 4), fill=(40, 30, 30))
        draw.line((ex - 12, eye_y - 14, ex + 12, eye_y - 15), fill=hair, width=3)
        if attr["Eyeglasses"]:
            draw.ellipse((ex - 19, eye_y - 14, ex + 19, eye_y + 14), outline=(10, 10, 10), width=6)
    if attr["Eyeglasses"]:
        draw.line((cx - w // 2 + 19, eye_y, cx + w // 2 - 19, eye_y), fill=(10, 10, 10), width=5)
    draw.line((cx, cy - 4, cx - 4, cy + 16), fill=tuple(max(0, c - 80) for c in skin), width=2)
    lips = (200, 20, 50) if attr["Wearing_Lipstick"] else tuple(max(0, c - 70) for c in skin)
    my = cy + 36
    if attr["Smiling"]:
        draw.arc((cx - 24, my - 14, cx + 24, my + 10), 20, 160, fill=lips, width=6)
    else:
        draw.line((cx - 20, my, cx + 20, my), fill=lips, width=6)
    if attr["Mouth_Slightly_Open"]:
        draw.ellipse((cx - 8, my - 2, cx + 8, my + 8), fill=(60, 10, 20))
    noise = Image.effect_noise((WIDTH, HEIGHT), rnd.uniform(6, 12)).convert("RGB")
    return Image.blend(img.filter(ImageFilter.GaussianBlur(1.0)), noise, 0.08)


def write_tables(out: Path, count: int) -> None:
    """list_attr_celeba.csv (Kaggle's layout) and list_attr_celeba.txt (the original's)."""
    rows = [(f"{i:06d}.jpg", attributes_of(i)) for i in range(1, count + 1)]
    with open(out / "list_attr_celeba.csv", "w") as f:
        f.write("image_id," + ",".join(ATTRIBUTES) + "\n")
        for name, a in rows:
            f.write(name + "," + ",".join("1" if a[n] else "-1" for n in ATTRIBUTES) + "\n")
    with open(out / "list_attr_celeba.txt", "w") as f:
        f.write(f"{count}\n" + " ".join(ATTRIBUTES) + " \n")
        for name, a in rows:
            f.write(name + " " + " ".join(f"{1 if a[n] else -1:2d}" for n in ATTRIBUTES) + "\n")

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


def write_range(args: tuple[str, int, int, bool]) -> int:
    out, start, stop, with_attributes = args
    for i in range(start, stop):
        img = face_with(i, attributes_of(i)) if with_attributes else face(i)
        img.save(os.path.join(out, f"{i:06d}.jpg"), quality=90)
    return stop - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="the folder to fill (made if missing)")
    ap.add_argument("--count", type=int, default=CELEBA_IMAGES, help=f"how many images [default: {CELEBA_IMAGES}]")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes [default: every core]")
    ap.add_argument("--attributes", action="store_true",
                    help="draw seeded attributes and write list_attr_celeba.csv and .txt beside the images")
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
    jobs = [(str(args.out), s, min(s + chunk, args.count + 1), args.attributes)
            for s in range(1, args.count + 1, chunk)]
    done = 0
    try:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            for n in pool.map(write_range, jobs):
                done += n
    except OSError as e:
        sys.exit(f"make-celeba: writing into {args.out} failed after {done} images: {e}")
    if args.attributes:
        write_tables(args.out, args.count)
    size = sum(p.stat().st_size for p in args.out.glob("*.jpg"))
    print(f"make-celeba: {done} JPEGs of {WIDTH}x{HEIGHT} in {args.out} ({size / 2**20:.0f} MiB) "
          f"in {time.perf_counter() - t0:.1f} s with {args.workers} processes")


if __name__ == "__main__":
    main()
