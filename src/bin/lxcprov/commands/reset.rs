//! `lxcprov reset NAME`: back to the golden base (overlay storage), keeping its password,
//! label, id map and network.

use super::{confirm, print_report, Outcome};
use crate::out::Out;
use anyhow::{bail, Result};
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, out: &Out, name: &str, yes: bool) -> Result<Outcome> {
    let name = Name::parse(name)?;
    lxcprov::container::require_root("reset")?;
    if !yes && !confirm(&format!("Reset {name}: delete every file it wrote since it was created"))? {
        bail!("not confirmed; nothing was changed");
    }
    match lxcprov::ops::reset::reset_container(ctx, &name)? {
        Some(r) => print_report(ctx, out, &r),
        None => {
            ctx.ui.info(&format!("{name} was reset; it is shut off (start it with `lxcprov start {name}`)"));
            Ok(Outcome::Ok)
        }
    }
}
