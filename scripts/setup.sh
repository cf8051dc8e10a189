#!/usr/bin/env bash
# Idempotent set-up for vae-tch: safe to rerun, silent when everything is already in place.
#  1. .venv with the pinned torch wheel (libtorch for tch) and the Python test packages;
#  2. .cargo/config.toml [env] so that cargo finds that libtorch with nothing exported;
#  3. the release binary and the default data set (MNIST) in data/mnist (VAE_TCH_SKIP_DATA=1
#     skips the data, as the Dockerfile does);
#  4. Debian's chromium for the browser test of `vae-tch serve` (tests/python/test_serve_browser.py
#     drives it with Playwright), where this is root with apt-get; the test skips without it;
#  5. Debian's Slurm (slurmctld, slurmd, slurm-client, munge) for tests/slurm.rs, which runs sweeps
#     through a one-node cluster (scripts/slurm/local-cluster.sh); likewise, or it skips.
# VAE_TCH_BUILD_ONLY=1 installs only what the build needs (torch and the CUDA headers), not the
# Python test packages: the Dockerfile's build stage.
# Works as root on a fresh Debian machine that reaches only the package registries; every network
# step has a short timeout and says what failed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

TORCH_VERSION=2.11.0          # tch 0.24 is built for exactly this libtorch: change both together
PY_PACKAGES=(numpy pytest safetensors keras h5py onnx onnxruntime onnxscript tensorboard playwright submitit)
# The CUDA runtime headers' crt/ folder, which the wheel's own nvidia-cuda-runtime lacks: the
# CUDA-graph shim (csrc/cuda_graph.cpp) includes cuda_runtime_api.h, which includes it.
CUDA_CRT=nvidia-cuda-crt==13.0.88
VENV=.venv
say() { printf 'setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# --- 1. Python venv with torch -------------------------------------------------------------
python=${PYTHON:-python3}
command -v "$python" >/dev/null || die "python3 not found (install python3 3.10+ and python3-venv)"
if [ -e "$VENV" ] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
  # A .venv made on another machine (copied into a container, say) points at a Python that is not
  # here; python3-venv is not what is missing. pyvenv.cfg names the Python it was made from.
  home=$(sed -n 's/^home *= *//p' "$VENV/pyvenv.cfg" 2>/dev/null | head -n 1 || true)
  target=$(readlink "$VENV/bin/python" 2>/dev/null || true)
  say "$VENV/bin/python does not run here: it was made from the Python in ${home:-${target:-an unknown folder}}, which this machine lacks (a .venv made on another machine?): making a new $VENV"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  if ! "$python" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      say "python3-venv missing: installing it with apt-get"
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$python" -m venv "$VENV"
    else
      die "'$python -m venv' failed: install python3-venv"
    fi
  fi
fi
vpy="$root/$VENV/bin/python"
[ -n "${VAE_TCH_BUILD_ONLY:-}" ] && PY_PACKAGES=()
if ! KERAS_BACKEND=torch "$vpy" - "$TORCH_VERSION" "${PY_PACKAGES[@]}" <<'PY' 2>/dev/null
import importlib, os, sys
import torch
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__version__
for name in sys.argv[2:]:
    importlib.import_module(name)
site = os.path.dirname(os.path.dirname(torch.__file__))
assert os.path.isfile(os.path.join(site, "nvidia/cu13/include/crt/host_config.h"))
PY
then
  wanted="torch==$TORCH_VERSION and $CUDA_CRT"
  [ ${#PY_PACKAGES[@]} -eq 0 ] || wanted="torch==$TORCH_VERSION, $CUDA_CRT and ${PY_PACKAGES[*]}"
  say "installing $wanted into $VENV (about 5 GB, a few minutes)"
  "$vpy" -m pip install --disable-pip-version-check -q --timeout 30 --retries 2 \
      "torch==$TORCH_VERSION" "$CUDA_CRT" "${PY_PACKAGES[@]}" \
    || die "pip could not install torch==$TORCH_VERSION (is PyPI reachable?)"
fi

# --- 2. cargo finds this libtorch ----------------------------------------------------------
torch_dir=$("$vpy" -c 'import torch, os; print(os.path.dirname(torch.__file__))')
abi=$("$vpy" -c 'import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))')
config=$(cat <<TOML
# Written by scripts/setup.sh (git-ignored): the libtorch of .venv's torch==$TORCH_VERSION wheel.
[env]
LIBTORCH = "$torch_dir"
LIBTORCH_CXX11_ABI = "$abi"
TOML
)
mkdir -p .cargo
if [ "$(cat .cargo/config.toml 2>/dev/null)" != "$config" ]; then
  say "writing .cargo/config.toml (LIBTORCH=$torch_dir)"
  printf '%s\n' "$config" > .cargo/config.toml
fi

# --- 3. binary and default data ------------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found (install Rust from rustup or Debian's cargo)"
if [ ! -x target/release/vae-tch ]; then
  say "building vae-tch (release; the first build compiles tch's C++ glue, a few minutes)"
fi
cargo build --release --quiet
if [ -z "${VAE_TCH_SKIP_DATA:-}" ] && [ ! -f data/mnist/SOURCE ]; then
  say "fetching the default data set (MNIST) into data/mnist"
  target/release/vae-tch data fetch mnist --dir data/mnist \
    || say "warning: no MNIST data yet; 'vae-tch data fetch mnist' says why (tests do not need it)"
fi

# --- 4. a browser for the serve page's test ------------------------------------------------
if [ -z "${VAE_TCH_BUILD_ONLY:-}" ] && [ -z "${VAE_TCH_SKIP_BROWSER:-}" ] && [ ! -x /usr/bin/chromium ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's chromium (the browser test of vae-tch serve)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
      || say "warning: apt-get could not install chromium; the browser test will skip"
  else
    say "no /usr/bin/chromium (install Debian's chromium as root): the browser test will skip"
  fi
fi

# --- 5. Slurm for the one-node cluster test ------------------------------------------------
if [ -z "${VAE_TCH_BUILD_ONLY:-}" ] && [ -z "${VAE_TCH_SKIP_SLURM:-}" ] && [ ! -x /usr/sbin/slurmctld ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    say "installing Debian's Slurm and munge (tests/slurm.rs runs sweeps through a one-node cluster)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null) \
      || say "warning: apt-get could not install Slurm; the Slurm test will skip"
  else
    say "no Slurm (install slurmctld slurmd slurm-client munge as root): the Slurm test will skip"
  fi
fi
