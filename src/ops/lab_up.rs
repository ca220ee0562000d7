//! `lab up LAB`: a lab of students from one profile, each a container of its own (own
//! MCS pair, own password, optionally own id range, network port and SSH key), the first
//! built alone (it fills the base-rootfs cache), the rest by the worker pool.

use crate::container::{self, create::Created};
use crate::context::Context as Ctx;
use crate::lab::{access, add_missing_leases, all_labs, apply_access, load, member_names, record_path, LabRecord};
use crate::name::Name;
use crate::password::Secret;
use crate::profile::{LabelType, NetMode, SecModel};
use crate::provision;
use crate::spec::{self, IdmapChoice, ProfileOptions, Spec};
use crate::verify;
use anyhow::{bail, Context, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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
    /// Ceilings for all the students together (`--total-memory`, `--total-pids`,
    /// `--total-cpus`): a cgroup partition of the lab's own carries them.
    pub ceilings: crate::cgroups::Ceilings,
}

/// What `lab up` did.
pub struct UpResult {
    pub lab: String,
    pub password_dir: PathBuf,
    /// One per student, sorted by name.
    pub students: Vec<StudentResult>,
}

/// A student's password: read from the password directory, else generated and stored there.
pub(crate) fn student_password(dir: &Path, name: &Name) -> Result<Secret> {
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
pub(crate) fn levels_in_use(ctx: &Ctx) -> Vec<crate::mcs::Level> {
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
pub(crate) fn lab_isolated(
    base: &Spec,
    choice: Option<IdmapChoice>,
    host: &verify::HostRoot,
) -> Result<(bool, Option<String>)> {
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

/// The `--profile-file` paths to record (absolute); a re-run without any keeps the ones
/// recorded before.
fn recorded_profile_files(ctx: &Ctx, lab: &Name) -> Vec<PathBuf> {
    let given: Vec<PathBuf> =
        ctx.sources.files.iter().map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())).collect();
    if given.is_empty() {
        crate::lab::load(ctx, lab.as_str()).map(|r| r.profile_files).unwrap_or_default()
    } else {
        given
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
    if let (_, Some(note)) = ctx.proc_views(&base.profile)? {
        ctx.ui.info(&note);
    }
    if let Some(why) = container::security_refusal(&base.profile) {
        bail!("cannot bring up lab {lab}: {why}. Nothing was created.");
    }
    container::require_root("lab up")?;
    let lab_access = plan_access(ctx, &lab, a, &base, &names)?;
    // The ceilings: as given, else as a previous `lab up` of this lab recorded them.
    let ceilings = if a.ceilings.is_empty() {
        load(ctx, lab.as_str()).ok().and_then(|r| r.ceilings)
    } else {
        Some(a.ceilings.clone())
    };
    if let Some(c) = &ceilings {
        let tree = crate::cgroups::Tree::of(&verify::HostRoot::real());
        let what = crate::cgroups::prepare_partition(&tree, &ctx.runner(), &lab, c)
            .with_context(|| format!("lab {lab}: making its cgroup partition. Nothing was created."))?;
        ctx.ui.info(&format!("lab {lab}: {c} for all students together ({what})"));
    }
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
        profile_files: recorded_profile_files(ctx, &lab),
        ceilings: ceilings.clone(),
    };
    let rp = record_path(ctx, &lab);
    std::fs::create_dir_all(rp.parent().unwrap())?;
    crate::fsutil::write_atomic(&rp, serde_json::to_string_pretty(&rec)?.as_bytes(), 0o644)?;

    // Per-student resolution: network, static label, password.
    let mut students: Vec<(Spec, Secret)> = vec![];
    for (i, n) in names.iter().enumerate() {
        // Resolved once for the lab: a student differs only by name (a student's name,
        // LAB-PREFIXnn, is never a catalog distro, which would change its distro).
        let mut r = base.for_name(n);
        if r.profile.network.mode == NetMode::Isolated {
            r.profile.network.name =
                if a.isolate_students { format!("lxcprov-{n}") } else { format!("lxcprov-lab-{lab}") };
        }
        if let Some(acc) = &lab_access {
            apply_access(&mut r, acc)?.context("internal error: a student without an address")?;
        }
        if let Some(c) = &ceilings {
            r.profile.partition = Some(crate::cgroups::partition(&lab));
            r.profile.partition_ceilings = Some(c.to_attr());
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
    let run_one = |env: &container::Env, (r, pw): &(Spec, Secret)| {
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
        let out = provision::create_plan(ctx, r, &req)
            .and_then(|plan| crate::ops::create::run_plan_in(env, &plan, pw, false));
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
    // Each worker has one libvirt connection for all its students.
    let silent = crate::output::Silent;
    container::with_real_env(ctx, &silent, |env| {
        run_one(env, &students[0]);
        Ok(())
    })?;
    let failed = crate::pool::run(&students[1..], jobs, |next| {
        container::with_real_env(ctx, &silent, |env| {
            while let Some(st) = next() {
                run_one(env, st);
            }
            Ok(())
        })
    });
    drop(batch);
    if let Some(e) = failed.into_iter().next() {
        return Err(e.context(format!("lab {lab}: a worker could not connect to libvirt")));
    }
    let mut results = results.into_inner().unwrap();
    results.sort_by(|x, y| x.name.cmp(&y.name));
    Ok(UpResult { lab: lab.to_string(), password_dir, students: results })
}

/// The lab's addresses and keys when it has SSH access: from `--ssh-keys` (read and checked
/// before anything is created), else from an earlier `lab up --ssh-keys` of the same lab.
pub(crate) fn plan_access(
    ctx: &Ctx,
    lab: &Name,
    a: &UpOptions,
    base: &Spec,
    names: &[Name],
) -> Result<Option<access::LabAccess>> {
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
