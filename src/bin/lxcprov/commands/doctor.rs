//! `lxcprov doctor`: what this host has and lacks, with a fix for each problem.

use super::Outcome;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::doctor::{self, Level};

pub fn run(ctx: &Context, out: &Out) -> Result<Outcome> {
    let mut items = doctor::checks(&ctx.uri);
    items.extend(doctor::storage_checks(&ctx.paths.pool, ctx.storage, &ctx.uri, &ctx.paths.state));
    items.extend(doctor::idmap_checks(&lxcprov::host::HostRoot::real(), &ctx.paths.state, &ctx.paths.pool));
    items.extend(doctor::share_checks(&lxcprov::host::HostRoot::real(), &ctx.lxcfs));
    for i in &items {
        if out.json {
            out.record("item", i)?;
            continue;
        }
        let tag = match i.level {
            Level::Ok => "ok  ",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        };
        let mut s = format!("{tag} {:13} {}\n", i.id, lxcprov::text::for_terminal(&i.detail));
        if let Some(f) = &i.fix {
            s += &format!("     {:13} fix: {f}\n", "");
        }
        out.text(&s)?;
    }
    Ok(if items.iter().any(|i| i.level == Level::Fail) { Outcome::ChecksFailed } else { Outcome::Ok })
}
