//! The libvirt LXC hook (`/etc/libvirt/hooks/lxc`): a two-line script that hands every call
//! to `lxcprov hook lxc NAME OP SUBOP EXTRA`, which mounts an overlay container's root at
//! `prepare` and unmounts it at `release`. Under SELinux it mounts the root again at `start`
//! with `context=` the container's image label (`container_file_t` at its own MCS level):
//! libvirt 9.0 generates a dynamic label only after `prepare` (`virLXCProcessStart`:
//! `prepare`, then `virSecurityManagerGenLabel` and `SetAllLabel`, then `start`, then the
//! controller), and never relabels a `<filesystem>` itself (`SetAllLabel` skips `def->fss`),
//! so one mount option is the whole relabel, whatever the size of the shared base. libvirt runs it from libvirtd for every LXC
//! domain, with the domain XML on stdin; lxcprov acts only on domains that carry its
//! metadata and have an overlay layer, and leaves every other domain alone (exit 0, no
//! output). libvirtd looks for hook scripts when it starts: a newly installed hook needs a
//! libvirtd restart (running containers survive it).
//!
//! The hook must not call back into libvirt (libvirtd waits for it): it works from the XML
//! on stdin and the files under the pool only.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

pub const HOOK_PATH: &str = "/etc/libvirt/hooks/lxc";
/// The script's first comment line; the version changes when the script's shape does.
pub const MARKER: &str = "# lxcprov libvirt LXC hook v3";
/// At most this much of the domain XML is read from stdin.
pub const MAX_XML: u64 = 1 << 20;

/// The hook script that runs `bin`.
pub fn script(bin: &Path) -> String {
    let b = crate::exec::quote(&bin.display().to_string());
    format!(
        "#!/bin/sh\n{MARKER}\n# libvirt runs this for every LXC domain; lxcprov acts only on its own overlay containers\n# (mounts their root at prepare, labels it at start under SELinux, unmounts it at release,\n# bounds their processes once started).\n# Installed by `lxcprov hook install`.\n# Other operations: the XML is read and nothing is done, without starting lxcprov.\ncase \"$2\" in prepare|start|release|started) ;; *) while read -r _; do :; done; exit 0 ;; esac\n[ -x {b} ] || exit 0\nexec {b} hook lxc \"$@\"\n"
    )
}

/// What is installed at the hook's path.
#[derive(Debug, PartialEq, Eq)]
pub enum Status {
    Missing,
    /// lxcprov's hook, running this lxcprov binary.
    Current(PathBuf),
    /// lxcprov's hook, but of another version or naming a binary that is not there.
    Stale(String),
    /// Someone else's hook: never overwritten.
    Foreign,
}

impl Status {
    pub fn describe(&self) -> String {
        match self {
            Status::Missing => "not installed".into(),
            Status::Current(b) => format!("installed (runs {})", b.display()),
            Status::Stale(w) => format!("out of date ({w})"),
            Status::Foreign => "someone else's script".into(),
        }
    }
}

/// Reads the hook at `path`.
pub fn status(path: &Path) -> Status {
    let Ok(text) = crate::fsutil::read_regular_bounded_to_string(path, 64 * 1024, "the libvirt hook") else {
        return if std::fs::symlink_metadata(path).is_ok() { Status::Foreign } else { Status::Missing };
    };
    if !text.contains("# lxcprov libvirt LXC hook") {
        return Status::Foreign;
    }
    if !text.contains(MARKER) {
        return Status::Stale("an older version of the script".into());
    }
    let bin = text.lines().find_map(|l| l.strip_prefix("exec ")).and_then(|r| r.strip_suffix(" hook lxc \"$@\""));
    let Some(bin) = bin.map(|b| PathBuf::from(b.trim_matches('\''))) else {
        return Status::Stale("it names no lxcprov binary".into());
    };
    use std::os::unix::fs::PermissionsExt;
    let exec_ok = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if !exec_ok(path) {
        return Status::Stale("it is not executable".into());
    }
    if !exec_ok(&bin) {
        return Status::Stale(format!("{} is not there", bin.display()));
    }
    Status::Current(bin)
}

/// Installs (or updates) lxcprov's hook at `path`, running `bin`. Refuses to replace
/// someone else's hook. Returns true when the file did not exist before (libvirtd must be
/// restarted to see it).
pub fn install(path: &Path, bin: &Path) -> Result<bool> {
    let before = status(path);
    if before == Status::Foreign {
        bail!(
            "{} exists and is not lxcprov's; lxcprov never replaces it. Add this line to it instead: `{} hook lxc \"$@\" || exit $?` (stdin must reach lxcprov)",
            path.display(),
            bin.display()
        );
    }
    if !bin.is_absolute() {
        bail!("the hook must name lxcprov by an absolute path, not {}", bin.display());
    }
    let dir = path.parent().context("hook path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if before == Status::Missing {
        crate::fsutil::write_atomic(path, script(bin).as_bytes(), 0o755)?;
        return Ok(true);
    }
    // Rewritten in place: the same file (and creation time) libvirtd found when it started.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(script(bin).as_bytes()).with_context(|| format!("writing {}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(false)
}

/// What the hook does for one call.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Not lxcprov's, or nothing to do at this operation.
    Ignore,
    Mount(PathBuf, String),
    Unmount(PathBuf, String),
    /// `start` under SELinux: the overlay mounted (again) with `context=` this image label,
    /// which libvirt generated after `prepare`.
    Label(PathBuf, String, crate::mcs::Context),
    /// `started`: bound the container's processes (`pids_max`, from its metadata).
    Bound(String, u32),
}

/// Decides what `lxcprov hook lxc NAME OP ...` does from its arguments and the domain XML.
/// Foreign domains (no lxcprov metadata, or XML that does not even name lxcprov) are
/// `Ignore`; an lxcprov domain whose XML disagrees with its arguments is an error.
/// `lxc_contexts` is the policy's `lxc_contexts` file (its `file` context labels a static
/// label's root).
pub fn decide(args: &[String], xml: &[u8], truncated: bool, lxc_contexts: &str) -> Result<Verdict> {
    let (Some(name), Some(op)) = (args.first(), args.get(1)) else {
        bail!("usage: lxcprov hook lxc DOMAIN OPERATION SUB-OPERATION EXTRA (libvirt calls it)");
    };
    let ours = xml.windows(crate::facts::NAMESPACE.len()).any(|w| w == crate::facts::NAMESPACE.as_bytes());
    if !ours {
        return Ok(Verdict::Ignore);
    }
    if truncated {
        bail!("the domain XML of an lxcprov domain is larger than {MAX_XML} bytes; refusing to act on it");
    }
    if !matches!(op.as_str(), "prepare" | "start" | "release" | "started") {
        return Ok(Verdict::Ignore);
    }
    let text = std::str::from_utf8(xml).context("the domain XML is not UTF-8")?;
    let d = crate::facts::parse_domain(text).context("the domain XML on stdin does not parse")?;
    if d.meta.is_none() {
        return Ok(Verdict::Ignore);
    }
    let n = crate::name::Name::parse(name).map_err(|e| anyhow::anyhow!("refusing the domain name {name:?}: {e}"))?;
    if d.name != n.as_str() {
        bail!("the hook was called for {name:?}, but the XML on stdin is the domain {:?}", d.name);
    }
    if op == "started" {
        // Any lxcprov container, copy or overlay: its process limit at every start.
        return Ok(match d.meta.as_ref().and_then(|m| m.pids) {
            Some(max) => Verdict::Bound(n.to_string(), max),
            None => Verdict::Ignore,
        });
    }
    let Some(rootfs) = d.rootfs else { return Ok(Verdict::Ignore) };
    if !rootfs.is_absolute() || rootfs.file_name().map(|f| f.to_string_lossy().into_owned()) != Some(n.to_string()) {
        return Ok(Verdict::Ignore); // not lxcprov's POOL/NAME layout: nothing of ours to mount
    }
    let pool = rootfs.parent().context("pool")?.to_path_buf();
    if op == "start" {
        let Some(sec) = d.seclabel.as_ref().filter(|s| s.model == "selinux") else {
            return Ok(Verdict::Ignore); // no SELinux label: nothing to label
        };
        // A dynamic label: the image label libvirt generated. A static one (`relabel='no'`,
        // no image label: a lab's student): lxc_contexts' file type at the student's own
        // level, as a copy tree gets it, so its files are separated as well as its processes.
        let img = match (sec.imagelabel.as_deref(), sec.kind.as_str(), sec.label.as_deref()) {
            (Some(i), _, _) => i.to_string(),
            (None, "static", Some(l)) => crate::host::rootfs_label(lxc_contexts, Some(l)).with_context(|| {
                format!(
                    "{n} has a static SELinux label, but lxc_contexts names no `file` context to label its root with"
                )
            })?,
            _ => return Ok(Verdict::Ignore),
        };
        let c = crate::mcs::Context::parse(&img)
            .map_err(|e| anyhow::anyhow!("refusing to label {n}'s root with the image label in its XML: {e}"))?;
        return Ok(Verdict::Label(pool, n.to_string(), c));
    }
    Ok(if op == "prepare" { Verdict::Mount(pool, n.to_string()) } else { Verdict::Unmount(pool, n.to_string()) })
}

/// Reads at most [`MAX_XML`] bytes; true when there was more.
pub fn read_bounded(r: &mut dyn Read) -> Result<(Vec<u8>, bool)> {
    let mut buf = vec![];
    r.take(MAX_XML + 1).read_to_end(&mut buf).context("reading the domain XML from stdin")?;
    let truncated = buf.len() as u64 > MAX_XML;
    buf.truncate(MAX_XML as usize);
    Ok((buf, truncated))
}

/// Runs one hook call. Copy-mode lxcprov containers (no layer) are left alone too.
pub fn run(runner: &dyn crate::exec::Runner, args: &[String], stdin: &mut dyn Read) -> Result<()> {
    let (xml, truncated) = read_bounded(stdin)?;
    if args.get(1).map(String::as_str) == Some("prepare") && !truncated {
        lab_partition_at_prepare(runner, &xml)?;
    }
    let contexts = if args.get(1).map(String::as_str) == Some("start") && crate::host::selinux_enabled() {
        let p = crate::host::lxc_contexts_path(Path::new("/etc"));
        crate::fsutil::read_regular_bounded_to_string(&p, 64 * 1024, "lxc_contexts").unwrap_or_default()
    } else {
        String::new()
    };
    match decide(args, &xml, truncated, &contexts)? {
        Verdict::Ignore => Ok(()),
        Verdict::Mount(pool, name) => {
            // A copy-storage tree with a disk quota: its image mounted at the tree.
            let Some(o) = super::existing(&pool, &name)? else {
                super::ensure_copy_disk_mounted(runner, &pool.join(&name))?;
                return Ok(());
            };
            super::ensure_mounted(runner, &o)?;
            Ok(())
        }
        Verdict::Label(pool, name, context) => {
            // Copy storage is labelled by lxcprov before the start (its own tree).
            let Some(o) = super::existing(&pool, &name)? else { return Ok(()) };
            super::ensure_mounted_labelled(runner, &o, &context)?;
            Ok(())
        }
        Verdict::Unmount(pool, name) => {
            if let Ok(n) = crate::name::Name::parse(&name) {
                let host = crate::host::HostRoot::real();
                crate::cgroups::forget_pids(&crate::cgroups::Tree::of(&host), &n);
            }
            let Some(o) = super::existing(&pool, &name)? else { return Ok(()) };
            if super::is_mounted(&o.target) {
                super::unmount(runner, &o.target)?;
            }
            Ok(())
        }
        Verdict::Bound(name, max) => {
            let n = crate::name::Name::parse(&name)?;
            let host = crate::host::HostRoot::real();
            let tree = crate::cgroups::Tree::of(&host);
            let pid = crate::cgroups::process_of(&tree, &n)
                .with_context(|| format!("{name} started, but no cgroup of it holds a process"))?;
            crate::cgroups::forget_pids(&tree, &n);
            crate::cgroups::apply_pids(&tree, runner, &host.proc(), pid, max)?;
            Ok(())
        }
    }
}

/// A lab's partition made again at `prepare` when it is missing (after a host reboot),
/// with the ceilings the student's metadata carries: libvirt does not make it, and the
/// student would not start without it.
fn lab_partition_at_prepare(runner: &dyn crate::exec::Runner, xml: &[u8]) -> Result<()> {
    let Ok(text) = std::str::from_utf8(xml) else { return Ok(()) };
    let Ok(d) = crate::facts::parse_domain(text) else { return Ok(()) };
    let (Some(meta), Some(part)) = (d.meta.as_ref(), d.partition.as_deref()) else { return Ok(()) };
    let (Some(lab), Some(c)) = (crate::cgroups::lab_of_partition(part), meta.ceilings.as_deref()) else {
        return Ok(());
    };
    let ceilings = crate::cgroups::Ceilings::from_attr(c)?;
    let tree = crate::cgroups::Tree::of(&crate::host::HostRoot::real());
    if !crate::cgroups::partition_exists(&tree, &lab) {
        crate::cgroups::prepare_partition(&tree, runner, &lab, &ceilings)?;
    }
    Ok(())
}

/// Domains the hook probe starts are named this, then lxcprov's PID.
pub const PROBE_PREFIX: &str = "lxcprov-hookprobe-";
/// The probe domain's init: never present (its root is an empty directory).
const PROBE_INIT: &str = "/lxcprov-hook-probe";

/// What starting a probe domain showed about libvirtd and the hook.
#[derive(Debug, PartialEq, Eq)]
pub enum Probe {
    /// libvirtd ran the hook at `prepare` (the start failed in the hook), with the evidence.
    Called(String),
    /// The start went past `prepare` without the hook refusing the probe: libvirtd did not
    /// run it.
    NotCalled(String),
    /// The start failed before it showed either.
    Unknown(String),
}

/// Proves whether libvirtd calls the LXC hook, by starting a transient probe domain that
/// lxcprov's hook must refuse at `prepare`: an lxcprov domain in the pool layout
/// (`POOL/NAME` under a scratch directory in `scratch`) whose overlay layer names a base that
/// was never prepared. If libvirtd runs the hook, the start fails with the hook's error
/// ("Hook script execution failed"); if it does not, the start goes on to look for the
/// domain's init in its empty root and fails there. Nothing is mounted either way; the
/// domain is transient and the scratch directory is removed. `create` starts a transient
/// domain from XML (libvirt's `virDomainCreateXML`); `destroy` stops one by name.
pub fn probe(
    scratch: &Path,
    create: &dyn Fn(&str) -> std::result::Result<(), String>,
    destroy: &dyn Fn(&str),
) -> Result<Probe> {
    use std::os::unix::fs::PermissionsExt;
    let name = format!("{PROBE_PREFIX}{}", std::process::id());
    let dir = tempfile::Builder::new()
        .prefix(".lxcprov-hookprobe-")
        .tempdir_in(scratch)
        .with_context(|| format!("creating the hook probe's directory in {}", scratch.display()))?;
    let pool = dir.path();
    let layer = super::layers_dir(pool).join(&name);
    for (d, mode) in [
        (pool.join(&name), 0o755),
        (super::private_dir(pool), 0o700),
        (super::bases_dir(pool), 0o700),
        (super::layers_dir(pool), 0o700),
        (layer.clone(), 0o700),
        (layer.join("upper"), 0o755),
        (layer.join("work"), 0o700),
    ] {
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(mode))?;
    }
    // A valid base id whose base does not exist: lxcprov's hook refuses to mount it.
    std::fs::write(layer.join("base"), "hook-probe-never-prepared\n")?;
    let xml = probe_xml(&name, &pool.join(&name));
    let r = create(&xml);
    if r.is_ok() {
        destroy(&name);
    }
    Ok(judge(r))
}

/// The probe domain: lxcprov's metadata, its root at `rootfs` (`POOL/NAME`), an init that
/// is not there, a network namespace of its own and no interface.
fn probe_xml(name: &str, rootfs: &Path) -> String {
    let esc = |s: &str| {
        s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('\'', "&apos;").replace('"', "&quot;")
    };
    format!(
        "<domain type='lxc'>\n  <name>{name}</name>\n  <metadata><lxcprov:container xmlns:lxcprov=\"{ns}\" profile=\"hook-probe\" distro=\"none\" release=\"none\" version=\"{v}\" security=\"none\"/></metadata>\n  <memory unit='MiB'>16</memory>\n  <os><type>exe</type><init>{PROBE_INIT}</init></os>\n  <features><privnet/></features>\n  <devices>\n    <filesystem type='mount'><source dir='{root}'/><target dir='/'/></filesystem>\n    <console type='pty'/>\n  </devices>\n</domain>\n",
        ns = crate::facts::NAMESPACE,
        v = env!("CARGO_PKG_VERSION"),
        root = esc(&rootfs.display().to_string()),
    )
}

/// Reads the probe's start: the hook's failure proves the call; getting as far as the
/// missing init (or a start) proves there was none.
fn judge(r: std::result::Result<(), String>) -> Probe {
    match r {
        Ok(()) => Probe::NotCalled("the probe domain started although lxcprov's hook refuses it at prepare".into()),
        Err(m) if m.contains("Hook script") || m.contains(HOOK_PATH) => Probe::Called(first_line(&m)),
        Err(m) if m.contains(PROBE_INIT) => Probe::NotCalled(first_line(&m)),
        Err(m) => Probe::Unknown(first_line(&m)),
    }
}

fn first_line(m: &str) -> String {
    let l = m.lines().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let mut s: String = l.chars().take(600).collect();
    if s.len() < l.len() {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const LXC: &str =
        "process = \"system_u:system_r:container_t:s0\"\nfile = \"system_u:object_r:container_file_t:s0\"\n";

    fn xml(name: &str, meta: bool, source: &str) -> String {
        let md = if meta {
            format!("<metadata><lxcprov:container xmlns:lxcprov=\"{}\" profile=\"web\" distro=\"debian12\" release=\"12\" version=\"0.1\" security=\"none\"/></metadata>", crate::facts::NAMESPACE)
        } else {
            String::new()
        };
        format!("<domain type='lxc'><name>{name}</name>{md}<devices><filesystem type='mount'><source dir='{source}'/><target dir='/'/></filesystem></devices></domain>")
    }
    fn a(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn lxcprov_domains_are_mounted_at_prepare_and_unmounted_at_release() {
        let x = xml("web1", true, "/var/lib/libvirt/filesystems/web1");
        let v = decide(&a(&["web1", "prepare", "begin", "-"]), x.as_bytes(), false, LXC).unwrap();
        assert_eq!(v, Verdict::Mount("/var/lib/libvirt/filesystems".into(), "web1".into()));
        let v = decide(&a(&["web1", "release", "end", "-"]), x.as_bytes(), false, LXC).unwrap();
        assert_eq!(v, Verdict::Unmount("/var/lib/libvirt/filesystems".into(), "web1".into()));
        for op in ["start", "started", "stopped", "reconnect"] {
            assert_eq!(decide(&a(&["web1", op, "begin", "-"]), x.as_bytes(), false, LXC).unwrap(), Verdict::Ignore);
        }
        // Under SELinux, `start` (the label generated by then) labels the whole tree by mounting
        // it with context= the image label; a label that is not a plain context is refused.
        let sel = x.replace("</devices>", "</devices><seclabel type='dynamic' model='selinux' relabel='yes'><label>system_u:system_r:container_t:s0:c4,c9</label><imagelabel>system_u:object_r:container_file_t:s0:c4,c9</imagelabel></seclabel>");
        let v = decide(&a(&["web1", "start", "begin", "-"]), sel.as_bytes(), false, LXC).unwrap();
        let want = crate::mcs::Context::parse("system_u:object_r:container_file_t:s0:c4,c9").unwrap();
        assert_eq!(v, Verdict::Label("/var/lib/libvirt/filesystems".into(), "web1".into(), want));
        let bad = sel.replace("s0:c4,c9</imagelabel>", "s0:c4,c9\",lowerdir=/</imagelabel>");
        assert!(decide(&a(&["web1", "start", "begin", "-"]), bad.as_bytes(), false, LXC).is_err());
        // A static label (a lab's student: relabel='no', no image label): the policy's file
        // type at the student's own level; without a `file` context in lxc_contexts, refused.
        let st = x.replace("</devices>", "</devices><seclabel type='static' model='selinux' relabel='no'><label>system_u:system_r:container_t:s0:c7,c30</label></seclabel>");
        let v = decide(&a(&["web1", "start", "begin", "-"]), st.as_bytes(), false, LXC).unwrap();
        let want = crate::mcs::Context::parse("system_u:object_r:container_file_t:s0:c7,c30").unwrap();
        assert_eq!(v, Verdict::Label("/var/lib/libvirt/filesystems".into(), "web1".into(), want));
        let e = decide(&a(&["web1", "start", "begin", "-"]), st.as_bytes(), false, "").unwrap_err();
        assert!(format!("{e:#}").contains("static SELinux label"), "{e:#}");
        let hostile = st.replace("s0:c7,c30</label>", "s0:c7,c30\",lowerdir=/</label>");
        assert!(decide(&a(&["web1", "start", "begin", "-"]), hostile.as_bytes(), false, LXC).is_err());
        // At prepare (no label yet) and for AppArmor, nothing to label.
        let v = decide(&a(&["web1", "prepare", "begin", "-"]), sel.as_bytes(), false, LXC).unwrap();
        assert_eq!(v, Verdict::Mount("/var/lib/libvirt/filesystems".into(), "web1".into()));
        let aa = x.replace("</devices>", "</devices><seclabel type='dynamic' model='apparmor'/>");
        assert_eq!(decide(&a(&["web1", "start", "begin", "-"]), aa.as_bytes(), false, LXC).unwrap(), Verdict::Ignore);
        // With a process limit in its metadata, `started` bounds it.
        let x = x.replace("security=\"none\"", "security=\"none\" pids=\"256\"");
        assert!(x.contains("pids=\"256\""), "{x}");
        let v = decide(&a(&["web1", "started", "begin", "-"]), x.as_bytes(), false, LXC).unwrap();
        assert_eq!(v, Verdict::Bound("web1".into(), 256));
    }

    #[test]
    fn foreign_domains_are_never_touched_whatever_they_send() {
        let x = xml("other", false, "/srv/other");
        assert_eq!(decide(&a(&["other", "prepare", "begin", "-"]), x.as_bytes(), false, LXC).unwrap(), Verdict::Ignore);
        // Garbage, a huge document, a hostile name: not lxcprov's, so exit 0 and nothing done.
        assert_eq!(decide(&a(&["../../x", "prepare"]), b"<<<not xml", false, LXC).unwrap(), Verdict::Ignore);
        assert_eq!(decide(&a(&["x", "prepare"]), &vec![b'a'; 4096], true, LXC).unwrap(), Verdict::Ignore);
        // lxcprov metadata but not its POOL/NAME layout: nothing of lxcprov's to mount.
        let x = xml("web1", true, "/srv/elsewhere");
        assert_eq!(decide(&a(&["web1", "prepare", "begin", "-"]), x.as_bytes(), false, LXC).unwrap(), Verdict::Ignore);
    }

    #[test]
    fn hostile_input_on_lxcprov_domains_is_refused() {
        let x = xml("web1", true, "/p/web1");
        // The argument names another domain than the XML, or a path.
        assert!(decide(&a(&["web2", "prepare", "begin", "-"]), x.as_bytes(), false, LXC).is_err());
        let e = decide(&a(&["../web1", "prepare", "begin", "-"]), x.as_bytes(), false, LXC).unwrap_err();
        assert!(format!("{e:#}").contains("refusing"), "{e:#}");
        // Over the size bound, or broken XML that names lxcprov's namespace.
        assert!(decide(&a(&["web1", "prepare"]), x.as_bytes(), true, LXC).is_err());
        let broken = format!("<domain><metadata xmlns:l='{}'>", crate::facts::NAMESPACE);
        assert!(decide(&a(&["web1", "prepare"]), broken.as_bytes(), false, LXC).is_err());
        assert!(decide(&a(&["web1"]), x.as_bytes(), false, LXC).is_err(), "no operation");
    }

    #[test]
    fn the_hook_probe_is_an_lxcprov_domain_the_hook_refuses_and_its_outcome_is_read_strictly() {
        let d = tempfile::tempdir().unwrap();
        let seen = std::cell::RefCell::new(String::new());
        let called = |xml: &str| {
            *seen.borrow_mut() = xml.to_string();
            // What lxcprov's hook decides for this XML, as libvirtd would call it.
            let name = crate::facts::parse_domain(xml).unwrap().name;
            let v = decide(&a(&[&name, "prepare", "begin", "-"]), xml.as_bytes(), false, LXC).unwrap();
            let Verdict::Mount(pool, n) = v else { panic!("{v:?}") };
            let base = std::fs::read_to_string(super::super::layers_dir(&pool).join(&n).join("base")).unwrap();
            assert!(!super::super::bases_dir(&pool).join(base.trim()).exists());
            // SAFETY: geteuid has no preconditions.
            let e = if unsafe { libc::geteuid() } == 0 {
                // As the hook runs it (root): the layer is found, its base refused.
                let o = super::super::existing(&pool, &n).unwrap().expect("a layer");
                super::super::ensure_mounted(&crate::exec::SystemRunner { echo: false }, &o).unwrap_err()
            } else {
                anyhow::anyhow!("the shared base is missing or incomplete")
            };
            Err(format!("Hook script execution failed: internal error: Child process (/etc/libvirt/hooks/lxc {name} prepare begin -) unexpected exit status 2: lxcprov: error: {e:#}"))
        };
        let p = probe(d.path(), &called, &|_| panic!("nothing to destroy")).unwrap();
        assert!(matches!(&p, Probe::Called(m) if m.contains("missing or incomplete")), "{p:?}");
        assert!(seen.borrow().contains(crate::facts::NAMESPACE));
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 0, "the probe's directory is removed");
        // Not called: libvirt got as far as the missing init.
        let not = |_: &str| {
            Err(format!("internal error: Timed out while reading log output: Failure in libvirt_lxc startup: cannot find init path '{PROBE_INIT}' relative to container root: No such file or directory"))
        };
        assert!(matches!(probe(d.path(), &not, &|_| {}).unwrap(), Probe::NotCalled(_)));
        let destroyed = std::cell::Cell::new(false);
        assert!(matches!(probe(d.path(), &|_| Ok(()), &|_| destroyed.set(true)).unwrap(), Probe::NotCalled(_)));
        assert!(destroyed.get(), "a probe that started is destroyed");
        // Anything else proves nothing either way.
        assert!(matches!(probe(d.path(), &|_| Err("out of memory".into()), &|_| {}).unwrap(), Probe::Unknown(_)));
    }

    #[test]
    fn stdin_is_read_to_a_bound() {
        let mut r = std::io::repeat(b'x');
        let (buf, truncated) = read_bounded(&mut r).unwrap();
        assert!(truncated);
        assert_eq!(buf.len() as u64, MAX_XML);
    }

    #[test]
    fn install_writes_a_current_hook_and_never_replaces_a_foreign_one() {
        let d = tempfile::tempdir().unwrap();
        let hook = d.path().join("hooks/lxc");
        let bin = std::env::current_exe().unwrap();
        assert_eq!(status(&hook), Status::Missing);
        assert!(install(&hook, &bin).unwrap(), "newly installed");
        assert_eq!(status(&hook), Status::Current(bin.clone()));
        assert!(!install(&hook, &bin).unwrap(), "an update, not new");
        std::fs::write(&hook, "#!/bin/sh\necho mine\n").unwrap();
        assert_eq!(status(&hook), Status::Foreign);
        assert!(install(&hook, &bin).is_err());
        assert_eq!(std::fs::read_to_string(&hook).unwrap(), "#!/bin/sh\necho mine\n");
        assert!(script(Path::new("/opt/my lxcprov/lxcprov")).contains("exec '/opt/my lxcprov/lxcprov' hook lxc"));
    }
}
