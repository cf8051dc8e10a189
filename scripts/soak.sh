#!/usr/bin/env bash
# Soak test (not in CI): train on small synthetic data, kill -9 the trainer at a random moment,
# resume, again and again until the run is done; then check that metrics.csv holds every epoch
# exactly once and that the weights equal those of a run that was never interrupted (CPU,
# bit for bit).
#   scripts/soak.sh                       # 12 epochs, kills until the run is done
#   EPOCHS=30 scripts/soak.sh
#   CYCLES=500 EPOCHS=600 scripts/soak.sh # at least 500 kill -9s, then the run finishes unkilled
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.venv/bin/python"
bin="$root/target/release/vae-tch"
epochs=${EPOCHS:-12}
want_kills=${CYCLES:-0}
work=$(mktemp -d)
cd "$work"
"$py" -c "import sys; sys.path.insert(0, '$root/tests/python'); from conftest import write_synthetic; write_synthetic(__import__('pathlib').Path('data'), n_train=320, n_test=40)"
common=(--data-dir data --device cpu --batch-size 8 --seed 3 --quiet)
"$bin" train "${common[@]}" --epochs "$epochs" --out reference >/dev/null

cycles=0 kills=0 stuck=0 last=0
while :; do
  done_epochs=$(sed -n 's/^epoch = //p' soak/checkpoint/state.toml 2>/dev/null || echo 0)
  [ "${done_epochs:-0}" -ge "$epochs" ] && [ -f soak/export/vae.pt ] && break
  if [ "${done_epochs:-0}" -gt "$last" ]; then last=$done_epochs stuck=0; else stuck=$((stuck + 1)); fi
  [ "$stuck" -gt 200 ] && { echo "soak: no progress in 200 starts (epoch $last)" >&2; exit 1; }
  cycles=$((cycles + 1))
  if [ "$want_kills" -gt 0 ] && [ "$kills" -ge "$want_kills" ]; then
    # Enough kills: let the run finish.
    "$bin" train --resume soak --epochs "$epochs" --device cpu --quiet >/dev/null 2>&1 || true
    continue
  fi
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
