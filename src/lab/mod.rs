//! Teaching labs: N student containers from one profile, created in parallel from the
//! base-rootfs cache, each with its own password, an isolated network per lab (or per
//! student), and on SELinux hosts a static MCS pair from the registry so no two students
//! share categories and each rootfs carries its owner's categories.
//! A lab is recorded in `STATE/labs/LAB.json`; passwords go to `STATE/labs/LAB/passwords/`
//! (mode 0600) unless `--password-dir` says otherwise. Needs root and libvirtd.
//! With `--ssh-keys`, students reach their own container over SSH (see [`access`]).

pub mod access;
pub mod report;
pub mod self_service;

use crate::container;
use crate::context::Context as Ctx;
use crate::name::Name;
use crate::spec::Spec;
use crate::verify::{self, Report};
use anyhow::{bail, Context, Result};
use std::path::PathBuf;

/// What `lab up` recorded.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct LabRecord {
    pub name: String,
    pub profile: String,
    pub security: String,
    pub prefix: String,
    pub isolate_students: bool,
    pub password_dir: PathBuf,
    pub members: Vec<String>,
    /// Addresses and keys, for labs brought up with `--ssh-keys`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<access::LabAccess>,
    /// The `--profile-file` paths `lab up` was given (absolute), so that later work on the
    /// lab (reset, restore, a student's self-service) finds the same profile without them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile_files: Vec<PathBuf>,
    /// The lab's ceilings for all its students together (`lab up --total-*`), carried by
    /// its cgroup partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ceilings: Option<crate::cgroups::Ceilings>,
}

pub(crate) fn record_path(ctx: &Ctx, lab: &Name) -> PathBuf {
    ctx.paths.state.join("labs").join(format!("{lab}.json"))
}

pub fn load(ctx: &Ctx, lab: &str) -> Result<LabRecord> {
    let lab = Name::parse(lab)?;
    let p = record_path(ctx, &lab);
    let t = crate::fsutil::read_state_to_string(&p, crate::fsutil::STATE_MAX, "lab record")?
        .with_context(|| format!("no lab named {lab} (no {})", p.display()))?;
    let rec: LabRecord = serde_json::from_str(&t).with_context(|| {
        format!("{} is not a valid lab record; move it aside (or remove it) and run again", p.display())
    })?;
    check_record(&rec, &lab).with_context(|| {
        format!("{} is not the record lxcprov wrote; move it aside (or fix it) and run again", p.display())
    })?;
    Ok(rec)
}

/// What a lab record says is only believed within its own lab: its name is its file's, and
/// its members (which `lab down` destroys) and students are the lab's own containers, never
/// another container on the host.
pub(crate) fn check_record(rec: &LabRecord, lab: &Name) -> Result<()> {
    let shown = |s: &str| crate::text::for_terminal(&s.chars().take(80).collect::<String>()).to_string();
    if rec.name != lab.as_str() {
        bail!("it names lab {:?}, not {lab}", shown(&rec.name));
    }
    let own = format!("{lab}-");
    for m in &rec.members {
        if Name::parse(m).is_err() || !m.starts_with(&own) {
            bail!("member {:?} is not a container of lab {lab}", shown(m));
        }
    }
    if let Some(acc) = &rec.access {
        if let Some(st) = acc.students.iter().find(|st| !rec.members.contains(&st.container)) {
            bail!("student {:?} is not a member of lab {lab}", shown(&st.container));
        }
    }
    Ok(())
}

/// Student container names: `LAB-PREFIXNN`.
pub fn member_names(lab: &Name, prefix: &str, count: u32) -> Result<Vec<Name>> {
    let width = count.to_string().len().max(2);
    (1..=count).map(|i| Ok(Name::parse(&format!("{lab}-{prefix}{i:0width$}"))?)).collect()
}

/// Puts a student's SSH access into its spec: the lab network with its leases, the
/// student's own lease, and the `ssh-server` packages. Returns the `authorized_keys` line;
/// None when the spec is not a student of that lab.
pub fn apply_access(r: &mut Spec, acc: &access::LabAccess) -> Result<Option<String>> {
    acc.check()?;
    let Some(st) = acc.student(r.name.as_str()) else { return Ok(None) };
    r.profile.network.name = acc.network.clone();
    r.profile.network.lease = Some(st.lease());
    r.profile.network.dhcp = Some(acc.dhcp());
    if !r.profile.package_sets.iter().any(|p| p == "ssh-server") {
        r.profile.package_sets.push("ssh-server".into());
    }
    st.key_line().map(Some)
}

/// The cgroup partition of the lab `name` is a student of, when that lab has ceilings (for
/// `rebuild`, so a rebuilt student stays under them).
pub fn partition_of_member(ctx: &Ctx, name: &Name) -> Option<(String, String)> {
    let r = all_labs(ctx).into_iter().find(|r| r.members.iter().any(|m| m == name.as_str()) && r.ceilings.is_some())?;
    let lab = Name::parse(&r.name).ok()?;
    Some((crate::cgroups::partition(&lab), r.ceilings?.to_attr()))
}

/// The SSH access of the lab `name` is a student of, if any (for `rebuild`, so a rebuilt
/// student keeps its address, sshd and key).
pub fn access_of_member(ctx: &Ctx, name: &Name) -> Option<access::LabAccess> {
    all_labs(ctx).into_iter().filter_map(|r| r.access).find(|a| a.student(name.as_str()).is_some())
}

/// Every lab's record (`STATE/labs/*.json`); unreadable ones are left out.
pub(crate) fn all_labs(ctx: &Ctx) -> Vec<LabRecord> {
    let Ok(dir) = std::fs::read_dir(ctx.paths.state.join("labs")) else { return vec![] };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_string))
        .filter_map(|n| load(ctx, &n).ok())
        .collect()
}

/// A lab network that already exists (a re-run with more students) gets the new leases;
/// one without addresses (made by a lab without SSH access) is refused.
pub(crate) fn add_missing_leases(env: &container::Env, acc: &access::LabAccess) -> Result<()> {
    if !env.hv.network_exists(&acc.network)? {
        return Ok(());
    }
    let xml = env.hv.network_xml(&acc.network)?;
    if !xml.contains("<dhcp") {
        bail!("the libvirt network {} exists without addresses; bring the lab down (or `virsh net-destroy` and `net-undefine` it) first. Nothing was created.", acc.network);
    }
    for st in &acc.students {
        if !xml.contains(&format!("mac='{}'", st.mac)) {
            let h = st.lease();
            let x = crate::render::escape_xml;
            env.hv.add_dhcp_host(
                &acc.network,
                &format!("<host mac='{}' name='{}' ip='{}'/>", x(&h.mac), x(&h.name), x(&h.ip)),
            )?;
        }
    }
    Ok(())
}

/// A lab's SSH access, with each student's state.
pub fn access(ctx: &Ctx, lab: &str) -> Result<(LabRecord, access::LabAccess)> {
    let rec = load(ctx, lab)?;
    let acc = rec.access.clone().with_context(|| {
        format!("lab {} has no SSH access; bring it up with `lxcprov lab up {} --ssh-keys DIR ...`", rec.name, rec.name)
    })?;
    let path = record_path(ctx, &Name::parse(lab)?);
    acc.check().with_context(|| format!("lab record {}", path.display()))?;
    Ok((rec, acc))
}

/// Verifies every member that exists. Missing members are reported as errors.
fn reports(ctx: &Ctx, rec: &LabRecord) -> Result<Vec<(String, Result<Report>)>> {
    container::with_real_env(ctx, &*ctx.ui, |env| {
        Ok(rec
            .members
            .iter()
            .map(|m| {
                let r = if env.hv.domain_exists(m).unwrap_or(false) {
                    Name::parse(m).map_err(anyhow::Error::from).and_then(|n| container::verify_domain(env, &n))
                } else {
                    Err(anyhow::anyhow!("{m} does not exist; run `lxcprov lab up {}` again", rec.name))
                };
                (m.clone(), r)
            })
            .collect())
    })
}

/// One row of `lab status`.
#[derive(Debug, serde::Serialize)]
pub struct StatusRow {
    pub lab: String,
    pub name: String,
    pub state: &'static str,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// The last login in the container's own login records (`/var/log/wtmp`), seconds since
    /// the epoch; `None` without one.
    pub last_login: Option<u64>,
    /// When the student last changed a file of their own (their layer), seconds since the
    /// epoch; `None` where it cannot be told (copy storage).
    pub last_change: Option<u64>,
}

/// The largest `wtmp` read (its newest records are at its end).
const WTMP_MAX: u64 = 4 << 20;
/// glibc's `struct utmp` on Linux: 384 bytes; `ut_type` at 0, `ut_tv.tv_sec` at 340.
const UTMP_SIZE: usize = 384;
const USER_PROCESS: i16 = 7;

/// The time of the last login recorded in `wtmp` bytes (a container's own, untrusted: any
/// bytes give an answer or none).
pub fn last_login_in(wtmp: &[u8]) -> Option<u64> {
    wtmp.chunks_exact(UTMP_SIZE)
        .filter(|r| i16::from_ne_bytes([r[0], r[1]]) == USER_PROCESS)
        .map(|r| i32::from_ne_bytes([r[340], r[341], r[342], r[343]]))
        .filter(|&t| t > 0)
        .max()
        .map(|t| t as u64)
}

/// The last login in a container's tree (`/var/log/wtmp`, resolved inside it, a regular file
/// of at most 4 MiB, else no answer).
fn last_login(root: &std::path::Path) -> Option<u64> {
    let p = crate::fsutil::resolve_in(root, "/var/log/wtmp").ok()?;
    let bytes = crate::fsutil::read_state(&p, WTMP_MAX, "login records").ok()??;
    last_login_in(&bytes)
}

/// One row per member, with its checks summarised.
pub fn status(ctx: &Ctx, lab: &str) -> Result<Vec<StatusRow>> {
    let rec = load(ctx, lab)?;
    let reps = reports(ctx, &rec)?;
    Ok(reps
        .iter()
        .map(|(name, r)| {
            let (state, passed, failed, skipped) = match r {
                Ok(rep) => {
                    let (p, f, k) = rep.counts();
                    let running = !rep.checks.iter().any(|c| c.summary.contains("not running"));
                    (if running { "running" } else { "shutoff" }, p, f, k)
                }
                Err(_) => ("missing", 0, 0, 0),
            };
            let layout =
                Name::parse(name).ok().and_then(|n| crate::storage::Layout::of_container(&ctx.paths.pool, &n).ok());
            let last_change = layout.as_ref().and_then(|l| l.driver().last_change());
            let last_login = layout.as_ref().and_then(|l| last_login(l.driver().target()));
            StatusRow {
                lab: rec.name.clone(),
                name: name.clone(),
                state,
                passed,
                failed,
                skipped,
                last_login,
                last_change,
            }
        })
        .collect())
}

/// The cross-container checks: labels distinct among members, and the host-wide audit.
fn cross_checks(ctx: &Ctx, rec: &LabRecord, reps: &[(String, Result<Report>)]) -> Result<Vec<verify::Check>> {
    let mut out = vec![];
    let labels: Vec<(String, String)> = container::with_real_env(ctx, &*ctx.ui, |env| {
        Ok(rec
            .members
            .iter()
            .filter_map(|m| {
                env.hv
                    .domain_xml(m)
                    .ok()
                    .and_then(|x| crate::facts::parse_domain(&x).ok())
                    .and_then(|d| d.seclabel.and_then(|s| s.label))
                    .map(|l| (m.clone(), l))
            })
            .collect())
    })?;
    if rec.security == "selinux" {
        let mut seen: std::collections::BTreeMap<&str, &str> = Default::default();
        let mut dup = vec![];
        for (m, l) in &labels {
            if let Some(other) = seen.insert(l.as_str(), m.as_str()) {
                dup.push(format!("{m} and {other} share {l}"));
            }
        }
        out.push(if dup.is_empty() && labels.len() == rec.members.len() {
            verify::Check::pass(
                "lab.labels_distinct",
                format!("{} members, {} distinct labels", rec.members.len(), labels.len()),
                labels.iter().map(|(m, l)| format!("{m}: {l}")).collect(),
            )
        } else if dup.is_empty() {
            verify::Check::fail(
                "lab.labels_distinct",
                format!("only {} of {} members have a label", labels.len(), rec.members.len()),
                vec![],
            )
        } else {
            verify::Check::fail("lab.labels_distinct", dup.join("; "), vec![])
        });
        let host = verify::HostRoot::real();
        let a = crate::mac::audit::judge(crate::mac::audit::collect(
            &host,
            &verify::ProcLabels::new(&host),
            &ctx.paths.pool,
        ));
        out.push(if a.problems.is_empty() {
            verify::Check::pass(
                "lab.mcs_audit",
                format!("{} MCS levels in use on the host, no collision or dominance", a.levels.len()),
                vec![],
            )
        } else {
            verify::Check::fail("lab.mcs_audit", format!("{} problems", a.problems.len()), a.problems.clone())
        });
    } else {
        let why = format!("security {}: no MCS labels to compare", rec.security);
        out.push(verify::Check::skip("lab.labels_distinct", why.clone(), vec![]));
        out.push(verify::Check::skip("lab.mcs_audit", why, vec![]));
    }
    let missing: Vec<&String> = reps.iter().filter(|(_, r)| r.is_err()).map(|(n, _)| n).collect();
    out.push(if missing.is_empty() {
        verify::Check::pass("lab.members", format!("all {} members exist", rec.members.len()), vec![])
    } else {
        verify::Check::fail(
            "lab.members",
            format!("missing: {}", missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")),
            vec![],
        )
    });
    Ok(out)
}

/// Every member's report, then the lab's own (cross-container checks).
pub fn verify_lab(ctx: &Ctx, lab: &str) -> Result<Vec<Report>> {
    let rec = load(ctx, lab)?;
    let reps = reports(ctx, &rec)?;
    let cross = cross_checks(ctx, &rec, &reps)?;
    let mut out: Vec<Report> = reps.into_iter().filter_map(|(_, r)| r.ok()).collect();
    out.push(Report { name: format!("lab {}", rec.name), checks: cross, note: None });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::lab_up::student_password;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_last_login_is_read_from_any_bytes_a_container_hands_over() {
        let rec = |kind: i16, sec: i32| {
            let mut r = vec![0u8; 384];
            r[0..2].copy_from_slice(&kind.to_ne_bytes());
            r[340..344].copy_from_slice(&sec.to_ne_bytes());
            r
        };
        let mut w = rec(7, 1_700_000_000);
        w.extend(rec(8, 1_800_000_000)); // a logout: not a login
        w.extend(rec(7, 1_750_000_000));
        assert_eq!(last_login_in(&w), Some(1_750_000_000));
        assert_eq!(last_login_in(&[]), None);
        assert_eq!(last_login_in(&[0xff; 383]), None, "a torn record");
        assert_eq!(last_login_in(&rec(7, -5)), None, "a time before the epoch");
        assert_eq!(last_login_in(&vec![0xa5; 384 * 100]), None);
    }

    /// A container's `/var/log/wtmp` that is a link out of its tree, a FIFO, a directory or a
    /// huge file gives no answer, at once, and reads nothing of the host.
    #[test]
    fn a_hostile_wtmp_gives_no_last_login_and_nothing_of_the_host() {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("var/log");
        std::fs::create_dir_all(&log).unwrap();
        let mut rec = vec![0u8; 384];
        rec[0..2].copy_from_slice(&7i16.to_ne_bytes());
        rec[340..344].copy_from_slice(&1_700_000_000i32.to_ne_bytes());
        let host = d.path().join("host-wtmp");
        std::fs::write(&host, &rec).unwrap();
        let wtmp = log.join("wtmp");
        let shapes: Vec<Box<dyn Fn()>> = vec![
            Box::new(|| std::os::unix::fs::symlink(&host, &wtmp).unwrap()),
            Box::new(|| crate::fsutil::tests::mkfifo(&wtmp)),
            Box::new(|| std::fs::create_dir(&wtmp).unwrap()),
            Box::new(|| std::fs::File::create(&wtmp).unwrap().set_len(64 << 30).unwrap()),
        ];
        for make in shapes {
            make();
            let t = std::time::Instant::now();
            assert_eq!(last_login(d.path()), None);
            assert!(t.elapsed() < std::time::Duration::from_secs(5));
            let _ = std::fs::remove_file(&wtmp).or_else(|_| std::fs::remove_dir(&wtmp));
        }
        std::fs::write(&wtmp, &rec).unwrap();
        assert_eq!(last_login(d.path()), Some(1_700_000_000), "a regular wtmp is read");
    }

    #[test]
    fn member_names_are_valid_and_padded() {
        let lab = Name::parse("intro").unwrap();
        let v = member_names(&lab, "student", 30).unwrap();
        assert_eq!(v[0].as_str(), "intro-student01");
        assert_eq!(v[29].as_str(), "intro-student30");
        let v = member_names(&lab, "s", 100).unwrap();
        assert_eq!(v[0].as_str(), "intro-s001");
    }

    #[test]
    fn student_passwords_are_kept_private_and_reused() {
        let d = tempfile::tempdir().unwrap();
        let n = Name::parse("l-s01").unwrap();
        let a = student_password(d.path(), &n).unwrap();
        let m = std::fs::metadata(d.path().join("l-s01")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        let b = student_password(d.path(), &n).unwrap();
        assert_eq!(a.expose(), b.expose());
        // A planted link (to a host file) or a FIFO is refused, not read or followed.
        let host = d.path().join("host-secret");
        std::fs::write(&host, "hunter2\n").unwrap();
        let s2 = Name::parse("l-s02").unwrap();
        std::os::unix::fs::symlink(&host, d.path().join("l-s02")).unwrap();
        let e = format!("{:#}", student_password(d.path(), &s2).unwrap_err());
        assert!(e.contains("symlink") && e.contains("move it aside"), "{e}");
        std::fs::remove_file(d.path().join("l-s02")).unwrap();
        let fifo = std::ffi::CString::new(d.path().join("l-s02").as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(format!("{:#}", student_password(d.path(), &s2).unwrap_err()).contains("FIFO"));
    }
}
