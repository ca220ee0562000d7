//! `lxcprov lab up|status|verify|report|down` and the rest: teaching labs of student containers.

use super::{print_report, print_report_with, Outcome};
use crate::cli::LabAction;
use crate::out::Out;
use anyhow::{bail, Context as _, Result};
use lxcprov::context::Context;
use lxcprov::lab;
use lxcprov::ops::lab_collect::CollectOptions;
use lxcprov::ops::lab_report::ReportOptions;
use lxcprov::ops::lab_up::UpOptions;

pub fn run(mut ctx: Context, out: &Out, action: LabAction) -> Result<Outcome> {
    // Work on an existing lab finds its profile where `lab up` did (its recorded
    // --profile-file paths), unless this run names its own.
    // A student sees the answer, not the host's progress (paths, bases, maps).
    if matches!(action, LabAction::SelfService { .. }) {
        ctx.ui = Box::new(lxcprov::output::Silent);
    }
    if ctx.sources.files.is_empty() && !matches!(action, LabAction::Up { .. }) {
        if let Ok(rec) = lab::load(&ctx, action.lab()) {
            ctx.sources.files = rec.profile_files;
        }
    }
    let ctx = &ctx;
    match action {
        LabAction::Up {
            lab,
            count,
            profile,
            prefix,
            password_dir,
            isolate_students,
            jobs,
            rootfs_from,
            mirror,
            ssh_keys,
            total_memory,
            total_pids,
            total_cpus,
        } => {
            let opts = UpOptions {
                lab,
                count,
                profile: (&profile).into(),
                prefix,
                password_dir: password_dir.map(|p| std::path::absolute(&p).unwrap_or(p)),
                isolate_students,
                jobs,
                rootfs_from,
                mirror,
                ssh_keys: ssh_keys.map(|p| std::path::absolute(&p).unwrap_or(p)),
                ceilings: lxcprov::cgroups::Ceilings { memory_bytes: total_memory, pids: total_pids, cpus: total_cpus },
            };
            up(ctx, out, &opts)
        }
        LabAction::Access { lab, ssh_config, jump, jump_keys, self_service, sudoers } => {
            // What the command line says is checked before the lab is read.
            let jump = jump.as_deref().map(lab::access::Jump::parse).transpose()?;
            let forced = (self_service || sudoers.is_some()).then(|| forced_command(ctx)).transpose()?;
            let (rec, acc) = lab::access(ctx, &lab)?;
            if let (Some(user), Some(f)) = (&sudoers, &forced) {
                out.text(&acc.sudoers(&rec.name, user, f)?)?;
                return Ok(Outcome::Ok);
            }
            if jump_keys {
                out.text(&acc.jump_keys(&rec.name, forced.as_ref())?)?;
                return Ok(Outcome::Ok);
            }
            access(ctx, out, &rec, &acc, ssh_config, jump.as_ref())
        }
        LabAction::SelfService { lab, student, request } => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let sent = request.map(|r| r.into_encoded_bytes()).unwrap_or_default();
            let served = lxcprov::ops::lab_self_service::serve(ctx, &lab, &student, &sent, now)?;
            if out.json {
                out.record("self_service", &served)?;
            } else {
                out.text(&served.message)?;
            }
            Ok(Outcome::Ok)
        }
        LabAction::Status { lab } => status(ctx, out, &lab),
        LabAction::Verify { lab } => verify(ctx, out, &lab),
        LabAction::Outdated { lab, mirror } => outdated(ctx, out, &lab, mirror.as_deref()),
        LabAction::Reset { lab, student, yes } => {
            if !yes {
                bail!("reset deletes every file the students wrote since their containers were created: confirm with --yes");
            }
            lxcprov::container::require_root("lab reset")?;
            let reports = lxcprov::ops::lab_reset::reset_lab(ctx, &lab, student)?;
            let mut outcome = Outcome::Ok;
            for r in &reports {
                if print_report(ctx, out, r)? != Outcome::Ok {
                    outcome = Outcome::ChecksFailed;
                }
            }
            Ok(outcome)
        }
        LabAction::Collect { lab, out: dir, student, max_mib } => {
            let o =
                CollectOptions { out: std::path::absolute(&dir)?, student, max_bytes: max_mib.saturating_mul(1 << 20) };
            let (manifest, entries) = lxcprov::ops::lab_collect::collect(ctx, &lab, &o)?;
            for e in &entries {
                if out.json {
                    out.record("collected", e)?;
                } else {
                    out.text(&format!("{:12} {:24} {:>12} {}\n", e.student, e.archive, e.bytes, e.sha256))?;
                }
            }
            ctx.ui.info(&format!("manifest: {}", manifest.display()));
            Ok(Outcome::Ok)
        }
        LabAction::Report { lab, html } => {
            // CPU use is sampled over one second, every running student at once.
            let o = ReportOptions { lab, html, sample: std::time::Duration::from_secs(1) };
            let (path, report) = lxcprov::ops::lab_report::report(ctx, &o)?;
            if out.json {
                out.record(
                    "report",
                    &serde_json::json!({"lab": report.lab, "path": path, "students": report.students.len()}),
                )?;
            } else {
                out.text(&format!("{}\n", path.display()))?;
            }
            Ok(Outcome::Ok)
        }
        LabAction::Snapshot { lab, tag } => {
            let tag = lxcprov::ops::lab_snapshot::snapshot_lab(ctx, &lab, tag.as_deref())?;
            if out.json {
                out.record("lab_snapshot", &serde_json::json!({"lab": lab, "tag": tag}))?;
            } else {
                out.text(&format!("{tag}\n"))?;
            }
            Ok(Outcome::Ok)
        }
        LabAction::Restore { lab, tag, student, yes } => {
            if !yes {
                bail!("restore deletes every file the students wrote since snapshot {tag}: confirm with --yes");
            }
            let reports = lxcprov::ops::lab_snapshot::restore_lab(ctx, &lab, student, &tag)?;
            let mut outcome = Outcome::Ok;
            for r in &reports {
                if print_report(ctx, out, r)? != Outcome::Ok {
                    outcome = Outcome::ChecksFailed;
                }
            }
            Ok(outcome)
        }
        LabAction::Down { lab, purge, yes } => {
            if purge && !yes {
                let n = lab::load(ctx, &lab)?.members.len();
                bail!("--purge deletes the root filesystems of {n} containers: confirm with --yes");
            }
            lxcprov::ops::lab_down::down(ctx, &lab, purge)?;
            Ok(Outcome::Ok)
        }
    }
}

fn up(ctx: &Context, out: &Out, opts: &UpOptions) -> Result<Outcome> {
    let r = lxcprov::ops::lab_up::up(ctx, opts)?;
    if out.json {
        for s in &r.students {
            out.record("student", s)?;
        }
    }
    let failed: Vec<&str> = r.students.iter().filter(|s| s.status == "failed").map(|s| s.name.as_str()).collect();
    ctx.ui.info(&format!(
        "lab {}: {} of {} student containers up; passwords in {}",
        r.lab,
        r.students.len() - failed.len(),
        r.students.len(),
        r.password_dir.display()
    ));
    if !failed.is_empty() {
        bail!(
            "{} of {} student containers failed ({}); run `lxcprov lab up {} ...` again to fill the gaps",
            failed.len(),
            r.students.len(),
            failed.join(", "),
            r.lab
        );
    }
    Ok(if r.students.iter().any(|s| s.failed > 0) { Outcome::ChecksFailed } else { Outcome::Ok })
}

fn status(ctx: &Context, out: &Out, lab: &str) -> Result<Outcome> {
    let rows = lab::status(ctx, lab)?;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let mut bad = false;
    for r in &rows {
        bad |= r.failed > 0 || r.state == "missing";
        if out.json {
            out.record("member", r)?;
        } else {
            let ago = |t: Option<u64>| t.map_or("-".to_string(), |t| format!("{}s ago", now.saturating_sub(t)));
            out.text(&format!(
                "{:24} {:8} {} passed, {} failed, {} skipped; last login {}, last change {}\n",
                r.name,
                r.state,
                r.passed,
                r.failed,
                r.skipped,
                ago(r.last_login),
                ago(r.last_change)
            ))?;
        }
    }
    Ok(if bad { Outcome::ChecksFailed } else { Outcome::Ok })
}

fn verify(ctx: &Context, out: &Out, lab: &str) -> Result<Outcome> {
    let reports = lab::verify_lab(ctx, lab)?;
    let mut outcome = Outcome::Ok;
    for (i, rep) in reports.iter().enumerate() {
        // The lab's own report (last) shows its evidence: which members, which labels.
        let shown =
            if i + 1 == reports.len() { print_report_with(out, rep, true)? } else { print_report(ctx, out, rep)? };
        if shown == Outcome::ChecksFailed {
            outcome = Outcome::ChecksFailed;
        }
    }
    Ok(outcome)
}

/// `lab outdated LAB`: each member's pending updates (one apt update per member: they share
/// the scratch directory, so every update after the first is a cheap revalidation).
fn outdated(ctx: &Context, out: &Out, lab: &str, mirror: Option<&str>) -> Result<Outcome> {
    let rec = lab::load(ctx, lab)?;
    let mut total = 0;
    let mut behind = 0;
    for m in &rec.members {
        let name = lxcprov::name::Name::parse(m)?;
        let c = lxcprov::ops::outdated::check_container(ctx, &name, mirror)?;
        total += c.updates.len();
        behind += usize::from(!c.updates.is_empty());
        if out.json {
            for u in &c.updates {
                out.record("update", &serde_json::json!({"container": m, "name": u.name, "arch": u.arch, "installed": u.installed, "candidate": u.candidate}))?;
            }
        } else {
            out.text(&format!("{m:24} {}\n", super::outdated::pending(c.updates.len())))?;
        }
    }
    if out.json {
        out.record(
            "summary",
            &serde_json::json!({"lab": rec.name, "members": rec.members.len(), "outdated": behind, "pending": total}),
        )?;
    } else if behind > 0 {
        ctx.ui.info(&format!("{behind} of {} students have updates pending; `lxcprov outdated NAME` lists them, `lxcprov rebuild NAME` installs them", rec.members.len()));
    }
    Ok(if behind > 0 { Outcome::ChecksFailed } else { Outcome::Ok })
}

/// The forced command of a student's jump key: this lxcprov, with the directories this run
/// uses where they are not the defaults (sudo passes no environment on).
fn forced_command(ctx: &Context) -> Result<lab::self_service::Forced> {
    let bin = std::env::current_exe().context("finding the running lxcprov")?;
    let p = &ctx.paths;
    let mut opts: Vec<(&str, &std::path::Path)> = vec![];
    let defaults = lxcprov::paths::Paths::default();
    for (opt, dir, default) in [
        ("--pool-dir", &p.pool, &defaults.pool),
        ("--cache-dir", &p.cache, &defaults.cache),
        ("--state-dir", &p.state, &defaults.state),
    ] {
        if dir != default {
            opts.push((opt, dir));
        }
    }
    if let Some(d) = &ctx.sources.system_dir {
        if d.as_path() != std::path::Path::new(lxcprov::profile::SYSTEM_DIR) {
            opts.push(("--profile-dir", d));
        }
    }
    if !std::path::Path::new(lab::self_service::SUDO).is_file() {
        bail!(
            "{} is missing: the jump account runs self-service through sudo (apt-get install sudo)",
            lab::self_service::SUDO
        );
    }
    lab::self_service::Forced::new(&bin, &opts)
}

/// `lab access LAB`: the table (or `--ssh-config`).
fn access(
    ctx: &Context,
    out: &Out,
    rec: &lab::LabRecord,
    acc: &lab::access::LabAccess,
    ssh_config: bool,
    jump: Option<&lab::access::Jump>,
) -> Result<Outcome> {
    if ssh_config {
        out.text(&acc.ssh_config(&rec.name, jump)?)?;
        return Ok(Outcome::Ok);
    }
    if out.json {
        for st in &acc.students {
            out.record(
                "student",
                &serde_json::json!({"lab": rec.name, "student": st.student, "container": st.container, "address": st.address, "mac": st.mac, "key_type": st.key.key_type, "fingerprint": st.key.fingerprint}),
            )?;
        }
    } else {
        out.text(&format!("{:12} {:24} {:15} KEY\n", "STUDENT", "CONTAINER", "ADDRESS"))?;
        for st in &acc.students {
            out.text(&format!(
                "{:12} {:24} {:15} {} {}\n",
                st.student, st.container, st.address, st.key.key_type, st.key.fingerprint
            ))?;
        }
        ctx.ui.info(&format!(
            "lab network {} ({}, host {}); `lxcprov lab access {} --ssh-config [--jump USER@HOST]` writes the students' ssh_config",
            acc.network, acc.subnet, acc.gateway, rec.name
        ));
    }
    Ok(Outcome::Ok)
}
