//! `start NAME`: starts a shut-off container and waits for its init.

use crate::container;
use crate::context::Context;
use crate::name::Name;
use anyhow::{bail, Result};

/// Starts `name`; the host PID of its init.
pub fn start(ctx: &Context, name: &Name) -> Result<u32> {
    container::with_real_env(ctx, &*ctx.ui, |env| {
        let c = env.container(name)?;
        if c.state()? == crate::libvirt::State::Running {
            bail!("{name} is already running");
        }
        container::run::start_and_wait(env, name)
    })
}
