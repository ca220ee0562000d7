//! Storage behind one interface, in the manner of Incus's storage drivers: [`Driver`], with a
//! copy ([`CopyTree`]) and an overlay ([`Overlay`]) implementation. A container's storage is
//! a [`Layout`]; nothing outside `storage/` asks which driver it has.

use super::{Action, Mode, Overlay};
use crate::exec::Runner;
use crate::name::Name;
use crate::profile::Idmap;
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What a storage driver does for a container.
pub trait Driver {
    fn mode(&self) -> Mode;
    /// `POOL/NAME`: the tree itself, or the overlay's mount point.
    fn target(&self) -> &Path;
    /// Where a build writes the guest's configuration: the partial tree, or the mounted overlay.
    fn config_root<'a>(&'a self, partial: &'a Path) -> &'a Path;
    /// Does a build copy the cached base into its own tree? (An overlay reads it as its base.)
    fn copies_cache(&self) -> bool;
    /// Is the cached base this container's own base, so that failing to store it fails the run?
    fn needs_cache(&self) -> bool;
    /// Is the whole tree shifted into the user namespace after it is placed? (An overlay's
    /// base is shifted once, and its layer as it is built.)
    fn shifts_tree(&self) -> bool;
    /// The driver's build steps between the source and the guest's configuration, as
    /// (title, actions); `installed` is the freshly installed tree, when there is one.
    fn make_steps(&self, name: &Name, installed: Option<&Path>) -> Vec<(String, Vec<Action>)>;
    /// The title of the configuration step and what follows the configuration in it.
    fn configure_step(&self) -> (&'static str, Vec<Action>);
    /// The title of the step that places the built tree, and its actions after the record.
    fn place_step(&self, partial: &Path) -> (&'static str, Vec<Action>);
    /// The record's storage fields: mode, the id map the tree is shifted for, base and layer.
    fn record(&self) -> (Mode, Option<Idmap>, Option<String>, Option<PathBuf>);
    /// After the guest was configured with root's password hash (an overlay keeps it for resets).
    fn configured(&self, hash: &str) -> Result<()>;
    /// Makes the root available before a start (an overlay is mounted); true when it did.
    fn mount(&self, runner: &dyn Runner) -> Result<bool>;
    /// Removes the container's own storage (its tree, or its layer, mount point, and its base
    /// when no other container uses it); what it did, one line each.
    fn remove(&self, runner: &dyn Runner, pool: &Path) -> Result<Vec<String>>;
    /// What a failed build leaves besides its partial tree, removed.
    fn abandon(&self, runner: &dyn Runner) -> Result<()>;
    /// Bytes of the container's own data (a copy's whole tree, an overlay's layer).
    fn usage(&self) -> u64;
    /// Why an existing tree is not replaced (appended to the refusal), when it never is.
    fn never_replaced(&self) -> Option<&'static str>;
    /// When the container last changed a file of its own (seconds since the epoch), if the
    /// driver can tell without reading the whole tree.
    fn last_change(&self) -> Option<u64>;
}

/// Copy storage: a full tree of the container's own at `POOL/NAME`.
#[derive(Clone, Debug, Serialize)]
pub struct CopyTree {
    pub target: PathBuf,
    /// The map a fixed-map tree is shifted for after it is placed (the record keeps it then).
    #[serde(skip)]
    pub idmap: Option<Idmap>,
    /// A new tree's disk quota (`resources.disk`): it is placed on a file system of its own.
    #[serde(skip)]
    pub disk: Option<u64>,
}

impl Driver for CopyTree {
    fn mode(&self) -> Mode {
        Mode::Copy
    }
    fn target(&self) -> &Path {
        &self.target
    }
    fn config_root<'a>(&'a self, partial: &'a Path) -> &'a Path {
        partial
    }
    fn copies_cache(&self) -> bool {
        true
    }
    fn needs_cache(&self) -> bool {
        false
    }
    fn shifts_tree(&self) -> bool {
        true
    }
    fn make_steps(&self, _: &Name, _: Option<&Path>) -> Vec<(String, Vec<Action>)> {
        vec![]
    }
    fn configure_step(&self) -> (&'static str, Vec<Action>) {
        ("configure the guest", vec![])
    }
    fn place_step(&self, partial: &Path) -> (&'static str, Vec<Action>) {
        // The record first (the caller writes it): killed between the two, the next run
        // finds no tree and builds it again, instead of a tree without a record.
        match self.disk {
            Some(bytes) => (
                "put the finished tree on its own disk (its quota)",
                vec![Action::PlaceOnDisk { from: partial.to_path_buf(), to: self.target.clone(), bytes }],
            ),
            None => (
                "move the finished tree into place",
                vec![Action::Rename { from: partial.to_path_buf(), to: self.target.clone() }],
            ),
        }
    }
    fn record(&self) -> (Mode, Option<Idmap>, Option<String>, Option<PathBuf>) {
        // The shift after placing records its map itself.
        (Mode::Copy, None, None, None)
    }
    fn configured(&self, _: &str) -> Result<()> {
        Ok(())
    }
    fn mount(&self, runner: &dyn Runner) -> Result<bool> {
        // A tree with a disk quota lives on its image (mounted again after a reboot).
        super::ensure_copy_disk_mounted(runner, &self.target)
    }
    fn remove(&self, _: &dyn Runner, _: &Path) -> Result<Vec<String>> {
        let img = super::copy_disk(&self.target).filter(|i| std::fs::symlink_metadata(i).is_ok());
        if std::fs::symlink_metadata(&self.target).is_err() && img.is_none() {
            return Ok(vec![]);
        }
        let mut done = vec![];
        if std::fs::symlink_metadata(&self.target).is_ok() {
            crate::fsutil::remove_tree(&self.target)?;
            done.push(format!("deleted {}", self.target.display()));
        }
        if let Some(i) = img {
            std::fs::remove_file(&i).with_context(|| format!("removing {}", i.display()))?;
            done.push(format!("deleted its disk {}", i.display()));
        }
        Ok(done)
    }
    fn abandon(&self, _: &dyn Runner) -> Result<()> {
        Ok(())
    }
    fn usage(&self) -> u64 {
        crate::fsutil::tree_bytes(&self.target)
    }
    fn never_replaced(&self) -> Option<&'static str> {
        None
    }
    fn last_change(&self) -> Option<u64> {
        // A full tree of its own: its changes cannot be told from the base's files.
        None
    }
}

impl Driver for Overlay {
    fn mode(&self) -> Mode {
        Mode::Overlay
    }
    fn target(&self) -> &Path {
        &self.target
    }
    fn config_root<'a>(&'a self, _: &'a Path) -> &'a Path {
        &self.target
    }
    fn copies_cache(&self) -> bool {
        false
    }
    fn needs_cache(&self) -> bool {
        true
    }
    fn shifts_tree(&self) -> bool {
        false
    }
    fn make_steps(&self, name: &Name, installed: Option<&Path>) -> Vec<(String, Vec<Action>)> {
        let mut steps = vec![];
        if let Some(p) = installed {
            steps.push((
                "remove the installed tree (the base-rootfs cache holds it now)".into(),
                vec![Action::Remove { path: p.to_path_buf() }],
            ));
        }
        steps.push((
            "prepare the shared base: copied from the cache and shifted once per base and id map, then shared".into(),
            vec![Action::PrepareBase(self.clone())],
        ));
        steps.push((
            format!("make {name}'s own writable layer and mount the overlay at {}", self.target.display()),
            vec![Action::MakeLayer(self.clone()), Action::MountOverlay(self.clone())],
        ));
        steps
    }
    fn configure_step(&self) -> (&'static str, Vec<Action>) {
        let shift = self.idmap.map(|_| Action::ShiftLayer(self.clone()));
        ("configure the guest (its files go into its own layer, never the base)", shift.into_iter().collect())
    }
    fn place_step(&self, _: &Path) -> (&'static str, Vec<Action>) {
        ("record the container (overlay: the mounted tree is already in place)", vec![])
    }
    fn record(&self) -> (Mode, Option<Idmap>, Option<String>, Option<PathBuf>) {
        (Mode::Overlay, self.idmap, Some(self.base_id.clone()), Some(self.layer.clone()))
    }
    fn configured(&self, hash: &str) -> Result<()> {
        super::save_root_hash(self, hash)
    }
    fn mount(&self, runner: &dyn Runner) -> Result<bool> {
        super::ensure_mounted(runner, self)
    }
    fn remove(&self, runner: &dyn Runner, pool: &Path) -> Result<Vec<String>> {
        // Unmount, then only the container's own layer; the shared base goes when no other
        // container uses it.
        let mut done = super::remove(runner, self)?;
        done.extend(super::remove_unused_base(pool, &self.base_id)?);
        super::tidy(pool);
        Ok(done)
    }
    fn abandon(&self, runner: &dyn Runner) -> Result<()> {
        super::remove(runner, self).map(drop)
    }
    fn usage(&self) -> u64 {
        super::layer_bytes(self)
    }
    fn never_replaced(&self) -> Option<&'static str> {
        Some(" (overlay storage: remove it with `lxcprov destroy --purge` first)")
    }
    fn last_change(&self) -> Option<u64> {
        newest_mtime(&self.upper(), LAST_CHANGE_ENTRIES)
    }
}

/// How many entries of a layer [`Driver::last_change`] looks at, at most (a student's layer
/// is theirs to fill; the answer is then "at least this recent").
const LAST_CHANGE_ENTRIES: usize = 200_000;

/// The newest modification time under `dir` (the directory itself included), looking at no
/// more than `budget` entries; symbolic links are not followed, nothing is opened.
fn newest_mtime(dir: &Path, budget: usize) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut newest: Option<i64> = None;
    let mut stack = vec![dir.to_path_buf()];
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        let Ok(m) = std::fs::symlink_metadata(&d) else { continue };
        newest = newest.max(Some(m.mtime()));
        if !m.is_dir() {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            seen += 1;
            if seen > budget {
                return newest.and_then(|t| u64::try_from(t).ok());
            }
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                _ => {
                    if let Ok(m) = e.metadata() {
                        newest = newest.max(Some(m.mtime()));
                    }
                }
            }
        }
    }
    newest.and_then(|t| u64::try_from(t).ok())
}

/// A container's storage: which driver, with its paths.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
pub enum Layout {
    Copy(CopyTree),
    Overlay(Overlay),
}

impl Layout {
    /// The driver (the one place that tells them apart).
    pub fn driver(&self) -> &dyn Driver {
        match self {
            Layout::Copy(c) => c,
            Layout::Overlay(o) => o,
        }
    }

    /// The storage of an existing container: its overlay if it has a layer, else its tree.
    pub fn of_container(pool: &Path, name: &Name) -> Result<Layout> {
        Ok(match super::existing(pool, name.as_str())? {
            Some(o) => Layout::Overlay(o),
            None => Layout::Copy(CopyTree { target: pool.join(name.as_str()), idmap: None, disk: None }),
        })
    }

    /// The overlay whose layer a `reset` replaces; copy storage has none, and says what to
    /// do instead.
    pub fn resettable(&self, name: &Name) -> Result<&Overlay> {
        match self {
            Layout::Overlay(o) => Ok(o),
            Layout::Copy(_) => anyhow::bail!(
                "{name} uses copy storage (a full tree of its own), so there is no layer to drop; `lxcprov rebuild {name}` gives it a fresh tree instead"
            ),
        }
    }

    /// How a container with this storage is rebuilt onto `new` (planned for it): a new layer
    /// on a new base, or a whole new tree; other pairs are refused.
    pub fn rebuild_onto<'n>(&self, name: &Name, new: &'n Layout) -> Result<Rebuild<'n>> {
        match (self, new) {
            (Layout::Overlay(_), Layout::Overlay(n)) => Ok(Rebuild::NewLayer(n)),
            (Layout::Copy(c), Layout::Copy(_)) if super::copy_disk(&c.target).is_some_and(|i| i.is_file()) => anyhow::bail!(
                "{name} has a disk quota of its own in copy storage: a rebuild cannot swap a tree on its own disk; destroy it with --purge and create it again (or use overlay storage, whose rebuild keeps the quota)"
            ),
            (Layout::Copy(_), Layout::Copy(_)) => Ok(Rebuild::NewTree),
            (Layout::Overlay(_), Layout::Copy(_)) => anyhow::bail!(
                "{name} is an overlay container: rebuild it from the base-rootfs cache (without --rootfs-from or --no-base-cache), or re-create it"
            ),
            (Layout::Copy(_), Layout::Overlay(_)) => {
                anyhow::bail!("internal error: a copy-mode container's rebuild was planned with overlay storage")
            }
        }
    }

    /// The layout a new container gets: the mode [`super::decide`] chooses, and for overlay
    /// with an isolated map an id-mapped view of the unshifted base where the kernel allows.
    /// `cache_entry` and `cache_key` name the cached base. Returns it with the sentence that
    /// says why (the plan and `doctor` show it).
    pub fn for_new(
        choice: super::Choice,
        pool: &Path,
        name: &Name,
        cached: Result<(), &str>,
        (cache_entry, cache_key): (&Path, &str),
        idmap: Option<Idmap>,
        isolated: bool,
    ) -> Result<(Layout, String)> {
        let (mode, mut why) = super::decide(choice, pool, cached)?;
        if mode == Mode::Copy {
            return Ok((Layout::Copy(CopyTree { target: pool.join(name.as_str()), idmap, disk: None }), why));
        }
        // An isolated map (a range per container) would need a shifted base per container:
        // it gets an id-mapped view of the one unshifted base instead, where the kernel allows.
        let mapped_lower = isolated
            && match super::idmapped_lower_impossible(pool) {
                None => {
                    why += "; its isolated id map through an id-mapped view of the unshifted shared base (no copy, no shift)";
                    true
                }
                Some(w) => {
                    why += &format!("; its isolated id map needs a shifted base of its own ({w})");
                    false
                }
            };
        let o = Overlay::new(pool, name.as_str(), cache_entry, cache_key, idmap, mapped_lower);
        Ok((Layout::Overlay(o), why))
    }
}

/// How a rebuild replaces a container's storage ([`Layout::rebuild_onto`]).
pub enum Rebuild<'n> {
    /// Overlay: a fresh layer on this (new) base.
    NewLayer(&'n Overlay),
    /// Copy: a whole new tree, built beside the old one and swapped in.
    NewTree,
}

/// Before a create: a layer without a record is a killed overlay build (the record is
/// written last) that no domain uses; it is removed. What was removed, if anything.
pub fn remove_unfinished(runner: &dyn Runner, pool: &Path, name: &Name) -> Result<Option<String>> {
    let Some(o) = super::existing(pool, name.as_str())? else { return Ok(None) };
    super::remove(runner, &o)?;
    Ok(Some(format!("removed the unfinished layer {} of an interrupted run", o.layer.display())))
}

/// Puts a finished tree at `to`, replacing what is there (kept aside until the rename).
pub fn swap_into_place(from: &Path, to: &Path) -> Result<()> {
    let name = to.file_name().context("rootfs name")?.to_string_lossy().to_string();
    let old = from.with_file_name(format!(".{name}.old"));
    if to.exists() {
        crate::fsutil::remove_tree(&old)?;
        std::fs::rename(to, &old).with_context(|| format!("moving {} aside", to.display()))?;
    }
    std::fs::rename(from, to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
    crate::fsutil::remove_tree(&old)
}
