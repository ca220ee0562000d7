//! Rendering libvirt XML from Tera templates.
//!
//! The templates in `templates/` are embedded at build time and can be replaced with
//! `--templates DIR`. Values are XML-escaped by a dedicated escaper: Tera's built-in one is
//! for HTML and turns `/` into `&#x2F;`, which is valid but makes every path unreadable.
//! Nothing here touches the host except reading an override directory.

use crate::distro::Distro;
use crate::name::Name;
use crate::profile::{CapState, Idmap, LabelType, NetMode, Profile, SecModel};
use anyhow::Result;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// The XML namespace of lxcprov's `<metadata>` element.
pub use crate::facts::NAMESPACE;

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

/// One lxcfs file bound read-only over the container's `/proc` file.
#[derive(Clone, Debug, Serialize)]
pub struct ProcView {
    pub source: String,
    pub target: String,
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
    pub pids_max: Option<u32>,
    /// A lab's cgroup partition (`<resource><partition>`) and its ceilings (metadata).
    pub partition: Option<String>,
    pub ceilings: Option<String>,
    /// lxcfs's `/proc` files bound over the container's own: (source, target).
    pub proc_views: Vec<ProcView>,
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
    /// A fixed MAC and the address the filter pins (labs with SSH access).
    pub net_mac: Option<String>,
    pub net_ip: Option<String>,
    pub console: bool,
    pub seclabel_type: &'static str,
    pub security_model: &'static str,
    pub static_label: Option<String>,
    /// The host directory bind-mounted read-only at `/.lxcprov` (the seccomp init shim and
    /// its filter); with it, `<init>` is the shim and the real init its first argument.
    pub seccomp_dir: Option<String>,
    pub shim: &'static str,
    /// `security.seccomp`, recorded in the domain's metadata.
    pub seccomp: String,
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
            pids_max: p.pids_max,
            partition: p.partition.clone(),
            ceilings: p.partition_ceilings.clone(),
            proc_views: vec![],
            vcpus: p.vcpus,
            cpu_shares: p.cpu.shares,
            cpu_period: p.cpu.period_us,
            cpu_quota: p.cpu.quota_us,
            blkio_weight: p.blkio_weight,
            arch: crate::distro::host_arch().to_string(),
            init_path: p.init.path.clone(),
            init_args: p.init.args.clone(),
            idmap: sec.idmap_map(),
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
            net_mac: p.network.lease.as_ref().map(|l| l.mac.clone()),
            net_ip: p.network.lease.as_ref().map(|l| l.ip.clone()),
            console: p.console.enabled,
            seclabel_type,
            security_model: sec.model.as_str(),
            static_label: sec.static_label.clone(),
            seccomp_dir: None,
            shim: crate::seccomp::GUEST_SHIM,
            seccomp: sec.seccomp.clone(),
        }
    }

    /// Puts the seccomp init shim in front of the init, from `dir`, unless the profile's
    /// `security.seccomp` is `none`.
    pub fn with_seccomp(mut self, p: &Profile, dir: &Path) -> DomainSpec {
        if p.security.seccomp_choice() != crate::seccomp::Choice::None {
            self.seccomp_dir = Some(dir.display().to_string());
        }
        self
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
    /// With it: an address on the host, fixed leases only, no DNS, isolated ports.
    pub dhcp: Option<crate::profile::Dhcp>,
}

impl NetworkSpec {
    pub fn new(name: &str) -> NetworkSpec {
        NetworkSpec { ns: NAMESPACE, name: name.to_string(), version: env!("CARGO_PKG_VERSION"), dhcp: None }
    }

    pub fn for_profile(n: &crate::profile::Network) -> NetworkSpec {
        NetworkSpec { dhcp: n.dhcp.clone(), ..NetworkSpec::new(&n.name) }
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
                if std::fs::symlink_metadata(&path).is_ok() {
                    *text = crate::fsutil::read_regular_bounded_to_string(&path, TEMPLATE_MAX, "template")?;
                    check_template_text(text).map_err(|e| anyhow::anyhow!("template {}: {e}", path.display()))?;
                }
            }
        }
        let mut tera = tera::Tera::default();
        tera.autoescape_on(vec![".xml"]);
        tera.set_escape_fn(escape_xml);
        // Tera's `range` would build an array of any length; ours stops at RANGE_MAX items.
        tera.register_function("range", bounded_range);
        tera.add_raw_templates(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
            .map_err(|e| anyhow::anyhow!("template error: {}", tera_chain(&e)))?;
        for (name, _) in &sources {
            let t = tera.get_template(name).map_err(|e| anyhow::anyhow!("template error: {}", tera_chain(&e)))?;
            check_template(t).map_err(|e| match dir {
                Some(d) => anyhow::anyhow!("template {}: {e}", d.join(name).display()),
                None => anyhow::anyhow!("built-in template {name}: {e}"),
            })?;
        }
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

/// Largest template file read from `--templates DIR` (the built-in ones are about 3 kB).
pub const TEMPLATE_MAX: u64 = 1 << 20;

/// Deepest nesting of brackets and of block tags accepted in a template: Tera's parser
/// and renderer recurse once per level, and a few thousand levels overflow the stack.
pub const TEMPLATE_MAX_DEPTH: usize = 64;

/// Most items `range()` may produce in a template.
pub const RANGE_MAX: i64 = 4096;

/// Refuses a template text nested too deeply for Tera, before Tera sees it: its parser and
/// renderer recurse once per level of brackets, of operators (`1 + 1 + …` is a chain of
/// nested nodes) and of block tags, and a few thousand levels overflow the stack, which
/// aborts the process without a message.
///
/// Inside each `{{ }}` and `{% %}` tag (string literals skipped, as Tera's lexer does) it
/// counts open brackets `( [ {` and the operators and filters (`+ - * / % ~ < > ! = |` and the words
/// `and or not in is`), each against [`TEMPLATE_MAX_DEPTH`]; across the template it counts
/// open block tags (`if for block filter macro raw` against their `end…` tags). Operators
/// are counted, not their depth, so this can only over-count.
pub fn check_template_text(text: &str) -> std::result::Result<(), String> {
    let bytes = text.as_bytes();
    let line_of = |at: usize| text[..at].bytes().filter(|&b| b == b'\n').count() + 1;
    let mut blocks: usize = 0;
    let mut i = 0;
    while i + 1 < bytes.len() {
        let close = match &bytes[i..i + 2] {
            b"{{" => b'}',
            b"{%" => b'%',
            b"{#" => {
                i = text[i + 2..].find("#}").map_or(bytes.len(), |e| i + 2 + e + 2);
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        let start = i;
        let (mut depth, mut ops) = (0usize, 0usize);
        let mut quote: Option<u8> = None;
        let mut word = String::new();
        let mut first_word: Option<String> = None;
        let mut j = i + 2;
        let end_word = |word: &mut String, ops: &mut usize, first: &mut Option<String>| {
            if !word.is_empty() {
                if matches!(word.as_str(), "and" | "or" | "not" | "in" | "is") {
                    *ops += 1;
                }
                first.get_or_insert_with(|| word.clone());
                word.clear();
            }
        };
        while j < bytes.len() {
            let c = bytes[j];
            if let Some(q) = quote {
                if c == q {
                    quote = None;
                }
                j += 1;
                continue;
            }
            if c == close && bytes.get(j + 1) == Some(&b'}') {
                break;
            }
            if c.is_ascii_alphanumeric() || c == b'_' {
                word.push(c as char);
                j += 1;
                continue;
            }
            end_word(&mut word, &mut ops, &mut first_word);
            match c {
                b'"' | b'\'' | b'`' => quote = Some(c),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                b'+' | b'-' | b'*' | b'/' | b'%' | b'~' | b'<' | b'>' | b'!' | b'=' | b'|' => ops += 1,
                _ => {}
            }
            if depth > TEMPLATE_MAX_DEPTH {
                return Err(format!(
                    "line {}: expression nested more than {TEMPLATE_MAX_DEPTH} levels deep",
                    line_of(start)
                ));
            }
            if ops > TEMPLATE_MAX_DEPTH {
                return Err(format!("line {}: more than {TEMPLATE_MAX_DEPTH} operators in one tag", line_of(start)));
            }
            j += 1;
        }
        end_word(&mut word, &mut ops, &mut first_word);
        i = j + 2;
        if close == b'%' {
            match first_word.as_deref().unwrap_or("") {
                "raw" => {
                    // Raw text is not parsed: go on at its end tag.
                    blocks += 1;
                    let mut k = i.min(bytes.len());
                    i = bytes.len();
                    while let Some(e) = text[k..].find("{%") {
                        let at = k + e;
                        if text[at + 2..].trim_start_matches('-').trim_start().starts_with("endraw") {
                            i = at;
                            break;
                        }
                        k = at + 2;
                    }
                }
                "if" | "for" | "block" | "filter" | "macro" => blocks += 1,
                w if w.starts_with("end") => blocks = blocks.saturating_sub(1),
                _ => {}
            }
            if blocks > TEMPLATE_MAX_DEPTH {
                return Err(format!(
                    "line {}: block tags nested more than {TEMPLATE_MAX_DEPTH} levels deep",
                    line_of(start)
                ));
            }
        }
    }
    Ok(())
}

/// Refuses what lets a template call itself: `{% include %}`, `{% extends %}`,
/// `{% import %}` and macro definitions. A template that includes itself (or the other
/// one, which includes it back) or a macro that calls itself recurses until the stack
/// overflows and the process aborts without a message; lxcprov's two templates are
/// self-contained, so these are simply not allowed in them.
fn check_template(t: &tera::Template) -> std::result::Result<(), String> {
    use tera::ast::Node;
    if let Some(parent) = &t.parent {
        return Err(format!("{{% extends \"{parent}\" %}} is not allowed (templates must be self-contained)"));
    }
    if let Some((file, _)) = t.imported_macro_files.first() {
        return Err(format!("{{% import \"{file}\" %}} is not allowed (templates must be self-contained)"));
    }
    if let Some(name) = t.macros.keys().next() {
        return Err(format!("macro {name:?}: macros are not allowed (they can recurse without bound)"));
    }
    // Includes may sit inside any block: walk the tree (its depth is bounded by
    // check_template_text for user templates).
    let mut stack: Vec<&Node> = t.ast.iter().collect();
    while let Some(n) = stack.pop() {
        match n {
            Node::Include(_, names, _) => {
                return Err(format!(
                    "{{% include \"{}\" %}} is not allowed (templates must be self-contained)",
                    names.join("\", \"")
                ))
            }
            Node::Extends(_, p) => return Err(format!("{{% extends \"{p}\" %}} is not allowed")),
            Node::ImportMacro(_, f, _) => return Err(format!("{{% import \"{f}\" %}} is not allowed")),
            Node::MacroDefinition(_, m, _) => return Err(format!("macro {:?}: macros are not allowed", m.name)),
            Node::Block(_, b, _) => stack.extend(b.body.iter()),
            Node::Forloop(_, f, _) => {
                stack.extend(f.body.iter());
                if let Some(e) = &f.empty_body {
                    stack.extend(e.iter());
                }
            }
            Node::If(i, _) => {
                for (_, _, body) in &i.conditions {
                    stack.extend(body.iter());
                }
                if let Some((_, body)) = &i.otherwise {
                    stack.extend(body.iter());
                }
            }
            Node::FilterSection(_, f, _) => stack.extend(f.body.iter()),
            _ => {}
        }
    }
    Ok(())
}

/// `range(end=N)`, `range(start=A, end=B, step_by=S)` as in Tera, refusing more than
/// [`RANGE_MAX`] items (Tera's own would allocate whatever a template asks for).
fn bounded_range(args: &std::collections::HashMap<String, tera::Value>) -> tera::Result<tera::Value> {
    let int = |k: &str, default: Option<i64>| -> tera::Result<i64> {
        match args.get(k) {
            Some(v) => v.as_i64().ok_or_else(|| tera::Error::msg(format!("range: `{k}` must be an integer"))),
            None => default.ok_or_else(|| tera::Error::msg(format!("range: `{k}` is required"))),
        }
    };
    let (start, end, step) = (int("start", Some(0))?, int("end", None)?, int("step_by", Some(1))?);
    if step <= 0 {
        return Err(tera::Error::msg("range: `step_by` must be positive"));
    }
    if start > end {
        return Err(tera::Error::msg("range: `start` must not be greater than `end`"));
    }
    let count = (end - start).saturating_add(step - 1) / step;
    if count > RANGE_MAX {
        return Err(tera::Error::msg(format!("range: {count} items is more than the limit of {RANGE_MAX}")));
    }
    Ok(tera::Value::Array((start..end).step_by(step as usize).map(tera::Value::from).collect()))
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
    fn load_with(name: &str, text: &str) -> anyhow::Result<Templates> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(name), text).unwrap();
        Templates::load(Some(dir.path()))
    }

    fn load_err(name: &str, text: &str) -> String {
        // On a thread with a small stack, like a deeply recursing render would need: a
        // stack overflow aborts the whole test binary, so this must come back with an error.
        let (name, text) = (name.to_string(), text.to_string());
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || match load_with(&name, &text) {
                Err(e) => format!("{e:#}"),
                Ok(t) => match t.network(&NetworkSpec::new("n")).and_then(|_| {
                    let spec: DomainSpec = test_spec();
                    t.domain(&spec)
                }) {
                    Err(e) => format!("{e:#}"),
                    Ok(_) => "no error".into(),
                },
            })
            .unwrap()
            .join()
            .unwrap()
            .chars()
            .take(400)
            .collect()
    }

    fn test_spec() -> DomainSpec {
        let name = Name::parse("t1").unwrap();
        let all = crate::profile::load_all(&crate::profile::Sources::default()).unwrap();
        let l = all.into_iter().next().unwrap();
        let d = crate::distro::lookup(&l.profile.distro).unwrap();
        DomainSpec::new(&name, &l.name, &l.profile, &d, Path::new("/x"), None)
    }

    /// libvirt's own schema check, where the tool is installed (the CI host has it).
    fn schema_ok(xml: &str, kind: &str) {
        if crate::exec::which("virt-xml-validate").is_none() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("doc.xml");
        std::fs::write(&f, xml).unwrap();
        let o = std::process::Command::new("virt-xml-validate").arg(&f).arg(kind).output().unwrap();
        assert!(
            o.status.success(),
            "{}{}\n{xml}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    #[test]
    fn a_lab_network_with_ssh_access_has_fixed_leases_isolated_ports_and_no_dns() {
        use crate::profile::{Dhcp, DhcpHost};
        let t = Templates::load(None).unwrap();
        let host = |i: u8| DhcpHost {
            mac: format!("52:54:00:d5:07:{i:02x}"),
            ip: format!("10.213.7.{i}"),
            name: format!("s{i}"),
        };
        let mut n = crate::profile::Network { name: "lxcprov-lab-l".into(), ..Default::default() };
        n.dhcp = Some(Dhcp {
            address: "10.213.7.1".into(),
            netmask: "255.255.255.0".into(),
            hosts: vec![host(11), host(12)],
        });
        let xml = t.network(&NetworkSpec::for_profile(&n)).unwrap();
        schema_ok(&xml, "network");
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let hosts: Vec<(&str, &str)> = doc
            .descendants()
            .filter(|e| e.has_tag_name("host"))
            .map(|e| (e.attribute("mac").unwrap(), e.attribute("ip").unwrap()))
            .collect();
        assert_eq!(hosts, [("52:54:00:d5:07:0b", "10.213.7.11"), ("52:54:00:d5:07:0c", "10.213.7.12")]);
        assert!(doc.descendants().all(|e| !e.has_tag_name("range")), "no dynamic range: {xml}");
        assert!(xml.contains("<port isolated='yes'/>") && xml.contains("<dns enable='no'/>"), "{xml}");
        assert!(doc.descendants().all(|e| !e.has_tag_name("forward")), "never forwarded: {xml}");
        // Without it, the network stays as it was: no address at all.
        let plain = t.network(&NetworkSpec::new("lxcprov-isolated")).unwrap();
        assert!(!plain.contains("<ip") && !plain.contains("isolated='yes'"), "{plain}");

        // The student's domain: its fixed MAC, and the filter pinned to its address.
        let name = Name::parse("l-s11").unwrap();
        let all = crate::profile::load_all(&crate::profile::Sources::default()).unwrap();
        let mut p = all.into_iter().find(|l| l.name == "web").unwrap().profile;
        p.network.lease = Some(host(11));
        let d = crate::distro::lookup(&p.distro).unwrap();
        let xml = t.domain(&DomainSpec::new(&name, "web", &p, &d, Path::new("/x"), None)).unwrap();
        schema_ok(&xml, "domain");
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let mac = doc.descendants().find(|e| e.has_tag_name("mac")).unwrap();
        assert_eq!(mac.attribute("address"), Some("52:54:00:d5:07:0b"));
        let par = doc.descendants().find(|e| e.has_tag_name("parameter")).unwrap();
        assert_eq!((par.attribute("name"), par.attribute("value")), (Some("IP"), Some("10.213.7.11")));
    }

    #[test]
    fn recursive_templates_are_refused_not_overflowing_the_stack() {
        let e = load_err("network.xml", "<network>{% include \"network.xml\" %}</network>");
        assert!(e.contains("include") && e.contains("not allowed") && e.contains("network.xml"), "{e}");
        let e = load_err(
            "network.xml",
            "{% if true %}{% for i in [1] %}{% include \"domain.xml\" %}{% endfor %}{% endif %}",
        );
        assert!(e.contains("include"), "{e}");
        let e = load_err("domain.xml", "{% include \"network.xml\" ignore missing %}");
        assert!(e.contains("include"), "{e}");
        let e = load_err(
            "network.xml",
            "{% macro m(n) %}{{ self::m(n=n) }}{% endmacro m %}<network>{{ self::m(n=1) }}</network>",
        );
        assert!(e.contains("macro") && e.contains("not allowed"), "{e}");
        // Tera itself refuses a template extending itself; either way, an error.
        let e = load_err("network.xml", "{% extends \"network.xml\" %}");
        assert!(e.contains("xtend"), "{e}");
        let e = load_err("network.xml", "{% extends \"domain.xml\" %}{% block b %}{% endblock b %}");
        assert!(e.contains("extends"), "{e}");
        let e = load_err("network.xml", "{% import \"domain.xml\" as d %}<network/>");
        assert!(e.contains("import"), "{e}");
    }

    #[test]
    fn deeply_nested_templates_are_refused() {
        let e = load_err("network.xml", &format!("{{{{ {}1{} }}}}", "(".repeat(100_000), ")".repeat(100_000)));
        assert!(e.contains("nested more than 64"), "{e}");
        let e = load_err("network.xml", &format!("{{{{ {}1{} }}}}", "[".repeat(100_000), "]".repeat(100_000)));
        assert!(e.contains("nested"), "{e}");
        let e = load_err("network.xml", &"{% if true %}".repeat(10_000));
        assert!(e.contains("block tags nested more than 64") && e.contains("line 1"), "{e}");
        let e = load_err("network.xml", &"{%- for i in [1] -%}\n".repeat(100));
        assert!(e.contains("line 65"), "{e}");
        // Long operator chains nest in Tera's expression tree just like brackets.
        for op in [" + 1", " ~ \"x\"", " and true", " == 1"] {
            let e = load_err("network.xml", &format!("{{{{ 1{} }}}}", op.repeat(50_000)));
            assert!(e.contains("operators"), "{op}: {e}");
        }
        let e = load_err("network.xml", &format!("{{{{ {}true }}}}", "not ".repeat(50_000)));
        assert!(e.contains("operators") || e.contains("nested"), "{e}");
        // Strings are skipped as Tera skips them: a `}}` in one does not end the tag.
        let e = load_err("network.xml", &format!("{{{{ \"}}}}\" ~ {}1{} }}}}", "(".repeat(1000), ")".repeat(1000)));
        assert!(e.contains("nested"), "{e}");
        let t = "<network><name>{{ \"((((\" ~ name ~ '}}' }}</name>{% raw %}{{ ((( {% if %}{% endraw %}</network>";
        let out = load_with("network.xml", t).unwrap().network(&NetworkSpec::new("n")).unwrap();
        assert!(out.contains("((((n}}") && out.contains("{{ ((( {% if %}"), "{out}");
        // Sixty-four levels of ordinary blocks are fine.
        let t = format!(
            "{}<network><name>{{{{ name }}}}</name></network>{}",
            "{% if true %}".repeat(64),
            "{% endif %}".repeat(64)
        );
        let out = load_with("network.xml", &t).unwrap().network(&NetworkSpec::new("n")).unwrap();
        assert!(out.contains("<name>n</name>"), "{out}");
    }

    #[test]
    fn range_is_bounded() {
        let e = load_err("network.xml", "{% for i in range(end=1000000000000) %}x{% endfor %}");
        assert!(e.contains("limit of 4096"), "{e}");
        let t = load_with("network.xml", "<n>{% for i in range(start=1, end=10, step_by=3) %}{{ i }}{% endfor %}</n>")
            .unwrap();
        assert_eq!(t.network(&NetworkSpec::new("n")).unwrap(), "<n>147</n>\n");
        assert!(load_err("network.xml", "{% for i in range(end=5, step_by=0) %}{% endfor %}").contains("step_by"));
    }

    #[test]
    fn template_files_must_be_small_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("network.xml");
        std::fs::File::create(&p).unwrap().set_len(10 << 30).unwrap();
        let e = format!("{:#}", Templates::load(Some(dir.path())).err().unwrap());
        assert!(e.contains("limit of 1048576") && e.contains("network.xml"), "{e}");
        std::fs::remove_file(&p).unwrap();
        std::os::unix::fs::symlink("/dev/zero", &p).unwrap();
        let e = format!("{:#}", Templates::load(Some(dir.path())).err().unwrap());
        assert!(e.contains("character device"), "{e}");
        std::fs::remove_file(&p).unwrap();
        let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: c is a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let d = dir.path().to_path_buf();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || tx.send(format!("{:#}", Templates::load(Some(&d)).err().unwrap())).unwrap());
        let e = rx.recv_timeout(std::time::Duration::from_secs(5)).expect("reading a FIFO template hung");
        assert!(e.contains("FIFO"), "{e}");
        std::fs::remove_file(&p).unwrap();
        std::fs::create_dir(&p).unwrap();
        let e = format!("{:#}", Templates::load(Some(dir.path())).err().unwrap());
        assert!(e.contains("directory"), "{e}");
        std::fs::remove_dir(&p).unwrap();
        std::os::unix::fs::symlink("/nonexistent/lxcprov", &p).unwrap();
        assert!(format!("{:#}", Templates::load(Some(dir.path())).err().unwrap()).contains("no such file"));
    }

    #[test]
    fn the_built_in_templates_pass_the_checks() {
        check_template_text(DOMAIN_TEMPLATE).unwrap();
        check_template_text(NETWORK_TEMPLATE).unwrap();
        let t = Templates::load(None).unwrap();
        t.domain(&test_spec()).unwrap();
    }
}
