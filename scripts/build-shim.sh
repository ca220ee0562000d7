#!/usr/bin/env bash
# Builds lxcprov's seccomp init shim (crates/lxcprov-init) statically linked against glibc
# (its libc.a, from libc6-dev) and puts it next to the lxcprov binary of the same profile:
# TARGET/debug/lxcprov-init, or TARGET/release/lxcprov-init with --release. lxcprov finds it
# there (or wherever --init-shim / LXCPROV_INIT_SHIM says) and copies it into each container's
# seccomp directory. Static, because it runs inside the container before its init, where the
# host's libc and loader may not exist (a busybox-static guest has none).
# The musl target would do as well, but rustup's targets cannot be downloaded here.
# Usage: scripts/build-shim.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
profile=()
dir=debug
case "${1:-}" in
    --release) profile=(--release); dir=release ;;
    "") ;;
    *) echo "usage: $0 [--release]" >&2; exit 2 ;;
esac
cargo rustc --locked -q -p lxcprov-init --bin lxcprov-init "${profile[@]}" -- -C target-feature=+crt-static
target="${CARGO_TARGET_DIR:-target}"
shim="$target/$dir/lxcprov-init"
if readelf -l "$shim" | grep -q 'Requesting program interpreter'; then
    echo "$0: $shim is dynamically linked" >&2
    exit 1
fi
echo "$shim"
