#!/usr/bin/env bash
# Fault experiments, run for real on this machine (issue 14): lxcprov killed at each phase
# of create, concurrent creates of one name, create racing destroy, two `lab up` of one
# lab, libvirtd killed mid-create, a small loop-mounted pool (and cache) filled up.
# One PASS/FAIL line per experiment on stdout, then "N passed, N failed"; exit 1 on any
# failure. Everything lives in a scratch directory and domains named chaos-*.
#
# Usage: scripts/chaos.sh [--short]
#   --short   one kill per phase group and no libvirtd kill (the CI tier)
# Needs root, libvirtd (scripts/setup-host.sh), busybox-static, dnf, rpmbuild, createrepo_c,
# gpg, losetup, mkfs.ext4, jq.
set -uo pipefail
cd "$(dirname "$0")/.."
short=0
[[ "${1:-}" == --short ]] && short=1
[[ $(id -u) -eq 0 ]] || { echo "$0: run as root" >&2; exit 2; }
for t in virsh busybox dnf rpmbuild createrepo_c gpg losetup mkfs.ext4 jq pgrep; do
    command -v "$t" >/dev/null || { echo "$0: $t is missing: run scripts/setup-host.sh" >&2; exit 2; }
done
export PATH="$HOME/.cargo/bin:$PATH"
cargo build --locked -q --bin lxcprov || exit 2   # with the seccomp init shim inside (build.rs)
LX="${CARGO_TARGET_DIR:-$PWD/target}/debug/lxcprov"
URI=lxc:///
mkdir -p /var/tmp/lxcprov-chaos
WORK="$(mktemp -d /var/tmp/lxcprov-chaos/run.XXXXXX)"
chmod 755 /var/tmp/lxcprov-chaos "$WORK"
export LXCPROV_POOL_DIR="$WORK/pool" LXCPROV_CACHE_DIR="$WORK/cache" LXCPROV_STATE_DIR="$WORK/state"
export LXCPROV_PROFILE_DIR="$WORK/no-profiles" LIBVIRT_DEFAULT_URI="$URI"
# The experiments kill copy-mode phases (rename, id shift): copy storage, whatever the host has.
export LXCPROV_STORAGE=copy
LOOP=""
passed=0
failed=0

log() { printf '    %s\n' "$*" >&2; }
result() { # 0|1 ID DETAIL
    if [[ "$1" -eq 0 ]]; then
        passed=$((passed + 1)); printf 'PASS %-28s %s\n' "$2" "$3"
    else
        failed=$((failed + 1)); printf 'FAIL %-28s %s\n' "$2" "$3"
    fi
}
virsh_() { virsh -q -c "$URI" "$@" 2>/dev/null; }
gone() { # NAME: no domain, nothing of it in the pool
    ! virsh_ dominfo "$1" >/dev/null && [[ -z "$(ls -A "$LXCPROV_POOL_DIR" 2>/dev/null | grep -F -- "$1")" ]]
}
cleanup_domain() {
    virsh_ destroy "$1" >/dev/null; virsh_ undefine "$1" >/dev/null
    "$LX" -q destroy "$1" --purge --yes >/dev/null 2>&1 || true
}
# On a host with cgroup v1, a name=systemd hierarchy and PID 1 not systemd (the CI machine),
# a running user-namespaced systemd container (the quick start's web1) holds the shared
# name=systemd cgroups, and lxcprov refuses a container with another id map beside it. The
# experiments with isolated maps pause such containers (virsh shutdown) and start them again
# afterwards (at exit too). Containers of other test runs (lxcprov-*, chaos-*) are waited
# for, never stopped. Prints the holders' domain names, one a line.
systemd_holders() {
    local f pid target
    [[ "$(cat /proc/1/comm 2>/dev/null)" == systemd ]] && return 0
    for f in /sys/fs/cgroup/systemd/*/cgroup.procs; do
        [[ -f "$f" ]] || continue
        while read -r pid; do
            target="$(awk 'NR == 1 { print $2 }' "/proc/$pid/uid_map" 2>/dev/null)"
            [[ -n "$target" && "$target" != 0 ]] || continue
            sed -n 's/.*\/lxc-[0-9]*-\(.*\)\.libvirt-lxc.*/\1/p' "/proc/$pid/cgroup" 2>/dev/null | head -n 1
        done <"$f"
    done | sort -u
}
PAUSED=()
pause_systemd() {
    local n others deadline=$((SECONDS + 600)) stop_by
    while :; do
        n="$(systemd_holders | grep -v -e '^chaos-' -e '^lxcprov-' | head -n 1)"
        others="$(systemd_holders | grep -e '^chaos-' -e '^lxcprov-' | head -n 1)"
        if [[ -n "$n" ]]; then
            log "pausing $n (a running systemd container with another id map): started again afterwards"
            PAUSED+=("$n")
            virsh_ shutdown "$n" >/dev/null
            stop_by=$((SECONDS + 60))
            until [[ "$(virsh_ domstate "$n")" == "shut off" ]]; do
                if [[ $SECONDS -gt $stop_by ]]; then virsh_ destroy "$n" >/dev/null; break; fi
                sleep 0.2
            done
        elif [[ -n "$others" && $SECONDS -lt $deadline ]]; then
            sleep 1   # another test run's container: it goes by itself
        else
            return 0
        fi
    done
}
resume_systemd() {
    local n
    for n in "${PAUSED[@]}"; do
        if virsh_ start "$n" >/dev/null; then log "started $n again"; else echo "$0: WARNING: could not start $n again" >&2; fi
    done
    PAUSED=()
}
cleanup() {
    for d in $(virsh -q -c "$URI" list --all --name 2>/dev/null | grep '^chaos-'); do cleanup_domain "$d"; done
    resume_systemd
    "$LX" -q lab down chaos-lab --purge --yes >/dev/null 2>&1 || true
    for n in $(virsh -q -c "$URI" net-list --all --name 2>/dev/null | grep '^chaos-\|^lxcprov-lab-chaos'); do
        virsh_ net-destroy "$n" >/dev/null; virsh_ net-undefine "$n" >/dev/null
    done
    if [[ -n "$LOOP" ]]; then umount "$WORK/small" 2>/dev/null; losetup -d "$LOOP" 2>/dev/null; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A busybox tree to import, and profiles: plain, and with a user namespace.
scripts/lib/busybox-rootfs.sh "$WORK/bb" >/dev/null || exit 2
mkdir -p "$WORK/profiles"
cat >"$WORK/profiles/chaos.yaml" <<'EOF'
description: chaos busybox
distro: debian12
memory_mib: 64
network: {mode: isolated, name: chaos-net}
security: {model: none, label: none, allow_host_root: true}
EOF
cat >"$WORK/profiles/chaosns.yaml" <<'EOF'
description: chaos busybox, user namespace
distro: debian12
memory_mib: 64
network: {mode: isolated, name: chaos-net}
security:
  model: none
  label: none
  idmap:
    uid: {start: 0, target: 200000, count: 65536}
    gid: {start: 0, target: 200000, count: 65536}
EOF
PF=(--profile-file "$WORK/profiles/chaos.yaml" --profile-file "$WORK/profiles/chaosns.yaml")
echo chaos-password >"$WORK/pw"
create_args() { # NAME PROFILE
    printf '%s\n' "${PF[@]}" create "$1" --profile "$2" --rootfs-from "$WORK/bb" --root-password-file "$WORK/pw"
}
lx_create() { # NAME PROFILE [extra lxcprov args...] -> exit status
    local n="$1" p="$2"
    shift 2
    mapfile -t a < <(create_args "$n" "$p")
    "$LX" "$@" "${a[@]}"
}
# A running, verified container: exit <= 1 from verify and pidns/net.vnet PASS.
verified() { # NAME
    local out
    out="$("$LX" --json verify "$1" 2>/dev/null)"
    [[ $? -le 1 ]] || return 1
    for id in pidns net.vnet; do
        [[ "$(jq -r --arg id "$id" 'select(.type=="check" and .data.id==$id) | .data.status' <<<"$out")" == pass ]] || return 1
    done
}
no_children() { ! pgrep -f -- "$WORK/pool" >/dev/null; }

# SIGKILLs PID once its stderr (ERR) shows MARKER (or it ended, or 60 s passed), DELAY later.
kill_when() { # PID ERR MARKER DELAY
    local pid="$1" t0
    t0=$(date +%s)
    until grep -qF -- "$3" "$2" 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then break; fi
        (( $(date +%s) - t0 > 60 )) && break
        sleep 0.002
    done
    sleep "$4"
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    sleep 0.2
}

# The re-run after a kill (CMD...) converges: running and verified, /bin/busybox owned by
# WANT when one is given (never shifted twice; `registry`: the container's isolated range,
# read after the re-run); then destroy --purge leaves nothing in the pool and nothing
# mounted. Adds to the caller's `ok` and `detail`.
converges() { # NAME ERR WANT CMD...
    local n="$1" err="$2" want="$3" rc owner
    shift 3
    "$@" >/dev/null 2>"$err.rerun"
    rc=$?
    if [[ $rc -le 1 ]] && verified "$n"; then
        detail+="re-run exit $rc, running and verified"
    else
        ok=1; detail+="re-run exit $rc: $(tail -n 2 "$err.rerun" | tr '\n' ' ')"
    fi
    if [[ "$want" == registry ]]; then
        want="$(jq -r --arg n "$n" '.ranges[$n] // "none"' "$LXCPROV_STATE_DIR/idmap-registry.json" 2>/dev/null)"
    fi
    if [[ -n "$want" ]]; then
        owner="$(stat -c %u "$LXCPROV_POOL_DIR/$n/bin/busybox" 2>/dev/null)"
        [[ "$owner" == "$want" ]] || { ok=1; detail+="; /bin/busybox owned by ${owner:-nobody}, not $want (shifted twice?)"; }
    fi
    "$LX" -q destroy "$n" --purge --yes >/dev/null 2>&1 || { ok=1; detail+="; destroy --purge failed"; }
    gone "$n" || { ok=1; detail+="; left: $(ls -A "$LXCPROV_POOL_DIR" | tr '\n' ' ')"; }
    no_mounts || { ok=1; detail+="; still mounted: $(grep -F -- " $LXCPROV_POOL_DIR/" /proc/self/mountinfo | cut -d' ' -f5 | tr '\n' ' ')"; }
}
no_mounts() { ! grep -qF -- " $LXCPROV_POOL_DIR/" /proc/self/mountinfo; }

# 1. SIGKILL at each phase of create; the re-run converges, then destroy --purge removes all.
kill_at() { # PHASE MARKER PROFILE DELAY
    local phase="$1" marker="$2" prof="$3" delay="$4" n="chaos-k-$1" ok=0 detail
    local err="$WORK/kill-$phase.err"
    mapfile -t a < <(create_args "$n" "$prof")
    "$LX" "${a[@]}" >/dev/null 2>"$err" &
    kill_when $! "$err" "$marker" "$delay"
    no_children || { ok=1; detail="a child outlived lxcprov; "; }
    local want=""
    [[ "$prof" == chaosns ]] && want=200000
    converges "$n" "$err" "$want" lx_create "$n" "$prof"
    result $ok "kill.$phase" "$detail"
}
phases=(
    "import|==> import|chaos|0.01"
    "configure|==> configure the guest|chaos|0"
    "place|==> move the finished tree into place|chaos|0"
    "shift|shifting ownership|chaosns|0.002"
    "network|defining isolated network|chaos|0"
    "define|defining domain|chaos|0"
    "start|defining domain|chaos|0.3"
    "verify|is running; its init|chaos|0"
)
[[ $short -eq 1 ]] && phases=("${phases[0]}" "${phases[3]}" "${phases[6]}")
for p in "${phases[@]}"; do
    IFS='|' read -r phase marker prof delay <<<"$p"
    kill_at "$phase" "$marker" "$prof" "$delay"
done

# 1b. Overlay storage, from a cached base: SIGKILL while the shared base is prepared, while
# the layer and the overlay (an id-mapped view of the base for an isolated map) are
# mounted, and at the start; the re-run converges with the right owners, and destroy
# --purge leaves nothing mounted and nothing in the pool.
ov_seed() {
    local entry
    entry="$(LXCPROV_STORAGE=overlay "$LX" --json "${PF[@]}" create chaos-ov-x --profile chaosns --dry-run 2>/dev/null \
        | jq -r 'select(.type == "step") | .data.actions[] | select(.action == "store_base") | .entry' | head -n 1)"
    [[ -n "$entry" ]] || return 1
    mkdir -p "$(dirname "$entry")" && cp -a "$WORK/bb" "$entry" && echo '{}' >"$entry/.lxcprov-base.json"
}
kill_ov() { # PHASE MARKER DELAY [--idmap isolated]
    local phase="$1" marker="$2" delay="$3" n="chaos-o-$1" ok=0 detail="" want
    shift 3
    local err="$WORK/kill-ov-$phase.err"
    local a=("${PF[@]}" create "$n" --profile chaosns --root-password-file "$WORK/pw" "$@")
    LXCPROV_STORAGE=overlay "$LX" "${a[@]}" >/dev/null 2>"$err" &
    kill_when $! "$err" "$marker" "$delay"
    # Nothing of the killed run lives on (a forked helper would hold its locks).
    if pgrep -f -- "create $n " >/dev/null; then
        ok=1; detail+="a process of the killed run outlived it: $(pgrep -af -- "create $n " | head -n 1); "
    fi
    # An isolated map's range is known once the re-run has it: `registry` says read it then.
    want=200000
    [[ $# -gt 0 ]] && want=registry
    converges "$n" "$err" "$want" env LXCPROV_STORAGE=overlay "$LX" "${a[@]}"
    result $ok "kill.overlay.$phase" "$detail"
}
if ov_seed; then
    ov_phases=(
        "base|==> prepare the shared base|0.003|"
        "mount|own writable layer and mount|0|"
        "idmapped|own writable layer and mount|0.002|--idmap isolated"
        "start|defining domain|0.1|--idmap isolated"
    )
    [[ $short -eq 1 ]] && ov_phases=("${ov_phases[0]}" "${ov_phases[2]}" "${ov_phases[3]}")
    for p in "${ov_phases[@]}"; do
        IFS='|' read -r phase marker delay extra <<<"$p"
        # An isolated map cannot start beside a running systemd container with another map.
        [[ "$extra" == *isolated* ]] && pause_systemd
        # shellcheck disable=SC2086 # the extra arguments are words
        kill_ov "$phase" "$marker" "$delay" $extra
    done
    resume_systemd
else
    result 1 kill.overlay "could not seed the base cache for overlay storage"
fi

# 2. Two concurrent creates of one name: exactly one wins, the other exits 2 and says why.
race_create() {
    local n=chaos-race r1 r2 ok=1 detail
    lx_create "$n" chaos >/dev/null 2>"$WORK/race1.err" & local p1=$!
    lx_create "$n" chaos >/dev/null 2>"$WORK/race2.err" & local p2=$!
    wait $p1; r1=$?
    wait $p2; r2=$?
    local loser_err
    if [[ $r1 -le 1 && $r2 -eq 2 ]]; then loser_err="$WORK/race2.err"; elif [[ $r2 -le 1 && $r1 -eq 2 ]]; then loser_err="$WORK/race1.err"; fi
    if [[ -n "${loser_err:-}" ]] && grep -q "another lxcprov run is working on $n" "$loser_err" && verified "$n"; then
        ok=0; detail="exits $r1/$r2; the loser: $(grep -o 'another lxcprov run[^;]*' "$loser_err" | head -n 1)"
    else
        detail="exits $r1/$r2: $(tail -n 1 "$WORK/race1.err") | $(tail -n 1 "$WORK/race2.err")"
    fi
    "$LX" -q destroy "$n" --purge --yes >/dev/null 2>&1
    gone "$n" || { ok=1; detail+="; not cleaned"; }
    result $ok concurrent.create "$detail"
}
race_create

# 3. create racing destroy: the end state is whole (verified) or nothing, never half.
race_destroy() {
    local n=chaos-rd ok=0 detail rc
    lx_create "$n" chaos >/dev/null 2>"$WORK/rd.err" & local p=$!
    sleep 0.3
    "$LX" -q destroy "$n" --purge --yes >/dev/null 2>"$WORK/rd-destroy.err"
    rc=$?
    wait $p
    if virsh_ dominfo "$n" >/dev/null; then
        verified "$n" && [[ -d "$LXCPROV_POOL_DIR/$n" ]] || ok=1
        detail="destroy exit $rc ($(tail -n 1 "$WORK/rd-destroy.err")); container whole"
    else
        gone "$n" || ok=1
        detail="destroy exit $rc; nothing left"
    fi
    "$LX" -q destroy "$n" --purge --yes >/dev/null 2>&1
    gone "$n" || { ok=1; detail+="; not cleaned"; }
    result $ok create.vs.destroy "$detail"
}
race_destroy

# 4. Two `lab up` of one lab at once: afterwards every member runs, once.
race_lab() {
    local ok=0 r1 r2 detail
    "$LX" "${PF[@]}" lab up chaos-lab --count 3 --profile chaos --rootfs-from "$WORK/bb" >/dev/null 2>"$WORK/lab1.err" & local p1=$!
    "$LX" "${PF[@]}" lab up chaos-lab --count 3 --profile chaos --rootfs-from "$WORK/bb" >/dev/null 2>"$WORK/lab2.err" & local p2=$!
    wait $p1; r1=$?
    wait $p2; r2=$?
    # Exactly one wins; the other is refused at once by the lab's lock and says so.
    if [[ $r1 -le 1 && $r2 -eq 2 ]]; then grep -q "another lxcprov run is working on lab chaos-lab" "$WORK/lab2.err" || ok=1
    elif [[ $r2 -le 1 && $r1 -eq 2 ]]; then grep -q "another lxcprov run is working on lab chaos-lab" "$WORK/lab1.err" || ok=1
    else ok=1; fi
    # A re-run finds everything there.
    "$LX" "${PF[@]}" lab up chaos-lab --count 3 --profile chaos --rootfs-from "$WORK/bb" >/dev/null 2>"$WORK/lab3.err"
    local r3=$? running=0
    for i in 1 2 3; do [[ "$(virsh_ domstate "chaos-lab-student0$i")" == running ]] && running=$((running + 1)); done
    [[ $r3 -le 1 && $running -eq 3 ]] || ok=1
    "$LX" -q lab down chaos-lab --purge --yes >/dev/null 2>&1 || ok=1
    for i in 1 2 3; do gone "chaos-lab-student0$i" || ok=1; done
    detail="lab up exits $r1/$r2, then $r3; $running of 3 running; down leaves nothing"
    result $ok concurrent.lab "$detail"
}
race_lab

# 5. libvirtd killed mid-create: a clear error; once it is back, a re-run converges and the
#    tree was not deleted under a domain that may still exist.
kill_libvirtd() {
    # shellcheck source=lib/host.sh
    source scripts/lib/host.sh
    local n=chaos-lv ok=0 detail pid err="$WORK/lv.err"
    mapfile -t a < <(create_args "$n" chaos)
    "$LX" "${a[@]}" >/dev/null 2>"$err" & pid=$!
    until grep -qF "defining domain" "$err" 2>/dev/null || ! kill -0 $pid 2>/dev/null; do sleep 0.005; done
    kill -KILL "$(cat "$HOST_LIBVIRTD_PIDFILE")" 2>/dev/null
    wait $pid; local rc=$?
    host_ensure_libvirtd >/dev/null 2>&1 || { result 1 libvirtd.killed "libvirtd did not come back"; return; }
    if [[ $rc -eq 0 ]]; then
        detail="create finished before the kill took effect"
    elif [[ $rc -eq 2 ]] && grep -qi "libvirt" "$err"; then
        detail="create exit 2: $(grep -m1 'error' "$err" | cut -c1-140)"
    else
        ok=1; detail="create exit $rc: $(tail -n 2 "$err" | tr '\n' ' ')"
    fi
    if virsh_ dominfo "$n" >/dev/null && [[ ! -d "$LXCPROV_POOL_DIR/$n" ]]; then
        ok=1; detail+="; the domain survived but its tree was deleted"
    fi
    lx_create "$n" chaos >/dev/null 2>"$err.rerun"; local r2=$?
    if [[ $r2 -le 1 ]] && verified "$n"; then detail+="; re-run exit $r2, verified"; else ok=1; detail+="; re-run exit $r2: $(tail -n 1 "$err.rerun")"; fi
    "$LX" -q destroy "$n" --purge --yes >/dev/null 2>&1
    gone "$n" || { ok=1; detail+="; not cleaned"; }
    result $ok libvirtd.killed "$detail"
}
[[ $short -eq 0 ]] && kill_libvirtd

# 6. A small loop-mounted disk filled up, under the pool and under the cache: a clean
#    failure that says "disk full", nothing partial left, the cache intact.
disk_full() {
    truncate -s 48M "$WORK/small.img"
    mkfs.ext4 -q -F "$WORK/small.img" || { result 1 disk.full "mkfs failed"; return; }
    mkdir -p "$WORK/small"
    LOOP="$(losetup -f --show "$WORK/small.img")" || { result 1 disk.full "no loop device"; return; }
    mount "$LOOP" "$WORK/small" || { result 1 disk.full "mount failed"; return; }
    # (a) an import that cannot fit is refused before anything is copied
    local big="$WORK/bigtree" ok=0 detail rc
    cp -a "$WORK/bb" "$big"
    head -c 64M /dev/urandom >"$big/filler"
    "$LX" "${PF[@]}" --pool-dir "$WORK/small/pool" create chaos-df --profile chaos --rootfs-from "$big" \
        --root-password-file "$WORK/pw" >/dev/null 2>"$WORK/df1.err"
    rc=$?
    [[ $rc -eq 2 ]] && grep -q "disk full" "$WORK/df1.err" && [[ -z "$(ls -A "$WORK/small/pool" 2>/dev/null)" ]] || ok=1
    ! virsh_ dominfo chaos-df >/dev/null || ok=1
    detail="import: exit $rc, $(grep -o 'disk full[^;]*' "$WORK/df1.err" | head -n 1 | cut -c1-90)"
    # (b) an install into a full pool, and a full package cache: dnf's ENOSPC is "disk full"
    local repo
    repo="$(scripts/make-test-repo.sh "$WORK/repo" 2>/dev/null | sed -n 's/^signed=//p')"
    local key="$WORK/repo/RPM-GPG-KEY-lxcprov-test"
    cat >"$WORK/profiles/chaosrpm.yaml" <<EOF
description: chaos rpm
distro: centos-stream9
release: '9'
base_packages: [lxcprov-base]
packages: [lxcprov-hello]
repos:
  - {id: chaos, url: "file://$repo", gpgkeys: ["file://$key"]}
network: {mode: isolated, name: chaos-net}
security: {model: none, label: none, allow_host_root: true}
EOF
    head -c 40M /dev/zero >"$WORK/small/fill" 2>/dev/null
    dd if=/dev/zero of="$WORK/small/fill2" bs=64k 2>/dev/null
    sync
    "$LX" --profile-file "$WORK/profiles/chaosrpm.yaml" --pool-dir "$WORK/small/pool" bootstrap chaos-df2 \
        --profile chaosrpm --root-password-file "$WORK/pw" >/dev/null 2>"$WORK/df2.err"
    local rc2=$?
    [[ $rc2 -eq 2 ]] && grep -q "disk full\|No space" "$WORK/df2.err" && [[ -z "$(ls -A "$WORK/small/pool" 2>/dev/null)" ]] || ok=1
    detail+="; full pool: exit $rc2"
    # A good install fills the cache, then the cache dir moves to the full disk.
    "$LX" --profile-file "$WORK/profiles/chaosrpm.yaml" bootstrap chaos-df3 --profile chaosrpm \
        --root-password-file "$WORK/pw" >/dev/null 2>"$WORK/df3.err" || { ok=1; detail+="; the good install failed"; }
    local before
    before="$(find "$WORK/cache/rootfs" -maxdepth 2 | sort | sha256sum)"
    "$LX" --profile-file "$WORK/profiles/chaosrpm.yaml" --cache-dir "$WORK/small/cache" bootstrap chaos-df4 \
        --profile chaosrpm --root-password-file "$WORK/pw" --force >/dev/null 2>"$WORK/df4.err"
    local rc4=$?
    [[ $rc4 -eq 2 ]] && grep -q "disk full\|No space" "$WORK/df4.err" || ok=1
    [[ ! -e "$WORK/pool/.chaos-df4.partial" && ! -e "$WORK/pool/chaos-df4" ]] || ok=1
    [[ "$(find "$WORK/cache/rootfs" -maxdepth 2 | sort | sha256sum)" == "$before" ]] || ok=1
    detail+="; full cache: exit $rc4, pool clean, the other cache intact"
    "$LX" -q destroy chaos-df3 --purge --yes >/dev/null 2>&1
    umount "$WORK/small" && losetup -d "$LOOP" && LOOP=""
    result $ok disk.full "$detail"
}
disk_full

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
