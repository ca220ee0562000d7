//! What a domain is, read back from libvirt and lxcprov's record, as the verifier's input.

use super::Env;
use crate::facts;
use crate::libvirt::State;
use crate::name::Name;
use crate::profile::{CapPolicy, CapState, Profile, SecModel};
use crate::state::Record;
use crate::verify::{self, DomainFacts, Expect, Iface, Report};
use anyhow::Result;

/// libvirt's default capability drops (`<capabilities policy='default'>`).
pub const LIBVIRT_DEFAULT_DROPS: &[&str] = &["sys_module", "sys_time", "mknod", "audit_control", "mac_admin"];

/// Builds the verifier's inputs from the live domain and lxcprov's record, and runs it. A
/// domain lxcprov did not create is judged against the paper's baseline.
pub fn verify_domain(env: &Env, name: &Name) -> Result<Report> {
    verify_domain_as(env, name, None)
}

/// What a profile asks of a domain: for `verify --expect PROFILE`.
pub struct Expected<'a> {
    pub profile_name: &'a str,
    pub profile: &'a Profile,
}

/// The capabilities a profile turns off, with libvirt's default drops under its default
/// policy (what `caps` must find absent).
pub fn dropped_caps(p: &Profile) -> Vec<String> {
    let caps = &p.security.capabilities;
    let mut v: Vec<String> = caps.set.iter().filter(|(_, s)| **s == CapState::Off).map(|(n, _)| n.clone()).collect();
    if caps.policy == CapPolicy::Default {
        for c in LIBVIRT_DEFAULT_DROPS {
            if caps.set.get(*c) != Some(&CapState::On) {
                v.push(c.to_string());
            }
        }
    }
    v.sort();
    v.dedup();
    v
}

/// [`verify_domain`], or judged against `expected` when given.
pub fn verify_domain_as(env: &Env, name: &Name, expected: Option<&Expected>) -> Result<Report> {
    let xml = env.hv.domain_xml(name.as_str())?;
    let d = facts::parse_domain(&xml)?;
    let running = env.hv.domain_state(name.as_str())? == State::Running;
    let init_pid = if running { facts::init_pid(&env.run_dir, name.as_str()) } else { None };
    let record = Record::load(&env.paths.record(name)).ok().flatten();
    // The user namespace lxcprov shifted the rootfs for; the live XML's for foreign domains.
    let expected_idmap = match &record {
        Some(r) => r.idmap,
        None => d.idmap,
    };
    // What was asked for: lxcprov's metadata for its own domains (so a domain that lost its
    // <seclabel> fails instead of skipping), the live seclabel for foreign ones.
    let asked = match &d.meta {
        Some(m) => Some(m.security.as_str()),
        None if d.seclabel.as_ref().is_some_and(|s| s.kind == "none") => Some("none"),
        None => d.seclabel.as_ref().map(|s| s.model.as_str()),
    };
    let mut security = match asked {
        Some("selinux") => SecModel::Selinux,
        Some("apparmor") => SecModel::Apparmor,
        _ => SecModel::None,
    };
    // The expectations come from the domain itself: the caps it turns off, its idmap.
    let mut dropped = dropped_caps_from_xml(&xml);
    let secmodel = env.hv.secmodel().ok();
    let baseline = d.meta.is_none() && expected.is_none();
    let mut expected_idmap = expected_idmap;
    let note = if let Some(e) = expected {
        security = e.profile.security.model;
        dropped = dropped_caps(e.profile);
        expected_idmap = match e.profile.security.idmap {
            // An isolated map is the container's own: the one its tree was shifted for.
            Some(crate::profile::IdmapSetting::Isolated(None)) => record.as_ref().and_then(|r| r.idmap),
            other => other.and_then(|i| i.map()),
        };
        Some(format!("judged against profile {}", e.profile_name))
    } else if baseline {
        // The paper's baseline: confined by the host's MAC (sVirt; SELinux where the host
        // has none), libvirt's default capability drops, a user namespace.
        if security == SecModel::None {
            security = match secmodel.as_deref() {
                Some("apparmor") => SecModel::Apparmor,
                _ => SecModel::Selinux,
            };
        }
        dropped.extend(LIBVIRT_DEFAULT_DROPS.iter().map(|c| c.to_string()));
        dropped.sort();
        dropped.dedup();
        Some("not created by lxcprov: judged against the paper's baseline (a MAC label, a user namespace, libvirt's default capability drops)".to_string())
    } else {
        None
    };
    let mut interfaces = vec![];
    for i in &d.interfaces {
        let expected_bridge = match (&i.bridge, &i.network) {
            (Some(b), _) => Some(b.clone()),
            (None, Some(n)) => env.hv.network_bridge(n).ok(),
            _ => None,
        };
        interfaces.push(Iface { target_dev: i.dev.clone(), expected_bridge });
    }
    let facts = DomainFacts { domain: d.clone(), init_pid, interfaces };
    let expect = Expect {
        security,
        dropped_caps: dropped,
        idmap: expected_idmap,
        // Its own range in the registry: no other user namespace may map those ids.
        idmap_isolated: expected_idmap.is_some()
            && crate::idmap::read(&crate::idmap::registry_path(&env.paths.state))
                .is_ok_and(|r| r.get(name.as_str()) == expected_idmap),
        gpgcheck: record.as_ref().map(|r| r.gpgcheck),
        packages: record.as_ref().and_then(|r| r.packages),
        secmodel,
        baseline,
        seccomp: crate::shim::expect(&d),
    };
    let checks = verify::run_all(&env.host, &facts, &expect, env.labels);
    Ok(Report { name: name.to_string(), checks, note })
}

/// Capabilities a domain turns off, from its `<features><capabilities>`, plus libvirt's
/// default drops under the default policy.
pub fn dropped_caps_from_xml(xml: &str) -> Vec<String> {
    let Ok(doc) = roxmltree::Document::parse(xml) else { return vec![] };
    let Some(caps) = doc
        .descendants()
        .find(|n| n.has_tag_name("capabilities") && n.parent().is_some_and(|p| p.has_tag_name("features")))
    else {
        return vec![];
    };
    let policy = caps.attribute("policy").unwrap_or("default");
    let mut off: Vec<String> = caps
        .children()
        .filter(|c| c.is_element() && c.attribute("state") == Some("off"))
        .map(|c| c.tag_name().name().to_string())
        .collect();
    let on: Vec<String> = caps
        .children()
        .filter(|c| c.is_element() && c.attribute("state") == Some("on"))
        .map(|c| c.tag_name().name().to_string())
        .collect();
    if policy == "default" {
        for c in LIBVIRT_DEFAULT_DROPS {
            if !on.iter().any(|o| o == c) {
                off.push(c.to_string());
            }
        }
    }
    off.sort();
    off.dedup();
    off
}
