"""scripts/setup.sh's own diagnoses, without installing anything: a .venv made on another
machine is named as such (not as a missing python3-venv), and the Docker build context leaves a
checkout's venv, build and data out."""
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_venv_from_another_machine_is_named_and_replaced(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to("/nonexistent/host/python3.11")
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /nonexistent/host\ninclude-system-site-packages = false\n")
    # A python whose venvs cannot install anything: setup stops at pip, before any download.
    fake = tmp_path / "fake-python"
    fake.write_text('#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = venv ]; then mkdir -p "$3/bin"; '
                    'printf "#!/bin/sh\\nexit 1\\n" > "$3/bin/python"; chmod +x "$3/bin/python"; exit 0; fi\nexit 1\n')
    fake.chmod(0o755)
    r = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "PYTHON": str(fake)}, timeout=60)
    assert r.returncode != 0
    assert "does not run here: it was made from the Python in /nonexistent/host" in r.stderr, r.stderr
    assert "another machine" in r.stderr, r.stderr
    assert "python3-venv missing" not in r.stderr, r.stderr
    # The build stage's lean install names only what it installs.
    r = subprocess.run(["bash", "scripts/setup.sh"], cwd=tmp_path, capture_output=True, text=True,
                       env={**os.environ, "PYTHON": str(fake), "VAE_TCH_BUILD_ONLY": "1"}, timeout=60)
    line = next(l for l in r.stderr.splitlines() if "installing" in l)
    assert "torch==2.11.0 and nvidia-cuda-crt==13.0.88 into .venv" in line, line


def test_the_docker_context_leaves_the_checkouts_heavy_folders_out():
    ignored = {l.strip() for l in (ROOT / ".dockerignore").read_text().splitlines() if l and not l.startswith("#")}
    assert {".venv", "target", "data", "runs"} <= ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "VAE_TCH_BUILD_ONLY=1 scripts/setup.sh" in dockerfile
