"""The book's faces chapter end to end (issue 25), on synthetic faces: scripts/make-celeba.py
--attributes draws 3,000 faces with seeded attributes (glasses among them) and writes CelebA's
table in both layouts; the faces preset trains at 32x32 for 6 epochs (about 10 s on 2 cores);
then `attributes`, `arithmetic`, `morph` and `latent-hist` run as a user runs them.

The check that matters: the Eyeglasses vector, added to faces drawn without glasses, darkens the
band where the drawing puts glasses, more at each factor 0..4; random unit vectors of the same
length barely do. It fails if the vector's sign is flipped (the band lightens), or if the vector
is not of the model's z (it is then no better than a random one)."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from conftest import BINARY, ROOT, vae_tch

SIZE = 32
# make-celeba.py's GLASSES_BAND (rows, as a fraction of the height; the preset squashes, so the
# fractions hold at 32x32), and the columns the frames span (cx +- (w/2 + 19) of 178).
BAND_ROWS = (0.30, 0.48)
BAND_COLS = (0.20, 0.80)


@pytest.fixture(scope="module")
def chapter(tmp_path_factory):
    work = tmp_path_factory.mktemp("faces")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "make-celeba.py"), "--out", str(work / "faces"),
                    "--count", "3000", "--attributes", "--workers", "2"], check=True, capture_output=True)
    vae_tch("train", "--config", str(ROOT / "configs" / "faces-celeba.toml"), "--input-shape", f"3,{SIZE},{SIZE}",
            "--data-dir", "faces", "--device", "cpu", "--epochs", "6", "--out", "run", "--quiet", cwd=work)
    return work


def failing(*args, cwd):
    done = subprocess.run([str(BINARY), *args], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stderr


def cells(path, rows, cols):
    """The images of a `--bare` grid: [rows][cols] arrays of HxWx3 in [0, 1] (1-pixel gaps)."""
    im = np.asarray(Image.open(path).convert("RGB")).astype(np.float64) / 255
    step = SIZE + 1
    return [[im[1 + r * step:1 + r * step + SIZE, 1 + c * step:1 + c * step + SIZE] for c in range(cols)]
            for r in range(rows)]


def glasses_score(cell):
    """How dark the glasses band is: mean of max(0, 0.6 - luminance) over it (the frames are
    near-black; skin, eyes and background are lighter)."""
    r0, r1 = int(BAND_ROWS[0] * SIZE), int(np.ceil(BAND_ROWS[1] * SIZE))
    c0, c1 = int(BAND_COLS[0] * SIZE), int(BAND_COLS[1] * SIZE)
    return float(np.clip(0.6 - cell[r0:r1, c0:c1].mean(-1), 0, None).mean())


def scores(path, faces=5, factors=5):
    """The glasses score per factor (columns after the original), averaged over the faces."""
    grid = cells(path, faces, factors + 1)
    return [float(np.mean([glasses_score(grid[r][c]) for r in range(faces)])) for c in range(1, factors + 1)]


def test_attribute_vectors_follow_the_books_rule_from_either_table_layout(chapter):
    names = "Eyeglasses,Smiling,Blond_Hair,Male"
    out = vae_tch("attributes", "run", "--attribute", names, cwd=chapter).stdout
    assert "label: Eyeglasses" in out and "images : POS move : NEG move : distance" in out
    file = chapter / "run" / "attributes.safetensors"
    vectors = load_file(file)
    assert sorted(vectors) == sorted(names.split(","))
    with safe_open(file, "pt") as f:
        about = json.loads(f.metadata()["vae_tch_attributes"])
    assert about["rule"] == {"batch": 500, "tolerance": 0.08, "max_positives": 10000, "z": "sampled", "seed": 0}
    assert about["labels"].endswith("list_attr_celeba.csv") and about["split"] == "train"
    table = np.loadtxt(chapter / "faces" / "list_attr_celeba.csv", delimiter=",", skiprows=1,
                       usecols=range(1, 41), dtype=int)
    for name, v in vectors.items():
        found = about["vectors"][name]
        assert v.shape == (200,) and abs(float(v.norm()) - 1) < 1e-5
        assert found["ending"] in ("converged", "capped", "exhausted")
        # Every training image counted on one side (2,700 of the 3,000), unless it stopped early.
        assert found["positives"] + found["negatives"] <= 2700
        assert found["norm_before_scaling"] > 0
    # Eyeglasses is on a quarter of the faces: the positives are about a quarter of those seen.
    g = about["vectors"]["Eyeglasses"]
    share = g["positives"] / (g["positives"] + g["negatives"])
    assert abs(share - (table[:, 15] == 1).mean()) < 0.05
    # The original release's layout gives the very same vectors.
    vae_tch("attributes", "run", "--attribute", names, "--labels", "faces/list_attr_celeba.txt", "--brief",
            cwd=chapter)
    again = load_file(file)
    for name in vectors:
        assert torch.equal(vectors[name], again[name])


def test_the_eyeglasses_vector_puts_glasses_on_and_a_random_one_does_not(chapter):
    vae_tch("attributes", "run", "--attribute", "Eyeglasses", "--brief", cwd=chapter)
    vae_tch("arithmetic", "run", "--attribute", "Eyeglasses", "--factors", "0:4", "--bare", "--out", "glasses.png",
            cwd=chapter)
    glasses = scores(chapter / "glasses.png")
    assert all(b > a for a, b in zip(glasses, glasses[1:])), glasses
    rise = glasses[-1] - glasses[0]
    assert rise > 2 * glasses[0], glasses
    # The same faces with random unit vectors in the file's place (a copy of the run).
    for seed in range(3):
        other = chapter / f"random-{seed}"
        shutil.rmtree(other, ignore_errors=True)
        shutil.copytree(chapter / "run", other)
        file = other / "attributes.safetensors"
        with safe_open(file, "pt") as f:
            meta = f.metadata()
        v = torch.randn(200, generator=torch.Generator().manual_seed(seed))
        save_file({"Eyeglasses": v / v.norm()}, str(file), metadata=meta)
        vae_tch("arithmetic", other.name, "--attribute", "Eyeglasses", "--factors", "0:4", "--bare",
                "--out", f"random-{seed}.png", cwd=chapter)
        random = scores(chapter / f"random-{seed}.png")
        assert random[0] == pytest.approx(glasses[0]), "the same faces, the same reconstructions"
        assert abs(random[-1] - random[0]) < 0.25 * rise, (seed, random, glasses)


def test_arithmetic_morph_and_histograms_draw_their_figures(chapter):
    vae_tch("attributes", "run", "--attribute", "Smiling", "--brief", cwd=chapter)
    out = vae_tch("arithmetic", "run", "--attribute", "Smiling", cwd=chapter).stdout
    assert out.strip() == "run/arithmetic-Smiling.png"
    with Image.open(chapter / "run" / "arithmetic-Smiling.png") as im:
        assert im.size[0] > im.size[1] > 300
    # By file name (either split) or test index; the morph's ends are the images themselves.
    vae_tch("morph", "run", "--from", "000001.jpg", "--to", "5", "--bare", "--out", "morph.png", cwd=chapter)
    strip = cells(chapter / "morph.png", 1, 12)[0]
    with Image.open(chapter / "faces" / "000001.jpg") as im:
        first = np.asarray(im.convert("RGB").resize((SIZE, SIZE), Image.NEAREST)).astype(np.float64) / 255
    assert np.abs(strip[0] - first).mean() < 0.02
    vae_tch("morph", "run", "--from", "000001.jpg", "--to", "000002.jpg", "--slerp", "--format", "svg", cwd=chapter)
    assert (chapter / "run" / "morph-000001-000002.svg").read_text().count("<image") == 1
    out = vae_tch("latent-hist", "run", cwd=chapter).stdout
    assert out.strip() == "run/latent-hist.png"


def test_bad_inputs_end_in_clear_errors(chapter):
    err = failing("attributes", "run", "--attribute", "Eyeglass", cwd=chapter)
    assert "the attribute Eyeglass is not in" in err and "Eyeglasses" in err
    (chapter / "other.csv").write_text("image_id,Eyeglasses\nnot-a-face.jpg,1\n")
    err = failing("attributes", "run", "--labels", "other.csv", cwd=chapter)
    assert "other.csv names no image of the data set (3000 images; its first rows name not-a-face.jpg)" in err
    err = failing("morph", "run", "--from", "000001.jpg", "--to", "nope.jpg", cwd=chapter)
    assert "--to nope.jpg: no image of that name in the data of run run" in err
