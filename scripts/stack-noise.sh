#!/usr/bin/env bash
# With real noise, a stacked model trains like a solo one: trains configs/sweeps/seeds-fashion.toml
# (one config, seeds 1..6) stacked and one point at a time, and compares each stacked point's
# final test loss with the solo seeds' (issue 16). It prints whether each lies within the solo
# seeds' spread (min..max), and fails where the stacked points' mean lies more than 3 standard
# errors from the solo seeds' mean (Welch's t). A stacked run is another draw of the same
# training: a new draw lies outside the range of n earlier ones with probability 2 / (n + 1),
# and these short runs have outliers (one seed in twelve ended 2 above the rest), so a
# per-point range would fail an unbiased stack often. On the CPU about 4 minutes.
#   scripts/stack-noise.sh [--device cpu|cuda] [--epochs N] [--train-limit N]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${VAE_TCH:-$root/target/release/vae-tch}
device=cpu epochs=2 limit=3000
while [ $# -gt 0 ]; do
  case $1 in
    --device) device=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --train-limit) limit=$2; shift 2 ;;
    *) echo "stack-noise: unknown argument $1" >&2; exit 2 ;;
  esac
done
work=${OUT:-$(mktemp -d)}
for mode in on off; do
  "$bin" sweep run "$root/configs/sweeps/seeds-fashion.toml" --out "$work/$mode" --stack "$mode" \
    --device "$device" --epochs "$epochs" --train-limit "$limit" --data-dir "$root/data/fashion-mnist" \
    --no-export -q > /dev/null
done
python3 - "$work" <<'PY'
import csv, statistics, sys
from pathlib import Path
work = Path(sys.argv[1])
def losses(mode):
    with open(work / mode / "summary.csv") as f:
        return {r["point"]: float(r["test_loss"]) for r in csv.DictReader(f)}
stacked, solo = losses("on"), losses("off")
lo, hi = min(solo.values()), max(solo.values())
mean, sd = statistics.mean(solo.values()), statistics.stdev(solo.values())
print(f"solo seeds' test loss: {', '.join(f'{k} {v:.3f}' for k, v in solo.items())}")
print(f"  spread {lo:.3f}..{hi:.3f}, mean {mean:.3f}, sd {sd:.3f}")
for k, v in stacked.items():
    where = "within the spread" if lo <= v <= hi else "outside the spread"
    print(f"stacked {k}: {v:.3f} {where}")
s_mean, s_sd = statistics.mean(stacked.values()), statistics.stdev(stacked.values())
se = (s_sd ** 2 / len(stacked) + sd ** 2 / len(solo)) ** 0.5
t = (s_mean - mean) / se
print(f"stacked mean {s_mean:.3f} (sd {s_sd:.3f}) against solo {mean:.3f}: Welch t = {t:.2f}")
sys.exit(1 if abs(t) > 3 else 0)
PY
