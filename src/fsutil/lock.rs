//! Locks on files lxcprov owns: taken at once or waited for (Ctrl-C ends the wait), and
//! the one way a locked JSON registry is opened.

use super::open_lock;
use anyhow::{Context, Result};
use std::path::Path;

/// A lock on a file lxcprov owns (a cache entry's, a package cache's), held while the
/// returned file lives.
pub struct FileLock {
    _file: std::fs::File,
}

/// Takes the exclusive lock `DIR/BASE.lock` (waiting for other holders) and reads
/// `DIR/BASE.json` under it as [`super::read_state`] does: the one way the MCS and
/// id-map registries are opened. Returns the data file's path, the held lock and its text
/// (`None` when it does not exist yet; at most `max` bytes).
pub fn lock_and_read(
    dir: &Path,
    base: &str,
    max: u64,
    what: &str,
) -> Result<(std::path::PathBuf, std::fs::File, Option<String>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let lock_path = dir.join(format!("{base}.lock"));
    let lock = open_lock(&lock_path)?;
    lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
    let path = dir.join(format!("{base}.json"));
    let text = super::read_state_to_string(&path, max, what)?;
    Ok((path, lock, text))
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
