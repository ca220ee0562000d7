#!/usr/bin/env bash
# Benchmarks, reported as ratios against the raw tool measured in the same run.
#
#   scripts/bench.sh bootstrap [DISTRO]     (default DISTRO: debian12)
#   scripts/bench.sh lab [COUNT]            (scripts/bench-lab.sh; default COUNT: 30)
#   scripts/bench.sh shim [COUNT]           (default COUNT: 30)
#
# shim measures the seccomp init shim's start cost: two busybox containers from one rootfs,
# one with security.seccomp: default (lxcprov-init installs the filter, then execs init),
# one with none; each is started COUNT times, alternating, with `virsh start`, and timed until
# its init process is the real init (busybox), then destroyed. Reports the median and mean
# of each and the difference.                                     target: <= 10 ms more
# Results go to target/bench/shim.txt.
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
    shim) ;;
    *) echo "usage: $0 bootstrap [DISTRO] | lab [COUNT] | shim [COUNT]" >&2; exit 2 ;;
esac
if [[ $what == shim ]]; then
    [[ $(id -u) -eq 0 ]] || { echo "$0: run as root" >&2; exit 2; }
    count="${2:-30}"
    export PATH="$HOME/.cargo/bin:$PATH"
    cargo build --release --locked -q
    target="${CARGO_TARGET_DIR:-target}"
    shim="$(scripts/build-shim.sh --release)"
    bin="$target/release/lxcprov"
    mkdir -p /var/tmp/lxcprov-bench target/bench
    chmod 755 /var/tmp/lxcprov-bench
    work="$(mktemp -d /var/tmp/lxcprov-bench/shim.XXXXXX)"
    chmod 755 "$work"
    cleanup() {
        for n in lxcprov-bench-sc lxcprov-bench-nosc; do
            virsh -q -c lxc:/// destroy "$n" >/dev/null 2>&1 || true
            virsh -q -c lxc:/// undefine "$n" >/dev/null 2>&1 || true
        done
        virsh -q -c lxc:/// net-destroy lxcprov-bench-net >/dev/null 2>&1 || true
        virsh -q -c lxc:/// net-undefine lxcprov-bench-net >/dev/null 2>&1 || true
        rm -rf "$work"
    }
    trap cleanup EXIT
    export LXCPROV_POOL_DIR="$work/pool" LXCPROV_STATE_DIR="$work/state" LXCPROV_CACHE_DIR="$work/cache" LXCPROV_PROFILE_DIR="$work/none" LXCPROV_INIT_SHIM="$shim"
    scripts/lib/busybox-rootfs.sh "$work/bb" >/dev/null
    for sc in default none; do
        printf 'description: bench\ndistro: debian12\nmemory_mib: 64\nnetwork: {mode: isolated, name: lxcprov-bench-net}\nsecurity:\n  model: none\n  label: none\n  allow_host_root: true\n  seccomp: %s\n' "$sc" > "$work/b-$sc.yaml"
    done
    "$bin" -q create lxcprov-bench-sc --profile b-default --profile-file "$work/b-default.yaml" --rootfs-from "$work/bb" >/dev/null || true
    "$bin" -q create lxcprov-bench-nosc --profile b-none --profile-file "$work/b-none.yaml" --rootfs-from "$work/bb" >/dev/null || true
    virsh -q -c lxc:/// destroy lxcprov-bench-sc >/dev/null
    virsh -q -c lxc:/// destroy lxcprov-bench-nosc >/dev/null
    report="target/bench/shim.txt"
    # 1. The shim alone, without libvirt's noise: in a private mount namespace, the container's
    #    shim directory bind-mounted read-only at ROOT/.lxcprov as libvirt does, then
    #    `chroot ROOT /.lxcprov/lxcprov-init /bin/true` against `chroot ROOT /bin/true`.
    root="$work/pool/lxcprov-bench-sc"
    unshare -m --propagation private sh -c "mount --bind '$work/state/seccomp/lxcprov-bench-sc' '$root/.lxcprov' && mount -o remount,bind,ro '$root/.lxcprov' && python3 - '$root' $((count * 10))" <<'PY' | tee "$report"
import statistics, subprocess, sys, time
root, n = sys.argv[1], int(sys.argv[2])
def run(argv):
    t0 = time.perf_counter()
    subprocess.run(["chroot", root] + argv, check=True)
    return time.perf_counter() - t0
shim, plain = [], []
for i in range(n):
    shim.append(run(["/.lxcprov/lxcprov-init", "/bin/true"]))
    plain.append(run(["/bin/true"]))
d = (statistics.median(shim) - statistics.median(plain)) * 1000
print(f"exec via the shim (installs the default filter: 4 programs) vs direct, n={n}: median {statistics.median(shim)*1000:.2f} ms vs {statistics.median(plain)*1000:.2f} ms: {d:+.2f} ms")
PY
    # 2. Whole container starts.
    python3 - "$count" <<'PY' | tee -a "$report"
import os, re, statistics, subprocess, sys, time
count = int(sys.argv[1])
def start(name):
    t0 = time.perf_counter()
    subprocess.run(["virsh", "-q", "-c", "lxc:///", "start", name], check=True, stdout=subprocess.DEVNULL)
    ctrl = subprocess.run(["virsh", "-q", "-c", "lxc:///", "domid", name], capture_output=True, text=True).stdout.strip()
    pid = None
    while time.perf_counter() - t0 < 10:
        try:
            # the init is the libvirt_lxc controller's child
            kids = open(f"/proc/{ctrl}/task/{ctrl}/children").read().split()
            if kids and os.readlink(f"/proc/{kids[0]}/exe").endswith("/busybox"):
                pid = kids[0]
                break
        except OSError:
            pass
        time.sleep(0.0005)
    t = time.perf_counter() - t0
    seccomp = open(f"/proc/{pid}/status").read().split("Seccomp:")[1].split()[0] if pid else "?"
    subprocess.run(["virsh", "-q", "-c", "lxc:///", "destroy", name], check=True, stdout=subprocess.DEVNULL)
    return (t if pid else None), seccomp
res = {"lxcprov-bench-sc": [], "lxcprov-bench-nosc": []}
modes = {}
timeouts = 0
for i in range(count):
    for name in (res if i % 2 == 0 else reversed(list(res))):
        t, m = start(name)
        if t is None:
            timeouts += 1
            continue
        res[name].append(t)
        modes[name] = m
ms = lambda v: v * 1000
for name, v in res.items():
    print(f"{name:20} Seccomp: {modes[name]}  median {ms(statistics.median(v)):7.1f} ms  mean {ms(statistics.mean(v)):7.1f} ms  (n={len(v)})")
d_med = ms(statistics.median(res["lxcprov-bench-sc"]) - statistics.median(res["lxcprov-bench-nosc"]))
d_mean = ms(statistics.mean(res["lxcprov-bench-sc"]) - statistics.mean(res["lxcprov-bench-nosc"]))
verdict = "OK" if d_med <= 10 else "OVER TARGET"
if timeouts:
    print(f"{timeouts} starts did not reach the init within 10 s (not counted)")
print(f"shim start cost: median {d_med:+.1f} ms, mean {d_mean:+.1f} ms (target <= 10 ms): {verdict}")
PY
    exit 0
fi
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
