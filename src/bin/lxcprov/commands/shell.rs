//! `lxcprov shell NAME`: a login shell for root in the running container (`/bin/bash`, else
//! `/bin/sh`), entered as `exec` enters. The guest's `/etc/passwd` is not read for it: its
//! root controls that file, and lxcprov reads nothing of the container's tree to enter it.

use super::exec::finish;
use super::Outcome;
use crate::out::Out;
use anyhow::{bail, Result};
use lxcprov::context::Context;
use lxcprov::enter::{self, Request};
use lxcprov::name::Name;
use lxcprov::ops::exec::running_target;

pub fn run(ctx: &Context, out: &Out, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    enter::run_from_sealed_copy()?;
    if out.json {
        bail!("shell is interactive and has no --json form; use `lxcprov --json exec {name} -- CMD`");
    }
    let target = running_target(ctx, &name, "shell")?;
    let req = Request {
        argv: vec!["/bin/bash".into(), "-l".into()],
        programs: vec!["/bin/bash".into(), "/bin/sh".into()],
        env: vec![],
        capture: false,
    };
    finish(ctx, out, &target, &req, enter::run(&target, &req)?)
}
