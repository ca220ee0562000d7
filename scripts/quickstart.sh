#!/usr/bin/env bash
# Set up this host, build lxcprov, and do the main job: create a container from the `web`
# profile and verify it. Run as root on Debian 12. Idempotent: a second run finds the
# container and re-verifies it. Exit status: lxcprov's (0 all checks pass, 1 a check failed).
#
# This host has no SELinux, so the container runs with `--security none` (unconfined by
# MAC); on a SELinux host drop that option to get the paper's sVirt labels.
# Usage: scripts/quickstart.sh [NAME]        (default NAME: web1)
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:-web1}"

if [[ $(id -u) -ne 0 ]]; then
    echo "scripts/quickstart.sh: run as root" >&2
    exit 2
fi
export PATH="$HOME/.cargo/bin:$PATH"
scripts/setup-host.sh
echo "== building lxcprov" >&2
cargo build --release --locked   # the seccomp init shim is built too, and embedded (build.rs)
install -m 0755 "${CARGO_TARGET_DIR:-target}/release/lxcprov" /usr/local/bin/lxcprov
# The libvirt hook runs this lxcprov (setup-host made it exist before libvirtd started), so
# new containers get overlay storage; it never replaces a hook that is not lxcprov's.
lxcprov hook install --binary /usr/local/bin/lxcprov || echo "quickstart: the libvirt hook was not installed; containers are copies (see lxcprov doctor)" >&2
echo "== lxcprov create $name --profile web --security none" >&2
security=(--security none)
if [[ "$(lxcprov doctor --json 2>/dev/null | jq -r 'select(.type == "item" and .data.id == "secmodel") | .data.level')" == ok ]]; then
    security=()
fi
# create prints the verify report; a container left shut off by an earlier run is started
# again first, so a second run converges to the same verified container.
exec lxcprov create "$name" --profile web "${security[@]}"
