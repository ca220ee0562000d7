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
        let Some(t) = crate::fsutil::read_state_to_string(path, crate::fsutil::STATE_MAX, "container record")? else {
            return Ok(None);
        };
        let r: Record = serde_json::from_str(&t).with_context(|| {
            format!("{} is not a valid container record; move it aside (or remove it) and run again", path.display())
        })?;
        r.check(path).with_context(|| {
            format!("{} is not the record lxcprov wrote; move it aside (or fix it) and run again", path.display())
        })?;
        Ok(Some(r))
    }

    /// What a hand-edited record could turn against the host: a name other than its file's,
    /// or an id map that would make container root host root (target 0), map nothing, or
    /// leave the id space. The rest is shown, never acted on.
    fn check(&self, path: &Path) -> Result<()> {
        if path.file_stem().and_then(|s| s.to_str()) != Some(self.name.as_str()) {
            bail!(
                "it names container {:?}",
                crate::text::for_terminal(&self.name.chars().take(80).collect::<String>())
            );
        }
        for m in self.idmap.iter().chain(self.shift_started.iter()) {
            for (what, r) in [("uid", m.uid), ("gid", m.gid)] {
                let end = u64::from(r.target) + u64::from(r.count);
                if r.start != 0 || r.target == 0 || r.count == 0 || end > u64::from(u32::MAX) {
                    bail!("its {what} map {}:{}:{} is not one lxcprov makes", r.start, r.target, r.count);
                }
            }
        }
        Ok(())
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
    let file = crate::fsutil::open_lock(path)?;
    match file.try_lock() {
        Ok(()) => Ok(NameLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            bail!("another lxcprov run is working on {name} (lock {} is held); wait for it to finish", path.display())
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| format!("locking {}", path.display())),
    }
}

pub use crate::fsutil::lock::{lock_and_read, try_lock, wait_lock, FileLock};

/// A registry kept as `STATE/BASE.json` next to its lock `STATE/BASE.lock`: what lxcprov hands
/// out one per container (MCS levels, isolated id ranges). One implementation opens, reads
/// and saves every registry, so they refuse the same hostile files the same way.
pub trait RegistryFile: Default + Serialize + Sized {
    /// The file's base name (`mcs-registry`).
    const BASE: &'static str;
    /// What it is, in messages (`MCS registry`).
    const WHAT: &'static str;
    /// The largest file read (a hostile one is refused beyond it).
    const MAX: u64;
    /// The registry from its text, checked: why it is not valid otherwise.
    fn parse(text: &str) -> std::result::Result<Self, String>;
}

/// A registry, locked for as long as this value lives.
pub struct Locked<T> {
    path: std::path::PathBuf,
    _lock: std::fs::File,
    pub reg: T,
}

/// Where a registry's data file is in `state_dir`.
pub fn registry_path<T: RegistryFile>(state_dir: &Path) -> std::path::PathBuf {
    state_dir.join(format!("{}.json", T::BASE))
}

/// Opens and locks a registry in `state_dir` (empty when the file does not exist yet).
pub fn open_registry<T: RegistryFile>(state_dir: &Path) -> Result<Locked<T>> {
    let (path, lock, text) = lock_and_read(state_dir, T::BASE, T::MAX, T::WHAT)?;
    let reg = parse_registry(&path, text)?;
    Ok(Locked { path, _lock: lock, reg })
}

/// Reads a registry without taking its lock (`doctor`, `--dry-run`): empty when missing.
pub fn read_registry<T: RegistryFile>(state_dir: &Path) -> Result<T> {
    let path = registry_path::<T>(state_dir);
    let text = crate::fsutil::read_state_to_string(&path, T::MAX, T::WHAT)?;
    parse_registry(&path, text)
}

fn parse_registry<T: RegistryFile>(path: &Path, text: Option<String>) -> Result<T> {
    let Some(text) = text else { return Ok(T::default()) };
    T::parse(&text).map_err(|e| {
        anyhow::anyhow!("{} is not a valid {} ({e}); move it aside to start a new one", path.display(), T::WHAT)
    })
}

impl<T: RegistryFile> Locked<T> {
    /// Writes the registry atomically (temporary file, then rename).
    pub fn save(&self) -> Result<()> {
        crate::fsutil::write_atomic(&self.path, serde_json::to_string_pretty(&self.reg)?.as_bytes(), 0o644)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    type Make<'a> = Box<dyn Fn() + 'a>;
    type Take<'a> = Box<dyn Fn() -> Result<()> + 'a>;

    use crate::fsutil::tests::{mkfifo, quickly};

    /// Every hostile shape a state file can take, placed at `file` in turn; `read` must
    /// refuse each quickly with a message naming the file and saying to move it aside.
    fn refuses_hostile(dir: &Path, file: &str, read: fn(&Path) -> Result<()>) {
        let p = dir.join(file);
        let outside = dir.join("outside.json");
        let hostile: Vec<(&str, Make)> = vec![
            ("FIFO", Box::new(|| mkfifo(&p))),
            ("symlink", Box::new(|| std::os::unix::fs::symlink("/dev/zero", &p).unwrap())),
            ("symlink", Box::new(|| std::os::unix::fs::symlink(&outside, &p).unwrap())),
            ("limit", Box::new(|| std::fs::File::create(&p).unwrap().set_len(64 << 30).unwrap())),
            ("directory", Box::new(|| std::fs::create_dir(&p).unwrap())),
        ];
        std::fs::write(&outside, "{}").unwrap();
        for (want, make) in hostile {
            make();
            let d = dir.to_path_buf();
            let e = quickly(move || read(&d).map_err(|e| format!("{e:#}")));
            let e = e.expect_err(&format!("{file} as a {want} was accepted"));
            assert!(e.contains(want) && e.contains(file) && e.contains("move it aside"), "{file}: {e}");
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                std::fs::remove_dir(&p).unwrap();
            } else {
                std::fs::remove_file(&p).unwrap();
            }
        }
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "{}", "nothing was written through a link");
    }

    #[test]
    fn state_files_are_read_as_untrusted_input() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path();
        std::fs::create_dir_all(dir.join("containers")).unwrap();
        refuses_hostile(dir, "containers/c1.json", |d| Record::load(&d.join("containers/c1.json")).map(drop));
        refuses_hostile(dir, "idmap-registry.json", |d| crate::idmap::open(d).map(drop));
        refuses_hostile(dir, "idmap-registry.json", |d| crate::idmap::read(&crate::idmap::registry_path(d)).map(drop));
        refuses_hostile(dir, "mcs-registry.json", |d| crate::mac::registry::open(d).map(drop));
        // A record naming another container, or mapping container root to host root.
        let rec = dir.join("containers/c1.json");
        std::fs::write(&rec, r#"{"name":"web1","profile":"p","distro":"d","release":"r","gpgcheck":true,"installer":"i","cache_key":"k"}"#).unwrap();
        let e = format!("{:#}", Record::load(&rec).unwrap_err());
        assert!(e.contains("names container \"web1\"") && e.contains("move it aside"), "{e}");
        let root_map = r#"{"name":"c1","profile":"p","distro":"d","release":"r","gpgcheck":true,"installer":"i","cache_key":"k",
            "idmap":{"uid":{"start":0,"target":0,"count":65536},"gid":{"start":0,"target":100000,"count":65536}}}"#;
        std::fs::write(&rec, root_map).unwrap();
        assert!(format!("{:#}", Record::load(&rec).unwrap_err()).contains("uid map 0:0:65536"));
        std::fs::write(&rec, root_map.replace(r#""target":0,"#, r#""target":100000,"#)).unwrap();
        assert!(Record::load(&rec).unwrap().unwrap().idmap.is_some());
        std::fs::remove_file(&rec).unwrap();
        // A good file still reads, and a missing one is "none yet".
        assert!(Record::load(&dir.join("containers/c1.json")).unwrap().is_none());
        assert!(crate::idmap::open(dir).unwrap().reg.ranges.is_empty());
        assert!(crate::mac::registry::open(dir).unwrap().reg.labels.is_empty());
    }

    #[test]
    fn locks_never_follow_symlinks_or_open_fifos() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("state");
        std::fs::create_dir_all(&dir).unwrap();
        let elsewhere = d.path().join("elsewhere");
        let paths = Paths { pool: d.path().join("pool"), cache: d.path().join("cache"), state: dir.clone() };
        let name = Name::parse("c1").unwrap();
        let locks: Vec<(PathBuf, Take)> = vec![
            (paths.lock(&name), Box::new(|| lock(&paths, &name).map(drop))),
            (paths.lab_lock(&name), Box::new(|| lab_lock(&paths, &name).map(drop))),
            (dir.join("x.lock"), Box::new(|| try_lock(&dir.join("x.lock")).map(drop))),
            (dir.join("y.lock"), Box::new(|| wait_lock(&dir.join("y.lock"), true, &|| {}).map(drop))),
            (dir.join("idmap-registry.lock"), Box::new(|| crate::idmap::open(&dir).map(drop))),
            (dir.join("mcs-registry.lock"), Box::new(|| crate::mac::registry::open(&dir).map(drop))),
        ];
        for (p, take) in &locks {
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            // A dangling symlink: following it would create `elsewhere`.
            std::os::unix::fs::symlink(&elsewhere, p).unwrap();
            let e = format!("{:#}", take().unwrap_err());
            assert!(e.contains("symlink") && e.contains("move it aside"), "{}: {e}", p.display());
            assert!(!elsewhere.exists(), "{} created a file through a symlinked lock", p.display());
            std::fs::remove_file(p).unwrap();
            // A FIFO (opening it for writing would block without O_NONBLOCK).
            mkfifo(p);
            let e = format!("{:#}", take().unwrap_err());
            assert!(e.contains("FIFO") && e.contains("move it aside"), "{}: {e}", p.display());
            std::fs::remove_file(p).unwrap();
            take().unwrap();
            assert!(std::fs::symlink_metadata(p).unwrap().is_file());
        }
    }
}
