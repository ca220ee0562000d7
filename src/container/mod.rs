//! Container operations: create, start, stop, destroy, rebuild, list, and reading a domain
//! back for verification. Works through the [`Hypervisor`] and [`Runner`] seams, so the
//! logic runs against fakes in tests; the real thing needs root and libvirtd.

pub mod cgroupv1;
pub mod create;
pub mod destroy;
pub mod inspect;
pub mod list;
pub mod mcs_probe;
pub mod rebuild;
pub mod reset;
pub mod run;
pub mod seccomp_probe;
#[cfg(test)]
mod tests;

pub use create::CreatePlan;
pub use destroy::destroy;
pub use inspect::verify_domain;
pub use list::{list, Row};
pub use rebuild::rebuild;
pub use run::{start, stop};

use crate::context::Context;
use crate::exec::Runner;
use crate::libvirt::{Hypervisor, VirtHypervisor};
use crate::output::Observer;
use crate::paths::Paths;
use crate::profile::{Profile, SecModel};
use crate::verify::{HostRoot, LabelSource, ProcLabels};
use anyhow::{bail, Result};
use std::path::PathBuf;

/// What the container operations work with: the seams, passed in explicitly.
pub struct Env<'a> {
    pub hv: &'a dyn Hypervisor,
    pub runner: &'a dyn Runner,
    pub paths: &'a Paths,
    pub ui: &'a dyn Observer,
    pub host: HostRoot,
    /// libvirt's LXC status directory (`/run/libvirt/lxc`).
    pub run_dir: PathBuf,
    pub labels: &'a dyn LabelSource,
}

/// Runs `f` with a fresh libvirt connection and the real host (one per thread in labs).
pub fn with_real_env<T>(ctx: &Context, ui: &dyn Observer, f: impl FnOnce(&Env) -> Result<T>) -> Result<T> {
    let hv = VirtHypervisor::connect(&ctx.uri)?;
    let runner = ctx.runner();
    let labels = ProcLabels::new(HostRoot::real());
    let env = Env {
        hv: &hv,
        runner: &runner,
        paths: &ctx.paths,
        ui,
        host: HostRoot::real(),
        run_dir: crate::facts::LXC_RUN_DIR.into(),
        labels: &labels,
    };
    f(&env)
}

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

/// Fails unless running as root, saying what needs it.
pub fn require_root(what: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "{what} needs root (libvirt's LXC driver and the container's /proc entries are root's); run it with sudo"
        );
    }
    Ok(())
}

/// Fails with "no container named X" only when libvirt says so; a lost connection is its own error.
pub fn require_domain(env: &Env, name: &str) -> Result<()> {
    if !env.hv.domain_exists(name)? {
        bail!("no container named {name} on {}", env.hv.uri());
    }
    Ok(())
}
