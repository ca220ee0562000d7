//! What a student changed, as one plain tar archive (`lab collect`): an overlay container's
//! writable layer under `files/`, and lxcprov's own notes under `lxcprov/`. The student's
//! content is data: GNU tar stores symbolic links as links (never followed), and FIFOs,
//! sockets and devices as entries (never opened); the size is checked before anything is
//! written, so the teacher's disk is never filled.

use super::Overlay;
use crate::exec::{Cmd, Runner};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One archive written.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Archive {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
}

/// What a student changed: an overlay container's layer, or the entries of a copy-storage
/// container's tree that differ from its golden base ([`super::diff::changes`]).
pub enum Source<'a> {
    Layer(&'a Overlay),
    Listed { root: &'a Path, changes: &'a super::diff::Changes },
}

/// Archives `o`'s layer into `out`; see [`archive`].
pub fn archive_layer(
    runner: &dyn Runner,
    o: &Overlay,
    notes: &[(&str, Vec<u8>)],
    out: &Path,
    max: u64,
) -> Result<Archive> {
    archive(runner, &Source::Layer(o), notes, out, max)
}

/// Archives what `src` holds into `out` (a new file) under `files/`, with `notes` (name,
/// content) under `lxcprov/`. Refused, before anything is written, when the changes hold more
/// than `max` bytes or `out`'s file system has less room than they need.
pub fn archive(runner: &dyn Runner, src: &Source, notes: &[(&str, Vec<u8>)], out: &Path, max: u64) -> Result<Archive> {
    let (root, size) = match src {
        Source::Layer(o) => (o.upper(), crate::fsutil::tree_bytes(&o.upper())),
        Source::Listed { root, changes } => (root.to_path_buf(), changes.bytes),
    };
    if size > max {
        bail!(
            "{} holds {size} bytes of changes, more than the limit of {max} bytes: not collected (the student's own files; raise --max-mib to take them)",
            root.display()
        );
    }
    let dir = out.parent().context("archive path")?;
    crate::fsutil::check_room(dir, size + (1 << 20)).with_context(|| format!("collecting into {}", dir.display()))?;
    if std::fs::symlink_metadata(out).is_ok() {
        bail!("{} exists; lxcprov never overwrites an archive: collect into an empty directory", out.display());
    }
    let staging = tempfile::Builder::new().prefix(".lxcprov-collect-").tempdir_in(dir)?;
    std::fs::create_dir(staging.path().join("lxcprov"))?;
    for (name, content) in notes {
        std::fs::write(staging.path().join("lxcprov").join(name), content)?;
    }
    // A copy's changes are a list of entries, each archived alone (a listed directory is
    // not recursed into: what changed below it is listed itself).
    let list = staging.path().join("entries");
    if let Source::Listed { changes, .. } = src {
        let mut l = Vec::new();
        for p in &changes.changed {
            l.extend_from_slice(b"./");
            l.extend_from_slice(p.as_os_str().as_encoded_bytes());
            l.push(0);
        }
        std::fs::write(&list, l)?;
    }
    let tmp = dir.join(format!(".{}.partial", out.file_name().and_then(|n| n.to_str()).unwrap_or("archive")));
    let _ = std::fs::remove_file(&tmp);
    // `./x` of the layer becomes `files/x` (symbolic links' targets left as they are).
    let cmd = Cmd::new("tar")
        .args(["--create", "--format=posix", "--sparse", "--numeric-owner", "--xattrs", "--acls"])
        .arg("--file")
        .arg(tmp.display().to_string())
        .arg("--directory")
        .arg(staging.path().display().to_string())
        .arg("lxcprov")
        .args(["--transform", "s,^\\.,files,S"])
        .arg("--directory")
        .arg(root.display().to_string());
    let cmd = match src {
        Source::Layer(_) => cmd.arg("."),
        Source::Listed { .. } => cmd
            .args(["--no-recursion", "--null", "--verbatim-files-from", "--files-from"])
            .arg(list.display().to_string()),
    };
    let r = runner.run(&cmd, &mut |_| {}).map_err(anyhow::Error::new).context("writing the archive");
    if let Err(e) = r {
        let _ = std::fs::remove_file(&tmp);
        return Err(crate::fsutil::explain_disk_full(e, dir));
    }
    std::fs::rename(&tmp, out).with_context(|| format!("renaming {} to {}", tmp.display(), out.display()))?;
    let bytes = std::fs::metadata(out)?.len();
    Ok(Archive { path: out.to_path_buf(), bytes, sha256: crate::fsutil::sha256_file(out)? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn layer(pool: &Path) -> Overlay {
        let o = Overlay::new(pool, "lab-s01", &pool.join("cache"), "k", None, false);
        std::fs::create_dir_all(o.upper().join("root")).unwrap();
        o
    }

    /// A student's link, FIFO and 64 GiB sparse file are data: archived as they are, at once,
    /// and nothing of the host is in the archive.
    #[test]
    fn a_students_links_fifos_and_sparse_files_are_archived_as_data_never_followed_or_opened() {
        let d = tempfile::tempdir().unwrap();
        let o = layer(&d.path().join("pool"));
        let root = o.upper().join("root");
        std::fs::write(root.join("work.txt"), "mine\n").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", root.join("host-link")).unwrap();
        let fifo = std::ffi::CString::new(root.join("fifo").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::fs::File::create(root.join("big")).unwrap().set_len(64 << 30).unwrap();
        // A device node (root only can make one): an entry, never opened.
        // SAFETY: geteuid has no preconditions.
        let root_user = unsafe { libc::geteuid() } == 0;
        if root_user {
            let dev = std::ffi::CString::new(root.join("tty").as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a NUL-terminated path; a character device 5:0 (/dev/tty's numbers).
            assert_eq!(unsafe { libc::mknod(dev.as_ptr(), libc::S_IFCHR | 0o600, libc::makedev(5, 0)) }, 0);
        }
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (o2, out2) = (o.clone(), out.clone());
        std::thread::spawn(move || {
            let notes = [("verify.jsonl", b"{}\n".to_vec())];
            let r = archive_layer(&crate::exec::SystemRunner::default(), &o2, &notes, &out2.join("s01.tar"), 1 << 20);
            let _ = tx.send(r.map_err(|e| format!("{e:#}")));
        });
        let a = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("archiving hung").unwrap();
        assert!(a.bytes < 1 << 20, "the sparse file was stored whole: {} bytes", a.bytes);
        assert_eq!(a.sha256, crate::fsutil::sha256_file(&a.path).unwrap());
        let x = d.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let ok = std::process::Command::new("tar").arg("-xf").arg(&a.path).arg("-C").arg(&x).status().unwrap();
        assert!(ok.success());
        assert_eq!(std::fs::read_to_string(x.join("files/root/work.txt")).unwrap(), "mine\n");
        assert_eq!(std::fs::read_link(x.join("files/root/host-link")).unwrap(), Path::new("/etc/shadow"));
        assert!(std::fs::symlink_metadata(x.join("files/root/fifo")).unwrap().file_type().is_fifo());
        assert_eq!(std::fs::metadata(x.join("files/root/big")).unwrap().len(), 64 << 30);
        if root_user {
            assert!(std::fs::symlink_metadata(x.join("files/root/tty")).unwrap().file_type().is_char_device());
        }
        assert_eq!(std::fs::read_to_string(x.join("lxcprov/verify.jsonl")).unwrap(), "{}\n");
        let names: Vec<_> = std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(names, ["s01.tar"], "staging or partial files were left");
    }

    /// Changes beyond the limit are refused up front, and nothing is written.
    #[test]
    fn changes_beyond_the_limit_are_refused_before_anything_is_written() {
        let d = tempfile::tempdir().unwrap();
        let o = layer(&d.path().join("pool"));
        std::fs::write(o.upper().join("root/huge"), vec![7u8; 256 << 10]).unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let e =
            archive_layer(&crate::exec::SystemRunner::default(), &o, &[], &out.join("s01.tar"), 64 << 10).unwrap_err();
        let e = format!("{e:#}");
        assert!(e.contains("more than the limit") && !e.contains('\n'), "{e}");
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
        // An existing archive is never overwritten.
        std::fs::write(out.join("s01.tar"), "old").unwrap();
        let e =
            archive_layer(&crate::exec::SystemRunner::default(), &o, &[], &out.join("s01.tar"), 1 << 30).unwrap_err();
        assert!(format!("{e:#}").contains("never overwrites"));
        assert_eq!(std::fs::read_to_string(out.join("s01.tar")).unwrap(), "old");
    }

    /// A copy-storage container: only the entries that differ from its base are archived,
    /// each alone (an unchanged file beside a changed one stays out), links as links.
    #[test]
    fn a_copys_changes_are_archived_entry_by_entry() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("base");
        std::fs::create_dir_all(base.join("etc")).unwrap();
        std::fs::write(base.join("etc/keep"), "same\n").unwrap();
        std::fs::write(base.join("etc/motd"), "hello\n").unwrap();
        let tree = d.path().join("tree");
        assert!(std::process::Command::new("cp").arg("-a").arg(&base).arg(&tree).status().unwrap().success());
        std::fs::write(tree.join("etc/motd"), "mine\n").unwrap();
        std::fs::create_dir_all(tree.join("root/a b")).unwrap();
        std::fs::write(tree.join("root/a b/new\nline"), "x").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", tree.join("root/host-link")).unwrap();
        let c = crate::storage::diff::changes(&base, &tree, None).unwrap();
        let out = d.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let src = Source::Listed { root: &tree, changes: &c };
        let a = archive(&crate::exec::SystemRunner::default(), &src, &[], &out.join("s01.tar"), 1 << 20).unwrap();
        let x = d.path().join("x");
        std::fs::create_dir(&x).unwrap();
        assert!(std::process::Command::new("tar")
            .arg("-xf")
            .arg(&a.path)
            .arg("-C")
            .arg(&x)
            .status()
            .unwrap()
            .success());
        assert_eq!(std::fs::read_to_string(x.join("files/etc/motd")).unwrap(), "mine\n");
        assert!(!x.join("files/etc/keep").exists(), "an unchanged file was archived");
        assert_eq!(std::fs::read_to_string(x.join("files/root/a b/new\nline")).unwrap(), "x");
        assert_eq!(std::fs::read_link(x.join("files/root/host-link")).unwrap(), Path::new("/etc/shadow"));
        // Beyond the limit: refused before anything is written.
        let e = archive(&crate::exec::SystemRunner::default(), &src, &[], &out.join("s02.tar"), 1).unwrap_err();
        assert!(format!("{e:#}").contains("more than the limit"));
        assert!(!out.join("s02.tar").exists());
    }
}
