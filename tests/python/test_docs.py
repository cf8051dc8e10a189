"""Every block a user can paste from README.md and docs/*.md runs as written (issue 23).

Each page runs in a fresh folder of its own, block after block in page order (a later block may
use the run an earlier one trained), with `vae-tch` on the PATH, `configs/` and `scripts/`
beside it, MNIST in `data/mnist` (a copy of the checkout's) and a small synthetic
Fashion-MNIST in `data/fashion-mnist` (the test machines cannot fetch the real one). Shell
blocks (```sh) run under bash; Python blocks (```python) under this Python.

What the test changes, so that a page runs in seconds, and nothing else:
- small limits: `train` runs at most 2 epochs on 256 training and 64 test images (a resumed run
  at most 4 epochs), `sweep run` 1 epoch on 128 and 64, `eval` 64 images at k = 5, `bench` and
  `scripts/bench.sh` 2-3 timed steps, one repeat, batches of at most 64 and stacks of at most
  4, `scripts/make-celeba.py` 300 images;
- `--device cuda` runs as `--device cpu` where there is no GPU;
- `cargo run --release --` is the built binary, `.venv/bin/python` this Python, and
  `scripts/...` the checkout's scripts.

A block that cannot run here says so on the line above it: `<!-- not run: why -->`. Every fence
names its language, so no pasteable block escapes this test untagged.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import BINARY, ROOT, write_synthetic

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\S*)\s*$")
NOT_RUN = re.compile(r"^<!-- not run: (.+\S) -->$")
RUNS = {"sh", "python"}
TIMEOUT = 300

# flag -> (cap, added when missing)
TRAIN = {"--epochs": (2, True), "--train-limit": (256, True), "--test-limit": (64, True)}
RESUME = {"--epochs": (4, False)}
CAPS = {
    ("sweep", "run"): {"--epochs": (1, True), "--train-limit": (128, True), "--test-limit": (64, True)},
    ("eval",): {"--limit": (64, True), "--k": (5, True)},
    ("bench",): {"--steps": (2, True), "--warm-up": (1, True), "--profile-steps": (2, False),
                 "--batch-size": (64, False), "--stack": (4, False)},
}
SCRIPT_CAPS = {
    "bench.sh": {"--repeats": (1, True), "--steps": (3, True), "--warm-up": (1, True),
                 "--batch-size": (64, False), "--stack": (4, False)},
    "make-celeba.py": {"--count": (300, False)},
}


def fences(page: Path) -> list[tuple[int, str, str, str | None]]:
    """(line, language, text, why it is not run) of every fenced block of `page`."""
    lines = page.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, lang = i, m.group(1)
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        above = next((lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), "")
        why = None
        if (n := NOT_RUN.match(above)) is not None:
            why = n.group(1)
        elif above == "<!-- test-command -->":
            why = "the test command: CI runs it (.ci/run)"
        out.append((start + 1, lang, "\n".join(lines[start + 1 : j]), why))
        i = j + 1
    return out


def capped(tokens: list[str], caps: dict) -> list[str]:
    """`tokens` with each capped flag at most its cap (added where missing and asked); a
    comma-separated list is capped value by value."""
    def cap_value(value: str, cap: int) -> str:
        values = dict.fromkeys(str(min(int(v), cap)) for v in value.split(","))
        return ",".join(values)

    out = list(tokens)
    for flag, (cap, add) in caps.items():
        hit = [k for k, t in enumerate(out) if t == flag or t.startswith(flag + "=")]
        if not hit and add:
            out += [flag, str(cap)]
        for k in hit:
            if out[k].startswith(flag + "="):
                out[k] = f"{flag}={cap_value(out[k].split('=', 1)[1], cap)}"
            else:
                out[k + 1] = cap_value(out[k + 1], cap)
    return out


def rewrite_command(tokens: list[str], gpu: bool) -> list[str]:
    if tokens[:4] == ["cargo", "run", "--release", "--"]:
        tokens = ["vae-tch", *tokens[4:]]
    if tokens[:1] == [".venv/bin/python"]:
        tokens = [sys.executable, *tokens[1:]]
    script = next((k for k, t in enumerate(tokens[:2]) if t.startswith("scripts/")), None)
    if script is not None:
        caps = SCRIPT_CAPS.get(Path(tokens[script]).name, {})
        tokens[script] = str(ROOT / tokens[script])
        tokens = capped(tokens, caps)
    if not gpu:
        tokens = ["cpu" if t.startswith("cuda") and k > 0 and tokens[k - 1] == "--device" else t
                  for k, t in enumerate(tokens)]
    if tokens[:1] != ["vae-tch"] or len(tokens) < 2:
        return tokens
    sub = tuple(tokens[1:3])
    if sub[0] == "train" and "--print-config" not in tokens:
        return capped(tokens, RESUME if "--resume" in tokens else TRAIN)
    for key, caps in CAPS.items():
        if sub[: len(key)] == key:
            return capped(tokens, caps)
    return tokens


def rewrite(block: str, gpu: bool) -> str:
    """A shell block with the limits above. A command of vae-tch, cargo, .venv's Python or a
    script is rewritten (its comment dropped); the rest of the shell (`&&`, a trailing `&` and
    what follows it, `wait $pid`) is kept as written."""
    joined = re.sub(r"\\\n\s*", " ", block)
    out = []
    for line in joined.splitlines():
        m = re.match(r"^(.*?[^&])&(?!&)(.*)$", line)
        body, after = (m.group(1), "&" + m.group(2)) if m else (line, "")
        parts = []
        for part in body.split("&&"):
            tokens = shlex.split(part, comments=True)
            if tokens and re.match(r"^(vae-tch|cargo|scripts/|\.venv/)", tokens[0]):
                part = " " + shlex.join(rewrite_command(tokens, gpu)) + " "
            parts.append(part)
        text = "&&".join(parts).strip()
        if text or after:
            out.append(f"{text} {after}".strip())
    return "\n".join(out)


def sandbox(tmp: Path) -> dict:
    for name in ("configs", "scripts"):
        (tmp / name).symlink_to(ROOT / name)
    (tmp / "data").mkdir()
    if (ROOT / "data" / "mnist").is_dir():
        shutil.copytree(ROOT / "data" / "mnist", tmp / "data" / "mnist")
    else:
        write_synthetic(tmp / "data" / "mnist", n_train=600, n_test=100)
    write_synthetic(tmp / "data" / "fashion-mnist", n_train=600, n_test=100)
    env = dict(os.environ)
    env["PATH"] = f"{BINARY.parent}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def test_every_fence_names_its_language_and_every_skip_says_why():
    for page in PAGES:
        for line, lang, _, why in fences(page):
            assert lang, f"{page.name}:{line}: a fence without a language (sh, text, toml, python, ...)"
            assert why is None or len(why) > 10, f"{page.name}:{line}: say why it is not run"


def test_the_rewrite_adds_limits_and_keeps_the_command():
    assert rewrite("vae-tch train --epochs 20 --out runs/x   # a comment", gpu=False) == (
        "vae-tch train --epochs 2 --out runs/x --train-limit 256 --test-limit 64")
    assert rewrite("vae-tch train --resume r --epochs 6 --device cuda", gpu=False) == (
        "vae-tch train --resume r --epochs 4 --device cpu")
    assert rewrite("cargo run --release -- eval r --k=100", gpu=True) == "vae-tch eval r --k=5 --limit 64"
    assert rewrite("vae-tch bench --config c \\\n    --batch-size 8 & pid=$!\nwait $pid", gpu=False) == (
        "vae-tch bench --config c --batch-size 8 --steps 2 --warm-up 1 & pid=$!\nwait $pid")
    assert rewrite("scripts/make-celeba.py --out f --count 2000", gpu=False).endswith("--out f --count 300")
    assert rewrite("vae-tch bench --batch-size 32,256,1024 --stack 1,4,16", gpu=False) == (
        "vae-tch bench --batch-size 32,64 --stack 1,4 --steps 2 --warm-up 1")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pages_blocks_run_as_pasted(page, tmp_path):
    if not BINARY.exists():
        pytest.fail(f"{BINARY} is missing: run scripts/setup.sh (it builds the release binary)")
    import torch

    gpu = torch.cuda.is_available()
    runnable = [(line, lang, text) for line, lang, text, why in fences(page) if lang in RUNS and why is None]
    if not runnable:
        pytest.skip(f"{page.name} has no block that runs here (each skip says why)")
    env = sandbox(tmp_path)
    for line, lang, text in runnable:
        if lang == "sh":
            cmd = ["bash", "-euo", "pipefail", "-c", rewrite(text, gpu)]
        else:
            cmd = [sys.executable, "-c", text]
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
        assert done.returncode == 0, (
            f"{page.name}:{line} ({lang}) exited {done.returncode}\n--- ran:\n{cmd[-1]}\n"
            f"--- stdout:\n{done.stdout[-3000:]}\n--- stderr:\n{done.stderr[-3000:]}")
