//! Facts about a domain read from libvirt's XML: the live domain XML (labels, vnet devices,
//! limits, lxcprov's metadata) and the LXC driver's status file
//! `/run/libvirt/lxc/NAME.xml`, which holds the container init's host PID
//! (`Domain::id()` is the libvirt_lxc controller's PID, not the init's).

use crate::profile::{IdRange, Idmap};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The XML namespace of lxcprov's `<metadata>` element.
pub const NAMESPACE: &str = "https://github.com/lxcprov/lxcprov/xmlns/1";

/// lxcprov's `<metadata>` record in a domain.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Meta {
    pub profile: String,
    pub distro: String,
    pub release: String,
    pub security: String,
    /// `security.seccomp` as created (`default`, `strict`, a file, `none`); `None` for
    /// domains created before lxcprov had seccomp.
    pub seccomp: Option<String>,
    /// `pids_max` as created: the container's process limit, applied at every start.
    pub pids: Option<u32>,
    /// The lab's ceilings its partition carries (`memory=B,pids=N,cpus=N`), so the hook can
    /// make the partition again after a host reboot.
    pub ceilings: Option<String>,
}

/// A domain's `<seclabel>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SecLabel {
    /// `selinux`, `apparmor` or `none`.
    pub model: String,
    /// `dynamic`, `static` or `none`.
    pub kind: String,
    /// `<label>`: the processes' label.
    pub label: Option<String>,
    /// `<imagelabel>`: the label libvirt wants on the container's files.
    pub imagelabel: Option<String>,
}

impl DomainXml {
    /// The processes' label (`<seclabel><label>`), if the domain has one.
    pub fn label(&self) -> Option<&str> {
        self.seclabel.as_ref().and_then(|s| s.label.as_deref())
    }
}

/// One `<interface>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Interface {
    /// `<target dev=.../>`: the host-side veth (live XML only).
    pub dev: Option<String>,
    /// `<source network=.../>`
    pub network: Option<String>,
    /// `<source bridge=.../>` (bridge interfaces, and network ones in live XML).
    pub bridge: Option<String>,
}

/// What the domain XML says.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DomainXml {
    pub name: String,
    pub uuid: Option<String>,
    pub meta: Option<Meta>,
    /// The first `<seclabel>` (the primary security driver's); `None` without one.
    pub seclabel: Option<SecLabel>,
    pub interfaces: Vec<Interface>,
    pub idmap: Option<Idmap>,
    pub rootfs: Option<PathBuf>,
    /// The host directory bind-mounted at `/.lxcprov` (lxcprov's seccomp shim directory).
    pub seccomp_dir: Option<PathBuf>,
    /// Files bind-mounted over the container's `/proc` (lxcfs's views): the targets.
    pub proc_views: Vec<String>,
    pub memory_limit_kib: Option<u64>,
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub blkio_weight: Option<u64>,
    pub init: Option<String>,
    /// `<resource><partition>`.
    pub partition: Option<String>,
}

fn to_kib(value: u64, unit: &str) -> u64 {
    match unit.to_ascii_lowercase().as_str() {
        "b" | "bytes" => value / 1024,
        "mib" | "m" => value * 1024,
        "gib" | "g" => value * 1024 * 1024,
        _ => value, // KiB is libvirt's default and what live XML uses
    }
}

fn child<'a, 'i>(parent: roxmltree::Node<'a, 'i>, tag: &str) -> Option<roxmltree::Node<'a, 'i>> {
    parent.children().find(|c| c.has_tag_name(tag))
}

/// Parses a domain's XML.
pub fn parse_domain(xml: &str) -> Result<DomainXml> {
    let doc = roxmltree::Document::parse(xml).context("parsing the domain XML")?;
    let root = doc.root_element();
    let text = |n: Option<roxmltree::Node>| n.and_then(|n| n.text()).map(|s| s.trim().to_string());
    let num = |n: Option<roxmltree::Node>| text(n).and_then(|s| s.parse::<u64>().ok());
    let mut d = DomainXml {
        name: text(child(root, "name")).unwrap_or_default(),
        uuid: text(child(root, "uuid")),
        ..Default::default()
    };
    if let Some(md) = child(root, "metadata") {
        if let Some(c) =
            md.children().find(|c| c.tag_name().name() == "container" && c.tag_name().namespace() == Some(NAMESPACE))
        {
            let a = |k: &str| c.attribute(k).unwrap_or_default().to_string();
            d.meta = Some(Meta {
                profile: a("profile"),
                distro: a("distro"),
                release: a("release"),
                security: a("security"),
                seccomp: c.attribute("seccomp").map(str::to_string),
                pids: c.attribute("pids").and_then(|p| p.parse().ok()),
                ceilings: c.attribute("ceilings").map(str::to_string),
            });
        }
    }
    // The first <seclabel> is the primary security driver's.
    if let Some(s) = child(root, "seclabel") {
        d.seclabel = s.attribute("type").map(|kind| SecLabel {
            model: s.attribute("model").unwrap_or("none").to_string(),
            kind: kind.to_string(),
            label: text(child(s, "label")),
            imagelabel: text(child(s, "imagelabel")),
        });
    }
    if let Some(devs) = child(root, "devices") {
        for i in devs.children().filter(|c| c.has_tag_name("interface")) {
            let src = child(i, "source");
            d.interfaces.push(Interface {
                dev: child(i, "target").and_then(|t| t.attribute("dev")).map(str::to_string),
                network: src.and_then(|s| s.attribute("network")).map(str::to_string),
                bridge: src.and_then(|s| s.attribute("bridge")).map(str::to_string),
            });
        }
        for f in devs.children().filter(|c| c.has_tag_name("filesystem")) {
            if child(f, "target").and_then(|t| t.attribute("dir")) == Some("/") {
                d.rootfs = child(f, "source").and_then(|s| s.attribute("dir")).map(PathBuf::from);
            }
            if child(f, "target").and_then(|t| t.attribute("dir")) == Some(crate::seccomp::GUEST_DIR) {
                d.seccomp_dir = child(f, "source").and_then(|s| s.attribute("dir")).map(PathBuf::from);
            }
            if let Some(t) = child(f, "target").and_then(|t| t.attribute("dir")).filter(|t| t.starts_with("/proc/")) {
                d.proc_views.push(t.to_string());
            }
        }
    }
    if let Some(m) = child(root, "idmap") {
        let range = |tag: &str| -> Option<IdRange> {
            let n = child(m, tag)?;
            let g = |k| n.attribute(k).and_then(|v| v.parse::<u32>().ok());
            Some(IdRange { start: g("start")?, target: g("target")?, count: g("count")? })
        };
        if let (Some(uid), Some(gid)) = (range("uid"), range("gid")) {
            d.idmap = Some(Idmap { uid, gid });
        }
    }
    if let Some(r) = child(root, "resource") {
        d.partition = child(r, "partition").and_then(|p| p.text()).map(|t| t.trim().to_string());
    }
    if let Some(mt) = child(root, "memtune") {
        if let Some(h) = child(mt, "hard_limit") {
            d.memory_limit_kib = num(Some(h)).map(|v| to_kib(v, h.attribute("unit").unwrap_or("KiB")));
        }
    }
    // Without a hard limit, libvirt applies <memory> as the cgroup memory limit.
    if d.memory_limit_kib.is_none() {
        if let Some(m) = child(root, "memory") {
            d.memory_limit_kib = num(Some(m)).map(|v| to_kib(v, m.attribute("unit").unwrap_or("KiB")));
        }
    }
    if let Some(ct) = child(root, "cputune") {
        d.cpu_shares = num(child(ct, "shares"));
        d.cpu_period = num(child(ct, "period"));
        d.cpu_quota = text(child(ct, "quota")).and_then(|s| s.parse().ok());
    }
    if let Some(bt) = child(root, "blkiotune") {
        d.blkio_weight = num(child(bt, "weight"));
    }
    if let Some(os) = child(root, "os") {
        d.init = text(child(os, "init"));
    }
    Ok(d)
}

/// The container init's host PID, from the LXC driver's status file under `run_dir`
/// (normally `/run/libvirt/lxc`).
pub fn init_pid(run_dir: &Path, name: &str) -> Option<u32> {
    let xml = crate::fsutil::read_state_to_string(&run_dir.join(format!("{name}.xml")), 1 << 20, "libvirt status file")
        .ok()??;
    let doc = roxmltree::Document::parse(&xml).ok()?;
    doc.descendants()
        .find(|n| n.has_tag_name("init") && n.attribute("pid").is_some())
        .and_then(|n| n.attribute("pid"))
        .and_then(|p| p.parse().ok())
}

/// libvirt's LXC status directory.
pub const LXC_RUN_DIR: &str = "/run/libvirt/lxc";

/// The container a process belongs to, from its cgroup: `.../lxc-PID-NAME.libvirt-lxc`
/// (libvirt's own cgroups) or `.../machine-lxc\x2dPID\x2dNAME.scope` (systemd-machined).
pub fn container_of(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|l| {
        l.split('/').find_map(|seg| {
            if let Some(inner) = seg.strip_suffix(".libvirt-lxc").and_then(|s| s.strip_prefix("lxc-")) {
                return inner.split_once('-').map(|(_, name)| name.to_string());
            }
            let inner = seg.strip_suffix(".scope")?.strip_prefix("machine-lxc\\x2d")?;
            let (_, name) = inner.split_once("\\x2d")?;
            Some(name.replace("\\x2d", "-"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: &str = r#"<domain type='lxc' id='16351'>
  <name>web1</name><uuid>0b7e3c4e-5c1f-4bf6-9a43-5b9e2e1b2c3d</uuid>
  <metadata><lxcprov:container xmlns:lxcprov="https://github.com/lxcprov/lxcprov/xmlns/1" profile="web" distro="debian12" release="12" version="0.1.0" security="selinux"/></metadata>
  <memory unit='KiB'>524288</memory>
  <memtune><hard_limit unit='KiB'>524288</hard_limit></memtune>
  <cputune><shares>512</shares><period>100000</period><quota>50000</quota></cputune>
  <blkiotune><weight>200</weight></blkiotune>
  <os><type arch='x86_64'>exe</type><init>/sbin/init</init></os>
  <idmap><uid start='0' target='200000' count='65536'/><gid start='0' target='200000' count='65536'/></idmap>
  <devices>
    <filesystem type='mount' accessmode='passthrough'><source dir='/var/lib/libvirt/filesystems/web1'/><target dir='/'/></filesystem>
    <interface type='network'><mac address='52:54:00:aa:bb:cc'/><source network='lxcprov-isolated' portid='x' bridge='virbr1'/><target dev='vnet3'/><filterref filter='clean-traffic'/></interface>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'><label>system_u:system_r:container_t:s0:c297,c568</label><imagelabel>system_u:object_r:container_file_t:s0:c297,c568</imagelabel></seclabel>
</domain>"#;

    #[test]
    fn parses_live_xml() {
        let d = parse_domain(LIVE).unwrap();
        assert_eq!(d.name, "web1");
        let m = d.meta.clone().unwrap();
        assert_eq!((m.profile.as_str(), m.distro.as_str()), ("web", "debian12"));
        assert_eq!(d.label(), Some("system_u:system_r:container_t:s0:c297,c568"));
        let s = d.seclabel.as_ref().unwrap();
        assert_eq!((s.model.as_str(), s.kind.as_str()), ("selinux", "dynamic"));
        assert_eq!(s.imagelabel.as_deref(), Some("system_u:object_r:container_file_t:s0:c297,c568"));
        assert_eq!(d.interfaces[0].dev.as_deref(), Some("vnet3"));
        assert_eq!(d.interfaces[0].bridge.as_deref(), Some("virbr1"));
        assert_eq!(d.idmap.unwrap().uid.target, 200000);
        assert_eq!(d.rootfs.unwrap(), PathBuf::from("/var/lib/libvirt/filesystems/web1"));
        assert_eq!(d.memory_limit_kib, Some(524288));
        assert_eq!(
            (d.cpu_shares, d.cpu_period, d.cpu_quota, d.blkio_weight),
            (Some(512), Some(100000), Some(50000), Some(200))
        );
    }

    #[test]
    fn parses_rendered_xml_units() {
        let x = "<domain type='lxc'><name>a</name><memtune><hard_limit unit='MiB'>128</hard_limit></memtune></domain>";
        assert_eq!(parse_domain(x).unwrap().memory_limit_kib, Some(131072));
        assert!(parse_domain(x).unwrap().meta.is_none());
    }

    #[test]
    fn reads_init_pid_from_status_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("c1.xml"),
            "<domstatus state='running' reason='booted' pid='16351'>\n  <init pid='16352'/>\n<domain type='lxc'><os><init>/sbin/init</init></os></domain></domstatus>",
        )
        .unwrap();
        assert_eq!(init_pid(d.path(), "c1"), Some(16352));
        assert_eq!(init_pid(d.path(), "nope"), None);
    }
}
