#!/usr/bin/env bash
# A nested Debian 12 guest with SELinux enforcing (MCS) and libvirt-LXC, booted under
# QEMU/TCG, to run lxcprov where sVirt is real. This host has no SELinux, so the SELinux
# checks of lxcprov can only be exercised there. See scripts/selinux/README.
#
#   scripts/selinux-lab.sh build [--force]     build (or reuse) the cached guest image
#   scripts/selinux-lab.sh test [--apparmor | --permissive] [--keep]
#                                              boot the guest, run scripts/selinux/guest-suite.sh
#                                              in it, print its report; exit 1 on any FAIL or
#                                              missing result line, 2 on a lab error
#   scripts/selinux-lab.sh shell [--apparmor | --permissive]
#                                              boot the guest on this terminal (serial console,
#                                              root logs in automatically; Ctrl-a x quits)
#
# test modes (kernel command line):
#   (default)     selinux=1 security=selinux enforcing=1
#   --apparmor    apparmor=1 security=apparmor          (suite uses an AppArmor profile)
#   --permissive  selinux=1 security=selinux enforcing=0; dontaudit rules are disabled in the
#                 guest (semodule -DB, ~30 s) and the suite writes audit2allow's output: use it
#                 to find the allow rules a workload needs (scripts/selinux/README)
#
# Everything lives under $LXCPROV_LAB_CACHE (default /var/cache/lxcprov-lab):
#   qemu/          QEMU 7.2 from bookworm, unpacked privately (dpkg -x), never installed:
#                  the host's qemu-utils 10.x (backports) Breaks qemu-system-common << 8.0
#   debs/          debootstrap's package cache
#   images/HASH/   root.img (3 GiB sparse ext4, labelled offline), vmlinuz, initrd.img, info.
#                  HASH covers the image recipe (the img_* functions and variables of this
#                  script, not its test code), the package list and scripts/selinux/*.te|*.fc
#   runs/last/     the last test run: lab.img (the second disk), console.log, out/
#
# Nothing here sends traffic anywhere but the Debian mirror (image build only); the guest
# has no network device (-nic none) and its root disk is opened with snapshot=on.
# Needs root. Environment: LXCPROV_LAB_CACHE, LXCPROV_LAB_MIRROR, LXCPROV_LAB_TIMEOUT
# (seconds per boot, default 600), LXCPROV_LAB_TRIES (boots when the guest wedges or the
# suite does not finish, default 2), LXCPROV_BIN (default: cargo build --release).
set -euo pipefail

prog=selinux-lab
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SELF="$REPO/scripts/selinux-lab.sh"
POLICY_DIR="$REPO/scripts/selinux"
CACHE="${LXCPROV_LAB_CACHE:-/var/cache/lxcprov-lab}"
MIRROR="${LXCPROV_LAB_MIRROR:-http://deb.debian.org/debian}"
# The SELinux suite boots four systemd containers (web1, web2, web1 again, big1 with its
# 1.3 GB base copied in) after the busybox ones: about 300 s under TCG on 2 cores.
TIMEOUT="${LXCPROV_LAB_TIMEOUT:-600}"
# Under TCG a guest kernel occasionally wedges (a "soft lockup" in the console, then no
# progress). That is the emulator, not lxcprov: such a boot is killed at once and, when the
# suite did not finish, tried again up to this many times in all.
TRIES="${LXCPROV_LAB_TRIES:-2}"
QEMU_DIR="$CACHE/qemu"
QEMU="$QEMU_DIR/root/usr/bin/qemu-system-x86_64"

# The guest's packages. minbase + these; debootstrap installs no Recommends.
#  - libpam-systemd: without it polkitd (pulled by libvirt-daemon-system) fails to configure
#  - selinux-policy-dev/-src, make: build refpolicy's `container` module, which Debian omits
#    but names in contexts/lxc_contexts, and the local module lxcprovlab
#  - policycoreutils-python-utils: audit2allow (test --permissive)
#  - apparmor, apparmor-utils: the --apparmor boot
#  - jq: the in-guest suite reads lxcprov's JSON Lines with a JSON parser
#  - ebtables, iptables: libvirt's nwfilter driver instantiates clean-traffic with them
#    (the web container)
img_PACKAGES=(
    systemd-sysv libpam-systemd udev kmod procps iproute2 linux-image-amd64 initramfs-tools
    dbus e2fsprogs zstd make
    selinux-basics selinux-policy-default selinux-policy-dev selinux-policy-src selinux-utils
    policycoreutils policycoreutils-python-utils auditd
    libvirt-daemon-system libvirt-daemon-driver-lxc libvirt-clients
    apparmor apparmor-utils busybox-static jq
    ebtables iptables
)
img_SUITE=bookworm
# 4 GiB (sparse): room for the suite's 1 GiB overlay base beside the web bases
img_SIZE=4G
img_MODULE=lxcprovlab

die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 2; }
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------
# QEMU, private copy

ensure_qemu() {
    if [[ -x "$QEMU" ]] && "$QEMU" --version >/dev/null 2>&1; then
        return
    fi
    say "unpacking QEMU into $QEMU_DIR (apt-get download + dpkg -x; nothing is installed but its libraries)"
    local pkgs=(qemu-system-x86 qemu-system-common qemu-system-data) deps
    # Its shared libraries and firmware, from the same Depends the packages declare.
    deps="$(apt-cache depends "${pkgs[@]}" 2>/dev/null | awk '$1 == "Depends:" && $2 !~ /^</ { print $2 }' \
        | grep -v '^qemu-system' | sort -u)"
    [[ -n "$deps" ]] || die "apt-cache knows no qemu-system-x86: run apt-get update"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $deps >&2
    rm -rf -- "$QEMU_DIR"
    mkdir -p -- "$QEMU_DIR/debs" "$QEMU_DIR/root"
    (cd "$QEMU_DIR/debs" && apt-get download -q -o APT::Sandbox::User=root "${pkgs[@]}" >&2)
    local d
    for d in "$QEMU_DIR"/debs/*.deb; do
        dpkg -x "$d" "$QEMU_DIR/root"
    done
    "$QEMU" --version >/dev/null || die "the unpacked QEMU does not run: $QEMU"
}

# ---------------------------------------------------------------------------------------
# Image: debootstrap, policy modules, offline labelling, mkfs.ext4 -d

image_hash() {
    {
        declare -p img_PACKAGES img_SUITE img_SIZE img_MODULE
        declare -f img_build img_configure img_policy img_unit
        local f
        for f in "$POLICY_DIR"/*.te "$POLICY_DIR"/*.fc; do
            [[ -e "$f" ]] || continue
            printf '%s\n' "${f##*/}"
            cat -- "$f"
        done
    } | sha256sum | cut -c1-16
}

image_dir() { printf '%s/images/%s\n' "$CACHE" "$(image_hash)"; }

# Unmount whatever is mounted under the chroot (deepest first).
img_umount() {
    local root="$1" m
    [[ -d "$root" ]] || return 0
    while read -r m; do
        umount -l -- "$m" 2>/dev/null || true
    done < <(awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r)
}

img_build() { # WORK
    local work="$1" root="$1/rootfs" t
    mkdir -p -- "$CACHE/debs"
    t="$(now)"
    say "debootstrap $img_SUITE (minbase + ${#img_PACKAGES[@]} packages) from $MIRROR"
    debootstrap --variant=minbase --cache-dir="$CACHE/debs" \
        --include="$(IFS=,; printf '%s' "${img_PACKAGES[*]}")" \
        "$img_SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
        || { tail -n 30 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $work/debootstrap.log)"; }
    printf 'debootstrap %ss\n' "$(elapsed "$t")" >>"$work/timings"

    t="$(now)"
    mount -t proc proc "$root/proc"
    img_configure "$root"
    img_unit "$root"
    img_policy "$root" "$work"
    # Offline labelling: every file gets its file_contexts label now, so the first boot
    # needs no autorelabel. Without /proc mounted every lookup fails.
    chroot "$root" setfiles -F -e /proc -e /sys /etc/selinux/default/contexts/files/file_contexts / \
        >"$work/setfiles.log" 2>&1 || { tail -n 20 "$work/setfiles.log" >&2; die "setfiles failed"; }
    img_umount "$root"
    printf 'configure+policy+label %ss\n' "$(elapsed "$t")" >>"$work/timings"

    t="$(now)"
    printf 'kernel %s\n' "$(basename "$(readlink -f "$root/vmlinuz")")" >"$work/kernel"
    cp -- "$(readlink -f "$root/vmlinuz")" "$work/vmlinuz"
    cp -- "$(readlink -f "$root/initrd.img")" "$work/initrd.img"
    # mkfs.ext4 -d copies the security.selinux xattrs along with the files.
    mkfs.ext4 -q -F -L lxcprov-lab -d "$root" "$work/root.img" "$img_SIZE"
    printf 'mkfs %ss\n' "$(elapsed "$t")" >>"$work/timings"
}

img_configure() { # ROOT
    local root="$1"
    printf 'selab\n' >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tselab\n' >"$root/etc/hosts"
    printf '/dev/vda\t/\text4\tdefaults\t0\t1\n' >"$root/etc/fstab"
    # A fixed machine-id: an empty one would make every (snapshot) boot a first boot.
    chroot "$root" systemd-machine-id-setup >/dev/null 2>&1
    # The kernel command line decides the mode; the config must agree with it.
    cat >"$root/etc/selinux/config" <<'EOF'
SELINUX=enforcing
SELINUXTYPE=default
EOF
    chroot "$root" passwd -d root >/dev/null
    # Serial console: root logs in without a password (lab only; no network device).
    mkdir -p "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
    cat >"$root/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'EOF'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
EOF
    # lxcprov's hook goes here; labelled bin_t by lxcprovlab.fc (see there).
    mkdir -p "$root/etc/libvirt/hooks"
    # libvirt's NAT network "default" cannot start without a NIC or dnsmasq: do not autostart.
    rm -f "$root/etc/libvirt/qemu/networks/autostart/default.xml"
    # Overlay storage, lxcprov's default on any host with the module: loaded at boot, as
    # the host set-up expects it (the suite's web containers get overlay through the hook).
    printf 'overlay\n' >"$root/etc/modules-load.d/lxcprov-overlay.conf"
    # Nothing periodic during a 30 s boot.
    local u
    for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
        chroot "$root" systemctl disable "$u" >/dev/null 2>&1 || true
    done
    rm -f "$root"/var/cache/apt/archives/*.deb
}

# The oneshot unit that runs the suite from the second disk and powers off. It runs only
# when the kernel command line has lxcprov.lab=run (test), not in `shell`.
img_unit() { # ROOT
    local root="$1"
    cat >"$root/etc/systemd/system/lxcprov-lab.service" <<'EOF'
[Unit]
Description=lxcprov lab: run the suite from /dev/vdb and power off
ConditionKernelCommandLine=lxcprov.lab=run
Requires=dev-vdb.device
After=dev-vdb.device local-fs.target dbus.service auditd.service systemd-machined.service
Wants=dbus.service
SuccessAction=poweroff-force
FailureAction=poweroff-force

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/lxcprov-lab-run
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity

[Install]
WantedBy=multi-user.target
EOF
    mkdir -p "$root/usr/local/sbin"
    # Under systemd this runs as initrc_t; virsh would then transition to a confined
    # domain that cannot write the output disk, so the suite runs as unconfined_t.
    cat >"$root/usr/local/sbin/lxcprov-lab-run" <<'EOF'
#!/bin/sh
mkdir -p /lab
mount /dev/vdb /lab || exit 1
mkdir -p /lab/out
echo "lxcprov-lab: runner as $(id -Z 2>/dev/null)" >/lab/out/runner.txt
ctx=unconfined_u:unconfined_r:unconfined_t:s0-s0:c0.c1023
if [ "$(cat /sys/fs/selinux/enforce 2>/dev/null)" = "" ]; then ctx=""; fi
if [ -n "$ctx" ]; then
    runcon "$ctx" /bin/sh -c '/bin/bash /lab/guest-suite.sh /lab 2>&1 | tee /lab/out/suite.log'
else
    /bin/sh -c '/bin/bash /lab/guest-suite.sh /lab 2>&1 | tee /lab/out/suite.log'
fi
echo "runner exit $?" >>/lab/out/runner.txt
sync
umount /lab
EOF
    chmod 0755 "$root/usr/local/sbin/lxcprov-lab-run"
    chroot "$root" systemctl enable lxcprov-lab.service >/dev/null 2>&1
}

# refpolicy's `container` module from Debian's own policy source, plus the local module
# (scripts/selinux/*.te), installed offline: `semodule -n` rebuilds the policy without
# loading it (4-5 s here; one semodule call inside the TCG guest takes 20+ s).
img_policy() { # ROOT WORK
    local root="$1" work="$2" b=/root/policy-build
    rm -rf -- "$root$b"
    mkdir -p -- "$root$b"
    tar -C "$root$b" --zstd -xf "$root/usr/src/selinux-policy-src.tar.zst" \
        --wildcards --no-anchored --transform='s|.*/||' 'policy/modules/*/container.te' 'policy/modules/*/container.fc'
    [[ -s "$root$b/container.te" ]] || die "container.te not found in selinux-policy-src"
    # container.if is not copied: the devel headers already carry its interfaces.
    cp -- "$POLICY_DIR/$img_MODULE.te" "$root$b/"
    [[ ! -e "$POLICY_DIR/$img_MODULE.fc" ]] || cp -- "$POLICY_DIR/$img_MODULE.fc" "$root$b/"
    chroot "$root" make -C "$b" -f /usr/share/selinux/devel/Makefile container.pp "$img_MODULE.pp" \
        >"$work/policy.log" 2>&1 || { cat "$work/policy.log" >&2; die "building the policy modules failed"; }
    # spamassassin must go: its file contexts duplicate one of container's.
    chroot "$root" semodule -n -d spamassassin -i "$b/container.pp" -i "$b/$img_MODULE.pp" \
        >>"$work/policy.log" 2>&1 || { cat "$work/policy.log" >&2; die "semodule failed"; }
    chroot "$root" semodule -n -l >"$work/modules.txt"
    grep -qx container "$work/modules.txt" && grep -qx "$img_MODULE" "$work/modules.txt" \
        || die "modules not installed (see $work/modules.txt)"
}

cmd_build() {
    local force=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --force) force=1; shift ;;
            *) usage ;;
        esac
    done
    [[ $(id -u) -eq 0 ]] || die "run as root"
    ensure_qemu
    local dir t0
    dir="$(image_dir)"
    if [[ $force -eq 0 && -f "$dir/info" ]]; then
        say "image ${dir##*/} is cached ($dir)"
        printf '%s\n' "$dir"
        return
    fi
    t0="$(now)"
    local work="$CACHE/images/.${dir##*/}.partial"
    img_umount "$work/rootfs"
    rm -rf -- "$work"
    mkdir -p -- "$work"
    trap 'img_umount "'"$work"'/rootfs"' EXIT
    img_build "$work"
    trap - EXIT
    rm -rf -- "$work/rootfs"
    {
        printf 'built %s in %ss\n' "$(date -u +%FT%TZ)" "$(elapsed "$t0")"
        cat "$work/timings"
        cat "$work/kernel"
    } >"$work/info"
    rm -rf -- "$dir"
    mv -- "$work" "$dir"
    # Keep only the current image.
    local old
    for old in "$CACHE"/images/*; do
        [[ "$old" == "$dir" ]] || rm -rf -- "$old"
    done
    say "image ${dir##*/} built in $(elapsed "$t0")s"
    sed 's/^/  /' "$dir/info" >&2
    printf '%s\n' "$dir"
}

# ---------------------------------------------------------------------------------------
# Boot

kernel_args() { # MODE
    local a="console=ttyS0 root=/dev/vda rw panic=-1"
    case "$1" in
        selinux) a+=" selinux=1 security=selinux enforcing=1" ;;
        permissive) a+=" selinux=1 security=selinux enforcing=0" ;;
        apparmor) a+=" apparmor=1 security=apparmor" ;;
    esac
    printf '%s\n' "$a"
}

# TCG: /dev/kvm here is a paravirtual nested flavour that cannot boot a stock kernel.
qemu_argv() { # IMAGE_DIR LAB_IMG APPEND
    printf '%s\0' "$QEMU" -L "$QEMU_DIR/root/usr/share/qemu" -L /usr/share/seabios \
        -accel tcg,thread=multi -cpu max -smp 2 -m 2048 -nodefaults -no-reboot \
        -kernel "$1/vmlinuz" -initrd "$1/initrd.img" -append "$3" \
        -drive "file=$1/root.img,format=raw,if=virtio,snapshot=on" \
        -drive "file=$2,format=raw,if=virtio" \
        -nic none
}

lxcprov_bin() {
    if [[ -n "${LXCPROV_BIN:-}" ]]; then
        [[ -x "$LXCPROV_BIN" ]] || die "LXCPROV_BIN=$LXCPROV_BIN is not executable"
        printf '%s\n' "$LXCPROV_BIN"
        return
    fi
    command -v cargo >/dev/null || die "cargo not found; set LXCPROV_BIN"
    # The seccomp init shim is built into lxcprov (build.rs).
    (cd "$REPO" && cargo build --release --quiet) >&2 || die "cargo build --release failed"
    printf '%s\n' "${CARGO_TARGET_DIR:-$REPO/target}/release/lxcprov"
}

# The `web` profile's Debian 12 base, bootstrapped on this host by lxcprov itself
# (debootstrap from the mirror, signatures checked, pinned keys; cached in $CACHE/web after
# the first time), as a base-cache directory the guest's lxcprov uses with --cache-dir:
# the guest has no network, so the tree is carried in, as it would be to an offline host.
web_base() { # LXCPROV DEST
    local bin="$1" dest="$2" w="$CACHE/web" t
    t="$(now)"
    mkdir -p -- "$w"
    printf 'lab-web-password\n' >"$w/password"
    chmod 0600 -- "$w/password"
    LXCPROV_CACHE_DIR="$w/cache" LXCPROV_POOL_DIR="$w/pool" LXCPROV_STATE_DIR="$w/state" \
        "$bin" bootstrap lab-web --profile web --force --root-password-file "$w/password" >"$w/bootstrap.log" 2>&1 \
        || { tail -n 20 "$w/bootstrap.log" >&2; die "bootstrapping the web base failed (log: $w/bootstrap.log)"; }
    rm -rf -- "$w/pool/lab-web"
    mkdir -p -- "$dest"
    cp -a -- "$w/cache/rootfs" "$dest/"
    rm -f -- "$dest"/rootfs/*.lock
    say "web base ($(du -sh "$dest/rootfs" | cut -f1)) ready in $(elapsed "$t")s"
}

# The second disk: lxcprov, a busybox rootfs tarball, the web base (SELinux modes), the
# suite, the profiles, the mode.
make_lab_disk() { # RUN MODE
    local run="$1" mode="$2" d="$1/lab" bin size=512M
    bin="$(lxcprov_bin)"
    rm -rf -- "$d"
    mkdir -p -- "$d/out" "$d/bb"
    if [[ "$mode" != apparmor ]]; then
        web_base "$bin" "$d/cache"
        # The same base plus 1 GiB of random data (hard links but for that file): the suite
        # shows that labelling an overlay container costs the same whatever its base holds.
        cp -al -- "$d/cache" "$d/bigcache"
        local key
        for key in "$d"/bigcache/rootfs/*/; do
            head -c 1G /dev/urandom >"$key/var/lib/lxcprov-lab-big.bin"
        done
        size=3G
    fi
    cp -- "$bin" "$d/lxcprov"
    # The host set-up's own functions (host_ensure_lxc_hook installs the libvirt hook).
    cp -- "$REPO/scripts/lib/host.sh" "$d/host.sh"
    cp -- "$POLICY_DIR/guest-suite.sh" "$d/guest-suite.sh"
    cp -- "$POLICY_DIR"/lab-*.yaml "$d/"
    printf '%s\n' "$mode" >"$d/mode"
    "$REPO/scripts/lib/busybox-rootfs.sh" --hostname labbox "$d/bb" >&2
    tar -C "$d/bb" --numeric-owner -cf "$d/busybox.tar" .
    rm -rf -- "$d/bb"
    (cd "$REPO" && git rev-parse --short HEAD 2>/dev/null && git status --porcelain -- src Cargo.toml 2>/dev/null | head -5) \
        >"$d/lxcprov.rev" || true
    sha256sum "$d/lxcprov" | cut -c1-16 >>"$d/lxcprov.rev"
    mkfs.ext4 -q -F -L lxcprov-lab-io -d "$d" "$run/lab.img" "$size"
    rm -rf -- "$d"
}

cmd_test() {
    local mode=selinux keep=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --apparmor) mode=apparmor; shift ;;
            --permissive) mode=permissive; shift ;;
            --keep) keep=1; shift ;;
            *) usage ;;
        esac
    done
    [[ $(id -u) -eq 0 ]] || die "run as root"
    local t0 img run
    t0="$(now)"
    img="$(cmd_build | tail -n 1)"
    run="$CACHE/runs/last"
    local try status=1
    for ((try = 1; try <= TRIES; try++)); do
        boot_once "$img" "$run" "$mode" "$t0" "$keep" && { status=0; break; }
        status=$?
        # Retry only a boot that did not finish (no END line): a FAIL is a result.
        if [[ -s "$run/out/report.txt" ]] && grep -q '^END ' "$run/out/report.txt"; then
            break
        fi
        [[ $try -lt $TRIES ]] && say "the guest did not finish (try $try of $TRIES); booting it again"
    done
    return $status
}

# One boot of the guest with a fresh lab disk; prints the report; non-zero on any problem.
boot_once() { # IMAGE RUN MODE T0 KEEP
    local img="$1" run="$2" mode="$3" t0="$4" keep="$5"
    rm -rf -- "$run"
    mkdir -p -- "$run"
    make_lab_disk "$run" "$mode"
    local tb rc=0
    tb="$(now)"
    say "booting the $mode guest (TCG, no network; console: $run/console.log; timeout ${TIMEOUT}s)"
    local argv=()
    mapfile -d '' argv < <(qemu_argv "$img" "$run/lab.img" "$(kernel_args "$mode") lxcprov.lab=run")
    "${argv[@]}" -display none -monitor none -serial "file:$run/console.log" </dev/null &
    local qpid=$! waited=0 wedged=0
    while kill -0 "$qpid" 2>/dev/null; do
        if grep -q 'soft lockup\|rcu_sched self-detected stall\|rcu: INFO: rcu_preempt self-detected stall' "$run/console.log" 2>/dev/null; then
            say "the guest kernel wedged under TCG (soft lockup); stopping this boot"
            wedged=1
            kill "$qpid" 2>/dev/null || true
            break
        fi
        if [[ $waited -ge $TIMEOUT ]]; then
            say "timeout after ${TIMEOUT}s; stopping this boot"
            kill "$qpid" 2>/dev/null || true
            break
        fi
        sleep 2
        waited=$((waited + 2))
    done
    wait "$qpid" 2>/dev/null || rc=$?
    local boot_s
    boot_s="$(elapsed "$tb")"
    [[ $rc -eq 0 || $wedged -eq 1 ]] || say "QEMU exited with status $rc"
    debugfs -R "rdump /out $run" "$run/lab.img" >/dev/null 2>&1 || true
    [[ $keep -eq 1 ]] || rm -f -- "$run/lab.img"
    report "$run" "$mode" "$boot_s" "$(elapsed "$t0")"
}

# Prints the guest's report and decides the exit status: every check the suite plans for
# this mode must have a PASS line; any FAIL or missing line fails the run.
report() { # RUN MODE BOOT_S TOTAL_S
    local run="$1" mode="$2" out="$1/out" status=0 id
    local rep="$out/report.txt"
    printf '== lxcprov SELinux lab: %s boot, %ss in QEMU, %ss total ==\n' "$2" "$3" "$4"
    if [[ ! -s "$rep" ]]; then
        printf 'no report came back from the guest. Console tail (%s):\n' "$run/console.log"
        tail -n 40 "$run/console.log" 2>/dev/null | sed 's/^/  | /'
        return 1
    fi
    cat -- "$rep"
    local expected
    expected="$(bash "$POLICY_DIR/guest-suite.sh" --list-checks "$mode")"
    for id in $expected; do
        if ! grep -q "^\(PASS\|FAIL\) $id\b" "$rep"; then
            printf 'MISSING %s: the guest wrote no result for it\n' "$id"
            status=1
        fi
    done
    if grep -q '^FAIL ' "$rep"; then status=1; fi
    grep -q '^END ' "$rep" || { printf 'MISSING END: the suite did not finish\n'; status=1; }
    printf '== %s: %s (results and JSON Lines in %s) ==\n' \
        "$([[ $status -eq 0 ]] && echo OK || echo FAILED)" "$(grep -c '^PASS ' "$rep") passed, $(grep -c '^FAIL ' "$rep") failed" "$out"
    return $status
}

cmd_shell() {
    local mode=selinux
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --apparmor) mode=apparmor; shift ;;
            --permissive) mode=permissive; shift ;;
            *) usage ;;
        esac
    done
    [[ $(id -u) -eq 0 ]] || die "run as root"
    local img run
    img="$(cmd_build | tail -n 1)"
    run="$CACHE/runs/shell"
    rm -rf -- "$run"
    mkdir -p -- "$run"
    make_lab_disk "$run" "$mode"
    say "serial console; the lab disk is /dev/vdb (mount /dev/vdb /lab). Ctrl-a x quits QEMU."
    local argv=()
    mapfile -d '' argv < <(qemu_argv "$img" "$run/lab.img" "$(kernel_args "$mode")")
    "${argv[@]}" -display none -serial mon:stdio
}

case "${1:-}" in
    build) shift; cmd_build "$@" >/dev/null ;;
    test) shift; cmd_test "$@" ;;
    shell) shift; cmd_shell "$@" ;;
    *) usage ;;
esac
