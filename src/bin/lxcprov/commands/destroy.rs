//! `lxcprov destroy NAME [--purge]`: stop, undefine, and with purge delete its tree.

use super::{confirm, Outcome};
use anyhow::{bail, Result};
use lxcprov::container;
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, name: &str, purge: bool, yes: bool) -> Result<Outcome> {
    let name = Name::parse(name)?;
    if purge && !yes && !confirm(&format!("Delete {} and everything in it", ctx.paths.rootfs(&name).display()))? {
        bail!("not confirmed; nothing was changed");
    }
    let _lock = lxcprov::state::lock(&ctx.paths, &name)?;
    let done = container::with_real_env(ctx, &*ctx.ui, |env| container::destroy(env, &name, purge))?;
    for d in done {
        ctx.ui.info(&d);
    }
    Ok(Outcome::Ok)
}
