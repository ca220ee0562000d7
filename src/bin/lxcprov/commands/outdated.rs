//! `lxcprov outdated NAME` / `outdated --rootfs DIR --profile P`: packages with newer
//! versions in the profile's repositories, checked in a scratch apt directory (see
//! `lxcprov::outdated`). Exit 1 when updates are pending; the fix is `lxcprov rebuild NAME`.

use super::{absolute, Outcome};
use crate::cli::OutdatedArgs;
use anyhow::{bail, Context as _, Result};
use lxcprov::bootstrap::{InstallSpec, Tool};
use lxcprov::context::Context;
use lxcprov::distro::InstallerKind;
use lxcprov::name::Name;
use lxcprov::output::Out;
use lxcprov::spec::ProfileOptions;
use lxcprov::text::for_terminal;
use std::path::PathBuf;

pub fn run(ctx: &Context, out: &Out, a: &OutdatedArgs) -> Result<Outcome> {
    let (label, rootfs, opts) = match (&a.name, &a.rootfs) {
        (Some(n), _) => {
            let name = Name::parse(n)?;
            let rec = lxcprov::state::Record::load(&ctx.paths.record(&name))?.with_context(|| {
                format!(
                    "lxcprov has no record of how {name} was bootstrapped ({}); use \
                     `lxcprov outdated --rootfs DIR --profile P` instead",
                    ctx.paths.record(&name).display()
                )
            })?;
            let o = ProfileOptions {
                profile: rec.profile.clone(),
                distro: Some(rec.distro.clone()),
                release: Some(rec.release.clone()),
                security: None,
            };
            (name.to_string(), ctx.paths.rootfs(&name), o)
        }
        (None, Some(dir)) => {
            let o = ProfileOptions {
                profile: a.profile.clone(),
                distro: a.distro.clone(),
                release: a.release.clone(),
                security: None,
            };
            (dir.display().to_string(), absolute(dir, "--rootfs")?, o)
        }
        (None, None) => unreachable!("clap requires NAME or --rootfs"),
    };
    let rootfs: PathBuf = rootfs;
    if !rootfs.is_dir() {
        bail!("no root filesystem at {}", rootfs.display());
    }
    // The spec is resolved for a neutral name: a distro is never guessed from it here.
    let spec = super::resolve_opts(ctx, "outdated-check", &opts)?;
    if spec.distro.installer != InstallerKind::Debootstrap {
        bail!(
            "outdated checks Debian and Ubuntu trees for now; {} is an rpm distro (the design: \
             dnf check-update against a copy of its rpm database, with the bootstrap's repositories)",
            spec.distro.name
        );
    }
    let install = InstallSpec::new(&spec.profile, &spec.distro, a.mirror.as_deref(), Tool::Debootstrap)?;
    ctx.ui.info(&format!(
        "comparing {label} with {} {} ({})",
        install.mirror,
        install.suite,
        install.components.join(" ")
    ));
    let runner = ctx.runner();
    let updates = lxcprov::outdated::dpkg_updates(&rootfs, &install, &ctx.paths.cache, &runner, &mut |l| {
        if ctx.ui.verbosity == lxcprov::output::Verbosity::Verbose {
            ctx.ui.info(&format!("    {l}"));
        }
    })?;
    if out.json {
        for u in &updates {
            out.record("update", u)?;
        }
        out.record(
            "summary",
            &serde_json::json!({
                "container": label, "pending": updates.len(), "mirror": install.mirror, "suite": install.suite
            }),
        )?;
    } else {
        let mut s = String::new();
        if !updates.is_empty() {
            s += &format!("{:32} {:8} {:28} {}\n", "PACKAGE", "ARCH", "INSTALLED", "CANDIDATE");
        }
        for u in &updates {
            s += &format!(
                "{:32} {:8} {:28} {}\n",
                for_terminal(&u.name),
                for_terminal(&u.arch),
                for_terminal(&u.installed),
                for_terminal(&u.candidate)
            );
        }
        out.text(&s)?;
        let fix = match &a.name {
            Some(n) => format!("; `lxcprov rebuild {n}` installs them"),
            None => String::new(),
        };
        ctx.ui.info(&format!(
            "{}: {} update{} pending{}",
            for_terminal(&label),
            updates.len(),
            if updates.len() == 1 { "" } else { "s" },
            if updates.is_empty() { String::new() } else { fix }
        ));
    }
    Ok(if updates.is_empty() { Outcome::Ok } else { Outcome::ChecksFailed })
}
