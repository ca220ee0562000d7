//! `lxcprov destroy NAME [--purge]`: stop, undefine, and with purge delete its tree.

use super::{confirm, Outcome};
use anyhow::{bail, Result};
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::ops::destroy::DestroyOptions;

pub fn run(ctx: &Context, name: &str, purge: bool, yes: bool) -> Result<Outcome> {
    let name = Name::parse(name)?;
    if purge && !yes && !confirm(&format!("Delete {} and everything in it", ctx.paths.rootfs(&name).display()))? {
        bail!("not confirmed; nothing was changed");
    }
    for d in lxcprov::ops::destroy::destroy(ctx, &DestroyOptions { name, purge })? {
        ctx.ui.info(&d);
    }
    Ok(Outcome::Ok)
}
