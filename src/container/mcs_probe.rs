//! `verify --probe`: the negative proof the paper only asserts. From a throwaway process
//! running in container A's SELinux label, try to read a file carrying container B's
//! categories and to stop B's init. PASS only when both are denied (and the same actions on
//! A's own file and init succeed, which proves the probe really ran in A's label); the AVC
//! denials from the audit log are the evidence. Needs root and SELinux enforcing. Writes
//! only under `STATE/probe/`, removed afterwards; B's init gets SIGCONT in any case.

use crate::container::Env;
use crate::exec::Cmd;
use crate::facts;
use crate::libvirt::State;
use crate::verify::Check;
use anyhow::{Context, Result};
use std::path::Path;

const ID: &str = "selinux.probe";
const AUDIT_LOG: &str = "/var/log/audit/audit.log";

struct Side {
    name: String,
    label: String,
    imagelabel: String,
    init: u32,
}

fn side(env: &Env, name: &str) -> Result<Option<Side>> {
    if env.hv.domain_state(name)? != State::Running {
        return Ok(None);
    }
    let d = facts::parse_domain(&env.hv.domain_xml(name)?)?;
    let Some(sec) = d.seclabel else { return Ok(None) };
    let (Some(label), Some(imagelabel)) = (sec.label, sec.imagelabel) else { return Ok(None) };
    let Some(init) = facts::init_pid(&env.run_dir, name) else { return Ok(None) };
    Ok(Some(Side { name: name.into(), label, imagelabel, init }))
}

/// Runs `cmd`; Ok(true) when it succeeded, Ok(false) with its output when it failed.
fn attempt(env: &Env, cmd: &Cmd, out: &mut Vec<String>) -> bool {
    match env.runner.run(cmd, &mut |l| out.push(l.to_string())) {
        Ok(()) => true,
        Err(e) => {
            out.push(e.to_string().lines().next().unwrap_or_default().to_string());
            false
        }
    }
}

/// The probe check for container `a`, against `b` or the first other labelled container.
pub fn probe(env: &Env, a: &str, b: Option<&str>) -> Result<Check> {
    if env.labels.enforcing() != Some(true) {
        return Ok(Check::skip(ID, "SELinux is not enforcing on this host: there is nothing to probe", vec![]));
    }
    let Some(sa) = side(env, a)? else {
        return Ok(Check::fail(ID, format!("{a} is not running with an SELinux label"), vec![]));
    };
    let peer = match b {
        Some(b) => Some(b.to_string()),
        None => env.hv.domains()?.into_iter().filter(|n| n != a).find(|n| side(env, n).ok().flatten().is_some()),
    };
    let Some(peer) = peer else {
        return Ok(Check::skip(ID, "no second running container with an SELinux label to probe against", vec![]));
    };
    let Some(sb) = side(env, &peer)? else {
        return Ok(Check::fail(ID, format!("{peer} is not running with an SELinux label"), vec![]));
    };
    let dir = env.paths.state.join("probe").join(format!("{}-{}-{}", sa.name, sb.name, std::process::id()));
    let r = run_probe(env, &sa, &sb, &dir);
    // Whatever happened: B's init must not stay stopped, and the probe files go.
    let _ = env.runner.run(&Cmd::new("kill").args(["-s", "CONT"]).arg(sb.init.to_string()), &mut |_| {});
    let _ = crate::fsutil::remove_tree(&dir);
    if let Some(parent) = dir.parent() {
        let _ = std::fs::remove_dir(parent); // only when empty
    }
    r
}

fn run_probe(env: &Env, a: &Side, b: &Side, dir: &Path) -> Result<Check> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lxc = std::fs::read_to_string(crate::host::lxc_contexts_path(&env.host.etc())).unwrap_or_default();
    let shared =
        crate::host::rootfs_label(&lxc, None).unwrap_or_else(|| "system_u:object_r:container_file_t:s0".into());
    let bb = crate::exec::which("busybox").context("the probe needs busybox (busybox-static) on the host")?;
    // busybox picks its applet from argv[0]'s name, so the copy must be called busybox.
    let exe = dir.join("busybox");
    std::fs::copy(&bb, &exe)?;
    let (fa, fb) = (dir.join("a.txt"), dir.join("b.txt"));
    std::fs::write(&fa, "A's own file\n")?;
    std::fs::write(&fb, "B's secret\n")?;
    let mut ev = vec![];
    let chcon = |label: &str, p: &Path| Cmd::new("chcon").arg(label).arg(p.display().to_string());
    for (label, p) in
        [(&shared, dir), (&a.imagelabel, exe.as_path()), (&a.imagelabel, fa.as_path()), (&b.imagelabel, fb.as_path())]
    {
        env.runner.run(&chcon(label, p), &mut |_| {}).map_err(anyhow::Error::new)?;
    }
    let audit_start = std::fs::metadata(AUDIT_LOG).map(|m| m.len()).unwrap_or(0);
    let as_a =
        |args: &[String]| Cmd::new("runcon").arg(&a.label).arg(exe.display().to_string()).args(args.iter().cloned());
    let mut out = vec![];
    let own_read = attempt(env, &as_a(&["cat".into(), fa.display().to_string()]), &mut out);
    let own_signal = attempt(env, &as_a(&["kill".into(), "-0".into(), a.init.to_string()]), &mut out);
    let mut read_b = vec![];
    let b_read = attempt(env, &as_a(&["cat".into(), fb.display().to_string()]), &mut read_b);
    let mut sig_b = vec![];
    let b_signal = attempt(env, &as_a(&["kill".into(), "-s".into(), "STOP".into(), b.init.to_string()]), &mut sig_b);
    ev.push(format!("probe process label: {} (container {})", a.label, a.name));
    ev.push(format!("control: read A's own file ({}): {}", a.imagelabel, if own_read { "allowed" } else { "DENIED" }));
    ev.push(format!("control: signal 0 to A's init {}: {}", a.init, if own_signal { "allowed" } else { "DENIED" }));
    ev.push(format!(
        "read B's file ({}): {}{}",
        b.imagelabel,
        if b_read { "ALLOWED" } else { "denied" },
        read_b.last().map(|l| format!(" ({l})")).unwrap_or_default()
    ));
    ev.push(format!(
        "SIGSTOP to B's init {} ({}): {}{}",
        b.init,
        b.label,
        if b_signal { "ALLOWED" } else { "denied" },
        sig_b.last().map(|l| format!(" ({l})")).unwrap_or_default()
    ));
    let avcs: Vec<String> = std::fs::read(AUDIT_LOG)
        .map(|bytes| String::from_utf8_lossy(&bytes[(audit_start as usize).min(bytes.len())..]).into_owned())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("avc:") && l.contains("denied"))
        // Only B's: the denials whose target carries B's categories (the probe's inherited
        // pipes are denied too, which proves nothing).
        .filter(|l| {
            crate::mcs::split_context(&b.label).is_some_and(|(_, lvl)| {
                l.contains(&format!("tcontext={}", b.label)) || l.contains(&format!("{lvl} tclass="))
            })
        })
        .map(str::to_string)
        .collect();
    if avcs.is_empty() {
        ev.push(format!("no AVC denial found in {AUDIT_LOG} (is auditd running?)"));
    }
    ev.extend(avcs.iter().take(6).cloned());
    if !own_read {
        return Ok(Check::fail(
            ID,
            "could not run a process in A's label reading A's own file: the probe proves nothing",
            ev,
        ));
    }
    Ok(match (b_read, b_signal) {
        (false, false) => Check::pass(
            ID,
            format!("{} cannot read {}'s files or stop its init: both denied by MCS", a.name, b.name),
            ev,
        ),
        (true, _) => Check::fail(ID, format!("{} READ a file carrying {}'s categories", a.name, b.name), ev),
        (false, true) => Check::fail(ID, format!("{} STOPPED {}'s init", a.name, b.name), ev),
    })
}
