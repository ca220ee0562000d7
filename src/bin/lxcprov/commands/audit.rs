//! `lxcprov audit`: every MCS level in use on the host, by process and root filesystem.

use super::Outcome;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::mac::audit;
use lxcprov::text::for_terminal;
use lxcprov::verify::{HostRoot, ProcLabels};

pub fn run(ctx: &Context, out: &Out) -> Result<Outcome> {
    let host = HostRoot::real();
    let labels = ProcLabels::new(&host);
    let a = audit::judge(audit::collect(&host, &labels, &ctx.paths.pool));
    let selinux = lxcprov::host::selinux_enabled();
    if out.json {
        for (level, uses) in &a.levels {
            out.record("level", &serde_json::json!({"level": level, "uses": uses}))?;
        }
        for p in &a.problems {
            out.record("problem", &serde_json::json!({"message": p}))?;
        }
        out.record(
            "summary",
            &serde_json::json!({"levels": a.levels.len(), "problems": a.problems.len(), "selinux": selinux}),
        )?;
    } else {
        let mut s = String::new();
        if !selinux {
            s += "SELinux is not running on this host: no process or file carries an MCS level.\n";
        }
        for (level, uses) in &a.levels {
            s += &format!("{level}\n");
            for u in uses {
                s += &format!(
                    "    {:20} {}  {}\n",
                    for_terminal(&u.owner),
                    for_terminal(&u.what),
                    for_terminal(&u.label)
                );
            }
        }
        for p in &a.problems {
            s += &format!("PROBLEM {}\n", for_terminal(p));
        }
        s += &format!("{} levels in use, {} problems\n", a.levels.len(), a.problems.len());
        out.text(&s)?;
    }
    Ok(if a.problems.is_empty() { Outcome::Ok } else { Outcome::ChecksFailed })
}
