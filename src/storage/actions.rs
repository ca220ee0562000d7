//! The overlay driver's plan actions: what `--dry-run` says each does, and the code that
//! does it, side by side.

use super::Overlay;
use anyhow::Result;
use serde::Serialize;
use std::fmt;

/// One thing overlay storage does in a plan.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Make the shared base once (copy of the cache entry, shifted into the id map), under its lock.
    PrepareBase(Overlay),
    /// A fresh, empty writable layer for the container.
    MakeLayer(Overlay),
    /// Mount base + layer at `POOL/NAME` in the host's mount namespace.
    MountOverlay(Overlay),
    /// Shift what guest configuration wrote into the layer (not the base).
    ShiftLayer(Overlay),
    /// Remove a tree that is not kept (an overlay's installed tree, once the cache holds it).
    Remove { path: std::path::PathBuf },
    /// Copy storage: move the finished tree into place (what was there kept aside until then).
    Rename { from: std::path::PathBuf, to: std::path::PathBuf },
    /// Copy storage with a disk quota: the finished tree onto a file system of its own.
    PlaceOnDisk { from: std::path::PathBuf, to: std::path::PathBuf, bytes: u64 },
}

impl Action {
    /// Runs the action; `on_wait` is called once if another run holds the base's lock.
    pub fn run(&self, runner: &dyn crate::exec::Runner, on_wait: &dyn Fn()) -> Result<()> {
        match self {
            Action::PrepareBase(o) => super::prepare_base(runner, o, on_wait)?,
            Action::MakeLayer(o) => {
                if super::is_mounted(&o.target) {
                    super::unmount(runner, &o.target)?; // a killed run's mount
                }
                super::make_layer(o)?
            }
            Action::MountOverlay(o) => {
                super::ensure_mounted(runner, o)?;
            }
            Action::ShiftLayer(o) => {
                if let Some(m) = o.idmap {
                    super::shift_layer(o, m)?;
                }
            }
            Action::Remove { path } => crate::fsutil::remove_tree(path)?,
            Action::Rename { from, to } => super::driver::swap_into_place(from, to)?,
            Action::PlaceOnDisk { from, to, bytes } => super::place_on_disk(runner, from, to, *bytes)?,
        }
        Ok(())
    }
}

impl fmt::Display for Action {
    /// The lines `--dry-run` prints for this action.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::PrepareBase(o) => {
                writeln!(f, "   lock   {}  (exclusive, waits for other runs)", o.lock().display())?;
                writeln!(
                    f,
                    "   unless {} is complete: cp -a --reflink=auto -- {} {}.partial",
                    o.base.display(),
                    o.cache_entry.display(),
                    o.base.display()
                )?;
                if let Some(m) = o.base_map() {
                    writeln!(
                        f,
                        "          chown every file of it: uid +{}, gid +{} (file capabilities, setuid bits and ACLs kept)",
                        m.uid.target, m.gid.target
                    )?;
                } else if o.lower_map().is_some() {
                    writeln!(f, "          unshifted: each container sees it through an id-mapped mount of its own")?;
                }
                writeln!(
                    f,
                    "          rename it to {} (read-only lower layer of every container on it)",
                    o.base.display()
                )
            }
            Action::MakeLayer(o) => {
                let tmp = super::partial_layer(o);
                let t = tmp.display();
                if let Some(b) = o.disk {
                    writeln!(
                        f,
                        "   mkfs   {t}/{}  (ext4, sparse, {} MiB: the quota of what the container writes)\n   mount  {t}/{} on {t}/{}  (loop; upper and work below are on it)",
                        super::DISK_IMG,
                        b >> 20,
                        super::DISK_IMG,
                        super::DISK_DIR
                    )?;
                }
                let d = if o.disk.is_some() { format!("{t}/{}", super::DISK_DIR) } else { t.to_string() };
                writeln!(
                    f,
                    "   mkdir  {d}/upper  (owner and mode of the base's root)\n   mkdir  {d}/work\n   write  {t}/base  ({})",
                    o.base_id
                )?;
                if let Some(m) = o.lower_map() {
                    writeln!(
                        f,
                        "   mkdir  {t}/lower\n   write  {t}/lower-idmap  ({} {} {})",
                        m.uid.target,
                        m.gid.target,
                        m.uid.count.min(m.gid.count)
                    )?;
                }
                writeln!(
                    f,
                    "   rename {t} to {}  (exchanged whole with an old layer, renameat2 RENAME_EXCHANGE)",
                    o.layer.display()
                )
            }
            Action::MountOverlay(o) => {
                if let Some(m) = o.lower_map() {
                    writeln!(
                        f,
                        "   mount  an id-mapped view of {} at {} (open_tree, mount_setattr MOUNT_ATTR_IDMAP 0 {} {}, move_mount)",
                        o.base.display(),
                        o.lower().display(),
                        m.uid.target,
                        m.uid.count.min(m.gid.count)
                    )?;
                }
                writeln!(
                    f,
                    "   run    {}  (the libvirt hook mounts it so at every start, and unmounts it at the end)",
                    super::mount_cmd(o).display()
                )?;
                if o.mapped_lower {
                    writeln!(f, "   umount -l {}  (the overlay keeps its own clone of the view)", o.lower().display())?;
                }
                Ok(())
            }
            Action::ShiftLayer(o) => {
                let m = o.idmap.map(|m| (m.uid.target, m.gid.target)).unwrap_or_default();
                writeln!(
                    f,
                    "   chown  the files configuration wrote into {}: uid +{}, gid +{} (the base is shifted already)",
                    o.upper().display(),
                    m.0,
                    m.1
                )
            }
            Action::Remove { path } => writeln!(f, "   remove {}", path.display()),
            Action::Rename { from, to } => writeln!(f, "   rename {} -> {}", from.display(), to.display()),
            Action::PlaceOnDisk { from, to, bytes } => {
                let img = super::copy_disk(to).unwrap_or_default();
                writeln!(
                    f,
                    "   mkfs   {}  (ext4, sparse, {} MiB: the quota of what the container writes)\n   mount  {} on {}  (loop)\n   copy   {}/. -> {}  (cp -a --reflink=auto)\n   remove {}",
                    img.display(),
                    bytes >> 20,
                    img.display(),
                    to.display(),
                    from.display(),
                    to.display(),
                    from.display()
                )
            }
        }
    }
}
