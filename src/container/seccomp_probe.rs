//! `seccomp.probe` (`verify --probe`): proof that the filter denies what it should.
//!
//! 1. The init's installed filters are read back from the kernel
//!    (`PTRACE_SECCOMP_GET_FILTER`, host root only; the init is stopped for the moment it
//!    takes) and compared, instruction by instruction, with the container's `filter.bpf`.
//! 2. A process in the container's namespaces (`nsenter -t INIT -a`) runs the shim's
//!    `--probe` mode: each of a fixed list of harmless calls (invalid arguments) is made once
//!    unfiltered and once, in a child, under that same `filter.bpf`. Each filtered result
//!    must be what the policy says (the configured errno, SIGSYS for kill, the unfiltered
//!    result for allowed calls), and at least one denial must differ from the unfiltered
//!    result (so the errno seen is the filter's doing, not the kernel's).
//!
//! A process entered with nsenter does not inherit the init's filter (seccomp filters pass
//! only from parent to child); step 1 is what ties step 2's filter to the one in force.

use crate::container::Env;
use crate::exec::Cmd;
use crate::name::Name;
use crate::seccomp::{decode, syscall_name, Policy, Verdict, FILTER, GUEST_SHIM, POLICY};
use crate::verify::{Check, SeccompExpect};
use anyhow::{Context, Result};

const ID: &str = "seccomp.probe";

/// The init's filters, in the order they were installed, as raw instruction bytes.
pub fn installed_filters(pid: u32) -> Result<Vec<Vec<u8>>, String> {
    const PTRACE_SECCOMP_GET_FILTER: libc::c_uint = 0x420c;
    let pid = pid as libc::pid_t;
    // SAFETY: ptrace on a pid with integer arguments; the buffer below is sized from the
    // kernel's own count.
    unsafe {
        if libc::ptrace(libc::PTRACE_SEIZE, pid, 0, 0) != 0 {
            return Err(format!("PTRACE_SEIZE {pid}: {}", std::io::Error::last_os_error()));
        }
        let mut out = vec![];
        let r = (|| {
            if libc::ptrace(libc::PTRACE_INTERRUPT, pid, 0, 0) != 0 {
                return Err(format!("PTRACE_INTERRUPT: {}", std::io::Error::last_os_error()));
            }
            let mut st = 0;
            if libc::waitpid(pid, &mut st, libc::__WALL) != pid {
                return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
            }
            for i in 0.. {
                let n = libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, i as libc::c_long, std::ptr::null_mut::<u8>());
                if n < 0 {
                    let e = std::io::Error::last_os_error();
                    if e.raw_os_error() == Some(libc::ENOENT) && i > 0 {
                        break;
                    }
                    return Err(format!("PTRACE_SECCOMP_GET_FILTER {i}: {e}"));
                }
                let mut buf = vec![0u8; n as usize * 8];
                libc::ptrace(PTRACE_SECCOMP_GET_FILTER, pid, i as libc::c_long, buf.as_mut_ptr());
                out.push(buf);
            }
            Ok(())
        })();
        libc::ptrace(libc::PTRACE_DETACH, pid, 0, 0);
        r?;
        Ok(out) // index 0 is the first installed (the kernel counts from the oldest)
    }
}

/// One line of the shim's `--probe` output.
#[derive(Debug, PartialEq, Eq)]
pub struct ProbeLine {
    pub name: String,
    pub nr: u32,
    pub unfiltered: String,
    pub filtered: String,
}

pub fn parse_probe(line: &str) -> Option<ProbeLine> {
    let mut w = line.split_whitespace();
    if w.next()? != "probe" {
        return None;
    }
    let name = w.next()?.to_string();
    let nr = w.next()?.parse().ok()?;
    let unfiltered = w.next()?.strip_prefix("unfiltered=")?.to_string();
    let filtered = w.next()?.strip_prefix("filtered=")?.to_string();
    Some(ProbeLine { name, nr, unfiltered, filtered })
}

/// Judges the probe lines against the policy: (problems, evidence, denials proven).
pub fn judge(policy: &Policy, lines: &[ProbeLine]) -> (Vec<String>, Vec<String>, usize) {
    let (mut problems, mut ev, mut proven) = (vec![], vec![], 0);
    for l in lines {
        let (v, errno) = policy.decide(l.nr);
        let want = match v {
            Verdict::Errno => errno.to_string(),
            Verdict::Kill => format!("signal:{}", libc::SIGSYS),
            Verdict::Allow | Verdict::Log => l.unfiltered.clone(),
        };
        let name = syscall_name(l.nr).unwrap_or(&l.name);
        ev.push(format!(
            "{name}: unfiltered {}, filtered {} (policy: {})",
            l.unfiltered,
            l.filtered,
            crate::seccomp::verdict_word(v, errno)
        ));
        if l.filtered != want {
            problems.push(format!("{name} gave {} under the filter, the policy says {want}", l.filtered));
        } else if matches!(v, Verdict::Errno | Verdict::Kill) && l.filtered != l.unfiltered {
            proven += 1;
        }
    }
    (problems, ev, proven)
}

pub fn probe(env: &Env, name: &Name) -> Result<Check> {
    let d = crate::facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
    let file = match crate::shim::expect(&d) {
        SeccompExpect::Off => return Ok(Check::skip(ID, "no seccomp filter asked for: nothing to probe", vec![])),
        SeccompExpect::Broken(why) => return Ok(Check::fail(ID, why, vec![])),
        SeccompExpect::Filters { file, .. } => file,
    };
    let Some(pid) = crate::facts::init_pid(&env.run_dir, name.as_str()) else {
        return Ok(Check::fail(ID, "the container is not running", vec![]));
    };
    let mut ev = vec![];
    let mut problems = vec![];
    let want = crate::fsutil::read_state(&file, 1 << 20, "seccomp filter")
        .and_then(|b| b.with_context(|| format!("{} is missing", file.display())))
        .and_then(|b| decode(&b));
    let want = match want {
        Ok(w) => w,
        Err(e) => return Ok(Check::fail(ID, format!("{e:#}"), vec![])),
    };
    match installed_filters(pid) {
        Ok(have) if have == want => ev.push(format!(
            "init PID {pid}: its {} installed filters (PTRACE_SECCOMP_GET_FILTER) are identical to {}",
            have.len(),
            file.display()
        )),
        Ok(have) => problems.push(format!(
            "init PID {pid}'s {} installed filters differ from the {} in {}",
            have.len(),
            want.len(),
            file.display()
        )),
        Err(e) => problems.push(format!("reading init PID {pid}'s filters: {e}")),
    }
    let policy_path = file.with_file_name(POLICY);
    let policy = match Policy::load_state(&policy_path) {
        Ok(p) => p,
        Err(e) => return Ok(Check::fail(ID, format!("{e:#}"), ev)),
    };
    let cmd = Cmd::new("nsenter")
        .args(["-t", &pid.to_string(), "-a", GUEST_SHIM, "--probe"])
        .arg(format!("{}/{FILTER}", crate::seccomp::GUEST_DIR));
    ev.push(format!("$ {}", cmd.display()));
    let out = match env.runner.output(&cmd) {
        Ok(o) => o,
        Err(e) => {
            problems.push(format!("the probe did not run: {e}"));
            return Ok(Check::verdict_pub(ID, problems, String::new(), ev));
        }
    };
    let lines: Vec<ProbeLine> = out.lines().filter_map(parse_probe).collect();
    if lines.is_empty() {
        problems.push(format!("the probe printed no results: {}", out.trim()));
    }
    let (p, e, proven) = judge(&policy, &lines);
    problems.extend(p);
    ev.extend(e);
    if proven == 0 && !lines.is_empty() {
        problems.push("no probed call was denied with a result that differs from the kernel's own".into());
    }
    let ok = format!(
        "a process in the container under its filter gets the policy's result for all {} probed calls ({proven} denials proven); the init runs exactly this filter",
        lines.len()
    );
    Ok(Check::verdict_pub(ID, problems, ok, ev))
}
