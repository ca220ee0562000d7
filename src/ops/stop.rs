//! `stop NAME`: a graceful shutdown, forced off after a timeout.

use crate::container;
use crate::context::Context;
use crate::name::Name;
use anyhow::Result;
use std::time::Duration;

/// Stops `name`; true when it had to be forced off after `timeout`.
pub fn stop(ctx: &Context, name: &Name, timeout: Duration) -> Result<bool> {
    container::with_real_env(ctx, &*ctx.ui, |env| container::stop(env, name, timeout))
}
