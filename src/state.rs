//! lxcprov's state on the host: per-name locks and per-container records, under the state
//! directory (`/var/lib/lxcprov`).

use crate::name::Name;
use crate::paths::Paths;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::path::Path;

/// What lxcprov remembers about a container it bootstrapped.
#[derive(Clone, Debug, Default, Serialize, serde::Deserialize)]
pub struct Record {
    pub name: String,
    pub profile: String,
    pub distro: String,
    pub release: String,
    pub gpgcheck: bool,
    pub installer: String,
    pub cache_key: String,
    /// Set once the rootfs ownership was shifted for a user namespace: the map it was
    /// shifted for (so it is never shifted twice, and `verify` knows what to expect).
    #[serde(default)]
    pub idmap: Option<crate::profile::Idmap>,
    /// Set before the first chown of a shift and cleared when it is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift_started: Option<crate::profile::Idmap>,
    /// How many packages the guest's own tool (`rpm -qa`, `dpkg-query -W`) listed at bootstrap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packages: Option<usize>,
    /// How the tree is stored (`copy` or `overlay`); absent in records older than storage modes (copy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<crate::storage::Mode>,
    /// Overlay only: the shared base's id (`KEY@MAP`) and the container's writable layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<std::path::PathBuf>,
}

impl Record {
    pub fn load(path: &Path) -> Result<Option<Record>> {
        match std::fs::read_to_string(path) {
            Ok(t) => Ok(Some(serde_json::from_str(&t).with_context(|| format!("reading {}", path.display()))?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    pub fn save(&self, path: &Path) -> Result<()> {
        std::fs::create_dir_all(path.parent().context("record path")?)?;
        crate::fsutil::write_atomic(path, serde_json::to_string_pretty(self)?.as_bytes(), 0o644)
    }
}

/// Holds the per-name lock for the duration of a run.
pub struct NameLock {
    _file: std::fs::File,
}

/// Takes the lock for `name`, or fails at once if another run holds it.
pub fn lock(paths: &Paths, name: &Name) -> Result<NameLock> {
    lock_path(&paths.lock(name), name.as_str())
}

/// Takes a lab's lock, or fails at once if another `lab up`/`lab down` of it runs.
pub fn lab_lock(paths: &Paths, lab: &Name) -> Result<NameLock> {
    lock_path(&paths.lab_lock(lab), &format!("lab {lab}"))
}

fn lock_path(path: &Path, name: &str) -> Result<NameLock> {
    let file = open_lock(path)?;
    match file.try_lock() {
        Ok(()) => Ok(NameLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("another lxcprov run is working on {name} (lock {} is held); wait for it to finish", path.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

/// A lock on a file lxcprov owns (a cache entry's, a package cache's), held while the
/// returned file lives.
pub struct FileLock {
    _file: std::fs::File,
}

fn open_lock(path: &Path) -> Result<std::fs::File> {
    let dir = path.parent().context("lock path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .with_context(|| format!("opening lock {}", path.display()))
}

/// Takes `path`'s lock (shared or exclusive), waiting for other holders; `on_wait` is called
/// once if it has to wait. Ctrl-C, SIGTERM and SIGHUP end the wait.
pub fn wait_lock(path: &Path, shared: bool, on_wait: &dyn Fn()) -> Result<FileLock> {
    let file = open_lock(path)?;
    let mut waited = false;
    loop {
        let r = if shared { file.try_lock_shared() } else { file.try_lock() };
        match r {
            Ok(()) => return Ok(FileLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !waited {
                    on_wait();
                    waited = true;
                }
                crate::interrupt::check()?;
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("locking {}", path.display()));
            }
        }
    }
}

/// Takes `path`'s exclusive lock if nobody holds it; `None` when busy.
pub fn try_lock(path: &Path) -> Result<Option<FileLock>> {
    let file = open_lock(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(FileLock { _file: file })),
        Err(std::fs::TryLockError::WouldBlock) => Ok(None),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}
