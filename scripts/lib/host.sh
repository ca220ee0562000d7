# shellcheck shell=bash
# Reusable host-setup functions for lxcprov (Debian 12 host, libvirt LXC).
#
# Source this file from a bash script that already runs with `set -euo pipefail`:
#     . "$(cd "$(dirname "$0")" && pwd)/lib/host.sh"
# Sourcing defines variables and functions only; it runs nothing and changes no
# shell options. Every function returns non-zero (after logging why) on failure.
#
# Tunables (set before calling):
#   HOST_LOG_PREFIX        prefix of progress lines on stderr (default: setup-host)
#   HOST_LIBVIRT_URI       URI probed for readiness       (default: lxc:///)
#   HOST_LIBVIRTD_PIDFILE  pid file written by libvirtd -d (default: /run/libvirtd.pid)
#   HOST_LIBVIRTD_LOG      log file given to a libvirtd we start ourselves
#   HOST_WAIT_SECONDS      how long to wait for libvirtd to answer (default: 15)

if [[ -n "${_LXCPROV_HOST_SH_LOADED:-}" ]]; then
    return 0
fi
_LXCPROV_HOST_SH_LOADED=1

: "${HOST_LOG_PREFIX:=setup-host}"
: "${HOST_LIBVIRT_URI:=lxc:///}"
: "${HOST_LIBVIRTD_PIDFILE:=/run/libvirtd.pid}"
: "${HOST_LIBVIRTD_LOG:=/var/log/libvirt/lxcprov-libvirtd.log}"
: "${HOST_WAIT_SECONDS:=15}"
# Written when this library starts libvirtd itself (pid + how it was started).
: "${HOST_LIBVIRTD_MARKER:=/run/lxcprov-libvirtd.started}"
# Touched after a successful `apt-get update` run by this library.
: "${HOST_APT_STAMP:=/var/lib/lxcprov/apt-update.stamp}"

# Debian 12 package names. NEVER add libvirt-daemon-system (it pulls in
# systemd-sysv and a default NAT network).
HOST_PACKAGES=(
    libvirt-daemon
    libvirt-daemon-driver-lxc
    libvirt-clients
    libvirt-daemon-config-nwfilter
    ebtables
    libvirt-dev
    pkg-config
    libxml2-utils
    iptables
    dnsmasq-base
    busybox-static
    debootstrap
    virtinst
    dnf
    rpm
    createrepo-c
    libselinux1-dev
    libclang-dev
    gnupg
    debian-archive-keyring
    ca-certificates
    curl
    build-essential
    jq
    e2fsprogs
    # The root tier's lab SSH test: the client, and sshd as a throwaway jump host on a
    # high port (its package's own service is never started, see host_ensure_packages).
    openssh-client
    openssh-server
    # Students' self-service: the jump account runs lxcprov through sudo (and the root
    # tier checks the rule `lab access --sudoers` writes with visudo).
    sudo
    # Containers' own /proc views (uptime, load, CPUs, /proc/stat): resources.proc_views.
    lxcfs
    man-db
    # The root tier opens `lab report`'s page in headless Chromium (a screenshot and the DOM
    # it builds) to prove it renders with every student; nothing in lxcprov runs it.
    chromium
)

host_log() {
    printf '%s: %s\n' "$HOST_LOG_PREFIX" "$*" >&2
}

host_err() {
    printf '%s: error: %s\n' "$HOST_LOG_PREFIX" "$*" >&2
}

# Print (one per line) the packages of HOST_PACKAGES that are not installed.
host_missing_packages() {
    local pkg status
    for pkg in "${HOST_PACKAGES[@]}"; do
        status="$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)"
        # "ii " = desired install, currently installed, no error.
        if [[ "${status:0:2}" != "ii" ]]; then
            printf '%s\n' "$pkg"
        fi
    done
}

# True when the apt package lists were refreshed less than an hour ago.
# File mtimes under /var/lib/apt/lists are copied from the server, so use the
# ctime of the Release files (set when apt writes them) or our own stamp.
host_apt_lists_fresh() {
    local recent
    if [[ -f "$HOST_APT_STAMP" ]] \
        && [[ -n "$(find "$HOST_APT_STAMP" -maxdepth 0 -mmin -60 2>/dev/null)" ]]; then
        return 0
    fi
    recent="$(find /var/lib/apt/lists -maxdepth 1 -type f \
        \( -name '*_InRelease' -o -name '*_Release' \) -cmin -60 2>/dev/null | head -n 1)"
    [[ -n "$recent" ]]
}

# True when apt knows an installation candidate for every package given.
host_apt_has_candidates() {
    local pkg cand
    for pkg in "$@"; do
        cand="$(apt-cache policy -- "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')"
        if [[ -z "$cand" || "$cand" == "(none)" ]]; then
            return 1
        fi
    done
    return 0
}

# Install whatever of HOST_PACKAGES is missing; does not touch apt at all when
# everything is installed already.
host_ensure_packages() {
    local -a missing=()
    local pkg
    while IFS= read -r pkg; do
        [[ -n "$pkg" ]] && missing+=("$pkg")
    done < <(host_missing_packages)

    if [[ ${#missing[@]} -eq 0 ]]; then
        host_log "all ${#HOST_PACKAGES[@]} packages already installed; skipping apt"
        return 0
    fi
    host_log "missing packages: ${missing[*]}"

    if [[ "$(id -u)" -ne 0 ]]; then
        host_err "installing packages needs root"
        return 1
    fi

    if ! host_apt_lists_fresh || ! host_apt_has_candidates "${missing[@]}"; then
        host_log "running apt-get update"
        if ! DEBIAN_FRONTEND=noninteractive apt-get update; then
            host_err "apt-get update failed"
            return 1
        fi
        mkdir -p -- "$(dirname -- "$HOST_APT_STAMP")"
        touch -- "$HOST_APT_STAMP"
    else
        host_log "apt package lists are fresh; not running apt-get update"
    fi

    host_log "installing: ${missing[*]}"
    # No package's service is started by the install (openssh-server would start sshd on
    # port 22): policy-rc.d 101 tells invoke-rc.d "not now". libvirtd is started below.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\n# lxcprov setup: no service starts during the package install\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        own_policy=1
    fi
    local rc=0
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends -- "${missing[@]}" || rc=$?
    if [[ $own_policy -eq 1 ]]; then
        rm -f -- "$policy"
    fi
    if [[ $rc -ne 0 ]]; then
        host_err "apt-get install failed"
        return 1
    fi

    # Guard against a future package list change pulling it in indirectly.
    if [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' libvirt-daemon-system 2>/dev/null || true)" == ii* ]]; then
        host_log "WARNING: libvirt-daemon-system is installed; lxcprov does not want it (systemd-sysv, default NAT network)"
    fi
    return 0
}

# Make sure cargo is reachable: on PATH, or at ~/.cargo/bin (then PATH is extended
# for the rest of the calling script). Prints the cargo path on stdout.
host_ensure_rust() {
    local cargo_bin
    if cargo_bin="$(command -v cargo 2>/dev/null)" && [[ -n "$cargo_bin" ]]; then
        host_log "cargo found: $cargo_bin"
        printf '%s\n' "$cargo_bin"
        return 0
    fi
    if [[ -n "${HOME:-}" && -x "$HOME/.cargo/bin/cargo" ]]; then
        PATH="$HOME/.cargo/bin:$PATH"
        export PATH
        host_log "cargo found: $HOME/.cargo/bin/cargo (not on PATH; add \$HOME/.cargo/bin to PATH)"
        printf '%s\n' "$HOME/.cargo/bin/cargo"
        return 0
    fi
    host_err "no Rust toolchain: cargo is neither on PATH nor in \$HOME/.cargo/bin."
    host_err "Install rustup (https://rustup.rs, or the Debian package 'rustup' where available),"
    host_err "then run: rustup default stable"
    return 1
}

# libvirtd's QEMU driver makes the daemon exit at start unless libvirt-qemu exists.
host_ensure_users() {
    if ! getent group kvm >/dev/null; then
        host_log "creating group kvm"
        groupadd -r kvm || { host_err "groupadd kvm failed"; return 1; }
    fi
    if ! getent group libvirt-qemu >/dev/null; then
        host_log "creating group libvirt-qemu"
        groupadd -r libvirt-qemu || { host_err "groupadd libvirt-qemu failed"; return 1; }
    fi
    if ! getent passwd libvirt-qemu >/dev/null; then
        host_log "creating user libvirt-qemu"
        useradd -r -g kvm -G libvirt-qemu -d /var/lib/libvirt -M -s /usr/sbin/nologin libvirt-qemu \
            || { host_err "useradd libvirt-qemu failed"; return 1; }
    fi
    host_log "users/groups kvm, libvirt-qemu present"
}

# True when libvirtd answers on HOST_LIBVIRT_URI.
host_libvirt_ready() {
    command -v virsh >/dev/null 2>&1 || return 1
    timeout 5 virsh -q -c "$HOST_LIBVIRT_URI" version >/dev/null 2>&1
}

# True when PID 1 is systemd (same test as sd_booted()).
host_pid1_is_systemd() {
    [[ -d /run/systemd/system ]]
}

host_libvirtd_unit_exists() {
    command -v systemctl >/dev/null 2>&1 || return 1
    [[ -n "$(systemctl list-unit-files --no-legend --no-pager libvirtd.service 2>/dev/null)" ]]
}

# True when the pid exists and is not a zombie (PID 1 here may not reap).
host_pid_alive() {
    local stat rest
    [[ -r "/proc/$1/stat" ]] || return 1
    IFS= read -r stat <"/proc/$1/stat" 2>/dev/null || return 1
    rest="${stat##*) }"
    [[ "${rest:0:1}" != Z && "${rest:0:1}" != X ]]
}

# Print the pid from HOST_LIBVIRTD_PIDFILE if that pid is a live libvirtd.
host_libvirtd_pid() {
    local pid comm
    [[ -r "$HOST_LIBVIRTD_PIDFILE" ]] || return 1
    IFS= read -r pid <"$HOST_LIBVIRTD_PIDFILE" || true
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    host_pid_alive "$pid" || return 1
    IFS= read -r comm <"/proc/$pid/comm" || return 1
    [[ "$comm" == libvirtd ]] || return 1
    printf '%s\n' "$pid"
}

host_print_libvirtd_logs() {
    local f
    for f in "$HOST_LIBVIRTD_LOG" /var/log/libvirt/libvirtd.log; do
        if [[ -s "$f" ]]; then
            host_err "last lines of $f:"
            tail -n 30 -- "$f" >&2 || true
            return 0
        fi
    done
    if host_pid1_is_systemd && command -v journalctl >/dev/null 2>&1; then
        journalctl -u libvirtd.service -n 30 --no-pager >&2 || true
        return 0
    fi
    host_err "no libvirtd log found (looked at $HOST_LIBVIRTD_LOG and /var/log/libvirt/libvirtd.log)"
}

# Microseconds since the epoch (bash >= 5).
host_now_us() {
    local t="${EPOCHREALTIME:-}"
    if [[ -n "$t" ]]; then
        printf '%s\n' "${t/[.,]/}"
    else
        printf '%s000000\n' "$(date +%s)"
    fi
}

# Wait up to HOST_WAIT_SECONDS for libvirtd to answer. With an argument "started",
# give up early when no live libvirtd holds the pid file after 2 s (it died).
host_wait_libvirt_ready() {
    local start now
    start="$(host_now_us)"
    while ! host_libvirt_ready; do
        now="$(host_now_us)"
        if ((now - start >= HOST_WAIT_SECONDS * 1000000)); then
            return 1
        fi
        if [[ "${1:-}" == started ]] && ((now - start >= 2000000)) \
            && ! host_libvirtd_pid >/dev/null; then
            host_err "libvirtd exited during start-up"
            return 1
        fi
        sleep 0.1
    done
    return 0
}

# Start libvirtd unless it answers already. Never restarts a running daemon.
host_ensure_libvirtd() {
    local pid started
    if host_libvirt_ready; then
        host_log "libvirtd already answers on $HOST_LIBVIRT_URI; leaving it alone"
        return 0
    fi
    if [[ "$(id -u)" -ne 0 ]]; then
        host_err "starting libvirtd needs root"
        return 1
    fi

    if host_pid1_is_systemd && host_libvirtd_unit_exists; then
        host_log "starting libvirtd via systemctl"
        systemctl start libvirtd.service || { host_err "systemctl start libvirtd failed"; host_print_libvirtd_logs; return 1; }
    elif pid="$(host_libvirtd_pid)"; then
        # A live libvirtd holds the pid file but does not answer (yet): give it time,
        # never start a second one or kill it.
        host_log "libvirtd (pid $pid) is running but not answering yet; waiting"
    else
        command -v libvirtd >/dev/null 2>&1 || { host_err "libvirtd not installed (package libvirt-daemon)"; return 1; }
        if [[ -e "$HOST_LIBVIRTD_PIDFILE" ]]; then
            host_log "removing stale $HOST_LIBVIRTD_PIDFILE"
            rm -f -- "$HOST_LIBVIRTD_PIDFILE"
        fi
        mkdir -p -- "$(dirname -- "$HOST_LIBVIRTD_LOG")"
        if [[ -e "$HOST_LIBVIRTD_LOG" ]]; then
            mv -f -- "$HOST_LIBVIRTD_LOG" "$HOST_LIBVIRTD_LOG.old"
        fi
        # libvirtd gets its own mount namespace whose mounts stay in the host's peer groups
        # (propagation unchanged): mounts and unmounts under the pool travel both ways, so an
        # overlay that lxcprov's libvirt hook mounts there at a container's start is the same
        # mount lxcprov sees on the host, and the other way round. Only /sys is made a slave
        # first (it still receives the host's mounts), so unmounting the empty cgroup2 mount
        # there does not unmount the host's (verified on the CI machine). That needs a
        # shared host root, as systemd hosts have; hosts without systemd often keep it private,
        # so make it shared first.
        if [[ "$(findmnt -no PROPAGATION / 2>/dev/null)" == private ]]; then
            host_log "making / a shared mount, so mounts travel between the host and libvirtd's namespace"
            mount --make-rshared /
        fi
        host_log "starting libvirtd in its own mount namespace without the empty cgroup2 mount (log: $HOST_LIBVIRTD_LOG)"
        # Constant script string; nothing untrusted is interpolated.
        # shellcheck disable=SC2016
        LIBVIRT_LOG_OUTPUTS="3:file:$HOST_LIBVIRTD_LOG" \
            host_without_inherited_fds unshare --mount --propagation unchanged sh -c \
            'if mountpoint -q /sys/fs/cgroup/unified; then mount --make-rslave /sys && umount /sys/fs/cgroup/unified; fi; exec libvirtd -d' \
            || { host_err "libvirtd failed to start"; host_print_libvirtd_logs; return 1; }
        started=1
    fi

    if ! host_wait_libvirt_ready ${started:+started}; then
        host_err "libvirtd did not answer on $HOST_LIBVIRT_URI within ${HOST_WAIT_SECONDS}s"
        host_print_libvirtd_logs
        return 1
    fi
    if [[ -n "${started:-}" ]] && pid="$(host_libvirtd_pid)"; then
        printf '%s unshare\n' "$pid" >"$HOST_LIBVIRTD_MARKER"
        host_log "libvirtd started (pid $pid)"
    fi
    host_log "libvirtd answers on $HOST_LIBVIRT_URI"
}

# lxcprov's libvirt LXC hook (/etc/libvirt/hooks/lxc). libvirtd looks for hook scripts
# only when it starts, so the file must exist before libvirtd does. When it is missing:
# write it, running LXCPROV_HOOK_BIN if that lxcprov has the `hook` subcommand, else a
# dormant script (exit 0) that `lxcprov hook install` later points at an lxcprov (no
# restart needed then). A libvirtd this script started itself is restarted so it sees
# the new hook (running containers survive); a libvirtd it did not start is left alone
# and told about. An existing hook (lxcprov's or someone else's) is never touched here.
HOST_LXC_HOOK="${HOST_LXC_HOOK:-/etc/libvirt/hooks/lxc}"
host_ensure_lxc_hook() {
    local bin="${LXCPROV_HOOK_BIN:-/usr/local/bin/lxcprov}"
    host_ensure_hook_apparmor "$bin" || return 1
    if [[ -e "$HOST_LXC_HOOK" ]]; then
        host_log "libvirt hook $HOST_LXC_HOOK present; leaving it as it is (lxcprov doctor checks it)"
        return 0
    fi
    [[ "$(id -u)" -eq 0 ]] || { host_err "installing $HOST_LXC_HOOK needs root"; return 1; }
    if [[ -x "$bin" ]] && "$bin" hook install --binary "$bin" --path "$HOST_LXC_HOOK" >/dev/null 2>&1; then
        host_log "installed the libvirt hook $HOST_LXC_HOOK (runs $bin)"
    else
        mkdir -p -- "$(dirname -- "$HOST_LXC_HOOK")"
        # Constant text; the same first lines as lxcprov's own (storage/hook.rs).
        printf '%s\n' '#!/bin/sh' '# lxcprov libvirt LXC hook v1' \
            '# dormant: no lxcprov with the hook yet; `lxcprov hook install` points it at one' \
            'exit 0' >"$HOST_LXC_HOOK.tmp"
        chmod 0755 "$HOST_LXC_HOOK.tmp"
        mv -f -- "$HOST_LXC_HOOK.tmp" "$HOST_LXC_HOOK"
        host_log "installed a dormant libvirt hook $HOST_LXC_HOOK (\`lxcprov hook install\` activates it)"
    fi
    if host_libvirt_ready; then
        if host_libvirtd_is_ours; then
            host_log "restarting the libvirtd this script started, so it sees the new hook"
            host_stop_libvirtd && host_ensure_libvirtd
        else
            host_log "WARNING: libvirtd was running before the hook existed; restart it yourself so it calls the hook (running containers survive)"
        fi
    fi
}

# Debian's AppArmor profile for libvirtd (usr.sbin.libvirtd, enforced where AppArmor is
# on) lets libvirtd run its hooks, but not a program outside its own paths: the hook's
# `exec lxcprov` is denied (exit 126, seen in the SELinux lab's AppArmor boot) and every
# lxcprov container's start fails at `prepare`. A rule in the profile's local include lets
# libvirtd run lxcprov with its own profile if one is loaded, else unconfined (PUx), as it
# runs its own helpers; the profile is then reloaded (running libvirtd included).
host_ensure_hook_apparmor() { # BIN
    local bin="$1" prof=/etc/apparmor.d/usr.sbin.libvirtd
    local inc=/etc/apparmor.d/local/usr.sbin.libvirtd rule
    [[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" == Y && -f "$prof" ]] || return 0
    rule="\"$bin\" PUx,"
    if grep -qsxF -- "$rule" "$inc"; then
        return 0
    fi
    [[ "$(id -u)" -eq 0 ]] || { host_err "adding the AppArmor rule for lxcprov's hook to $inc needs root"; return 1; }
    mkdir -p -- "$(dirname -- "$inc")"
    printf '%s\n' "# lxcprov's libvirt LXC hook runs lxcprov (scripts/lib/host.sh)" "$rule" >>"$inc"
    if command -v apparmor_parser >/dev/null 2>&1 && ! apparmor_parser -r "$prof" >/dev/null 2>&1; then
        host_err "apparmor_parser -r $prof failed after adding $rule to $inc"
        return 1
    fi
    host_log "AppArmor: libvirtd may run $bin from its hook ($inc: $rule)"
}

# Is the running libvirtd one this script started (its marker names the live pid)?
host_libvirtd_is_ours() {
    local pid
    pid="$(host_libvirtd_pid 2>/dev/null)" || return 1
    [[ -f "$HOST_LIBVIRTD_MARKER" ]] && [[ "$(cut -d' ' -f1 "$HOST_LIBVIRTD_MARKER")" == "$pid" ]]
}

# A libvirtd this script started earlier in a *slave* namespace (before overlay storage)
# never passes its mounts back to the host: restart it in the current way. Its root mount
# must be in a shared peer group. A libvirtd someone else started is left alone.
host_ensure_libvirtd_peers() {
    local pid
    host_libvirtd_is_ours || return 0
    pid="$(host_libvirtd_pid)" || return 0
    if ! awk '$5 == "/" && / shared:/ { found = 1 } END { exit !found }' "/proc/$pid/mountinfo" 2>/dev/null; then
        host_log "restarting the libvirtd this script started in a slave mount namespace, so mounts travel both ways"
        host_stop_libvirtd && host_ensure_libvirtd
    fi
}

# Runs a daemon with no file descriptor of ours but 0-2: a lock a caller holds (flock(1)
# passes its fd down) must not live on in a daemon.
host_without_inherited_fds() {
    (
        local f n
        for f in /proc/"$BASHPID"/fd/*; do
            n="${f##*/}"
            if [[ "$n" =~ ^[0-9]+$ && "$n" -gt 2 ]]; then
                eval "exec $n>&-" 2>/dev/null || true
            fi
        done
        exec "$@"
    )
}

# virtlogd: libvirt's QEMU driver writes each VM's console and log through it (its default
# stdio_handler); LXC does not need it. Vagrant's libvirt provider (scripts/vagrant-lab.sh)
# does. Under systemd its socket unit starts it; elsewhere it is started here (-d).
host_ensure_virtlogd() {
    if [[ -S /run/libvirt/virtlogd-sock ]] && host_pid_alive "$(cat /run/virtlogd.pid 2>/dev/null)"; then
        return 0
    fi
    if host_pid1_is_systemd; then
        systemctl start virtlogd.socket || { host_err "systemctl start virtlogd.socket failed"; return 1; }
        return 0
    fi
    command -v virtlogd >/dev/null || { host_err "virtlogd is missing (apt-get install libvirt-daemon)"; return 1; }
    rm -f -- /run/libvirt/virtlogd-sock
    host_without_inherited_fds virtlogd -d || { host_err "virtlogd -d failed"; return 1; }
    local i
    for ((i = 0; i < 50; i++)); do
        [[ -S /run/libvirt/virtlogd-sock ]] && { host_log "virtlogd started"; return 0; }
        sleep 0.1
    done
    host_err "virtlogd did not open /run/libvirt/virtlogd-sock"
    return 1
}

# Stop a libvirtd that is not managed by systemd: SIGTERM the pid in the pid
# file, wait up to HOST_WAIT_SECONDS, then SIGKILL.
host_stop_libvirtd() {
    local pid deadline
    if host_pid1_is_systemd && host_libvirtd_unit_exists \
        && systemctl is-active --quiet libvirtd.service; then
        host_log "libvirtd is managed by systemd; not stopping it (use systemctl)"
        return 0
    fi
    if ! pid="$(host_libvirtd_pid)"; then
        if [[ -e "$HOST_LIBVIRTD_PIDFILE" ]]; then
            host_log "removing stale $HOST_LIBVIRTD_PIDFILE"
            rm -f -- "$HOST_LIBVIRTD_PIDFILE"
        fi
        rm -f -- "$HOST_LIBVIRTD_MARKER"
        host_log "libvirtd is not running"
        return 0
    fi
    host_log "stopping libvirtd (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + HOST_WAIT_SECONDS))
    while host_pid_alive "$pid"; do
        if ((SECONDS >= deadline)); then
            host_log "libvirtd (pid $pid) ignored SIGTERM for ${HOST_WAIT_SECONDS}s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.2
            break
        fi
        sleep 0.1
    done
    if host_pid_alive "$pid"; then
        host_err "libvirtd (pid $pid) is still running"
        return 1
    fi
    rm -f -- "$HOST_LIBVIRTD_MARKER"
    # libvirtd removes its pid file on clean exit; not after SIGKILL.
    if [[ -e "$HOST_LIBVIRTD_PIDFILE" ]] && ! host_libvirtd_pid >/dev/null; then
        rm -f -- "$HOST_LIBVIRTD_PIDFILE"
    fi
    host_log "libvirtd stopped (running containers keep running; a new libvirtd reconnects to them)"
}

# The nwfilters shipped in /etc/libvirt/nwfilter (clean-traffic and friends) are loaded by
# libvirtd at start; a daemon started before the package was installed lacks them. Define
# any that are missing (idempotent).
host_ensure_nwfilters() {
    local f name
    for f in /etc/libvirt/nwfilter/*.xml; do
        [[ -e "$f" ]] || continue
        name="$(basename "$f" .xml)"
        if ! virsh -q -c "$HOST_LIBVIRT_URI" nwfilter-dumpxml "$name" >/dev/null 2>&1; then
            host_log "defining nwfilter $name"
            virsh -q -c "$HOST_LIBVIRT_URI" nwfilter-define "$f" >/dev/null
        fi
    done
}

# lxcfs at /var/lib/lxcfs, for containers' own /proc views. Under systemd its package's
# service runs it; elsewhere (PID 1 is not systemd, as on this project's CI host) it is
# started here, in the background under a small restart loop, with per-container load
# averages (-l) and CPU counts from the CPU quota (--enable-cfs). Idempotent: a running lxcfs is left alone. A mount
# whose daemon is gone (crashed, or killed with the session that started it: the FUSE
# mount outlives its daemon, and every read then answers "Transport endpoint is not
# connected") is stale: it is unmounted and lxcfs started again.
HOST_LXCFS_DIR="${HOST_LXCFS_DIR:-/var/lib/lxcfs}"
HOST_LXCFS_LOG="${HOST_LXCFS_LOG:-/var/log/lxcfs.log}"
# Prints live, stale or absent.
host_lxcfs_state() {
    if ! awk -v d="$HOST_LXCFS_DIR" '$5 == d && $0 ~ / - fuse\.lxcfs / { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        echo absent
    elif [[ -f "$HOST_LXCFS_DIR/proc/uptime" ]] && head -c 1 "$HOST_LXCFS_DIR/proc/uptime" >/dev/null 2>&1; then
        echo live
    else
        echo stale
    fi
}
host_ensure_lxcfs() {
    local state
    state="$(host_lxcfs_state)"
    if [[ "$state" == live ]]; then
        host_log "lxcfs is mounted at $HOST_LXCFS_DIR"
        return 0
    fi
    if ! command -v lxcfs >/dev/null; then
        host_err "lxcfs is missing (apt-get install lxcfs)"
        return 1
    fi
    if [[ "$state" == stale ]]; then
        host_log "lxcfs's mount at $HOST_LXCFS_DIR is stale (its daemon is gone): unmounting it; containers started while it ran need a restart to see their /proc views again"
        umount -l -- "$HOST_LXCFS_DIR" 2>/dev/null || fusermount3 -u -z -- "$HOST_LXCFS_DIR" 2>/dev/null || true
        if [[ "$(host_lxcfs_state)" != absent ]]; then
            host_err "could not unmount the stale lxcfs mount at $HOST_LXCFS_DIR (umount -l $HOST_LXCFS_DIR)"
            return 1
        fi
        # The dead daemon's pid file would make the new one refuse to start.
        if [[ -f /run/lxcfs.pid ]] && ! host_pid_alive "$(cat /run/lxcfs.pid 2>/dev/null)"; then
            rm -f -- /run/lxcfs.pid
        fi
    fi
    if [[ "$(cat /proc/1/comm 2>/dev/null)" == systemd ]]; then
        systemctl restart lxcfs.service || { host_err "systemctl restart lxcfs failed"; return 1; }
    else
        mkdir -p -- "$HOST_LXCFS_DIR"
        # As lxcfs.service's Restart=on-failure does: a daemon that dies of a signal or an
        # error (a crash) leaves a stale mount, which is unmounted, and lxcfs is started
        # again; a clean exit (SIGTERM, an unmount) ends the loop.
        # shellcheck disable=SC2016
        host_without_inherited_fds setsid nohup bash -c '
            while :; do
                lxcfs -l --enable-cfs "$1"
                rc=$?
                umount -l -- "$1" 2>/dev/null
                rm -f -- /run/lxcfs.pid
                [[ $rc -eq 0 ]] && exit 0
                echo "lxcfs-supervise: $(date -u +%FT%TZ) lxcfs exited with $rc; starting it again in 1s"
                sleep 1
            done' lxcfs-supervise "$HOST_LXCFS_DIR" >>"$HOST_LXCFS_LOG" 2>&1 </dev/null &
    fi
    local i
    for ((i = 0; i < 50; i++)); do
        if [[ "$(host_lxcfs_state)" == live ]]; then
            host_log "lxcfs started at $HOST_LXCFS_DIR (log: $HOST_LXCFS_LOG)"
            return 0
        fi
        sleep 0.1
    done
    host_err "lxcfs did not mount $HOST_LXCFS_DIR (see $HOST_LXCFS_LOG)"
    return 1
}
