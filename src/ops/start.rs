//! `start NAME`: starts a shut-off container and waits for its init.

use crate::container;
use crate::context::Context;
use crate::name::Name;
use anyhow::Result;

/// Starts `name`; the host PID of its init.
pub fn start(ctx: &Context, name: &Name) -> Result<u32> {
    container::with_real_env(ctx, &*ctx.ui, |env| container::start(env, name))
}
