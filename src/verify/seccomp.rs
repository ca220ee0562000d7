//! `seccomp`: every process of the container runs under the filter lxcprov's init shim
//! installed: `Seccomp: 2` (filter mode) in `/proc/PID/status`, and at least as many
//! filters (`Seccomp_filters:`) as the shim installs (exactly that many for the init;
//! systemd stacks its own per-service filters on top, never fewer).

use super::procfs::status_field;
use super::{Check, Ctx, SeccompExpect};

pub(super) fn seccomp(cx: &Ctx) -> Check {
    const ID: &str = "seccomp";
    let (file, programs, summary) = match &cx.expect.seccomp {
        SeccompExpect::Off => {
            return Check::skip(ID, "no seccomp filter asked for (security.seccomp: none)", vec![]);
        }
        SeccompExpect::Broken(why) => return Check::fail(ID, why.clone(), vec![]),
        SeccompExpect::Filters { file, programs, summary } => (file, *programs, summary),
    };
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let mut ev = vec![format!("{}: {programs} programs ({summary})", file.display())];
    let mut problems = vec![];
    let (mut seen, mut max) = (0usize, 0usize);
    for &pid in &cx.members {
        let path = cx.host.proc().join(pid.to_string()).join("status");
        let Ok(status) = std::fs::read_to_string(&path) else { continue }; // exited meanwhile
        let comm = cx.procs.comm(pid).to_string();
        let mode = status_field(&status, "Seccomp").unwrap_or("?").to_string();
        let filters: Option<usize> = status_field(&status, "Seccomp_filters").and_then(|s| s.parse().ok());
        if pid == init {
            ev.push(format!(
                "init PID {pid} ({comm}): Seccomp: {mode}, Seccomp_filters: {}, NoNewPrivs: {}",
                filters.map_or("?".into(), |f| f.to_string()),
                status_field(&status, "NoNewPrivs").unwrap_or("?")
            ));
        }
        seen += 1;
        if mode != "2" {
            problems.push(format!("PID {pid} ({comm}) has Seccomp: {mode}, not 2 (filter)"));
            continue;
        }
        match filters {
            None => problems.push(format!("PID {pid} ({comm}): no Seccomp_filters line in {}", path.display())),
            Some(f) if pid == init && f != programs => {
                problems.push(format!("init PID {pid} has {f} filters, the shim installs {programs}"))
            }
            Some(f) if f < programs => {
                problems.push(format!("PID {pid} ({comm}) has {f} filters, fewer than {programs}"))
            }
            Some(f) => max = max.max(f),
        }
    }
    ev.push(format!(
        "{seen} processes read: each must show Seccomp: 2 and at least {programs} filters (most seen: {max})"
    ));
    Check::verdict(
        ID,
        problems,
        format!("all {seen} processes run under the container's seccomp filter ({programs} programs)"),
        ev,
    )
}
