#!/usr/bin/env bash
# Property fuzzing of every reader of user files (tests/fuzz.rs): mutated real files must give
# Ok or Err, never a panic. CI runs 2,000 cases per target; this runs CASES (100,000 by default).
#   scripts/fuzz.sh            # a few minutes on 2 cores
#   CASES=20000 scripts/fuzz.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VAE_TCH_FUZZ_CASES=${CASES:-100000} cargo test --release --test fuzz -- --nocapture 2>&1 \
  | grep -E "^fuzz |test result|panicked|kept at"
