//! `exec` and `shell`: the running container's init found for entering it
//! ([`crate::enter`] does the entering).

use crate::container;
use crate::context::Context;
use crate::enter::{self, Target};
use crate::libvirt::State;
use crate::name::Name;
use anyhow::{bail, Context as _, Result};

/// The running container's init, read for entering; errors name what is missing.
pub fn running_target(ctx: &Context, name: &Name, what: &str) -> Result<Target> {
    container::require_root(what)?;
    let pid = container::with_real_env(ctx, &*ctx.ui, |env| {
        container::require_domain(env, name)?;
        if env.hv.domain_state(name.as_str())? != State::Running {
            bail!("{name} is not running; start it with `lxcprov start {name}`");
        }
        crate::facts::init_pid(&env.run_dir, name.as_str())
            .with_context(|| format!("libvirt reports no init PID for {name} (in {})", env.run_dir.display()))
    })?;
    let filter = ctx.paths.seccomp(name).join(crate::seccomp::FILTER);
    let host = crate::host::HostRoot::real();
    enter::target(&host.proc(), &host.etc(), name.as_str(), pid, &filter)
}
