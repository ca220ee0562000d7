//! `lxcprov restore NAME TAG [--yes]`.

use super::{confirm, print_report, Outcome};
use crate::out::Out;
use anyhow::{bail, Result};
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, out: &Out, name: &str, tag: &str, yes: bool) -> Result<Outcome> {
    let name = Name::parse(name)?;
    lxcprov::storage::snapshot::check_tag(tag)?;
    if !yes && !confirm(&format!("Restore {name} to snapshot {tag}: delete what it changed since"))? {
        bail!("not confirmed; nothing was changed");
    }
    match lxcprov::ops::snapshot::restore(ctx, &name, tag)? {
        Some(r) => print_report(ctx, out, &r),
        None => {
            ctx.ui
                .info(&format!("{name} was restored to {tag}; it is shut off (start it with `lxcprov start {name}`)"));
            Ok(Outcome::Ok)
        }
    }
}
