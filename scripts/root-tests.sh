#!/usr/bin/env bash
# The Rust tests that need root, run where this is root: the full-disk test (tests/faults.rs)
# mounts a 1.5 MB tmpfs. They are #[ignore]d in a plain `cargo test`, so they show as ignored,
# never as passed; elsewhere this says they were not run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  echo "root-tests: not root, so the full-disk test (tests/faults.rs) is not run" >&2
  exit 0
fi
cargo test --release --test faults -- --ignored
