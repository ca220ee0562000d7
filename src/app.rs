//! One function per subcommand. This is the only place where real implementations of the
//! seams (runner, hypervisor, host root) are constructed and handed to the library.

use crate::bootstrap::{self, Source};
use crate::cli::{self, Cli, Command, ProfilesAction};
use crate::distro::{self, Distro};
use crate::exec::{self, SystemRunner};
use crate::name::Name;
use crate::output::{Ui, Verbosity};
use crate::paths::Paths;
use crate::profile::{self, Profile};
use crate::render::{self, DomainSpec, NetworkSpec, Templates};
use anyhow::{bail, Context, Result};
use std::io::Write;

/// How a successful run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Verification ran and found failures (exit 1).
    ChecksFailed,
}

/// Everything resolved from the global options.
pub struct Ctx {
    pub global: cli::Global,
    pub ui: Ui,
    pub paths: Paths,
    pub sources: profile::Sources,
}

impl Ctx {
    pub fn new(global: cli::Global) -> Ctx {
        let verbosity = if global.quiet {
            Verbosity::Quiet
        } else if global.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        Ctx {
            ui: Ui::new(verbosity),
            paths: Paths {
                pool: global.pool_dir.clone(),
                cache: global.cache_dir.clone(),
                state: global.state_dir.clone(),
            },
            sources: profile::Sources {
                system_dir: Some(
                    std::env::var_os("LXCPROV_PROFILE_DIR")
                        .map(Into::into)
                        .unwrap_or_else(|| profile::SYSTEM_DIR.into()),
                ),
                files: global.profile_file.clone(),
            },
            global,
        }
    }

    pub fn runner(&self) -> SystemRunner {
        SystemRunner { echo: self.ui.verbosity == Verbosity::Verbose }
    }

    /// The libvirt URI: --connect, else $LIBVIRT_DEFAULT_URI, else lxc:///.
    pub fn uri(&self) -> String {
        self.global
            .connect
            .clone()
            .or_else(|| std::env::var("LIBVIRT_DEFAULT_URI").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "lxc:///".into())
    }
}

/// A container's name, profile and distro, resolved and validated.
pub struct Resolved {
    pub name: Name,
    pub profile_name: String,
    pub profile: Profile,
    pub distro: Distro,
}

/// Resolves name + profile + command-line overrides. Touches nothing.
pub fn resolve(ctx: &Ctx, name: &str, args: &cli::ProfileArgs) -> Result<Resolved> {
    let name = Name::parse(name)?;
    let loaded = profile::find(&ctx.sources, &args.profile)?;
    let mut p = loaded.profile;
    if let Some(d) = &args.distro {
        if *d != p.distro {
            // The profile's release and base packages were chosen for its own distro.
            p.distro = d.clone();
            p.release = None;
            p.base_packages = None;
        }
    }
    if let Some(r) = &args.release {
        p.release = Some(r.clone());
    }
    render::apply_overrides(&mut p, &render::Overrides { security: args.security });
    p.validate().with_context(|| format!("profile {} with the given options", loaded.name))?;
    let distro = distro::lookup(&p.distro)?;
    Ok(Resolved { name, profile_name: loaded.name, profile: p, distro })
}

pub fn run(cli: Cli) -> Result<Outcome> {
    let ctx = Ctx::new(cli.global);
    match cli.command {
        Command::Profiles { action: None } => profiles_list(&ctx),
        Command::Profiles { action: Some(ProfilesAction::Show { name }) } => profiles_show(&ctx, &name),
        Command::Distros => distros(&ctx),
        Command::Render(a) => render_cmd(&ctx, &a),
        Command::Bootstrap(a) => bootstrap_cmd(&ctx, &a),
        Command::Create(a) => create_cmd(&ctx, &a),
        Command::Verify(a) => crate::create::verify_cmd(&ctx, &a.name, a.probe, a.peer.as_deref()),
        Command::List => crate::create::list_cmd(&ctx),
        Command::Start { name } => crate::create::start_cmd(&ctx, &name),
        Command::Stop { name, timeout } => crate::create::stop_cmd(&ctx, &name, timeout),
        Command::Destroy { name, purge, yes } => crate::create::destroy_cmd(&ctx, &name, purge, yes),
        Command::Console { name } => crate::create::console_cmd(&ctx, &name),
        Command::Doctor => crate::doctor::run(&ctx),
        Command::Audit => crate::lab::audit_cmd(&ctx),
        Command::Rebuild { name, rootfs_from, mirror } => {
            crate::create::rebuild_cmd(&ctx, &name, rootfs_from.as_deref(), mirror.as_deref())
        }
        Command::Lab { action } => match action {
            cli::LabAction::Up {
                lab,
                count,
                profile,
                prefix,
                password_dir,
                isolate_students,
                jobs,
                rootfs_from,
                mirror,
            } => crate::lab::up(
                &ctx,
                &crate::lab::UpArgs {
                    lab: &lab,
                    count,
                    profile: &profile,
                    prefix: &prefix,
                    password_dir: password_dir.as_deref(),
                    isolate_students,
                    jobs,
                    rootfs_from: rootfs_from.as_deref(),
                    mirror: mirror.as_deref(),
                },
            ),
            cli::LabAction::Status { lab } => crate::lab::status(&ctx, &lab),
            cli::LabAction::Verify { lab } => crate::lab::verify_lab(&ctx, &lab),
            cli::LabAction::Down { lab, purge, yes } => crate::lab::down(&ctx, &lab, purge, yes),
        },
    }
}

fn stdout_write(s: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(s.as_bytes())?;
    out.flush()?;
    Ok(())
}

fn profiles_list(ctx: &Ctx) -> Result<Outcome> {
    let all = profile::load_all(&ctx.sources)?;
    let mut s = String::new();
    if ctx.global.json {
        for l in &all {
            s += &serde_json::to_string(&serde_json::json!({
                "name": l.name, "source": l.source, "distro": l.profile.distro,
                "description": l.profile.description,
            }))?;
            s.push('\n');
        }
    } else {
        let w = all.iter().map(|l| l.name.len()).max().unwrap_or(0);
        for l in &all {
            s += &format!("{:w$}  {:14}  {}  [{}]\n", l.name, l.profile.distro, l.profile.description, l.source);
        }
    }
    stdout_write(&s)?;
    Ok(Outcome::Ok)
}

fn profiles_show(ctx: &Ctx, name: &str) -> Result<Outcome> {
    let l = profile::find(&ctx.sources, name)?;
    let s = if ctx.global.json {
        serde_json::to_string_pretty(&l.profile)? + "\n"
    } else {
        format!("# profile {} from {}\n{}", l.name, l.source, crate::yaml::to_string(&l.profile)?)
    };
    stdout_write(&s)?;
    Ok(Outcome::Ok)
}

fn distros(ctx: &Ctx) -> Result<Outcome> {
    let all = distro::catalog();
    let s = if ctx.global.json {
        all.iter().map(|d| serde_json::to_string(d).map(|j| j + "\n")).collect::<Result<String, _>>()?
    } else {
        all.iter()
            .map(|d| {
                format!(
                    "{:15} {:12} {:6} {}\n",
                    d.name,
                    format!("{:?}", d.installer).to_lowercase(),
                    d.release,
                    d.description
                )
            })
            .collect()
    };
    stdout_write(&s)?;
    Ok(Outcome::Ok)
}

/// The domain and network XML for a resolved container, from one load of the templates.
pub fn render_xml(ctx: &Ctx, r: &Resolved) -> Result<(String, String)> {
    let t = Templates::load(ctx.global.templates.as_deref())?;
    let spec = DomainSpec::new(&r.name, &r.profile_name, &r.profile, &r.distro, &ctx.paths.rootfs(&r.name), None);
    Ok((t.domain(&spec)?, t.network(&NetworkSpec::new(&r.profile.network.name))?))
}

fn render_cmd(ctx: &Ctx, a: &cli::RenderArgs) -> Result<Outcome> {
    let r = resolve(ctx, &a.name, &a.profile)?;
    let (domain, network) = render_xml(ctx, &r)?;
    let xml = if a.network {
        if r.profile.network.mode != profile::NetMode::Isolated {
            bail!(
                "profile {} uses an existing {:?} network; lxcprov defines only isolated ones",
                r.profile_name,
                r.profile.network.mode
            );
        }
        network
    } else {
        domain
    };
    if ctx.global.json {
        stdout_write(&(serde_json::to_string(&serde_json::json!({ "name": r.name, "xml": xml }))? + "\n"))?;
    } else {
        stdout_write(&xml)?;
    }
    Ok(Outcome::Ok)
}

/// Builds the bootstrap plan for a resolved container.
pub fn bootstrap_plan(ctx: &Ctx, r: &Resolved, a: &cli::BootstrapArgs) -> Result<bootstrap::Plan> {
    let tool = bootstrap::choose_tool(r.distro.installer, &|p| exec::which(p).is_some())?;
    bootstrap::plan(
        &ctx.paths,
        &r.name,
        &r.profile_name,
        &r.profile,
        &r.distro,
        a.mirror.as_deref(),
        tool,
        a.force,
        a.rootfs_from.as_deref(),
        !a.no_base_cache,
    )
}

/// Where the root password comes from (read before anything is touched).
pub fn read_password(a: &cli::BootstrapArgs) -> Result<(crate::password::Secret, bool)> {
    use crate::password::Secret;
    if let Some(f) = &a.root_password_file {
        Ok((Secret::from_file(f)?, false))
    } else if a.root_password_stdin {
        Ok((Secret::from_reader(&mut std::io::stdin().lock()).context("reading the root password from stdin")?, false))
    } else {
        Ok((Secret::generate()?, true))
    }
}

fn password_source(a: &cli::BootstrapArgs) -> String {
    match (&a.root_password_file, a.root_password_stdin) {
        (Some(f), _) => format!("from {}", f.display()),
        (None, true) => "from standard input".into(),
        _ => "generated, shown once on stderr".into(),
    }
}

/// Checks that bootstrap can run here at all: root, and the installer present.
fn preflight_bootstrap(plan: &bootstrap::Plan) -> Result<()> {
    if let Source::Install { cmd, .. } | Source::Import { cmd, .. } = &plan.source {
        if exec::which(&cmd.program).is_none() {
            bail!("{} is not installed; {}", cmd.program, exec::install_hint(&cmd.program));
        }
        if let (Source::Install { .. }, true, Some(k)) = (&plan.source, plan.spec.gpgcheck, &plan.spec.keyring) {
            if plan.spec.tool == bootstrap::Tool::Debootstrap && !std::path::Path::new(k).exists() {
                bail!(
                    "the archive keyring {k} for {} is missing, so its packages cannot be verified; install it (Debian: debian-archive-keyring; Ubuntu: ubuntu-keyring). Nothing was changed.",
                    plan.spec.distro
                );
            }
        }
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("bootstrap needs root (it installs packages as root into {}); run it with sudo", plan.rootfs.display());
    }
    Ok(())
}

/// Runs the bootstrap step shared by `bootstrap` and `create`.
pub fn do_bootstrap(ctx: &Ctx, r: &Resolved, a: &cli::BootstrapArgs) -> Result<bootstrap::Plan> {
    let plan = bootstrap_plan(ctx, r, a)?;
    if plan.rootfs.exists() && !a.force {
        bail!(
            "{} already exists; lxcprov never overwrites a root filesystem without --force (nothing was changed)",
            plan.rootfs.display()
        );
    }
    preflight_bootstrap(&plan)?;
    let (secret, generated) = read_password(a)?;
    for w in &plan.warnings {
        ctx.ui.warn(w);
    }
    let _lock = bootstrap::lock(&ctx.paths, &r.name)?;
    let runner = ctx.runner();
    bootstrap::execute(&plan, &runner, &secret, &ctx.ui)?;
    if generated {
        eprintln!("root password for {} (shown once, store it now): {}", r.name, secret.expose());
    }
    ctx.ui.info(&format!("root filesystem ready: {}", plan.rootfs.display()));
    Ok(plan)
}

fn bootstrap_cmd(ctx: &Ctx, a: &cli::BootstrapArgs) -> Result<Outcome> {
    let r = resolve(ctx, &a.name, &a.profile)?;
    let plan = do_bootstrap(ctx, &r, a)?;
    if ctx.global.json {
        stdout_write(
            &(serde_json::to_string(&serde_json::json!({
                "name": r.name, "rootfs": plan.rootfs, "distro": plan.spec.distro,
                "release": plan.spec.release, "source": match plan.source { Source::Install{..} => "install", Source::Cache{..} => "cache", Source::Import{..} => "import" },
            }))? + "\n"),
        )?;
    }
    Ok(Outcome::Ok)
}

fn create_cmd(ctx: &Ctx, a: &cli::CreateArgs) -> Result<Outcome> {
    let r = resolve(ctx, &a.bootstrap.name, &a.bootstrap.profile)?;
    if a.dry_run {
        return dry_run(ctx, &r, &a.bootstrap);
    }
    crate::create::create(ctx, &r, &a.bootstrap)
}

fn dry_run(ctx: &Ctx, r: &Resolved, a: &cli::BootstrapArgs) -> Result<Outcome> {
    let plan = bootstrap_plan(ctx, r, a)?;
    let (domain, network) = render_xml(ctx, r)?;
    let network = (r.profile.network.mode == profile::NetMode::Isolated).then_some(network);
    let mut notes = plan.warnings.clone();
    if plan.rootfs.exists() && !a.force {
        notes.push(format!("{} exists: create would stop here without --force", plan.rootfs.display()));
    }
    if let Some(n) = crate::create::security_refusal(&r.profile) {
        notes.push(format!("create would refuse to start on this host: {n}"));
    }
    if ctx.global.json {
        let v = serde_json::json!({
            "name": r.name, "profile": r.profile_name, "dry_run": true,
            "bootstrap": plan, "password": password_source(a),
            "network": { "name": r.profile.network.name, "mode": r.profile.network.mode, "xml": network },
            "domain_xml": domain, "notes": notes,
        });
        stdout_write(&(serde_json::to_string_pretty(&v)? + "\n"))?;
        return Ok(Outcome::Ok);
    }
    let mut s = String::new();
    let sp = &plan.spec;
    s += &format!(
        "# Plan for {} (profile {}, {} {} {}, installer {}). Dry run: nothing is changed.\n",
        r.name,
        r.profile_name,
        sp.distro,
        sp.release,
        sp.arch,
        sp.tool.program()
    );
    for n in &notes {
        s += &format!("# NOTE: {n}\n");
    }
    let mut step = 0;
    let mut add = |s: &mut String, what: &str, detail: String| {
        step += 1;
        s.push_str(&format!("\n{step}. {what}\n{detail}"));
    };
    add(&mut s, "take the lock for this name", format!("   lock   {}\n", ctx.paths.lock(&r.name).display()));
    match &plan.source {
        Source::Install { cmd, cache_entry } => {
            let mut d = format!("   mkdir  {}\n   mkdir  {}\n", plan.partial.display(), plan.pkg_cache.display());
            if !cmd.env.is_empty() {
                d += &format!("   write  {}/.rpmmacros  (%_dbpath /var/lib/rpm)\n", plan.rpm_home.display());
            }
            if let Some((path, text)) = &plan.yum_conf {
                d += &format!(
                    "   write  {}  (yum configuration: lxcprov's repositories only)\n{}",
                    path.display(),
                    indent(text)
                );
            }
            d += &format!("   run    {}\n", cmd.display());
            add(
                &mut s,
                &format!(
                    "install {} packages with {} (GPG checking {})",
                    sp.packages.len(),
                    cmd.program,
                    if sp.gpgcheck { "on" } else { "OFF" }
                ),
                d,
            );
            if let Some(cache_entry) = cache_entry {
                add(
                    &mut s,
                    "keep a copy as the base-rootfs cache entry",
                    format!("   run    cp -a --reflink=auto -- {} {}.partial\n   write  {}.partial/{}\n   rename {}.partial -> {}\n",
                        plan.partial.display(), cache_entry.display(), cache_entry.display(), bootstrap::BASE_MARKER,
                        cache_entry.display(), cache_entry.display()),
                );
            }
        }
        Source::Import { from, cmd } => add(
            &mut s,
            &format!("import {} (no package signature checks)", from.display()),
            format!("   mkdir  {}\n   run    {}\n", plan.partial.display(), cmd.display()),
        ),
        Source::Cache { cache_entry } => add(
            &mut s,
            "copy the cached base root filesystem (cache hit: no install)",
            format!("   run    cp -a --reflink=auto -- {} {}\n", cache_entry.display(), plan.partial.display()),
        ),
    }
    let mut d = String::new();
    for f in &plan.guest_files {
        let verb = if f.append_line { "append" } else { "write " };
        d += &format!("   {verb} {}{}  ({}, mode {:o})\n", plan.partial.display(), f.path, f.why, f.mode);
    }
    d += &format!(
        "   write  {}/etc/shadow  (root password as a SHA-512 crypt hash; password {})\n",
        plan.partial.display(),
        password_source(a)
    );
    add(&mut s, "configure the guest", d);
    add(
        &mut s,
        "move the finished tree into place",
        format!(
            "   rename {} -> {}\n   write  {}\n",
            plan.partial.display(),
            plan.rootfs.display(),
            plan.record.display()
        ),
    );
    if let Some(idmap) = &r.profile.security.idmap {
        add(
            &mut s,
            "shift the root filesystem's ownership into the user namespace",
            format!(
                "   chown  every file under {}: uid +{}, gid +{} (recorded, never twice)\n",
                plan.rootfs.display(),
                idmap.uid.target,
                idmap.gid.target
            ),
        );
    }
    if let Some(net) = &network {
        add(
            &mut s,
            &format!("define and start the isolated network {} if it does not exist", r.profile.network.name),
            indent(net),
        );
    }
    add(&mut s, &format!("define the domain {} on {}", r.name, ctx.uri()), indent(&domain));
    add(
        &mut s,
        "start it, wait for its init, then verify",
        "   start  the domain; find the init PID in libvirt's live state\n   verify selinux, net.vnet, pidns, userns, caps, cgroup, trust\n".into(),
    );
    stdout_write(&s)?;
    Ok(Outcome::Ok)
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("   | {l}\n")).collect()
}
