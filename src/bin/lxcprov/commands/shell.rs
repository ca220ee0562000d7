//! `lxcprov shell NAME`: root's login shell in the running container (from the guest's
//! `/etc/passwd`, else `/bin/sh`), entered as `exec` enters.

use super::exec::{finish, running_target};
use super::Outcome;
use anyhow::{bail, Result};
use lxcprov::context::Context;
use lxcprov::enter::{self, Request};
use lxcprov::name::Name;
use lxcprov::output::Out;

pub fn run(ctx: &Context, out: &Out, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    if out.json {
        bail!("shell is interactive and has no --json form; use `lxcprov --json exec {name} -- CMD`");
    }
    let target = running_target(ctx, &name, "shell")?;
    let shell = target.login_shell.clone().unwrap_or_else(|| "/bin/sh".into());
    let req = Request { argv: vec![shell, "-l".into()], env: vec![], capture: false };
    finish(ctx, out, &target, &req, enter::run(&target, &req)?)
}
