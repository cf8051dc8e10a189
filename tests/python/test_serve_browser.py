"""`vae-tch serve` in a real browser: Debian's chromium driven by Playwright (no browser download).
The page's pixel-to-latent mapping is checked against the scatter's own bounds: a click on three
test images' points shows the decode of the latent point under the pointer; a slider of a 16-D
run moves one dimension; a sweep's point is picked, and a second one decodes the same z beside it.
Skips, saying why, where there is no chromium or no Playwright (scripts/setup.sh installs both
where it can). Screenshots go to $VAE_TCH_SCREENSHOTS when set (the guide's come from there)."""
from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from conftest import BINARY, vae_tch, write_synthetic

CHROMIUM = "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    pytest.skip(f"no {CHROMIUM} (scripts/setup.sh installs Debian's chromium as root)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="no Playwright (pip install playwright)")
np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")


class Server:
    def __init__(self, path: Path, cwd: Path):
        self.proc = subprocess.Popen([str(BINARY), "serve", str(path), "--port", "0", "--device", "cpu"],
                                     cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        self.url = next(w for w in line.split() if w.startswith("http://")).rstrip("/")

    def get(self, path: str):
        with urllib.request.urlopen(self.url + path) as r:
            return json.load(r)

    def decode(self, z, point: int = 0) -> bytes:
        req = urllib.request.Request(self.url + "/api/decode", data=json.dumps({"z": z, "point": point}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req) as r:
            return r.read()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("serve")
    write_synthetic(work / "data", n_train=64, n_test=40)
    common = ["--device", "cpu", "--quiet", "--data-dir", "data", "--batch-size", "8", "--no-export"]
    vae_tch("train", *common, "--epochs", "12", "--out", "run2d", cwd=work)
    vae_tch("train", *common, "--epochs", "1", "--latent-dim", "16", "--out", "run16", cwd=work)
    (work / "s.toml").write_text('[train]\nbatch_size = 8\nreconstruction_every = 0\nepochs = 1\n'
                                 '[axes]\n"train.seed" = [1, 2]\n')
    vae_tch("sweep", "run", "s.toml", "--data-dir", "data", "--device", "cpu", "--no-export", "-q", "--out", "sw", cwd=work)
    return work


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield b
        b.close()


def open_page(browser, server: Server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready='1']", timeout=20000)
    assert page.inner_text("#error") == ""
    return page


def shown(page, img: str = "#outA"):
    """The z the page says it decoded, and the bytes of the image it shows."""
    page.wait_for_function(f"document.querySelector('{img}').complete && document.querySelector('{img}').dataset.z")
    z = json.loads(page.get_attribute(img, "data-z"))
    b64 = page.evaluate(f"""async () => {{
        const r = await fetch(document.querySelector('{img}').src);
        const b = new Uint8Array(await r.arrayBuffer());
        let s = ''; for (const x of b) s += String.fromCharCode(x); return btoa(s); }}""")
    return z, base64.b64decode(b64)


def screenshot(page, name: str, tmp: Path):
    page.screenshot(path=str(tmp / name))
    if os.environ.get("VAE_TCH_SCREENSHOTS"):
        out = Path(os.environ["VAE_TCH_SCREENSHOTS"])
        out.mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / name, out / name)


def settle(page, z_expected, tol):
    """Waits until the shown image is of a z within `tol` of `z_expected` (the queue of decodes
    a pointer's moves make has drained to the last)."""
    page.wait_for_function(
        """([z, tol]) => { const img = document.querySelector('#outA');
            if (!img.dataset.z) return false;
            const got = JSON.parse(img.dataset.z);
            return got.length === z.length && got.every((v, i) => Math.abs(v - z[i]) <= tol) && img.complete; }""",
        arg=[z_expected, tol], timeout=10000)


def test_clicks_on_the_scatter_show_the_decode_of_the_point_under_the_pointer(work, browser, tmp_path):
    server = Server(work / "run2d", work)
    try:
        page = open_page(browser, server)
        scatter = server.get("/api/scatter")
        x0, x1, y0, y1 = scatter["bounds"]
        canvas = page.query_selector("#scatter")
        box = canvas.bounding_box()
        cw, ch = int(canvas.get_attribute("width")), int(canvas.get_attribute("height"))
        pad = float(canvas.get_attribute("data-pad"))
        assert json.loads(canvas.get_attribute("data-bounds")) == scatter["bounds"]
        span_x = (x1 - x0) / (cw - 2 * pad) * cw / box["width"]   # latent per screen pixel
        span_y = (y1 - y0) / (ch - 2 * pad) * ch / box["height"]
        images = []
        pts = scatter["points"]
        # Three points far apart: the leftmost, the rightmost and the topmost.
        ends = [min(range(len(pts)), key=lambda i: pts[i][0]), max(range(len(pts)), key=lambda i: pts[i][0]),
                max(range(len(pts)), key=lambda i: pts[i][1])]
        for k in ends:
            x, y, label = scatter["points"][k]
            # Where the page should draw test image k: the scatter's own mapping, y up.
            sx = box["x"] + (pad + (x - x0) / (x1 - x0) * (cw - 2 * pad)) * box["width"] / cw
            sy = box["y"] + (ch - pad - (y - y0) / (y1 - y0) * (ch - 2 * pad)) * box["height"] / ch
            sx, sy = round(sx), round(sy)
            page.mouse.click(sx, sy)
            # The latent point under the pointer, from the pixel clicked.
            under = [x0 + ((sx - box["x"]) * cw / box["width"] - pad) / (cw - 2 * pad) * (x1 - x0),
                     y0 + (ch - pad - (sy - box["y"]) * ch / box["height"]) / (ch - 2 * pad) * (y1 - y0)]
            settle(page, under, 1.01 * max(span_x, span_y))
            z, png = shown(page)
            assert abs(z[0] - x) <= 1.01 * span_x and abs(z[1] - y) <= 1.01 * span_y, (z, x, y)
            assert png == server.decode(z), "the image shown is /api/decode of the z the page says"
            diff = np.abs(pixels(png) - pixels(server.decode(under))).max()
            assert diff <= 8, f"the image under the pointer differs by {diff}/255"
            images.append(pixels(png))
        assert np.abs(images[0] - images[1]).max() > 20, "points far apart decode to different images"
        page.check("#backdrop")
        page.wait_for_timeout(500)
        screenshot(page, "serve-mnist-2d.png", tmp_path)
    finally:
        server.stop()


def test_a_slider_of_a_16_d_run_moves_its_dimension(work, browser, tmp_path):
    server = Server(work / "run16", work)
    try:
        page = open_page(browser, server)
        assert page.is_hidden("#scatterPanel"), "no scatter of a 16-D latent"
        about = server.get("/api/model")
        sliders = page.query_selector_all("#dims input[type=range]")
        assert len(sliders) == len(about["dims"]) == 12
        settle(page, [0.0] * 16, 1e-9)
        _, before = shown(page)
        top = about["dims"][0]
        value = round(top["mean"] + 2 * max(top["std"], 0.25), 3)
        page.fill(f"#dim{top['dim']}", str(value))
        expected = [0.0] * 16
        step = float(page.get_attribute(f"#dim{top['dim']}", "step"))
        expected[top["dim"]] = value
        settle(page, expected, step)
        z, png = shown(page)
        assert [i for i, v in enumerate(z) if v != 0] == [top["dim"]]
        assert png == server.decode(z)
        assert png != before
        page.click("#random")
        page.wait_for_function("JSON.parse(document.querySelector('#outA').dataset.z).filter(v => v !== 0).length > 8")
        screenshot(page, "serve-16d.png", tmp_path)
    finally:
        server.stop()


def test_a_sweep_point_is_picked_and_a_second_decodes_the_same_z(work, browser, tmp_path):
    server = Server(work / "sw", work)
    try:
        page = open_page(browser, server)
        info = server.get("/api/info")
        assert [p["values"][0][1] for p in info["points"]] == ["1", "2"]
        assert page.locator("#points tr").count() == 3
        page.select_option("#pointA", "1")
        page.wait_for_function("document.querySelector('#outA').dataset.point === '1'")
        page.click("#random")
        page.wait_for_function("document.querySelector('#outA').dataset.z && JSON.parse(document.querySelector('#outA').dataset.z).some(v => v !== 0)")
        z, png = shown(page)
        settle(page, z, 0)
        assert png == server.decode(z, point=1)
        page.select_option("#pointB", "0")
        page.wait_for_function("document.querySelector('#outB').dataset.point === '0'")
        zb, png_b = shown(page, "#outB")
        assert zb == z, "B decodes the same z"
        assert png_b == server.decode(z, point=0)
        assert png_b != png, "two models, two images"
        screenshot(page, "serve-sweep.png", tmp_path)
    finally:
        server.stop()
