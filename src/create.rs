//! The commands that need libvirt: create, verify, list, start, stop, destroy, console.

use crate::app::{self, Ctx, Outcome, Resolved};
use crate::exec::Cmd;
use crate::libvirt::VirtHypervisor;
use crate::lifecycle::{self, CreateInput, Env};
use crate::name::Name;
use crate::profile::{Profile, SecModel};
use crate::verify::{self, HostRoot, ProcLabels, Report};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::time::Duration;

/// Why this host cannot run the profile's security model, if it cannot.
pub fn security_refusal(p: &Profile) -> Option<String> {
    match p.security.model {
        SecModel::Selinux if !crate::host::selinux_enabled() => Some(
            "the profile asks for SELinux (sVirt), but SELinux is not enabled on this host. \
             Use `--security none` for an unconfined test container, or run on a SELinux host \
             (see scripts/selinux-lab.sh)"
                .into(),
        ),
        SecModel::Apparmor if !crate::host::apparmor_enabled() => Some(
            "the profile asks for AppArmor, but AppArmor is not enabled on this host. \
             Use `--security none` for an unconfined test container, or an AppArmor host"
                .into(),
        ),
        _ => None,
    }
}

fn with_env<T>(ctx: &Ctx, f: impl FnOnce(&Env) -> Result<T>) -> Result<T> {
    with_real_env(ctx, &ctx.ui, f)
}

pub fn print_report(ctx: &Ctx, report: &Report) -> Result<Outcome> {
    let s = if ctx.global.json {
        verify::render_jsonl(report)
    } else {
        verify::render_human(
            report,
            std::io::stdout().is_terminal(),
            ctx.ui.verbosity == crate::output::Verbosity::Verbose,
        )
    };
    print!("{s}");
    Ok(if report.failed() { Outcome::ChecksFailed } else { Outcome::Ok })
}

fn require_root(what: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!(
            "{what} needs root (libvirt's LXC driver and the container's /proc entries are root's); run it with sudo"
        );
    }
    Ok(())
}

pub fn create(ctx: &Ctx, r: &Resolved, a: &crate::cli::BootstrapArgs) -> Result<Outcome> {
    if let Some(why) = security_refusal(&r.profile) {
        bail!("cannot create {}: {why}. Nothing was created.", r.name);
    }
    require_root("create")?;
    let report = with_env(ctx, |env| create_in(ctx, env, r, a, None, &ctx.ui))?;
    match report {
        Some(rep) => print_report(ctx, &rep),
        None => Ok(Outcome::Ok),
    }
}

/// Creates one container in `env`: the shared body of `create` and `lab up`. With
/// `password` given, it is used instead of the options in `a` (lab passwords).
pub fn create_in(
    ctx: &Ctx,
    env: &Env,
    r: &Resolved,
    a: &crate::cli::BootstrapArgs,
    password: Option<&crate::password::Secret>,
    ui: &crate::output::Ui,
) -> Result<Option<Report>> {
    let (domain_xml, network_xml) = app::render_xml(ctx, r)?;
    let _lock = crate::bootstrap::lock(&ctx.paths, &r.name)?;
    let boot = || -> Result<()> {
        let plan = app::bootstrap_plan(ctx, r, a)?;
        for w in &plan.warnings {
            ui.warn(w);
        }
        match password {
            Some(secret) => crate::bootstrap::execute(&plan, env.runner, secret, ui),
            None => {
                let (secret, generated) = app::read_password(a)?;
                crate::bootstrap::execute(&plan, env.runner, &secret, ui)?;
                if generated {
                    eprintln!("root password for {} (shown once, store it now): {}", r.name, secret.expose());
                }
                Ok(())
            }
        }
    };
    let input = CreateInput {
        name: &r.name,
        profile_name: &r.profile_name,
        profile: &r.profile,
        domain_xml: &domain_xml,
        network_xml: &network_xml,
        bootstrap: &boot,
        force: a.force,
    };
    lifecycle::create(env, &input)
}

/// Runs `f` with a fresh libvirt connection and the real host (one per thread in labs).
pub fn with_real_env<T>(ctx: &Ctx, ui: &crate::output::Ui, f: impl FnOnce(&Env) -> Result<T>) -> Result<T> {
    let hv = VirtHypervisor::connect(&ctx.uri())?;
    let runner = ctx.runner();
    let labels = ProcLabels::new(HostRoot::real());
    let env = Env {
        hv: &hv,
        runner: &runner,
        paths: &ctx.paths,
        ui,
        host: HostRoot::real(),
        run_dir: crate::facts::LXC_RUN_DIR.into(),
        labels: &labels,
    };
    f(&env)
}

pub fn require_root_pub(what: &str) -> Result<()> {
    require_root(what)
}

pub fn verify_cmd(ctx: &Ctx, name: &str, probe: bool, peer: Option<&str>) -> Result<Outcome> {
    let name = Name::parse(name)?;
    require_root("verify")?;
    let report = with_env(ctx, |env| {
        if !env.hv.domain_exists(name.as_str())? {
            bail!("no container named {name} on {}", env.hv.uri());
        }
        let mut rep = lifecycle::verify_domain(env, name.as_str())?;
        if probe {
            rep.checks.push(crate::probe::probe(env, name.as_str(), peer)?);
        }
        Ok(rep)
    })?;
    print_report(ctx, &report)
}

pub fn list_cmd(ctx: &Ctx) -> Result<Outcome> {
    let rows = with_env(ctx, lifecycle::list)?;
    let mut s = String::new();
    if ctx.global.json {
        for r in &rows {
            s += &serde_json::to_string(r)?;
            s.push('\n');
        }
    } else {
        let dash = || "-".to_string();
        s += &format!("{:20} {:8} {:10} {:8} {:>8}  {}\n", "NAME", "STATE", "PROFILE", "VNET", "INIT", "LABEL");
        for r in &rows {
            s += &format!(
                "{:20} {:8} {:10} {:8} {:>8}  {}\n",
                r.name,
                format!("{:?}", r.state).to_lowercase(),
                r.profile.clone().unwrap_or_else(dash),
                r.vnet.clone().unwrap_or_else(dash),
                r.init_pid.map(|p| p.to_string()).unwrap_or_else(dash),
                r.label.clone().unwrap_or_else(dash)
            );
        }
    }
    print!("{s}");
    Ok(Outcome::Ok)
}

pub fn start_cmd(ctx: &Ctx, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    let pid = with_env(ctx, |env| lifecycle::start(env, name.as_str()))?;
    ctx.ui.info(&format!("{name} started; its init is PID {pid} on the host"));
    Ok(Outcome::Ok)
}

pub fn stop_cmd(ctx: &Ctx, name: &str, timeout: u64) -> Result<Outcome> {
    let name = Name::parse(name)?;
    let forced = with_env(ctx, |env| lifecycle::stop(env, name.as_str(), Duration::from_secs(timeout)))?;
    ctx.ui.info(&if forced { format!("{name} forced off") } else { format!("{name} stopped") });
    Ok(Outcome::Ok)
}

fn confirm(question: &str) -> Result<bool> {
    if !std::io::stdin().is_terminal() {
        bail!("{question}: confirmation needed, but stdin is not a terminal; add --yes");
    }
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub fn destroy_cmd(ctx: &Ctx, name: &str, purge: bool, yes: bool) -> Result<Outcome> {
    let name = Name::parse(name)?;
    if purge && !yes && !confirm(&format!("Delete {} and everything in it", ctx.paths.rootfs(&name).display()))? {
        bail!("not confirmed; nothing was changed");
    }
    let _lock = crate::bootstrap::lock(&ctx.paths, &name)?;
    let done = with_env(ctx, |env| lifecycle::destroy(env, &name, purge))?;
    for d in done {
        ctx.ui.info(&d);
    }
    Ok(Outcome::Ok)
}

pub fn console_cmd(ctx: &Ctx, name: &str) -> Result<Outcome> {
    let name = Name::parse(name)?;
    with_env(ctx, |env| {
        if !env.hv.domain_exists(name.as_str())? {
            bail!("no container named {name} on {}", env.hv.uri());
        }
        Ok(())
    })?;
    let cmd = Cmd::new("virsh").arg("-c").arg(ctx.uri()).arg("console").arg(name.as_str());
    let code = crate::exec::interactive(&cmd)?;
    if code != 0 {
        bail!("virsh console exited with status {code}");
    }
    Ok(Outcome::Ok)
}

pub fn rebuild_cmd(
    ctx: &Ctx,
    name: &str,
    rootfs_from: Option<&std::path::Path>,
    mirror: Option<&str>,
) -> Result<Outcome> {
    let name = Name::parse(name)?;
    require_root("rebuild")?;
    let _lock = crate::bootstrap::lock(&ctx.paths, &name)?;
    let report = with_env(ctx, |env| {
        if !env.hv.domain_exists(name.as_str())? {
            bail!("no container named {name} on {}", env.hv.uri());
        }
        let d = crate::facts::parse_domain(&env.hv.domain_xml(name.as_str())?)?;
        let Some(meta) = d.meta else {
            bail!("{name} was not created by lxcprov (no lxcprov metadata): there is no profile to rebuild it from");
        };
        let args = crate::cli::ProfileArgs {
            profile: meta.profile.clone(),
            distro: Some(meta.distro.clone()),
            release: Some(meta.release.clone()),
            security: Some(meta.security.parse().map_err(|e: String| anyhow::anyhow!(e))?),
        };
        let r = app::resolve(ctx, name.as_str(), &args)?;
        let ba = crate::cli::BootstrapArgs {
            name: name.to_string(),
            profile: args,
            mirror: mirror.map(str::to_string),
            root_password_file: None,
            root_password_stdin: false,
            force: true,
            rootfs_from: rootfs_from.map(std::path::Path::to_path_buf),
            no_base_cache: false,
        };
        let plan = app::bootstrap_plan(ctx, &r, &ba)?;
        for w in &plan.warnings {
            ctx.ui.warn(w);
        }
        lifecycle::rebuild(env, &plan, &r.profile)
    })?;
    print_report(ctx, &report)
}
