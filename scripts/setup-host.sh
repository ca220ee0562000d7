#!/usr/bin/env bash
# Idempotent host setup for lxcprov on Debian 12 (libvirt LXC).
#
# Usage:
#   scripts/setup-host.sh                  packages + Rust check + users + libvirtd (default)
#   scripts/setup-host.sh --packages-only  packages + Rust check only
#   scripts/setup-host.sh --no-packages    users + libvirtd only
#   scripts/setup-host.sh --daemon-only    libvirtd only (users are still checked: libvirtd needs them)
#   scripts/setup-host.sh --stop           stop a libvirtd started outside systemd
#
# Progress goes to stderr, prefixed "setup-host:". Exit 0 when the host is ready.
# Never installs libvirt-daemon-system; never restarts an already answering libvirtd.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=SCRIPTDIR/lib/host.sh
. "$SCRIPT_DIR/lib/host.sh"

usage() {
    sed -n '2,12p' "$SCRIPT_DIR/setup-host.sh" | sed 's/^# \{0,1\}//'
}

mode=all
if [[ $# -gt 1 ]]; then
    usage >&2
    exit 2
fi
case "${1:-}" in
    "" | --all) mode=all ;;
    --packages-only) mode=packages ;;
    --no-packages) mode=no-packages ;;
    --daemon-only) mode=daemon ;;
    --stop) mode=stop ;;
    -h | --help) usage; exit 0 ;;
    *) host_err "unknown argument: $1"; usage >&2; exit 2 ;;
esac

case "$mode" in
    all)
        host_ensure_packages
        host_ensure_rust >/dev/null
        host_ensure_users
        host_ensure_lxc_hook
        host_ensure_lxcfs
        host_ensure_libvirtd
        host_ensure_libvirtd_peers
        host_ensure_nwfilters
        ;;
    packages)
        host_ensure_packages
        host_ensure_rust >/dev/null
        ;;
    no-packages)
        host_ensure_users
        host_ensure_lxc_hook
        host_ensure_lxcfs
        host_ensure_libvirtd
        host_ensure_libvirtd_peers
        host_ensure_nwfilters
        ;;
    daemon)
        # libvirtd exits at start without the libvirt-qemu user, so make sure of it.
        host_ensure_users
        host_ensure_libvirtd
        ;;
    stop)
        host_stop_libvirtd
        exit 0
        ;;
esac
host_log "ready"
