#!/usr/bin/env bash
# The training-speed benchmark: vae-tch against PyTorch in one run (scripts/bench.py says what
# it times). Uses .venv's Python where it exists (a build machine), else python3 (a GPU machine
# with torch and a copied release binary), and puts that torch's libraries on the library path
# so that a copied binary finds them.
#   scripts/bench.sh --device cpu --repeats 5
#   scripts/bench.sh --device cuda --batch-size 32,256,1024 --json bench.json
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py=python3
[ -x "$root/.venv/bin/python" ] && py="$root/.venv/bin/python"
torch_lib=$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$py" "$root/scripts/bench.py" "$@"
