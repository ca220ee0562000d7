//! `create`: bootstrap, network, define, start, verify.

use crate::app::{Ctx, Outcome, Resolved};
use crate::profile::{Profile, SecModel};
use anyhow::{bail, Result};

/// Why this host cannot run the profile's security model, if it cannot.
pub fn security_refusal(p: &Profile) -> Option<String> {
    match p.security.model {
        SecModel::Selinux if !crate::host::selinux_enabled() => Some(
            "the profile asks for SELinux (sVirt), but SELinux is not enabled on this host. \
             Use `--security none` for an unconfined test container, or run on a SELinux host \
             (see scripts/selinux-lab.sh)"
                .into(),
        ),
        SecModel::Apparmor if !crate::host::apparmor_enabled() => Some(
            "the profile asks for AppArmor, but AppArmor is not enabled on this host. \
             Use `--security none` for an unconfined test container, or an AppArmor host"
                .into(),
        ),
        _ => None,
    }
}

pub fn create(_ctx: &Ctx, r: &Resolved, _a: &crate::cli::BootstrapArgs) -> Result<Outcome> {
    if let Some(why) = security_refusal(&r.profile) {
        bail!("cannot create {}: {why}. Nothing was created.", r.name);
    }
    bail!("create is not available yet; use --dry-run to see the plan, or `lxcprov bootstrap`")
}
