//! `apparmor.label`: AppArmor is enabled, libvirt uses it, and every process of the
//! container is confined by the domain's `libvirt-UUID` profile in enforce mode.
//!
//! Under AppArmor `/proc/PID/attr/current` reads `libvirt-UUID (enforce)`; the live XML's
//! `<label>` is the profile name `libvirt-UUID`. AppArmor has no categories: containers are
//! separated by their per-domain profiles only (weaker than sVirt's MCS pairs).

use super::procfs::read_trim;
use super::{Check, Ctx};
use crate::profile::SecModel;

/// Splits `profile (mode)` into its profile and mode; a bare `unconfined` has no mode.
pub(super) fn split_apparmor(label: &str) -> (&str, Option<&str>) {
    let label = label.trim_end_matches('\0').trim();
    match label.rsplit_once(" (") {
        Some((p, m)) if m.ends_with(')') => (p, Some(&m[..m.len() - 1])),
        _ => (label, None),
    }
}

/// The check; see the module doc.
pub(super) fn label(cx: &Ctx) -> Check {
    const ID: &str = "apparmor.label";
    if let Some(c) = cx.skip_unless(ID, SecModel::Apparmor) {
        return c;
    }
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let (mut ev, mut bad) = (Vec::new(), Vec::new());
    host_prerequisites(cx, &mut ev, &mut bad);
    let profile = match domain_profile(cx) {
        Ok(p) => p,
        Err(why) => {
            bad.push(why);
            return Check::verdict(ID, bad, String::new(), ev);
        }
    };
    ev.push(format!("domain profile (live XML): {profile}"));
    for pid in &cx.members {
        let who = format!("pid {pid} ({}{})", cx.procs.comm(*pid), if *pid == init { ", init" } else { "" });
        match cx.labels.process_label(*pid) {
            // A process that exited since the table was read is not a finding.
            None if !cx.host.proc().join(pid.to_string()).exists() => {}
            None => bad.push(format!("{who} has no readable AppArmor label")),
            Some(l) => {
                ev.push(format!("{who}: {l}"));
                match split_apparmor(&l) {
                    (p, Some("enforce")) if p == profile => {}
                    (p, Some(m)) if p == profile => bad.push(format!("{who} is in {m} mode, not enforce")),
                    (p, _) => bad.push(format!("{who} is confined by {p:?}, not {profile}")),
                }
            }
        }
    }
    let ok = format!(
        "{} process(es) confined by {profile} in enforce mode; AppArmor has no MCS categories: containers are separated by their per-domain profiles only",
        cx.members.len()
    );
    Check::verdict(ID, bad, ok, ev)
}

/// AppArmor enabled in the kernel and used by libvirt.
fn host_prerequisites(cx: &Ctx, ev: &mut Vec<String>, bad: &mut Vec<String>) {
    let enabled = cx.host.sys().join("module/apparmor/parameters/enabled");
    match read_trim(&enabled) {
        Ok(v) => {
            ev.push(format!("{}: {v}", enabled.display()));
            if v != "Y" {
                bad.push("AppArmor is not enabled in the kernel".into());
            }
        }
        Err(e) => {
            ev.push(e);
            bad.push("AppArmor is not available in the kernel".into());
        }
    }
    match cx.expect.secmodel.as_deref() {
        Some("apparmor") => ev.push("libvirt secmodel: apparmor".into()),
        Some(m) => bad.push(format!("libvirt's security driver is {m:?}, not apparmor")),
        None => bad.push("libvirt's security model is unknown".into()),
    }
}

/// The live `<label>` of an AppArmor seclabel.
fn domain_profile(cx: &Ctx) -> Result<String, String> {
    let sec = cx.facts.domain.seclabel.as_ref().ok_or("the domain has no <seclabel>: it runs unconfined")?;
    if sec.model != "apparmor" || sec.kind == "none" {
        return Err(format!(
            "the domain's seclabel is model {:?} type {:?}, not an AppArmor profile",
            sec.model, sec.kind
        ));
    }
    sec.label.clone().ok_or_else(|| "the live XML has no <label> (is the container running?)".into())
}

#[cfg(test)]
mod tests {
    use super::split_apparmor;

    #[test]
    fn splits_profile_and_mode() {
        assert_eq!(split_apparmor("libvirt-1234 (enforce)\n"), ("libvirt-1234", Some("enforce")));
        assert_eq!(split_apparmor("libvirt-1234 (complain)"), ("libvirt-1234", Some("complain")));
        assert_eq!(split_apparmor("unconfined\n"), ("unconfined", None));
    }
}
