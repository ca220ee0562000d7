//! What is installed in a root filesystem, as a CycloneDX 1.5 SBOM (paper 4.1: trust what
//! is inside).
//!
//! The packages are read with the guest's own database, never by guessing from files:
//! - Debian and Ubuntu: `var/lib/dpkg/status`, parsed here, read with
//!   [`crate::fsutil::read_in_max`] so a symlink in the tree cannot make lxcprov read a host
//!   file;
//! - the RPM family: the host's `rpm --root COPY --dbpath P -qa --qf ...` through the
//!   [`Runner`], on a copy of the database directory (sqlite writes its `-shm` file even
//!   when only reading), with `P` the first of `/usr/lib/sysimage/rpm` (Fedora, EL10), `/var/lib/rpm`
//!   (EL7-9) and `/root/.rpmdb` (dnf run on a Debian host without lxcprov's `.rpmmacros`)
//!   that is a real directory in the tree (not a symlink) holding a database.
//!
//! Whether signatures were checked at install comes from lxcprov's record of the container
//! ([`crate::state::Record`]); a tree given as `--rootfs DIR` says `unknown`. RPM headers
//! also carry the key that signed each package.
//!
//! The document is deterministic: components sorted by name, version and architecture, no
//! serial number and no timestamp unless asked for, so two SBOMs of the same tree are
//! byte-identical and `diff` shows exactly what changed. Reads only; needs root only to read
//! root's trees.

use crate::exec::{Cmd, Runner};
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// The largest `var/lib/dpkg/status` read (a full desktop's is about 5 MiB).
pub const DPKG_STATUS_MAX: u64 = 64 << 20;

/// Which package database a tree has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Dpkg,
    Rpm,
}

/// One installed package.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    /// As the database writes it: `[EPOCH:]VERSION[-REVISION]` (dpkg), `[EPOCH:]VERSION-RELEASE` (rpm).
    pub version: String,
    pub arch: String,
    /// rpm's epoch, for the purl's `epoch` qualifier.
    pub epoch: Option<String>,
    /// dpkg's `Maintainer`, rpm's `VENDOR`.
    pub publisher: Option<String>,
    /// dpkg's `Source` (when it differs from the package), rpm's `SOURCERPM`.
    pub source: Option<String>,
    /// Where the package came from, when the database says so (dpkg's `Origin`).
    pub origin: Option<String>,
    /// rpm: the signature in the header (`RSA/SHA256, <date>, Key ID ...`), or `(none)`.
    pub signature: Option<String>,
}

impl Package {
    fn sort_key(&self) -> (&str, &str, &str) {
        (&self.name, &self.version, &self.arch)
    }
}

/// `/etc/os-release` of the tree: `ID`, `VERSION_ID`, `PRETTY_NAME`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OsRelease {
    pub id: Option<String>,
    pub version_id: Option<String>,
    pub pretty_name: Option<String>,
}

/// What a tree's package database holds.
#[derive(Clone, Debug)]
pub struct Inventory {
    pub format: Format,
    /// The database read, inside the tree (`/var/lib/dpkg/status`, `/var/lib/rpm`).
    pub database: String,
    pub os: OsRelease,
    /// Sorted by name, version, architecture.
    pub packages: Vec<Package>,
    /// rpm: the public keys imported into the database (`gpg-pubkey` versions: key ids).
    pub keys: Vec<String>,
    /// apt sources of the tree (`deb URL SUITE COMPONENTS` lines): where debootstrap and
    /// later apt fetched from.
    pub apt_sources: Vec<String>,
}

/// What lxcprov knows of a tree from outside it.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    /// The container's name, or the directory's for `--rootfs`.
    pub name: String,
    pub rootfs: String,
    /// From lxcprov's record; `None` when there is none (`--rootfs DIR`).
    pub gpgcheck: Option<bool>,
    pub profile: Option<String>,
    pub installer: Option<String>,
}

/// Reads the package database of the tree at `root`.
pub fn inventory(root: &Path, runner: &dyn Runner) -> Result<Inventory> {
    let os = os_release(root)?;
    let status = "/var/lib/dpkg/status";
    if let Some(text) = crate::fsutil::read_in_max(root, status, DPKG_STATUS_MAX)? {
        let mut packages = parse_dpkg_status(&text);
        sort(&mut packages);
        return Ok(Inventory {
            format: Format::Dpkg,
            database: status.into(),
            os,
            packages,
            keys: vec![],
            apt_sources: apt_sources(root)?,
        });
    }
    let Some(dbpath) = rpm_dbpath(root) else {
        bail!(
            "no package database in {}: neither var/lib/dpkg/status nor an rpm database \
             (usr/lib/sysimage/rpm, var/lib/rpm, root/.rpmdb); an imported tree without a \
             package manager (busybox) has nothing to list",
            root.display()
        );
    };
    // rpm queries a *copy*: even a read-only open of an sqlite database in WAL mode writes
    // its -shm file, and the guest's tree is only read.
    let scratch =
        tempfile::Builder::new().prefix("lxcprov-rpmdb-").tempdir().context("creating a scratch directory")?;
    copy_rpmdb(root, &dbpath, scratch.path())?;
    // The host's rpm parses a database the container's root wrote: it runs as nobody,
    // bounded (crate::exec::Confine), on a copy nobody owns.
    // (Run by a user other than root, lxcprov is unprivileged already.)
    let mut query = rpm_query(scratch.path(), &dbpath);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        let nobody = crate::exec::Confine::NOBODY;
        chown_tree(scratch.path(), nobody.uid, nobody.gid)?;
        query = query.confined(nobody);
    }
    let out = runner.output(&query)?;
    let (mut packages, keys) = parse_rpm_query(&out);
    sort(&mut packages);
    Ok(Inventory { format: Format::Rpm, database: dbpath, os, packages, keys, apt_sources: vec![] })
}

/// `lchown -R`: the scratch copy, for the unprivileged rpm that reads it.
fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).with_context(|| format!("chown {}", dir.display()))?;
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.is_dir() {
        for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

fn sort(p: &mut [Package]) {
    p.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
}

/// The rpm query: NAME, EPOCH, VERSION, RELEASE, ARCH, VENDOR, SOURCERPM, signature, tab-separated.
const RPM_QF: &str = "%{NAME}\\t%{EPOCH}\\t%{VERSION}\\t%{RELEASE}\\t%{ARCH}\\t%{VENDOR}\\t%{SOURCERPM}\\t%|DSAHEADER?{%{DSAHEADER:pgpsig}}:{%|RSAHEADER?{%{RSAHEADER:pgpsig}}:{(none)}|}|\\n";

/// `rpm --root ROOT --dbpath DBPATH -qa --qf ...`: rpm prefixes the root to the dbpath.
pub fn rpm_query(root: &Path, dbpath: &str) -> Cmd {
    Cmd::new("rpm").args([
        "--root".to_string(),
        root.display().to_string(),
        "--dbpath".into(),
        dbpath.into(),
        "-qa".into(),
        "--qf".into(),
        RPM_QF.into(),
    ])
}

/// The first rpm database directory in the tree that is a real directory (no symlink on
/// the way: Fedora's `/var/lib/rpm` may point to `../../usr/lib/sysimage/rpm`, which is
/// then found first) and holds a database file.
pub fn rpm_dbpath(root: &Path) -> Option<String> {
    const DBS: [&str; 4] = ["rpmdb.sqlite", "Packages", "Packages.db", "Index.db"];
    ["/usr/lib/sysimage/rpm", "/var/lib/rpm", "/root/.rpmdb"].into_iter().map(String::from).find(|rel| {
        let Ok(dir) = crate::fsutil::resolve_in(root, rel) else { return false };
        let is_dir = std::fs::symlink_metadata(&dir).map(|m| m.is_dir()).unwrap_or(false);
        is_dir && DBS.iter().any(|f| std::fs::symlink_metadata(dir.join(f)).map(|m| m.is_file()).unwrap_or(false))
    })
}

/// The most [`copy_rpmdb`] copies out of a tree: a full Fedora workstation's rpmdb.sqlite
/// is a few hundred MiB; a database beyond this (a sparse 64 GiB file costs the guest
/// nothing) would fill the host's temporary directory.
pub const RPMDB_MAX: u64 = 2 << 30;
/// The most files an rpm database directory may hold (BDB: one per index, about 30).
const RPMDB_FILES_MAX: usize = 256;

/// Copies the regular files of the tree's rpm database directory `dbpath` to the same place
/// under `dest_root`, bounded: each file is opened without following a symlink and without
/// blocking (`O_NOFOLLOW | O_NONBLOCK | O_NOCTTY`), must be a regular file on the open
/// descriptor, and the files together must fit in [`RPMDB_MAX`] bytes, checked before
/// anything is copied; at most that many bytes are copied even if a file grows meanwhile.
pub fn copy_rpmdb(root: &Path, dbpath: &str, dest_root: &Path) -> Result<()> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let src = crate::fsutil::resolve_in(root, dbpath)?;
    let mut files = vec![];
    let mut total = 0u64;
    for e in std::fs::read_dir(&src).with_context(|| format!("reading {}", src.display()))? {
        let e = e?;
        if !e.file_type()?.is_file() {
            continue;
        }
        if files.len() == RPMDB_FILES_MAX {
            bail!("refusing to copy the rpm database {}: more than {RPMDB_FILES_MAX} files in it", src.display());
        }
        let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(e.path())
            .with_context(|| format!("opening {}", e.path().display()))?;
        let m = f.metadata().with_context(|| format!("inspecting {}", e.path().display()))?;
        if !m.is_file() {
            bail!("refusing to copy {}: it is not a regular file", e.path().display());
        }
        total = total.saturating_add(m.len());
        if total > RPMDB_MAX {
            bail!(
                "refusing to copy the rpm database {}: its files are more than {RPMDB_MAX} bytes ({} alone is {} bytes); \
                 a real rpm database is far smaller, so this tree's is damaged or hostile",
                src.display(),
                e.file_name().to_string_lossy(),
                m.len()
            );
        }
        files.push((e.file_name(), f));
    }
    let dest = dest_root.join(dbpath.trim_start_matches('/'));
    std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
    let mut left = RPMDB_MAX;
    for (name, f) in files {
        let to = dest.join(&name);
        let mut out = crate::fsutil::create_new(&to, 0o600)?;
        let n = std::io::copy(&mut f.take(left + 1), &mut out).with_context(|| format!("copying {}", to.display()))?;
        if n > left {
            bail!("refusing to copy the rpm database {}: it grew beyond {RPMDB_MAX} bytes while copied", src.display());
        }
        left -= n;
    }
    Ok(())
}

/// The installed packages of a dpkg status file: paragraphs whose `Status` ends in
/// `installed` (config-files, half-installed and not-installed entries are left out).
pub fn parse_dpkg_status(text: &str) -> Vec<Package> {
    let mut out = vec![];
    for para in text.split("\n\n") {
        let mut fields: Vec<(&str, String)> = vec![];
        for line in para.lines() {
            if line.starts_with([' ', '\t']) {
                // A continuation line (Description, Conffiles): not needed.
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                fields.push((k.trim(), v.trim().to_string()));
            }
        }
        let get = |k: &str| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
        let installed = get("Status").is_some_and(|s| s.split_whitespace().nth(2) == Some("installed"));
        let (Some(name), Some(version)) = (get("Package"), get("Version")) else { continue };
        if !installed || name.is_empty() || version.is_empty() {
            continue;
        }
        // `Source: foo (1.2-3)` names the source package (and its version when it differs).
        let source = get("Source").filter(|s| !s.is_empty() && s.split_whitespace().next() != Some(name.as_str()));
        out.push(Package {
            name,
            version,
            arch: get("Architecture").unwrap_or_default(),
            epoch: None,
            publisher: get("Maintainer").filter(|s| !s.is_empty()),
            source,
            origin: get("Origin").filter(|s| !s.is_empty()),
            signature: None,
        });
    }
    out
}

/// Packages and imported keys from [`rpm_query`]'s output. Lines that are not the query's
/// (rpm's warnings share the stream) are skipped.
pub fn parse_rpm_query(out: &str) -> (Vec<Package>, Vec<String>) {
    let none = |s: &str| if s.is_empty() || s == "(none)" { None } else { Some(s.to_string()) };
    let mut packages = vec![];
    let mut keys = vec![];
    for line in out.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 8 || f[0].is_empty() {
            continue;
        }
        if f[0] == "gpg-pubkey" {
            keys.push(format!("{}-{}", f[2], f[3]));
            continue;
        }
        let epoch = none(f[1]);
        let vr = format!("{}-{}", f[2], f[3]);
        packages.push(Package {
            name: f[0].into(),
            version: match &epoch {
                Some(e) => format!("{e}:{vr}"),
                None => vr,
            },
            arch: f[4].into(),
            epoch,
            publisher: none(f[5]),
            source: none(f[6]),
            origin: None,
            signature: Some(f[7].to_string()),
        });
    }
    keys.sort();
    (packages, keys)
}

/// The tree's os-release (`usr/lib/os-release`, else `etc/os-release`; never through a symlink).
pub fn os_release(root: &Path) -> Result<OsRelease> {
    let mut text = None;
    for rel in ["/etc/os-release", "/usr/lib/os-release"] {
        // /etc/os-release is usually a symlink to ../usr/lib/os-release: refused, try the other.
        if let Ok(Some(t)) = crate::fsutil::read_in(root, rel) {
            text = Some(t);
            break;
        }
    }
    Ok(text.map(|t| parse_os_release(&t)).unwrap_or_default())
}

pub fn parse_os_release(text: &str) -> OsRelease {
    let mut os = OsRelease::default();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else { continue };
        let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
        match k.trim() {
            "ID" => os.id = Some(v),
            "VERSION_ID" => os.version_id = Some(v),
            "PRETTY_NAME" => os.pretty_name = Some(v),
            _ => {}
        }
    }
    os
}

/// `deb ...` lines of the tree's `etc/apt/sources.list` (debootstrap writes the mirror there).
fn apt_sources(root: &Path) -> Result<Vec<String>> {
    let text = crate::fsutil::read_in(root, "/etc/apt/sources.list").unwrap_or(None).unwrap_or_default();
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("deb ") || l.starts_with("deb-src "))
        .map(String::from)
        .collect())
}

/// Percent-encodes a purl component: everything but `A-Z a-z 0-9 . - _ ~` (so `1:2.3+dfsg`
/// becomes `1%3A2.3%2Bdfsg`).
pub fn purl_encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b".-_~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The package URL: `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-12`,
/// `pkg:rpm/fedora/NAME@VERSION-RELEASE?arch=ARCH&distro=fedora-40&epoch=1`
/// (qualifiers sorted, as the purl spec asks).
pub fn purl(format: Format, os: &OsRelease, p: &Package) -> String {
    let kind = match format {
        Format::Dpkg => "deb",
        Format::Rpm => "rpm",
    };
    let ns = os.id.as_deref().map(|id| format!("{}/", purl_encode(id))).unwrap_or_default();
    // rpm's purl carries the epoch as a qualifier, not in the version.
    let version = match (format, &p.epoch) {
        (Format::Rpm, Some(e)) => p.version.strip_prefix(&format!("{e}:")).unwrap_or(&p.version).to_string(),
        _ => p.version.clone(),
    };
    let mut q = vec![];
    if !p.arch.is_empty() {
        q.push(format!("arch={}", purl_encode(&p.arch)));
    }
    if let (Some(id), Some(v)) = (&os.id, &os.version_id) {
        q.push(format!("distro={}", purl_encode(&format!("{id}-{v}"))));
    }
    if let (Format::Rpm, Some(e)) = (format, &p.epoch) {
        q.push(format!("epoch={}", purl_encode(e)));
    }
    let q = if q.is_empty() { String::new() } else { format!("?{}", q.join("&")) };
    format!("pkg:{kind}/{ns}{}@{}{q}", purl_encode(&p.name), purl_encode(&version))
}

/// A CycloneDX 1.5 document (the fields lxcprov fills, in the spec's order).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Bom {
    pub bom_format: &'static str,
    pub spec_version: &'static str,
    pub version: u32,
    pub metadata: Metadata,
    pub components: Vec<Component>,
}

#[derive(Debug, Serialize)]
pub struct Metadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    pub tools: Tools,
    pub component: Component,
    pub properties: Vec<Property>,
}

#[derive(Debug, Serialize)]
pub struct Tools {
    pub components: Vec<Component>,
}

#[derive(Debug, Default, Serialize)]
pub struct Component {
    #[serde(rename = "type")]
    pub kind: &'static str,
    #[serde(rename = "bom-ref", skip_serializing_if = "Option::is_none")]
    pub bom_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub properties: Vec<Property>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Property {
    pub name: String,
    pub value: String,
}

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property { name: name.into(), value: value.into() }
}

/// The SBOM of an inventory. `timestamp` (RFC 3339) is the only varying field, and only
/// when given.
pub fn cyclonedx(inv: &Inventory, subject: &Subject, timestamp: Option<String>) -> Bom {
    let gpgcheck = match subject.gpgcheck {
        Some(true) => "true",
        Some(false) => "false",
        None => "unknown",
    };
    let mut meta_props = vec![
        prop("lxcprov:rootfs", &subject.rootfs),
        prop("lxcprov:package_database", format!("{} {}", fmt_name(inv.format), inv.database)),
        prop("lxcprov:gpgcheck", gpgcheck),
    ];
    if let Some(p) = &subject.profile {
        meta_props.push(prop("lxcprov:profile", p));
    }
    if let Some(i) = &subject.installer {
        meta_props.push(prop("lxcprov:installer", i));
    }
    for s in &inv.apt_sources {
        meta_props.push(prop("lxcprov:apt_source", s));
    }
    for k in &inv.keys {
        meta_props.push(prop("lxcprov:rpm_gpg_pubkey", k));
    }
    let mut components = vec![];
    if let Some(id) = &inv.os.id {
        components.push(Component {
            kind: "operating-system",
            bom_ref: Some(format!("os:{id}@{}", inv.os.version_id.as_deref().unwrap_or(""))),
            name: id.clone(),
            version: inv.os.version_id.clone(),
            description: inv.os.pretty_name.clone(),
            ..Default::default()
        });
    }
    let mut seen = std::collections::HashSet::new();
    for p in &inv.packages {
        let purl = purl(inv.format, &inv.os, p);
        // bom-refs must be unique; a database listing one NEVRA twice is broken, but say so.
        let mut bom_ref = purl.clone();
        let mut n = 1;
        while !seen.insert(bom_ref.clone()) {
            n += 1;
            bom_ref = format!("{purl}#{n}");
        }
        let mut props = vec![prop("lxcprov:package:architecture", &p.arch)];
        if let Some(s) = &p.source {
            props.push(prop("lxcprov:package:source", s));
        }
        if let Some(o) = &p.origin {
            props.push(prop("lxcprov:package:origin", o));
        }
        if let Some(s) = &p.signature {
            props.push(prop("lxcprov:package:signature", s));
        }
        props.push(prop("lxcprov:package:gpgcheck", gpgcheck));
        components.push(Component {
            kind: "library",
            bom_ref: Some(bom_ref),
            publisher: p.publisher.clone(),
            name: p.name.clone(),
            version: Some(p.version.clone()),
            purl: Some(purl),
            properties: props,
            ..Default::default()
        });
    }
    Bom {
        bom_format: "CycloneDX",
        spec_version: "1.5",
        version: 1,
        metadata: Metadata {
            timestamp,
            tools: Tools {
                components: vec![Component {
                    kind: "application",
                    name: "lxcprov".into(),
                    version: Some(env!("CARGO_PKG_VERSION").into()),
                    ..Default::default()
                }],
            },
            component: Component {
                kind: "container",
                bom_ref: Some(format!("container:{}", subject.name)),
                name: subject.name.clone(),
                ..Default::default()
            },
            properties: meta_props,
        },
        components,
    }
}

fn fmt_name(f: Format) -> &'static str {
    match f {
        Format::Dpkg => "dpkg",
        Format::Rpm => "rpm",
    }
}

/// Now as RFC 3339 UTC (`2026-01-31T12:00:00Z`), for `--timestamp`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC (Howard Hinnant's civil-from-days).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The subject of `sbom NAME`: its rootfs in the pool and lxcprov's record, if any.
pub fn subject_for(paths: &crate::paths::Paths, name: &crate::name::Name) -> Result<Subject> {
    let rootfs = paths.rootfs(name);
    crate::storage::mount_for_reading(&paths.pool, name.as_str())?;
    if !rootfs.is_dir() {
        bail!("no root filesystem for {name} at {} (sbom reads the tree, running or not)", rootfs.display());
    }
    let rec = crate::state::Record::load(&paths.record(name)).context("reading lxcprov's record")?;
    Ok(Subject {
        name: name.to_string(),
        rootfs: rootfs.display().to_string(),
        gpgcheck: rec.as_ref().map(|r| r.gpgcheck),
        profile: rec.as_ref().map(|r| r.profile.clone()).filter(|p| !p.is_empty()),
        installer: rec.as_ref().map(|r| r.installer.clone()).filter(|i| !i.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpm_databases_are_copied_bounded() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("tree");
        let db = root.join("var/lib/rpm");
        std::fs::create_dir_all(&db).unwrap();
        std::fs::write(db.join("Index.db"), "index").unwrap();
        // A sparse 64 GiB database costs the guest nothing: refused before anything is copied.
        std::fs::File::create(db.join("rpmdb.sqlite")).unwrap().set_len(64 << 30).unwrap();
        assert_eq!(rpm_dbpath(&root).as_deref(), Some("/var/lib/rpm"));
        let out = d.path().join("copy");
        let e = format!("{:#}", copy_rpmdb(&root, "/var/lib/rpm", &out).unwrap_err());
        assert!(e.contains("refusing to copy the rpm database") && e.contains("rpmdb.sqlite"), "{e}");
        assert!(!out.exists(), "nothing was copied");
        // A FIFO is not opened for reading (it would block) and a symlink not followed.
        std::fs::remove_file(db.join("rpmdb.sqlite")).unwrap();
        let fifo = std::ffi::CString::new(db.join("rpmdb.sqlite-shm").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::os::unix::fs::symlink("/etc/shadow", db.join("Packages")).unwrap();
        std::fs::write(db.join("rpmdb.sqlite"), "db").unwrap();
        copy_rpmdb(&root, "/var/lib/rpm", &out).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(out.join("var/lib/rpm"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["Index.db", "rpmdb.sqlite"]);
        assert_eq!(std::fs::read_to_string(out.join("var/lib/rpm/rpmdb.sqlite")).unwrap(), "db");
    }
    use crate::exec::RecordingRunner;

    const STATUS: &str = "\
Package: zlib1g
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 168
Maintainer: Mark Brown <broonie@debian.org>
Architecture: amd64
Multi-Arch: same
Source: zlib
Version: 1:1.2.13.dfsg-1
Description: compression library - runtime
 zlib is a library implementing the deflate compression method found
 in gzip and PKZIP.

Package: base-files
Essential: yes
Status: install ok installed
Maintainer: Santiago Vila <sanvila@debian.org>
Architecture: amd64
Version: 12.4+deb12u15
Conffiles:
 /etc/debian_version 0123
Description: Debian base system miscellaneous files

Package: oldconf
Status: deinstall ok config-files
Architecture: all
Version: 1.0

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u14
Origin: Debian

Package: libc6
Status: install ok installed
Architecture: i386
Source: glibc
Version: 2.36-9+deb12u14
";

    fn tree(status: &str) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/dpkg")).unwrap();
        std::fs::write(d.path().join("var/lib/dpkg/status"), status).unwrap();
        std::fs::create_dir_all(d.path().join("usr/lib")).unwrap();
        std::fs::write(
            d.path().join("usr/lib/os-release"),
            "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nID=debian\n",
        )
        .unwrap();
        std::fs::create_dir_all(d.path().join("etc/apt")).unwrap();
        // As on Debian: /etc/os-release is a symlink (refused), the real file is read instead.
        std::os::unix::fs::symlink("../usr/lib/os-release", d.path().join("etc/os-release")).unwrap();
        std::fs::write(d.path().join("etc/apt/sources.list"), "deb http://deb.debian.org/debian bookworm main\n")
            .unwrap();
        d
    }

    fn subject(d: &Path) -> Subject {
        Subject { name: "web1".into(), rootfs: d.display().to_string(), gpgcheck: Some(true), ..Default::default() }
    }

    #[test]
    fn dpkg_status_lists_installed_packages_only() {
        let p = parse_dpkg_status(STATUS);
        let names: Vec<_> = p.iter().map(|p| (p.name.as_str(), p.arch.as_str())).collect();
        assert_eq!(names, [("zlib1g", "amd64"), ("base-files", "amd64"), ("libc6", "amd64"), ("libc6", "i386")]);
        assert_eq!(p[0].version, "1:1.2.13.dfsg-1");
        assert_eq!(p[0].source.as_deref(), Some("zlib"));
        assert_eq!(p[0].publisher.as_deref(), Some("Mark Brown <broonie@debian.org>"));
        assert_eq!(p[1].source, None, "no Source field: the package is its own source");
        assert_eq!(p[2].origin.as_deref(), Some("Debian"));
    }

    #[test]
    fn sbom_of_a_dpkg_tree_is_sorted_cyclonedx_with_purls() {
        let d = tree(STATUS);
        let runner = RecordingRunner::new();
        let inv = inventory(d.path(), &runner).unwrap();
        assert!(runner.calls().is_empty(), "dpkg trees are read, not queried");
        assert_eq!(inv.format, Format::Dpkg);
        let bom = serde_json::to_value(cyclonedx(&inv, &subject(d.path()), None)).unwrap();
        assert_eq!(bom["bomFormat"], "CycloneDX");
        assert_eq!(bom["specVersion"], "1.5");
        assert!(bom["metadata"].get("timestamp").is_none());
        assert_eq!(bom["metadata"]["component"]["name"], "web1");
        let comps = bom["components"].as_array().unwrap();
        assert_eq!(comps[0]["type"], "operating-system");
        assert_eq!(comps[0]["name"], "debian");
        assert_eq!(comps[0]["version"], "12");
        let purls: Vec<&str> = comps[1..].iter().map(|c| c["purl"].as_str().unwrap()).collect();
        assert_eq!(
            purls,
            [
                "pkg:deb/debian/base-files@12.4%2Bdeb12u15?arch=amd64&distro=debian-12",
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=amd64&distro=debian-12",
                "pkg:deb/debian/libc6@2.36-9%2Bdeb12u14?arch=i386&distro=debian-12",
                "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1?arch=amd64&distro=debian-12",
            ]
        );
        let zlib = &comps[4];
        assert_eq!(zlib["version"], "1:1.2.13.dfsg-1");
        let props: Vec<(String, String)> = zlib["properties"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["name"].as_str().unwrap().into(), p["value"].as_str().unwrap().into()))
            .collect();
        assert!(props.contains(&("lxcprov:package:architecture".into(), "amd64".into())));
        assert!(props.contains(&("lxcprov:package:gpgcheck".into(), "true".into())));
        assert!(props.contains(&("lxcprov:package:source".into(), "zlib".into())));
        let meta = bom["metadata"]["properties"].to_string();
        assert!(meta.contains("deb http://deb.debian.org/debian bookworm main"), "{meta}");
    }

    #[test]
    fn two_sboms_of_one_tree_are_identical_and_the_order_ignores_the_file_order() {
        let d = tree(STATUS);
        let r = RecordingRunner::new();
        let a = serde_json::to_string_pretty(&cyclonedx(&inventory(d.path(), &r).unwrap(), &subject(d.path()), None))
            .unwrap();
        let b = serde_json::to_string_pretty(&cyclonedx(&inventory(d.path(), &r).unwrap(), &subject(d.path()), None))
            .unwrap();
        assert_eq!(a, b);
        // The same packages in another order give the same document.
        let reversed: Vec<&str> = STATUS.split("\n\n").collect::<Vec<_>>().into_iter().rev().collect();
        let d2 = tree(&reversed.join("\n\n"));
        let c = serde_json::to_string_pretty(&cyclonedx(&inventory(d2.path(), &r).unwrap(), &subject(d.path()), None))
            .unwrap();
        assert_eq!(a, c);
        // --timestamp is the one varying field.
        let t = cyclonedx(&inventory(d.path(), &r).unwrap(), &subject(d.path()), Some(rfc3339(0)));
        assert_eq!(t.metadata.timestamp.as_deref(), Some("1970-01-01T00:00:00Z"));
    }

    #[test]
    fn a_symlinked_status_file_is_refused_not_followed() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib/dpkg")).unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(outside.path(), STATUS).unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("var/lib/dpkg/status")).unwrap();
        let e = inventory(d.path(), &RecordingRunner::new()).unwrap_err();
        assert!(format!("{e:#}").contains("symlink"), "{e:#}");
        // A symlinked parent directory too.
        let d = tempfile::tempdir().unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(host.path().join("dpkg")).unwrap();
        std::fs::write(host.path().join("dpkg/status"), STATUS).unwrap();
        std::fs::create_dir_all(d.path().join("var")).unwrap();
        std::os::unix::fs::symlink(host.path(), d.path().join("var/lib")).unwrap();
        assert!(inventory(d.path(), &RecordingRunner::new()).is_err());
    }

    #[test]
    fn a_tree_without_a_database_is_a_clear_error() {
        let d = tempfile::tempdir().unwrap();
        let e = inventory(d.path(), &RecordingRunner::new()).unwrap_err().to_string();
        assert!(e.contains("no package database"), "{e}");
    }

    #[test]
    fn rpm_trees_are_queried_with_the_hosts_rpm_at_the_right_dbpath() {
        for (db, want) in [("usr/lib/sysimage/rpm", "/usr/lib/sysimage/rpm"), ("var/lib/rpm", "/var/lib/rpm")] {
            let d = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(d.path().join(db)).unwrap();
            std::fs::write(d.path().join(db).join("rpmdb.sqlite"), "").unwrap();
            std::fs::create_dir_all(d.path().join("etc")).unwrap();
            std::fs::write(d.path().join("etc/os-release"), "ID=\"centos\"\nVERSION_ID=\"9\"\n").unwrap();
            let r = RecordingRunner::new();
            r.reply(
                "rpm",
                &[
                    "warning: Found bdb_ro Packages database while attempting sqlite backend",
                    "bash\t(none)\t5.1.8\t9.el9\tx86_64\tCentOS\tbash-5.1.8-9.el9.src.rpm\tRSA/SHA256, Mon 01 Jan 2024, Key ID 05b555b38483c65d",
                    "gpg-pubkey\t(none)\t8483c65d\t5ccc5b19\t(none)\t(none)\t(none)\t(none)",
                    "acl\t1\t2.3.1\t4.el9\tx86_64\tCentOS\tacl-2.3.1-4.el9.src.rpm\t(none)",
                ],
                true,
            );
            let inv = inventory(d.path(), &r).unwrap();
            let call = &r.calls()[0];
            assert_eq!(call.program, "rpm");
            assert_eq!(call.args[0], "--root");
            assert_ne!(call.args[1], d.path().to_str().unwrap(), "rpm reads a copy, not the tree");
            assert_eq!(call.args[2..5], ["--dbpath", want, "-qa"]);
            assert_eq!(inv.keys, ["8483c65d-5ccc5b19"]);
            let names: Vec<&str> = inv.packages.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, ["acl", "bash"], "sorted; gpg-pubkey is a key, not a package");
            assert_eq!(inv.packages[0].version, "1:2.3.1-4.el9");
            let bom = cyclonedx(&inv, &subject(d.path()), None);
            let purls: Vec<&str> = bom.components.iter().filter_map(|c| c.purl.as_deref()).collect();
            assert_eq!(
                purls,
                [
                    "pkg:rpm/centos/acl@2.3.1-4.el9?arch=x86_64&distro=centos-9&epoch=1",
                    "pkg:rpm/centos/bash@5.1.8-9.el9?arch=x86_64&distro=centos-9",
                ]
            );
            let bash = &bom.components[2];
            assert_eq!(bash.publisher.as_deref(), Some("CentOS"));
            assert!(bash
                .properties
                .contains(&prop("lxcprov:package:signature", "RSA/SHA256, Mon 01 Jan 2024, Key ID 05b555b38483c65d")));
        }
    }

    #[test]
    fn a_symlinked_rpm_dbpath_is_skipped_for_the_real_one() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("var/lib")).unwrap();
        let host = tempfile::tempdir().unwrap();
        std::fs::write(host.path().join("rpmdb.sqlite"), "").unwrap();
        std::os::unix::fs::symlink(host.path(), d.path().join("var/lib/rpm")).unwrap();
        assert_eq!(rpm_dbpath(d.path()), None, "a dbpath leaving the tree is never used");
        std::fs::create_dir_all(d.path().join("usr/lib/sysimage/rpm")).unwrap();
        std::fs::write(d.path().join("usr/lib/sysimage/rpm/rpmdb.sqlite"), "").unwrap();
        assert_eq!(rpm_dbpath(d.path()).as_deref(), Some("/usr/lib/sysimage/rpm"));
    }

    #[test]
    fn purl_encoding_and_dates() {
        assert_eq!(purl_encode("1:2.3+dfsg~rc1"), "1%3A2.3%2Bdfsg~rc1");
        assert_eq!(purl_encode("a b/c"), "a%20b%2Fc");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
