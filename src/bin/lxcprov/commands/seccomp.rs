//! `lxcprov seccomp learn NAME --duration S` and `lxcprov seccomp apply NAME POLICY`.

use super::Outcome;
use crate::cli::SeccompAction;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::ops::seccomp_learn as learn;
use lxcprov::seccomp::Verdict;
use std::time::Duration;

pub fn run(ctx: &Context, out: &Out, a: SeccompAction) -> Result<Outcome> {
    match a {
        SeccompAction::Learn { name, duration, output, action, errno } => {
            let name = Name::parse(&name)?;
            let verdict = if action == "kill" { Verdict::Kill } else { Verdict::Errno };
            let path = std::path::absolute(output.unwrap_or_else(|| format!("{name}.seccomp.json").into()))?;
            let opts =
                learn::LearnOptions { duration: Duration::from_secs(duration), output: path.clone(), verdict, errno };
            let (policy, seen) = learn::learn_into(ctx, &name, &opts)?;
            if seen.overruns > 0 || seen.dropped_notes > 0 || seen.lost > 0 {
                ctx.ui.warn(&format!(
                    "the kernel lost records ({} lost by audit, {} kmsg overruns, {} drop notices): run learn again under the same load and merge, or the allow-list may miss calls",
                    seen.lost, seen.overruns, seen.dropped_notes
                ));
            }
            let n = policy.syscalls.iter().map(|r| r.names.len()).sum::<usize>();
            ctx.ui.info(&format!(
                "{} records, {} distinct system calls beyond the baseline ({} ignored from other processes); allow-list of {n} calls written to {}",
                seen.records,
                seen.syscalls.len(),
                seen.foreign,
                path.display()
            ));
            ctx.ui.info(&format!(
                "enforce it: `lxcprov seccomp apply {name} {}` and restart {name}, or set security.seccomp: {} in its profile",
                path.display(),
                path.display()
            ));
            if out.json {
                out.record(
                    "seccomp_learned",
                    &serde_json::json!({"container": name.as_str(), "file": path, "records": seen.records, "syscalls": n}),
                )?;
            } else {
                out.text(&format!("{}\n", path.display()))?;
            }
            Ok(Outcome::Ok)
        }
        SeccompAction::Apply { name, policy } => {
            let name = Name::parse(&name)?;
            let s = learn::apply_to(ctx, &name, &policy)?;
            ctx.ui.info(&format!(
                "{name}: {} compiled to {}/{} ({} programs); restart {name} for it to take effect",
                s.summary,
                s.dir.display(),
                lxcprov::seccomp::FILTER,
                s.programs
            ));
            Ok(Outcome::Ok)
        }
    }
}
