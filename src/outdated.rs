//! Which installed packages of a root filesystem have newer versions in the profile's
//! repositories (paper 4.2: update by rebuilding, so first know what a rebuild would change).
//!
//! Debian and Ubuntu: the host's apt, run entirely inside a scratch directory of the cache
//! (`CACHE/outdated/DISTRO-RELEASE-ARCH`): its own `apt.conf` (through `APT_CONFIG`, so the
//! host's apt configuration, sources and keys are never read), a `sources.list` with the
//! bootstrap's mirror, suite and components, `signed-by` the catalog's archive keyring (the
//! one debootstrap verified with), and a *copy* of the guest's dpkg status. `apt-get update`
//! fetches and verifies the indexes, then `apt-cache policy` gives each installed package's
//! candidate (no resolver: a tree with unmet dependencies is still answered). The container's tree is only read (its status file, with
//! [`crate::fsutil::read_in_max`]). Needs network access to the mirror; root only to read the
//! tree.
//!
//! The RPM family: a *copy* of the guest's rpm database (the directory [`crate::sbom::rpm_dbpath`]
//! finds) in `SCRATCH/root`, and the bootstrap's own dnf argv (same repositories, keys,
//! `reposdir` and plugin settings) with `check-update` instead of `install`, run with a
//! `HOME` whose `.rpmmacros` points rpm at that database. dnf writes its logs and cache into
//! the scratch root, never into the container. `check-update` exits 100 when updates are
//! pending. yum (EL7 hosts) is not covered.

use crate::bootstrap::InstallSpec;
use crate::exec::{Cmd, Runner};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

/// One pending upgrade.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Update {
    pub name: String,
    pub arch: String,
    pub installed: String,
    pub candidate: String,
}

/// The scratch directory for a spec's indexes.
pub fn scratch_dir(cache: &Path, spec: &InstallSpec) -> PathBuf {
    cache.join("outdated").join(format!("{}-{}-{}", spec.distro, spec.release, crate::distro::debian_arch(&spec.arch)))
}

/// The `apt.conf` that confines apt to `dir`.
pub fn apt_conf(dir: &Path, spec: &InstallSpec) -> String {
    let d = dir.display();
    let arch = crate::distro::debian_arch(&spec.arch);
    format!(
        "Dir \"{d}\";\n\
         Dir::State \"{d}/state\";\n\
         Dir::State::Lists \"{d}/state/lists\";\n\
         Dir::State::status \"{d}/status\";\n\
         Dir::State::extended_states \"{d}/state/extended_states\";\n\
         Dir::Cache \"{d}/cache\";\n\
         Dir::Cache::pkgcache \"\";\n\
         Dir::Cache::srcpkgcache \"\";\n\
         Dir::Etc \"{d}/etc\";\n\
         Dir::Etc::main \"{d}/etc/apt.conf\";\n\
         Dir::Etc::parts \"{d}/etc/apt.conf.d\";\n\
         Dir::Etc::sourcelist \"{d}/etc/sources.list\";\n\
         Dir::Etc::sourceparts \"{d}/etc/sources.list.d\";\n\
         Dir::Etc::preferences \"{d}/etc/preferences\";\n\
         Dir::Etc::preferencesparts \"{d}/etc/preferences.d\";\n\
         Dir::Etc::trusted \"{d}/etc/trusted.gpg\";\n\
         Dir::Etc::trustedparts \"{d}/etc/trusted.gpg.d\";\n\
         Dir::Log \"{d}/log\";\n\
         APT::Architecture \"{arch}\";\n\
         APT::Architectures {{ \"{arch}\"; }};\n\
         Acquire::Languages \"none\";\n\
         Debug::NoLocking \"true\";\n"
    )
}

/// The one `sources.list` line: the bootstrap's mirror, suite and components, verified with
/// the catalog's archive keyring.
pub fn sources_list(spec: &InstallSpec) -> Result<String> {
    let keyring = spec.keyring.as_deref().context("the catalog names no archive keyring for this distro")?;
    let components = if spec.components.is_empty() { "main".to_string() } else { spec.components.join(" ") };
    Ok(format!("deb [signed-by={keyring}] {} {} {components}\n", spec.mirror, spec.suite))
}

/// `apt-get` with the scratch configuration.
pub fn apt_get(dir: &Path, args: &[&str]) -> Cmd {
    Cmd::new("apt-get")
        .env("APT_CONFIG", dir.join("apt.conf").display().to_string())
        .arg("-q")
        .args(args.iter().copied())
}

/// `(name, installed, candidate)` from `apt-cache policy NAME...` output. Package lines
/// are `NAME:` (or `NAME:ARCH:`) at the start of a line; unknown names print nothing.
pub fn parse_policy(out: &str) -> Vec<(String, String, String)> {
    let mut v = vec![];
    let mut cur: Option<(String, Option<String>, Option<String>)> = None;
    let mut flush = |c: &mut Option<(String, Option<String>, Option<String>)>| {
        if let Some((n, Some(i), Some(cand))) = c.take() {
            v.push((n, i, cand));
        }
    };
    for line in out.lines() {
        if !line.starts_with(' ') && line.ends_with(':') && !line.contains(' ') {
            flush(&mut cur);
            cur = Some((line.trim_end_matches(':').to_string(), None, None));
        } else if let Some((_, inst, cand)) = cur.as_mut() {
            let t = line.trim();
            if let Some(x) = t.strip_prefix("Installed: ") {
                *inst = Some(x.to_string());
            } else if let Some(x) = t.strip_prefix("Candidate: ") {
                *cand = Some(x.to_string());
            }
        }
    }
    flush(&mut cur);
    v
}

/// The upgrades: installed packages whose candidate (apt's choice at the default pin
/// priorities, which never prefers an older version) differs from the installed version.
/// This asks no dependency resolver, so a tree with unmet dependencies is still answered.
pub fn updates_from_policy(installed: &[crate::sbom::Package], native: &str, policy: &str) -> Vec<Update> {
    let found = parse_policy(policy);
    let mut v: Vec<Update> = installed
        .iter()
        .filter_map(|p| {
            let key = query_name(p, native);
            let (_, inst, cand) = found.iter().find(|(n, _, _)| *n == key)?;
            (cand != "(none)" && inst != "(none)" && cand != inst && *inst == p.version).then(|| Update {
                name: p.name.clone(),
                arch: p.arch.clone(),
                installed: inst.clone(),
                candidate: cand.clone(),
            })
        })
        .collect();
    v.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    v
}

/// How apt names an installed package: `NAME` for the native architecture and `all`,
/// `NAME:ARCH` for a foreign one.
fn query_name(p: &crate::sbom::Package, native: &str) -> String {
    if p.arch.is_empty() || p.arch == "all" || p.arch == native {
        p.name.clone()
    } else {
        format!("{}:{}", p.name, p.arch)
    }
}

/// The pending upgrades of the Debian tree at `root` against `spec`'s repository.
/// `on_line` gets apt's progress lines.
pub fn dpkg_updates(
    root: &Path,
    spec: &InstallSpec,
    cache: &Path,
    runner: &dyn Runner,
    on_line: &mut dyn FnMut(&str),
) -> Result<Vec<Update>> {
    let status = crate::fsutil::read_in_max(root, "/var/lib/dpkg/status", crate::sbom::DPKG_STATUS_MAX)?
        .with_context(|| format!("{} has no var/lib/dpkg/status: not a Debian tree", root.display()))?;
    let dir = scratch_dir(cache, spec);
    for sub in [
        "state/lists/partial",
        "cache/archives/partial",
        "etc/apt.conf.d",
        "etc/sources.list.d",
        "etc/preferences.d",
        "etc/trusted.gpg.d",
        "log",
    ] {
        std::fs::create_dir_all(dir.join(sub)).with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    // One run at a time per scratch directory (apt's own locks are off: nothing here is shared).
    let _lock = crate::state::wait_lock(&dir.with_extension("lock"), false, &|| {})?;
    crate::fsutil::write_atomic(&dir.join("apt.conf"), apt_conf(&dir, spec).as_bytes(), 0o644)?;
    crate::fsutil::write_atomic(&dir.join("etc/sources.list"), sources_list(spec)?.as_bytes(), 0o644)?;
    crate::fsutil::write_atomic(&dir.join("status"), status.as_bytes(), 0o644)?;
    let mut problems = vec![];
    runner.run(&apt_get(&dir, &["update"]), &mut |l| {
        // apt-get update exits 0 on some fetch failures; a failed or unverified index must not
        // pass as "nothing to update".
        if l.starts_with("E:") || l.starts_with("W: Failed") || l.starts_with("W: GPG error") || l.contains("NO_PUBKEY")
        {
            problems.push(l.to_string());
        }
        on_line(l);
    })?;
    if !problems.is_empty() {
        bail!("apt-get update against {} {} failed:\n{}", spec.mirror, spec.suite, problems.join("\n"));
    }
    let installed = crate::sbom::parse_dpkg_status(&status);
    if installed.is_empty() {
        return Ok(vec![]);
    }
    let native = crate::distro::debian_arch(&spec.arch);
    let names: Vec<String> = installed.iter().map(|p| query_name(p, &native)).collect();
    let policy = Cmd::new("apt-cache")
        .env("APT_CONFIG", dir.join("apt.conf").display().to_string())
        .arg("policy")
        .arg("--")
        .args(names);
    let out = runner.output(&policy)?;
    Ok(updates_from_policy(&installed, &native, &out))
}

/// dnf's `check-update` listing: `NAME.ARCH  VERSION  REPO` lines, until an
/// "Obsoleting Packages" section.
pub fn parse_check_update(out: &str) -> Vec<(String, String, String)> {
    let mut v = vec![];
    for line in out.lines() {
        if line.starts_with("Obsoleting") {
            break;
        }
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 3 || line.starts_with(' ') {
            continue;
        }
        let Some((name, arch)) = f[0].rsplit_once('.') else { continue };
        // A version has a release: `2.0-1`, `1:2.3-4.el9`.
        if !f[1].contains('-') || name.is_empty() {
            continue;
        }
        v.push((name.to_string(), arch.to_string(), f[1].to_string()));
    }
    v
}

/// The pending updates of the RPM tree at `root` against `spec`'s repositories.
pub fn rpm_updates(
    root: &Path,
    spec: &InstallSpec,
    cache: &Path,
    runner: &dyn Runner,
    on_line: &mut dyn FnMut(&str),
) -> Result<Vec<Update>> {
    use crate::bootstrap::Tool;
    if !matches!(spec.tool, Tool::Dnf4 | Tool::Dnf5) {
        bail!("outdated needs dnf for rpm trees (found {}); yum hosts are not covered", spec.tool.program());
    }
    let dbpath = crate::sbom::rpm_dbpath(root).with_context(|| format!("no rpm database in {}", root.display()))?;
    let dir = scratch_dir(cache, spec);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let _lock = crate::state::wait_lock(&dir.with_extension("lock"), false, &|| {})?;
    let sroot = dir.join("root");
    if sroot.exists() {
        crate::fsutil::remove_tree(&sroot)?;
    }
    crate::sbom::copy_rpmdb(root, &dbpath, &sroot)?;
    // The installed versions, from the copy too.
    let installed = crate::sbom::inventory(&sroot, runner)?.packages;
    let home = dir.join("home");
    std::fs::create_dir_all(&home)?;
    crate::fsutil::write_atomic(&home.join(".rpmmacros"), format!("%_dbpath {dbpath}\n").as_bytes(), 0o644)?;
    let mut check = InstallSpec { packages: vec![], ..spec.clone() };
    check.tool = spec.tool;
    let mut cmd = check.install_cmd(&sroot, &dir.join("cache"), &home, &dir.join("yum.conf"));
    // The bootstrap's argv ends in `install` (no packages): the same options, another verb.
    if cmd.args.last().map(String::as_str) != Some("install") {
        bail!("unexpected dnf argv for the check: {}", cmd.display());
    }
    cmd.args.pop();
    cmd.args.retain(|a| a != "-y");
    cmd = cmd.arg("-q").arg("check-update");
    let mut lines = vec![];
    let r = runner.run(&cmd, &mut |l| {
        on_line(l);
        lines.push(l.to_string());
    });
    match r {
        Ok(()) => return Ok(vec![]),
        Err(crate::exec::CommandError::Failed { code: Some(100), .. }) => {}
        Err(e) => return Err(e.into()),
    }
    let found = parse_check_update(&lines.join("\n"));
    let mut v: Vec<Update> = found
        .into_iter()
        .map(|(name, arch, candidate)| {
            let installed = installed
                .iter()
                .find(|p| p.name == name && (p.arch == arch || p.arch == "noarch" || arch == "noarch"))
                .map(|p| p.version.clone())
                .unwrap_or_default();
            Update { name, arch, installed, candidate }
        })
        .collect();
    v.sort_by(|a, b| (&a.name, &a.arch).cmp(&(&b.name, &b.arch)));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::RecordingRunner;

    fn spec() -> InstallSpec {
        let p = crate::profile::find(&crate::profile::Sources::default(), "minimal").unwrap().profile;
        let d = crate::distro::lookup("debian12").unwrap();
        InstallSpec::new(&p, &d, None, crate::bootstrap::Tool::Debootstrap).unwrap()
    }

    #[test]
    fn policy_candidates_become_updates() {
        let status = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.0\n\n\
                      Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b13\n\n\
                      Package: libc6\nStatus: install ok installed\nArchitecture: i386\nVersion: 2.36-9\n\n\
                      Package: local-only\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n";
        let policy = "\
base-files:
  Installed: 12.0
  Candidate: 12.4+deb12u15
  Version table:
     12.4+deb12u15 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
 *** 12.0 100
bash:
  Installed: 5.2.15-2+b13
  Candidate: 5.2.15-2+b13
local-only:
  Installed: 1.0
  Candidate: 1.0
N: Unable to locate package libc6:i386
";
        let installed = crate::sbom::parse_dpkg_status(status);
        assert_eq!(
            updates_from_policy(&installed, "amd64", policy),
            [Update {
                name: "base-files".into(),
                arch: "amd64".into(),
                installed: "12.0".into(),
                candidate: "12.4+deb12u15".into()
            }]
        );
        assert_eq!(query_name(&installed[2], "amd64"), "libc6:i386");
    }

    #[test]
    fn dnf_check_update_lines() {
        let out = "\
lxcprov-hello.noarch                  2.0-1                  lxcprov-test
bash.x86_64                           5.1.8-9.el9            baseos
Obsoleting Packages
foo.x86_64                            2-1                    baseos
";
        assert_eq!(
            parse_check_update(out),
            [
                ("lxcprov-hello".into(), "noarch".into(), "2.0-1".into()),
                ("bash".into(), "x86_64".into(), "5.1.8-9.el9".into())
            ]
        );
    }

    #[test]
    fn apt_is_confined_to_the_scratch_dir_and_the_trees_status_is_copied_not_used() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("var/lib/dpkg")).unwrap();
        let status = "Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.0\n";
        std::fs::write(tree.path().join("var/lib/dpkg/status"), status).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let r = RecordingRunner::new();
        r.reply("apt-get", &["Get:1 http://deb.debian.org/debian bookworm InRelease"], true);
        r.reply("apt-cache", &["base-files:", "  Installed: 12.0", "  Candidate: 12.4"], true);
        let s = spec();
        let u = dpkg_updates(tree.path(), &s, cache.path(), &r, &mut |_| {}).unwrap();
        assert_eq!(u.len(), 1);
        let dir = scratch_dir(cache.path(), &s);
        assert!(dir.ends_with("outdated/debian12-12-amd64"), "{}", dir.display());
        let calls = r.calls();
        assert_eq!(calls[0].args, ["-q", "update"]);
        assert_eq!(calls[1].program, "apt-cache");
        assert_eq!(calls[1].args, ["policy", "--", "base-files"]);
        for c in &calls {
            assert_eq!(c.env, [("APT_CONFIG".to_string(), dir.join("apt.conf").display().to_string())]);
        }
        assert_eq!(std::fs::read_to_string(dir.join("status")).unwrap(), status);
        let conf = std::fs::read_to_string(dir.join("apt.conf")).unwrap();
        assert!(conf.contains(&format!("Dir::State::status \"{}/status\"", dir.display())));
        assert!(conf.contains(&format!("Dir::Etc::parts \"{}/etc/apt.conf.d\"", dir.display())), "no host apt.conf.d");
        assert!(!conf.contains(tree.path().to_str().unwrap()), "apt never sees the tree");
        let sources = std::fs::read_to_string(dir.join("etc/sources.list")).unwrap();
        assert_eq!(
            sources,
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main\n"
        );
    }

    #[test]
    fn a_failed_or_unverified_index_is_an_error_not_an_empty_list() {
        let tree = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tree.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(tree.path().join("var/lib/dpkg/status"), "").unwrap();
        let cache = tempfile::tempdir().unwrap();
        let r = RecordingRunner::new();
        r.reply("apt-get", &["W: GPG error: http://x bookworm InRelease: NO_PUBKEY 0123"], true);
        let e = dpkg_updates(tree.path(), &spec(), cache.path(), &r, &mut |_| {}).unwrap_err().to_string();
        assert!(e.contains("NO_PUBKEY"), "{e}");
        assert_eq!(r.calls().len(), 1, "no simulation after a failed update");
    }
}
