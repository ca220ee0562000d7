//! The guest's own package database: after an install, the guest's own tool (`rpm -qa`,
//! `dpkg-query -W`, run inside the tree) must list what was installed, or the tree is not
//! moved into place. CentOS 7's rpm reads only Berkeley DB, which the host's rpm cannot
//! write: its packages are re-registered with the guest's own rpm (`--justdb`), from the
//! very package files the installer verified and kept in the package cache.
//!
//! Guest binaries run here (through `chroot`) only in trees lxcprov just installed from
//! signed packages, never in imported ones.

use crate::exec::{Cmd, Runner};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

pub use crate::distro::Family;

fn lines(runner: &dyn Runner, cmd: &Cmd) -> Result<Vec<String>> {
    let mut v = vec![];
    runner.run(cmd, &mut |l| v.push(l.to_string()))?;
    Ok(v.into_iter().filter(|l| !l.trim().is_empty()).collect())
}

/// The installed packages' file names (`N-V-R.A.rpm`), as the host's rpm wrote them.
fn host_rpm_files(runner: &dyn Runner, root: &Path, dbpath: &str) -> Result<Vec<String>> {
    let cmd = Cmd::new("rpm").arg("--root").arg(root.display().to_string()).arg("--dbpath").arg(dbpath).args([
        "-qa",
        "--qf",
        "%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}.rpm\\n",
    ]);
    // gpg-pubkey entries are imported keys, not packages: neither counted nor re-registered.
    let v = lines(runner, &cmd).context("listing the installed packages with the host's rpm")?;
    Ok(v.into_iter().filter(|l| !l.starts_with("gpg-pubkey-")).collect())
}

/// What the host-side installer installed: the number of packages.
pub fn installed_count(runner: &dyn Runner, family: Family, root: &Path, dbpath: &str) -> Result<usize> {
    match family {
        Family::Rpm => Ok(host_rpm_files(runner, root, dbpath)?.len()),
        Family::Dpkg => {
            let status = crate::fsutil::read_in(root, "/var/lib/dpkg/status")?.unwrap_or_default();
            Ok(status.split("\n\n").filter(|p| p.lines().any(|l| l == "Status: install ok installed")).count())
        }
    }
}

/// What the guest's own tool reads, or `None` when the guest has no such tool.
pub fn guest_count(runner: &dyn Runner, family: Family, root: &Path) -> Result<Option<usize>> {
    let (tool, args): (&str, &[&str]) = match family {
        Family::Rpm => ("/usr/bin/rpm", &["-qa", "--qf", "%{NAME}\\n"]),
        Family::Dpkg => ("/usr/bin/dpkg-query", &["-W", "-f", "${db:Status-Status}\\n"]),
    };
    if !root.join(tool.trim_start_matches('/')).exists() {
        return Ok(None);
    }
    let cmd = Cmd::new("chroot").arg(root.display().to_string()).arg(tool).args(args.iter().copied());
    let out = lines(runner, &cmd).with_context(|| format!("running the guest's own {tool}"))?;
    Ok(Some(match family {
        Family::Rpm => out.iter().filter(|l| l.trim() != "gpg-pubkey").count(),
        Family::Dpkg => out.iter().filter(|l| l.trim() == "installed").count(),
    }))
}

/// Refuses a tree whose own package manager does not read what was installed. Returns the
/// count (for the record), or `None` with a warning when the guest has no such tool.
pub fn check(
    runner: &dyn Runner,
    family: Family,
    root: &Path,
    dbpath: &str,
    expected: Option<usize>,
) -> Result<(Option<usize>, Option<String>)> {
    let want = match expected {
        Some(n) => n,
        None => installed_count(runner, family, root, dbpath)?,
    };
    let tool = match family {
        Family::Rpm => "rpm -qa",
        Family::Dpkg => "dpkg-query -W",
    };
    match guest_count(runner, family, root)? {
        None => Ok((None, Some(format!("the guest has no {tool}: it cannot manage its own packages ({want} installed)")))),
        Some(n) if n == want => Ok((Some(n), None)),
        Some(n) => bail!(
            "the guest's own `{tool}` lists {n} packages, but {want} were installed: its package database is in a format or place its own tools cannot read (rpmdb {dbpath}); the tree was not moved into place"
        ),
    }
}

/// Re-registers every installed package with the guest's own rpm (`--justdb`) into a fresh
/// database at `dbpath`, from the verified package files found under `search`. Returns the count.
pub fn register_with_guest_rpm(runner: &dyn Runner, root: &Path, search: &[PathBuf], dbpath: &str) -> Result<usize> {
    let files = host_rpm_files(runner, root, dbpath)?;
    if !root.join("usr/bin/rpm").exists() {
        bail!("the guest has no /usr/bin/rpm to write its own package database (install rpm in it)");
    }
    let mut found: Vec<PathBuf> = vec![];
    let mut index = std::collections::BTreeMap::new();
    for dir in search {
        collect_rpms(dir, &mut index);
    }
    for f in &files {
        match index.get(f) {
            Some(p) => found.push(p.clone()),
            None => bail!(
                "{f} is installed but its package file is in none of {}; cannot re-register it",
                search.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    let stage_rel = "/var/tmp/lxcprov-rpms";
    let stage = crate::fsutil::resolve_in(root, stage_rel)?;
    crate::fsutil::remove_tree(&stage)?;
    std::fs::create_dir_all(&stage)?;
    let r = (|| -> Result<usize> {
        let mut args = vec![];
        for p in &found {
            let name = p.file_name().context("rpm file")?;
            std::fs::copy(p, stage.join(name))?;
            args.push(format!("{stage_rel}/{}", name.to_string_lossy()));
        }
        let db = crate::fsutil::resolve_in(root, dbpath)?;
        let host_db =
            db.with_file_name(format!("{}.lxcprov-host", db.file_name().context("dbpath")?.to_string_lossy()));
        crate::fsutil::remove_tree(&host_db)?;
        std::fs::rename(&db, &host_db)
            .with_context(|| format!("moving the host-written database {} aside", db.display()))?;
        std::fs::create_dir_all(&db)?;
        let chroot =
            |a: &[&str]| Cmd::new("chroot").arg(root.display().to_string()).arg("/usr/bin/rpm").args(a.iter().copied());
        // No --initdb (rpm 4.18 moved it to rpmdb): installing into an empty directory
        // creates the database in the guest rpm's own format.
        let justdb = chroot(&[
            "-i",
            "--justdb",
            "--nodeps",
            "--noscripts",
            "--notriggers",
            "--nosignature",
            "--nodigest",
            "--ignoresize",
            "--dbpath",
            dbpath,
        ])
        .args(args);
        runner.run(&justdb, &mut |_| {}).context("re-registering the packages with the guest's own rpm")?;
        crate::fsutil::remove_tree(&host_db)?;
        Ok(found.len())
    })();
    let _ = crate::fsutil::remove_tree(&stage);
    r
}

fn collect_rpms(dir: &Path, out: &mut std::collections::BTreeMap<String, PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_rpms(&p, out),
            Ok(t) if t.is_file() && p.extension().is_some_and(|x| x == "rpm") => {
                out.insert(e.file_name().to_string_lossy().into_owned(), p);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::RecordingRunner;

    #[test]
    fn a_guest_whose_tool_reads_fewer_packages_is_refused() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("usr/bin")).unwrap();
        std::fs::write(d.path().join("usr/bin/rpm"), "").unwrap();
        let r = RecordingRunner::new();
        r.reply("chroot", &["a", "b"], true);
        r.reply("chroot", &["a", "b"], true);
        let e = check(&r, Family::Rpm, d.path(), "/var/lib/rpm", Some(3)).unwrap_err().to_string();
        assert!(e.contains("lists 2 packages, but 3 were installed"), "{e}");
        assert_eq!(check(&r, Family::Rpm, d.path(), "/var/lib/rpm", Some(2)).unwrap().0, Some(2));
        // No rpm in the guest: a warning, not a refusal.
        let bare = tempfile::tempdir().unwrap();
        let (n, w) = check(&r, Family::Rpm, bare.path(), "/var/lib/rpm", Some(2)).unwrap();
        assert!(n.is_none() && w.unwrap().contains("has no rpm -qa"));
    }

    #[test]
    fn dpkg_counts_only_installed_packages() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(
            d.path().join("var/lib/dpkg/status"),
            "Package: a\nStatus: install ok installed\n\nPackage: b\nStatus: deinstall ok config-files\n\nPackage: c\nStatus: install ok installed\n",
        )
        .unwrap();
        assert_eq!(installed_count(&RecordingRunner::new(), Family::Dpkg, d.path(), "").unwrap(), 2);
    }
}
