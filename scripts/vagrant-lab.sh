#!/usr/bin/env bash
# Vagrant-provisioned lxcprov labs, for real: a Vagrant box for the libvirt provider built
# here from the SELinux lab's own image (scripts/selinux-lab.sh), `vagrant up` of
# scripts/vagrant/Vagrantfile under QEMU (TCG where /dev/kvm cannot boot the guest, as on
# this project's CI host; KVM where it can), and a check of what the provisioner made.
# See docs/vagrant.md.
#
#   scripts/vagrant-lab.sh box [--force]   build (or reuse) the box and `vagrant box add` it
#   scripts/vagrant-lab.sh up              box, lxcprov's .deb (scripts/package.sh), then
#                                          `vagrant up` (its output: $CACHE/vagrant/up.log)
#   scripts/vagrant-lab.sh test            box, up, every check from outside and inside the VM,
#                                          `vagrant destroy -f`, then "N passed, M failed";
#                                          exit 1 on any failure, 2 on an error
#   scripts/vagrant-lab.sh destroy         `vagrant destroy -f`, and the box's volume and
#                                          network: nothing of this script is left in libvirt
#
# The box (lxcprov/debian12-selinux, provider libvirt, qcow2): the lab image (Debian 12,
# SELinux enforcing with MCS, libvirt 9.0 LXC and the lab's policy modules) plus openssh,
# sudo, dnsmasq, a `vagrant` user with sudo and Vagrant's well-known insecure key (replaced
# at the first `vagrant up`), DHCP on the first NIC (systemd-networkd), extlinux on the
# disk, an empty machine-id and no SSH host keys (each VM makes its own at first boot).
# Cached as $CACHE/vagrant/box-HASH.box; HASH covers the lab image and this script's box
# recipe (the box_* functions).
#
# Needs root and libvirtd (scripts/setup-host.sh). Installs what it needs from Debian:
# vagrant, vagrant-libvirt, extlinux. Uses the lab's private QEMU (Debian's qemu-system-x86
# cannot be installed beside this host's qemu-utils; see scripts/selinux-lab.sh) through a
# wrapper that adds its firmware path. Environment: LXCPROV_LAB_CACHE (as selinux-lab.sh),
# LXCPROV_VAGRANT_DRIVER (kvm|qemu; default: kvm when a KVM boot of the box's kernel prints
# within 20 s, else qemu), LXCPROV_BIN (the binary to package; default: cargo build --release).
set -euo pipefail

prog=vagrant-lab
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SELF="$REPO/scripts/vagrant-lab.sh"
CACHE="${LXCPROV_LAB_CACHE:-/var/cache/lxcprov-lab}"
VDIR="$CACHE/vagrant"
QEMU_DIR="$CACHE/qemu"
QEMU="$QEMU_DIR/root/usr/bin/qemu-system-x86_64"
BOX_NAME=lxcprov/debian12-selinux
VAGRANT_DIR="$REPO/scripts/vagrant"
# vagrant-libvirt's defaults, named here so `destroy` can remove them.
POOL=lxcprov-vagrant
POOL_DIR=/var/lib/lxcprov-vagrant/images
MGMT_NET=lxcprov-vagrant
export VAGRANT_HOME="${VAGRANT_HOME:-/root/.vagrant.d}"
export VAGRANT_CHECKPOINT_DISABLE=1 VAGRANT_DEFAULT_PROVIDER=libvirt

die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 2; }
say() { printf '%s: %s\n' "$prog" "$*" >&2; }
usage() { sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

ensure_tools() {
    local missing=()
    command -v vagrant >/dev/null || missing+=(vagrant)
    [[ "$(vagrant plugin list 2>/dev/null || true)" == *vagrant-libvirt* ]] || missing+=(vagrant-libvirt)
    command -v extlinux >/dev/null || missing+=(extlinux)
    [[ -f /usr/lib/EXTLINUX/mbr.bin || -d /usr/lib/syslinux ]] || missing+=(syslinux-common)
    command -v qemu-img >/dev/null || missing+=(qemu-utils)
    command -v e2fsck >/dev/null || missing+=(e2fsprogs)
    if [[ ${#missing[@]} -gt 0 ]]; then
        say "installing ${missing[*]} (Debian packages)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
    fi
}

# ---------------------------------------------------------------------------------------
# The box recipe: everything that decides the box's content is in the box_* functions.

box_packages=(openssh-server sudo dnsmasq-base debootstrap)

box_hash() { # IMAGE_DIR
    { printf '%s\n' "${1##*/}"; declare -p box_packages; declare -f box_build box_configure; } \
        | sha256sum | cut -c1-16
}

box_umount() { # MNT
    local m
    [[ -d "$1" ]] || return 0
    while read -r m; do
        umount -l -- "$m" 2>/dev/null || true
    done < <(awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r)
}

box_configure() { # ROOT
    local root="$1" kernel initrd
    printf 'lxcprov-lab\n' >"$root/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\tlxcprov-lab\n' >"$root/etc/hosts"
    printf 'LABEL=lxcprov-lab\t/\text4\tdefaults\t0\t1\n' >"$root/etc/fstab"
    # The lab's root auto-login on the serial console and its empty root password go: this
    # VM has a network. Root logs in with `vagrant ssh` + sudo only.
    rm -rf -- "$root/etc/systemd/system/serial-getty@ttyS0.service.d"
    chroot "$root" passwd -l root >/dev/null
    # Vagrant's base-box conventions: user vagrant (password vagrant, console only),
    # passwordless sudo, the well-known insecure key, which `vagrant up` replaces.
    chroot "$root" useradd -m -s /bin/bash -G sudo vagrant
    printf 'vagrant:vagrant\n' | chroot "$root" chpasswd
    printf 'vagrant ALL=(ALL) NOPASSWD: ALL\nDefaults:vagrant !requiretty\n' >"$root/etc/sudoers.d/vagrant"
    chmod 0440 "$root/etc/sudoers.d/vagrant"
    install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
    install -m 0600 -o 1000 -g 1000 "$(box_insecure_key)" "$root/home/vagrant/.ssh/authorized_keys"
    # sshd: keys only; host keys are made by each VM at its first start, not shipped.
    cat >"$root/etc/ssh/sshd_config.d/lxcprov-box.conf" <<'EOF'
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
EOF
    rm -f -- "$root"/etc/ssh/ssh_host_*
    mkdir -p "$root/etc/systemd/system/ssh.service.d"
    cat >"$root/etc/systemd/system/ssh.service.d/host-keys.conf" <<'EOF'
[Service]
ExecStartPre=
ExecStartPre=/usr/bin/ssh-keygen -A
ExecStartPre=/usr/sbin/sshd -t
EOF
    # DHCP on whatever NIC the provider gives (vagrant-libvirt's management network).
    cat >"$root/etc/systemd/network/80-vagrant.network" <<'EOF'
[Match]
Name=en* eth*

[Network]
DHCP=yes
EOF
    chroot "$root" systemctl enable systemd-networkd.service ssh.service >/dev/null 2>&1
    chroot "$root" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
    # Each VM its own machine-id (and so its own DHCP client id).
    : >"$root/etc/machine-id"
    rm -f -- "$root/var/lib/dbus/machine-id"
    # extlinux on the bare ext4 file system (no partition table: the BIOS loads its boot
    # sector); the lab's kernel command line, SELinux enforcing.
    kernel="$(readlink "$root/vmlinuz")"
    initrd="$(readlink "$root/initrd.img")"
    mkdir -p "$root/boot/extlinux"
    cat >"$root/boot/extlinux/extlinux.conf" <<EOF
DEFAULT debian
TIMEOUT 0
SERIAL 0 115200
LABEL debian
  LINUX /${kernel#/}
  INITRD /${initrd#/}
  APPEND root=LABEL=lxcprov-lab rw console=tty0 console=ttyS0,115200 selinux=1 security=selinux enforcing=1 panic=-1
EOF
}

box_build() { # WORK IMAGE_DIR
    local work="$1" image="$2" root="$1/mnt"
    mkdir -p -- "$root"
    cp --sparse=always -- "$image/root.img" "$work/disk.raw"
    truncate -s 20G "$work/disk.raw"
    e2fsck -pf "$work/disk.raw" >/dev/null
    resize2fs -f "$work/disk.raw" >/dev/null 2>&1
    mount -o loop -- "$work/disk.raw" "$root"
    mount -t proc proc "$root/proc"
    mount --bind /dev "$root/dev"
    cp -L /etc/resolv.conf "$root/etc/resolv.conf"
    # No service starts in the chroot.
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    chroot "$root" apt-get -q update >"$work/apt.log" 2>&1 \
        || { tail -n 20 "$work/apt.log" >&2; die "apt-get update in the box failed (log: $work/apt.log)"; }
    DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q --no-install-recommends \
        "${box_packages[@]}" >>"$work/apt.log" 2>&1 \
        || { tail -n 20 "$work/apt.log" >&2; die "apt-get install in the box failed (log: $work/apt.log)"; }
    chroot "$root" apt-get clean
    rm -f -- "$root/usr/sbin/policy-rc.d"
    : >"$root/etc/resolv.conf"
    box_configure "$root"
    # Every file the layer added or changed gets its file_contexts label.
    chroot "$root" setfiles -F -e /proc -e /sys -e /dev /etc/selinux/default/contexts/files/file_contexts / \
        >"$work/setfiles.log" 2>&1 || { tail -n 20 "$work/setfiles.log" >&2; die "setfiles failed"; }
    extlinux --install "$root/boot/extlinux" >"$work/extlinux.log" 2>&1 \
        || { cat "$work/extlinux.log" >&2; die "extlinux --install failed"; }
    box_umount "$root"
    e2fsck -pf "$work/disk.raw" >/dev/null
    qemu-img convert -O qcow2 "$work/disk.raw" "$work/box.img"
    rm -f -- "$work/disk.raw"
    printf '{"provider": "libvirt", "format": "qcow2", "virtual_size": 20}\n' >"$work/metadata.json"
    cat >"$work/Vagrantfile" <<'EOF'
# lxcprov/debian12-selinux: Debian 12, SELinux enforcing (MCS), libvirt 9.0 with LXC.
Vagrant.configure("2") do |config|
  config.vm.provider :libvirt do |lv|
    lv.disk_bus = "virtio"
  end
end
EOF
}

# The lab image's directory, built (or reused) by scripts/selinux-lab.sh, which keeps one.
lab_image() {
    "$REPO/scripts/selinux-lab.sh" build
    local d
    d="$(ls -1td -- "$CACHE"/images/*/ 2>/dev/null | head -n 1)"
    d="${d%/}"
    [[ -f "$d/info" && -f "$d/root.img" ]] || die "the lab image was not built (scripts/selinux-lab.sh build)"
    printf '%s\n' "$d"
}

box_insecure_key() {
    local k
    for k in /usr/share/rubygems-integration/all/gems/vagrant-*/keys/vagrant.pub \
        /opt/vagrant/embedded/gems/gems/vagrant-*/keys/vagrant.pub; do
        [[ -f "$k" ]] && { printf '%s\n' "$k"; return; }
    done
    die "Vagrant's insecure public key (keys/vagrant.pub) was not found: is vagrant installed?"
}

cmd_box() {
    local force=0
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --force) force=1; shift ;;
            *) usage ;;
        esac
    done
    [[ $(id -u) -eq 0 ]] || die "run as root"
    ensure_tools
    local image hash box t0
    image="$(lab_image)"
    hash="$(box_hash "$image")"
    box="$VDIR/box-$hash.box"
    mkdir -p -- "$VDIR"
    if [[ $force -eq 1 || ! -f "$box" ]]; then
        t0="$(now)"
        say "building the box from image ${image##*/}"
        local work="$VDIR/.box-$hash.partial"
        box_umount "$work/mnt"
        rm -rf -- "$work"
        mkdir -p -- "$work"
        trap 'box_umount "'"$work"'/mnt"' EXIT
        box_build "$work" "$image"
        trap - EXIT
        tar -C "$work" -cf "$work/box.tar" metadata.json Vagrantfile box.img
        mv -- "$work/box.tar" "$box"
        rm -rf -- "$work"
        local old
        for old in "$VDIR"/box-*.box; do
            [[ "$old" == "$box" ]] || rm -f -- "$old"
        done
        say "box built in $(elapsed "$t0")s: $box ($(du -h "$box" | cut -f1))"
    else
        say "box $hash is cached ($box)"
    fi
    if [[ "$(cat "$VDIR/added" 2>/dev/null)" != "$hash" || "$(vagrant box list 2>/dev/null || true)" != *"$BOX_NAME "* ]]; then
        t0="$(now)"
        vagrant box add --force --name "$BOX_NAME" "$box" >"$VDIR/box-add.log" 2>&1 \
            || { tail -n 20 "$VDIR/box-add.log" >&2; die "vagrant box add failed (log: $VDIR/box-add.log)"; }
        # A new box needs a new base volume in the pool.
        remove_box_volumes
        printf '%s\n' "$hash" >"$VDIR/added"
        say "vagrant box add $BOX_NAME in $(elapsed "$t0")s"
    fi
    printf '%s\n' "$box"
}

# ---------------------------------------------------------------------------------------
# The provider's side: the QEMU wrapper, KVM or TCG, the storage pool.

ensure_emulator() {
    # shellcheck source=lib/host.sh
    HOST_LOG_PREFIX=$prog
    . "$REPO/scripts/lib/host.sh"
    host_ensure_virtlogd >&2
    [[ -x "$QEMU" ]] || "$REPO/scripts/selinux-lab.sh" build >/dev/null
    mkdir -p -- "$VDIR/bin"
    cat >"$VDIR/bin/qemu-system-x86_64.new" <<EOF
#!/bin/sh
# lxcprov's private QEMU 7.2 with its firmware path (written by scripts/vagrant-lab.sh)
exec "$QEMU" -L "$QEMU_DIR/root/usr/share/qemu" -L /usr/share/seabios -L /usr/lib/ipxe/qemu "\$@"
EOF
    chmod 0755 "$VDIR/bin/qemu-system-x86_64.new"
    mv -- "$VDIR/bin/qemu-system-x86_64.new" "$VDIR/bin/qemu-system-x86_64"
    printf '%s\n' "$VDIR/bin/qemu-system-x86_64"
}

# kvm when a KVM boot of the lab kernel prints its banner within 20 s, else qemu (TCG).
pick_driver() {
    if [[ -n "${LXCPROV_VAGRANT_DRIVER:-}" ]]; then
        printf '%s\n' "$LXCPROV_VAGRANT_DRIVER"
        return
    fi
    local image out
    if [[ -w /dev/kvm ]]; then
        image="$(lab_image)"
        out="$(timeout 20 "$QEMU" -L "$QEMU_DIR/root/usr/share/qemu" -L /usr/share/seabios \
            -accel kvm -cpu host -m 512 -nodefaults -no-reboot -display none -serial stdio \
            -kernel "$image/vmlinuz" -append "console=ttyS0 panic=-1" 2>&1 | head -c 65536 || true)"
        if grep -q 'Linux version' <<<"$out"; then
            echo kvm
            return
        fi
    fi
    echo qemu
}

virsh_q() { virsh -q -c qemu:///system "$@"; }

ensure_pool() {
    if ! virsh_q pool-info "$POOL" >/dev/null 2>&1; then
        mkdir -p -- "$POOL_DIR"
        virsh_q pool-define-as "$POOL" dir --target "$POOL_DIR" >/dev/null
    fi
    local info
    info="$(virsh_q pool-info "$POOL")"
    [[ "$info" =~ State:\ *running ]] || virsh_q pool-start "$POOL" >/dev/null
}

remove_box_volumes() {
    virsh_q pool-info "$POOL" >/dev/null 2>&1 || return 0
    virsh_q pool-refresh "$POOL" >/dev/null 2>&1 || true
    local v
    while read -r v _; do
        [[ -n "$v" ]] || continue
        virsh_q vol-delete --pool "$POOL" "$v" >/dev/null 2>&1 || true
    done < <(virsh_q vol-list "$POOL" 2>/dev/null)
}

# ---------------------------------------------------------------------------------------

vagrant_env() {
    export LXCPROV_VAGRANT_DRIVER LXCPROV_QEMU LXCPROV_VAGRANT_POOL="$POOL" LXCPROV_VAGRANT_NET="$MGMT_NET"
    LXCPROV_QEMU="$(ensure_emulator)"
    LXCPROV_VAGRANT_DRIVER="$(pick_driver)"
    printf '%s\n' "$LXCPROV_VAGRANT_DRIVER" >"$VDIR/driver"
}

lxcprov_bin() {
    local bin="${LXCPROV_BIN:-}"
    if [[ -z "$bin" ]]; then
        (cd "$REPO" && cargo build --release --locked -q) >&2
        bin="${CARGO_TARGET_DIR:-$REPO/target}/release/lxcprov"
    fi
    [[ -x "$bin" ]] || die "no lxcprov binary at $bin"
    printf '%s\n' "$bin"
}

build_deb() { # LXCPROV
    local bin="$1"
    mkdir -p -- "$VDIR/deb"
    rm -f -- "$VDIR"/deb/*.deb
    "$REPO/scripts/package.sh" --binary "$bin" --out "$VDIR/deb" --fast deb | tail -n 1
}

# The students' golden base, bootstrapped on this host by the same lxcprov (debootstrap
# from the mirror, signatures checked; the package cache shared with the SELinux lab's web
# base): the `minimal` profile plus the ssh-server set that `lab up --ssh-keys` adds, so the
# VM's lxcprov finds it under the same cache key and bootstraps nothing under TCG. Prints
# the tar of its rootfs/KEY directory.
student_base() { # LXCPROV
    local bin="$1" w="$CACHE/web" key t
    t="$(now)"
    mkdir -p -- "$w" "$VDIR/base"
    { grep -v '^#' "$REPO/profiles/minimal.yaml"; printf 'package_sets: [ssh-server]\n'; } >"$VDIR/base/minimal-ssh.yaml"
    printf 'vagrant-lab-base\n' >"$VDIR/base/password"
    chmod 0600 "$VDIR/base/password"
    LXCPROV_CACHE_DIR="$w/cache" LXCPROV_POOL_DIR="$w/pool" LXCPROV_STATE_DIR="$w/state" \
        "$bin" bootstrap vagrant-student --profile-file "$VDIR/base/minimal-ssh.yaml" --profile minimal-ssh \
        --force --root-password-file "$VDIR/base/password" >"$VDIR/base/bootstrap.log" 2>&1 \
        || { tail -n 20 "$VDIR/base/bootstrap.log" >&2; die "bootstrapping the students' base failed (log: $VDIR/base/bootstrap.log)"; }
    key="$(jq -r .cache_key "$w/state/containers/vagrant-student.json")"
    rm -rf -- "$w/pool/vagrant-student"
    [[ -d "$w/cache/rootfs/$key" ]] || die "the students' base $key is not in $w/cache/rootfs"
    if [[ ! -f "$VDIR/base/$key.tar" ]]; then
        rm -f -- "$VDIR"/base/*.tar
        tar -C "$w/cache" --numeric-owner --xattrs --xattrs-include='*' -cf "$VDIR/base/$key.tar.tmp" "rootfs/$key"
        mv -- "$VDIR/base/$key.tar.tmp" "$VDIR/base/$key.tar"
    fi
    say "students' base $key ($(du -h "$VDIR/base/$key.tar" | cut -f1)) ready in $(elapsed "$t")s"
    printf '%s\n' "$VDIR/base/$key.tar"
}

cmd_up() {
    [[ $(id -u) -eq 0 ]] || die "run as root"
    cmd_box >/dev/null
    vagrant_env
    ensure_pool
    local deb t0 bin
    bin="$(lxcprov_bin)"
    deb="$(build_deb "$bin")"
    [[ -f "$deb" ]] || die "scripts/package.sh made no .deb"
    export LXCPROV_DEB="$deb"
    LXCPROV_BASE="$(student_base "$bin")"
    export LXCPROV_BASE
    export LXCPROV_VAGRANT_KEYS="${LXCPROV_VAGRANT_KEYS:-$VDIR/keys}"
    [[ -d "$LXCPROV_VAGRANT_KEYS" ]] || make_keys "$LXCPROV_VAGRANT_KEYS"
    say "vagrant up (driver $LXCPROV_VAGRANT_DRIVER; log: $VDIR/up.log)"
    t0="$(now)"
    if ! (cd "$VAGRANT_DIR" && vagrant up --provider libvirt) >"$VDIR/up.log" 2>&1; then
        tail -n 30 "$VDIR/up.log" >&2
        die "vagrant up failed after $(elapsed "$t0")s (log: $VDIR/up.log)"
    fi
    elapsed "$t0" >"$VDIR/up.seconds"
    say "vagrant up in $(cat "$VDIR/up.seconds")s"
}

# Three students' keys: the public ones in DIR, as a teacher's --ssh-keys directory holds
# them (this is what is copied into the VM), the private ones in DIR.private.
make_keys() { # DIR
    local d="$1" s
    rm -rf -- "$d" "$d.private"
    mkdir -p -- "$d" "$d.private"
    chmod 0700 "$d.private"
    for s in s01 s02 s03; do
        ssh-keygen -q -t ed25519 -N '' -C "$s" -f "$d.private/$s"
        mv -- "$d.private/$s.pub" "$d/$s.pub"
    done
}

cmd_destroy() {
    [[ $(id -u) -eq 0 ]] || die "run as root"
    export LXCPROV_VAGRANT_POOL="$POOL" LXCPROV_VAGRANT_NET="$MGMT_NET"
    export LXCPROV_DEB="${LXCPROV_DEB:-/dev/null}" LXCPROV_VAGRANT_KEYS="${LXCPROV_VAGRANT_KEYS:-$VDIR/keys}"
    if command -v vagrant >/dev/null; then
        (cd "$VAGRANT_DIR" && vagrant destroy -f) >"$VDIR/destroy.log" 2>&1 \
            || { tail -n 20 "$VDIR/destroy.log" >&2; say "vagrant destroy failed (log: $VDIR/destroy.log)"; }
    fi
    remove_box_volumes
    if virsh_q net-info "$MGMT_NET" >/dev/null 2>&1; then
        virsh_q net-destroy "$MGMT_NET" >/dev/null 2>&1 || true
        virsh_q net-undefine "$MGMT_NET" >/dev/null 2>&1 || true
    fi
    rm -rf -- "$VAGRANT_DIR/.vagrant"
}

# ---------------------------------------------------------------------------------------
# test: every check prints one "PASS|FAIL id: detail" line on stdout.

PASSED=0
FAILED=0
check() { # ID STATUS DETAIL
    if [[ "$2" -eq 0 ]]; then
        PASSED=$((PASSED + 1))
        printf 'PASS %s: %s\n' "$1" "$3"
    else
        FAILED=$((FAILED + 1))
        printf 'FAIL %s: %s\n' "$1" "$3"
    fi
}

# vagrant ssh -c CMD, its stdout; stderr into the log.
in_vm() {
    (cd "$VAGRANT_DIR" && vagrant ssh -c "$1" -- -q) 2>>"$VDIR/ssh.log"
}

leftovers() {
    local out=""
    out+="$(virsh_q list --all --name 2>/dev/null | grep -E '^vagrant_|^lxcprov' || true)"
    out+="$(virsh_q vol-list "$POOL" 2>/dev/null | awk '{ print $1 }' || true)"
    virsh_q net-info "$MGMT_NET" >/dev/null 2>&1 && out+=" network $MGMT_NET"
    printf '%s' "$out" | tr '\n' ' ' | sed 's/ *$//'
}

# From this machine, as the students would: each key reaches its own student's container
# through the VM as the jump host (`lab access --ssh-config --jump students@VM`), and no
# other container, and no shell on the VM.
students_from_outside() {
    local ip cfg s other out ok rc detail=""
    ip="$(cd "$VAGRANT_DIR" && vagrant ssh-config 2>/dev/null | awk '$1 == "HostName" { print $2; exit }')"
    rm -f -- "$VDIR/known_hosts"
    cfg="$VDIR/students.ssh_config"
    in_vm "sudo lxcprov lab access lab --ssh-config --jump students@$ip" >"$cfg.base"
    check students.ssh_config $([[ -s "$cfg.base" ]]; echo $?) "lab access --ssh-config --jump students@$ip: $(grep -c '^Host ' "$cfg.base") hosts"
    ok=0
    for s in s01 s02 s03; do
        student_cfg "$s"
        out="$(ssh -F "$VDIR/$s.ssh_config" "$s" 'cat /etc/hostname' 2>>"$VDIR/ssh.log" || true)"
        detail+="$s: ${out:-nothing}; "
        [[ "$out" == *"$s"* ]] || ok=1
    done
    check students.own $ok "$detail"
    ok=0
    detail=""
    for s in s01 s02; do
        other=s03
        rc=0
        out="$(timeout 60 ssh -F "$VDIR/$s.ssh_config" "$other" 'cat /etc/hostname' 2>&1)" || rc=$?
        detail+="$s's key to $other: exit $rc, $(tail -n 1 <<<"$out" | cut -c1-100); "
        [[ $rc -ne 0 ]] || ok=1
    done
    check students.not_others $ok "$detail"
    rc=0
    out="$(timeout 60 ssh -F "$VDIR/s01.ssh_config" -o ProxyJump=none "students@$ip" id 2>&1)" || rc=$?
    [[ $rc -ne 0 && "$out" != *uid=* ]]
    check students.no_shell_on_vm $? "s01's key on the jump account: exit $rc, $(tail -n 1 <<<"$out" | cut -c1-100)"
}

# NAME's ssh_config: the generated one plus that student's key and this run's known_hosts
# (ProxyJump's own ssh reads the same file, so the key serves the jump too).
student_cfg() { # NAME
    {
        cat "$VDIR/students.ssh_config.base"
        printf 'Host *\n    IdentityFile %s\n    IdentitiesOnly yes\n    UserKnownHostsFile %s\n' \
            "$VDIR/keys.private/$1" "$VDIR/known_hosts"
        printf '    StrictHostKeyChecking accept-new\n    BatchMode yes\n    ConnectTimeout 30\n    LogLevel ERROR\n'
    } >"$VDIR/$1.ssh_config"
}

cmd_test() {
    [[ $# -eq 0 ]] || usage
    [[ $(id -u) -eq 0 ]] || die "run as root"
    local t0 rc out
    t0="$(now)"
    mkdir -p -- "$VDIR"
    : >"$VDIR/ssh.log"
    rm -f -- "$VDIR/up.seconds" "$VDIR/driver"
    cmd_destroy
    export LXCPROV_VAGRANT_KEYS="$VDIR/keys"
    make_keys "$LXCPROV_VAGRANT_KEYS"
    rc=0
    (cmd_up) || rc=$?
    trap 'cmd_destroy' EXIT
    [[ $rc -eq 0 ]] && grep -q 'Machine booted and ready!' "$VDIR/up.log"
    check vagrant.up $? "vagrant up exit $rc (driver $(cat "$VDIR/driver" 2>/dev/null || echo '?')); $(grep -c '^==> default: Running provisioner' "$VDIR/up.log") provisioners; log $VDIR/up.log"
    if [[ $rc -ne 0 ]]; then
        tail -n 20 "$VDIR/up.log" | sed 's/^/  | /'
        finish "$t0"
        return
    fi
    out="$(in_vm 'getenforce; id -Z; sudo cat /sys/fs/selinux/mls')"
    [[ "$(sed -n 1p <<<"$out")" == Enforcing && "$(sed -n 3p <<<"$out")" == 1 ]]
    check vm.selinux $? "$(tr '\n' ' ' <<<"$out")"
    # The well-known insecure key opened the first login only: vagrant replaced it.
    local insecure
    insecure="$(awk '{ print $2 }' "$(box_insecure_key)")"
    out="$(in_vm 'cat ~/.ssh/authorized_keys')"
    [[ -n "$out" && "$out" != *"$insecure"* && -f "$VAGRANT_DIR/.vagrant/machines/default/libvirt/private_key" ]]
    check vm.insecure_key_replaced $? "authorized_keys: $(awk '{ print $1, $3 }' <<<"$out" | tr '\n' ' ')"
    out="$(in_vm 'lxcprov --version; dpkg-query -W -f "\${Version}" lxcprov')"
    [[ "$out" == lxcprov* ]]
    check vm.lxcprov_from_deb $? "$(tr '\n' ' ' <<<"$out")(no compiler in the VM: $(in_vm 'command -v cargo rustc gcc || echo none' | tr '\n' ' '))"
    # What this VM is for: SELinux enforcing, libvirt's selinux model, lxcprov's hook, and
    # overlay storage through it (dnf is not in the box: no RPM distribution is made here).
    in_vm 'sudo lxcprov --json doctor' >"$VDIR/doctor.jsonl" || true
    out="$(jq -r 'select(.type == "item" and (.data.id | IN("libvirtd", "secmodel", "selinux", "lxc_contexts", "lxc_hook", "storage"))) | "\(.data.id)=\(.data.level)"' "$VDIR/doctor.jsonl" 2>/dev/null | tr '\n' ' ')"
    [[ "$out" == *"libvirtd=ok"* && "$out" == *"secmodel=ok"* && "$out" == *"selinux=ok"* && "$out" == *"lxc_hook=ok"* && "$out" == *"storage=ok"* ]]
    check vm.doctor $? "$out"
    out="$(in_vm 'for n in lab-s01 lab-s02 lab-s03; do sudo virsh -c lxc:/// domstate $n; done' | tr '\n' ' ')"
    [[ "$out" == "running running running " ]]
    check lab.up $? "lab-s01..s03: $out"
    in_vm 'sudo lxcprov --json lab verify lab' >"$VDIR/lab-verify.jsonl" || true
    local bad distinct
    bad="$(jq -r 'select(.type == "check" and .data.status == "fail") | .data.id' "$VDIR/lab-verify.jsonl" | sort -u | tr '\n' ' ')"
    distinct="$(jq -r 'select(.type == "check" and .data.id == "lab.labels_distinct") | .data.status' "$VDIR/lab-verify.jsonl" | head -n 1)"
    [[ -z "$bad" && "$distinct" == pass ]]
    check lab.verify $? "failed: ${bad:-none}; lab.labels_distinct=${distinct:-missing}"
    out="$(in_vm 'for n in lab-s01 lab-s02 lab-s03; do sudo virsh -c lxc:/// dumpxml $n | sed -n "s/.*<label>\(.*\)<\/label>.*/\1/p" | head -n 1; done')"
    [[ $(grep -c 'container_t:s0:c[0-9]*,c[0-9]*' <<<"$out") -eq 3 && $(sort -u <<<"$out" | grep -c .) -eq 3 ]]
    check lab.mcs $? "$(tr '\n' ' ' <<<"$out")"
    students_from_outside
    cmd_destroy
    trap - EXIT
    out="$(leftovers)"
    [[ -z "$out" ]]
    check vagrant.destroy $? "left in libvirt: ${out:-nothing}"
    finish "$t0"
}

finish() { # T0
    printf 'vagrant up %ss; whole test %ss\n' "$(cat "$VDIR/up.seconds" 2>/dev/null || echo '?')" "$(elapsed "$1")"
    printf '%d passed, %d failed\n' "$PASSED" "$FAILED"
    [[ $FAILED -eq 0 ]] || exit 1
}

case "${1:-}" in
    box) shift; cmd_box "$@" >/dev/null ;;
    up) shift; cmd_up "$@" ;;
    destroy) shift; cmd_destroy "$@" ;;
    test) shift; cmd_test "$@" ;;
    *) usage ;;
esac
