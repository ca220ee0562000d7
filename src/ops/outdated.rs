//! `outdated NAME` / `outdated --rootfs DIR --profile P`: packages with newer versions in
//! the profile's repositories, checked in a scratch apt or dnf directory (see
//! [`crate::outdated`]); the fix is `rebuild`.

use crate::bootstrap::{InstallSpec, Tool};
use crate::context::Context;
use crate::distro::InstallerKind;
use crate::name::Name;
use crate::spec::ProfileOptions;
use anyhow::{bail, Context as _, Result};
use std::path::Path;

/// What one check found.
pub struct Checked {
    pub label: String,
    pub install: InstallSpec,
    pub updates: Vec<crate::outdated::Update>,
}

/// The options a recorded container was bootstrapped with.
fn recorded(ctx: &Context, name: &Name) -> Result<ProfileOptions> {
    let rec = crate::state::Record::load(&ctx.paths.record(name))?.with_context(|| {
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
        disk: None,
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
    let spec = crate::ops::create::resolve(ctx, "outdated-check", opts)?;
    let runner = ctx.runner();
    let mut on_line = |l: &str| {
        if ctx.ui.verbosity() == crate::output::Verbosity::Verbose {
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
        let u = crate::outdated::dpkg_updates(rootfs, &install, &ctx.paths.cache, &runner, &mut on_line)?;
        (install, u)
    } else {
        let tool =
            crate::bootstrap::choose_tool(spec.distro.installer, ctx.rpm_tool, &|p| crate::exec::which(p).is_some())?;
        let install = InstallSpec::new(&spec.profile, &spec.distro, mirror, tool)?;
        let repos: Vec<&str> = install.repos.iter().map(|r| r.url.as_str()).collect();
        ctx.ui.info(&format!("comparing {label} with {}", repos.join(", ")));
        let u = crate::outdated::rpm_updates(rootfs, &install, &ctx.paths.cache, &runner, &mut on_line)?;
        (install, u)
    };
    Ok(Checked { label: label.into(), install, updates })
}

/// A recorded container's check.
pub fn check_container(ctx: &Context, name: &Name, mirror: Option<&str>) -> Result<Checked> {
    let opts = recorded(ctx, name)?;
    crate::storage::mount_for_reading(&ctx.paths.pool, name.as_str())?;
    check(ctx, name.as_str(), &ctx.paths.rootfs(name), &opts, mirror)
}
