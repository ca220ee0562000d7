//! Rendering libvirt XML from Tera templates.
//!
//! The templates in `templates/` are embedded at build time and can be replaced with
//! `--templates DIR`. Values are XML-escaped by a dedicated escaper: Tera's built-in one is
//! for HTML and turns `/` into `&#x2F;`, which is valid but makes every path unreadable.
//! Nothing here touches the host except reading an override directory.

use crate::distro::Distro;
use crate::name::Name;
use crate::profile::{CapState, Idmap, LabelType, NetMode, Profile, SecModel};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The XML namespace of lxcprov's `<metadata>` element.
pub const NAMESPACE: &str = "https://github.com/lxcprov/lxcprov/xmlns/1";

const DOMAIN_TEMPLATE: &str = include_str!("../templates/domain.xml");
const NETWORK_TEMPLATE: &str = include_str!("../templates/network.xml");

/// Escapes text for XML element content and attribute values (single or double quoted).
/// Newlines and tabs are kept in text but encoded so attribute normalisation keeps them.
pub fn escape_xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            // Other C0 controls, U+FFFE and U+FFFF cannot appear in XML 1.0 at all (not even
            // as character references); profile validation refuses them, and this keeps the
            // document well-formed should one slip through (a template override, a name).
            c if !crate::text::is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Everything the domain template needs, already resolved.
#[derive(Clone, Debug, Serialize)]
pub struct DomainSpec {
    pub ns: &'static str,
    pub name: String,
    pub uuid: Option<String>,
    pub description: String,
    pub profile: String,
    pub distro: String,
    pub release: String,
    pub version: &'static str,
    pub memory_mib: u64,
    pub vcpus: u32,
    pub cpu_shares: Option<u32>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub blkio_weight: Option<u32>,
    pub arch: String,
    pub init_path: String,
    pub init_args: Vec<String>,
    pub idmap: Option<Idmap>,
    pub cap_policy: &'static str,
    pub caps: Vec<CapSpec>,
    pub rootfs: String,
    pub net_mode: &'static str,
    pub net_name: String,
    pub net_filter: Option<String>,
    /// The host-side device name, set only with a filter: libvirt 9.0's LXC driver fails
    /// with "filter binding has no port dev name" when it has to pick one itself.
    pub net_target: Option<String>,
    pub console: bool,
    pub seclabel_type: &'static str,
    pub security_model: &'static str,
    pub static_label: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CapSpec {
    pub name: String,
    pub state: &'static str,
}

/// What the command line may change in a profile.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub security: Option<SecModel>,
}

/// Applies command-line overrides to a profile.
pub fn apply_overrides(p: &mut Profile, o: &Overrides) {
    if let Some(model) = o.security {
        p.security.model = model;
        match model {
            SecModel::None => {
                p.security.label = LabelType::None;
                p.security.static_label = None;
            }
            _ if p.security.label == LabelType::None => p.security.label = LabelType::Dynamic,
            _ => {}
        }
    }
}

impl DomainSpec {
    /// Resolves a profile for container `name` with its rootfs at `rootfs`.
    pub fn new(
        name: &Name,
        profile_name: &str,
        p: &Profile,
        distro: &Distro,
        rootfs: &Path,
        uuid: Option<String>,
    ) -> DomainSpec {
        let sec = &p.security;
        let seclabel_type = match (sec.model, sec.label) {
            (SecModel::None, _) | (_, LabelType::None) => "none",
            (_, LabelType::Static) => "static",
            (_, LabelType::Dynamic) => "dynamic",
        };
        DomainSpec {
            ns: NAMESPACE,
            name: name.to_string(),
            uuid,
            description: if p.description.is_empty() {
                format!("lxcprov container from profile {profile_name}")
            } else {
                p.description.clone()
            },
            profile: profile_name.to_string(),
            distro: distro.name.clone(),
            release: p.release_or(distro),
            version: env!("CARGO_PKG_VERSION"),
            memory_mib: p.memory_mib,
            vcpus: p.vcpus,
            cpu_shares: p.cpu.shares,
            cpu_period: p.cpu.period_us,
            cpu_quota: p.cpu.quota_us,
            blkio_weight: p.blkio_weight,
            arch: crate::distro::host_arch().to_string(),
            init_path: p.init.path.clone(),
            init_args: p.init.args.clone(),
            idmap: sec.idmap,
            cap_policy: match sec.capabilities.policy {
                crate::profile::CapPolicy::Default => "default",
                crate::profile::CapPolicy::Allow => "allow",
                crate::profile::CapPolicy::Deny => "deny",
            },
            caps: sec
                .capabilities
                .set
                .iter()
                .map(|(n, s)| CapSpec { name: n.clone(), state: if *s == CapState::On { "on" } else { "off" } })
                .collect(),
            rootfs: rootfs.display().to_string(),
            net_mode: match p.network.mode {
                NetMode::Bridge => "bridge",
                NetMode::Network => "network",
                NetMode::Isolated => "isolated",
            },
            net_name: p.network.name.clone(),
            net_filter: p.network.filter.clone(),
            net_target: p.network.filter.as_ref().map(|_| host_dev_name(name)),
            console: p.console.enabled,
            seclabel_type,
            security_model: sec.model.as_str(),
            static_label: sec.static_label.clone(),
        }
    }
}

/// A stable host-side interface name for a container: `vlx` and 8 hex digits of a digest
/// of its name (interface names have at most 15 characters; `vnet` is libvirt's own prefix).
pub fn host_dev_name(name: &Name) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_str().as_bytes());
    format!("vlx{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
}

/// The network template's input.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkSpec {
    pub ns: &'static str,
    pub name: String,
    pub version: &'static str,
}

impl NetworkSpec {
    pub fn new(name: &str) -> NetworkSpec {
        NetworkSpec { ns: NAMESPACE, name: name.to_string(), version: env!("CARGO_PKG_VERSION") }
    }
}

/// The template engine, with the embedded templates or those from an override directory.
pub struct Templates {
    tera: tera::Tera,
}

impl Templates {
    /// Loads `domain.xml` and `network.xml` from `dir` where present, else the embedded ones.
    pub fn load(dir: Option<&Path>) -> Result<Templates> {
        let mut sources = [
            ("domain.xml".to_string(), DOMAIN_TEMPLATE.to_string()),
            ("network.xml".to_string(), NETWORK_TEMPLATE.to_string()),
        ];
        if let Some(dir) = dir {
            if !dir.is_dir() {
                anyhow::bail!("--templates {}: not a directory", dir.display());
            }
            for (name, text) in sources.iter_mut() {
                let path: PathBuf = dir.join(&*name);
                if path.exists() {
                    *text = std::fs::read_to_string(&path)
                        .with_context(|| format!("cannot read template {}", path.display()))?;
                }
            }
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".xml"]);
        tera.set_escape_fn(escape_xml);
        tera.add_raw_templates(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .map_err(|e| anyhow::anyhow!("template error: {}", tera_chain(&e)))?;
        Ok(Templates { tera })
    }

    fn render<T: Serialize>(&self, template: &str, value: &T) -> Result<String> {
        let ctx = tera::Context::from_serialize(value)
            .map_err(|e| anyhow::anyhow!("template context: {}", tera_chain(&e)))?;
        let mut out = self
            .tera
            .render(template, &ctx)
            .map_err(|e| anyhow::anyhow!("rendering {template}: {}", tera_chain(&e)))?;
        if !out.ends_with('\n') {
            out.push('\n');
        }
        Ok(out)
    }

    pub fn domain(&self, spec: &DomainSpec) -> Result<String> {
        self.render("domain.xml", spec)
    }

    pub fn network(&self, spec: &NetworkSpec) -> Result<String> {
        self.render("network.xml", spec)
    }
}

/// Tera hides the useful part of an error in its source chain.
fn tera_chain(e: &tera::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        parts.push(s.to_string());
        src = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_text() {
        assert_eq!(escape_xml("a<b&c>'d\"]]>"), "a&lt;b&amp;c&gt;&apos;d&quot;]]&gt;");
        assert_eq!(escape_xml("/var/lib/x"), "/var/lib/x");
        assert_eq!(escape_xml("l1\nl2"), "l1&#10;l2");
    }

    #[test]
    fn escaped_text_is_always_well_formed() {
        for hostile in ["a\u{0}b", "\u{1b}[2J", "x\u{fffe}y", "\u{ffff}", "\u{b}\u{c}", "ok\r\n\t", "\u{10ffff}"] {
            let doc = format!("<a b='{}'>{}</a>", escape_xml(hostile), escape_xml(hostile));
            assert!(roxmltree::Document::parse(&doc).is_ok(), "{hostile:?}: {doc}");
        }
        assert_eq!(escape_xml("x\u{fffe}"), "x\u{fffd}");
    }

    #[test]
    fn hostile_names_and_profiles_render_well_formed_xml() {
        let t = Templates::load(None).unwrap();
        let d = crate::distro::lookup("debian12").unwrap();
        let name = Name::parse("c1").unwrap();
        let p = Profile {
            description: "x <y> & \"q\" ]]> \u{fdd0}\u{ffff}\u{1b}\u{b} end".into(),
            init: crate::profile::Init {
                path: "/sbin/init".into(),
                args: vec!["a\u{fffe}b".into(), "tab\tnl\n".into()],
            },
            ..Default::default()
        };
        for profile_name in ["plain", "evil\u{ffff}\u{0}name", "<x>'\""] {
            let spec = DomainSpec::new(&name, profile_name, &p, &d, Path::new("/pool/c1"), None);
            let xml = t.domain(&spec).unwrap();
            let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}: {xml}"));
            let desc = doc.descendants().find(|n| n.has_tag_name("description")).unwrap().text().unwrap();
            assert!(desc.starts_with("x <y> & \"q\" ]]>"), "{desc}");
        }
        // Validation refuses what escaping had to replace.
        assert!(p.validate().is_err());
    }

    #[test]
    fn undefined_variables_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("network.xml"), "<network><name>{{ nope }}</name></network>").unwrap();
        let t = Templates::load(Some(dir.path())).unwrap();
        let e = t.network(&NetworkSpec::new("n")).unwrap_err().to_string();
        assert!(e.contains("nope"), "{e}");
    }

    #[test]
    fn missing_template_dir_is_an_error() {
        assert!(Templates::load(Some(Path::new("/nonexistent/lxcprov"))).is_err());
    }
}
