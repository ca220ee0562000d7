//! Ownership across user namespaces: shifting a tree's owners for an id map, with its
//! file capabilities (rewritten for the namespace's root, VFS caps v3) and ACL entries, and
//! the pool's search-only ACL entries for container root uids.

use anyhow::{bail, Context, Result};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Shifts the ownership of every file under `root` by `uid_off`/`gid_off` (for a user
/// namespace), without following symlinks. Ids outside [0, count) are left alone.
pub fn shift_ownership(root: &Path, uid_off: u32, gid_off: u32, count: u32) -> Result<u64> {
    let mut n = 0u64;
    let dev = fs::symlink_metadata(root)?.dev();
    shift_rec(root, dev, uid_off, gid_off, count, &mut n)
        .with_context(|| format!("shifting ownership in {}", root.display()))?;
    Ok(n)
}

fn shift_rec(p: &Path, dev: u64, uo: u32, go: u32, count: u32, n: &mut u64) -> std::io::Result<()> {
    let m = fs::symlink_metadata(p)?;
    if m.dev() != dev {
        return Ok(());
    }
    if shift_entry(p, &m, uo, go, count)? {
        *n += 1;
    }
    if m.is_dir() {
        for e in fs::read_dir(p)? {
            shift_rec(&e?.path(), dev, uo, go, count, n)?;
        }
    }
    Ok(())
}

/// Shifts one file (not its children) as [`shift_ownership`] does; true when its owner changed.
pub fn shift_one(p: &Path, uid_off: u32, gid_off: u32, count: u32) -> std::io::Result<bool> {
    let m = fs::symlink_metadata(p)?;
    shift_entry(p, &m, uid_off, gid_off, count)
}

fn shift_entry(p: &Path, m: &fs::Metadata, uo: u32, go: u32, count: u32) -> std::io::Result<bool> {
    let (uid, gid) = (m.uid(), m.gid());
    let nu = if uid < count { uid + uo } else { uid };
    let ng = if gid < count { gid + go } else { gid };
    let changed = (nu, ng) != (uid, gid);
    if changed {
        // chown drops file capabilities; they are written back for the namespace's root.
        let caps = if m.is_file() { get_xattr(p, CAP_XATTR)? } else { None };
        // lchown resets setuid/setgid bits on regular files; restore the mode afterwards.
        std::os::unix::fs::lchown(p, Some(nu), Some(ng))?;
        if !m.file_type().is_symlink() && m.mode() & 0o6000 != 0 {
            fs::set_permissions(p, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
        if let Some(c) = caps {
            if let Some(v3) = caps_for_namespace(&c, uo, count) {
                set_xattr(p, CAP_XATTR, &v3)?;
            }
        }
    }
    // ACL entries name uids and gids too: shift those in [0, count).
    if !m.file_type().is_symlink() {
        for (name, is_default) in [(ACL_ACCESS, false), (ACL_DEFAULT, true)] {
            if is_default && !m.is_dir() {
                continue;
            }
            if let Some(acl) = get_xattr(p, name)? {
                if let Some(shifted) = shift_acl(&acl, uo, go, count) {
                    set_xattr(p, name, &shifted)?;
                }
            }
        }
    }
    Ok(changed)
}

/// The pool: created `0700`; an existing one loses every bit for others and group write
/// and read, but keeps the ACL mask's search bit (`--x`), which carries the container roots'
/// [`grant_traverse`] entries.
pub fn ensure_pool(path: &Path) -> Result<()> {
    if fs::symlink_metadata(path).is_err() {
        return super::ensure_private_dir(path, crate::paths::POOL_MODE);
    }
    let m = fs::symlink_metadata(path).with_context(|| format!("inspecting {}", path.display()))?;
    if m.file_type().is_symlink() || !m.is_dir() {
        bail!("{} is not a directory", path.display());
    }
    let mode = m.mode() & 0o7777;
    let want = mode & 0o710;
    if mode != want {
        fs::set_permissions(path, fs::Permissions::from_mode(want))
            .with_context(|| format!("narrowing {} to mode {want:o}", path.display()))?;
    }
    Ok(())
}

/// Gives `uid` search permission (`--x`) on `dir` through a POSIX ACL entry, leaving the
/// other entries as they are (the mask becomes `--x`, so group and others still get
/// nothing beyond what the mode allowed).
pub fn grant_traverse(dir: &Path, uid: u32) -> Result<()> {
    const USER_OBJ: u16 = 0x01;
    const USER: u16 = 0x02;
    const GROUP_OBJ: u16 = 0x04;
    const MASK: u16 = 0x10;
    const OTHER: u16 = 0x20;
    let m = fs::symlink_metadata(dir).with_context(|| format!("inspecting {}", dir.display()))?;
    let mode = m.mode();
    let mut entries: Vec<(u16, u16, u32)> = match get_xattr(dir, ACL_ACCESS)? {
        Some(x) if x.len() >= 4 && (x.len() - 4).is_multiple_of(8) => x[4..]
            .chunks_exact(8)
            .map(|e| {
                (
                    u16::from_le_bytes([e[0], e[1]]),
                    u16::from_le_bytes([e[2], e[3]]),
                    u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
                )
            })
            .collect(),
        _ => vec![
            (USER_OBJ, ((mode >> 6) & 7) as u16, u32::MAX),
            (GROUP_OBJ, ((mode >> 3) & 7) as u16, u32::MAX),
            (OTHER, (mode & 7) as u16, u32::MAX),
        ],
    };
    if entries.iter().any(|e| e.0 == USER && e.2 == uid && e.1 & 1 == 1)
        && entries.iter().any(|e| e.0 == MASK && e.1 & 1 == 1)
    {
        return Ok(());
    }
    entries.retain(|e| !(e.0 == USER && e.2 == uid) && e.0 != MASK);
    entries.push((USER, 1, uid));
    let group_class = entries.iter().filter(|e| matches!(e.0, USER | GROUP_OBJ | 0x08)).fold(0, |a, e| a | e.1);
    entries.push((MASK, group_class, u32::MAX));
    entries.sort_by_key(|e| (e.0, e.2));
    let mut x = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        x.extend_from_slice(&tag.to_le_bytes());
        x.extend_from_slice(&perm.to_le_bytes());
        x.extend_from_slice(&id.to_le_bytes());
    }
    set_xattr(dir, ACL_ACCESS, &x).with_context(|| format!("letting uid {uid} traverse {}", dir.display()))
}

const CAP_XATTR: &str = "security.capability";
const ACL_ACCESS: &str = "system.posix_acl_access";
const ACL_DEFAULT: &str = "system.posix_acl_default";

fn get_xattr(p: &Path, name: &str) -> std::io::Result<Option<Vec<u8>>> {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())?;
    let name = std::ffi::CString::new(name)?;
    let mut buf = vec![0u8; 256];
    // SAFETY: valid NUL-terminated strings and a buffer of the given length.
    let r = unsafe { libc::lgetxattr(path.as_ptr(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENODATA) | Some(libc::ENOTSUP) => Ok(None),
            Some(libc::ERANGE) => Err(std::io::Error::other(format!("{}: oversized {name:?}", p.display()))),
            _ => Err(e),
        };
    }
    buf.truncate(r as usize);
    Ok(Some(buf))
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) -> std::io::Result<()> {
    let path = std::ffi::CString::new(p.as_os_str().as_encoded_bytes())?;
    let cname = std::ffi::CString::new(name)?;
    // SAFETY: valid NUL-terminated strings and a value buffer of the given length.
    let r = unsafe { libc::lsetxattr(path.as_ptr(), cname.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    if r < 0 {
        return Err(std::io::Error::other(format!(
            "{}: writing {name}: {}",
            p.display(),
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

const VFS_CAP_REVISION_2: u32 = 0x0200_0000;
const VFS_CAP_REVISION_3: u32 = 0x0300_0000;
const VFS_CAP_REVISION_MASK: u32 = 0xFF00_0000;

/// A file-capability xattr rewritten for a user namespace whose root is host uid `root`
/// (VFS caps v3: the capabilities apply only where `root` is uid 0). A v2 xattr (no root
/// id, host-wide) or a v3 one whose root id is below `count` (written inside a namespace
/// of the unshifted tree) gets `root` (+ its old id). `None` when it is not understood.
pub fn caps_for_namespace(x: &[u8], root: u32, count: u32) -> Option<Vec<u8>> {
    let magic = u32::from_le_bytes(x.get(0..4)?.try_into().ok()?);
    let (body, old_root) = match magic & VFS_CAP_REVISION_MASK {
        VFS_CAP_REVISION_2 if x.len() == 20 => (&x[4..20], 0),
        VFS_CAP_REVISION_3 if x.len() == 24 => (&x[4..20], u32::from_le_bytes(x[20..24].try_into().ok()?)),
        _ => return None,
    };
    if old_root >= count {
        return None; // already a host id outside the map: leave it
    }
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(&(VFS_CAP_REVISION_3 | (magic & !VFS_CAP_REVISION_MASK)).to_le_bytes());
    v.extend_from_slice(body);
    v.extend_from_slice(&root.checked_add(old_root)?.to_le_bytes());
    Some(v)
}

/// A POSIX ACL xattr with its named-user and named-group ids in [0, count) shifted.
/// `None` when nothing changes or it is not understood.
pub fn shift_acl(x: &[u8], uo: u32, go: u32, count: u32) -> Option<Vec<u8>> {
    const ACL_USER: u16 = 0x02;
    const ACL_GROUP: u16 = 0x08;
    if x.len() < 4 || !(x.len() - 4).is_multiple_of(8) || u32::from_le_bytes(x[0..4].try_into().ok()?) != 2 {
        return None;
    }
    let mut out = x.to_vec();
    let mut changed = false;
    for e in out[4..].chunks_exact_mut(8) {
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let off = match tag {
            ACL_USER => uo,
            ACL_GROUP => go,
            _ => continue,
        };
        let id = u32::from_le_bytes(e[4..8].try_into().ok()?);
        if id < count {
            e[4..8].copy_from_slice(&(id.checked_add(off)?).to_le_bytes());
            changed = true;
        }
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_capabilities_become_v3_for_the_namespace_root() {
        // cap_net_raw (bit 13) permitted + effective, v2.
        let mut v2 = (VFS_CAP_REVISION_2 | 1).to_le_bytes().to_vec();
        v2.extend_from_slice(&(1u32 << 13).to_le_bytes());
        v2.extend_from_slice(&[0; 12]);
        let v3 = caps_for_namespace(&v2, 100000, 65536).unwrap();
        assert_eq!(v3.len(), 24);
        assert_eq!(u32::from_le_bytes(v3[0..4].try_into().unwrap()), VFS_CAP_REVISION_3 | 1);
        assert_eq!(&v3[4..20], &v2[4..20]);
        assert_eq!(u32::from_le_bytes(v3[20..24].try_into().unwrap()), 100000);
        // Already shifted (a root id outside the map): left alone; garbage: not understood.
        assert!(caps_for_namespace(&v3, 100000, 65536).is_none());
        assert!(caps_for_namespace(&[1, 2, 3], 100000, 65536).is_none());
        let mut inner = v3.clone();
        inner[20..24].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(
            u32::from_le_bytes(caps_for_namespace(&inner, 100000, 65536).unwrap()[20..24].try_into().unwrap()),
            100005
        );
    }

    #[test]
    fn acl_entries_are_shifted_like_owners() {
        // version 2; USER_OBJ; USER 1000; GROUP 50; MASK; OTHER; USER 70000 (outside the map).
        let mut acl = 2u32.to_le_bytes().to_vec();
        for (tag, id) in
            [(0x01u16, u32::MAX), (0x02, 1000), (0x08, 50), (0x10, u32::MAX), (0x20, u32::MAX), (0x02, 70000)]
        {
            acl.extend_from_slice(&tag.to_le_bytes());
            acl.extend_from_slice(&7u16.to_le_bytes());
            acl.extend_from_slice(&id.to_le_bytes());
        }
        let s = shift_acl(&acl, 100000, 200000, 65536).unwrap();
        let id = |i: usize| u32::from_le_bytes(s[4 + i * 8 + 4..4 + i * 8 + 8].try_into().unwrap());
        assert_eq!((id(1), id(2), id(5)), (101000, 200050, 70000));
        assert_eq!(id(0), u32::MAX);
        assert!(shift_acl(&s, 100000, 200000, 65536).is_none(), "shifting twice changes nothing");
    }

    #[test]
    fn container_roots_may_traverse_the_pool_and_nobody_else() {
        let d = tempfile::tempdir().unwrap();
        let pool = d.path().join("pool");
        ensure_pool(&pool).unwrap();
        assert_eq!(fs::metadata(&pool).unwrap().mode() & 0o7777, 0o700);
        grant_traverse(&pool, 200000).unwrap();
        grant_traverse(&pool, 300000).unwrap();
        grant_traverse(&pool, 200000).unwrap(); // idempotent
        let acl = get_xattr(&pool, ACL_ACCESS).unwrap().expect("an ACL");
        let users: Vec<(u16, u32)> = acl[4..]
            .chunks_exact(8)
            .filter(|e| u16::from_le_bytes([e[0], e[1]]) == 0x02)
            .map(|e| (u16::from_le_bytes([e[2], e[3]]), u32::from_le_bytes([e[4], e[5], e[6], e[7]])))
            .collect();
        assert_eq!(users, [(1, 200000), (1, 300000)]);
        // The mode shows the mask (--x) in the group bits; others still get nothing, and a
        // later ensure_pool keeps the mask.
        assert_eq!(fs::metadata(&pool).unwrap().mode() & 0o777, 0o710);
        ensure_pool(&pool).unwrap();
        assert_eq!(fs::metadata(&pool).unwrap().mode() & 0o777, 0o710);
    }
}
