#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (.ci/run calls this), as root on Debian 12:
#   1. scripts/setup-host.sh: packages, users, libvirtd, nwfilters (idempotent)
#   2. cargo test: unit and integration tests that need no root (virt-xml-validate is
#      required: a missing tool fails, it does not skip)
#   3. the root tier (tests/root.rs): real dnf against a signed local repository, a real
#      debootstrap of Debian 12, real containers on libvirtd, one test at a time
# Usage: scripts/test.sh [--no-root-tier]
set -euo pipefail
cd "$(dirname "$0")/.."

root_tier=1
case "${1:-}" in
    "") ;;
    --no-root-tier) root_tier=0 ;;
    *) echo "usage: $0 [--no-root-tier]" >&2; exit 2 ;;
esac

if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/test.sh: run as root (the root tier drives libvirtd, dnf and debootstrap)" >&2
    exit 2
fi

export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup-host.sh

echo "== build" >&2
cargo build --locked --all-targets

echo "== tests that need no root" >&2
LXCPROV_REQUIRE_TOOLS=1 cargo test --locked

if [[ $root_tier -eq 1 ]]; then
    echo "== root tier: real installers, libvirtd and containers" >&2
    cargo test --locked --test root -- --ignored --test-threads=1
fi
