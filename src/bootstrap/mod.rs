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
mod run;

pub use crate::fsutil::copy_tree;
pub use run::{build, describe, execute, record_for, root_hash};

pub use guest::{GuestConfig, GuestFile};
pub use installer::{choose_tool, InstallSpec, Repo, Tool};

use crate::distro::Distro;
use crate::exec::Cmd;
use crate::name::Name;
use crate::paths::Paths;
use crate::plan::{Action, Step};
use crate::profile::Profile;
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
    /// How the tree is stored (`--storage`).
    pub storage: crate::storage::Choice,
    /// Root's one authorized SSH key (`lab up --ssh-keys`).
    pub authorized_key: Option<String>,
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
    /// How the container's tree is stored (its storage driver, with its paths).
    pub layout: crate::storage::Layout,
    /// Which storage mode, and why (the plan and `doctor` say it).
    pub storage: String,
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
        Source::Cache { cache_entry: cache_entry.clone() }
    } else {
        Source::Install {
            cmd: spec.install_cmd(&partial, &pkg_cache, &paths.rpm_home(), &conf_path),
            cache_entry: o.keep_base.then(|| cache_entry.clone()),
        }
    };
    let cached = match &source {
        Source::Import { .. } => Err("imported trees (--rootfs-from) are copied: overlay needs a cached base"),
        Source::Install { cache_entry: None, .. } => Err("--no-base-cache: overlay needs the base-rootfs cache"),
        _ => Ok(()),
    };
    let (layout, storage) = crate::storage::Layout::for_new(
        o.storage,
        &paths.pool,
        name,
        cached,
        (&cache_entry, &spec.cache_key()),
        p.security.idmap_map(),
        p.security.idmap.is_some_and(|i| i.is_isolated()),
    )?;
    // A disk quota is a file system of the layer's own: overlay storage only.
    let mut layout = layout;
    if let Some(bytes) = p.resources.disk_bytes() {
        match &mut layout {
            crate::storage::Layout::Overlay(o) => o.disk = Some(bytes),
            crate::storage::Layout::Copy(c) => {
                if o.import.is_some() {
                    bail!("{name}: resources.disk with --rootfs-from is not supported: an imported tree is placed as it is. Nothing was created.");
                }
                c.disk = Some(bytes)
            }
        }
    }
    let guest = guest_config(name, p, d, o.authorized_key.clone());
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
        layout,
        storage,
    })
}

/// The per-container guest configuration of `name` (also re-applied by `reset`), with root's
/// one authorized SSH key (`lab up --ssh-keys`).
pub fn guest_config(name: &Name, p: &Profile, d: &Distro, authorized_key: Option<String>) -> GuestConfig {
    GuestConfig {
        hostname: p.hostname.clone().unwrap_or_else(|| name.to_string()),
        securetty: (d.securetty && p.console.enabled).then(|| p.console.tty.clone()),
        netconfig: d.netconfig,
        address: p.network.lease.as_ref().zip(p.network.dhcp.as_ref()).map(|(l, d)| {
            let prefix = d.netmask.parse::<std::net::Ipv4Addr>().map(|m| u32::from(m).count_ones()).unwrap_or(24);
            format!("{}/{prefix}", l.ip)
        }),
        ssh: authorized_key.map(|authorized_key| guest::GuestSsh {
            authorized_key,
            keygen_unit: (d.installer == crate::distro::InstallerKind::Debootstrap).then_some("ssh.service"),
        }),
    }
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
                    Action::MkdirPrivate { path: self.partial.clone(), mode: crate::paths::PARTIAL_MODE },
                    Action::CheckSpace { src: from.clone(), dest: self.partial.clone() },
                    Action::Run { cmd: cmd.clone() },
                    Action::NormaliseImport { root: self.partial.clone() },
                ],
            )),
            Source::Cache { .. } if !self.layout.driver().copies_cache() => {}
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
        let d = self.layout.driver();
        let installed = matches!(self.source, Source::Install { .. }).then_some(self.partial.as_path());
        for (title, actions) in d.make_steps(&self.name, installed) {
            steps.push(Step::new(title, actions.into_iter().map(Action::Storage).collect()));
        }
        let root = d.config_root(&self.partial);
        if matches!(self.source, Source::Cache { .. }) {
            steps.push(self.pkgdb_step_on(root));
        }
        let (title, after) = d.configure_step();
        let mut a = vec![Action::ConfigureGuest {
            root: root.to_path_buf(),
            files: self.guest_files.clone(),
            password: self.password_note.clone(),
        }];
        a.extend(after.into_iter().map(Action::Storage));
        steps.push(Step::new(title, a));
        steps
    }

    /// The guest's own package manager must read what was installed; CentOS 7's rpm needs
    /// its packages re-registered first (Berkeley DB).
    fn pkgdb_step(&self) -> Step {
        self.pkgdb_step_on(&self.partial)
    }

    fn pkgdb_step_on(&self, root: &Path) -> Step {
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
            a.push(Action::RegisterWithGuestRpm { root: root.to_path_buf(), search, dbpath: dbpath.clone() });
            "give the guest a package database its own rpm reads (Berkeley DB: re-registered with the guest's rpm)"
        } else {
            "check that the guest's own package manager reads its package database"
        };
        a.push(Action::CheckPackageDb { root: root.to_path_buf(), family, dbpath });
        Step::new(title, a)
    }

    /// The step that records the container and puts its tree in place (its driver's part).
    pub fn place_step(&self) -> Step {
        let (title, after) = self.layout.driver().place_step(&self.partial);
        let mut a = vec![Action::WriteRecord { path: self.record.clone() }];
        a.extend(after.into_iter().map(Action::Storage));
        Step::new(title, a)
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

pub use crate::output::Observer;
pub use crate::paths::BASE_MARKER;
