//! `lab report LAB --html FILE`: a page for the teacher. Gathers, per student, what `lab
//! status` says (state, checks, last login, last change), their address (labs with SSH
//! access), their CPU and memory use from libvirt against the domain's limits, and their
//! disk use from the storage driver (against the layer's quota, if any); renders it with [`crate::lab::report::render_html`]
//! and writes FILE atomically (mode 0644). Reads the host, changes nothing but FILE; needs
//! root and libvirtd, as `lab status` does.

use crate::context::Context;
use crate::lab::report::{Gauge, LabReport, StudentRow};
use crate::libvirt::{Hypervisor, State, Usage};
use crate::name::Name;
use anyhow::{bail, Context as _, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `lab report` is asked for.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    pub lab: String,
    /// Where the page goes: a new file, or a regular file that is replaced, in a directory
    /// that exists.
    pub html: PathBuf,
    /// How long CPU use is sampled (every running student at once); zero: not sampled.
    pub sample: Duration,
}

/// Refuses a FILE the report must not be written to: one whose directory does not exist,
/// a symbolic link (never followed, never replaced), anything but a regular file. The
/// atomic write renames over FILE, so a link planted after this check is replaced, not
/// written through.
pub fn check_target(path: &Path) -> Result<()> {
    if path.file_name().is_none() {
        bail!("--html {}: name a file, not a directory", path.display());
    }
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => bail!("--html {}: {} is not a directory. Nothing was written.", path.display(), dir.display()),
        Err(e) => bail!(
            "--html {}: the directory {} does not exist ({e}); create it first. Nothing was written.",
            path.display(),
            dir.display()
        ),
    }
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => bail!(
            "--html {} is a symbolic link: refused (a report replaces a regular file only); remove the link or name another file. Nothing was written.",
            path.display()
        ),
        Ok(m) if !m.is_file() => bail!(
            "--html {} exists and is not a regular file: refused. Nothing was written.",
            path.display()
        ),
        _ => Ok(()),
    }
}

/// What libvirt says of one member: its use now (running only) and the limits in its XML.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Measured {
    pub usage: Option<(Instant, Usage)>,
    pub memory_limit_bytes: Option<u64>,
    /// The CFS quota in percent of one CPU.
    pub cpu_limit_percent: Option<f64>,
}

/// Measures every member that exists; a member libvirt cannot tell about has no figures.
pub(crate) fn measure(hv: &dyn Hypervisor, names: &[String]) -> BTreeMap<String, Measured> {
    let mut out = BTreeMap::new();
    for n in names {
        let mut m = Measured::default();
        if let Ok(d) = hv.domain_xml(n).map_err(anyhow::Error::from).and_then(|x| crate::facts::parse_domain(&x)) {
            m.memory_limit_bytes = d.memory_limit_kib.map(|k| k.saturating_mul(1024));
            // libvirt's CFS period is 100 ms unless the domain says otherwise.
            let period = d.cpu_period.filter(|&p| p > 0).unwrap_or(100_000);
            m.cpu_limit_percent = d.cpu_quota.filter(|&q| q > 0).map(|q| q as f64 / period as f64 * 100.0);
        }
        if hv.domain_state(n).ok() == Some(State::Running) {
            m.usage = hv.domain_usage(n).ok().map(|u| (Instant::now(), u));
        }
        out.insert(n.clone(), m);
    }
    out
}

/// CPU use between two measures, in percent of one CPU.
pub(crate) fn cpu_percent(before: (Instant, Usage), after: (Instant, Usage)) -> Option<f64> {
    let wall = after.0.checked_duration_since(before.0)?.as_nanos() as f64;
    // A restart between the two restarts the counter: no answer then.
    let used = after.1.cpu_time_ns.checked_sub(before.1.cpu_time_ns)? as f64;
    (wall > 0.0).then(|| used / wall * 100.0)
}

/// Gathers the lab's figures, renders the page and writes it to `o.html`. The page's path
/// (absolute) and what it shows. Nothing is written when the lab or FILE is refused.
pub fn report(ctx: &Context, o: &ReportOptions) -> Result<(PathBuf, LabReport)> {
    let rec = crate::lab::load(ctx, &o.lab)?;
    let path = std::path::absolute(&o.html).with_context(|| format!("--html {}", o.html.display()))?;
    check_target(&path)?;
    ctx.ui.phase(&format!("lab {}: checking {} students", rec.name, rec.members.len()));
    let status = crate::lab::status(ctx, &o.lab)?;
    ctx.ui.done(&format!("lab {}: {} students checked", rec.name, status.len()));
    let names: Vec<String> = status.iter().map(|r| r.name.clone()).collect();
    let (first, last) = crate::container::with_real_env(ctx, &*ctx.ui, |env| {
        let first = measure(env.hv, &names);
        if o.sample.is_zero() || !first.values().any(|m| m.usage.is_some()) {
            return Ok((first, None));
        }
        ctx.ui.phase(&format!("sampling CPU use for {} ms", o.sample.as_millis()));
        std::thread::sleep(o.sample);
        let last = measure(env.hv, &names);
        ctx.ui.done("CPU use sampled");
        Ok((first, Some(last)))
    })?;
    let own = format!("{}-", rec.name);
    let mut students = vec![];
    for r in &status {
        let m = first.get(&r.name).cloned().unwrap_or_default();
        let now = last.as_ref().and_then(|l| l.get(&r.name)).and_then(|l| l.usage).or(m.usage);
        let cpu_used = match (m.usage, now) {
            (Some(a), Some(b)) if last.is_some() => cpu_percent(a, b),
            _ => None,
        };
        let layout = if r.state == "missing" {
            None
        } else {
            Name::parse(&r.name).ok().and_then(|n| crate::storage::Layout::of_container(&ctx.paths.pool, &n).ok())
        };
        let disk_used = layout.as_ref().map(|l| l.driver().usage());
        // The quota of an overlay layer with one (resources.disk, --disk).
        let disk_limit = match &layout {
            Some(crate::storage::Layout::Overlay(o)) => o.quota(),
            _ => None,
        };
        let address = rec.access.as_ref().and_then(|a| a.student(&r.name)).map(|s| s.address.clone());
        students.push(StudentRow {
            student: r.name.strip_prefix(&own).unwrap_or(&r.name).to_string(),
            container: r.name.clone(),
            state: r.state.to_string(),
            address,
            passed: r.passed,
            failed: r.failed,
            skipped: r.skipped,
            cpu_time_ns: now.map(|(_, u)| u.cpu_time_ns),
            cpu_percent: Gauge { used: cpu_used, limit: m.cpu_limit_percent },
            memory_bytes: Gauge {
                used: now.map(|(_, u)| u.memory_kib.saturating_mul(1024)),
                limit: m.memory_limit_bytes,
            },
            disk_bytes: Gauge { used: disk_used, limit: disk_limit },
            last_activity: r.last_login.max(r.last_change),
        });
    }
    let report = LabReport {
        lab: rec.name.clone(),
        generated: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        sample_ms: if last.is_some() { o.sample.as_millis() as u64 } else { 0 },
        students,
    };
    let html = crate::lab::report::render_html(&report);
    // Checked again: the gathering took a while.
    check_target(&path)?;
    crate::fsutil::write_atomic(&path, html.as_bytes(), 0o644)?;
    Ok((path, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::libvirt::FakeHypervisor;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn only_a_new_or_regular_file_in_an_existing_directory_is_a_target() {
        let d = tempfile::tempdir().unwrap();
        let ok = d.path().join("report.html");
        check_target(&ok).unwrap();
        std::fs::write(&ok, "old").unwrap();
        check_target(&ok).unwrap();
        let e = format!("{:#}", check_target(&d.path().join("no/such/report.html")).unwrap_err());
        assert!(e.contains("does not exist") && e.contains("Nothing was written"), "{e}");
        let e = format!("{:#}", check_target(&ok.join("x.html")).unwrap_err());
        assert!(e.contains("is not a directory"), "{e}");
        // A link is refused, whether it points at a file or nowhere.
        let link = d.path().join("link.html");
        std::os::unix::fs::symlink(&ok, &link).unwrap();
        let e = format!("{:#}", check_target(&link).unwrap_err());
        assert!(e.contains("symbolic link"), "{e}");
        let dangling = d.path().join("dangling.html");
        std::os::unix::fs::symlink(d.path().join("nowhere"), &dangling).unwrap();
        assert!(check_target(&dangling).is_err());
        std::fs::create_dir(d.path().join("dir.html")).unwrap();
        let e = format!("{:#}", check_target(&d.path().join("dir.html")).unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
        crate::fsutil::tests::mkfifo(&d.path().join("fifo.html"));
        assert!(check_target(&d.path().join("fifo.html")).is_err());
        assert!(check_target(Path::new("/")).is_err());
        // What is accepted is written atomically, mode 0644, over the old file.
        crate::fsutil::write_atomic(&ok, b"new", 0o644).unwrap();
        assert_eq!(std::fs::read(&ok).unwrap(), b"new");
        assert_eq!(std::fs::metadata(&ok).unwrap().permissions().mode() & 0o777, 0o644);
    }

    #[test]
    fn cpu_use_is_time_used_over_time_passed() {
        let t = Instant::now();
        let u = |ns| Usage { cpu_time_ns: ns, memory_kib: 0 };
        let p = cpu_percent((t, u(1_000_000_000)), (t + Duration::from_secs(2), u(1_500_000_000))).unwrap();
        assert!((p - 25.0).abs() < 1e-9, "{p}");
        assert_eq!(cpu_percent((t, u(5)), (t + Duration::from_secs(1), u(4))), None, "a restarted counter");
        assert_eq!(cpu_percent((t, u(0)), (t, u(0))), None, "no time passed");
    }

    #[test]
    fn limits_come_from_the_domain_and_use_only_from_running_members() {
        let hv = FakeHypervisor::default();
        let xml = |name: &str, tune: &str| {
            format!("<domain type='lxc'><name>{name}</name><memory unit='MiB'>64</memory>{tune}</domain>")
        };
        let mut doms = hv.domains.lock().unwrap();
        doms.insert(
            "l-s01".into(),
            (xml("l-s01", "<cputune><period>100000</period><quota>50000</quota></cputune>"), State::Running),
        );
        doms.insert("l-s02".into(), (xml("l-s02", ""), State::Shutoff));
        drop(doms);
        hv.usage.lock().unwrap().insert("l-s01".into(), Usage { cpu_time_ns: 7, memory_kib: 2048 });
        let names = ["l-s01", "l-s02", "l-s03"].map(String::from);
        let m = measure(&hv, &names);
        assert_eq!(m["l-s01"].memory_limit_bytes, Some(64 << 20));
        assert_eq!(m["l-s01"].cpu_limit_percent, Some(50.0));
        assert_eq!(m["l-s01"].usage.map(|u| u.1), Some(Usage { cpu_time_ns: 7, memory_kib: 2048 }));
        assert_eq!(m["l-s02"].memory_limit_bytes, Some(64 << 20));
        assert_eq!((m["l-s02"].usage, m["l-s02"].cpu_limit_percent), (None, None), "stopped, no quota");
        assert_eq!(m["l-s03"], Measured::default(), "a member libvirt does not know");
    }
}
