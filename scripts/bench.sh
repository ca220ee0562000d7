#!/usr/bin/env bash
# Benchmarks, reported as ratios against the raw tool measured in the same run.
#
#   scripts/bench.sh bootstrap [DISTRO]     (default DISTRO: debian12)
#   scripts/bench.sh lab [COUNT]            (scripts/bench-lab.sh; default COUNT: 30)
#
# bootstrap measures, for the `minimal` profile:
#   raw       the installer alone (debootstrap/dnf) with exactly the argv lxcprov prints in
#             `create --dry-run`, package cache warm, into a scratch directory
#   lxcprov   `lxcprov bootstrap --no-base-cache` with the same package cache: the same
#             install plus guest configuration                          target: <= 1.05 x raw
#   + base    the same, keeping a copy in the base-rootfs cache (reported, no target)
#   cold      `lxcprov bootstrap` with empty caches (downloads everything)
#   warm      `lxcprov bootstrap` with the base-rootfs cache filled  target: <= 0.1 x cold
# Results are printed and written to target/bench/bootstrap.txt. Needs root and the
# network (the Debian mirror). Nothing outside a scratch directory is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-bootstrap}"
distro="${2:-debian12}"
case "$what" in
    bootstrap) ;;
    lab) exec "$(dirname "$0")/bench-lab.sh" "${@:2}" ;;
    *) echo "usage: $0 bootstrap [DISTRO] | lab [COUNT]" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root" >&2; exit 2; }
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -q
bin="$PWD/target/release/lxcprov"
mkdir -p /var/tmp/lxcprov-bench target/bench
work="$(mktemp -d /var/tmp/lxcprov-bench/run.XXXXXX)"
trap 'rm -rf "$work"' EXIT
pw="$work/pw"; echo "bench-password" > "$pw"
export LXCPROV_POOL_DIR="$work/pool" LXCPROV_STATE_DIR="$work/state" LXCPROV_CACHE_DIR="$work/cache" LXCPROV_PROFILE_DIR="$work/none"
lx() { "$bin" -q "$@" --profile minimal --distro "$distro" --security none --root-password-file "$pw"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "bench: cold bootstrap (empty caches)..." >&2
t0=$(now); lx bootstrap cold1 >/dev/null; t1=$(now); cold=$(secs "$t0" "$t1")
echo "bench: warm bootstrap (base-rootfs cache hit)..." >&2
t0=$(now); lx bootstrap warm1 >/dev/null; t1=$(now); warm=$(secs "$t0" "$t1")

# The raw installer's argv, exactly as lxcprov would run it, retargeted at a scratch dir.
rm -rf "$work/cache/rootfs"
mapfile -t argv < <("$bin" --json create raw1 --profile minimal --distro "$distro" --security none --dry-run \
    | python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    for a in (r["data"].get("actions", []) if r["type"] == "step" else []):
        if a["action"] == "run" and a["cmd"]["program"] in ("debootstrap", "dnf", "dnf5", "yum"):
            print(a["cmd"]["program"]); [print(x) for x in a["cmd"]["args"]]
')
partial="$work/pool/.raw1.partial"
for i in "${!argv[@]}"; do argv[$i]="${argv[$i]//$partial/$work/raw-target}"; done
mkdir -p "$work/raw-target"
echo "bench: raw ${argv[0]} (package cache warm)..." >&2
t0=$(now); env -i PATH="$PATH" LC_ALL=C HOME="$work/cache/rpm-home" "${argv[@]}" >/dev/null 2>&1; t1=$(now); raw=$(secs "$t0" "$t1")
rm -rf "$work/raw-target"
echo "bench: lxcprov bootstrap --no-base-cache (package cache warm)..." >&2
t0=$(now); lx bootstrap inst1 --no-base-cache >/dev/null; t1=$(now); inst=$(secs "$t0" "$t1")
rm -rf "$work/cache/rootfs"
echo "bench: lxcprov bootstrap keeping the base copy (package cache warm)..." >&2
t0=$(now); lx bootstrap inst2 >/dev/null; t1=$(now); keep=$(secs "$t0" "$t1")

report="target/bench/bootstrap.txt"
{
    echo "# lxcprov bootstrap benchmark: $distro, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores"
    printf '%-44s %8s\n' "measurement" "seconds"
    printf '%-44s %8s\n' "raw ${argv[0]} (same argv, packages cached)" "$raw"
    printf '%-44s %8s\n' "lxcprov bootstrap --no-base-cache (same work)" "$inst"
    printf '%-44s %8s\n' "lxcprov bootstrap + base-rootfs copy" "$keep"
    printf '%-44s %8s\n' "lxcprov bootstrap cold (empty caches)" "$cold"
    printf '%-44s %8s\n' "lxcprov bootstrap warm (base-rootfs cache)" "$warm"
    awk -v r="$raw" -v i="$inst" -v k="$keep" -v c="$cold" -v w="$warm" 'BEGIN {
        printf "ratio lxcprov / raw installer : %.3f  (target <= 1.05)\n", i / r
        printf "ratio with base copy / raw    : %.3f  (the cost of keeping the cache: a plain copy on ext4)\n", k / r
        printf "ratio warm / cold             : %.3f  (target <= 0.10)\n", w / c }'
} | tee "$report"
