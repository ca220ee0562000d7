#!/usr/bin/env bash
# Provisioning for scripts/vagrant/Vagrantfile's default box (lxcprov/debian12-selinux,
# SELinux enforcing), as root inside the VM: install lxcprov from the .deb copied in (no
# compiler in the VM), restart libvirtd so it sees lxcprov's hook, run `lxcprov doctor`,
# bring a lab up (`minimal` profile, one Debian 12 container per student, each reachable
# over SSH with that student's key only) and verify it. The students reach their containers
# through this VM as the jump host: the account `students` gets `lab access --jump-keys`.
# Idempotent: a second `vagrant provision` finds the lab up and verifies it again.
# Usage: provision-lab.sh DIR STUDENTS
#   DIR holds lxcprov.deb, keys/ (the teacher's --ssh-keys: NAME.pub per student) and
#   optionally base.tar: a golden base lxcprov bootstrapped elsewhere (rootfs/KEY of a
#   cache directory), for a VM that should not bootstrap from the mirror itself
set -euo pipefail
dir="$1"
students="${2:-3}"
lab=lab
jump=students
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

if [[ -f "$dir/base.tar" ]]; then
    log "golden base from base.tar into /var/cache/lxcprov"
    mkdir -p /var/cache/lxcprov
    tar -C /var/cache/lxcprov --same-owner -xf "$dir/base.tar"
    rm -f -- "$dir/base.tar"
fi
if virsh -c lxc:/// dominfo "$lab-s01" >/dev/null 2>&1; then
    log "lab $lab is up already"
else
    log "lxcprov lab up $lab: $students students with their keys"
    lxcprov lab up "$lab" --count "$students" --prefix s --ssh-keys "$dir/keys" >&2 \
        || fail "lxcprov lab up failed (exit $?)"
fi
log "the jump account $jump: each student's key tunnels to that student's port 22 only"
id "$jump" >/dev/null 2>&1 || useradd -m -s /usr/sbin/nologin "$jump"
install -d -m 0700 -o "$jump" -g "$jump" "/home/$jump/.ssh"
lxcprov lab access "$lab" --jump-keys >"/home/$jump/.ssh/authorized_keys.new"
chown "$jump:$jump" "/home/$jump/.ssh/authorized_keys.new"
chmod 0600 "/home/$jump/.ssh/authorized_keys.new"
mv "/home/$jump/.ssh/authorized_keys.new" "/home/$jump/.ssh/authorized_keys"
restorecon -R "/home/$jump/.ssh"

log "lxcprov lab verify $lab"
rc=0
lxcprov --json lab verify "$lab" >/var/log/lxcprov-lab-verify.jsonl || rc=$?
bad="$(jq -r 'select(.type == "check" and .data.status == "fail") | .data.id' /var/log/lxcprov-lab-verify.jsonl | sort -u | tr '\n' ' ')"
log "lab verify exit $rc; failed checks: ${bad:-none}"
[[ $rc -eq 0 && -z "$bad" ]] || fail "lab verify: exit $rc, failed: $bad"
log "lab $lab is up and verified"
