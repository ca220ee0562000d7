//! `lxcprov outdated NAME` / `outdated --rootfs DIR --profile P`: packages with newer
//! versions in the profile's repositories, checked in a scratch apt directory (see
//! `lxcprov::outdated`). Exit 1 when updates are pending; the fix is `lxcprov rebuild NAME`.

use super::Outcome;
use crate::cli::OutdatedArgs;
use crate::out::Out;
use anyhow::{bail, Context as _, Result};
use lxcprov::bootstrap::{InstallSpec, Tool};
use lxcprov::context::Context;
use lxcprov::distro::InstallerKind;
use lxcprov::name::Name;
use lxcprov::spec::ProfileOptions;
use lxcprov::text::for_terminal;
use std::path::Path;

/// What one check found.
pub struct Checked {
    pub label: String,
    pub install: InstallSpec,
    pub updates: Vec<lxcprov::outdated::Update>,
}

/// The options a recorded container was bootstrapped with.
fn recorded(ctx: &Context, name: &Name) -> Result<ProfileOptions> {
    let rec = lxcprov::state::Record::load(&ctx.paths.record(name))?.with_context(|| {
        format!(
            "lxcprov has no record of how {name} was bootstrapped ({}); use \
             `lxcprov outdated --rootfs DIR --profile P` instead",
            ctx.paths.record(name).display()
        )
    })?;
    Ok(ProfileOptions {
        profile: rec.profile.clone(),
        distro: Some(rec.distro.clone()),
        release: Some(rec.release.clone()),
        security: None,
        idmap: None,
    })
}

/// Checks the tree at `rootfs` against the repository `opts` resolves to.
pub fn check(
    ctx: &Context,
    label: &str,
    rootfs: &Path,
    opts: &ProfileOptions,
    mirror: Option<&str>,
) -> Result<Checked> {
    if !rootfs.is_dir() {
        bail!("no root filesystem at {}", rootfs.display());
    }
    // The spec is resolved for a neutral name: a distro is never guessed from it here.
    let spec = super::resolve_opts(ctx, "outdated-check", opts)?;
    let runner = ctx.runner();
    let mut on_line = |l: &str| {
        if ctx.ui.verbosity() == lxcprov::output::Verbosity::Verbose {
            ctx.ui.info(&format!("    {l}"));
        }
    };
    let (install, updates) = if spec.distro.installer == InstallerKind::Debootstrap {
        let install = InstallSpec::new(&spec.profile, &spec.distro, mirror, Tool::Debootstrap)?;
        ctx.ui.info(&format!(
            "comparing {label} with {} {} ({})",
            install.mirror,
            install.suite,
            install.components.join(" ")
        ));
        let u = lxcprov::outdated::dpkg_updates(rootfs, &install, &ctx.paths.cache, &runner, &mut on_line)?;
        (install, u)
    } else {
        let tool = lxcprov::bootstrap::choose_tool(spec.distro.installer, ctx.rpm_tool, &|p| {
            lxcprov::exec::which(p).is_some()
        })?;
        let install = InstallSpec::new(&spec.profile, &spec.distro, mirror, tool)?;
        let repos: Vec<&str> = install.repos.iter().map(|r| r.url.as_str()).collect();
        ctx.ui.info(&format!("comparing {label} with {}", repos.join(", ")));
        let u = lxcprov::outdated::rpm_updates(rootfs, &install, &ctx.paths.cache, &runner, &mut on_line)?;
        (install, u)
    };
    Ok(Checked { label: label.into(), install, updates })
}

/// A recorded container's check.
pub fn check_container(ctx: &Context, name: &Name, mirror: Option<&str>) -> Result<Checked> {
    let opts = recorded(ctx, name)?;
    lxcprov::storage::mount_for_reading(&ctx.paths.pool, name.as_str())?;
    check(ctx, name.as_str(), &ctx.paths.rootfs(name), &opts, mirror)
}

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
        (Some(n), _) => check_container(ctx, &Name::parse(n)?, a.mirror.as_deref())?,
        (None, Some(dir)) => {
            let o = ProfileOptions {
                profile: a.profile.clone(),
                distro: a.distro.clone(),
                release: a.release.clone(),
                security: None,
                idmap: None,
            };
            check(ctx, &dir.display().to_string(), &super::rootfs_dir(ctx, dir, "outdated")?, &o, a.mirror.as_deref())?
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
