//! `reset` and `lab reset`: an overlay container back to its golden base in O(1) (the
//! mechanism is [`crate::container::reset::reset_onto`]), with the configuration it was
//! created with, a lab's student keeping its address and key.

use crate::bootstrap::GuestConfig;
use crate::container::{Container, Env};
use crate::name::Name;
use crate::verify::Report;
use anyhow::Result;

/// `lxcprov reset NAME` under the name's lock (the caller has confirmed): its verify report
/// when it runs again.
pub fn reset_container(ctx: &crate::context::Context, name: &Name) -> Result<Option<Report>> {
    crate::container::require_root("reset")?;
    let _lock = crate::state::lock(&ctx.paths, name)?;
    crate::container::with_real_env(ctx, &*ctx.ui, |env| {
        let guest = guest_of(ctx, &env.container(name)?)?;
        reset(env, name, &guest)
    })
}

/// Resets `name`; returns its verify report when it was running (it runs again).
pub fn reset(env: &Env, name: &Name, guest: &GuestConfig) -> Result<Option<Report>> {
    crate::container::reset::reset_onto(env, name, guest, None, None, false)
}

/// The guest configuration of an lxcprov container, from its domain's metadata (profile,
/// distro, release, security as created).
pub fn guest_of(ctx: &crate::context::Context, c: &Container) -> Result<GuestConfig> {
    let name = &c.name;
    let opts = crate::spec::ProfileOptions::of_container(c.meta("reset")?, &ctx.paths.state, name)?;
    let mut s = crate::spec::resolve(ctx, name.as_str(), &opts)?;
    // A lab's student keeps its address, sshd and key (as `rebuild` does).
    let key = match crate::lab::access_of_member(ctx, name) {
        Some(acc) => crate::lab::apply_access(&mut s, &acc)?,
        None => None,
    };
    Ok(crate::bootstrap::guest_config(name, &s.profile, &s.distro, key))
}
