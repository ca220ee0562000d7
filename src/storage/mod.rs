//! How a container's tree is stored: `copy` (a full copy of the cached base per container,
//! shifted into its id map) or `overlay` (one shared base per cache key and id map, shifted
//! once, plus a per-container writable layer, mounted at `POOL/NAME` at every start).
//!
//! Layout under the pool (all root's: `POOL/.lxcprov` is `0700`, so host users reach
//! neither the bases nor the layers):
//! - `POOL/.lxcprov/bases/KEY@MAP/`: the base, copied from `CACHE/rootfs/KEY` and shifted;
//!   complete once it holds [`BASE_DONE`]; its lock `POOL/.lxcprov/bases/KEY@MAP.lock`.
//! - `POOL/.lxcprov/layers/NAME/{upper,work}`: the container's own writes, and `base`, the
//!   id of the base it sits on (so the hook needs nothing but the domain XML).
//! - `POOL/NAME`: the mount point of `overlay lowerdir=BASE,upperdir=upper,workdir=work`.
//!
//! No tree is shared writable: the base is only ever a lower layer, and a container's
//! files are its layer's. Unmount before deleting anything under `POOL/NAME`.

mod actions;
pub mod collect;
pub mod diff;
pub mod driver;
pub mod hook;
pub mod idmapped;
mod mount;
pub mod snapshot;

pub use actions::Action;
pub use driver::{CopyTree, Driver, Layout};
pub use mount::{ensure_mounted, ensure_mounted_labelled, is_mounted, mount_cmd, mounted_context, peers_with, unmount};

use crate::profile::Idmap;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Marks a complete shared base.
pub const BASE_DONE: &str = ".lxcprov-shared-base";

/// How a container's tree is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Copy,
    Overlay,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Copy => "copy",
            Mode::Overlay => "overlay",
        }
    }
}

/// What the user asked for (`--storage`, `LXCPROV_STORAGE`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Choice {
    /// Overlay where the pool, the kernel and the hook allow it, else copy.
    #[default]
    Auto,
    Copy,
    Overlay,
}

impl std::str::FromStr for Choice {
    type Err = String;
    fn from_str(s: &str) -> Result<Choice, String> {
        match s {
            "auto" => Ok(Choice::Auto),
            "copy" => Ok(Choice::Copy),
            "overlay" => Ok(Choice::Overlay),
            _ => Err(format!("unknown storage mode {s:?}: use auto, overlay or copy")),
        }
    }
}

/// The shared-base and layer paths of one overlay container.
#[derive(Clone, Debug, Serialize)]
pub struct Overlay {
    pub base_id: String,
    /// `POOL/.lxcprov/bases/ID`
    pub base: PathBuf,
    /// `POOL/.lxcprov/layers/NAME`
    pub layer: PathBuf,
    /// `POOL/NAME`, the mount point.
    pub target: PathBuf,
    /// The cached base it is made from.
    pub cache_entry: PathBuf,
    pub idmap: Option<Idmap>,
    /// The base is the unshifted one (`KEY@host`), seen through an id-mapped mount of it at
    /// `LAYER/lower` for `idmap` ([`idmapped`]): isolated maps, one range per container,
    /// share one base. Otherwise the base itself was shifted for `idmap`.
    pub mapped_lower: bool,
    /// A new layer's disk quota (`resources.disk`, bytes): the layer's `upper` and `work`
    /// then live in a file system of that size of its own (`LAYER/disk.img`, mounted at
    /// `LAYER/disk`). An existing layer's quota is its image's size.
    pub disk: Option<u64>,
}

/// A quota layer's file system image, and where it is mounted, inside the layer.
pub const DISK_IMG: &str = "disk.img";
pub const DISK_DIR: &str = "disk";

impl Overlay {
    /// `mapped_lower`: see [`Overlay::mapped_lower`] (ignored without an id map).
    pub fn new(
        pool: &Path,
        name: &str,
        cache_entry: &Path,
        cache_key: &str,
        idmap: Option<Idmap>,
        mapped_lower: bool,
    ) -> Overlay {
        let mapped_lower = mapped_lower && idmap.is_some();
        let base_id = base_id(cache_key, if mapped_lower { None } else { idmap });
        Overlay {
            base: bases_dir(pool).join(&base_id),
            base_id,
            layer: layers_dir(pool).join(name),
            target: pool.join(name),
            cache_entry: cache_entry.to_path_buf(),
            idmap,
            mapped_lower,
            disk: None,
        }
    }
    /// The map of the id-mapped view of the base, when there is one.
    pub fn lower_map(&self) -> Option<Idmap> {
        self.idmap.filter(|_| self.mapped_lower)
    }
    /// The map the base itself is shifted for (a fixed map's shared base).
    pub fn base_map(&self) -> Option<Idmap> {
        self.idmap.filter(|_| !self.mapped_lower)
    }
    /// The overlay's lower directory: the base, or the id-mapped view of it.
    pub fn lower(&self) -> PathBuf {
        if self.mapped_lower {
            self.layer.join("lower")
        } else {
            self.base.clone()
        }
    }
    /// Where `upper` and `work` live: the layer, or its quota file system.
    pub fn data(&self) -> PathBuf {
        data_of(&self.layer)
    }
    pub fn upper(&self) -> PathBuf {
        self.data().join("upper")
    }
    pub fn work(&self) -> PathBuf {
        self.data().join("work")
    }
    /// The quota of this container's layer (its image's size), if it has one.
    pub fn quota(&self) -> Option<u64> {
        std::fs::symlink_metadata(self.layer.join(DISK_IMG)).ok().filter(|m| m.is_file()).map(|m| m.len())
    }
    pub fn lock(&self) -> PathBuf {
        base_lock(&self.base)
    }
    /// This overlay with the id map its record holds (the base's own, unless the base is
    /// seen through an id-mapped view, whose map the layer names).
    pub fn with_recorded_map(&self, idmap: Option<Idmap>) -> Overlay {
        let mut o = self.clone();
        if !o.mapped_lower {
            o.idmap = idmap;
        }
        o
    }
    /// This container's layer on another base (`rebuild`: the new base it was planned with).
    pub fn onto(self, new: &Overlay) -> Overlay {
        Overlay { base: new.base.clone(), base_id: new.base_id.clone(), mapped_lower: new.mapped_lower, ..self }
    }
}

/// The directory holding a layer's `upper` and `work`: `LAYER/disk` with a quota image.
fn data_of(layer: &Path) -> PathBuf {
    if std::fs::symlink_metadata(layer.join(DISK_IMG)).is_ok_and(|m| m.is_file()) {
        layer.join(DISK_DIR)
    } else {
        layer.to_path_buf()
    }
}

/// Is `dir` a mount point (another device than its parent)?
pub fn is_mount_point(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(dir), dir.parent().map(std::fs::symlink_metadata)) {
        (Ok(d), Some(Ok(p))) => d.is_dir() && d.dev() != p.dev(),
        _ => false,
    }
}

/// Mounts a quota layer's file system at `LAYER/disk` if it is not mounted (after a host
/// reboot, or for a new layer); nothing for a layer without one.
pub fn ensure_disk_mounted(runner: &dyn crate::exec::Runner, layer: &Path) -> Result<()> {
    let img = layer.join(DISK_IMG);
    if !std::fs::symlink_metadata(&img).is_ok_and(|m| m.is_file()) {
        return Ok(());
    }
    let dir = layer.join(DISK_DIR);
    if is_mount_point(&dir) {
        return Ok(());
    }
    match std::fs::symlink_metadata(&dir) {
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {}
        Ok(_) => bail!("{} is not a directory", dir.display()),
        Err(_) => {
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        }
    }
    mount_image(runner, &img, &dir)
}

/// Mounts the quota image `img` at `dir` (a loop-mounted ext4).
fn mount_image(runner: &dyn crate::exec::Runner, img: &Path, dir: &Path) -> Result<()> {
    let cmd = crate::exec::Cmd::new("mount")
        .args(["-t", "ext4", "-o", "loop"])
        .arg(img.display().to_string())
        .arg(dir.display().to_string());
    runner
        .run(&cmd, &mut |_| {})
        .map_err(anyhow::Error::new)
        .with_context(|| format!("mounting the disk {}", img.display()))
}

/// Makes a sparse ext4 image of `bytes` at `img` (a new file).
fn mkfs_image(runner: &dyn crate::exec::Runner, img: &Path, bytes: u64) -> Result<()> {
    let f = crate::fsutil::create_new(img, 0o600)?;
    f.set_len(bytes).with_context(|| format!("sizing {}", img.display()))?;
    drop(f);
    let cmd = crate::exec::Cmd::new("mkfs.ext4")
        .args(["-q", "-F", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", "-L", "lxcprov-disk"])
        .arg(img.display().to_string());
    let dir = img.parent().unwrap_or(img);
    runner
        .run(&cmd, &mut |_| {})
        .map_err(|e| crate::fsutil::explain_disk_full(anyhow::Error::new(e), dir))
        .with_context(|| format!("making the disk {}", img.display()))
}

/// A copy-storage container's quota image: `POOL/.lxcprov/disks/NAME.img`, mounted at its
/// tree `POOL/NAME`.
pub fn copy_disk(target: &Path) -> Option<PathBuf> {
    let (pool, name) = (target.parent()?, target.file_name()?);
    let mut f = name.to_os_string();
    f.push(".img");
    Some(private_dir(pool).join("disks").join(f))
}

/// Mounts a copy-storage container's quota image at its tree if it has one and it is not
/// mounted (lxcprov's start, the hook at `prepare`). True when it mounted it.
pub fn ensure_copy_disk_mounted(runner: &dyn crate::exec::Runner, target: &Path) -> Result<bool> {
    let Some(img) = copy_disk(target).filter(|i| std::fs::symlink_metadata(i).is_ok_and(|m| m.is_file())) else {
        return Ok(false);
    };
    if is_mount_point(target) {
        return Ok(false);
    }
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() && !m.file_type().is_symlink() => {
            if std::fs::read_dir(target)?.next().is_some() {
                bail!(
                    "{} holds files although its disk {} is not mounted; move them away",
                    target.display(),
                    img.display()
                );
            }
        }
        Ok(_) => bail!("{} is not a directory", target.display()),
        Err(_) => std::fs::create_dir(target).with_context(|| format!("creating {}", target.display()))?,
    }
    mount_image(runner, &img, target)?;
    Ok(true)
}

/// Puts a finished copy-storage tree `from` at `to` on a quota file system of `bytes` of its
/// own (`copy_disk`), instead of renaming it there: the image made and mounted at `to`, the
/// tree copied in (reflinked where the pool can), `from` removed.
pub fn place_on_disk(runner: &dyn crate::exec::Runner, from: &Path, to: &Path, bytes: u64) -> Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        bail!(
            "{} exists; a container with a disk quota is not replaced in place: destroy it with --purge, then create it again",
            to.display()
        );
    }
    let img = copy_disk(to).context("the container's disk path")?;
    let pool = to.parent().context("pool")?;
    ensure_private(pool)?;
    crate::fsutil::ensure_private_dir(&private_dir(pool).join("disks"), 0o700)?;
    // A killed run's image (its tree is not in place, so it holds nothing of use).
    if std::fs::symlink_metadata(&img).is_ok() {
        std::fs::remove_file(&img).with_context(|| format!("removing {}", img.display()))?;
    }
    mkfs_image(runner, &img, bytes)?;
    std::fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
    let r = mount_image(runner, &img, to).and_then(|()| {
        let cmd = crate::exec::Cmd::new("cp")
            .args(["-a", "--reflink=auto", "--"])
            .arg(format!("{}/.", from.display()))
            .arg(to.display().to_string());
        runner
            .run(&cmd, &mut |_| {})
            .map_err(|e| crate::fsutil::explain_disk_full(anyhow::Error::new(e), to))
            .with_context(|| format!("copying the tree onto its disk ({} MiB)", bytes >> 20))
    });
    if let Err(e) = r {
        let _ = crate::fsutil::remove_tree(to);
        let _ = std::fs::remove_file(&img);
        return Err(e);
    }
    crate::fsutil::remove_tree(from)
}

/// Makes a quota file system of `bytes` at `dir/disk.img` (sparse: it takes what is
/// written, never more than `bytes`) and mounts it at `dir/disk`.
fn make_disk(runner: &dyn crate::exec::Runner, dir: &Path, bytes: u64) -> Result<()> {
    mkfs_image(runner, &dir.join(DISK_IMG), bytes)?;
    ensure_disk_mounted(runner, dir)
}

/// `POOL/.lxcprov`: lxcprov's private part of the pool.
pub fn private_dir(pool: &Path) -> PathBuf {
    pool.join(".lxcprov")
}
pub fn bases_dir(pool: &Path) -> PathBuf {
    private_dir(pool).join("bases")
}
pub fn layers_dir(pool: &Path) -> PathBuf {
    private_dir(pool).join("layers")
}
fn base_lock(base: &Path) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".lock");
    PathBuf::from(s)
}

/// `KEY@uUID-gGID-nCOUNT` for a shifted base, `KEY@host` for one used without a user namespace.
pub fn base_id(cache_key: &str, idmap: Option<Idmap>) -> String {
    match idmap {
        Some(m) => format!("{cache_key}@u{}-g{}-n{}", m.uid.target, m.gid.target, m.uid.count.min(m.gid.count)),
        None => format!("{cache_key}@host"),
    }
}

/// A base id read from disk: one harmless path component.
pub fn valid_base_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 160
        && !s.starts_with('.')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// Why overlay storage cannot be used for a pool, if it cannot (kernel, file system, path).
pub fn overlay_impossible(pool: &Path) -> Option<String> {
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if !fs.lines().any(|l| l.split_whitespace().last() == Some("overlay")) {
        return Some("the kernel has no overlay file system (modprobe overlay)".into());
    }
    let s = pool.display().to_string();
    if s.contains([',', ':', '\\', '\n']) {
        return Some(format!("the pool path {s} holds a character overlay's mount options cannot carry (, : \\)"));
    }
    // The nearest existing ancestor's file system: the layers live there.
    let p = nearest_existing(pool);
    let pid = std::fs::read_to_string("/run/libvirtd.pid").ok().and_then(|s| s.trim().parse::<u32>().ok());
    if let Some(false) = pid.and_then(|pid| peers_with(pid, &p)) {
        return Some(format!(
            "libvirtd runs in a mount namespace that does not share mounts under {} with this one, so an overlay mounted at a start would not be the one lxcprov sees (scripts/setup-host.sh starts it so that it does)",
            p.display()
        ));
    }
    match fs_type(&p) {
        Some(t) if UPPER_OK.iter().any(|(m, _)| *m == t) => None,
        Some(t) => Some(format!("the pool's file system (magic {t:#x}) is not one lxcprov trusts as an overlay upper layer (ext4, xfs, btrfs, tmpfs)")),
        None => Some(format!("cannot read the file system type of {}", p.display())),
    }
}

/// `path`, or its nearest ancestor that exists (a pool not made yet lives on its file system).
pub fn nearest_existing(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() && p.pop() {}
    p
}

/// Why an id-mapped view of a base in `pool` cannot be an overlay's lower layer here, if it
/// cannot: overlayfs takes id-mapped layers since Linux 5.19; ext4, xfs and btrfs allow
/// id-mapped mounts (tmpfs since 6.3). The mount itself says so if this guess is wrong.
pub fn idmapped_lower_impossible(pool: &Path) -> Option<String> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = release.trim().split(['.', '-']).map(|x| x.parse::<u32>().unwrap_or(0));
    let v = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    if v < (5, 19) {
        return Some(format!("kernel {} is older than 5.19, whose overlayfs takes id-mapped layers", release.trim()));
    }
    let p = nearest_existing(pool);
    match fs_type(&p) {
        Some(0xEF53 | 0x5846_5342 | 0x9123_683E) => None,
        Some(0x0102_1994) if v >= (6, 3) => None,
        Some(t) => Some(format!("the pool's file system (magic {t:#x}) does not allow id-mapped mounts")),
        None => Some(format!("cannot read the file system type of {}", p.display())),
    }
}

const UPPER_OK: [(i64, &str); 4] =
    [(0xEF53, "ext4"), (0x5846_5342, "xfs"), (0x9123_683E, "btrfs"), (0x0102_1994, "tmpfs")];

fn fs_type(p: &Path) -> Option<i64> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: st is plain data filled by statfs; c is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
}

/// What new containers in `pool` get, for `doctor`: true with a shared base and a layer of
/// their own each, false when each is a full copy; and why.
pub fn for_new_containers(choice: Choice, pool: &Path) -> Result<(bool, String)> {
    let (mode, why) = decide(choice, pool, Ok(()))?;
    Ok((mode == Mode::Overlay, why))
}

/// Decides the mode for a new container: `(mode, why)`. `cached` is false for imports and
/// `--no-base-cache` (overlay needs a cached base). An explicit `overlay` that cannot work
/// is an error.
pub fn decide(choice: Choice, pool: &Path, cached: Result<(), &str>) -> Result<(Mode, String)> {
    if choice == Choice::Copy {
        return Ok((Mode::Copy, "copy: asked for (--storage copy)".into()));
    }
    let why_not = match cached {
        Err(w) => Some(w.to_string()),
        Ok(()) => overlay_impossible(pool),
    };
    if let Some(w) = why_not {
        if choice == Choice::Overlay {
            bail!("--storage overlay is not possible here: {w}. Use --storage copy. Nothing was changed.");
        }
        return Ok((Mode::Copy, format!("copy: {w}")));
    }
    match (choice, hook::status(Path::new(hook::HOOK_PATH))) {
        (_, hook::Status::Current(_)) => {
            Ok((Mode::Overlay, "overlay: a shared base shifted once, and a writable layer of its own, mounted at every start by the libvirt hook".into()))
        }
        (Choice::Overlay, s) => Ok((
            Mode::Overlay,
            format!("overlay: asked for (--storage overlay); the libvirt hook is {}, so only `lxcprov start` mounts it (not `virsh start` or autostart)", s.describe()),
        )),
        (_, s) => Ok((
            Mode::Copy,
            format!("copy: the libvirt hook {} is {} (run `lxcprov hook install`, then restart libvirtd), and without it `virsh start` would find an empty root", hook::HOOK_PATH, s.describe()),
        )),
    }
}

/// `POOL/.lxcprov` and its `bases`/`layers`, root's alone (mode 0700).
pub fn ensure_private(pool: &Path) -> Result<()> {
    crate::fsutil::ensure_pool(pool)?;
    let p = private_dir(pool);
    crate::fsutil::ensure_private_dir(&p, 0o700)?;
    for d in [bases_dir(pool), layers_dir(pool)] {
        crate::fsutil::ensure_private_dir(&d, 0o700)?;
    }
    Ok(())
}

/// Makes the shared base for `o` once: copies the cached base, shifts it into the id map
/// (file capabilities, setuid bits and ACLs kept: [`crate::fsutil::shift_ownership`]),
/// marks it complete and renames it into place, under the base's lock.
pub fn prepare_base(runner: &dyn crate::exec::Runner, o: &Overlay, on_wait: &dyn Fn()) -> Result<()> {
    let pool = o.target.parent().context("pool")?;
    ensure_private(pool)?;
    let _lock = crate::fsutil::lock::wait_lock(&o.lock(), false, on_wait)?;
    if o.base.join(BASE_DONE).is_file() {
        return Ok(());
    }
    if !o.cache_entry.join(crate::paths::BASE_MARKER).is_file() {
        bail!("the cached base {} is missing or incomplete; run again (it installs afresh)", o.cache_entry.display());
    }
    let tmp = o.base.with_file_name(format!("{}.partial", o.base_id));
    crate::fsutil::remove_tree(&tmp)?;
    crate::fsutil::remove_tree(&o.base)?; // an incomplete one (no marker): a killed run's
    let r = (|| -> Result<()> {
        crate::fsutil::copy_tree(runner, &o.cache_entry, &tmp)?;
        std::fs::remove_file(tmp.join(crate::paths::BASE_MARKER))?;
        if let Some(m) = o.base_map() {
            crate::fsutil::shift_ownership(&tmp, m.uid.target, m.gid.target, m.uid.count.min(m.gid.count))?;
        }
        label_on_disk(runner, &[&tmp])?;
        std::fs::write(tmp.join(BASE_DONE), format!("{}\n", o.base_id))?;
        std::fs::rename(&tmp, &o.base)?;
        Ok(())
    })();
    if r.is_err() {
        let _ = crate::fsutil::remove_tree(&tmp);
    }
    r.with_context(|| format!("preparing the shared base {}", o.base.display()))
}

/// Under SELinux, the on-disk label of a shared base (once, when it is prepared) and of a
/// new layer's `upper` and `work`: `lxc_contexts`' shared `file` label
/// (`container_file_t:s0`). The container never sees it (the hook mounts its overlay with
/// `context=` its own image label); it is what the overlay's mounter (`mount`, run by the
/// hook) reads and writes underneath, one type for every pool instead of whatever labels
/// the cache had. Nothing is walked per container or per start.
fn label_on_disk(runner: &dyn crate::exec::Runner, dirs: &[&Path]) -> Result<()> {
    if !crate::host::selinux_enabled() {
        return Ok(());
    }
    let text = std::fs::read_to_string(crate::host::lxc_contexts_path(Path::new("/etc"))).unwrap_or_default();
    let label =
        crate::host::rootfs_label(&text, None).unwrap_or_else(|| "system_u:object_r:container_file_t:s0".into());
    let cmd = crate::exec::Cmd::new("chcon")
        .args(["-R", "--no-dereference"])
        .arg(&label)
        .args(dirs.iter().map(|d| d.display().to_string()));
    runner.run(&cmd, &mut |_| {}).map_err(anyhow::Error::new).with_context(|| format!("labelling {dirs:?} {label}"))
}

/// Makes the container's empty writable layer (an old one is replaced) and records its
/// base. The upper directory gets the base root's owner and mode: it is the container's `/`.
pub fn make_layer(o: &Overlay) -> Result<()> {
    make_layer_with(o, |_| Ok(()))
}

/// [`make_layer`], its `upper` filled from a snapshot of the container (`restore`).
pub fn make_layer_from(runner: &dyn crate::exec::Runner, o: &Overlay, s: &snapshot::Snapshot) -> Result<()> {
    let pool = o.target.parent().context("pool")?;
    make_layer_with(o, |upper| snapshot::fill_upper(runner, pool, s, upper))
}

fn make_layer_with(o: &Overlay, fill_upper: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let pool = o.target.parent().context("pool")?;
    ensure_private(pool)?;
    // Built beside it and swapped in whole: a killed run leaves the old layer or the new
    // one, never a layer without its `base` (or an id-mapped one without its map).
    let tmp = partial_layer(o);
    crate::fsutil::remove_tree(&tmp)?;
    // A new layer gets the quota asked for, or the one the layer it replaces has.
    let disk = o.disk.or_else(|| o.quota());
    let r = fill_layer(o, &tmp, disk)
        .and_then(|data| {
            fill_upper(&data.join("upper"))?;
            label_on_disk(&crate::exec::SystemRunner::default(), &[&data.join("upper"), &data.join("work")])
        })
        .and_then(|()| swap_in(&tmp, &o.layer));
    let _ = crate::fsutil::remove_tree(&tmp);
    r.with_context(|| format!("making the layer {}", o.layer.display()))
}

/// `LAYERS/.NAME.partial`, where [`make_layer`] builds a layer.
pub fn partial_layer(o: &Overlay) -> PathBuf {
    let name = o.layer.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    o.layer.with_file_name(format!(".{name}.partial"))
}

/// Puts `tmp` at `dst`: renamed if `dst` is missing, else exchanged with it atomically
/// (`renameat2 RENAME_EXCHANGE`), leaving the old one at `tmp` to be removed.
fn swap_in(tmp: &Path, dst: &Path) -> Result<()> {
    if std::fs::symlink_metadata(dst).is_err() {
        return std::fs::rename(tmp, dst).with_context(|| format!("renaming {} to {}", tmp.display(), dst.display()));
    }
    let (a, b) = (
        std::ffi::CString::new(tmp.as_os_str().as_encoded_bytes())?,
        std::ffi::CString::new(dst.as_os_str().as_encoded_bytes())?,
    );
    // SAFETY: both paths are NUL-terminated; RENAME_EXCHANGE swaps two existing entries.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("exchanging {} with {}", tmp.display(), dst.display()));
    }
    Ok(())
}

/// Makes the layer at `dir` (with a quota file system of `disk` bytes); returns where its
/// `upper` and `work` are.
fn fill_layer(o: &Overlay, dir: &Path, disk: Option<u64>) -> Result<PathBuf> {
    let root = std::fs::symlink_metadata(&o.base).with_context(|| format!("reading {}", o.base.display()))?;
    std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    if let Some(bytes) = disk {
        make_disk(&crate::exec::SystemRunner::default(), dir, bytes)?;
    }
    let data = data_of(dir);
    let upper = data.join("upper");
    std::fs::create_dir(&upper)?;
    // Seen through an id-mapped lower, the base's root is owned by the map's root.
    let (uid, gid) = match o.lower_map() {
        Some(m) if root.uid() < m.uid.count && root.gid() < m.gid.count => {
            (root.uid() + m.uid.target, root.gid() + m.gid.target)
        }
        _ => (root.uid(), root.gid()),
    };
    std::os::unix::fs::lchown(&upper, Some(uid), Some(gid))?;
    std::fs::set_permissions(&upper, std::fs::Permissions::from_mode(root.mode() & 0o7777))?;
    std::fs::create_dir(data.join("work"))?;
    std::fs::set_permissions(data.join("work"), std::fs::Permissions::from_mode(0o700))?;
    crate::fsutil::write_atomic(&dir.join("base"), format!("{}\n", o.base_id).as_bytes(), 0o600)?;
    if let Some(m) = o.lower_map() {
        std::fs::create_dir(dir.join("lower"))?;
        std::fs::set_permissions(dir.join("lower"), std::fs::Permissions::from_mode(0o700))?;
        crate::fsutil::write_atomic(&dir.join(LOWER_MAP), format_lower_map(&m).as_bytes(), 0o600)?;
    }
    Ok(data)
}

/// The layer's record of an id-mapped lower: `UID GID COUNT`, the map's host ids.
const LOWER_MAP: &str = "lower-idmap";

fn format_lower_map(m: &Idmap) -> String {
    format!("{} {} {}\n", m.uid.target, m.gid.target, m.uid.count.min(m.gid.count))
}

/// Parses [`LOWER_MAP`]'s text: three numbers, a valid map (root not host root, no overflow).
fn parse_lower_map(s: &str) -> Option<Idmap> {
    let n: Vec<u32> = s.split_whitespace().map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let [uid, gid, count] = n[..] else { return None };
    let ok = |t: u32| t != 0 && count > 0 && t.checked_add(count).is_some() && t >= count;
    if !(ok(uid) && ok(gid)) {
        return None;
    }
    let r = |t| crate::profile::IdRange { start: 0, target: t, count };
    Some(Idmap { uid: r(uid), gid: r(gid) })
}

/// Keeps root's password hash as lxcprov set it (`POOL/.lxcprov/layers/NAME/root-hash`,
/// 0600, inside the root-only `.lxcprov`), so `reset` restores that password (a lab's), not
/// whatever the container's root set since. It lives beside the layer, not in the base.
pub fn save_root_hash(o: &Overlay, hash: &str) -> Result<()> {
    crate::fsutil::write_atomic(&o.layer.join("root-hash"), format!("{hash}\n").as_bytes(), 0o600)
}

/// The hash [`save_root_hash`] kept, if any.
pub fn saved_root_hash(o: &Overlay) -> Option<String> {
    let s = crate::fsutil::read_state_to_string(&o.layer.join("root-hash"), 4096, "saved root hash").ok()??;
    let h = s.trim();
    h.starts_with('$').then(|| h.to_string())
}

/// Points an existing layer at another base (`rebuild`): its own files stay.
pub fn set_layer_base(o: &Overlay) -> Result<()> {
    crate::fsutil::write_atomic(&o.layer.join("base"), format!("{}\n", o.base_id).as_bytes(), 0o600)
}

/// The storage an existing container has, as the choice that keeps it (`rebuild`: overlay
/// containers get a new base, copies a new copy).
pub fn mode_of(pool: &Path, name: &crate::name::Name) -> Result<Choice> {
    Ok(if existing(pool, name.as_str())?.is_some() { Choice::Overlay } else { Choice::Copy })
}

/// The overlay of an existing container, from its layer's `base` file: `None` when it has
/// no layer (a copy-mode container). Every path is checked: directories, no symlinks.
pub fn existing(pool: &Path, name: &str) -> Result<Option<Overlay>> {
    let layer = layers_dir(pool).join(name);
    match std::fs::symlink_metadata(&layer) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", layer.display())),
        Ok(m) if !m.is_dir() => bail!("{} is not a directory", layer.display()),
        Ok(_) => {}
    }
    for d in [private_dir(pool), bases_dir(pool), layers_dir(pool)] {
        let m = std::fs::symlink_metadata(&d).with_context(|| format!("reading {}", d.display()))?;
        if !m.is_dir() || m.uid() != 0 || m.mode() & 0o022 != 0 {
            bail!("{} must be a directory owned by root and writable only by it", d.display());
        }
    }
    let base_file = layer.join("base");
    let id = crate::fsutil::read_state_to_string(&base_file, 4096, "layer base id")?
        .with_context(|| format!("{} is missing; the layer is incomplete", base_file.display()))?;
    let id = id.trim();
    if !valid_base_id(id) {
        bail!("{}/base names no valid base ({id:?})", layer.display());
    }
    let base = bases_dir(pool).join(id);
    let map_file = layer.join(LOWER_MAP);
    let lower_map = match crate::fsutil::read_state_to_string(&map_file, 4096, "layer lower id map")? {
        None => None,
        Some(t) => Some(
            parse_lower_map(&t)
                .with_context(|| format!("{} holds no valid id map ({:?})", map_file.display(), t.trim()))?,
        ),
    };
    Ok(Some(Overlay {
        base_id: id.to_string(),
        base,
        layer,
        target: pool.join(name),
        cache_entry: PathBuf::new(),
        idmap: lower_map,
        mapped_lower: lower_map.is_some(),
        disk: None,
    }))
}

/// `--rootfs DIR` (sbom, outdated) names `POOL/NAME` of an overlay container that is not
/// mounted (shut off): the directory is an empty mount point, and reading it would report
/// an empty tree. Returns the container's name then.
pub fn unmounted_overlay_at(pool: &Path, dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let pool = std::fs::canonicalize(pool).ok()?;
    let parent = std::fs::canonicalize(dir.parent()?).ok()?;
    if parent != pool || crate::name::Name::parse(name).is_err() {
        return None;
    }
    let o = existing(&pool, name).ok().flatten()?;
    (!is_mounted(&o.target)).then(|| name.to_string())
}

/// Removes a container's overlay: unmounts it, removes the empty mount point and the layer
/// (its own writes only; the shared base stays). Returns what it did.
pub fn remove(runner: &dyn crate::exec::Runner, o: &Overlay) -> Result<Vec<String>> {
    let mut done = vec![];
    if is_mounted(&o.target) {
        unmount(runner, &o.target)?;
        done.push(format!("unmounted {}", o.target.display()));
    }
    if is_mounted(&o.target) {
        bail!("{} is still mounted; not removing anything under it", o.target.display());
    }
    match std::fs::remove_dir(&o.target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => bail!(
            "the mount point {} holds files although no overlay is mounted there (written while it was unmounted?); lxcprov does not delete them: move them away and run again",
            o.target.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("removing the mount point {}", o.target.display())),
    }
    if o.layer.exists() {
        crate::fsutil::remove_tree(&o.layer)?;
        done.push(format!("deleted the layer {}", o.layer.display()));
    }
    // A killed make_layer's unfinished one.
    crate::fsutil::remove_tree(&partial_layer(o))?;
    Ok(done)
}

/// Removes the shared base `id` if no layer uses it any more (under its lock, so a create
/// that is about to use it either finished writing its layer or waits and rebuilds it).
pub fn remove_unused_base(pool: &Path, id: &str) -> Result<Option<String>> {
    if !valid_base_id(id) {
        return Ok(None);
    }
    let base = bases_dir(pool).join(id);
    let Some(_lock) = crate::fsutil::lock::try_lock(&base_lock(&base))? else { return Ok(None) };
    if let Ok(rd) = std::fs::read_dir(layers_dir(pool)) {
        for e in rd.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let f = e.path().join("base");
            // An unreadable base file (a FIFO, a symlink, a huge file) counts as a user:
            // the base stays rather than being removed under a layer that may need it.
            match crate::fsutil::read_state_to_string(&f, 4096, "layer base id") {
                Ok(None) => {}
                Ok(Some(s)) if s.trim() != id => {}
                _ => return Ok(None),
            }
        }
    }
    if !base.exists() {
        return Ok(None);
    }
    crate::fsutil::remove_tree(&base)?;
    let _ = std::fs::remove_file(base_lock(&base));
    Ok(Some(format!("deleted the shared base {} (no container uses it)", base.display())))
}

/// For commands that read a container's tree whether it runs or not (`sbom`, `outdated`):
/// an overlay container that is shut off is mounted first (it stays mounted until its next
/// start and stop). Copy-mode containers and unknown names are left as they are.
pub fn mount_for_reading(pool: &Path, name: &str) -> Result<()> {
    if let Some(o) = existing(pool, name)? {
        ensure_mounted(&crate::exec::SystemRunner::default(), &o)?;
    }
    Ok(())
}

/// Removes `POOL/.lxcprov` and its two directories when they are empty (the last
/// container of the pool is gone).
pub fn tidy(pool: &Path) {
    for d in [bases_dir(pool), layers_dir(pool), private_dir(pool).join("snapshots"), private_dir(pool)] {
        let _ = std::fs::remove_dir(d); // only succeeds when empty
    }
}

/// Shifts what guest configuration wrote into the layer (host root's files, ids below the
/// map's count) into the map, through the mounted overlay so the overlay sees the change.
/// Copied-up files keep the base's (already shifted) owners.
pub fn shift_layer(o: &Overlay, m: Idmap) -> Result<u64> {
    let count = m.uid.count.min(m.gid.count);
    let mut rels = vec![];
    collect(&o.upper(), Path::new(""), count, &mut rels)
        .with_context(|| format!("reading the layer {}", o.upper().display()))?;
    let mut n = 0;
    for rel in rels {
        let p = if rel.as_os_str().is_empty() { o.target.clone() } else { o.target.join(&rel) };
        n += crate::fsutil::shift_one(&p, m.uid.target, m.gid.target, count)
            .with_context(|| format!("shifting {}", p.display()))? as u64;
    }
    Ok(n)
}

fn collect(dir: &Path, rel: &Path, count: u32, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let m = std::fs::symlink_metadata(dir)?;
    use std::os::unix::fs::FileTypeExt;
    if m.file_type().is_char_device() && m.rdev() == 0 {
        return Ok(()); // a whiteout: nothing to shift at the merged path
    }
    if m.uid() < count || m.gid() < count {
        out.push(rel.to_path_buf());
    }
    if m.is_dir() {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            collect(&e.path(), &rel.join(e.file_name()), count, out)?;
        }
    }
    Ok(())
}

/// Bytes a layer holds (its own writes), for `doctor` and the benchmark.
pub fn layer_bytes(o: &Overlay) -> u64 {
    crate::fsutil::tree_bytes(&o.upper())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::IdRange;

    #[test]
    fn base_ids_name_the_cache_key_and_the_map_and_are_one_harmless_component() {
        let m = Idmap {
            uid: IdRange { start: 0, target: 200000, count: 65536 },
            gid: IdRange { start: 0, target: 300000, count: 65536 },
        };
        let id = base_id("debian12-12-x86_64-aa74", Some(m));
        assert_eq!(id, "debian12-12-x86_64-aa74@u200000-g300000-n65536");
        assert_eq!(base_id("k", None), "k@host");
        assert!(valid_base_id(&id));
        for bad in ["", "..", "../x", "a/b", ".hidden", "a b", "a\nb", &"x".repeat(200)] {
            assert!(!valid_base_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn copy_is_chosen_with_the_reason_and_an_impossible_overlay_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let (m, why) = decide(Choice::Copy, d.path(), Ok(())).unwrap();
        assert_eq!((m, why.contains("--storage copy")), (Mode::Copy, true));
        let (m, why) = decide(Choice::Auto, d.path(), Err("imported trees are copied")).unwrap();
        assert_eq!(m, Mode::Copy);
        assert!(why.contains("imported"), "{why}");
        assert!(decide(Choice::Overlay, d.path(), Err("imported trees are copied")).is_err());
        let odd = d.path().join("a,b");
        assert!(overlay_impossible(&odd).is_some());
    }

    #[test]
    fn a_layer_is_only_read_back_from_root_owned_private_directories() {
        let d = tempfile::tempdir().unwrap();
        let pool = d.path().join("pool");
        assert!(existing(&pool, "c1").unwrap().is_none(), "no layer: a copy-mode container");
        std::fs::create_dir_all(layers_dir(&pool).join("c1")).unwrap();
        std::fs::create_dir_all(bases_dir(&pool)).unwrap();
        std::fs::write(layers_dir(&pool).join("c1/base"), "../../etc\n").unwrap();
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            for p in [private_dir(&pool), bases_dir(&pool), layers_dir(&pool)] {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o700)).unwrap();
            }
            let e = existing(&pool, "c1").unwrap_err();
            assert!(format!("{e:#}").contains("no valid base"), "{e:#}");
            std::fs::write(layers_dir(&pool).join("c1/base"), "k@host\n").unwrap();
            assert_eq!(existing(&pool, "c1").unwrap().unwrap().base, bases_dir(&pool).join("k@host"));
        } else {
            assert!(existing(&pool, "c1").is_err(), "not root's: refused");
        }
    }
}
