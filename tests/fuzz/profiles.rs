//! The profile properties: `profiles_structured` (generated YAML documents) and
//! `profiles_mutated` (mutated built-in profiles) go through parse, validation, the
//! command-line overrides and rendering, exactly as `lxcprov render` does, and the rendered
//! XML is checked against a benign twin's; `the_structure_check_catches_injection` shows the
//! check catches a broken escape.

use super::harness::{cpu_budget, fuzz, thread_cpu, total_cases, Stats};
use super::hostile::hostile_str;
use super::mutations::{apply, mutated_doc};
use super::yaml::structured_doc;
use lxcprov::name::Name;
use lxcprov::profile::{self, Profile};
use lxcprov::render::{self, DomainSpec, NetworkSpec, Templates};
use proptest::prelude::*;
use proptest::sample::select;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Every key of a profile, valid (the README's table, with a static label and an idmap).
pub const FULL_PROFILE: &str = r#"description: "every key"
distro: debian12
release: "12"
base_packages: [bash, systemd]
package_sets: [web-server]
packages: [nginx, openssh-server]
mirror: "https://deb.debian.org/debian"
trust: {gpgcheck: true}
memory_mib: 256
vcpus: 1
cpu: {shares: 1024, period_us: 100000, quota_us: 50000}
blkio_weight: 500
network:
  mode: isolated
  name: lxcprov-isolated
  filter: clean-traffic
security:
  model: selinux
  label: static
  static_label: "system_u:system_r:container_t:s0:c10,c20"
  capabilities:
    policy: default
    set: {sys_admin: off, net_raw: off}
  idmap:
    uid: &ids {start: 0, target: 200000, count: 65536}
    gid: *ids
init: {path: /sbin/init, args: ["--log-level=info", "a b"]}
hostname: web1
console: {enabled: true, tty: pts/0}
"#;

/// What a case renders besides the profile: a container name, profile name, pool and
/// `--security` override, each maybe hostile.
#[derive(Clone, Debug)]
struct Extras {
    name: String,
    profile_name: String,
    pool: String,
    security: Option<profile::SecModel>,
}

fn extras() -> impl Strategy<Value = Extras> {
    let name =
        prop_oneof![4 => select(vec!["web1", "c1", "a.b-c_d", "x"]).prop_map(str::to_string), 1 => hostile_str()];
    let pname = prop_oneof![4 => select(vec!["web", "p", "my.profile"]).prop_map(str::to_string), 1 => hostile_str()];
    let pool = prop_oneof![
        3 => Just("/var/lib/libvirt/filesystems".to_string()),
        2 => hostile_str().prop_map(|s| format!("/{}", s.replace('\0', ""))),
    ];
    let sec = prop::option::weighted(
        0.3,
        select(vec![profile::SecModel::Selinux, profile::SecModel::Apparmor, profile::SecModel::None]),
    );
    (name, pname, pool, sec).prop_map(|(name, profile_name, pool, security)| Extras {
        name,
        profile_name,
        pool,
        security,
    })
}

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| Templates::load(None).expect("built-in templates"))
}

/// An error shown to a person must carry no terminal control characters but newlines.
fn clean_error(e: &str) -> Result<(), TestCaseError> {
    if let Some(c) = e.chars().find(|&c| c != '\n' && lxcprov::text::needs_terminal_escape(c)) {
        return Err(TestCaseError::fail(format!(
            "error message carries U+{:04X} raw: {}",
            c as u32,
            e.chars().flat_map(char::escape_debug).take(2000).collect::<String>()
        )));
    }
    Ok(())
}

/// The shape of an XML node: names, namespaces and attribute names, comments and
/// processing instructions, but no text and no attribute values.
fn shape(n: roxmltree::Node, out: &mut String) {
    use roxmltree::NodeType;
    match n.node_type() {
        NodeType::Root => n.children().for_each(|c| shape(c, out)),
        NodeType::Element => {
            let t = n.tag_name();
            out.push_str(&format!("<{}|{}", t.namespace().unwrap_or(""), t.name()));
            let mut attrs: Vec<String> =
                n.attributes().map(|a| format!("{}|{}", a.namespace().unwrap_or(""), a.name())).collect();
            attrs.sort();
            let mut ns: Vec<String> = n.namespaces().map(|x| format!("{:?}={}", x.name(), x.uri())).collect();
            ns.sort();
            out.push_str(&format!(" {attrs:?} {ns:?}>"));
            n.children().for_each(|c| shape(c, out));
            out.push_str("</>");
        }
        NodeType::Comment => out.push_str("<!-- -->"),
        NodeType::PI => out.push_str("<? ?>"),
        NodeType::Text => {}
    }
}

fn parse_xml(xml: &str) -> Result<roxmltree::Document<'_>, TestCaseError> {
    roxmltree::Document::parse(xml)
        .map_err(|e| TestCaseError::fail(format!("rendered XML does not parse: {e}\n{}", xml.escape_debug())))
}

fn shape_of(xml: &str) -> Result<String, TestCaseError> {
    let d = parse_xml(xml)?;
    let mut s = String::new();
    shape(d.root(), &mut s);
    Ok(s)
}

/// The profile with every string that reaches the XML replaced by a plain word.
fn benign_twin(p: &Profile) -> Profile {
    let mut t = p.clone();
    t.description = if p.description.is_empty() { String::new() } else { "d".into() };
    t.release = p.release.as_ref().map(|_| "r".into());
    t.init.path = "/i".into();
    t.init.args = p.init.args.iter().map(|_| "a".to_string()).collect();
    t.network.name = "n".into();
    t.network.filter = p.network.filter.as_ref().map(|_| "f".into());
    t.security.static_label = p.security.static_label.as_ref().map(|_| "l".into());
    t
}

fn texts(d: &roxmltree::Document, tag: &str) -> Vec<String> {
    d.descendants().filter(|n| n.has_tag_name(tag)).map(|n| n.text().unwrap_or("").to_string()).collect()
}

fn attr(d: &roxmltree::Document, tag: &str, a: &str) -> Option<String> {
    d.descendants()
        .find(|n| n.has_tag_name(tag) && n.attribute(a).is_some())
        .and_then(|n| n.attribute(a))
        .map(str::to_string)
}

/// What escape_xml makes of a value XML cannot carry at all.
fn as_xml(s: &str) -> String {
    s.chars().map(|c| if lxcprov::text::is_xml_char(c) { c } else { '\u{FFFD}' }).collect()
}

fn check_eq(what: &str, got: Option<String>, want: &str) -> Result<(), TestCaseError> {
    let want = as_xml(want);
    if got.as_deref() != Some(want.as_str()) {
        return Err(TestCaseError::fail(format!("{what}: the XML holds {got:?}, the input was {want:?}")));
    }
    Ok(())
}

/// Parse, validate, override, revalidate and render `text`, then check the XML.
fn profile_case(text: &str, x: &Extras, st: &mut Stats) -> Result<(), TestCaseError> {
    let cpu = thread_cpu();
    let r = check_profile(text, x, st);
    let used = thread_cpu().saturating_sub(cpu);
    if used > cpu_budget() {
        return Err(TestCaseError::fail(format!("one case took {used:?} of CPU (budget {:?})", cpu_budget())));
    }
    r
}

fn check_profile(text: &str, x: &Extras, st: &mut Stats) -> Result<(), TestCaseError> {
    let origin = "fuzz.yaml";
    let (mut p, warnings) = match profile::parse_with_warnings(text, origin) {
        Ok(v) => v,
        Err(e) => {
            st.count("refused by parse or validation");
            if std::env::var_os("FUZZ_DEBUG").is_some() {
                let m = format!("{e:#}");
                eprintln!("REFUSED {}", m.lines().next().unwrap_or("").chars().take(150).collect::<String>());
            }
            return clean_error(&format!("{e:#}"));
        }
    };
    for w in &warnings {
        clean_error(w)?;
    }
    render::apply_overrides(&mut p, &render::Overrides { security: x.security });
    if let Err(e) = profile::check_located(&p, text, origin) {
        st.count("refused after --security");
        return clean_error(&format!("{e:#}"));
    }
    let name = match Name::parse(&x.name) {
        Ok(n) => n,
        Err(e) => {
            clean_error(&e.to_string())?;
            Name::parse("c1").unwrap()
        }
    };
    let pname = match profile::valid_profile_name(&x.profile_name) {
        Ok(()) => x.profile_name.clone(),
        Err(e) => {
            clean_error(&e)?;
            "p".into()
        }
    };
    let distro = lxcprov::distro::lookup(&p.distro)
        .map_err(|e| TestCaseError::fail(format!("a validated profile's distro is unknown: {e}")))?;
    let pool = PathBuf::from(&x.pool);
    let rootfs = pool.join(name.as_str());
    let t = templates();
    let spec = DomainSpec::new(&name, &pname, &p, &distro, &rootfs, None);
    let domain = t.domain(&spec).map_err(|e| TestCaseError::fail(format!("render failed: {e:#}")))?;
    let network = t
        .network(&NetworkSpec::new(&p.network.name))
        .map_err(|e| TestCaseError::fail(format!("network render failed: {e:#}")))?;

    // The same shape, rendered from plain words.
    let twin = benign_twin(&p);
    let c1 = Name::parse("c1").unwrap();
    let tspec = DomainSpec::new(&c1, "p", &twin, &distro, Path::new("/pool/c1"), None);
    let tdomain = t.domain(&tspec).map_err(|e| TestCaseError::fail(format!("twin render failed: {e:#}")))?;
    let tnetwork = t.network(&NetworkSpec::new("n")).unwrap();
    let (got, want) = (shape_of(&domain)?, shape_of(&tdomain)?);
    prop_assert_eq!(
        &got,
        &want,
        "the domain XML's structure differs from its benign twin's:\n{}",
        domain.escape_debug()
    );
    prop_assert_eq!(shape_of(&network)?, shape_of(&tnetwork)?, "network XML structure:\n{}", network);

    // Every hostile string comes back out exactly, as text or as an attribute value.
    let d = parse_xml(&domain)?;
    let desc = if p.description.is_empty() {
        format!("lxcprov container from profile {pname}")
    } else {
        p.description.clone()
    };
    check_eq("description", texts(&d, "description").pop(), &desc)?;
    check_eq("name", texts(&d, "name").pop(), name.as_str())?;
    check_eq("init", texts(&d, "init").pop(), &p.init.path)?;
    let args = texts(&d, "initarg");
    prop_assert_eq!(args.len(), p.init.args.len());
    for (a, want) in args.iter().zip(&p.init.args) {
        check_eq("initarg", Some(a.clone()), want)?;
    }
    check_eq("rootfs", attr(&d, "source", "dir"), &rootfs.display().to_string())?;
    check_eq("metadata profile", attr(&d, "container", "profile"), &pname)?;
    check_eq("metadata release", attr(&d, "container", "release"), &p.release_or(&distro))?;
    let net_attr = if p.network.mode == profile::NetMode::Bridge { "bridge" } else { "network" };
    check_eq("network name", attr(&d, "source", net_attr), &p.network.name)?;
    if let Some(f) = &p.network.filter {
        check_eq("filter", attr(&d, "filterref", "filter"), f)?;
    }
    if spec.seclabel_type == "static" {
        check_eq("label", texts(&d, "label").pop(), spec.static_label.as_deref().unwrap_or(""))?;
    }
    let caps = d.descendants().find(|n| n.has_tag_name("capabilities")).expect("capabilities element");
    let names: Vec<&str> = caps.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    let want: Vec<&str> = p.security.capabilities.set.keys().map(String::as_str).collect();
    prop_assert_eq!(&names, &want);
    for n in names {
        prop_assert!(profile::CAPABILITIES.contains(&n), "capability element {:?} is not libvirt's", n);
    }
    let nd = parse_xml(&network)?;
    check_eq("network XML name", texts(&nd, "name").pop(), &p.network.name)?;
    st.count("accepted and rendered");
    if text.contains(['<', '>', '&', '\'', '"']) {
        st.count("accepted with XML metacharacters in the input");
    }
    Ok(())
}

fn profile_share() -> u64 {
    (total_cases() * 45 / 100).max(1)
}

#[test]
fn profiles_structured() {
    fuzz("profiles_structured", profile_share(), (structured_doc(), extras()), |(doc, x), st| {
        profile_case(&doc.text, x, st)
    });
}

#[test]
fn profiles_mutated() {
    fuzz("profiles_mutated", profile_share(), (mutated_doc(), extras()), |(m, x), st| {
        let bytes = apply(m.base.as_bytes(), &m.muts);
        // Profile files are read as UTF-8; invalid bytes are refused there, so the text that
        // reaches the parser is always valid UTF-8: use the lossy decoding to keep going.
        let text = String::from_utf8_lossy(&bytes);
        profile_case(&text, x, st)
    });
}

/// The benign twin really is benign, and the checks really catch a broken escape.
#[test]
fn the_structure_check_catches_injection() {
    let t = templates();
    let c1 = Name::parse("c1").unwrap();
    let distro = lxcprov::distro::lookup("debian12").unwrap();
    let mut p = profile::parse(FULL_PROFILE, "full.yaml").unwrap();
    p.description = "</description><evil a='1'/><description>".into();
    let spec = DomainSpec::new(&c1, "p", &p, &distro, Path::new("/pool/c1"), None);
    let good = t.domain(&spec).unwrap();
    let twin = DomainSpec::new(&c1, "p", &benign_twin(&p), &distro, Path::new("/pool/c1"), None);
    assert_eq!(shape_of(&good).unwrap(), shape_of(&t.domain(&twin).unwrap()).unwrap());
    // What an unescaped rendering would produce is caught.
    let broken = good.replace(&render::escape_xml(&p.description), &p.description);
    assert_ne!(shape_of(&broken).unwrap(), shape_of(&good).unwrap());
    let broken = good.replace("/pool/c1", "/pool/c1' evil='x");
    assert_ne!(shape_of(&broken).unwrap(), shape_of(&good).unwrap());
    assert!(clean_error("a\nb").is_ok() && clean_error("a\u{1b}[31m").is_err());
}
