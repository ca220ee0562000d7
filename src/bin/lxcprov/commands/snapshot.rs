//! `lxcprov snapshot NAME [--tag T] [--delete]`.

use super::Outcome;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, out: &Out, name: &str, tag: Option<&str>, delete: bool) -> Result<Outcome> {
    let name = Name::parse(name)?;
    if let (true, Some(t)) = (delete, tag) {
        let s = lxcprov::ops::snapshot::delete(ctx, &name, t)?;
        ctx.ui.info(&format!("deleted snapshot {} of {name}", s.tag));
        return Ok(Outcome::Ok);
    }
    let s = lxcprov::ops::snapshot::snapshot(ctx, &name, tag)?;
    if out.json {
        out.record("snapshot", &s)?;
    } else {
        out.text(&format!("{}\n", s.tag))?;
    }
    Ok(Outcome::Ok)
}
