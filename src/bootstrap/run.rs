//! Running a bootstrap plan: the executor that performs exactly the plan's actions (the
//! ones `--dry-run` prints), the partial tree's cleanup on failure, the swap into place,
//! the record, and the base-rootfs cache.

use super::{copy_tree, keys, pkgdb, Observer, Plan, BASE_MARKER};
use crate::exec::Runner;
use crate::password::Secret;
use crate::plan::{Action, Step};
use crate::state::Record;
use anyhow::{bail, Context, Result};
use std::path::Path;

/// Runs a plan: builds the tree, then moves it into place. The caller holds the name lock.
pub fn execute(plan: &Plan, runner: &dyn Runner, password: &Secret, progress: &dyn Observer) -> Result<()> {
    let never = plan.layout.driver().never_replaced();
    if plan.rootfs.exists() && (!plan.force || never.is_some()) {
        bail!(
            "{} already exists; lxcprov never overwrites a root filesystem without --force{}",
            plan.rootfs.display(),
            never.unwrap_or("")
        );
    }
    let hash = password.sha512_crypt()?;
    let packages = build(plan, runner, &hash, progress)?;
    let ex = Executor { plan, runner, hash: &hash, progress, locks: Default::default(), packages: packages.into() };
    ex.step(&plan.place_step())
}

/// Builds the root filesystem in `plan.partial` (configured, with root's `hash`), leaving it
/// there. On failure the partial tree is removed and the error says so. Returns how many
/// packages the guest's own tool lists (when it has one).
pub fn build(plan: &Plan, runner: &dyn Runner, hash: &str, progress: &dyn Observer) -> Result<Option<usize>> {
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
        let mut cleanup = crate::fsutil::remove_tree(&plan.partial);
        if cleanup.is_ok() {
            cleanup = plan.layout.driver().abandon(runner);
        }
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
    progress: &'a dyn Observer,
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
                // The cache is an optimisation (a full cache disk must not fail the run),
                // except under overlay storage, where it is the container's base.
                if let Err(e) = store_base(self.plan, self.runner, from, entry) {
                    if self.plan.layout.driver().needs_cache() {
                        return Err(e.context("overlay storage needs the base-rootfs cache entry; use --storage copy"));
                    }
                    self.progress.line(&format!(
                        "warning: the base-rootfs cache was not filled ({e:#}); the next container installs again"
                    ));
                }
            }
            Action::ConfigureGuest { root, .. } => {
                self.plan.guest.apply(root, self.hash)?;
                self.plan.layout.driver().configured(self.hash)?;
            }
            Action::Storage(s) => s.run(self.runner, &|| {
                self.progress.line("waiting for another lxcprov run preparing the same shared base")
            })?,
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

/// The record execution writes for a plan.
pub fn record_for(plan: &Plan) -> Record {
    let (storage, idmap, base, layer) = plan.layout.driver().record();
    Record {
        name: plan.name.to_string(),
        profile: plan.profile.clone(),
        distro: plan.spec.distro.clone(),
        release: plan.spec.release.clone(),
        gpgcheck: plan.spec.gpgcheck,
        installer: plan.spec.tool.program().into(),
        cache_key: plan.spec.cache_key(),
        idmap,
        shift_started: None,
        packages: None,
        storage: Some(storage),
        base,
        layer,
    }
}

/// What `--dry-run` prints for one of bootstrap's actions (the ones [`Executor`] runs, just
/// above); the container's are in `container::create`.
pub fn describe(a: &Action, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    use crate::plan::indent;
    match a {
        Action::Mkdir { path } => writeln!(f, "   mkdir  {}", path.display()),
        Action::LockCache { path, shared, what } => writeln!(
            f,
            "   lock   {}  ({what}, {})",
            path.display(),
            if *shared { "shared" } else { "exclusive, waits for other runs" }
        ),
        Action::MkdirPrivate { path, mode } => writeln!(f, "   mkdir  {}  (mode {mode:o})", path.display()),
        Action::WriteFile { path, mode, why, content } => {
            write!(f, "   write  {}  ({why}, mode {mode:o})\n{}", path.display(), indent(content))
        }
        Action::PinKey { key, pins, .. } => {
            writeln!(f, "   key    {} -> {}", key.url, key.local.display())?;
            if pins.is_empty() {
                writeln!(f, "          fingerprint: NOT PINNED (trusted as fetched; warned)")
            } else {
                let p: Vec<String> = pins.iter().map(|p| crate::distro::pretty_fingerprint(p)).collect();
                writeln!(f, "          fingerprint must be {}", p.join(" or "))
            }
        }
        Action::PinKeyring { source, pins, dest, .. } => {
            writeln!(f, "   keys   {} -> {} (only the pinned keys)", source.display(), dest.display())?;
            for p in pins {
                writeln!(f, "          fingerprint {}", crate::distro::pretty_fingerprint(p))?;
            }
            Ok(())
        }
        Action::RegisterWithGuestRpm { root, search, dbpath } => write!(
            f,
            "   copy   the installed packages' files from {} to {}/var/tmp/lxcprov-rpms\n   move   {}{dbpath} aside (the host rpm's database)\n   run    chroot {} /usr/bin/rpm -i --justdb --nodeps --noscripts ... --dbpath {dbpath} /var/tmp/lxcprov-rpms/*.rpm\n",
            search.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            root.display(),
            root.display(),
            root.display()
        ),
        Action::CheckPackageDb { root, family, dbpath } => {
            let tool = match family {
                crate::distro::Family::Rpm => "/usr/bin/rpm -qa",
                crate::distro::Family::Dpkg => "/usr/bin/dpkg-query -W",
            };
            writeln!(
                f,
                "   check  chroot {} {tool}: the guest's own tool lists every installed package ({dbpath}), else stop here",
                root.display()
            )
        }
        Action::CheckSpace { src, dest } => {
            writeln!(f, "   check  free space under {} for {}", dest.display(), src.display())
        }
        Action::Run { cmd } => writeln!(f, "   run    {}", cmd.display()),
        Action::CopyTree { from, to } => {
            writeln!(f, "   run    cp -a --reflink=auto -- {} {}", from.display(), to.display())
        }
        Action::Remove { path } => writeln!(f, "   remove {}", path.display()),
        Action::NormaliseImport { root } => writeln!(
            f,
            "   check  {}: drop device nodes; root directory 0755, owned by root",
            root.display()
        ),
        Action::StoreBase { from, entry } => write!(
            f,
            "   lock   {entry}.lock  (exclusive if free, else the cache is left to the other run)\n   run    cp -a --reflink=auto -- {from} {entry}.partial.PID\n   write  {entry}.partial.PID/{marker}\n   rename {entry}.partial.PID -> {entry}\n",
            from = from.display(),
            entry = entry.display(),
            marker = crate::paths::BASE_MARKER
        ),
        Action::ConfigureGuest { root, files, password } => {
            for g in files {
                if g.remove {
                    writeln!(f, "   remove {}{}  ({})", root.display(), g.path, g.why)?;
                    continue;
                }
                let verb = if g.append_line { "append" } else { "write " };
                writeln!(f, "   {verb} {}{}  ({}, mode {:o})", root.display(), g.path, g.why, g.mode)?;
            }
            writeln!(
                f,
                "   write  {}/etc/shadow  (root password as a SHA-512 crypt hash; password {password})",
                root.display()
            )
        }
        Action::WriteRecord { path } => writeln!(f, "   write  {}", path.display()),
        // Not one of bootstrap's (the container describes its own before it asks here).
        other => writeln!(f, "   {other:?}"),
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
