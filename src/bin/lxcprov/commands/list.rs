//! `lxcprov list`: every LXC domain on the connection, with its live state.

use super::Outcome;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::text::for_terminal;

pub fn run(ctx: &Context, out: &Out) -> Result<Outcome> {
    let rows = lxcprov::ops::list::list(ctx)?;
    if out.json {
        for r in &rows {
            out.record("container", r)?;
        }
        return Ok(Outcome::Ok);
    }
    let dash = || "-".to_string();
    let mut s = format!("{:20} {:8} {:10} {:8} {:>8}  {}\n", "NAME", "STATE", "PROFILE", "VNET", "INIT", "LABEL");
    for r in &rows {
        s += &format!(
            "{:20} {:8} {:10} {:8} {:>8}  {}\n",
            for_terminal(&r.name),
            format!("{:?}", r.state).to_lowercase(),
            for_terminal(&r.profile.clone().unwrap_or_else(dash)),
            for_terminal(&r.vnet.clone().unwrap_or_else(dash)),
            r.init_pid.map(|p| p.to_string()).unwrap_or_else(dash),
            for_terminal(
                &r.label.clone().or_else(|| r.label_type.clone().map(|t| format!("({t})"))).unwrap_or_else(dash)
            )
        );
    }
    out.text(&s)?;
    Ok(Outcome::Ok)
}
