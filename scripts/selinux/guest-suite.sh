#!/bin/bash
# The lxcprov lab suite, run INSIDE the lab guest by scripts/selinux-lab.sh test.
#
#   guest-suite.sh LABDIR            run the suite; LABDIR is the second disk, holding
#                                    lxcprov, busybox.tar, lab-*.yaml and `mode`
#                                    (selinux | permissive | apparmor); results go to LABDIR/out
#   guest-suite.sh --list-checks MODE
#                                    the check ids the suite reports for MODE (the host uses
#                                    it to detect missing results); touches nothing
#
# The guest's lxcprov-lab.service runs it as unconfined_t (runcon). It starts libvirtd,
# creates two busybox containers c1 and c2 with lxcprov from the lab profile, verifies
# them, checks their labels, restarts c1, destroys both with --purge and checks nothing is
# left; then (SELinux modes) a Debian 12 systemd container with the `web` profile from the
# host-bootstrapped base on the lab disk, which must pass every check. Every lxcprov JSON
# Lines report is kept in out/ (create-*.jsonl, verify-*.jsonl, ...).
# out/report.txt has one line per result: PASS|FAIL ID: detail, INFO lines, then END.
set -u

checks_for() { # MODE
    case "$1" in
        selinux | permissive)
            echo guest.lsm guest.context hook.install libvirtd.start libvirt.secmodel \
                create.c1 create.c2 verify.c1 verify.c2 label.c1 label.c2 label.distinct \
                probe.c1 shell.c1 restart.c1 label.changed verify.c1.restart restart.c1.files destroy.c1 destroy.c2 \
                lab.up lab.static lab.idmap lab.verify lab.audit lab.down \
                web.create web.systemd web.verify web.label web.overlay shell.web1 web.isolated \
                overlay.probe overlay.restart destroy.web2 destroy.web1 overlay.cost cleanup audit.denials
            ;;
        apparmor)
            echo guest.lsm guest.context hook.install libvirtd.start libvirt.secmodel \
                create.c1 create.c2 verify.c1 verify.c2 label.c1 label.c2 label.distinct \
                shell.c1 restart.c1 verify.c1.restart destroy.c1 destroy.c2 cleanup
            ;;
        *) return 2 ;;
    esac
}

if [[ "${1:-}" == --list-checks ]]; then
    checks_for "${2:-}"
    exit $?
fi

LAB="${1:?usage: guest-suite.sh LABDIR | --list-checks MODE}"
OUT="$LAB/out"
MODE="$(cat "$LAB/mode")"
mkdir -p "$OUT"
REPORT="$OUT/report.txt"
: >"$REPORT"
: >"$OUT/results.jsonl"
URI=lxc:///
POOL=/var/lib/libvirt/filesystems
PROFILE="lab-selinux"
[[ "$MODE" != apparmor ]] || PROFILE="lab-apparmor"
PFILE="$LAB/$PROFILE.yaml"
LXCPROV="$LAB/lxcprov"
SUITE_T0=$(date +%s.%N)

# --- reporting ------------------------------------------------------------------------

json_str() { # escape for JSON
    local s="$1"
    s="${s//\\/\\\\}"
    s="${s//\"/\\\"}"
    s="${s//$'\n'/\\n}"
    s="${s//$'\t'/\\t}"
    printf '"%s"' "$s"
}
result() { # PASS|FAIL ID DETAIL
    printf '%s %s: %s\n' "$1" "$2" "$3" | tee -a "$REPORT"
    printf '{"status":%s,"id":%s,"detail":%s}\n' "$(json_str "$1")" "$(json_str "$2")" "$(json_str "$3")" >>"$OUT/results.jsonl"
}
pass() { result PASS "$1" "$2"; }
fail() { result FAIL "$1" "$2"; }
check() { # ID COND DETAIL   (COND: 0 = pass)
    if [[ "$2" -eq 0 ]]; then pass "$1" "$3"; else fail "$1" "$3"; fi
}
info() { printf 'INFO %s\n' "$*" | tee -a "$REPORT"; }
log() { printf '%s +%ss %s\n' "--" "$(since "$SUITE_T0")" "$*"; }
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

# Runs lxcprov with --json: stdout (JSON Lines) to out/TAG.jsonl, stderr to out/TAG.err.
# Sets RC and DUR.
lx() { # TAG ARGS...
    local tag="$1" t
    shift
    t=$(date +%s.%N)
    log "lxcprov --json $*"
    "$LXCPROV" --json "$@" >"$OUT/$tag.jsonl" 2>"$OUT/$tag.err"
    RC=$?
    DUR="$(since "$t")"
    log "  exit $RC in ${DUR}s"
}
# The most telling line of a failed lxcprov run: its JSON error event, else stderr's tail.
lx_error() { # TAG
    local e
    e="$(jq -r 'select(.type == "error") | .data.message' "$OUT/$1.jsonl" 2>/dev/null | tail -n 1)"
    [[ -n "$e" ]] || e="$(grep -v '^\s*$' "$OUT/$1.err" 2>/dev/null | tail -n 3 | tr '\n' ' ')"
    printf '%s' "$e"
}
# "id=status ..." for the checks of a verify JSON report that did not pass.
verify_nonpass() { # TAG
    jq -r 'select(.type == "check" and .data.status != "pass") | "\(.data.id)=\(.data.status)"' \
        "$OUT/$1.jsonl" 2>/dev/null | tr '\n' ' '
}
verify_summary() { # TAG
    jq -r 'select(.type == "summary") | "passed=\(.data.passed) failed=\(.data.failed) skipped=\(.data.skipped)"' \
        "$OUT/$1.jsonl" 2>/dev/null | tail -n 1
}

# One field of one check of a JSON Lines report (jq, never the text's field order).
check_field() { # TAG ID FIELD
    jq -r --arg id "$2" --arg f "$3" 'select(.type == "check" and .data.id == $id) | .data[$f]' \
        "$OUT/$1.jsonl" 2>/dev/null | head -n 1
}

virsh_() { virsh -q -c "$URI" "$@"; }
init_pid() { # NAME
    sed -n "s/.*<init pid='\([0-9]*\)'.*/\1/p" "/run/libvirt/lxc/$1.xml" 2>/dev/null | head -n 1
}
proc_label() { # PID
    tr -d '\0' <"/proc/$1/attr/current" 2>/dev/null
}
live_label() { # NAME  -> <label> of the live XML
    virsh_ dumpxml "$1" 2>/dev/null | sed -n 's:.*<label>\(.*\)</label>.*:\1:p' | head -n 1
}
live_imagelabel() { # NAME
    virsh_ dumpxml "$1" 2>/dev/null | sed -n 's:.*<imagelabel>\(.*\)</imagelabel>.*:\1:p' | head -n 1
}
# The categories of an MCS label: system_u:system_r:container_t:s0:c1,c2 -> c1,c2
cats() { printf '%s' "$1" | sed -n 's/^[^:]*:[^:]*:[^:]*:s0:\(c[0-9]*,c[0-9]*\)$/\1/p'; }

# All processes with exactly this label, as "pid:comm" (the container's processes).
procs_with_label() { # LABEL
    ps -eo label=,pid=,comm= 2>/dev/null | awk -v l="$1" '$1 == l { printf "%s:%s ", $2, $3 }'
}

# --- steps ----------------------------------------------------------------------------

step_guest() {
    local lsm
    lsm="$(cat /sys/kernel/security/lsm 2>/dev/null)"
    info "kernel $(uname -r); LSMs: $lsm; lxcprov $(head -n 1 "$LAB/lxcprov.rev" 2>/dev/null) sha256:$(tail -n 1 "$LAB/lxcprov.rev" 2>/dev/null)"
    case "$MODE" in
        selinux | permissive)
            local want=1 enf mls
            [[ "$MODE" == selinux ]] || want=0
            enf="$(cat /sys/fs/selinux/enforce 2>/dev/null)"
            mls="$(cat /sys/fs/selinux/mls 2>/dev/null)"
            local ok=1
            [[ "$enf" == "$want" && "$mls" == 1 && -s /etc/selinux/default/contexts/lxc_contexts ]] && ok=0
            check guest.lsm $ok "enforce=$enf (want $want), mls=$mls, policy $(cat /sys/fs/selinux/policyvers 2>/dev/null), lxc_contexts: $(tr '\n' ' ' </etc/selinux/default/contexts/lxc_contexts 2>/dev/null | sed 's/  */ /g')"
            local ctx
            ctx="$(id -Z)"
            [[ "$ctx" == unconfined_u:unconfined_r:unconfined_t:* ]]
            check guest.context $? "suite runs as $ctx"
            ;;
        apparmor)
            local en
            en="$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)"
            [[ "$en" == Y && ",$lsm," == *,apparmor,* && ",$lsm," != *,selinux,* ]]
            check guest.lsm $? "apparmor enabled=$en, LSMs $lsm, $(aa-status 2>/dev/null | head -n 2 | tr '\n' ' ')"
            local ctx
            ctx="$(cat /proc/self/attr/current 2>/dev/null | tr -d '\0')"
            [[ "$ctx" == unconfined ]]
            check guest.context $? "suite runs as ${ctx:-?}"
            ;;
    esac
}

# The libvirt hook, installed the way the host set-up installs it (scripts/lib/host.sh's
# host_ensure_lxc_hook, lxcprov at /usr/local/bin), before libvirtd starts; the overlay
# module, loaded at boot (the image's modules-load.d). Then new containers from a cached
# base get overlay storage, as on any host.
step_hook() {
    local rc ov hook=/etc/libvirt/hooks/lxc
    install -m 0755 "$LXCPROV" /usr/local/bin/lxcprov
    (
        set +u
        HOST_LOG_PREFIX=guest-suite
        # shellcheck source=../lib/host.sh
        . "$LAB/host.sh"
        host_ensure_lxc_hook
    ) >"$OUT/hook-install.txt" 2>&1
    rc=$?
    # libvirtd looks for hooks when it starts; the image starts it at boot, before the hook
    # existed (host_ensure_lxc_hook says so): restart it, as the set-up tells an admin to.
    local was
    was="$(systemctl is-active libvirtd 2>/dev/null)"
    if [[ "$was" == active ]]; then
        systemctl restart libvirtd >>"$OUT/hook-install.txt" 2>&1
        was="active before, restarted (exit $?)"
    fi
    ov="$(grep -cw overlay /proc/filesystems)"
    [[ $rc -eq 0 && $ov -ge 1 && "$(sed -n 2p "$hook" 2>/dev/null)" == "# lxcprov libvirt LXC hook v3" ]]
    check hook.install $? "host_ensure_lxc_hook exit $rc ($(grep -v '^\s*$' "$OUT/hook-install.txt" 2>/dev/null | head -n 1)); libvirtd: $was; $hook: $(sed -n 2p "$hook" 2>/dev/null), $(grep '^exec ' "$hook" 2>/dev/null); $(ls -Z "$hook" 2>/dev/null | cut -d' ' -f1); overlay in /proc/filesystems: $ov, module: $(lsmod | awk '$1 == "overlay" { print "loaded" }')"
}

# May a process labelled SCON do PERM on a CLASS labelled TCON? The policy's answer
# (libselinux's selinux_check_access), 0 when allowed.
may() { # SCON TCON CLASS PERM
    python3 -c 'import sys, selinux
try:
    sys.exit(0 if selinux.selinux_check_access(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]) == 0 else 1)
except OSError as e:
    print("may:", sys.argv[1:], e, file=sys.stderr)
    sys.exit(1)' "$@" 2>>"$OUT/may.err"
}

# Runs a command from a process in LABEL, with a busybox copy labelled lxc_contexts' shared
# file label (as `verify --probe` does): the kernel's answer, not the policy's text.
as_label() { # LABEL BUSYBOX-ARGS...
    local l="$1" d=/var/lib/lxcprov/suite-probe
    shift
    if [[ ! -x "$d/busybox" ]]; then
        mkdir -p "$d" && cp "$(command -v busybox)" "$d/busybox" \
            && chcon -R system_u:object_r:container_file_t:s0 "$d" 2>>"$OUT/as-label.err"
    fi
    runcon "$l" "$d/busybox" "$@" 2>>"$OUT/as-label.err"
}

# An interactive `lxcprov shell NAME` through a real pty (util-linux `script`): the shell
# must evaluate what is typed, report its own label and its pty's label from inside, and
# pass its exit status back; from the host, the pty its processes hold must carry the
# container's file label at its level (SELinux modes).
step_shell() { # NAME
    local n="$1" l="${LABEL[$1]:-}" in="$OUT/shell-$1.in" rc=0 i p hostpty="" hostpath="" t own_ok=1 other_ok=1
    # Another container's label (c2's for c1 and web1; c2 is gone by then, its label stays).
    local other="${LABEL[c2]:-}"
    printf '%s\n' 'echo "SUM=$((6*7))"' 'echo "SELF=$(tr -d "\0" </proc/self/attr/current)"' \
        'echo "PTY=$(stat -L -c %C /proc/self/fd/0 2>/dev/null || echo unknown)"' 'sleep 7' 'exit 7' >"$in"
    t=$(date +%s.%N)
    log "script -qec 'lxcprov shell $n' (a real pty), input $in"
    (
        timeout 90 script -qec "$LXCPROV shell $n" /dev/null <"$in" >"$OUT/shell-$n.out" 2>"$OUT/shell-$n.err"
        echo $? >"$OUT/shell-$n.rc"
    ) &
    local bg=$!
    # From the host, while the session's `sleep` runs: the pty its fd 0 is.
    for ((i = 0; i < 120; i++)); do
        [[ -z "$hostpath" ]] || break
        for p in $(pgrep -x -f 'sleep 7'); do
            [[ "$(proc_label "$p")" == "$l" ]] || continue
            hostpath="$(readlink "/proc/$p/fd/0" 2>/dev/null)"
            hostpty="$(stat -L -c %C "/proc/$p/fd/0" 2>/dev/null)"
        done
        # While the session holds it: the pty opened for reading and for writing (`: <pty`,
        # `: >pty`) by a process in the container's label, and in another container's.
        if [[ -n "$hostpath" && "$MODE" != apparmor ]]; then
            as_label "$l" sh -c ": <$hostpath && : >$hostpath" && own_ok=0
            as_label "$other" sh -c ": <$hostpath" || as_label "$other" sh -c ": >$hostpath" || other_ok=0
        fi
        [[ -n "$hostpath" ]] || sleep 0.5
    done
    wait "$bg"
    rc="$(cat "$OUT/shell-$n.rc" 2>/dev/null)"
    local out sum self pty
    out="$(tr -d '\r' <"$OUT/shell-$n.out" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g')"
    sum="$(printf '%s\n' "$out" | grep -c '^SUM=42$')"
    self="$(printf '%s\n' "$out" | sed -n 's/^SELF=\(.*[^ ]\) *$/\1/p' | grep -v '\$' | head -n 1)"
    pty="$(printf '%s\n' "$out" | sed -n 's/^PTY=\(.*\)$/\1/p' | grep -v '\$' | head -n 1)"
    local detail="session exit $rc in $(since "$t")s (want 7, the shell's own); 6*7 evaluated: $([[ $sum -ge 1 ]] && echo yes || echo no); inside: label ${self:-?}, pty ${pty:-?}; from the host: ${hostpath:-no process of $n on a pty} ${hostpty:-}"
    case "$MODE" in
        selinux | permissive)
            local want
            want="system_u:object_r:container_file_t:s0:$(cats "$l")"
            detail+="; opening $hostpath from ${l##*:s0:}: $([[ $own_ok -eq 0 ]] && echo allowed || echo DENIED), from another container's ${other##*:s0:}: $([[ $other_ok -eq 0 ]] && echo denied || echo ALLOWED)"
            [[ "$rc" == 7 && $sum -ge 1 && "$self" == "$l" && "$hostpty" == "$want" && $own_ok -eq 0 && -n "$other" && $other_ok -eq 0 ]] \
                && { [[ "$n" == c1 ]] || [[ "$pty" == "$want" ]]; }
            check "shell.$n" $? "$detail"
            ;;
        apparmor)
            [[ "$rc" == 7 && $sum -ge 1 && "$self" == "$l" && -n "$hostpath" ]]
            check "shell.$n" $? "$detail"
            ;;
    esac
}

# An overlay container's state: OV_CTX (the context= of its overlay mount), OV_FILE (its
# root's label), OV_IMG (the live XML's imagelabel), OV_UPPER (bytes in its layer's upper).
overlay_state() { # NAME
    OV_CTX="$(awk -v t="$POOL/$1" '$5 == t && / - overlay /' /proc/self/mountinfo | grep -o 'context="[^"]*"' | tail -n 1 | sed 's/^context="\(.*\)"$/\1/')"
    OV_FILE="$(ls -Zd "$POOL/$1" 2>/dev/null | cut -d' ' -f1)"
    OV_IMG="$(live_imagelabel "$1")"
    OV_UPPER="$(du -sb "$POOL/.lxcprov/layers/$1/upper" 2>/dev/null | cut -f1)"
}

# Starts a shut-off NAME with `virsh start` (libvirt and the hook alone, as at boot or by an
# administrator), waits for its init; sets RC and DUR (of virsh start).
virsh_start() { # NAME
    local t i
    t=$(date +%s.%N)
    log "virsh start $1"
    virsh_ start "$1" >"$OUT/virsh-start-$1.txt" 2>&1
    RC=$?
    DUR="$(since "$t")"
    for ((i = 0; i < 100; i++)); do
        [[ -n "$(init_pid "$1")" ]] && break
        sleep 0.2
    done
    log "  exit $RC in ${DUR}s"
}

step_libvirtd() {
    local t i ok=1 ver
    t=$(date +%s.%N)
    log "systemctl start libvirtd"
    systemctl start libvirtd >"$OUT/libvirtd-start.txt" 2>&1
    for ((i = 0; i < 120; i++)); do
        if ver="$(virsh -c "$URI" version 2>/dev/null)"; then
            ok=0
            break
        fi
        sleep 0.5
    done
    local lbl pid
    pid="$(systemctl show -p MainPID --value libvirtd 2>/dev/null)"
    lbl="$(cat "/proc/$pid/attr/current" 2>/dev/null | tr -d '\0')"
    check libvirtd.start $ok "ready in $(since "$t")s, pid $pid as ${lbl:-?}; $(printf '%s' "$ver" | grep -i 'running hypervisor' | sed 's/  */ /g')"
    [[ $ok -eq 0 ]] || { systemctl status libvirtd --no-pager >>"$OUT/libvirtd-start.txt" 2>&1; return 1; }
    virsh -c "$URI" capabilities >"$OUT/capabilities.xml" 2>&1
    local model base
    model="$(sed -n 's:.*<model>\(.*\)</model>.*:\1:p' "$OUT/capabilities.xml" | head -n 1)"
    base="$(sed -n "s:.*<baselabel type='lxc'>\(.*\)</baselabel>.*:\1:p" "$OUT/capabilities.xml" | head -n 1)"
    case "$MODE" in
        selinux | permissive)
            [[ "$model" == selinux && "$base" == *container_t* ]]
            check libvirt.secmodel $? "secmodel $model, lxc baselabel ${base:-none}"
            ;;
        apparmor)
            [[ "$model" == apparmor ]]
            check libvirt.secmodel $? "secmodel ${model:-none}"
            ;;
    esac
}

# create NAME: lxcprov create from the busybox tarball. If it fails under SELinux, record
# the failure precisely, then retry the way a user would work around lxcprov's missing
# rootfs labelling: bootstrap (import only), chcon to lxc_contexts' file label, create
# (which reuses a rootfs lxcprov bootstrapped for the same profile).
step_create() { # NAME
    local n="$1" bad
    lx "create-$n" create "$n" --profile-file "$PFILE" --profile "$PROFILE" --rootfs-from "$LAB/busybox.tar"
    bad="$(verify_nonpass "create-$n")"
    # Exit 1 is "created, but verification found failures": judged like verify.
    if [[ $RC -le 1 && "$(virsh_ domstate "$n" 2>/dev/null)" == running ]] && only_expected "$bad"; then
        pass "create.$n" "exit $RC in ${DUR}s, running; its verify: $(verify_summary "create-$n")${bad:+, not passed: $bad(expected: $(expected_nonpass | xargs))}; rootfs $(ls -Zd "$POOL/$n" 2>/dev/null | cut -d' ' -f1)"
        return 0
    fi
    fail "create.$n" "exit $RC in ${DUR}s: $(lx_error "create-$n")${bad:+; not passed: $bad}"
    cp "/var/log/libvirt/lxc/$n.log" "$OUT/libvirt-lxc-$n-first.log" 2>/dev/null
    [[ $RC -eq 2 && "$MODE" != apparmor ]] || return 1
    # lxcprov could not start it. If the rootfs label is the cause (lxcprov before it
    # labelled imported trees), the workaround is: bootstrap (import only), chcon to
    # lxc_contexts' file label, create (which reuses a rootfs lxcprov bootstrapped for the
    # same profile). Reported as INFO so the FAIL above stays the result for create.
    local label
    label="$(sed -n 's/^file *= *"\(.*\)"/\1/p' /etc/selinux/default/contexts/lxc_contexts)"
    lx "bootstrap-$n" bootstrap "$n" --profile-file "$PFILE" --profile "$PROFILE" --rootfs-from "$LAB/busybox.tar"
    local brc=$RC
    chcon -R --no-dereference "${label:-system_u:object_r:container_file_t:s0}" "$POOL/$n" 2>"$OUT/chcon-$n.err"
    local crc=$?
    lx "create-$n-retry" create "$n" --profile-file "$PFILE" --profile "$PROFILE"
    info "workaround for $n: bootstrap --rootfs-from exit $brc; chcon -R ${label} $POOL/$n exit $crc; create again exit $RC in ${DUR}s$([[ $RC -gt 1 ]] && printf ': %s' "$(lx_error "create-$n-retry")")"
    [[ $RC -le 1 ]]
}

# The verify results that are expected not to pass in this lab, by design of the lab:
#  trust=fail          the rootfs is imported with --rootfs-from (no package signatures)
#  userns=skip         the lab profile has no user namespace (idmap)
#  apparmor.label=skip / selinux.*=skip   the other MAC
#  selinux.host=fail   permissive mode only (the check requires enforcing)
#  proc_views=skip     the guest has no lxcfs (resources.proc_views: auto goes on without)
#  disk=skip           no disk quota (resources.disk) in the lab's profiles
expected_nonpass() {
    echo trust=fail userns=skip proc_views=skip disk=skip
    case "$MODE" in
        selinux) echo apparmor.label=skip ;;
        permissive) echo apparmor.label=skip selinux.host=fail ;;
        apparmor) echo selinux.host=skip selinux.label=skip selinux.mcs_unique=skip selinux.imagelabel=skip ;;
    esac
}
only_expected() { # "id=status ..." [LIST_FUNCTION, default expected_nonpass]
    local x exp
    exp=" $("${2:-expected_nonpass}" | xargs) "
    for x in $1; do
        [[ "$exp" == *" $x "* ]] || return 1
    done
    return 0
}

step_verify() { # NAME TAG ID
    local n="$1" tag="$2" id="$3" bad
    lx "$tag" verify "$n"
    bad="$(verify_nonpass "$tag")"
    if [[ $RC -le 1 ]] && [[ -n "$(jq -r 'select(.type == "summary") | .type' "$OUT/$tag.jsonl" 2>/dev/null)" ]] && only_expected "$bad"; then
        pass "$id" "lxcprov verify exit $RC in ${DUR}s: $(verify_summary "$tag")${bad:+; not passed: $bad(all expected in this lab)}"
    else
        fail "$id" "lxcprov verify exit $RC: $(verify_summary "$tag"); not passed: ${bad:-$(lx_error "$tag")}"
    fi
}

# `lxcprov verify --probe`: from a process in c1's label, read a file carrying c2's
# categories and SIGSTOP c2's init; PASS only when lxcprov reports both denied.
step_probe() {
    local st detail
    lx probe-c1 verify c1 --probe --peer c2
    st="$(check_field probe-c1 selinux.probe status)"
    detail="$(check_field probe-c1 selinux.probe summary)"
    if [[ "$st" == pass ]]; then
        pass probe.c1 "lxcprov verify --probe exit $RC: $detail"
    else
        fail probe.c1 "lxcprov verify --probe exit $RC: selinux.probe=${st:-missing}: ${detail:-$(lx_error probe-c1)}"
    fi
    # The denials lxcprov cites as evidence.
    jq -r 'select(.type == "check" and .data.id == "selinux.probe") | .data.evidence[]' "$OUT/probe-c1.jsonl" 2>/dev/null \
        | grep -o 'avc: .*' | head -n 3 | while read -r line; do info "probe evidence: $line"; done
}

# Lab mode: three students with static MCS pairs from lxcprov's registry; each rootfs must
# carry its owner's pair; `lab verify` and `audit` must find no collision; `lab down`
# must leave nothing. The profile has a fixed user-namespace map; on this systemd host
# `lab up` must give each student an isolated range of its own instead (lab.idmap: each
# student's verify proves no other user namespace maps its host ids, and the ranges differ).
step_lab() {
    local names="l-s01 l-s02 l-s03" n xl fl lvl flvl pairs="" ok=0 detail=""
    lx lab-up lab up l --count 3 --prefix s --profile-file "$LAB/lab-userns.yaml" --profile lab-userns --rootfs-from "$LAB/busybox.tar"
    local running=0
    for n in $names; do [[ "$(virsh_ domstate "$n" 2>/dev/null)" == running ]] && running=$((running + 1)); done
    [[ $RC -le 1 && $running -eq 3 ]]
    check lab.up $? "lxcprov lab up exit $RC in ${DUR}s, $running of 3 running$([[ $RC -gt 1 ]] && printf ': %s' "$(lx_error lab-up)")"
    for n in $names; do
        xl="$(virsh_ dumpxml "$n" 2>/dev/null | sed -n "s/.*<seclabel type='\([a-z]*\)'.*/\1/p" | head -n 1)"
        lvl="$(virsh_ dumpxml "$n" 2>/dev/null | sed -n 's/.*<label>[^:]*:[^:]*:[^:]*:\(.*\)<\/label>.*/\1/p' | head -n 1)"
        fl="$(ls -Zd "$POOL/$n" 2>/dev/null | cut -d' ' -f1)"
        flvl="${fl#*:*:*:}"
        detail+="$n: $xl $lvl, rootfs $fl; "
        [[ "$xl" == static && -n "$lvl" && "$flvl" == "$lvl" && "$lvl" == s0:c*,c* ]] || ok=1
        pairs+="$lvl"$'\n'
    done
    [[ $(printf '%s' "$pairs" | sort -u | grep -c .) -eq 3 ]] || ok=1
    check lab.static $ok "$detail"
    local st sum uid uids="" iok=0 idetail=""
    for n in $names; do
        lx "verify-$n" verify "$n"
        st="$(check_field "verify-$n" userns status)"
        sum="$(check_field "verify-$n" userns summary)"
        uid="$(printf '%s' "$sum" | sed -n 's/^root inside is uid \([0-9]*\) on the host.*/\1/p')"
        idetail+="$n: ${st:-missing}, ${sum:-no userns check}; "
        [[ "$st" == pass && "$sum" == *"isolated: no other user namespace maps host uids"* && -n "$uid" && "$uid" != 500000 ]] || iok=1
        uids+="$uid"$'\n'
    done
    [[ $(printf '%s' "$uids" | sort -u | grep -c .) -eq 3 ]] || iok=1
    check lab.idmap $iok "$idetail"
    lx lab-verify lab verify l
    local st1 st2
    st1="$(check_field lab-verify lab.labels_distinct status)"
    st2="$(check_field lab-verify lab.mcs_audit status)"
    [[ "$st1" == pass && "$st2" == pass ]]
    check lab.verify $? "lxcprov lab verify exit $RC: lab.labels_distinct=${st1:-missing} lab.mcs_audit=${st2:-missing}"
    lx lab-audit audit
    [[ $RC -eq 0 && "$(jq -r 'select(.type == "summary") | .data.problems' "$OUT/lab-audit.jsonl" 2>/dev/null)" == 0 ]]
    check lab.audit $? "lxcprov audit exit $RC: $(jq -c 'select(.type == "summary") | .data' "$OUT/lab-audit.jsonl" 2>/dev/null | head -n 1)"
    lx lab-down lab down l --purge --yes
    local left
    left="$(for n in $names; do virsh_ dominfo "$n" >/dev/null 2>&1 && printf '%s ' "$n"; [[ -e "$POOL/$n" ]] && printf '%s ' "$POOL/$n"; done)"
    [[ $RC -eq 0 && -z "$left" ]]
    check lab.down $? "lxcprov lab down exit $RC in ${DUR}s; left: ${left:-nothing}"
}

# The realistic host for real: a Debian 12 systemd container with the built-in `web`
# profile (user namespace 0->200000, dynamic sVirt label, clean-traffic, the default
# seccomp filter, cgroup v2 limits), from the base the host bootstrapped with lxcprov
# (LABDIR/cache, signatures checked there). Every verify check must PASS, save the other
# MAC's (apparmor.label=skip), the /proc views and the disk quota (no lxcfs in the guest,
# no resources.disk in `web`) and, in permissive mode, selinux.host.
web_expected() {
    echo apparmor.label=skip proc_views=skip disk=skip
    [[ "$MODE" != permissive ]] || echo selinux.host=fail
}
step_web() {
    local bad pid st failed t uid
    if [[ ! -d "$LAB/cache/rootfs" ]]; then
        fail web.create "no web base on the lab disk ($LAB/cache/rootfs)"
        return 1
    fi
    lx create-web create web1 --profile web --cache-dir "$LAB/cache"
    bad="$(verify_nonpass create-web)"
    [[ $RC -le 1 && "$(virsh_ domstate web1 2>/dev/null)" == running ]] && only_expected "$bad" web_expected
    check web.create $? "exit $RC in ${DUR}s: $(verify_summary create-web)${bad:+; not passed: $bad}$([[ $RC -gt 1 ]] && printf ': %s' "$(lx_error create-web)")"
    cp /var/log/libvirt/lxc/web1.log "$OUT/libvirt-lxc-web1.log" 2>/dev/null
    pid="$(init_pid web1)"
    if [[ -z "$pid" ]]; then
        fail web.systemd "web1 has no init pid"
    else
        # Asked from inside, with `lxcprov exec` (the container's namespaces, label, cgroup
        # and seccomp filter): systemd refuses a connection from a process at another MCS
        # level (an unconfined nsenter would be at s0-s0:c0.c1023), as it should.
        t=$(date +%s.%N)
        st="$(timeout 120 "$LXCPROV" exec web1 -- systemctl is-system-running --wait 2>"$OUT/web1-exec.err")"
        failed="$(timeout 30 "$LXCPROV" exec web1 -- systemctl list-units --failed --no-legend --plain 2>>"$OUT/web1-exec.err" | awk '{print $1}' | xargs)"
        timeout 30 "$LXCPROV" exec web1 -- systemctl status --no-pager >"$OUT/web1-systemctl-status.txt" 2>&1
        local me
        me="$(timeout 30 "$LXCPROV" exec web1 -- cat /proc/self/attr/current 2>/dev/null | tr -d '\0')"
        uid="$(tr -s ' ' <"/proc/$pid/uid_map" 2>/dev/null | xargs)"
        [[ "$st" == running && -z "$failed" ]]
        check web.systemd $? "systemd in web1 (host pid $pid, $(tr -d '\0' <"/proc/$pid/attr/current" 2>/dev/null), uid_map $uid): $st after $(since "$t")s (asked by lxcprov exec as ${me:-?}); failed units: ${failed:-none}; cgroup $(cut -d: -f3 "/proc/$pid/cgroup" 2>/dev/null | head -n 1)"
    fi
    lx verify-web verify web1
    bad="$(verify_nonpass verify-web)"
    [[ $RC -le 1 ]] && [[ -n "$(verify_summary verify-web)" ]] && only_expected "$bad" web_expected
    check web.verify $? "lxcprov verify exit $RC: $(verify_summary verify-web)${bad:+; not passed: $bad}; userns: $(check_field verify-web userns summary); cgroup: $(check_field verify-web cgroup summary); seccomp: $(check_field verify-web seccomp summary); net: $(check_field verify-web net.vnet summary)"
    label_probe web1 web1
    check web.label "$PROBE_OK" "$PROBE_DETAIL"
    virsh_ dumpxml web1 >"$OUT/live-web1.xml" 2>&1
    step_web_overlay
    step_shell web1
    step_web_isolated
    step_overlay_probe
    step_overlay_restart
    step_destroy web2
    step_destroy web1
    step_overlay_cost
}

# web1 is the default storage of a host with the hook: overlay, its whole tree labelled by
# one mount option (context= its image label, at its own categories), put there by the hook
# at libvirt's `start`, when the dynamic label exists.
step_web_overlay() {
    local storage
    storage="$(jq -r 'select(.data.storage? != null) | .data.storage' "$OUT/create-web.jsonl" 2>/dev/null | head -n 1)"
    overlay_state web1
    [[ -d "$POOL/.lxcprov/layers/web1" && -n "$OV_CTX" && "$OV_CTX" == "$OV_IMG" && "$OV_FILE" == "$OV_IMG" \
        && "$OV_IMG" == "system_u:object_r:container_file_t:s0:$(cats "${LABEL[web1]:-}")" ]]
    check web.overlay $? "storage: ${storage:-?}; overlay at $POOL/web1 mounted with context=${OV_CTX:-none}; root labelled ${OV_FILE:-?}; live imagelabel ${OV_IMG:-?}; process ${LABEL[web1]:-?}; upper layer $((${OV_UPPER:-0} / 1024)) KiB"
}

# The MCS probe between two overlay containers (lxcprov verify --probe), and the policy's
# answer for their trees as mounted: web2's processes may not read web1's files.
step_overlay_probe() {
    local st detail l1 l2 f1 own=1 other=1
    lx probe-web1 verify web1 --probe --peer web2
    st="$(check_field probe-web1 selinux.probe status)"
    detail="$(check_field probe-web1 selinux.probe summary)"
    l1="$(proc_label "$(init_pid web1)")"
    l2="$(proc_label "$(init_pid web2)")"
    f1="$(ls -Z "$POOL/web1/etc/hostname" 2>/dev/null | cut -d' ' -f1)"
    may "$l1" "$f1" file read && own=0
    may "$l2" "$f1" file read || other=0
    [[ "$st" == pass && $own -eq 0 && $other -eq 0 ]]
    check overlay.probe $? "lxcprov verify web1 --probe --peer web2 exit $RC: selinux.probe=${st:-missing}: ${detail:-$(lx_error probe-web1)}; web1's /etc/hostname is ${f1:-?}: web1 (${l1##*:s0:}) may read it: $([[ $own -eq 0 ]] && echo yes || echo NO), web2 (${l2##*:s0:}) may: $([[ $other -eq 0 ]] && echo no || echo YES)"
}

# Stop, then `virsh start` (libvirt and the hook alone): a new dynamic pair, the tree
# labelled again by the mount alone (nothing copied up), every verify check as before.
RESTART_SMALL=""
step_overlay_restart() {
    local before after src sdur u0 st
    before="$(cats "$(proc_label "$(init_pid web1)")")"
    overlay_state web1
    u0="$OV_UPPER"
    lx stop-web1 stop web1 --timeout 30
    src=$RC sdur=$DUR
    virsh_start web1
    local vrc=$RC vdur=$DUR
    RESTART_SMALL="$vdur"
    after="$(cats "$(proc_label "$(init_pid web1)")")"
    overlay_state web1
    st="$(timeout 120 "$LXCPROV" exec web1 -- systemctl is-system-running --wait 2>>"$OUT/web1-exec.err")"
    lx verify-web1-restart verify web1
    local bad
    bad="$(verify_nonpass verify-web1-restart)"
    [[ $src -eq 0 && $vrc -eq 0 && -n "$after" && "$after" != "$before" && "$OV_CTX" == "$OV_IMG" \
        && "$OV_IMG" == *":s0:$after" && "$st" == running && $RC -le 1 ]] && only_expected "$bad" web_expected
    check overlay.restart $? "lxcprov stop exit $src in ${sdur}s; virsh start exit $vrc in ${vdur}s; categories ${before:-?} -> ${after:-?}; mount context=${OV_CTX:-none} (imagelabel ${OV_IMG:-?}); upper layer $((${u0:-0} / 1024)) -> $((${OV_UPPER:-0} / 1024)) KiB; systemd ${st:-?}; verify exit $RC: $(verify_summary verify-web1-restart)${bad:+; not passed: $bad}"
}

# The labelling cost against the size of the base: big1 from the web base plus 1 GiB of
# random data (LABDIR/bigcache). Its start labels the tree exactly as web1's did; the
# 1 GiB file must not reach its layer (no copy-up), and its `virsh start` must take about
# what web1's did.
step_overlay_cost() {
    local big cdur u0 u1 vdur vrc bigf
    if [[ ! -d "$LAB/bigcache/rootfs" ]]; then
        fail overlay.cost "no big base on the lab disk ($LAB/bigcache)"
        return 1
    fi
    lx create-big create big1 --profile web --cache-dir "$LAB/bigcache"
    cdur=$DUR
    local crc=$RC
    big="$(du -sh "$POOL"/.lxcprov/bases/ 2>/dev/null | cut -f1)"
    overlay_state big1
    u0="$OV_UPPER"
    local c0="$OV_CTX"
    # Off, then on again through libvirt and the hook, as web1 was.
    virsh_ destroy big1 >/dev/null 2>&1
    virsh_start big1
    vrc=$RC vdur=$DUR
    overlay_state big1
    u1="$OV_UPPER"
    bigf="$(ls -Z "$POOL/big1/var/lib/lxcprov-lab-big.bin" 2>/dev/null | cut -d' ' -f1) $(stat -c %s "$POOL/big1/var/lib/lxcprov-lab-big.bin" 2>/dev/null) bytes"
    local up
    up="$(find "$POOL/.lxcprov/layers/big1/upper" -name 'lxcprov-lab-big.bin' 2>/dev/null | wc -l)"
    [[ $crc -le 1 && $vrc -eq 0 && -n "$c0" && "$OV_CTX" == "$OV_IMG" && "$OV_CTX" != "$c0" && $up -eq 0 \
        && ${u1:-999999999} -lt $((64 << 20)) ]] \
        && awk -v b="$vdur" -v s="${RESTART_SMALL:-0}" 'BEGIN { exit !(s > 0 && b <= 2 * s + 5) }'
    check overlay.cost $? "big1 (base $big with a 1 GiB file: ${bigf}) create exit $crc in ${cdur}s (the shared base copied and shifted once), virsh start exit $vrc in ${vdur}s against web1's ${RESTART_SMALL:-?}s; context=${c0:-none} then ${OV_CTX:-none}; upper layer $((${u0:-0} / 1024)) KiB after create, $((${u1:-0} / 1024)) KiB after the restart; the 1 GiB file copied up: $([[ $up -eq 0 ]] && echo no || echo YES)"
    lx destroy-big1 destroy big1 --purge --yes
    [[ $RC -eq 0 ]] || info "destroy big1 exit $RC: $(lx_error destroy-big1)"
}

# What the CI host cannot show: a second systemd container with an isolated id map of its
# own (--idmap isolated) booting and running beside web1 (the profile's fixed map 200000),
# every verify check passing, its userns check proving no other namespace maps its ids.
step_web_isolated() {
    local bad st sum uid1 uid2 pid2 crc cdur
    lx create-web2 create web2 --profile web --cache-dir "$LAB/cache" --idmap isolated
    crc=$RC cdur=$DUR
    pid2="$(init_pid web2)"
    st="$(timeout 120 "$LXCPROV" exec web2 -- systemctl is-system-running --wait 2>"$OUT/web2-exec.err")"
    lx verify-web2 verify web2
    bad="$(verify_nonpass verify-web2)"
    sum="$(check_field verify-web2 userns summary)"
    uid1="$(awk 'NR == 1 { print $2 }' "/proc/$(init_pid web1)/uid_map" 2>/dev/null)"
    uid2="$(awk 'NR == 1 { print $2 }' "/proc/${pid2:-0}/uid_map" 2>/dev/null)"
    [[ $crc -le 1 && $RC -le 1 && "$st" == running && "$(virsh_ domstate web1 2>/dev/null)" == running && -n "$uid2" && "$uid1" == 200000 && "$uid2" != "$uid1" \
        && "$sum" == *"isolated: no other user namespace maps host uids"* ]] && only_expected "$bad" web_expected
    check web.isolated $? "web2 (--idmap isolated, create exit $crc in ${cdur}s$([[ $crc -gt 1 ]] && printf ': %s' "$(lx_error create-web2)")): systemd ${st:-?}, host uid $uid2 beside web1's ${uid1:-?} (both running: web1 $(virsh_ domstate web1 2>/dev/null)); verify exit $RC: $(verify_summary verify-web2)${bad:+; not passed: $bad}; userns: ${sum:-missing}$([[ $RC -gt 1 ]] && printf ': %s' "$(lx_error verify-web2)")"
    cp /var/log/libvirt/lxc/web2.log "$OUT/libvirt-lxc-web2.log" 2>/dev/null
}

declare -A LABEL=()
# Reads NAME's labels from /proc, the live XML and `lxcprov list`; sets LABEL[NAME],
# PROBE_OK (0 when they agree and have the expected form) and PROBE_DETAIL.
label_probe() { # NAME TAG
    local n="$1" pid plabel xlabel ilabel list procs
    pid="$(init_pid "$n")"
    plabel="$(proc_label "${pid:-0}")"
    xlabel="$(live_label "$n")"
    ilabel="$(live_imagelabel "$n")"
    "$LXCPROV" --json list >"$OUT/list-$2.jsonl" 2>/dev/null
    list="$(jq -r --arg n "$n" 'select(.type == "container" and .data.name == $n) | .data.label // ""' "$OUT/list-$2.jsonl" 2>/dev/null)"
    LABEL[$n]="$plabel"
    case "$MODE" in
        selinux | permissive)
            procs="$(procs_with_label "$plabel")"
            [[ "$plabel" =~ ^system_u:system_r:container_t:s0:c[0-9]+,c[0-9]+$ && "$plabel" == "$xlabel" && "$list" == "$plabel" \
                && "$ilabel" == "system_u:object_r:container_file_t:s0:$(cats "$plabel")" ]]
            PROBE_OK=$?
            PROBE_DETAIL="init pid ${pid:-none}: ${plabel:-none}; live XML label ${xlabel:-none}, imagelabel ${ilabel:-none}; lxcprov list: ${list:-none}; processes: ${procs:-none}"
            ;;
        apparmor)
            local uuid
            uuid="$(virsh_ domuuid "$n" 2>/dev/null)"
            # AppArmor labels read "PROFILE (MODE)": two ps fields
            procs="$(ps -eo label=,pid=,comm= | awk -v l="libvirt-$uuid" '$1 == l { printf "%s:%s ", $3, $4 }')"
            [[ -n "$uuid" && "$plabel" == "libvirt-$uuid (enforce)" ]]
            PROBE_OK=$?
            PROBE_DETAIL="init pid ${pid:-none}: ${plabel:-none}; live XML label ${xlabel:-none}; lxcprov list: ${list:-none}; processes: ${procs:-none}; /etc/apparmor.d/libvirt files for it: $(ls /etc/apparmor.d/libvirt/ 2>/dev/null | grep -c "$uuid")"
            ;;
    esac
}
step_label() { # NAME
    label_probe "$1" "$1"
    check "label.$1" "$PROBE_OK" "$PROBE_DETAIL"
}

step_distinct() {
    local a="${LABEL[c1]:-}" b="${LABEL[c2]:-}"
    case "$MODE" in
        selinux | permissive)
            local ca cb
            ca="$(cats "$a")"
            cb="$(cats "$b")"
            [[ -n "$ca" && -n "$cb" && "$ca" != "$cb" ]]
            check label.distinct $? "c1 ${ca:-?} vs c2 ${cb:-?}"
            ;;
        apparmor)
            [[ -n "$a" && -n "$b" && "$a" != "$b" ]]
            check label.distinct $? "c1 '${a:-?}' vs c2 '${b:-?}'"
            ;;
    esac
}

step_restart() {
    local before="${LABEL[c1]:-}" src=0 srt
    lx stop-c1 stop c1 --timeout 10
    src=$RC
    local sdur=$DUR
    lx start-c1 start c1
    srt=$RC
    # A graceful stop (libvirt writes the init's /run/initctl) exercises the policy for
    # virsh shutdown; "forced off" means the initctl request was refused.
    local how=graceful
    grep -q 'forc' "$OUT/stop-c1.err" 2>/dev/null && how="FORCED: $(grep -m1 -i 'warning' "$OUT/stop-c1.err")"
    [[ $src -eq 0 && $srt -eq 0 && "$how" == graceful ]]
    check restart.c1 $? "stop exit $src in ${sdur}s ($how), start exit $srt in ${DUR}s$([[ $srt -ne 0 ]] && printf ': %s' "$(lx_error start-c1)")"
    label_probe c1 c1-restart
    info "c1 after restart: $PROBE_DETAIL"
    local after="${LABEL[c1]:-}"
    case "$MODE" in
        selinux | permissive)
            local cb ca c2
            cb="$(cats "$before")"
            ca="$(cats "$after")"
            c2="$(cats "${LABEL[c2]:-}")"
            [[ -n "$ca" && -n "$cb" && "$ca" != "$cb" && "$ca" != "$c2" ]]
            check label.changed $? "c1 categories before restart ${cb:-?}, after ${ca:-?} (c2 ${c2:-?})"
            ;;
        apparmor)
            info "c1 AppArmor label before restart '${before}', after '${after}'"
            ;;
    esac
    step_verify c1 verify-c1-restart verify.c1.restart
    # The busybox init removes and recreates /run/initctl at each start. The FIFO its
    # previous run created carries that run's categories (files a container creates get
    # its level); if the restarted container, with new categories, cannot replace it, its
    # own files from before the restart are out of its reach.
    if [[ "$MODE" != apparmor ]]; then
        local fl want
        fl="$(ls -Z "$POOL/c1/run/initctl" 2>/dev/null | cut -d' ' -f1)"
        want="$(cats "$after")"
        [[ -n "$want" && "$fl" == *":s0:$want" ]]
        check restart.c1.files $? "c1's /run/initctl after restart: ${fl:-missing} (categories now ${want:-?}); the init's FIFO reader: $(procs_with_label "$after" | tr ' ' '\n' | grep -c ':cat$') process(es)"
    fi
}

step_destroy() { # NAME
    local n="$1"
    lx "destroy-$n" destroy "$n" --purge --yes
    local left=""
    virsh_ dominfo "$n" >/dev/null 2>&1 && left+=" domain"
    [[ -e "$POOL/$n" ]] && left+=" rootfs"
    [[ $RC -eq 0 && -z "$left" ]]
    check "destroy.$n" $? "exit $RC in ${DUR}s$([[ $RC -ne 0 ]] && printf ': %s' "$(lx_error "destroy-$n")")${left:+; still there:$left}"
}

step_cleanup() {
    local doms nets pool procs state ctl aa=""
    doms="$(virsh_ list --all --name 2>/dev/null | xargs)"
    nets="$(virsh_ net-list --all --name 2>/dev/null | xargs)"
    pool="$(ls -A "$POOL" 2>/dev/null | xargs)"
    ctl="$(pgrep -a libvirt_lxc | xargs)"
    state="$(cd /var/lib/lxcprov 2>/dev/null && find . -mindepth 1 | xargs)"
    case "$MODE" in
        selinux | permissive) procs="$(ps -eo label=,pid=,comm= | awk '$1 ~ /:container_t:/ { printf "%s:%s ", $2, $3 }')" ;;
        apparmor)
            procs="$(ps -eo label=,pid=,comm= | awk '$1 ~ /^libvirt-/ { printf "%s:%s ", $3, $4 }')"
            # Not part of the check (libvirt's, not lxcprov's): per-domain profiles left behind
            aa="files $(ls /etc/apparmor.d/libvirt/ 2>/dev/null | grep '^libvirt-' | xargs), loaded $(grep -c '^libvirt-' /sys/kernel/security/apparmor/profiles 2>/dev/null)"
            ;;
    esac
    [[ -z "$doms" && " $nets " != *" lablxc "* && -z "$pool" && -z "$procs" && -z "$ctl" ]]
    check cleanup $? "domains: ${doms:-none}; networks: ${nets:-none}; pool $POOL: ${pool:-empty}; container processes: ${procs:-none}; libvirt_lxc: ${ctl:-none}; lxcprov state: ${state:-empty}${aa:+; per-domain AppArmor profiles left by libvirt: $aa}"
}

# AVC denials of this boot that involve libvirt, machined/logind or containers.
step_audit() {
    cp /var/log/audit/audit.log "$OUT/audit.log" 2>/dev/null
    dmesg >"$OUT/dmesg.txt" 2>/dev/null
    local all rel
    all="$( (grep -h 'avc:  denied' "$OUT/audit.log" "$OUT/dmesg.txt" 2>/dev/null) | wc -l)"
    # "stype ttype:class { perms } comm=X permissive=N", de-duplicated, from AVC and
    # USER_AVC (D-Bus, reported by dbus-daemon: no comm=) records
    grep -h 'avc:  denied' "$OUT/audit.log" 2>/dev/null | awk '
        function field(re, n,   v) {
            if (!match($0, re)) return "?"
            v = substr($0, RSTART, RLENGTH); sub(/^[a-z]*=/, "", v); gsub(/"/, "", v)
            if (n) { split(v, p, ":"); return p[3] }
            return v
        }
        {
            match($0, /denied  \{ [^}]* \}/); perms = substr($0, RSTART + 8, RLENGTH - 8)
            comm = field("comm=\"[^\"]*\"", 0)
            if (comm == "?") comm = field("exe=\"[^\"]*\"", 0)
            printf "%s %s:%s %s comm=%s permissive=%s\n", field("scontext=[^ ]*", 1), field("tcontext=[^ ]*", 1), \
                field("tclass=[^ ]*", 0), perms, comm, field("permissive=[01]", 0)
        }' | sort | uniq -c | sort -rn >"$OUT/denials.txt"
    # Policy gaps for the daemons (source domain libvirt, machined, logind, D-Bus); the
    # containers' own denials are MCS at work and are listed as INFO.
    rel="$(awk '$2 ~ /^(virtd|virtd_lxc|systemd_machined|systemd_logind|system_dbusd)_t$/' "$OUT/denials.txt")"
    local ct
    ct="$(awk '$2 == "container_t"' "$OUT/denials.txt")"
    [[ -z "$ct" ]] || info "container_t denials (MCS): $(printf '%s' "$ct" | sed 's/^ *//' | tr '\n' ';')"
    if [[ "$MODE" == permissive ]]; then
        grep -h 'avc:  denied' "$OUT/audit.log" | audit2allow >"$OUT/audit2allow.te" 2>"$OUT/audit2allow.err"
        info "audit2allow over $all denials written to out/audit2allow.te ($(grep -c '^allow' "$OUT/audit2allow.te") allow rules)"
    fi
    [[ -z "$rel" ]]
    check audit.denials $? "$all AVC denials this boot, $(printf '%s' "$rel" | grep -c .) distinct from libvirtd, libvirt_lxc, machined, logind or dbus$([[ -n "$rel" ]] && printf ':\n%s' "$(printf '%s\n' "$rel" | sed 's/^ */    /')")"
}

# --- main -----------------------------------------------------------------------------

log "lxcprov lab suite, mode $MODE"
if [[ "$MODE" == permissive ]]; then
    t=$(date +%s.%N)
    semodule -DB >"$OUT/semodule-DB.txt" 2>&1
    info "semodule -DB (dontaudit off) exit $? in $(since "$t")s"
fi
step_guest
step_hook
if step_libvirtd; then
    step_create c1
    step_create c2
    step_verify c1 verify-c1 verify.c1
    step_verify c2 verify-c2 verify.c2
    step_label c1
    step_label c2
    step_distinct
    [[ "$MODE" == apparmor ]] || step_probe
    step_shell c1
    step_restart
    # Evidence the verify reports do not keep.
    for n in c1 c2; do
        virsh_ dumpxml "$n" >"$OUT/live-$n.xml" 2>&1
        cp "/var/log/libvirt/lxc/$n.log" "$OUT/libvirt-lxc-$n.log" 2>/dev/null
    done
    ps -eo label,pid,ppid,args >"$OUT/ps-running.txt" 2>&1
    ls -Zd "$POOL" "$POOL"/* >"$OUT/pool-labels.txt" 2>&1
    step_destroy c1
    step_destroy c2
    [[ "$MODE" == apparmor ]] || step_lab
    [[ "$MODE" == apparmor ]] || step_web
    step_cleanup
fi
journalctl -b --no-pager >"$OUT/journal.txt" 2>&1
[[ "$MODE" == apparmor ]] || step_audit
printf 'END pass=%s fail=%s suite=%ss\n' "$(grep -c '^PASS ' "$REPORT")" "$(grep -c '^FAIL ' "$REPORT")" "$(since "$SUITE_T0")" | tee -a "$REPORT"
