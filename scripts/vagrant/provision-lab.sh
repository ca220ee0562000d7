#!/usr/bin/env bash
# Provisioning for scripts/vagrant/Vagrantfile's default box (lxcprov/debian12-selinux,
# SELinux enforcing), as root inside the VM: install lxcprov from the .deb copied in (no
# compiler in the VM), restart libvirtd so it sees lxcprov's hook, run `lxcprov doctor`,
# bring a lab up (one busybox container per student, the lab profile of the SELinux lab)
# and verify it. Idempotent: a second `vagrant provision` finds the lab up and verifies it.
# Usage: provision-lab.sh DIR STUDENTS
#   DIR holds lxcprov.deb, busybox-rootfs.sh, lab-userns.yaml and keys/ (one NAME.pub per student)
set -euo pipefail
dir="$1"
students="${2:-3}"
lab=lab
log() { printf 'provision: %s\n' "$*" >&2; }
fail() { printf 'provision: error: %s\n' "$*" >&2; exit 1; }

log "SELinux: $(getenforce)"
[[ "$(getenforce)" == Enforcing ]] || fail "SELinux must be enforcing"
log "installing $(dpkg-deb -f "$dir/lxcprov.deb" Package Version | tr '\n' ' ')"
dpkg -i "$dir/lxcprov.deb" >/dev/null || fail "dpkg -i lxcprov.deb failed"
# libvirtd reads its hooks directory when it starts.
systemctl restart libvirtd
for _ in $(seq 120); do virsh -c lxc:/// version >/dev/null 2>&1 && break; sleep 0.5; done
virsh -c lxc:/// version >/dev/null || fail "libvirtd does not answer on lxc:///"

log "lxcprov doctor"
rc=0
lxcprov doctor >&2 || rc=$?
[[ $rc -le 1 ]] || fail "lxcprov doctor failed (exit $rc)"

# The students' tree: the guest's own busybox-static (scripts/lib/busybox-rootfs.sh).
if [[ ! -f "$dir/busybox.tar" ]]; then
    bash "$dir/busybox-rootfs.sh" --hostname student "$dir/bb" >/dev/null
    tar -C "$dir/bb" --numeric-owner -cf "$dir/busybox.tar" .
    rm -rf -- "$dir/bb"
fi
if virsh -c lxc:/// dominfo "$lab-s01" >/dev/null 2>&1; then
    log "lab $lab is up already"
else
    log "lxcprov lab up $lab: $students students"
    rc=0
    lxcprov lab up "$lab" --count "$students" --prefix s \
        --profile-file "$dir/lab-userns.yaml" --profile lab-userns --rootfs-from "$dir/busybox.tar" >&2 || rc=$?
    # Imported trees fail `trust` (their files come from no signed package): exit 1 is
    # expected; lab verify below says which checks failed.
    [[ $rc -le 1 ]] || fail "lxcprov lab up failed (exit $rc)"
fi
log "lxcprov lab verify $lab"
rc=0
lxcprov --json lab verify "$lab" >/var/log/lxcprov-lab-verify.jsonl || rc=$?
bad="$(jq -r 'select(.type == "check" and .data.status == "fail") | .data.id' /var/log/lxcprov-lab-verify.jsonl | sort -u | tr '\n' ' ')"
log "lab verify exit $rc; failed checks: ${bad:-none}"
[[ $rc -le 1 && ( -z "$bad" || "$bad" == "trust " ) ]] || fail "lab verify: $bad"
log "lab $lab is up and verified"
