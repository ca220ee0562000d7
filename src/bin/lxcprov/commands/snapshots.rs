//! `lxcprov snapshots NAME`: a table, or a `snapshot` record each with --json.

use super::Outcome;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;

pub fn run(ctx: &Context, out: &Out, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    let all = lxcprov::ops::snapshot::snapshots(ctx, &name)?;
    if out.json {
        for s in &all {
            out.record("snapshot", s)?;
        }
        return Ok(Outcome::Ok);
    }
    let mut t = format!("{:24} {:>12} {:>12}  BASE\n", "TAG", "CREATED", "BYTES");
    for s in &all {
        t += &format!("{:24} {:>12} {:>12}  {}\n", s.tag, s.created, s.bytes, s.base);
    }
    out.text(&t)?;
    Ok(Outcome::Ok)
}
