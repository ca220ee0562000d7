#!/usr/bin/env bash
# Lab-mode benchmarks (scripts/bench.sh lab [COUNT]), as ratios against the floors measured
# in the same run, on the `minimal` profile (Debian 12 with systemd) with --security none,
# in overlay storage (STORAGE=copy scripts/bench.sh lab measures copy mode instead):
#   floor      bare `virsh define` + `virsh start` of an already-prepared tree (issue 12's
#              floor; median of 5), and the old one: cp -a --reflink=auto of the cached
#              base + the same
#   create     `lxcprov create` from the base-rootfs cache to a verified running container
#              (shared base, layer, mount, guest configuration, network, define, start,
#              readiness, verify; median of 5); both without a user namespace, as the
#              floor cannot shift ownership                       target: <= 1.2 x floor
#   big base   the same create on a base padded to ~1 GB (768 MB more, real blocks)
#                                                    target: within 10 % of the 250 MB one
#   reset      `lxcprov reset` of that container (fresh layer, restart, verify)  target: <= 1 s
#   lab up     `lxcprov lab up --count COUNT` wall time           target: <= 15 s for 30
#              and lxcprov's peak RSS (GNU time)                   target: <= 50 MB
#   disk       the shared base and the COUNT booted containers' layers (du)
#                                                      target: <= base + COUNT x 10 MB
#   lab reset  `lab reset --student 1`                             target: <= 1 s
#   collect    `lab collect` after each student wrote 1 MiB (reported, no target)
#   snapshot   `snapshot` and `restore` of one student (reported, no target)
#   lab down   `lab down --purge`                                  target: <= 10 s for 30
#   100        `lab up` and `lab down --purge` of BIG students (default 100): per student
#              against COUNT's                                    target: within 15 %
#              lxcprov's peak RSS                                  target: <= 50 MB
#              host memory per running student (MemAvailable)     (reported)
#   verify     `lxcprov verify` per container (mean of 10)          target: <= 50 ms
#   audit      `lxcprov audit` over every process on the host       target: <= 1 s / 100
# Overlay storage needs lxcprov's libvirt hook (scripts/setup-host.sh): the benchmark points
# it at the binary it measures and puts the old text back at the end.
# Results: printed and written to target/bench/lab.txt. Needs root and libvirtd.
set -euo pipefail
cd "$(dirname "$0")/.."
count="${1:-30}"
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root" >&2; exit 2; }
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --release --locked -q
bin="${CARGO_TARGET_DIR:-$PWD/target}/release/lxcprov"
storage="${STORAGE:-overlay}"
hook=/etc/libvirt/hooks/lxc
hook_old="$(cat "$hook" 2>/dev/null || true)"
mkdir -p /var/tmp/lxcprov-bench target/bench
work="$(mktemp -d /var/tmp/lxcprov-bench/lab.XXXXXX)"
chmod 755 "$work"
lab=lxcprov-bench
cleanup() {
    "$bin" -q lab down "$lab" --purge --yes >/dev/null 2>&1 || true
    for d in bench-c0 bench-c1 bench-floor; do
        virsh -q -c lxc:/// destroy "$d" >/dev/null 2>&1 || true
        virsh -q -c lxc:/// undefine "$d" >/dev/null 2>&1 || true
    done
    "$bin" -q destroy bench-c1 --purge --yes >/dev/null 2>&1 || true
    "$bin" -q destroy bench-c0 --purge --yes >/dev/null 2>&1 || true
    rm -rf "$work"
    # In place: the same file libvirtd found when it started.
    if [[ -n "$hook_old" ]]; then printf '%s\n' "$hook_old" >"$hook"; fi
}
trap cleanup EXIT
export LXCPROV_POOL_DIR="$work/pool" LXCPROV_STATE_DIR="$work/state" LXCPROV_PROFILE_DIR="$work/none"
export LXCPROV_STORAGE="$storage"
if [[ $storage == overlay ]]; then
    [[ -e "$hook" ]] || { echo "$0: $hook is missing: run scripts/setup-host.sh (libvirtd reads hooks at its start)" >&2; exit 2; }
    "$bin" -q hook install --binary "$bin"
fi
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
printf 'description: bench\ndistro: debian12\nmemory_mib: 128\nsecurity: {model: none, label: none, seccomp: none, allow_host_root: true}\n' > "$work/profiles/bench.yaml"
flat=(--profile bench --profile-file "$work/profiles/bench.yaml")
"$bin" render bench-floor "${flat[@]}" > "$work/floor.xml"
"$bin" render bench-floor "${flat[@]}" --network > "$work/net.xml"
virsh -q -c lxc:/// net-info lxcprov-isolated >/dev/null 2>&1 || { virsh -q -c lxc:/// net-define "$work/net.xml" >/dev/null; }
virsh -q -c lxc:/// net-start lxcprov-isolated >/dev/null 2>&1 || true
t0=$(now)
cp -a --reflink=auto "$base" "$work/pool/bench-floor"
virsh -q -c lxc:/// define "$work/floor.xml" >/dev/null
virsh -q -c lxc:/// start bench-floor >/dev/null
t1=$(now); floor_cp=$(secs "$t0" "$t1")
virsh -q -c lxc:/// destroy bench-floor >/dev/null; virsh -q -c lxc:/// undefine bench-floor >/dev/null
# The issue's floor: the tree is prepared already; only define + start (median of 5).
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
floors=()
for _ in 1 2 3 4 5; do
    t0=$(now)
    virsh -q -c lxc:/// define "$work/floor.xml" >/dev/null
    virsh -q -c lxc:/// start bench-floor >/dev/null
    t1=$(now); floors+=("$(secs "$t0" "$t1")")
    virsh -q -c lxc:/// destroy bench-floor >/dev/null; virsh -q -c lxc:/// undefine bench-floor >/dev/null
done
floor=$(printf '%s\n' "${floors[@]}" | median)
rm -rf "$work/pool/bench-floor"

echo "bench-lab: lxcprov create from the cache..." >&2
# Warm: the first container of a base prepares the shared base (a copy; a shift with a user
# namespace); bench-c0 pays that, bench-c1 is timed.
"$bin" -q create bench-c0 "${flat[@]}" --root-password-file "$pw" >/dev/null || true
# COUNT creates of bench-c1 on the shared base bench-c0 holds; the median.
creates() {
    local v=()
    for _ in 1 2 3 4 5; do
        "$bin" -q destroy bench-c1 --purge --yes >/dev/null 2>&1 || true
        t0=$(now); "$bin" -q create bench-c1 "${flat[@]}" --root-password-file "$pw" >/dev/null || true; t1=$(now)
        v+=("$(secs "$t0" "$t1")")
    done
    printf '%s\n' "${v[@]}" | median
}
create=$(creates)

echo "bench-lab: lxcprov verify x10..." >&2
t0=$(now); for _ in 1 2 3 4 5 6 7 8 9 10; do "$bin" verify bench-c1 >/dev/null || true; done; t1=$(now)
verify_ms=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 100 }')
nproc_host=$(ls -d /proc/[0-9]* | wc -l)
t0=$(now); "$bin" audit >/dev/null || true; t1=$(now); audit=$(secs "$t0" "$t1")
reset="n/a (copy storage has no layer) "
if [[ $storage == overlay ]]; then
    t0=$(now); "$bin" -q --profile-file "$work/profiles/bench.yaml" reset bench-c1 --yes >/dev/null || true; t1=$(now); reset=$(secs "$t0" "$t1")
fi
"$bin" -q destroy bench-c1 --purge --yes >/dev/null
"$bin" -q destroy bench-c0 --purge --yes >/dev/null
# The same on a ~1 GB base: 768 MB of real blocks padded into the cache entry (the shared
# base is prepared from it by bench-c0, not timed), removed again afterwards.
echo "bench-lab: lxcprov create on a 1 GB base..." >&2
pad="$base/var/tmp/lxcprov-bench-pad"
dd if=/dev/zero of="$pad" bs=1M count=768 status=none
"$bin" -q create bench-c0 "${flat[@]}" --root-password-file "$pw" >/dev/null || true
big_kib=$(du -sxk "$work"/pool/.lxcprov/bases/*/ 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
create_big=$(creates)
rm -f "$pad"
"$bin" -q destroy bench-c1 --purge --yes >/dev/null
"$bin" -q destroy bench-c0 --purge --yes >/dev/null

echo "bench-lab: lab up --count $count..." >&2
t0=$(now)
/usr/bin/time -f "%M" -o "$work/rss" "$bin" -q lab up "$lab" --count "$count" "${common[@]}" >/dev/null 2>target/bench/lab-up.err || true
t1=$(now); labup=$(secs "$t0" "$t1")
rss_mb=$(tail -n 1 "$work/rss" | awk '{ printf "%.1f", $1 / 1024 }')
running=$("$bin" --json list | grep -c "\"name\":\"$lab-" || true)
sleep 5   # let systemd in the containers finish booting: what they write is their disk use
kib() { du -sxk "$@" 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'; }
if [[ $storage == overlay ]]; then
    base_kib=$(kib "$work"/pool/.lxcprov/bases/*/)
    layers_kib=$(kib "$work"/pool/.lxcprov/layers/*/)
else
    base_kib=0
    layers_kib=$(kib "$work"/pool/"$lab"-*/)
fi
per_mb=$(awk -v l="$layers_kib" -v n="$count" 'BEGIN { printf "%.1f", l / 1024 / n }')
labreset="n/a (copy storage has no layer) "
if [[ $storage == overlay ]]; then
    t0=$(now); "$bin" -q lab reset "$lab" --student 1 --yes >/dev/null || true; t1=$(now); labreset=$(secs "$t0" "$t1")
fi
# Classroom work: each student writes 1 MiB of their own; the class is collected, one
# student snapshotted and restored (overlay storage; copy storage collects its differences).
for d in "$work"/pool/"$lab"-*/root; do
    head -c 1048576 /dev/urandom >"$d/work.bin"
done
echo "bench-lab: lab collect of $count students..." >&2
t0=$(now); "$bin" -q lab collect "$lab" --out "$work/collected" >/dev/null || true; t1=$(now); collect=$(secs "$t0" "$t1")
collect_mb=$(kib "$work"/collected/*.tar | awk '{ printf "%.1f", $1 / 1024 }')
snap="n/a (copy storage has no layer) "; restore="$snap"; snap_kib=0
if [[ $storage == overlay ]]; then
    one="$lab-student$(printf '%02d' 2)"
    t0=$(now); "$bin" -q snapshot "$one" --tag bench >/dev/null || true; t1=$(now); snap=$(secs "$t0" "$t1")
    snap_kib=$(kib "$work"/pool/.lxcprov/snapshots/"$one"/bench)
    t0=$(now); "$bin" -q --profile-file "$work/profiles/bench.yaml" restore "$one" bench --yes >/dev/null || true; t1=$(now); restore=$(secs "$t0" "$t1")
fi
t0=$(now); "$bin" -q lab down "$lab" --purge --yes >/dev/null; t1=$(now); labdown=$(secs "$t0" "$t1")

# The same class at BIG students (default 100): the cost per student against COUNT's, the
# host memory each running student takes, lxcprov's peak memory.
big="${BIG:-100}"
bigup="n/a"; bigdown="n/a"; big_rss="n/a"; big_running=0; per_student_mb="n/a"
if (( big > count )); then
    echo "bench-lab: lab up --count $big..." >&2
    avail() { awk '/^MemAvailable:/ { print $2 }' /proc/meminfo; }
    m0=$(avail)
    t0=$(now)
    /usr/bin/time -f "%M" -o "$work/rss-big" "$bin" -q lab up "$lab" --count "$big" "${common[@]}" >/dev/null 2>target/bench/lab-up-big.err || true
    t1=$(now); bigup=$(secs "$t0" "$t1")
    big_rss=$(tail -n 1 "$work/rss-big" | awk '{ printf "%.1f", $1 / 1024 }')
    big_running=$("$bin" --json list | grep -c "\"name\":\"$lab-" || true)
    sleep 5
    m1=$(avail)
    per_student_mb=$(awk -v a="$m0" -v b="$m1" -v n="$big_running" 'BEGIN { if (n > 0) printf "%.1f", (a - b) / 1024 / n; else print "n/a" }')
    t0=$(now); "$bin" -q lab down "$lab" --purge --yes >/dev/null; t1=$(now); bigdown=$(secs "$t0" "$t1")
fi

{
    echo "# lxcprov lab benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, minimal profile (Debian 12 + systemd), storage $storage"
    printf '%-52s %10s\n' "floor: virsh define + start of a prepared tree" "${floor}s"
    printf '%-52s %10s\n' "old floor: cp -a + virsh define + start" "${floor_cp}s"
    printf '%-52s %10s\n' "lxcprov create from cache to verified container" "${create}s"
    printf '%-52s %10s\n' "the same on a $((big_kib / 1024)) MB base" "${create_big}s"
    printf '%-52s %10s\n' "lxcprov reset of it (fresh layer, restart, verify)" "${reset}s"
    printf '%-52s %10s\n' "lab up --count $count ($running running)" "${labup}s"
    printf '%-52s %10s\n' "disk: shared base" "$((base_kib / 1024)) MB"
    printf '%-52s %10s\n' "disk: $count booted containers' own (per container)" "$((layers_kib / 1024)) MB ($per_mb MB)"
    printf '%-52s %10s\n' "lab reset --student 1" "${labreset}s"
    printf '%-52s %10s\n' "lab collect of $count students (${collect_mb} MB of archives)" "${collect}s"
    printf '%-52s %10s\n' "snapshot of one student ($((snap_kib / 1024)) MB of changes)" "${snap}s"
    printf '%-52s %10s\n' "restore of it (new layer from it, restart, verify)" "${restore}s"
    printf '%-52s %10s\n' "lab down --purge" "${labdown}s"
    printf '%-52s %10s\n' "lxcprov peak RSS during lab up" "${rss_mb} MB"
    printf '%-52s %10s\n' "lab up --count $big ($big_running running)" "${bigup}s"
    printf '%-52s %10s\n' "lab down --purge of $big" "${bigdown}s"
    printf '%-52s %10s\n' "lxcprov peak RSS during lab up of $big" "${big_rss} MB"
    printf '%-52s %10s\n' "host memory per running student (of $big)" "${per_student_mb} MB"
    printf '%-52s %10s\n' "verify per container (mean of 10)" "${verify_ms} ms"
    printf '%-52s %10s\n' "audit over $nproc_host processes" "${audit}s"
    awk -v f="$floor" -v c="$create" 'BEGIN { printf "ratio create / floor: %.2f (target <= 1.2)\n", c / f }'
    awk -v s="$create" -v b="$create_big" 'BEGIN { printf "ratio create on the 1 GB base / on the small one: %.2f (target <= 1.10)\n", b / s }'
    awk -v f="$floor_cp" -v c="$create" 'BEGIN { printf "ratio create / old floor (with cp -a): %.2f\n", c / f }'
    if [[ $bigup != n/a ]]; then
        awk -v a="$labup" -v n="$count" -v b="$bigup" -v m="$big" 'BEGIN { printf "ratio lab up per student, %d vs %d: %.2f (target <= 1.15)\n", m, n, (b / m) / (a / n) }'
        awk -v a="$labdown" -v n="$count" -v b="$bigdown" -v m="$big" 'BEGIN { printf "ratio lab down per student, %d vs %d: %.2f (target <= 1.15)\n", m, n, (b / m) / (a / n) }'
    fi
} | tee target/bench/lab.txt
