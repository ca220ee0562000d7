//! Where lxcprov keeps things on the host. All of it is lxcprov's own:
//! the pool (`/var/lib/libvirt/filesystems`, one directory per container), the cache
//! (`/var/cache/lxcprov`: packages and base root filesystems) and the state directory
//! (`/var/lib/lxcprov`: locks and per-container records). Tests point all three elsewhere.

use crate::name::Name;
use std::path::PathBuf;

pub const DEFAULT_POOL: &str = "/var/lib/libvirt/filesystems";
pub const DEFAULT_CACHE: &str = "/var/cache/lxcprov";
pub const DEFAULT_STATE: &str = "/var/lib/lxcprov";

/// Marks a complete base-cache entry; an entry without it is a leftover and is rebuilt.
pub const BASE_MARKER: &str = ".lxcprov-base.json";

#[derive(Clone, Debug)]
pub struct Paths {
    pub pool: PathBuf,
    pub cache: PathBuf,
    pub state: PathBuf,
}

impl Default for Paths {
    fn default() -> Self {
        Paths { pool: DEFAULT_POOL.into(), cache: DEFAULT_CACHE.into(), state: DEFAULT_STATE.into() }
    }
}

impl Paths {
    /// The container's root filesystem.
    pub fn rootfs(&self, n: &Name) -> PathBuf {
        self.pool.join(n.as_str())
    }
    /// Where a root filesystem is assembled before it is renamed into place.
    pub fn partial(&self, n: &Name) -> PathBuf {
        self.pool.join(format!(".{n}.partial"))
    }
    /// Where a replaced root filesystem waits for removal (`--force`).
    pub fn old(&self, n: &Name) -> PathBuf {
        self.pool.join(format!(".{n}.old"))
    }
    /// Where a failed rebuild's new tree waits for removal.
    pub fn failed(&self, n: &Name) -> PathBuf {
        self.pool.join(format!(".{n}.failed"))
    }
    /// A lab's own lock (up and down of one lab never run at once).
    pub fn lab_lock(&self, lab: &Name) -> PathBuf {
        self.state.join("locks").join("labs").join(format!("{lab}.lock"))
    }
    pub fn lock(&self, n: &Name) -> PathBuf {
        self.state.join("locks").join(format!("{n}.lock"))
    }
    /// The per-container record (how it was bootstrapped, idmap shift).
    pub fn record(&self, n: &Name) -> PathBuf {
        self.state.join("containers").join(format!("{n}.json"))
    }
    /// The container's seccomp directory: the init shim, its compiled filter and policy,
    /// bind-mounted read-only at `/.lxcprov` in the container.
    pub fn seccomp(&self, n: &Name) -> PathBuf {
        self.state.join("seccomp").join(n.as_str())
    }
    /// Package cache for one installer, distro, release and architecture.
    pub fn pkg_cache(&self, tool: &str, distro: &str, release: &str, arch: &str) -> PathBuf {
        self.cache.join("pkgs").join(tool).join(format!("{distro}-{release}-{arch}"))
    }
    /// Base root filesystem cache entry.
    pub fn base(&self, key: &str) -> PathBuf {
        self.cache.join("rootfs").join(key)
    }
    /// The lock of a package cache: one installer at a time writes into it.
    pub fn pkg_cache_lock(&self, pkg_cache: &std::path::Path) -> PathBuf {
        lock_beside(pkg_cache)
    }
    /// The lock of a base cache entry: shared while copied from, exclusive while replaced.
    pub fn base_lock(&self, entry: &std::path::Path) -> PathBuf {
        lock_beside(entry)
    }
    /// Verified copies of signing keys (and pinned keyrings).
    pub fn keys(&self) -> PathBuf {
        self.cache.join("keys")
    }
    /// gpg's home for reading keys (never the user's).
    pub fn gnupg(&self) -> PathBuf {
        self.cache.join("gnupg")
    }
    /// A `HOME` for rpm on non-RPM hosts (holds `.rpmmacros`).
    pub fn rpm_home(&self) -> PathBuf {
        self.cache.join("rpm-home")
    }
}

/// `PATH.lock` beside `path` (never `with_extension`: releases such as `9.4` hold dots).
fn lock_beside(path: &std::path::Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// The pool's mode: root only. A user-namespaced container's init (host uid 100000 and
/// up) must still traverse `POOL` to reach `POOL/NAME` (libvirt_lxc pivots inside the user
/// namespace), so before each start that uid alone gets search permission through a
/// POSIX ACL entry (`user:UID:--x`, `crate::fsutil::grant_traverse`). Host users can
/// neither list the pool nor reach into a tree by a known name.
pub const POOL_MODE: u32 = 0o700;

/// The mode of the directory a tree is imported into until it is complete.
pub const PARTIAL_MODE: u32 = 0o700;
