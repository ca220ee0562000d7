//! `lxcprov exec NAME [--] CMD...`: a command in the running container, with what its init
//! has (namespaces, mapped root, cgroups, bounding set, label; see `lxcprov::enter`). Exits
//! with the command's status. With `--json`, its output is captured into one `exec` record.

use super::Outcome;
use crate::cli::ExecArgs;
use crate::out::Out;
use anyhow::{Context as _, Result};
use lxcprov::context::Context;
use lxcprov::enter::{self, Request, Target};
use lxcprov::name::Name;

pub fn run(ctx: &Context, out: &Out, a: &ExecArgs) -> Result<Outcome> {
    let name = Name::parse(&a.name)?;
    enter::run_from_sealed_copy()?;
    let env = a
        .env
        .iter()
        .map(|kv| {
            kv.split_once('=')
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .with_context(|| format!("--env {kv:?}: expected KEY=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let target = lxcprov::ops::exec::running_target(ctx, &name, "exec")?;
    let req = Request { argv: a.cmd.clone(), programs: vec![], env, capture: out.json };
    finish(ctx, out, &target, &req, enter::run(&target, &req)?)
}

/// Reports the command's end: a record with --json, then its status as lxcprov's.
pub fn finish(ctx: &Context, out: &Out, t: &Target, req: &Request, o: enter::Outcome) -> Result<Outcome> {
    if let Some(e) = &o.error {
        ctx.ui.notice(&format!("lxcprov: {e}"));
    }
    if out.json {
        out.record(
            "exec",
            &serde_json::json!({
                "container": t.name,
                "argv": req.argv,
                "status": o.status,
                "signal": o.signal,
                "error": o.error,
                "stdout": String::from_utf8_lossy(&o.stdout),
                "stderr": String::from_utf8_lossy(&o.stderr),
                "truncated": o.truncated,
            }),
        )?;
    }
    Ok(Outcome::Code(o.status.clamp(0, 255) as u8))
}
