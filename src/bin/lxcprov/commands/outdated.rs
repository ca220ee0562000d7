//! `lxcprov outdated NAME` / `outdated --rootfs DIR --profile P`: packages with newer
//! versions in the profile's repositories, checked in a scratch apt directory (see
//! `lxcprov::outdated`). Exit 1 when updates are pending; the fix is `lxcprov rebuild NAME`.

use super::Outcome;
use crate::cli::OutdatedArgs;
use crate::out::Out;
use anyhow::Result;
use lxcprov::context::Context;
use lxcprov::name::Name;
use lxcprov::spec::ProfileOptions;
use lxcprov::text::for_terminal;

/// The table of updates, for people.
pub fn table(updates: &[lxcprov::outdated::Update]) -> String {
    let mut s = String::new();
    if !updates.is_empty() {
        s += &format!("{:32} {:8} {:28} {}\n", "PACKAGE", "ARCH", "INSTALLED", "CANDIDATE");
    }
    for u in updates {
        s += &format!(
            "{:32} {:8} {:28} {}\n",
            for_terminal(&u.name),
            for_terminal(&u.arch),
            for_terminal(&u.installed),
            for_terminal(&u.candidate)
        );
    }
    s
}

pub fn run(ctx: &Context, out: &Out, a: &OutdatedArgs) -> Result<Outcome> {
    let c = match (&a.name, &a.rootfs) {
        (Some(n), _) => lxcprov::ops::outdated::check_container(ctx, &Name::parse(n)?, a.mirror.as_deref())?,
        (None, Some(dir)) => {
            let o = ProfileOptions {
                profile: a.profile.clone(),
                distro: a.distro.clone(),
                release: a.release.clone(),
                security: None,
                idmap: None,
                disk: None,
            };
            lxcprov::ops::outdated::check(
                ctx,
                &dir.display().to_string(),
                &super::rootfs_dir(ctx, dir, "outdated")?,
                &o,
                a.mirror.as_deref(),
            )?
        }
        (None, None) => unreachable!("clap requires NAME or --rootfs"),
    };
    if out.json {
        for u in &c.updates {
            out.record("update", u)?;
        }
        out.record(
            "summary",
            &serde_json::json!({
                "container": c.label, "pending": c.updates.len(), "mirror": c.install.mirror, "suite": c.install.suite
            }),
        )?;
    } else {
        out.text(&table(&c.updates))?;
        let fix = match &a.name {
            Some(n) if !c.updates.is_empty() => format!("; `lxcprov rebuild {n}` installs them"),
            _ => String::new(),
        };
        ctx.ui.info(&format!("{}: {}{fix}", for_terminal(&c.label), pending(c.updates.len())));
    }
    Ok(if c.updates.is_empty() { Outcome::Ok } else { Outcome::ChecksFailed })
}

/// "3 updates pending".
pub fn pending(n: usize) -> String {
    format!("{n} update{} pending", if n == 1 { "" } else { "s" })
}
