#!/usr/bin/env bash
# Lab-mode benchmarks (scripts/bench.sh lab [COUNT]), as ratios against the floor measured
# in the same run, on the `minimal` profile (Debian 12 with systemd) with --security none:
#   floor      cp -a --reflink=auto of the cached base + bare `virsh define` + `virsh start`
#              of the same domain XML
#   create     `lxcprov create` from the base-rootfs cache to a verified running container
#              (copy, guest configuration, network, define, start, settle 1 s, verify);
#              both without a user namespace, as the floor cannot shift ownership
#                                                                   target: <= 1.2 x floor
#   lab up     `lxcprov lab up --count COUNT` wall time           target: <= 60 s for 30
#              and lxcprov's peak RSS (GNU time)                   target: <= 50 MB
#   verify     `lxcprov verify` per container (mean of 10)          target: <= 50 ms
#   audit      `lxcprov audit` over every process on the host       target: <= 1 s / 100
# Results: printed and written to target/bench/lab.txt. Needs root and libvirtd.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-30}"
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root" >&2; exit 2; }
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -q
scripts/build-shim.sh --release >/dev/null
bin="$PWD/target/release/lxcprov"
mkdir -p /var/tmp/lxcprov-bench target/bench
work="$(mktemp -d /var/tmp/lxcprov-bench/lab.XXXXXX)"
chmod 755 "$work"
lab=lxcprov-bench
cleanup() {
    "$bin" -q lab down "$lab" --purge --yes >/dev/null 2>&1 || true
    for d in bench-c1 bench-floor; do
        virsh -q -c lxc:/// destroy "$d" >/dev/null 2>&1 || true
        virsh -q -c lxc:/// undefine "$d" >/dev/null 2>&1 || true
    done
    "$bin" -q destroy bench-c1 --purge --yes >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
export LXCPROV_POOL_DIR="$work/pool" LXCPROV_STATE_DIR="$work/state" LXCPROV_PROFILE_DIR="$work/none"
# The package and base-rootfs caches are shared with normal use (warm after the first run).
pw="$work/pw"; echo "bench-password" > "$pw"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
common=(--profile minimal --security none)

echo "bench-lab: warming the base-rootfs cache..." >&2
"$bin" -q bootstrap bench-warm "${common[@]}" --root-password-file "$pw" >/dev/null
rm -rf "$work/pool/bench-warm" "$work/state/containers/bench-warm.json"
base="$(ls -d "${LXCPROV_CACHE_DIR:-/var/cache/lxcprov}"/rootfs/debian12-12-*/ | head -1)"

# create vs floor without a user namespace or seccomp shim: the floor can do neither, so
# neither does lxcprov here (lab up below uses the real minimal profile: idmap shift, filter).
mkdir -p "$work/profiles"
printf 'description: bench\ndistro: debian12\nmemory_mib: 128\nsecurity: {model: none, label: none, seccomp: none}\n' > "$work/profiles/bench.yaml"
flat=(--profile bench --profile-file "$work/profiles/bench.yaml")
"$bin" render bench-floor "${flat[@]}" > "$work/floor.xml"
"$bin" render bench-floor "${flat[@]}" --network > "$work/net.xml"
virsh -q -c lxc:/// net-info lxcprov-isolated >/dev/null 2>&1 || { virsh -q -c lxc:/// net-define "$work/net.xml" >/dev/null; }
virsh -q -c lxc:/// net-start lxcprov-isolated >/dev/null 2>&1 || true
t0=$(now)
cp -a --reflink=auto "$base" "$work/pool/bench-floor"
virsh -q -c lxc:/// define "$work/floor.xml" >/dev/null
virsh -q -c lxc:/// start bench-floor >/dev/null
t1=$(now); floor=$(secs "$t0" "$t1")
virsh -q -c lxc:/// destroy bench-floor >/dev/null; virsh -q -c lxc:/// undefine bench-floor >/dev/null
rm -rf "$work/pool/bench-floor"

echo "bench-lab: lxcprov create from the cache..." >&2
t0=$(now); "$bin" -q create bench-c1 "${flat[@]}" --root-password-file "$pw" >/dev/null || true; t1=$(now); create=$(secs "$t0" "$t1")

echo "bench-lab: lxcprov verify x10..." >&2
t0=$(now); for _ in 1 2 3 4 5 6 7 8 9 10; do "$bin" verify bench-c1 >/dev/null || true; done; t1=$(now)
verify_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 100 }')
nproc_host=$(ls -d /proc/[0-9]* | wc -l)
t0=$(now); "$bin" audit >/dev/null || true; t1=$(now); audit=$(secs "$t0" "$t1")
"$bin" -q destroy bench-c1 --purge --yes >/dev/null

echo "bench-lab: lab up --count $count..." >&2
t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" -q lab up "$lab" --count "$count" "${common[@]}" >/dev/null || true
t1=$(now); labup=$(secs "$t0" "$t1")
rss_mb=$(tail -n 1 "$work/rss" | awk '{ printf "%.1f", $1 / 1024 }')
running=$("$bin" --json list | grep -c "\"name\":\"$lab-" || true)
t0=$(now); "$bin" -q lab down "$lab" --purge --yes >/dev/null; t1=$(now); labdown=$(secs "$t0" "$t1")

{
    echo "# lxcprov lab benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, minimal profile (Debian 12 + systemd)"
    printf '%-52s %10s\n' "floor: cp -a + virsh define + start" "${floor}s"
    printf '%-52s %10s\n' "lxcprov create from cache to verified container" "${create}s"
    printf '%-52s %10s\n' "lab up --count $count ($running running)" "${labup}s"
    printf '%-52s %10s\n' "lab down --purge" "${labdown}s"
    printf '%-52s %10s\n' "lxcprov peak RSS during lab up" "${rss_mb} MB"
    printf '%-52s %10s\n' "verify per container (mean of 10)" "${verify_ms} ms"
    printf '%-52s %10s\n' "audit over $nproc_host processes" "${audit}s"
    awk -v f="$floor" -v c="$create" 'BEGIN { printf "ratio create / floor: %.2f (target <= 1.2)\n", c / f }'
} | tee target/bench/lab.txt
