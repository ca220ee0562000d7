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
pub mod snapshot;
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
use crate::name::Name;
use crate::output::Observer;
use crate::paths::Paths;
use crate::profile::{Profile, SecModel};
use crate::verify::{HostRoot, LabelSource, ProcLabels};
use anyhow::{bail, Context as _, Result};
use std::path::PathBuf;

/// How often a freeze (libvirt suspend) is tried before a snapshot or a collect gives up.
const FREEZE_TRIES: u32 = 5;

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

/// There is no domain of that name: libvirt said so (a lost connection is its own error).
#[derive(Debug, thiserror::Error)]
#[error("no container named {name} on {uri}")]
pub struct NotFound {
    pub name: String,
    pub uri: String,
}

/// Fails with [`NotFound`] only when libvirt says so; a lost connection is its own error.
pub fn require_domain(env: &Env, name: &Name) -> Result<()> {
    if !env.hv.domain_exists(name.as_str())? {
        return Err(env.not_found(name.as_str()));
    }
    Ok(())
}

impl Env<'_> {
    /// The [`NotFound`] error for `name` on this connection.
    pub fn not_found(&self, name: &str) -> anyhow::Error {
        NotFound { name: name.to_string(), uri: self.hv.uri() }.into()
    }

    /// The container `name`, looked up once: [`NotFound`] unless libvirt has its domain,
    /// whose XML is read and parsed here, once, for the operation that asks.
    pub fn container(&self, name: &Name) -> Result<Container<'_>> {
        require_domain(self, name)?;
        let domain = crate::facts::parse_domain(&self.hv.domain_xml(name.as_str())?)?;
        Ok(Container { env: self, name: name.clone(), domain })
    }
}

/// A container an operation acts on (youki's `Container`): its name, the seams, and what its
/// domain's XML says, read once. Each operation on it lives in its own file of this module.
pub struct Container<'e> {
    pub env: &'e Env<'e>,
    pub name: Name,
    pub domain: crate::facts::DomainXml,
}

impl Container<'_> {
    /// The container's state as libvirt has it now.
    pub fn state(&self) -> Result<crate::libvirt::State> {
        Ok(self.env.hv.domain_state(self.name.as_str())?)
    }

    /// Runs `f` with the container's processes frozen (libvirt suspend) when it runs, and
    /// thaws it again whatever `f` returns. A failure to thaw is an error of its own, saying
    /// how to thaw it by hand; `what` names the work in it ("taking snapshot t1").
    pub fn frozen<T>(&self, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let name = self.name.as_str();
        if self.state()? != crate::libvirt::State::Running {
            return f();
        }
        // libvirt gives up freezing after about a second (a busy systemd at boot can take
        // longer to settle) and thaws what it froze: tried again a few times.
        let mut tries = 0;
        while let Err(e) = self.env.hv.suspend_domain(name) {
            tries += 1;
            if tries >= FREEZE_TRIES || e.is_connection() {
                return Err(anyhow::Error::new(e)
                    .context(format!("{what}: {name} could not be frozen ({tries} tries); try again in a moment")));
            }
            crate::interrupt::check()?;
            std::thread::sleep(std::time::Duration::from_millis(300 * tries as u64));
        }
        let r = f();
        if let Err(e) = self.env.hv.resume_domain(name) {
            let done = if r.is_ok() { "done" } else { "failed" };
            bail!("{what} {done}, but {name} could not be thawed ({e}); run `virsh -c lxc:/// resume {name}`");
        }
        r
    }

    /// lxcprov's metadata in the domain, or why there is none (it was not made by lxcprov).
    pub fn meta(&self, what: &str) -> Result<&crate::facts::Meta> {
        self.domain.meta.as_ref().with_context(|| {
            format!(
                "{} was not created by lxcprov (no lxcprov metadata): there is nothing to {what} it from",
                self.name
            )
        })
    }
}
