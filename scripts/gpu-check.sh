#!/usr/bin/env bash
# The one GPU check of vae-tch: run once on a machine with an NVIDIA GPU, Python and torch 2.11
# (no cargo needed), with a release binary built on a CPU machine. About 8 minutes on an H100; it stops by BUDGET seconds (default 560) with what it has.
#
# On the build machine (after scripts/setup.sh and `vae-tch data fetch fashion-mnist`):
#   scripts/gpu-check.sh --prepare      # fills .gpu/: stripped binaries, wheels, libstdc++
# then copy the checkout with target/release/vae-tch (or .gpu/), .gpu/ and data/fashion-mnist
# to the GPU machine, and there:
#   scripts/gpu-check.sh                # writes $OUT (default gpu-check-out/)/gpu-report.md
#
# The report holds: the device; the CUDA-only Rust tests (tests/cuda.rs); 3 Fashion-MNIST
# epochs with --cuda-graph on and off, same seed (losses and seconds per epoch); export and
# every figure command with --device cuda; the CUDA pytest tests; the benchmark against
# PyTorch at batch 32, 256 and 1024 (bench.json beside it); the sweep's stacked step at K = 1,
# 4, 16, 64 against K solo steps and PyTorch's vmap ensemble (bench-stack.json), a stacked
# sweep against the same sweep one point at a time, and the real-noise check
# (scripts/stack-noise.sh); serve's decode latency on CUDA; the Slurm script's GPU form. Every
# step runs under a timeout
# and the report says how each ended; a failing step does not stop the others.
#
#   scripts/gpu-check.sh --faces        # the faces model's part instead (issue 18), same budget:
# the bf16 CUDA tests; scripts/bench.sh --faces at 128x128, batch 32 and 128 (vae-tch eager and
# graph in fp32, tf32 and bf16 against PyTorch eager, autocast + channels-last, torch.compile and
# a whole-step graph); where the faces step's time goes (bench --profile); a synthetic CelebA of
# 202,599 JPEGs (scripts/make-celeba.py), its cache build and one bf16 epoch from it, on the GPU
# and with --stream-data, with the GPU's utilization; and fp32 against bf16 test loss of the
# faces preset on a real image folder (Fashion-MNIST written as PNGs).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

part=main
[ "${1:-}" = "--faces" ] && part=faces
if [ "${1:-}" = "--prepare" ]; then
  set -e
  mkdir -p .gpu/wheels .gpu/lib
  cargo build --release --quiet
  strip -o .gpu/vae-tch target/release/vae-tch
  test_bin=$(cargo test --release --no-run --test cuda --message-format=json 2>/dev/null \
    | .venv/bin/python -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "cuda" and m.get("executable"):
        print(m["executable"])')
  [ -n "$test_bin" ] || { echo "gpu-check: could not build tests/cuda.rs" >&2; exit 1; }
  strip -o .gpu/tests-cuda "$test_bin"
  # pytest and safetensors for whatever Python 3.9+ the GPU machine has (pure or abi3 wheels).
  .venv/bin/python -m pip download -q --only-binary=:all: --platform manylinux2014_x86_64 \
    --python-version 3.9 -d .gpu/wheels pytest safetensors exceptiongroup tomli typing_extensions
  # A libstdc++ as new as the one the binary was linked against, used only if the machine's
  # is older (the binary needs GLIBCXX_3.4.29).
  cp "$(g++ -print-file-name=libstdc++.so.6)" .gpu/lib/ 2>/dev/null \
    || cp /usr/lib/x86_64-linux-gnu/libstdc++.so.6 .gpu/lib/
  du -sh .gpu data/fashion-mnist
  echo "carry: .gpu data/fashion-mnist (and target/release/vae-tch if wanted)"
  exit 0
fi

out=${OUT:-$root/gpu-check-out}
mkdir -p "$out/logs"
report=$out/gpu-report.md
py=python3
[ -x "$root/.venv/bin/python" ] && py="$root/.venv/bin/python"
torch_lib=$("$py" -c 'import torch, os; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ ! -x target/release/vae-tch ] && [ -x .gpu/vae-tch ]; then
  mkdir -p target/release && cp .gpu/vae-tch target/release/vae-tch
fi
bin=$root/target/release/vae-tch
if ! "$bin" --version >/dev/null 2>&1 && [ -d .gpu/lib ]; then
  export LD_LIBRARY_PATH="$root/.gpu/lib:$LD_LIBRARY_PATH"   # an older libstdc++ here
fi
if ! "$py" -c 'import pytest, safetensors' 2>/dev/null && [ -d .gpu/wheels ]; then
  "$py" -m pip install -q --no-index --find-links .gpu/wheels pytest safetensors \
    > "$out/logs/pip.log" 2>&1 || true
fi
data=$root/data/fashion-mnist
work=$(mktemp -d)

say() { printf '%s\n' "$*" >> "$report"; }
# The whole check ends by $BUDGET seconds (default 560) after it starts: each step's limit is
# cut to what is left, so a slow machine still returns a report with every finished step.
deadline=$(( $(date +%s) + ${BUDGET:-560} ))
# step NAME SECONDS CMD...: runs CMD with a timeout, logs to logs/NAME.log, notes the result.
step() {
  local name=$1 limit=$2; shift 2
  local t0 t1 rc left
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt 5 ]; then
    say "- \`$name\`: not run (the check's time budget is spent)"
    return 125
  fi
  [ "$left" -lt "$limit" ] && limit=$left
  t0=$(date +%s.%N)
  timeout "$limit" "$@" > "$out/logs/$name.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  local what="ok"
  [ $rc -eq 124 ] && what="TIMED OUT after ${limit} s"
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && what="FAILED (exit $rc)"
  say "- \`$name\`: $what, ${secs} s"
  if [ $rc -ne 0 ]; then
    say '```'
    tail -n 15 "$out/logs/$name.log" >> "$report"
    say '```'
  fi
  return $rc
}

: > "$report"
say "# vae-tch GPU check ($part), $(date -u '+%Y-%m-%d %H:%M UTC')"
say ""
say "## Device"
say '```'
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || true
  "$py" -c 'import torch, platform; print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| cuDNN", torch.backends.cudnn.version(), "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA", "| Python", platform.python_version())'
  "$bin" info 2>&1
  nproc | sed 's/^/CPU threads: /'; } >> "$report"
say '```'

# --faces: the faces model's part (issue 18), then the logs and the end.
if [ "$part" = faces ]; then
  # Smaller on a CPU, to try the script: DEVICE=cpu CELEBA_COUNT=2000 FACES_SIZE=32
  # FACES_BATCH=8 FACES_STEPS=5 QUALITY_IMAGES=600 scripts/gpu-check.sh --faces
  dev=${DEVICE:-cuda} celeba_count=${CELEBA_COUNT:-202599} faces_size=${FACES_SIZE:-128}
  faces_batch=${FACES_BATCH:-32,128} faces_steps=${FACES_STEPS:-100}
  quality_images=${QUALITY_IMAGES:-12000} shape="3,$faces_size,$faces_size"
  say ""
  say "## bf16 in the CUDA graph (tests/cuda.rs)"
  if [ -x .gpu/tests-cuda ]; then
    step rust-cuda-bf16 90 .gpu/tests-cuda bf16 --ignored --test-threads=1 --nocapture
    grep -E "^test |faces 32x32|test result" "$out/logs/rust-cuda-bf16.log" | sed 's/^/    /' >> "$report"
  else
    say "- not run: .gpu/tests-cuda is missing (scripts/gpu-check.sh --prepare)"
  fi

  say ""
  say "## Faces model at ${faces_size}x${faces_size}x3 against PyTorch (scripts/bench.sh --faces)"
  step faces-bench 150 scripts/bench.sh --faces --device "$dev" --batch-size "$faces_batch" --image-size "$faces_size" --steps "$faces_steps" \
    --warm-up 20 --repeats 2 --json "$out/faces-bench.json" \
    --only "vae-tch,pytorch eager fp32,pytorch eager bf16+cl,pytorch graph bf16+cl"
  sed -n '/^# /,$p' "$out/logs/faces-bench.log" >> "$report"

  say ""
  say "## Where the faces step's time goes (vae-tch bench --profile, batch 32, bf16)"
  step faces-profile 60 "$bin" bench --config configs/faces-celeba.toml --device "$dev" \
    --input-shape "$shape" --batch-size "${faces_batch%%,*}" --precision bf16 \
    --steps "$faces_steps" --profile "$out/faces-trace.json"
  sed -n '/^| trainer/,$p' "$out/logs/faces-profile.log" | grep -v '^$' | head -60 >> "$report"

  say ""
  say "## A CelebA-size folder: $celeba_count JPEGs of 178x218 (scripts/make-celeba.py), one bf16 epoch"
  celeba=$work/celeba
  step make-celeba 150 "$py" scripts/make-celeba.py --out "$celeba" --count "$celeba_count"
  tail -n 1 "$out/logs/make-celeba.log" | sed 's/^/- /' >> "$report"
  # The preset holds out 10%; the rest trains in steps of 32.
  steps=$(( (celeba_count - celeba_count / 10 + 31) / 32 ))
  for mode in gpu stream; do
    flag=""; [ "$mode" = stream ] && flag="--stream-data"
    nvidia-smi --query-gpu=timestamp,utilization.gpu --format=csv,noheader,nounits -lms 200 \
      > "$out/logs/util-$mode.csv" 2>/dev/null &
    smi=$!
    step "celeba-epoch-$mode" 120 "$bin" train --config configs/faces-celeba.toml \
      --data-dir "$celeba" --cache-dir "$work/cache" --input-shape "$shape" --device "$dev" \
      --precision bf16 --epochs 1 \
      --out "$work/celeba-$mode" --no-export $flag
    kill "$smi" 2>/dev/null
    grep -E "^data: decoded|^epoch 1/1" "$out/logs/celeba-epoch-$mode.log" | sed "s/^/- $mode: /" >> "$report"
    [ -f "$work/celeba-$mode/metrics.csv" ] && tail -n 1 "$work/celeba-$mode/metrics.csv" \
      | awk -F, -v m="$mode" -v n="$steps" '{ printf "- %s: epoch %.2f s (%d training steps of 32 and the test pass): %.3f ms a step at most, against the bench'"'"'s bf16 graph step above\n", m, $8, n, $8 * 1000 / n }' >> "$report"
    awk -F', ' '$2 > 0 { n++; s += $2 } END { if (n) printf "- GPU utilization while busy (nvidia-smi, 200 ms samples above 0%%): mean %.0f%% over %d samples\n", s / n, n }' \
      "$out/logs/util-$mode.csv" >> "$report"
  done

  say ""
  say "## bf16 against fp32 on the faces preset, a real image folder ($quality_images Fashion-MNIST images as PNGs, 4 epochs)"
  step fashion-pngs 60 "$py" - "$data" "$work/fashion-png" "$quality_images" <<'PY'
import gzip, sys
from pathlib import Path
from PIL import Image
src, dst, n = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
raw = gzip.decompress((src / "train-images-idx3-ubyte.gz").read_bytes())
dst.mkdir(parents=True, exist_ok=True)
for i in range(n):
    o = 16 + i * 784
    Image.frombytes("L", (28, 28), raw[o:o + 784]).save(dst / f"{i:05d}.png")
print(f"wrote {n} PNGs")
PY
  for p in fp32 bf16; do
    step "faces-quality-$p" 90 "$bin" train --config configs/faces-celeba.toml \
      --data-dir "$work/fashion-png" --input-shape "$shape" --device "$dev" --precision "$p" \
      --epochs 4 \
      --out "$work/quality-$p" --no-export --quiet
  done
  say ""
  say "| precision | epoch | train loss | test loss | s/epoch |"
  say "|---|---|---|---|---|"
  for p in fp32 bf16; do
    [ -f "$work/quality-$p/metrics.csv" ] && tail -n +2 "$work/quality-$p/metrics.csv" \
      | awk -F, -v p="$p" '{ printf "| %s | %s | %.2f | %.2f | %.2f |\n", p, $1, $2, $5, $8 }' >> "$report"
  done
  if [ -f "$work/quality-fp32/metrics.csv" ] && [ -f "$work/quality-bf16/metrics.csv" ]; then
    a=$(tail -n 1 "$work/quality-fp32/metrics.csv" | cut -d, -f5)
    b=$(tail -n 1 "$work/quality-bf16/metrics.csv" | cut -d, -f5)
    awk -v a="$a" -v b="$b" 'BEGIN { d = (b - a) / a * 100; printf "- last test loss: bf16 %.3f against fp32 %.3f: %+.2f%% (target: within 2%%)\n", b, a, d }' >> "$report"
  fi
  say ""
  say "## torch.compile on the faces model (last: its compiles take minutes; batch 32, one repeat,"
  say "compile time not counted; compare with the vae-tch rows of the table above)"
  step faces-bench-compile 240 scripts/bench.sh --faces --device "$dev" --batch-size "${faces_batch%%,*}" --image-size "$faces_size" \
    --steps "$faces_steps" --warm-up 20 --repeats 1 --json "$out/faces-bench-compile.json" \
    --only "pytorch compile bf16+cl,pytorch compile max-autotune bf16+cl"
  sed -n '/^# /,$p' "$out/logs/faces-bench-compile.log" >> "$report"
  tar -czf "$out/logs.tar.gz" -C "$out" logs && rm -rf "$out/logs"
  rm -rf "$work"
  echo "gpu-check: wrote $report"
  exit 0
fi

say ""
say "## Rust CUDA tests (tests/cuda.rs)"
if [ -x .gpu/tests-cuda ]; then
  step rust-cuda-tests 120 .gpu/tests-cuda --ignored --test-threads=1 --nocapture
  say '```'
  grep -E "^test |test result|loss|difference|skipped" "$out/logs/rust-cuda-tests.log" >> "$report"
  say '```'
else
  say "- not run: .gpu/tests-cuda is missing (run scripts/gpu-check.sh --prepare on the build machine)"
fi

say ""
say "## Fashion-MNIST, 3 epochs, same seed: --cuda-graph on vs off (and on with --stream-data)"
for form in on off; do
  step "train-graph-$form" 120 "$bin" train --dataset fashion-mnist --data-dir "$data" \
    --device cuda --cuda-graph "$form" --epochs 3 --out "$work/graph-$form" --quiet
done
step "train-graph-on-stream" 60 "$bin" train --dataset fashion-mnist --data-dir "$data" \
  --device cuda --cuda-graph on --stream-data --epochs 3 --out "$work/graph-on-stream" --quiet
say ""
say "| --cuda-graph | epoch | train loss | test loss | s/epoch |"
say "|---|---|---|---|---|"
for form in on off on-stream; do
  [ -f "$work/graph-$form/metrics.csv" ] && tail -n +2 "$work/graph-$form/metrics.csv" \
    | awk -F, -v f="$form" '{ printf "| %s | %s | %.3f | %.3f | %.2f |\n", f, $1, $2, $5, $8 }' >> "$report"
done
grep -h "^step_form" "$work"/graph-*/config.toml 2>/dev/null | sed 's/^/- recorded: /' >> "$report"

say ""
say "## vae-tch serve --device cuda: decode latency (scripts/serve-load.py, the graph-on run)"
step serve-cuda 40 "$py" scripts/serve-load.py "$work/graph-on" --device cuda --seconds 5 --binary "$bin"
sed -n '/^clients/,$p' "$out/logs/serve-cuda.log" | sed 's/^/    /' >> "$report"

say ""
say "## Benchmark (scripts/bench.sh; ms/step, alternating repeats)"
step bench 200 scripts/bench.sh --device cuda --batch-size 32,256,1024 --steps 200 --repeats 3 \
  --data-dir "$data" --json "$out/bench.json"
sed -n '/^# /,$p' "$out/logs/bench.log" >> "$report"
say ""
say "vae-tch in each layout (train::layout_for: channels-last + flipped for the graph, NCHW for eager CUDA):"
say ""
say "| trainer | batch | ms/step |"
say "|---|---|---|"
step bench-nchw 60 "$bin" bench --device cuda --data-dir "$data" --channels-last false \
  --flipped false --batch-size 32,256,1024 --steps 200
grep "^| vae" "$out/logs/bench-nchw.log" >> "$report"
step bench-cl-flipped 60 "$bin" bench --device cuda --data-dir "$data" --channels-last true \
  --flipped true --batch-size 32,256,1024 --steps 200
grep "^| vae" "$out/logs/bench-cl-flipped.log" >> "$report"
say ""
say "vae-tch's graph captured without cuDNN's benchmark mode (train captures with it), for attribution:"
step bench-no-cudnn-benchmark 60 "$bin" bench --device cuda --data-dir "$data" --cuda-graph on \
  --cudnn-benchmark false --batch-size 32,256,1024 --steps 200
grep "^|" "$out/logs/bench-no-cudnn-benchmark.log" >> "$report"

say ""
say "## Sweeps: the stacked step (issue 16)"
say ""
say "K seed models per step, batch 32: vae-tch's stack against K solo steps and PyTorch's vmap"
say "ensemble, eager and in a whole-step CUDA graph (images/s over all models):"
step bench-stack 150 scripts/bench.sh --device cuda --stack 1,4,16,64 --batch-size 32 --steps 100 \
  --repeats 2 --data-dir "$data" --json "$out/bench-stack.json"
sed -n '/^# /,$p' "$out/logs/bench-stack.log" >> "$report"
say ""
say "configs/sweeps/r-loss-fashion.toml (3 r_loss_factor x 2 seeds), 2 epochs, stacked and not:"
for mode in on off; do
  step "sweep-stack-$mode" 90 "$bin" sweep run configs/sweeps/r-loss-fashion.toml --device cuda \
    --stack "$mode" --epochs 2 --data-dir "$data" --no-export --out "$work/sweep-$mode" -q
  [ -f "$work/sweep-$mode/summary.csv" ] && { say '```'; cat "$work/sweep-$mode/summary.csv" >> "$report"; say '```'; }
done
cp "$work/sweep-on/compare-loss.png" "$out/sweep-compare-loss-gpu.png" 2>/dev/null
say ""
say "With real noise (scripts/stack-noise.sh: 6 seeds stacked against the same 6 alone):"
step stack-noise 90 env VAE_TCH="$bin" scripts/stack-noise.sh --device cuda --epochs 2 --train-limit 60000
say '```'
cat "$out/logs/stack-noise.log" >> "$report"
say '```'

say ""
say "TensorBoard's cost on the GPU: 3 epochs with the event files and without (s per epoch):"
for tb in on off; do
  flag=""; [ "$tb" = off ] && flag="--no-tensorboard"
  step "train-tb-$tb" 60 "$bin" train --dataset fashion-mnist --data-dir "$data" --device cuda \
    --epochs 3 --out "$work/tb-$tb" --quiet --no-export $flag
  [ -f "$work/tb-$tb/metrics.csv" ] && tail -n +2 "$work/tb-$tb/metrics.csv" \
    | awk -F, -v t="$tb" '{ printf "- tensorboard %s, epoch %s: %.2f s\n", t, $1, $8 }' >> "$report"
done

say ""
say "## The Slurm script's GPU form (scripts/slurm/sweep.sbatch as a GPU array task would run it)"
# No Slurm here: the script runs under bash with the variables Slurm sets for a GPU task; it
# must pick --device cuda by itself and train the task's points.
sweep_dir=$work/slurm-gpu
mkdir -p "$sweep_dir"
printf '[data]\ntrain_limit = 2048\ntest_limit = 512\n[axes]\n"train.seed" = [1, 2]\n' > "$sweep_dir/s.toml"
step slurm-gpu-form 60 env SLURM_SUBMIT_DIR="$sweep_dir" SLURM_ARRAY_TASK_ID=0 SLURM_ARRAY_TASK_MIN=0 \
  SLURM_ARRAY_TASK_COUNT=1 SLURM_GPUS_ON_NODE=1 SLURM_CPUS_PER_TASK=4 VAE_TCH="$bin" \
  bash scripts/slurm/sweep.sbatch s.toml out --data-dir "$data" --epochs 1 --no-export
grep -E "^== |device|^run:" "$out/logs/slurm-gpu-form.log" | head -4 | sed 's/^/    /' >> "$report"

say ""
say "## CUDA pytest tests (tests/python/test_cuda.py)"
step pytest-cuda 120 "$py" -m pytest -q -p no:cacheprovider tests/python/test_cuda.py
tail -n 3 "$out/logs/pytest-cuda.log" | sed 's/^/    /' >> "$report"

say ""
say "## export and figures with --device cuda (on the --cuda-graph on run)"
r=$work/graph-on
if [ -f "$r/config.toml" ]; then
  step export-cuda 45 "$bin" export "$r" --out "$work/export-cuda" --device cuda
  step plot-loss 30 "$bin" plot-loss "$r"
  step latent-plot 30 "$bin" latent-plot "$r" --device cuda
  step manifold 30 "$bin" manifold "$r" --device cuda
  step reconstruct 30 "$bin" reconstruct "$r" --device cuda
  step sample 30 "$bin" sample "$r" --device cuda
  step interpolate 30 "$bin" interpolate "$r" --from 0 --to 1 --device cuda
  step eval-cuda 60 "$bin" eval "$r" --device cuda --k 100
  sed -n '1,12p' "$out/logs/eval-cuda.log" >> "$report"
  cp "$r/latent.png" "$out/latent-fashion-gpu.png" 2>/dev/null
  cp "$r/reconstructions.png" "$out/reconstructions-gpu.png" 2>/dev/null
else
  say "- not run: the --cuda-graph on run left no run folder"
fi

tar -czf "$out/logs.tar.gz" -C "$out" logs && rm -rf "$out/logs"
rm -rf "$work"
echo "gpu-check: wrote $report"
