//! `destroy NAME [--purge]`: the domain undefined (stopped first), its network when no other
//! domain uses it, and with `purge` its tree and what lxcprov kept for it. The caller has
//! confirmed a purge.

use crate::container;
use crate::context::Context;
use crate::name::Name;
use anyhow::Result;

#[derive(Clone, Debug)]
pub struct DestroyOptions {
    pub name: Name,
    pub purge: bool,
}

/// Destroys the container under its lock; what was done, one line each.
pub fn destroy(ctx: &Context, o: &DestroyOptions) -> Result<Vec<String>> {
    let _lock = crate::state::lock(&ctx.paths, &o.name)?;
    container::with_real_env(ctx, &*ctx.ui, |env| container::destroy(env, &o.name, o.purge))
}
