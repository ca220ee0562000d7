#!/usr/bin/env bash
# Build a throwaway local rpm repository layout for lxcprov's tests of dnf GPG checking.
#
# Usage: scripts/make-test-repo.sh OUTDIR
#
# Creates (everything inside OUTDIR; the caller's keyring and ~/.rpmmacros are not used):
#   OUTDIR/RPM-GPG-KEY-lxcprov-test  armoured public half of a fresh throwaway key
#   OUTDIR/signed/     lxcprov-hello + lxcprov-base, signed, createrepo_c metadata
#   OUTDIR/unsigned/   the same two rpms, unsigned
#   OUTDIR/tampered/   signed copies; one payload byte of lxcprov-hello flipped after
#                      signing, metadata generated afterwards (so checksums match and
#                      only the signature/digest check can catch it)
#   OUTDIR/native/     signed lxcprov-base + lxcprov-hello + lxcprov-rpm: a real rpm
#                      binary (the host's, with the libraries it links and its macros,
#                      %_dbpath /var/lib/rpm), so the guest's own `rpm -qa` reads its database;
#                      + lxcprov-busybox (static busybox, an idle init): a tree that boots
#   OUTDIR/wrongdb/    the same, but lxcprov-rpm's macros say %_dbpath
#                      /usr/lib/sysimage/rpm: the guest's rpm cannot see what was installed
# On success prints, on stdout, one KEY=PATH line each:
#   key=... signed=... unsigned=... tampered=... native=... wrongdb=...
# Idempotent: OUTDIR/.complete holds the hash of this script; when it matches, nothing
# is rebuilt. Concurrent runs on the same OUTDIR serialise on OUTDIR/.lock.
# Needs: rpmbuild (rpm), rpmsign, createrepo_c, gpg, gpgconf, sha256sum, flock.
set -euo pipefail

prog=make-test-repo
log() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

if [[ $# -ne 1 || -z "$1" || "$1" == -* ]]; then
    printf 'usage: %s OUTDIR\n' "$0" >&2
    exit 2
fi

for tool in rpmbuild rpmsign rpmkeys createrepo_c gpg gpgconf sha256sum flock od dd; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (packages: rpm createrepo-c gnupg coreutils util-linux)"
done
GPG_BIN="$(command -v gpg)"

SCRIPT_PATH="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
SCRIPT_HASH="$(sha256sum -- "$SCRIPT_PATH" | cut -d' ' -f1)"

mkdir -p -- "$1"
OUTDIR="$(cd -- "$1" && pwd -P)"
[[ "$OUTDIR" != / ]] || die "refusing to use / as OUTDIR"

KEY_FILE="$OUTDIR/RPM-GPG-KEY-lxcprov-test"
KEY_EMAIL="lxcprov-test@example.invalid"

print_paths() {
    printf 'key=%s\n' "$KEY_FILE"
    printf 'signed=%s\n' "$OUTDIR/signed"
    printf 'unsigned=%s\n' "$OUTDIR/unsigned"
    printf 'native=%s\n' "$OUTDIR/native"
    printf 'wrongdb=%s\n' "$OUTDIR/wrongdb"
    printf 'tampered=%s\n' "$OUTDIR/tampered"
}

is_complete() {
    local got=""
    [[ -f "$OUTDIR/.complete" ]] || return 1
    IFS= read -r got <"$OUTDIR/.complete" || true
    [[ "$got" == "$SCRIPT_HASH" ]]
}

if is_complete; then
    print_paths
    exit 0
fi

exec 9>"$OUTDIR/.lock"
flock 9
if is_complete; then # another run finished while we waited for the lock
    print_paths
    exit 0
fi

start_ns="$(date +%s%N)"
log "building test repositories in $OUTDIR"

# Only ever remove what this script creates.
rm -f -- "$OUTDIR/.complete" "$KEY_FILE"
for d in gnupg home rpmbuild signed unsigned tampered native wrongdb; do
    rm -rf -- "${OUTDIR:?}/$d"
done

# gpg-agent sockets live in GNUPGHOME unless /run/user/UID exists, and Unix socket
# paths are limited to 107 bytes: for a long OUTDIR, reach GNUPGHOME via a short symlink.
GNUPGHOME="$OUTDIR/gnupg"
install -d -m 0700 -- "$GNUPGHOME"
SHORT_GPG_DIR=""
if [[ ! -d "/run/user/$(id -u)" ]] && ((${#GNUPGHOME} > 80)); then
    SHORT_GPG_DIR="$(mktemp -d /tmp/lxcprov-gpg.XXXXXX)"
    ln -s -- "$GNUPGHOME" "$SHORT_GPG_DIR/h"
    GNUPGHOME="$SHORT_GPG_DIR/h"
fi
export GNUPGHOME
# Private HOME so neither the caller's ~/.rpmmacros nor ~/.rpmdb is used.
HOME="$OUTDIR/home"
export HOME
mkdir -p -- "$HOME"

cleanup() {
    gpgconf --kill all >/dev/null 2>&1 || true
    if [[ -n "$SHORT_GPG_DIR" ]]; then
        rm -rf -- "$SHORT_GPG_DIR"
        SHORT_GPG_DIR=""
    fi
}
trap cleanup EXIT

# ---- throwaway signing key ----------------------------------------------------------
cat >"$GNUPGHOME/keyparams" <<EOF
%no-protection
Key-Type: RSA
Key-Length: 2048
Key-Usage: sign
Name-Real: lxcprov test signing key
Name-Comment: throwaway, for tests only
Name-Email: $KEY_EMAIL
Expire-Date: 0
%commit
EOF
gpg --batch --quiet --gen-key "$GNUPGHOME/keyparams" 2>/dev/null \
    || gpg --batch --gen-key "$GNUPGHOME/keyparams" \
    || die "gpg --gen-key failed"
gpg --batch --armor --export "$KEY_EMAIL" >"$KEY_FILE.tmp"
[[ -s "$KEY_FILE.tmp" ]] || die "exporting the public key failed"
mv -f -- "$KEY_FILE.tmp" "$KEY_FILE"

# ---- two tiny noarch rpms -----------------------------------------------------------
TOPDIR="$OUTDIR/rpmbuild"
mkdir -p -- "$TOPDIR"/{BUILD,BUILDROOT,RPMS,SOURCES,SPECS,SRPMS}

# Common preamble: no debuginfo, no brp-* post-processing (Debian lacks the RHEL helpers),
# fixed timestamps are not needed.
write_spec() { # NAME SUMMARY FILEPATH CONTENT
    local name="$1" summary="$2" path="$3" content="$4"
    cat >"$TOPDIR/SPECS/$name.spec" <<EOF
%define __os_install_post %{nil}
%define debug_package %{nil}
%define _build_id_links none

Name:           $name
Version:        1.0
Release:        1
Summary:        $summary
License:        MIT
BuildArch:      noarch
AutoReqProv:    no

%description
$summary. Built by lxcprov's scripts/make-test-repo.sh for tests only.

%prep

%build

%install
mkdir -p "%{buildroot}$(dirname -- "$path")"
echo '$content' > "%{buildroot}$path"

%files
$path

%changelog
* Thu Jan 01 2026 lxcprov tests <$KEY_EMAIL> - 1.0-1
- test package
EOF
}

write_spec lxcprov-hello "lxcprov test package hello" /usr/share/lxcprov-hello/hello.txt "hello from lxcprov-hello"
write_spec lxcprov-base "lxcprov test base release file" /etc/lxcprov-base-release "lxcprov-base release 1.0"

# rpmbuild of SPECS/NAME.spec into TOPDIR, quietly; WHAT names it in the error.
build_spec() { # NAME [WHAT]
    rpmbuild -bb --nodeps --quiet --define "_topdir $TOPDIR" --define '_build_id_links none' \
        "$TOPDIR/SPECS/$1.spec" >/dev/null || die "rpmbuild of ${2:-$1} failed"
}
# The preamble of the generated specs: no debuginfo, no brp-* post-processing.
spec_preamble() {
    printf '%s\n' '%define __os_install_post %{nil}' '%define debug_package %{nil}' '%define _build_id_links none' ''
}

for name in lxcprov-hello lxcprov-base; do
    build_spec "$name"
done

# lxcprov-rpm: the host's rpm as the guest's own package manager (a real binary with the
# libraries it links), in two flavours: its database where dnf writes it, and elsewhere.
write_rpm_spec() { # NAME DBPATH
    local name="$1" dbpath="$2" files lib f
    files="/usr/bin/rpm
/usr/lib/rpm/rpmrc
/usr/lib/rpm/macros
/etc/rpm/macros.lxcprov-dbpath"
    for lib in $(ldd /usr/bin/rpm | grep -o '/[^ ]*' | sort -u); do
        files+=$'\n'"$lib"
    done
    {
        spec_preamble
        printf 'Name: %s\nVersion: 1.0\nRelease: 1\nSummary: rpm for lxcprov tests\nLicense: GPL-2.0-or-later\nAutoReqProv: no\n\n' "$name"
        printf '%%description\nThe host rpm with its libraries, for lxcprov package-database tests.\n\n%%prep\n\n%%build\n\n%%install\n'
        while read -r f; do
            [[ "$f" == /etc/rpm/macros.lxcprov-dbpath ]] && continue
            printf 'mkdir -p "%%{buildroot}%s"\ncp -L "%s" "%%{buildroot}%s"\n' "$(dirname -- "$f")" "$f" "$f"
        done <<<"$files"
        printf 'mkdir -p "%%{buildroot}/etc/rpm"\necho "%%%%_dbpath %s" > "%%{buildroot}/etc/rpm/macros.lxcprov-dbpath"\n' "$dbpath"
        printf '\n%%files\n%s\n' "$files"
    } >"$TOPDIR/SPECS/$name.spec"
}
build_rpm_pkg() { # DBPATH OUTSUBDIR
    write_rpm_spec lxcprov-rpm "$1"
    build_spec lxcprov-rpm "lxcprov-rpm ($1)"
    mkdir -p -- "$OUTDIR/$2"
    mv -- "$TOPDIR"/RPMS/*/lxcprov-rpm-1.0-1.*.rpm "$OUTDIR/$2/"
}
build_rpm_pkg /var/lib/rpm native
build_rpm_pkg /usr/lib/sysimage/rpm wrongdb

# lxcprov-busybox: a bootable userland (static busybox, its applets, an init that idles
# until stopped, /etc/passwd and friends: scripts/lib/busybox-rootfs.sh's tree), so the
# native repository installs a tree that boots as a container. busybox's own `rpm` applet
# is left out: `rpm` in the guest is lxcprov-rpm's.
BB_STAGE="$OUTDIR/rpmbuild/bbstage"
"$(dirname -- "$SCRIPT_PATH")/lib/busybox-rootfs.sh" --hostname lxcprov-rpm-guest "$BB_STAGE" >/dev/null \
    || die "busybox-rootfs.sh failed (busybox-static installed?)"
rm -f -- "$BB_STAGE/bin/rpm" "$BB_STAGE/bin/rpm2cpio"
{
    spec_preamble
    printf 'Name: lxcprov-busybox\nVersion: 1.0\nRelease: 1\nSummary: busybox userland for lxcprov tests\nLicense: GPL-2.0-only\nAutoReqProv: no\n\n'
    printf '%%description\nA static busybox with an idle init, for lxcprov container tests.\n\n%%prep\n\n%%build\n\n%%install\n'
    printf 'mkdir -p "%%{buildroot}"\ncp -a "%s/." "%%{buildroot}/"\n' "$BB_STAGE"
    printf '\n%%files\n'
    (cd "$BB_STAGE" && find . -mindepth 1 -type d -printf '%%%%dir /%P\n' && find . -mindepth 1 ! -type d -printf '/%P\n')
} >"$TOPDIR/SPECS/lxcprov-busybox.spec"
build_spec lxcprov-busybox
for d in native wrongdb; do
    cp -- "$TOPDIR"/RPMS/*/lxcprov-busybox-1.0-1.*.rpm "$OUTDIR/$d/"
done

HELLO_RPM="lxcprov-hello-1.0-1.noarch.rpm"
BASE_RPM="lxcprov-base-1.0-1.noarch.rpm"
for f in "$HELLO_RPM" "$BASE_RPM"; do
    [[ -s "$TOPDIR/RPMS/noarch/$f" ]] || die "rpmbuild did not produce $f"
done

mkdir -p -- "$OUTDIR/unsigned" "$OUTDIR/signed" "$OUTDIR/tampered"
for f in "$HELLO_RPM" "$BASE_RPM"; do
    cp -- "$TOPDIR/RPMS/noarch/$f" "$OUTDIR/unsigned/$f"
    cp -- "$TOPDIR/RPMS/noarch/$f" "$OUTDIR/signed/$f"
done

# ---- sign -----------------------------------------------------------------------
# Debian's rpm defaults %__gpg to /usr/bin/gpg2, which does not exist.
GPG_TTY=/dev/null rpmsign --define "__gpg $GPG_BIN" \
    --define "_gpg_name $KEY_EMAIL" \
    --define "_gpg_path $GNUPGHOME" \
    --addsign "$OUTDIR/signed/$HELLO_RPM" "$OUTDIR/signed/$BASE_RPM" >/dev/null \
    || die "rpmsign failed"

for f in "$HELLO_RPM" "$BASE_RPM"; do
    cp -- "$OUTDIR/signed/$f" "$OUTDIR/tampered/$f"
    cp -- "$OUTDIR/signed/$f" "$OUTDIR/native/$f"
    cp -- "$OUTDIR/signed/$f" "$OUTDIR/wrongdb/$f"
done
GPG_TTY=/dev/null rpmsign --define "__gpg $GPG_BIN" --define "_gpg_name $KEY_EMAIL" --define "_gpg_path $GNUPGHOME" \
    --addsign "$OUTDIR"/native/lxcprov-rpm-*.rpm "$OUTDIR"/wrongdb/lxcprov-rpm-*.rpm \
    "$OUTDIR"/native/lxcprov-busybox-*.rpm "$OUTDIR"/wrongdb/lxcprov-busybox-*.rpm >/dev/null \
    || die "rpmsign of lxcprov-rpm failed"

# ---- tamper: flip one byte in the middle of lxcprov-hello's payload ------------------
be32() { # FILE OFFSET -> unsigned big-endian 32-bit integer
    local -a b
    read -r -a b < <(od -An -v -tu1 -j "$2" -N 4 -- "$1")
    [[ ${#b[@]} -eq 4 ]] || die "short read in $1 at $2"
    printf '%d\n' $(((b[0] << 24) | (b[1] << 16) | (b[2] << 8) | b[3]))
}
payload_offset() { # FILE -> offset of the payload (after lead, signature header, header)
    local file="$1" off nidx hsize
    off=96 # rpm lead
    nidx="$(be32 "$file" $((off + 8)))"
    hsize="$(be32 "$file" $((off + 12)))"
    off=$((off + 16 + nidx * 16 + hsize))
    off=$(((off + 7) / 8 * 8)) # signature header is padded to 8 bytes
    nidx="$(be32 "$file" $((off + 8)))"
    hsize="$(be32 "$file" $((off + 12)))"
    printf '%d\n' $((off + 16 + nidx * 16 + hsize))
}
target="$OUTDIR/tampered/$HELLO_RPM"
size="$(stat -c %s -- "$target")"
poff="$(payload_offset "$target")"
((poff > 0 && poff < size)) || die "could not locate the payload of $target"
flip_at=$((poff + (size - poff) / 2))
orig="$(od -An -v -tu1 -j "$flip_at" -N 1 -- "$target" | tr -d ' ')"
new=$((orig ^ 0xff))
# shellcheck disable=SC2059 # octal escape built from a number, not input
printf "\\$(printf '%03o' "$new")" | dd of="$target" bs=1 seek="$flip_at" conv=notrunc status=none
log "flipped byte at offset $flip_at of $HELLO_RPM (payload starts at $poff, size $size): $orig -> $new"

# Sanity: digests of the signed rpms verify, the tampered one does not.
for f in "$HELLO_RPM" "$BASE_RPM"; do
    rpmkeys --checksig --nosignature -- "$OUTDIR/signed/$f" >/dev/null \
        || die "digest check of signed/$f failed"
done
if rpmkeys --checksig --nosignature -- "$target" >/dev/null 2>&1; then
    die "tampered/$HELLO_RPM still passes its digest check"
fi

# ---- index ----------------------------------------------------------------------
for d in signed unsigned tampered native wrongdb; do
    createrepo_c --quiet --no-database -- "$OUTDIR/$d" >/dev/null \
        || die "createrepo_c $OUTDIR/$d failed"
done

rm -rf -- "${OUTDIR:?}/rpmbuild"
cleanup
printf '%s\n' "$SCRIPT_HASH" >"$OUTDIR/.complete.tmp"
mv -f -- "$OUTDIR/.complete.tmp" "$OUTDIR/.complete"
log "done in $((($(date +%s%N) - start_ns) / 1000000)) ms"
print_paths
