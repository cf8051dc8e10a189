#!/usr/bin/env bash
# Soak test (not in CI): train on small synthetic data, kill -9 the trainer at a random moment,
# resume, again and again until the run is done; then check that metrics.csv holds every epoch
# exactly once and that the weights equal those of a run that was never interrupted (CPU,
# bit for bit).
#   scripts/soak.sh            # 12 epochs
#   EPOCHS=30 scripts/soak.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
bin="$root/target/release/vae-tch"
epochs=${EPOCHS:-12}
work=$(mktemp -d)
cd "$work"
"$py" -c "import sys; sys.path.insert(0, '$root/tests/python'); from conftest import write_synthetic; write_synthetic(__import__('pathlib').Path('data'), n_train=320, n_test=40)"
common=(--data-dir data --device cpu --batch-size 8 --seed 3 --quiet)
"$bin" train "${common[@]}" --epochs "$epochs" --out reference >/dev/null

cycles=0 kills=0
while :; do
  done_epochs=$(sed -n 's/^epoch = //p' soak/checkpoint/state.toml 2>/dev/null || echo 0)
  [ "${done_epochs:-0}" -ge "$epochs" ] && [ -f soak/export/vae.pt ] && break
  cycles=$((cycles + 1))
  if [ -f soak/config.toml ]; then
    "$bin" train --resume soak --epochs "$epochs" --device cpu --quiet >/dev/null 2>&1 &
  else
    "$bin" train "${common[@]}" --epochs "$epochs" --out soak >/dev/null 2>&1 &
  fi
  pid=$!
  # Kill after 0.05 to 1.25 s (a start takes about 0.5 s), unless it finished first.
  sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.05 + (r % 120) / 100 }')"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null || true
  [ "$cycles" -gt 500 ] && { echo "soak: no progress after 500 cycles" >&2; exit 1; }
done

"$py" - "$epochs" <<'PY'
import csv, sys, torch
from safetensors.torch import load_file
epochs = int(sys.argv[1])
rows = [int(r["epoch"]) for r in csv.DictReader(open("soak/metrics.csv"))]
assert rows == list(range(1, epochs + 1)), f"metrics.csv epochs {rows}"
a, b = load_file("reference/checkpoint/model.safetensors"), load_file("soak/checkpoint/model.safetensors")
assert a.keys() == b.keys()
bad = [k for k in a if not torch.equal(a[k], b[k])]
assert not bad, f"weights differ from the uninterrupted run: {bad}"
PY
echo "soak: $cycles starts, $kills kill -9s, $epochs epochs: metrics.csv holds each epoch once, weights equal the uninterrupted run bit for bit"
rm -rf "$work"
