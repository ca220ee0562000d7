#!/usr/bin/env bash
# The property-based fuzz harness (tests/fuzz.rs and its modules in tests/fuzz/), in
# release mode: N cases in total, 45% structured profiles, 45% mutated profiles, 10% tar
# imports (which need root).
# Prints each property's count, time and seed, then the total. A failure prints the
# smallest failing input and the FUZZ_SEED that replays the run.
# Usage: scripts/fuzz.sh [N]   (default 1000000; FUZZ_SEED=<64 hex digits> replays)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
n=${1:-1000000}
if ! [[ $n =~ ^[0-9]+$ ]] || [[ $n -lt 10 ]]; then
    echo "usage: $0 [N]   (N >= 10 cases)" >&2
    exit 2
fi
cargo build --locked --release --tests >&2
start=$(date +%s)
set +e
FUZZ_CASES=$n cargo test --locked --release --test fuzz -- --nocapture --test-threads=3 2>&1 \
    | grep --line-buffered -v '^$' | grep --line-buffered -v '^running\|^test result\|Finished\|Running'
rc=${PIPESTATUS[0]}
set -e
echo "fuzz: $n cases requested, $(( $(date +%s) - start )) s wall, load $(cut -d' ' -f1-3 /proc/loadavg), exit $rc" >&2
exit "$rc"
