//! Bootstrapping a root filesystem with the distribution's own package manager
//! (paper, section 5.3), as a plan of steps that `--dry-run` prints and execution performs
//! (see [`crate::plan`]).
//!
//! The installer writes into a temporary sibling (`POOL/.NAME.partial`) that is renamed to
//! `POOL/NAME` only when everything succeeded; on failure or Ctrl-C the partial tree is
//! removed. A finished install is also copied into the base-rootfs cache, keyed by
//! everything that determines its content, so the next container of the same profile and
//! distro is a copy (reflink where the file system can) instead of an install.
//! Running the plan needs root; building it does not.

pub mod guest;
pub mod installer;
pub mod keys;
pub mod pkgdb;

pub use guest::{GuestConfig, GuestFile};
pub use installer::{choose_tool, InstallSpec, Repo, Tool};

use crate::distro::Distro;
use crate::exec::{Cmd, Runner};
use crate::name::Name;
use crate::password::Secret;
use crate::paths::Paths;
use crate::plan::{Action, Step};
use crate::profile::Profile;
use crate::state::Record;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// How the root filesystem will be obtained.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum Source {
    /// Run the installer, then keep a copy in the base cache (unless `--no-base-cache`).
    Install { cmd: Cmd, cache_entry: Option<PathBuf> },
    /// Copy the cached base.
    Cache { cache_entry: PathBuf },
    /// Import an existing tree or tarball (`--rootfs-from`); no package signatures are
    /// checked, which `verify` reports.
    Import { from: PathBuf, cmd: Cmd },
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Install { .. } => "install",
            Source::Cache { .. } => "cache",
            Source::Import { .. } => "import",
        }
    }
}

/// How to bootstrap, beyond the container's spec.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Package mirror URL (http, https or file).
    pub mirror: Option<String>,
    /// Replace an existing root filesystem.
    pub force: bool,
    /// Import this directory or tarball instead of installing.
    pub import: Option<PathBuf>,
    /// Keep a copy of a fresh install in the base-rootfs cache.
    pub keep_base: bool,
    /// Where the root password comes from, for the plan (never the password itself).
    pub password_note: String,
}

/// The whole bootstrap of one container, decided before anything is touched.
#[derive(Debug, Serialize)]
pub struct Plan {
    pub name: Name,
    pub profile: String,
    pub spec: InstallSpec,
    pub rootfs: PathBuf,
    pub partial: PathBuf,
    pub source: Source,
    pub force: bool,
    pub guest_files: Vec<GuestFile>,
    #[serde(skip)]
    pub guest: GuestConfig,
    pub pkg_cache: PathBuf,
    pub rpm_home: PathBuf,
    /// yum only: its generated configuration file and content.
    pub yum_conf: Option<(PathBuf, String)>,
    pub record: PathBuf,
    pub pkg_cache_lock: PathBuf,
    #[serde(skip)]
    pub cache_root: PathBuf,
    pub base_lock: PathBuf,
    #[serde(skip)]
    pub gnupg: PathBuf,
    pub warnings: Vec<String>,
    #[serde(skip)]
    pub password_note: String,
}

/// Builds the plan. Reads the cache directory (to decide between install and copy) and
/// nothing else.
pub fn plan(
    paths: &Paths,
    name: &Name,
    profile_name: &str,
    p: &Profile,
    d: &Distro,
    tool: Tool,
    o: &Options,
) -> Result<Plan> {
    let mut spec = InstallSpec::new(p, d, o.mirror.as_deref(), tool)?;
    spec.keys_dir = paths.keys();
    let pkg_cache = paths.pkg_cache(tool.cache_name(), &spec.distro, &spec.release, &spec.arch);
    let partial = paths.partial(name);
    let cache_entry = paths.base(&spec.cache_key());
    let conf_path = paths.cache.join("yum").join(format!("{}-{}-{}.conf", spec.distro, spec.release, spec.arch));
    let yum_conf = (tool == Tool::Yum).then(|| (conf_path.clone(), spec.yum_conf(&pkg_cache)));
    let source = if let Some(from) = &o.import {
        spec.gpgcheck = false;
        let from = crate::import::check_source(from, paths)?;
        Source::Import { cmd: import_cmd(&from, &partial)?, from }
    } else if cache_entry.join(BASE_MARKER).is_file() {
        Source::Cache { cache_entry }
    } else {
        Source::Install {
            cmd: spec.install_cmd(&partial, &pkg_cache, &paths.rpm_home(), &conf_path),
            cache_entry: o.keep_base.then_some(cache_entry),
        }
    };
    let guest = GuestConfig {
        hostname: p.hostname.clone().unwrap_or_else(|| name.to_string()),
        securetty: (d.securetty && p.console.enabled).then(|| p.console.tty.clone()),
        netconfig: d.netconfig,
    };
    let mut warnings = vec![];
    if o.import.is_some() {
        warnings.push(format!(
            "{name} is imported with --rootfs-from: lxcprov did not check package signatures, and `verify` will report it"
        ));
    } else if !spec.gpgcheck {
        warnings.push(format!(
            "package signature checking is OFF for {name} (trust.gpgcheck: false): the root filesystem cannot be trusted, and `verify` will report it"
        ));
    }
    Ok(Plan {
        name: name.clone(),
        profile: profile_name.to_string(),
        rootfs: paths.rootfs(name),
        partial,
        source,
        force: o.force,
        guest_files: guest.files(),
        guest,
        pkg_cache: pkg_cache.clone(),
        rpm_home: paths.rpm_home(),
        yum_conf,
        record: paths.record(name),
        pkg_cache_lock: paths.pkg_cache_lock(&pkg_cache),
        cache_root: paths.cache.clone(),
        gnupg: paths.gnupg(),
        base_lock: paths.base_lock(&paths.base(&spec.cache_key())),
        spec,
        warnings,
        password_note: o.password_note.clone(),
    })
}

impl Plan {
    /// The steps that build the configured tree in `partial`.
    pub fn build_steps(&self) -> Vec<Step> {
        let sp = &self.spec;
        let mut steps = vec![];
        match &self.source {
            Source::Install { cmd, cache_entry } => {
                let mut a = vec![
                    Action::Mkdir { path: self.partial.clone() },
                    Action::Mkdir { path: self.pkg_cache.clone() },
                    Action::LockCache {
                        path: self.pkg_cache_lock.clone(),
                        shared: false,
                        what: "package cache: concurrent installers would corrupt its downloads".into(),
                    },
                ];
                if sp.tool != Tool::Debootstrap {
                    a.push(Action::Mkdir { path: self.rpm_home.clone() });
                    a.push(Action::WriteFile {
                        path: self.rpm_home.join(".rpmmacros"),
                        mode: 0o644,
                        why: "rpm's database where the guest expects it".into(),
                        content: format!("%_dbpath {}\n", sp.rpm_dbpath()),
                    });
                }
                if let Some((path, text)) = &self.yum_conf {
                    if let Some(dir) = path.parent() {
                        a.push(Action::Mkdir { path: dir.to_path_buf() });
                    }
                    a.push(Action::WriteFile {
                        path: path.clone(),
                        mode: 0o644,
                        why: "yum configuration: lxcprov's repositories only".into(),
                        content: text.clone(),
                    });
                }
                if sp.gpgcheck {
                    for (key, pins) in sp.pinned_keys() {
                        a.push(Action::PinKey { key, pins, homedir: self.gnupg.clone() });
                    }
                    if let (Some(dest), Some(source)) = (sp.pinned_keyring(), &sp.keyring) {
                        a.push(Action::PinKeyring {
                            source: source.into(),
                            pins: sp.keyring_pins.clone(),
                            dest,
                            homedir: self.gnupg.clone(),
                        });
                    }
                }
                a.push(Action::Run { cmd: cmd.clone() });
                let install_title = format!(
                    "install {} packages with {} (GPG checking {})",
                    sp.packages.len(),
                    cmd.program,
                    if sp.gpgcheck { "on" } else { "OFF" }
                );
                steps.push(Step::new(install_title, a));
                steps.push(self.pkgdb_step());
                if let Some(entry) = cache_entry {
                    steps.push(Step::new(
                        "keep a copy as the base-rootfs cache entry",
                        vec![Action::StoreBase { from: self.partial.clone(), entry: entry.clone() }],
                    ));
                }
            }
            Source::Import { from, cmd } => steps.push(Step::new(
                format!("import {} (no package signature checks)", from.display()),
                vec![
                    Action::MkdirPrivate { path: self.partial.clone(), mode: crate::import::PARTIAL_MODE },
                    Action::CheckSpace { src: from.clone(), dest: self.partial.clone() },
                    Action::Run { cmd: cmd.clone() },
                    Action::NormaliseImport { root: self.partial.clone() },
                ],
            )),
            Source::Cache { cache_entry } => steps.push(Step::new(
                "copy the cached base root filesystem (cache hit: no install)",
                vec![
                    Action::LockCache {
                        path: self.base_lock.clone(),
                        shared: true,
                        what: "base cache entry: not replaced while it is copied".into(),
                    },
                    Action::CopyTree { from: cache_entry.clone(), to: self.partial.clone() },
                    Action::Remove { path: self.partial.join(BASE_MARKER) },
                ],
            )),
        }
        if matches!(self.source, Source::Cache { .. }) {
            steps.push(self.pkgdb_step());
        }
        steps.push(Step::new(
            "configure the guest",
            vec![Action::ConfigureGuest {
                root: self.partial.clone(),
                files: self.guest_files.clone(),
                password: self.password_note.clone(),
            }],
        ));
        steps
    }

    /// The guest's own package manager must read what was installed; CentOS 7's rpm needs
    /// its packages re-registered first (Berkeley DB).
    fn pkgdb_step(&self) -> Step {
        let sp = &self.spec;
        let (family, dbpath) = match sp.tool {
            Tool::Debootstrap => (pkgdb::Family::Dpkg, "/var/lib/dpkg".to_string()),
            _ => (pkgdb::Family::Rpm, sp.rpm_dbpath()),
        };
        let mut a = vec![];
        let bdb = sp.rpmdb.as_ref().is_some_and(|d| d.backend == crate::distro::RpmDbBackend::Bdb);
        let title = if bdb && matches!(self.source, Source::Install { .. }) {
            // The verified package files: dnf's cache, and local (file://) repositories,
            // whose packages dnf reads in place.
            let mut search = vec![self.pkg_cache.clone()];
            search.extend(sp.repos.iter().filter_map(|r| r.url.strip_prefix("file://")).map(PathBuf::from));
            a.push(Action::RegisterWithGuestRpm { root: self.partial.clone(), search, dbpath: dbpath.clone() });
            "give the guest a package database its own rpm reads (Berkeley DB: re-registered with the guest's rpm)"
        } else {
            "check that the guest's own package manager reads its package database"
        };
        a.push(Action::CheckPackageDb { root: self.partial.clone(), family, dbpath });
        Step::new(title, a)
    }

    /// The step that moves the finished tree into place and records it.
    pub fn place_step(&self) -> Step {
        Step::new(
            "move the finished tree into place",
            // The record first: killed between the two, the next run finds no tree and builds
            // it again, instead of a tree without a record that it must refuse.
            vec![
                Action::WriteRecord { path: self.record.clone() },
                Action::Rename { from: self.partial.clone(), to: self.rootfs.clone() },
            ],
        )
    }

    /// Every step of the bootstrap, in order.
    pub fn steps(&self) -> Vec<Step> {
        let mut v = self.build_steps();
        v.push(self.place_step());
        v
    }
}

/// The command that copies (a directory) or unpacks (a tarball) an imported rootfs into
/// `partial`, which must already exist.
fn import_cmd(from: &Path, partial: &Path) -> Result<Cmd> {
    let meta = std::fs::metadata(from).with_context(|| format!("--rootfs-from {}: cannot read it", from.display()))?;
    if meta.is_dir() {
        // The trailing "/." copies the directory's contents, not the directory.
        Ok(Cmd::new("cp")
            .args(["-a", "--reflink=auto", "--"])
            .arg(format!("{}/.", from.display()))
            .arg(partial.display().to_string()))
    } else if meta.is_file() {
        // tar picks the decompressor itself; --no-same-owner is NOT used: ownership matters.
        Ok(Cmd::new("tar")
            .args([
                "--extract",
                "--preserve-permissions",
                "--same-owner",
                "--numeric-owner",
                "--xattrs",
                "--xattrs-include=*",
                // A `./` member must not set the mode or owner of the private partial dir.
                "--no-overwrite-dir",
                "--file",
            ])
            .arg(from.display().to_string())
            .arg("--directory")
            .arg(partial.display().to_string()))
    } else {
        bail!("--rootfs-from {}: not a directory or a tarball", from.display())
    }
}

pub use crate::paths::BASE_MARKER;

/// Reports progress of a bootstrap.
pub trait Progress {
    fn phase(&self, text: &str);
    fn line(&self, text: &str);
    fn done(&self, text: &str);
}

/// Runs a plan: builds the tree, then moves it into place. The caller holds the name lock.
pub fn execute(plan: &Plan, runner: &dyn Runner, password: &Secret, progress: &dyn Progress) -> Result<()> {
    if plan.rootfs.exists() && !plan.force {
        bail!("{} already exists; lxcprov never overwrites a root filesystem without --force", plan.rootfs.display());
    }
    let hash = password.sha512_crypt()?;
    let packages = build(plan, runner, &hash, progress)?;
    let ex = Executor { plan, runner, hash: &hash, progress, locks: Default::default(), packages: packages.into() };
    ex.step(&plan.place_step())
}

/// Builds the root filesystem in `plan.partial` (configured, with root's `hash`), leaving it
/// there. On failure the partial tree is removed and the error says so. Returns how many
/// packages the guest's own tool lists (when it has one).
pub fn build(plan: &Plan, runner: &dyn Runner, hash: &str, progress: &dyn Progress) -> Result<Option<usize>> {
    // A partial tree can only be a leftover of an interrupted run (we hold the lock).
    crate::fsutil::remove_tree(&plan.partial)?;
    let pool = plan.partial.parent().context("pool")?;
    crate::fsutil::ensure_pool(pool)?;
    let ex = Executor { plan, runner, hash, progress, locks: Default::default(), packages: Default::default() };
    let result = plan.build_steps().iter().try_for_each(|s| ex.step(s));
    let packages = ex.packages.get();
    drop(ex);
    if let Err(e) = result {
        progress.phase("removing the partial root filesystem");
        let cleanup = crate::fsutil::remove_tree(&plan.partial);
        progress.done("");
        return match cleanup {
            Ok(()) => Err(e.context(format!(
                "bootstrap of {} failed; the partial tree {} was removed and nothing else changed",
                plan.name,
                plan.partial.display()
            ))),
            Err(c) => Err(e.context(format!(
                "bootstrap of {} failed, and removing {} failed too ({c:#}); remove it by hand",
                plan.name,
                plan.partial.display()
            ))),
        };
    }
    Ok(packages)
}

/// Runs bootstrap steps, one action at a time, checking for an interrupt after each.
struct Executor<'a> {
    plan: &'a Plan,
    runner: &'a dyn Runner,
    hash: &'a str,
    progress: &'a dyn Progress,
    /// Cache locks taken by the build, released when it ends.
    locks: std::cell::RefCell<Vec<crate::state::FileLock>>,
    /// The packages the guest's own tool lists (for the record).
    packages: std::cell::Cell<Option<usize>>,
}

impl Executor<'_> {
    fn step(&self, s: &Step) -> Result<()> {
        self.progress.phase(&s.title);
        for a in &s.actions {
            self.action(a)?;
            crate::interrupt::check()?;
        }
        self.progress.done(&s.title);
        Ok(())
    }

    fn action(&self, a: &Action) -> Result<()> {
        match a {
            Action::Mkdir { path } => {
                std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?
            }
            Action::WriteFile { path, mode, content, .. } => {
                crate::fsutil::write_atomic(path, content.as_bytes(), *mode)?
            }
            Action::Run { cmd } => self
                .runner
                .run(cmd, &mut |l| self.progress.line(l))
                .map_err(|e| crate::fsutil::explain_disk_full(anyhow::Error::new(e), &self.plan.partial))?,
            Action::LockCache { path, shared, what } => {
                let lock = crate::state::wait_lock(path, *shared, &|| {
                    self.progress.line(&format!("waiting for another lxcprov run ({what})"))
                })?;
                self.locks.borrow_mut().push(lock);
            }
            Action::RegisterWithGuestRpm { root, search, dbpath } => {
                let n = pkgdb::register_with_guest_rpm(self.runner, root, search, dbpath)?;
                self.packages.set(Some(n));
            }
            Action::CheckPackageDb { root, family, dbpath } => {
                let (n, warning) = pkgdb::check(self.runner, *family, root, dbpath, self.packages.get())?;
                if let Some(w) = warning {
                    self.progress.line(&format!("warning: {w}"));
                }
                self.packages.set(n);
            }
            Action::PinKey { key, pins, homedir } => {
                if let Some(w) = keys::verify(self.runner, homedir, key, pins)? {
                    self.progress.line(&format!("warning: {w}"));
                }
            }
            Action::PinKeyring { source, pins, dest, homedir } => {
                keys::pin_keyring(self.runner, homedir, source, pins, dest)?
            }
            Action::CheckSpace { src, dest } => crate::fsutil::check_free_space(src, dest)?,
            Action::CopyTree { from, to } => {
                if from.starts_with(&self.plan.cache_root) && !from.join(BASE_MARKER).is_file() {
                    bail!(
                        "the cached base {} went away while this run waited for it; run again (it installs afresh)",
                        from.display()
                    );
                }
                copy_tree(self.runner, from, to)?
            }
            Action::Remove { path } => crate::fsutil::remove_tree(path)?,
            Action::MkdirPrivate { path, mode } => crate::fsutil::ensure_private_dir(path, *mode)?,
            Action::NormaliseImport { root } => {
                crate::import::normalise_tree(root)?.warnings().iter().for_each(|w| self.progress.line(w))
            }
            Action::StoreBase { from, entry } => {
                // The cache is an optimisation: a full cache disk must not fail the run.
                if let Err(e) = store_base(self.plan, self.runner, from, entry) {
                    self.progress.line(&format!(
                        "warning: the base-rootfs cache was not filled ({e:#}); the next container installs again"
                    ));
                }
            }
            Action::ConfigureGuest { root, .. } => self.plan.guest.apply(root, self.hash)?,
            Action::Rename { from, to } => swap_into_place(from, to)?,
            Action::WriteRecord { path } => {
                let mut r = record_for(self.plan);
                r.packages = self.packages.get().or_else(|| read_record_packages(&self.plan.record));
                r.save(path)?
            }
            other => bail!("internal error: {other:?} is not a bootstrap action"),
        }
        Ok(())
    }
}

/// Renames the built tree to `to`. With `--force` the old tree is moved aside first and
/// removed last.
fn swap_into_place(from: &Path, to: &Path) -> Result<()> {
    let name = to.file_name().context("rootfs name")?.to_string_lossy().to_string();
    let old = from.with_file_name(format!(".{name}.old"));
    if to.exists() {
        crate::fsutil::remove_tree(&old)?;
        std::fs::rename(to, &old).with_context(|| format!("moving {} aside", to.display()))?;
    }
    std::fs::rename(from, to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    crate::fsutil::remove_tree(&old)
}

/// The record execution writes for a plan.
pub fn record_for(plan: &Plan) -> Record {
    Record {
        name: plan.name.to_string(),
        profile: plan.profile.clone(),
        distro: plan.spec.distro.clone(),
        release: plan.spec.release.clone(),
        gpgcheck: plan.spec.gpgcheck,
        installer: plan.spec.tool.program().into(),
        cache_key: plan.spec.cache_key(),
        idmap: None,
        shift_started: None,
        packages: None,
    }
}

fn read_record_packages(path: &Path) -> Option<usize> {
    Record::load(path).ok().flatten().and_then(|r| r.packages)
}

/// root's password hash in a root filesystem's `/etc/shadow`, if set.
pub fn root_hash(rootfs: &Path) -> Option<String> {
    let shadow = crate::fsutil::read_in(rootfs, "/etc/shadow").ok()??;
    shadow
        .lines()
        .find_map(|l| {
            let mut f = l.split(':');
            (f.next() == Some("root")).then(|| f.next().map(str::to_string)).flatten()
        })
        .filter(|h| h.starts_with('$'))
}

/// `cp -a --reflink=auto SRC DST`: a reflink (O(1) per file) where the file system supports
/// it, a plain copy otherwise.
pub fn copy_tree(runner: &dyn Runner, src: &Path, dst: &Path) -> Result<()> {
    let target_dir = dst.parent().unwrap_or(dst);
    crate::fsutil::check_free_space(src, target_dir)?;
    let cmd = Cmd::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--")
        .arg(src.display().to_string())
        .arg(dst.display().to_string());
    runner.run(&cmd, &mut |_| {}).map_err(|e| crate::fsutil::explain_disk_full(anyhow::Error::new(e), target_dir))
}

/// Replaces the cache entry with a copy of `from`, under the entry's exclusive lock; skips
/// (with a warning) when another run holds it. Each writer has its own temporary name.
fn store_base(plan: &Plan, runner: &dyn Runner, from: &Path, entry: &Path) -> Result<()> {
    let Some(_lock) = crate::state::try_lock(&plan.base_lock)? else {
        bail!("another lxcprov run is filling or copying {}; left to it", entry.display());
    };
    let parent = entry.parent().context("cache entry")?;
    std::fs::create_dir_all(parent)?;
    // Under the lock nobody else writes: any temporary copy here is a killed run's leftover.
    let stem = entry.file_name().context("cache entry")?.to_string_lossy().to_string();
    for e in std::fs::read_dir(parent)?.flatten() {
        if e.file_name().to_string_lossy().starts_with(&format!("{stem}.partial")) {
            crate::fsutil::remove_tree(&e.path())?;
        }
    }
    let tmp = parent.join(format!("{stem}.partial.{}", std::process::id()));
    let r = (|| -> Result<()> {
        copy_tree(runner, from, &tmp)?;
        crate::fsutil::write_atomic(
            &tmp.join(BASE_MARKER),
            serde_json::to_string_pretty(&plan.spec)?.as_bytes(),
            0o644,
        )?;
        crate::fsutil::remove_tree(entry)?;
        std::fs::rename(&tmp, entry)?;
        Ok(())
    })();
    if r.is_err() {
        let _ = crate::fsutil::remove_tree(&tmp);
    }
    r.with_context(|| format!("storing the base root filesystem in {}", entry.display()))
}
