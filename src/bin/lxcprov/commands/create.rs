//! `lxcprov create NAME`: bootstrap, define, start and verify; `--dry-run` prints the plan's
//! steps, exactly the ones a real run performs.

use super::{print_report, Outcome};
use crate::cli::CreateArgs;
use crate::out::Out;
use anyhow::Result;
use lxcprov::container::{self, create::Created, CreatePlan};
use lxcprov::context::Context;
use lxcprov::ops::{self, create::CreateOptions, create::CreateOutcome};

pub fn run(ctx: &Context, out: &Out, a: &CreateArgs) -> Result<Outcome> {
    let opts = CreateOptions {
        name: a.bootstrap.name.clone(),
        profile: (&a.bootstrap.profile).into(),
        request: super::bootstrap::request(&a.bootstrap),
        dry_run: a.dry_run,
    };
    match ops::create::create(ctx, &opts)? {
        CreateOutcome::Planned { plan, distro_note } => dry_run(out, &plan, distro_note.as_deref()),
        CreateOutcome::Done(Created::New { report, .. } | Created::Existing(_, Some(report))) => {
            print_report(ctx, out, &report)
        }
        CreateOutcome::Done(Created::Existing(..)) => Ok(Outcome::Ok),
    }
}

/// The plan's user namespace, in words: none, the profile's shared map, or an isolated range.
fn idmap_note(plan: &CreatePlan) -> String {
    use lxcprov::profile::IdmapSetting;
    let range = |m: lxcprov::profile::Idmap| {
        format!("host uid {} / gid {}, {} ids", m.uid.target, m.gid.target, m.uid.count.min(m.gid.count))
    };
    match plan.profile.security.idmap {
        None => "none (container root is host root)".into(),
        Some(IdmapSetting::Fixed(m)) => format!("the profile's map, shared by its containers: {}", range(m)),
        Some(IdmapSetting::Isolated(Some(m))) => format!("isolated, a range of its own: {}", range(m)),
        Some(IdmapSetting::Isolated(None)) => "isolated (a range of its own, allocated at create)".into(),
    }
}

/// The plan's user namespace for `--json`: `mode` none, profile or isolated, and the host
/// range (`null` for an isolated range not allocated yet).
fn idmap_json(plan: &CreatePlan) -> serde_json::Value {
    use lxcprov::profile::IdmapSetting;
    let s = plan.profile.security.idmap;
    let mode = match s {
        None => "none",
        Some(IdmapSetting::Fixed(_)) => "profile",
        Some(IdmapSetting::Isolated(_)) => "isolated",
    };
    let m = s.and_then(|i| i.map());
    serde_json::json!({
        "mode": mode,
        "host_uid": m.map(|m| m.uid.target), "host_gid": m.map(|m| m.gid.target),
        "count": m.map(|m| m.uid.count.min(m.gid.count)),
    })
}

/// Why a real run would stop or refuse, as notes on the plan.
fn notes(plan: &CreatePlan) -> Vec<String> {
    let mut notes = plan.bootstrap.warnings.clone();
    if plan.bootstrap.rootfs.exists() && !plan.bootstrap.force {
        notes.push(format!(
            "{} exists: create reuses it only if lxcprov bootstrapped it for this profile, and stops otherwise (without --force)",
            plan.bootstrap.rootfs.display()
        ));
    }
    if let Some(n) = container::security_refusal(&plan.profile) {
        notes.push(format!("create would refuse to start on this host: {n}"));
    }
    notes
}

fn dry_run(out: &Out, plan: &CreatePlan, distro_note: Option<&str>) -> Result<Outcome> {
    let sp = &plan.bootstrap.spec;
    let notes = notes(plan);
    let steps = plan.steps();
    if out.json {
        out.record(
            "plan",
            &serde_json::json!({
                "name": plan.name, "profile": plan.profile_name, "dry_run": true,
                "distro": sp.distro, "release": sp.release, "arch": sp.arch,
                "installer": sp.tool.program(), "source": plan.bootstrap.source.kind(),
                "gpgcheck": sp.gpgcheck, "password": plan.bootstrap.password_note,
                "network": { "name": plan.profile.network.name, "mode": plan.profile.network.mode },
                "uri": plan.uri, "notes": notes, "distro_from_name": distro_note.is_some(),
                "storage": plan.bootstrap.storage, "idmap": idmap_json(plan),
            }),
        )?;
        for (i, s) in steps.iter().enumerate() {
            out.record("step", &serde_json::json!({"n": i + 1, "title": s.title, "actions": s.actions}))?;
        }
        return Ok(Outcome::Ok);
    }
    let mut s = format!(
        "# Plan for {} (profile {}, {} {} {}, installer {}). Dry run: nothing is changed.\n",
        plan.name,
        plan.profile_name,
        sp.distro,
        sp.release,
        sp.arch,
        sp.tool.program()
    );
    if let Some(n) = distro_note {
        s += &format!("# {n}\n");
    }
    s += &format!("# storage: {}\n", lxcprov::text::for_terminal(&plan.bootstrap.storage));
    s += &format!("# user namespace: {}\n", idmap_note(plan));
    for n in &notes {
        s += &format!("# NOTE: {}\n", lxcprov::text::for_terminal(n));
    }
    s += &lxcprov::plan::render_steps(&steps);
    out.text(&s)?;
    Ok(Outcome::Ok)
}
