//! One file per subcommand, an adapter: it converts its arguments into the options of one
//! operation (`lxcprov::ops`), calls it, and prints the result through the one stdout writer
//! ([`Out`]). The context built here carries the terminal UI (the observer) and the paths;
//! the operations open the real seams (libvirt, the host) through `container::with_real_env`.

mod audit;
mod bootstrap;
mod completions;
mod console;
mod create;
mod destroy;
mod distros;
mod doctor;
mod exec;
mod hook;
mod lab;
mod list;
mod manpages;
mod outdated;
mod profiles;
mod rebuild;
mod render;
mod reset;
mod restore;
mod sbom;
mod seccomp;
mod shell;
mod snapshot;
mod snapshots;
mod start;
mod stop;
mod verify;

use crate::cli::{Cli, Command, Global, ProfileArgs};
use crate::out::Out;
use crate::ui::Ui;
use anyhow::{bail, Context as _, Result};
use lxcprov::context::Context;
use lxcprov::output::Verbosity;
use lxcprov::spec::ProfileOptions;
use lxcprov::verify::Report;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// How a successful run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Checks ran and found failures (exit 1).
    ChecksFailed,
    /// A command run in a container ended with this status (`exec`, `shell`).
    Code(u8),
}

pub fn run(cli: Cli) -> Result<Outcome> {
    let ctx = context(&cli.global)?;
    let out = Out::new(cli.global.json);
    match cli.command {
        Command::Profiles { action } => profiles::run(&ctx, &out, action),
        Command::Distros => distros::run(&out),
        Command::Render(a) => render::run(&ctx, &out, &a),
        Command::Bootstrap(a) => bootstrap::run(&ctx, &out, &a),
        Command::Create(a) => create::run(&ctx, &out, &a),
        Command::Verify(a) => verify::run(&ctx, &out, &a),
        Command::List => list::run(&ctx, &out),
        Command::Start { name } => start::run(&ctx, &name),
        Command::Stop { name, timeout } => stop::run(&ctx, &name, timeout),
        Command::Destroy { name, purge, yes } => destroy::run(&ctx, &name, purge, yes),
        Command::Console { name } => console::run(&ctx, &name),
        Command::Exec(a) => exec::run(&ctx, &out, &a),
        Command::Shell { name } => shell::run(&ctx, &out, &name),
        Command::Doctor => doctor::run(&ctx, &out),
        Command::Hook { action } => hook::run(&ctx, action),
        Command::Reset { name, yes } => reset::run(&ctx, &out, &name, yes),
        Command::Snapshot { name, tag, delete } => snapshot::run(&ctx, &out, &name, tag.as_deref(), delete),
        Command::Snapshots { name } => snapshots::run(&ctx, &out, &name),
        Command::Restore { name, tag, yes } => restore::run(&ctx, &out, &name, &tag, yes),
        Command::Completions { shell } => completions::run(&out, shell),
        Command::Manpages { dir } => manpages::run(&out, &dir),
        Command::Audit => audit::run(&ctx, &out),
        Command::Sbom(a) => sbom::run(&ctx, &out, &a),
        Command::Outdated(a) => outdated::run(&ctx, &out, &a),
        Command::Rebuild { name, rootfs_from, mirror } => rebuild::run(&ctx, &out, &name, rootfs_from, mirror),
        Command::Lab { action } => lab::run(ctx, &out, action),
        Command::Seccomp { action } => seccomp::run(&ctx, &out, action),
    }
}

/// A path option made absolute (it goes into domain XML and into child processes' argv).
fn absolute(p: &Path, what: &str) -> Result<PathBuf> {
    std::path::absolute(p).with_context(|| format!("{what} {}: cannot make it absolute", p.display()))
}

/// The library's context from the global options.
fn context(g: &Global) -> Result<Context> {
    let verbosity = if g.quiet {
        Verbosity::Quiet
    } else if g.verbose > 0 {
        Verbosity::Verbose
    } else {
        Verbosity::Normal
    };
    Ok(Context {
        ui: Box::new(Ui::new(verbosity)),
        paths: lxcprov::paths::Paths {
            pool: absolute(&g.pool_dir, "--pool-dir")?,
            cache: absolute(&g.cache_dir, "--cache-dir")?,
            state: absolute(&g.state_dir, "--state-dir")?,
        },
        sources: lxcprov::profile::Sources {
            system_dir: Some(absolute(&g.profile_dir, "--profile-dir")?),
            files: g.profile_file.clone(),
        },
        templates: g.templates.as_deref().map(|t| absolute(t, "--templates")).transpose()?,
        uri: if g.connect.is_empty() { "lxc:///".into() } else { g.connect.clone() },
        rpm_tool: g.rpm_installer,
        init_shim: g.init_shim.as_deref().map(|p| absolute(p, "--init-shim")).transpose()?,
        storage: g.storage,
        lxcfs: absolute(&g.lxcfs_dir, "--lxcfs-dir")?,
    })
}

impl From<&ProfileArgs> for ProfileOptions {
    fn from(a: &ProfileArgs) -> ProfileOptions {
        ProfileOptions {
            profile: a.profile.clone(),
            distro: a.distro.clone(),
            release: a.release.clone(),
            security: a.security,
            idmap: a.idmap,
            disk: a.disk.clone(),
        }
    }
}

/// `--rootfs DIR` of `sbom`/`outdated`: a directory, and not the empty mount point of a
/// shut-off overlay container (its tree is only there while mounted).
fn rootfs_dir(ctx: &Context, dir: &std::path::Path, cmd: &str) -> Result<std::path::PathBuf> {
    let dir = absolute(dir, "--rootfs")?;
    anyhow::ensure!(dir.is_dir(), "--rootfs {}: not a directory", dir.display());
    if let Some(name) = lxcprov::storage::unmounted_overlay_at(&ctx.paths.pool, &dir) {
        bail!(
            "--rootfs {}: that is the mount point of the overlay container {name}, which is not mounted (it is shut off), so it is empty; run `lxcprov {cmd} {name}`, which mounts it",
            dir.display()
        );
    }
    Ok(dir)
}

/// Resolves a container spec from the command line, showing its validation warnings.
fn resolve(ctx: &Context, name: &str, a: &ProfileArgs) -> Result<lxcprov::spec::Spec> {
    lxcprov::ops::create::resolve(ctx, name, &a.into())
}

/// A verification report: aligned lines for people, `check`/`summary` records with --json.
fn print_report(ctx: &Context, out: &Out, report: &Report) -> Result<Outcome> {
    print_report_with(out, report, ctx.ui.verbosity() == Verbosity::Verbose)
}

/// [`print_report`] with the evidence shown or not.
fn print_report_with(out: &Out, report: &Report, evidence: bool) -> Result<Outcome> {
    let s = if out.json {
        lxcprov::verify::render_jsonl(report)
    } else {
        lxcprov::verify::render_human(report, std::io::stdout().is_terminal(), evidence)
    };
    out.text(&s)?;
    Ok(if report.failed() { Outcome::ChecksFailed } else { Outcome::Ok })
}

/// Asks on the terminal; refuses when there is none.
fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question}: confirmation needed, but stdin is not a terminal; add --yes");
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}
