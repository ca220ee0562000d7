#!/usr/bin/env bash
# Provisioning for scripts/vagrant/Vagrantfile, on Fedora (SELinux enforcing): the build
# dependencies, libvirt with the LXC driver and the container policy, then build lxcprov,
# start libvirtd (the same function scripts/setup-host.sh uses) and create and verify a
# container from the `web` profile.
# Usage (as root, inside the VM): provision.sh [CHECKOUT]   (default: /lxcprov)
set -euo pipefail
src="${1:-/lxcprov}"
export HOST_LOG_PREFIX=provision
# shellcheck source=../lib/host.sh
. "$src/scripts/lib/host.sh"

host_log "SELinux: $(getenforce)"
[[ "$(getenforce)" == Enforcing ]] || { host_err "SELinux must be enforcing (setenforce 1)"; exit 1; }
host_log "installing Fedora packages"
dnf -y install --setopt=install_weak_deps=False \
    libvirt-daemon libvirt-daemon-driver-lxc libvirt-daemon-driver-network \
    libvirt-daemon-driver-nwfilter libvirt-daemon-config-nwfilter libvirt-client libvirt-devel \
    container-selinux policycoreutils selinux-policy-targeted \
    cargo rust gcc pkgconf-pkg-config clang-devel libselinux-devel libxml2 busybox dnf
systemctl enable --now virtlxcd.socket virtnetworkd.socket virtnwfilterd.socket 2>/dev/null || true
host_ensure_libvirtd
host_ensure_nwfilters
host_log "building lxcprov"
(cd "$src" && cargo build --release --locked)
install -m 0755 "$src/target/release/lxcprov" /usr/local/bin/lxcprov
lxcprov doctor || true
host_log "creating and verifying the demo container"
lxcprov create demo --profile web --distro fedora
lxcprov verify demo
