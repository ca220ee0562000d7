#!/usr/bin/env bash
# Create (or refresh) a tiny busybox root filesystem for fast libvirt-LXC tests.
#
# Usage: scripts/lib/busybox-rootfs.sh [--hostname NAME] [--owner UID:GID] DIR
#
#   DIR               created if missing; must not resolve to /
#   --hostname NAME   written to DIR/etc/hostname (default: lxcprov-busybox); the init
#                     sets it at start (the UTS namespace is the container's own)
#   --owner UID:GID   chown the whole tree afterwards (e.g. 100000:100000 for a
#                     domain with <idmap>; libvirt does not chown the rootfs)
#
# Layout: bin/busybox (copied from busybox-static) + one symlink per applet in bin/,
# each pointing at /bin/busybox; sbin/init is a #!/bin/sh script that sets the hostname
# from /etc/hostname, then sleeps until SIGTERM/SIGINT/SIGPWR and exits 0. It also
# creates a /run/initctl FIFO and exits when anything is written to it, because
# libvirt 9.0's default `virsh shutdown` mode only uses initctl and sends no SIGTERM
# when no FIFO exists. So `virsh shutdown` (any --mode) and `virsh destroy` all work. Also etc/{passwd,group,shadow,hostname} and empty proc sys dev tmp run var.
# Idempotent: re-running rewrites the same content; a busybox binary in use is
# replaced by rename, never overwritten in place.
set -euo pipefail

prog=busybox-rootfs
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }
usage() { printf 'usage: %s [--hostname NAME] [--owner UID:GID] DIR\n' "$0" >&2; exit 2; }

hostname_value=lxcprov-busybox
owner=""
dir=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --hostname) [[ $# -ge 2 ]] || usage; hostname_value="$2"; shift 2 ;;
        --owner) [[ $# -ge 2 ]] || usage; owner="$2"; shift 2 ;;
        -h | --help) usage ;;
        --) shift; [[ $# -eq 1 ]] || usage; dir="$1"; shift ;;
        -*) usage ;;
        *) [[ -z "$dir" ]] || usage; dir="$1"; shift ;;
    esac
done
[[ -n "$dir" ]] || usage

# RFC 1123 host name: labels of [A-Za-z0-9-], no leading/trailing '-', <= 63 chars each.
label='[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?'
if ! [[ "$hostname_value" =~ ^${label}(\.${label})*$ ]] || ((${#hostname_value} > 253)); then
    die "invalid host name: $hostname_value"
fi
if [[ -n "$owner" ]] && ! [[ "$owner" =~ ^[0-9]+:[0-9]+$ ]]; then
    die "--owner must be numeric UID:GID, got: $owner"
fi

BUSYBOX_SRC=/bin/busybox
[[ -x "$BUSYBOX_SRC" ]] || die "$BUSYBOX_SRC missing (install busybox-static)"
if command -v file >/dev/null 2>&1 && ! file -L -- "$BUSYBOX_SRC" | grep -q 'statically linked'; then
    die "$BUSYBOX_SRC is not statically linked (install busybox-static, not busybox)"
fi

mkdir -p -- "$dir"
ROOT="$(cd -- "$dir" && pwd -P)"
[[ "$ROOT" != / ]] || die "refusing to build a rootfs in /"

# Write CONTENT (stdin) to FILE with MODE, atomically (temp file + rename).
put() { # FILE MODE
    local tmp
    tmp="$(mktemp -- "$1.XXXXXX")"
    cat >"$tmp"
    chmod -- "$2" "$tmp"
    mv -f -- "$tmp" "$1"
}

for d in bin sbin etc root proc sys dev tmp run var var/tmp var/log usr usr/bin usr/sbin; do
    mkdir -p -- "$ROOT/$d"
done
chmod 0755 -- "$ROOT"
chmod 1777 -- "$ROOT/tmp" "$ROOT/var/tmp"
chmod 0700 -- "$ROOT/root"

# busybox itself; replace by rename so a running container's binary is never truncated.
if ! cmp -s -- "$BUSYBOX_SRC" "$ROOT/bin/busybox"; then
    put "$ROOT/bin/busybox" 0755 <"$BUSYBOX_SRC"
fi

# Applet links, all absolute to /bin/busybox (valid inside the container). As root,
# let the static busybox create them itself inside a chroot (about 0.02 s); it never
# replaces existing entries, so a pass afterwards fixes missing or wrong links.
if [[ "$(id -u)" -eq 0 ]] && command -v chroot >/dev/null 2>&1; then
    chroot "$ROOT" /bin/busybox --install -s /bin 2>/dev/null || true
fi
declare -A wrong=()
while IFS= read -r name; do
    wrong["$name"]=1
done < <(find "$ROOT/bin" -maxdepth 1 -type l ! -lname /bin/busybox -printf '%f\n')
while IFS= read -r applet; do
    case "$applet" in
        "" | busybox | */* | . | ..) continue ;;
    esac
    link="$ROOT/bin/$applet"
    if [[ -L "$link" && -z "${wrong[$applet]:-}" ]]; then
        continue
    fi
    ln -sfn -- /bin/busybox "$link"
done < <("$BUSYBOX_SRC" --list)
[[ -L "$ROOT/bin/sh" ]] || die "busybox has no sh applet"

put "$ROOT/sbin/init" 0755 <<'EOF'
#!/bin/sh
# lxcprov busybox test init: set the host name, then idle until told to stop.
PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
if [ -r /etc/hostname ]; then
    read -r name </etc/hostname || true
    if [ -n "$name" ]; then
        hostname "$name" 2>/dev/null || true
    fi
fi
# PID 1 only receives signals it has handlers for: install them.
trap 'exit 0' TERM INT PWR
trap '' HUP
# libvirt 9.0's default `virsh shutdown` only writes to an initctl FIFO and sends no
# SIGTERM when the container has none: provide one and treat any request as poweroff.
rm -f /run/initctl
if mkfifo -m 0600 /run/initctl 2>/dev/null; then
    (
        trap - TERM INT PWR
        cat /run/initctl >/dev/null 2>&1
        kill -TERM 1
    ) &
fi
while :; do
    sleep 1 &
    wait $! 2>/dev/null || true
done
EOF

put "$ROOT/etc/passwd" 0644 <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
put "$ROOT/etc/group" 0644 <<'EOF'
root:x:0:
nogroup:x:65534:
EOF
put "$ROOT/etc/shadow" 0600 <<'EOF'
root:*:19000:0:99999:7:::
nobody:*:19000:0:99999:7:::
EOF
printf '%s\n' "$hostname_value" | put "$ROOT/etc/hostname" 0644
put "$ROOT/etc/hosts" 0644 <<EOF
127.0.0.1	localhost
::1	localhost
127.0.1.1	$hostname_value
EOF

if [[ -n "$owner" ]]; then
    chown -hR -- "$owner" "$ROOT"
fi
