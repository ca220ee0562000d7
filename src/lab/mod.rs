//! Teaching labs: N student containers from one profile, created in parallel from the
//! base-rootfs cache, each with its own password, an isolated network per lab (or per
//! student), and on SELinux hosts a static MCS pair from the registry so no two students
//! share categories and each rootfs carries its owner's categories.
//! A lab is recorded in `STATE/labs/LAB.json`; passwords go to `STATE/labs/LAB/passwords/`
//! (mode 0600) unless `--password-dir` says otherwise. Needs root and libvirtd.
//! With `--ssh-keys`, students reach their own container over SSH (see [`access`]).

pub mod access;

use crate::container::{self, create::Created};
use crate::context::Context as Ctx;
use crate::name::Name;
use crate::password::Secret;
use crate::profile::{LabelType, NetMode, SecModel};
use crate::provision;
use crate::spec::{self, IdmapChoice, ProfileOptions, Spec};
use crate::verify::{self, Report};
use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
}

fn record_path(ctx: &Ctx, lab: &Name) -> PathBuf {
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
fn check_record(rec: &LabRecord, lab: &Name) -> Result<()> {
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

/// Options of `lab up`.
pub struct UpOptions {
    pub lab: String,
    pub count: u32,
    pub profile: ProfileOptions,
    pub prefix: String,
    pub password_dir: Option<PathBuf>,
    pub isolate_students: bool,
    pub jobs: Option<usize>,
    pub rootfs_from: Option<PathBuf>,
    pub mirror: Option<String>,
    /// One public key per student (`student07.pub`): SSH access (see [`access`]).
    pub ssh_keys: Option<PathBuf>,
}

/// What `lab up` did.
pub struct UpResult {
    pub lab: String,
    pub password_dir: PathBuf,
    /// One per student, sorted by name.
    pub students: Vec<StudentResult>,
}

/// A student's password: read from the password directory, else generated and stored there.
fn student_password(dir: &Path, name: &Name) -> Result<Secret> {
    let f = dir.join(name.as_str());
    if let Some(s) = Secret::from_state_file(&f)? {
        return Ok(s);
    }
    let s = Secret::generate()?;
    let mut file = crate::fsutil::create_new(&f, 0o600)?;
    use std::io::Write;
    writeln!(file, "{}", s.expose())?;
    Ok(s)
}

/// Host levels in use (processes and root filesystems) that the registry must avoid.
fn levels_in_use(ctx: &Ctx) -> Vec<crate::mcs::Level> {
    let host = verify::HostRoot::real();
    let labels = verify::ProcLabels::new(&host);
    crate::mac::audit::collect(&host, &labels, &ctx.paths.pool)
        .into_iter()
        .filter_map(|u| {
            crate::mcs::split_context(&u.label)
                .and_then(|(_, l)| crate::mcs::Level::parse_range(l).ok())
                .map(|(_, h)| h)
        })
        .collect()
}

/// Do a lab's students get isolated id maps? `--idmap isolated` or a profile that says
/// `isolated`: yes (with a warning where systemd containers with different maps cannot run
/// side by side). `--idmap profile`: the profile's map. Neither (the default): isolated
/// where the host runs any containers side by side and the profile uses a user namespace.
fn lab_isolated(base: &Spec, choice: Option<IdmapChoice>, host: &verify::HostRoot) -> Result<(bool, Option<String>)> {
    let side_by_side = crate::idmap::isolated_maps_run_side_by_side(host);
    let asked = base.profile.security.idmap.is_some_and(|i| i.is_isolated());
    match choice {
        Some(IdmapChoice::Profile) if asked => bail!(
            "--idmap profile: profile {} has no shared map to use (its security.idmap is isolated). Nothing was created.",
            base.profile_name
        ),
        Some(IdmapChoice::Profile) => Ok((false, None)),
        _ if asked && !side_by_side => Ok((true, Some(
            "isolated id maps on this host (cgroup v1 with a name=systemd hierarchy, PID 1 not systemd): students whose init is not systemd run side by side, but a systemd student is refused while another student with its own map runs; use a fixed security.idmap (--idmap profile) for systemd labs here".into(),
        ))),
        _ if asked => Ok((true, None)),
        // `--idmap isolated` made the profile's map isolated (`asked`): only the default is left.
        _ => Ok((side_by_side && base.profile.security.idmap.is_some(), None)),
    }
}

/// One student's outcome.
#[derive(Debug, serde::Serialize)]
pub struct StudentResult {
    pub name: String,
    pub status: &'static str,
    pub passed: usize,
    pub failed: usize,
    pub error: Option<String>,
}

/// Brings a lab up: every student container created (or completed), in parallel.
pub fn up(ctx: &Ctx, a: &UpOptions) -> Result<UpResult> {
    let lab = Name::parse(&a.lab)?;
    if !(1..=999).contains(&a.count) {
        bail!("--count {} is out of range (1 to 999)", a.count);
    }
    if a.prefix.is_empty() || !a.prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        bail!("--prefix {:?} must be letters, digits or '-'", a.prefix);
    }
    let names = member_names(&lab, &a.prefix, a.count)?;
    let _lab_lock = crate::state::lab_lock(&ctx.paths, &lab)?;
    // Resolve once to check the profile and the host before anything is created.
    let base = spec::resolve(ctx, names[0].as_str(), &a.profile)?;
    for w in &base.warnings {
        ctx.ui.notice(&crate::text::for_terminal(w));
    }
    if let Some(why) = container::security_refusal(&base.profile) {
        bail!("cannot bring up lab {lab}: {why}. Nothing was created.");
    }
    container::require_root("lab up")?;
    let lab_access = plan_access(ctx, &lab, a, &base, &names)?;
    if let Some(acc) = &lab_access {
        if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1") {
            ctx.ui.notice("this host forwards IPv4 (net.ipv4.ip_forward=1): the lab network's isolated ports stop direct traffic between students, but the host could route it; set net.ipv4.ip_forward=0 for a lab");
        }
        container::with_real_env(ctx, &*ctx.ui, |env| add_missing_leases(env, acc))?;
    }
    let password_dir =
        a.password_dir.clone().unwrap_or_else(|| ctx.paths.state.join("labs").join(lab.as_str()).join("passwords"));
    std::fs::create_dir_all(&password_dir).with_context(|| format!("creating {}", password_dir.display()))?;
    std::fs::set_permissions(&password_dir, std::fs::Permissions::from_mode(0o700))?;

    // Static MCS pairs on SELinux hosts, allocated atomically from the registry.
    let mut levels: Vec<Option<String>> = vec![None; names.len()];
    if base.profile.security.model == SecModel::Selinux {
        let in_use = levels_in_use(ctx);
        let mut reg = crate::mac::registry::open(&ctx.paths.state)?;
        let seed = crate::mac::registry::seed();
        for (i, n) in names.iter().enumerate() {
            levels[i] = Some(reg.reg.allocate(n.as_str(), &in_use, seed)?);
        }
        reg.save()?;
    }
    // Isolated id maps, one range per student, allocated atomically from the registry.
    let (isolated, warning) = lab_isolated(&base, a.profile.idmap, &verify::HostRoot::real())?;
    if let Some(w) = warning {
        ctx.ui.warn(&w);
    }
    let mut idmaps: Vec<Option<crate::profile::Idmap>> = vec![None; names.len()];
    if isolated {
        let taken = crate::idmap::host_taken_now(&ctx.paths.state);
        let mut reg = crate::idmap::open(&ctx.paths.state)?;
        for (i, n) in names.iter().enumerate() {
            idmaps[i] = Some(reg.reg.allocate(n.as_str(), &taken)?.0);
        }
        reg.save()?;
        ctx.ui.info(&format!("lab {lab}: isolated id maps, a 65536-id range of its own for every student"));
    } else if let Some(m) = base.profile.security.idmap_map() {
        ctx.ui.info(&format!(
            "lab {lab}: every student shares the profile's id map (host uid {}){}",
            m.uid.target,
            if a.profile.idmap.is_none() {
                "; on this host systemd containers with different maps cannot run side by side (cgroup v1, PID 1 not systemd): --idmap isolated gives each student its own where their init is not systemd"
            } else {
                ""
            }
        ));
    }
    let rec = LabRecord {
        name: lab.to_string(),
        profile: base.profile_name.clone(),
        security: base.profile.security.model.as_str().into(),
        prefix: a.prefix.clone(),
        isolate_students: a.isolate_students,
        password_dir: password_dir.clone(),
        members: names.iter().map(|n| n.to_string()).collect(),
        access: lab_access.clone(),
    };
    let rp = record_path(ctx, &lab);
    std::fs::create_dir_all(rp.parent().unwrap())?;
    crate::fsutil::write_atomic(&rp, serde_json::to_string_pretty(&rec)?.as_bytes(), 0o644)?;

    // Per-student resolution: network, static label, password.
    let mut students: Vec<(Spec, Secret)> = vec![];
    for (i, n) in names.iter().enumerate() {
        let mut r = spec::resolve(ctx, n.as_str(), &a.profile)?;
        if r.profile.network.mode == NetMode::Isolated {
            r.profile.network.name =
                if a.isolate_students { format!("lxcprov-{n}") } else { format!("lxcprov-lab-{lab}") };
        }
        if let Some(acc) = &lab_access {
            apply_access(&mut r, acc)?.context("internal error: a student without an address")?;
        }
        if let Some(m) = idmaps[i] {
            r.profile.security.idmap = Some(crate::profile::IdmapSetting::Isolated(Some(m)));
        }
        if let Some(level) = &levels[i] {
            r.profile.security.label = LabelType::Static;
            r.profile.security.static_label = Some(format!("system_u:system_r:container_t:{level}"));
        }
        let pw = student_password(&password_dir, n)?;
        students.push((r, pw));
    }

    let jobs =
        a.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2)).max(1);
    let batch = ctx.ui.batch(&format!("lab {lab}"), names.len());
    let results: Mutex<Vec<StudentResult>> = Mutex::new(vec![]);
    // Every key line is checked here, so none is left out below.
    if let Some(acc) = &lab_access {
        acc.check()?;
    }
    let run_one = |(r, pw): &(Spec, Secret)| {
        let req = provision::Request {
            mirror: a.mirror.clone(),
            rootfs_from: a.rootfs_from.clone(),
            authorized_key: lab_access
                .as_ref()
                .and_then(|acc| acc.student(r.name.as_str()))
                .and_then(|st| st.key_line().ok()),
            ..Default::default()
        };
        batch.start(r.name.as_str());
        let out = provision::create_plan(ctx, r, &req).and_then(|plan| {
            container::with_real_env(ctx, &crate::output::Silent, |env| container::create(env, &plan, pw))
        });
        let res = match out {
            Ok(Created::New { report: rep, .. }) => {
                let (p, f, _) = rep.counts();
                StudentResult { name: r.name.to_string(), status: "created", passed: p, failed: f, error: None }
            }
            Ok(Created::Existing(..)) => {
                StudentResult { name: r.name.to_string(), status: "exists", passed: 0, failed: 0, error: None }
            }
            Err(e) => StudentResult {
                name: r.name.to_string(),
                status: "failed",
                passed: 0,
                failed: 0,
                error: Some(format!("{e:#}")),
            },
        };
        let line = match &res.error {
            Some(e) => format!("✘ {}: {e}", res.name),
            None if res.status == "exists" => format!("✔ {}: already there", res.name),
            None => format!("✔ {}: running, {} checks passed, {} failed", res.name, res.passed, res.failed),
        };
        batch.finish(&res.name, &line);
        results.lock().unwrap().push(res);
    };
    // The first student fills the base-rootfs cache; the others copy it in parallel.
    run_one(&students[0]);
    let rest = Mutex::new(students[1..].iter());
    std::thread::scope(|s| {
        for _ in 0..jobs.min(students.len().saturating_sub(1)) {
            s.spawn(|| loop {
                let next = rest.lock().unwrap().next();
                match next {
                    Some(st) => run_one(st),
                    None => break,
                }
            });
        }
    });
    drop(batch);
    let mut results = results.into_inner().unwrap();
    results.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(UpResult { lab: lab.to_string(), password_dir, students: results })
}

/// The lab's addresses and keys when it has SSH access: from `--ssh-keys` (read and checked
/// before anything is created), else from an earlier `lab up --ssh-keys` of the same lab.
fn plan_access(ctx: &Ctx, lab: &Name, a: &UpOptions, base: &Spec, names: &[Name]) -> Result<Option<access::LabAccess>> {
    let earlier = load(ctx, lab.as_str()).ok();
    let earlier_access = earlier.as_ref().and_then(|r| r.access.clone());
    let Some(dir) = &a.ssh_keys else {
        if let Some(acc) = &earlier_access {
            if names.iter().any(|n| acc.student(n.as_str()).is_none()) {
                bail!("lab {lab} has SSH access: give --ssh-keys DIR again so the new students get keys too. Nothing was created.");
            }
        }
        return Ok(earlier_access);
    };
    if earlier.is_some() && earlier_access.is_none() {
        bail!("lab {lab} was brought up without --ssh-keys; bring it down first (`lxcprov lab down {lab}`) to give it SSH access. Nothing was created.");
    }
    if a.isolate_students {
        bail!("--ssh-keys already keeps students apart (isolated bridge ports on one lab network); drop --isolate-students. Nothing was created.");
    }
    if base.profile.network.mode != NetMode::Isolated {
        bail!("--ssh-keys needs a profile with an isolated network (lxcprov gives it addresses); profile {} uses {:?}. Nothing was created.", base.profile_name, base.profile.network.mode);
    }
    if a.count > access::MAX_STUDENTS {
        bail!(
            "--ssh-keys: a lab with SSH access has at most {} students (one /24), not {}",
            access::MAX_STUDENTS,
            a.count
        );
    }
    let pairs: Vec<(String, String)> =
        names.iter().map(|n| (n.to_string(), n.as_str().trim_start_matches(&format!("{lab}-")).to_string())).collect();
    let (keys, warnings) = access::read_keys(dir, lab.as_str(), &pairs)?;
    for w in warnings {
        ctx.ui.notice(&w);
    }
    let x = match &earlier_access {
        // The same subnet as before: running students keep their addresses.
        Some(acc) => acc
            .gateway
            .split('.')
            .nth(2)
            .and_then(|x| x.parse().ok())
            .context("the lab record's gateway is not an address")?,
        None => {
            let routes = access::host_routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default());
            let taken: Vec<String> = all_labs(ctx)
                .into_iter()
                .filter(|r| r.name != lab.as_str())
                .filter_map(|r| r.access.map(|a| a.subnet))
                .collect();
            access::choose_subnet(lab.as_str(), &routes, &taken)?
        }
    };
    let acc = access::assign(&format!("lxcprov-lab-{lab}"), x, &pairs, &keys)?;
    // Keys are written when a container is made; a different key for an existing student
    // would leave the record saying one thing and the container holding another.
    if let Some(old) = &earlier_access {
        for st in &acc.students {
            let exists = Name::parse(&st.container)
                .is_ok_and(|n| ctx.paths.record(&n).exists() || ctx.paths.rootfs(&n).exists());
            if let Some(o) = old.student(&st.container).filter(|_| exists) {
                if o.key != st.key {
                    bail!("the key for {} ({}) is not the one its container was given ({}); lxcprov does not swap keys in existing containers: `lxcprov destroy {} --purge --yes`, then `lab up` again. Nothing was changed.", st.student, st.key.fingerprint, o.key.fingerprint, st.container);
                }
            }
        }
    }
    Ok(Some(acc))
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

/// The SSH access of the lab `name` is a student of, if any (for `rebuild`, so a rebuilt
/// student keeps its address, sshd and key).
pub fn access_of_member(ctx: &Ctx, name: &Name) -> Option<access::LabAccess> {
    all_labs(ctx).into_iter().filter_map(|r| r.access).find(|a| a.student(name.as_str()).is_some())
}

/// Every lab's record (`STATE/labs/*.json`); unreadable ones are left out.
fn all_labs(ctx: &Ctx) -> Vec<LabRecord> {
    let Ok(dir) = std::fs::read_dir(ctx.paths.state.join("labs")) else { return vec![] };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".json")).map(str::to_string))
        .filter_map(|n| load(ctx, &n).ok())
        .collect()
}

/// A lab network that already exists (a re-run with more students) gets the new leases;
/// one without addresses (made by a lab without SSH access) is refused.
fn add_missing_leases(env: &container::Env, acc: &access::LabAccess) -> Result<()> {
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
                    container::verify_domain(env, m)
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
            StatusRow { lab: rec.name.clone(), name: name.clone(), state, passed, failed, skipped }
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
                    .and_then(|d| d.label)
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

/// Destroys the lab's containers (with `purge`, their trees too); the caller has confirmed.
pub fn down(ctx: &Ctx, lab: &str, purge: bool) -> Result<()> {
    let rec = load(ctx, lab)?;
    let _lab_lock = crate::state::lab_lock(&ctx.paths, &Name::parse(&rec.name)?)?;
    let errors: Mutex<Vec<String>> = Mutex::new(vec![]);
    let networks: Mutex<Vec<String>> = Mutex::new(vec![]);
    // First every domain is stopped and undefined, one at a time: libvirt on systemd hosts
    // races with machined when several LXC domains are destroyed at once ("Unable to read
    // .../machine-lxc-...scope/cgroup.controllers"). That part is quick.
    container::with_real_env(ctx, &*ctx.ui, |env| {
        // Every init gets SIGKILL first, so the students stop together, not one by one.
        for m in &rec.members {
            if env.hv.domain_exists(m)? && env.hv.domain_state(m)? == crate::libvirt::State::Running {
                container::run::signal_init(env, m);
            }
        }
        for m in &rec.members {
            let n = Name::parse(m)?;
            if !env.hv.domain_exists(m)? {
                continue;
            }
            let _lock = crate::state::lock(&ctx.paths, &n)?;
            match container::destroy::destroy_keeping_networks(env, &n, false) {
                Ok((done, nets)) => {
                    done.iter().for_each(|d| ctx.ui.info(d));
                    networks.lock().unwrap().extend(nets);
                }
                Err(e) => errors.lock().unwrap().push(format!("{m}: {e:#}")),
            }
        }
        Ok(())
    })?;
    // Then the trees go in parallel: deleting them is waiting on the disk, not work.
    let queue = Mutex::new(rec.members.iter());
    let down_one = |env: &container::Env, m: &str| -> Result<()> {
        let n = Name::parse(m)?;
        if !purge || env.hv.domain_exists(m)? {
            return Ok(());
        }
        let _lock = crate::state::lock(&ctx.paths, &n)?;
        match container::destroy::destroy_keeping_networks(env, &n, true) {
            Ok((done, _)) => done.iter().for_each(|d| ctx.ui.info(d)),
            // Nothing of it left (no tree, no leftovers): fine.
            Err(e) if e.to_string().starts_with("no container named") => {}
            Err(e) => return Err(e),
        }
        Ok(())
    };
    let jobs = rec.members.len().clamp(1, 8);
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                let r = container::with_real_env(ctx, &*ctx.ui, |env| loop {
                    let next = queue.lock().unwrap().next();
                    let Some(m) = next else { return Ok(()) };
                    if let Err(e) = down_one(env, m) {
                        errors.lock().unwrap().push(format!("{m}: {e:#}"));
                    }
                });
                if let Err(e) = r {
                    errors.lock().unwrap().push(format!("{e:#}"));
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap();
    // The lab's networks go once every member is down (in parallel they would race).
    let mut nets = networks.into_inner().unwrap();
    nets.sort();
    nets.dedup();
    match container::with_real_env(ctx, &*ctx.ui, |env| container::destroy::remove_unused_networks(env, &nets)) {
        Ok(done) => done.iter().for_each(|d| ctx.ui.info(d)),
        Err(e) => errors.push(format!("{e:#}")),
    }
    errors.sort();
    errors.dedup();
    if !errors.is_empty() {
        bail!("lab {} is only partly down: {}", rec.name, errors.join("; "));
    }
    if let Ok(mut reg) = crate::mac::registry::open(&ctx.paths.state) {
        for m in &rec.members {
            reg.reg.release(m);
        }
        reg.save()?;
    }
    let lab_name = Name::parse(&rec.name)?;
    if purge {
        crate::fsutil::remove_tree(&ctx.paths.state.join("labs").join(lab_name.as_str()))?;
    }
    std::fs::remove_file(record_path(ctx, &lab_name))?;
    ctx.ui.info(&format!("lab {} is down", rec.name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
