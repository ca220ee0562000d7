#!/usr/bin/env bash
# Soak: create/destroy cycles (and optionally lab rounds) beside a running container, with
# the host's resources counted before and after.
#
#   scripts/soak.sh CYCLES [LAB_ROUNDS [LAB_COUNT]]       (defaults: 50, 0, 30)
#
# KIND=systemd (default) uses the `web`-like Debian 12 profile from the default base cache
# (/var/cache/lxcprov; bootstrapped once if missing); KIND=busybox seeds a private cache with a
# busybox tree (scripts/lib/busybox-rootfs.sh). STORAGE (default overlay) is the storage mode;
# overlay needs lxcprov's libvirt hook (scripts/setup-host.sh). LXCPROV_BIN: the lxcprov to
# run (default: a debug build of this tree). Domains and the network are named
# lxcprov-st-soak-*; a lab round brings up LAB_COUNT students of lab lxcprov-st-soaklab (lab
# up makes its own network, lxcprov-lab-lxcprov-st-soaklab) and takes it down with --purge.
#
# Each cycle is `create` of lxcprov-st-soak-c, then `destroy --purge --yes`, beside
# lxcprov-st-soak-nb (same profile, running throughout). A cycle fails when either exits
# non-zero; starts that libvirt lost and lxcprov started again are counted from the warning.
# Counted before and after (the neighbour running both times): mount table lines, mounts
# under the work directory, veth/vnet/vlx links, cgroup directories under
# /sys/fs/cgroup/*/machine* and name=systemd ones, libvirtd's open descriptors, lxcprov and
# libvirt_lxc processes, libvirt's LXC status files, domains, networks, and lxcprov's own
# state (container records, locks, seccomp directories, id-map and MCS registry entries,
# pool entries, layers, bases). Host-wide counts also move with whatever else runs on the
# host at the same time; the work directory's own counts do not.
# Results: printed and written to target/soak/soak.txt. Needs root and libvirtd.
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-50}"
rounds="${2:-0}"
count="${3:-30}"
kind="${KIND:-systemd}"
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root" >&2; exit 2; }
[[ $cycles =~ ^[0-9]+$ && $rounds =~ ^[0-9]+$ && $count =~ ^[0-9]+$ ]] || { echo "usage: $0 CYCLES [LAB_ROUNDS [LAB_COUNT]]" >&2; exit 2; }
(( cycles <= 5000 && rounds <= 100 && count <= 200 )) || { echo "$0: at most 5000 cycles, 100 lab rounds of 200" >&2; exit 2; }
export PATH="$HOME/.cargo/bin:$PATH"
if [[ -z ${LXCPROV_BIN:-} ]]; then
    cargo build --locked -q
    LXCPROV_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/lxcprov"
fi
bin="$LXCPROV_BIN"
shim="$(scripts/build-shim.sh)"
mkdir -p /var/tmp/lxcprov-soak target/soak
chmod 755 /var/tmp/lxcprov-soak
work="$(mktemp -d /var/tmp/lxcprov-soak/soak.XXXXXX)"
chmod 755 "$work"
nb=lxcprov-st-soak-nb c=lxcprov-st-soak-c lab=lxcprov-st-soaklab net=lxcprov-st-soak-net
export LIBVIRT_DEFAULT_URI=lxc:/// LXCPROV_POOL_DIR="$work/pool" LXCPROV_STATE_DIR="$work/state" \
    LXCPROV_PROFILE_DIR="$work/none" LXCPROV_STORAGE="${STORAGE:-overlay}" LXCPROV_INIT_SHIM="$shim"
cleanup() {
    "$bin" -q lab down "$lab" --purge --yes >/dev/null 2>&1 || true
    for n in "$c" "$nb"; do "$bin" -q destroy "$n" --purge --yes >/dev/null 2>&1 || true; done
    for n in "$c" "$nb"; do
        virsh -q destroy "$n" >/dev/null 2>&1 || true
        virsh -q undefine "$n" >/dev/null 2>&1 || true
    done
    virsh -q net-destroy "$net" >/dev/null 2>&1 || true
    virsh -q net-undefine "$net" >/dev/null 2>&1 || true
    grep -F " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | xargs -r -n1 umount --lazy 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
prof="$work/soak.yaml"
if [[ $kind == busybox ]]; then
    export LXCPROV_CACHE_DIR="$work/cache"
    printf 'description: soak busybox\ndistro: debian12\nmemory_mib: 64\nnetwork: {mode: isolated, name: %s}\nsecurity:\n  model: none\n  label: none\n  seccomp: default\n  capabilities: {policy: default, set: {sys_admin: off, net_raw: off}}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n' "$net" >"$prof"
    scripts/lib/busybox-rootfs.sh "$work/bb" >/dev/null
    entry="$("$bin" --json create "$c" --profile soak --profile-file "$prof" --dry-run | python3 -c '
import json, sys
for line in sys.stdin:
    try:
        v = json.loads(line)
    except ValueError:
        continue
    for a in (v.get("data") or {}).get("actions") or []:
        if a.get("action") == "store_base":
            print(a["entry"])')"
    [[ -n $entry ]] || { echo "$0: the plan stores no base" >&2; exit 1; }
    mkdir -p "$(dirname "$entry")"
    cp -a "$work/bb" "$entry"
    echo '{}' >"$entry/.lxcprov-base.json"
else
    printf 'description: soak web-like\ndistro: debian12\npackage_sets: [web-server]\nmemory_mib: 512\ncpu: {shares: 512}\nnetwork: {mode: isolated, name: %s, filter: clean-traffic}\nsecurity:\n  model: none\n  label: none\n  seccomp: default\n  capabilities: {policy: default, set: {net_raw: off, sys_ptrace: off, sys_rawio: off}}\n  idmap:\n    uid: {start: 0, target: 200000, count: 65536}\n    gid: {start: 0, target: 200000, count: 65536}\n' "$net" >"$prof"
fi
common=(--profile soak --profile-file "$prof")

# The number of entries of FILE's map KEY (0 when there is no registry yet).
reg() {
    python3 -c '
import json, sys
try:
    print(len(json.load(open(sys.argv[1])).get(sys.argv[2]) or {}))
except (OSError, ValueError, AttributeError):
    print(0)' "$1" "$2"
}

count_all() {
    local st="$work/state" libvirtd
    libvirtd="$(cat /run/libvirtd.pid 2>/dev/null || pgrep -xo libvirtd || true)"
    printf 'mounts (host mount table)\t%s\n' "$(wc -l </proc/self/mountinfo)"
    printf 'mounts under the work dir\t%s\n' "$(grep -cF " $work" /proc/self/mountinfo || true)"
    printf 'veth/vnet/vlx links\t%s\n' "$(ip -o link | grep -cE 'veth|vnet|vlx' || true)"
    printf 'cgroup dirs under */machine*\t%s\n' "$(find /sys/fs/cgroup/*/machine* -type d 2>/dev/null | wc -l)"
    printf 'name=systemd cgroup dirs\t%s\n' "$(find /sys/fs/cgroup/systemd -mindepth 1 -type d 2>/dev/null | wc -l)"
    printf 'libvirtd open fds\t%s\n' "$(ls "/proc/$libvirtd/fd" 2>/dev/null | wc -l)"
    printf 'lxcprov processes\t%s\n' "$(pgrep -c -x lxcprov || true)"
    printf 'libvirt_lxc processes\t%s\n' "$(pgrep -c -x libvirt_lxc || true)"
    printf 'libvirt LXC status files\t%s\n' "$(ls /run/libvirt/lxc | wc -l)"
    printf 'domains (all)\t%s\n' "$(virsh -q list --all --name | grep -c . || true)"
    printf 'networks (all)\t%s\n' "$(virsh -q net-list --all --name | grep -c . || true)"
    printf 'soak domains\t%s\n' "$(virsh -q list --all --name | grep -c '^lxcprov-st-soak' || true)"
    printf 'container records\t%s\n' "$(ls "$st/containers" 2>/dev/null | wc -l)"
    printf 'locks\t%s\n' "$(ls "$st/locks" 2>/dev/null | wc -l)"
    printf 'seccomp dirs\t%s\n' "$(ls "$st/seccomp" 2>/dev/null | wc -l)"
    printf 'lab records\t%s\n' "$(ls "$st/labs" 2>/dev/null | wc -l)"
    printf 'id-map registry ranges\t%s\n' "$(reg "$st/idmap-registry.json" ranges)"
    printf 'MCS registry labels\t%s\n' "$(reg "$st/mcs-registry.json" labels)"
    printf 'pool entries\t%s\n' "$(ls -A "$work/pool" 2>/dev/null | wc -l)"
    printf 'layers\t%s\n' "$(ls -A "$work/pool/.lxcprov/layers" 2>/dev/null | wc -l)"
    printf 'bases\t%s\n' "$(ls -A "$work/pool/.lxcprov/bases" 2>/dev/null | wc -l)"
}

"$bin" -q create "$nb" "${common[@]}" >/dev/null 2>"$work/err" || { cat "$work/err" >&2; exit 1; }
before="$(count_all)"
fails=0 restarts=0 lab_fails=0
t0=$(date +%s)
for i in $(seq 1 "$cycles"); do
    if ! "$bin" create "$c" "${common[@]}" >/dev/null 2>"$work/err"; then
        fails=$((fails + 1))
        echo "cycle $i: create failed: $(tail -1 "$work/err")" >&2
    fi
    restarts=$((restarts + $(grep -c 'lost its monitor connection' "$work/err" || true)))
    if ! "$bin" -q destroy "$c" --purge --yes >/dev/null 2>"$work/err"; then
        # A failed create removed what it made: nothing to destroy is not a failure then.
        grep -q 'no container named' "$work/err" || { fails=$((fails + 1)); echo "cycle $i: destroy failed: $(tail -1 "$work/err")" >&2; }
    fi
done
t1=$(date +%s)
for i in $(seq 1 "$rounds"); do
    "$bin" -q lab up "$lab" --count "$count" "${common[@]}" >/dev/null 2>"$work/err" || { lab_fails=$((lab_fails + 1)); echo "lab round $i: up: $(tail -1 "$work/err")" >&2; }
    restarts=$((restarts + $(grep -c 'lost its monitor connection' "$work/err" || true)))
    "$bin" -q lab down "$lab" --purge --yes >/dev/null 2>"$work/err" || { lab_fails=$((lab_fails + 1)); echo "lab round $i: down: $(tail -1 "$work/err")" >&2; }
done
t2=$(date +%s)
after="$(count_all)"
report=target/soak/soak.txt
{
    echo "soak: $cycles create/destroy --purge cycles ($kind, ${LXCPROV_STORAGE} storage) beside a running $nb, $rounds lab up/down rounds of $count"
    echo "cycles: $fails failed, $((t1 - t0)) s; lab rounds: $lab_fails failed, $((t2 - t1)) s; starts libvirt lost and lxcprov started again: $restarts"
    paste <(echo "$before") <(echo "$after" | cut -f2) | awk -F'\t' 'BEGIN { printf "%-32s %8s %8s %6s\n", "", "before", "after", "diff" } { printf "%-32s %8s %8s %+6d\n", $1, $2, $3, $3 - $2 }'
} | tee "$report"
[[ $fails -eq 0 && $lab_fails -eq 0 ]]
