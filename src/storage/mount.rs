//! Mounting and unmounting a container's overlay, in the mount namespace the caller is in.
//! lxcprov's commands run in the host's; libvirt runs the hook in libvirtd's. The two must
//! see each other's mounts under the pool: on systemd hosts libvirtd shares the host's
//! namespace; where it has its own (this project's CI: scripts/lib/host.sh), that namespace
//! keeps the host's peer groups, so mounts and unmounts travel both ways. [`peers_with`]
//! checks it, and overlay storage is not chosen where it does not hold.

use super::Overlay;
use crate::exec::{Cmd, Runner};
use anyhow::{bail, Context, Result};
use std::path::Path;

fn cmd(argv: Vec<String>) -> Cmd {
    let mut it = argv.into_iter();
    Cmd::new(it.next().unwrap_or_default()).args(it)
}

/// Does the process `pid` (libvirtd) see the mounts made at `dir` here, and we its? True
/// when it shares our mount namespace, or when the mount holding `dir` is in the same
/// shared peer group in both. `None` when it cannot be told.
pub fn peers_with(pid: u32, dir: &Path) -> Option<bool> {
    let ours = std::fs::read_link("/proc/self/ns/mnt").ok()?;
    if std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok().as_ref() == Some(&ours) {
        return Some(true);
    }
    let mine = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let theirs = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    let a = peer_group(&mine, dir);
    Some(a.is_some() && a == peer_group(&theirs, dir))
}

/// The `shared:N` group of the mount that holds `dir` (the longest mount point above it).
fn peer_group(info: &str, dir: &Path) -> Option<String> {
    info.lines()
        .filter_map(|l| {
            let point = unescape(l.split(' ').nth(4)?);
            let opt = l.split(" - ").next()?.split(' ').skip(6).find(|f| f.starts_with("shared:")).map(str::to_string);
            dir.starts_with(&point).then_some((point.len(), opt))
        })
        .max_by_key(|(n, _)| *n)
        .and_then(|(_, o)| o)
}

/// The mount command for `o` (argv as data; the paths were checked for `,` `:` `\`).
pub fn mount_cmd(o: &Overlay) -> Cmd {
    mount_cmd_labelled(o, None)
}

/// The mount command for `o`, every file of it seen with the SELinux file label `context`
/// when one is given (`context="..."`: its level's `,` is quoted; the label was checked by
/// [`crate::mcs::Context::parse`], which allows no quote).
pub fn mount_cmd_labelled(o: &Overlay, context: Option<&crate::mcs::Context>) -> Cmd {
    let mut opts =
        format!("lowerdir={},upperdir={},workdir={}", o.lower().display(), o.upper().display(), o.work().display());
    if let Some(c) = context {
        opts.push_str(&format!(",context=\"{}\"", context_text(c)));
    }
    cmd(vec![
        "mount".into(),
        "-t".into(),
        "overlay".into(),
        "overlay".into(),
        "-o".into(),
        opts,
        o.target.display().to_string(),
    ])
}

/// A context as the kernel writes it (`user:role:type:level[-clearance]`).
fn context_text(c: &crate::mcs::Context) -> String {
    let mut s = format!("{}:{}:{}:{}", c.user, c.role, c.type_, c.level.canonical());
    if let Some(h) = &c.clearance {
        s.push_str(&format!("-{}", h.canonical()));
    }
    s
}

/// The `context=` label of the overlay mounted at `target`, as mountinfo shows it: `None`
/// when none is mounted there, `Some(None)` when it is mounted without one.
pub fn mounted_context(target: &Path) -> Option<Option<String>> {
    context_in(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(), target)
}

fn context_in(info: &str, target: &Path) -> Option<Option<String>> {
    let t = target.display().to_string();
    info.lines()
        .filter(|l| l.split(' ').nth(4).map(unescape).as_deref() == Some(t.as_str()))
        .filter_map(|l| l.split(" - ").nth(1))
        .rfind(|r| r.split(' ').next() == Some("overlay"))
        .map(|r| super_option(r.splitn(3, ' ').nth(2).unwrap_or(""), "context"))
}

/// The value of `key=` among a mount's super options (`rw,context="a:b:c:s0:c1,c2",...`):
/// a quoted value runs to its closing quote, another to the next `,`.
fn super_option(opts: &str, key: &str) -> Option<String> {
    let mut rest = opts;
    loop {
        if let Some(v) = rest.strip_prefix(key).and_then(|r| r.strip_prefix('=')) {
            return Some(match v.strip_prefix('"') {
                Some(q) => q.split('"').next().unwrap_or("").to_string(),
                None => v.split(',').next().unwrap_or("").to_string(),
            });
        }
        // Skip this option (a quoted value may hold commas).
        let mut quoted = false;
        let end = rest.char_indices().find(|&(_, ch)| {
            if ch == '"' {
                quoted = !quoted;
            }
            ch == ',' && !quoted
        });
        rest = &rest[end?.0 + 1..];
    }
}

/// Is an overlay mounted at `target` (in this mount namespace)?
pub fn is_mounted(target: &Path) -> bool {
    mounted_in(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(), target)
}

fn mounted_in(info: &str, target: &Path) -> bool {
    fstypes_at(info, target).any(|t| t == "overlay")
}

/// Is anything mounted at `target`?
fn mounted_any(info: &str, target: &Path) -> bool {
    fstypes_at(info, target).next().is_some()
}

/// The file system types of the mounts at `target` in mountinfo text.
fn fstypes_at<'a>(info: &'a str, target: &Path) -> impl Iterator<Item = &'a str> {
    let t = target.display().to_string();
    info.lines().filter_map(move |l| {
        let point = l.split(' ').nth(4).map(unescape)?;
        (point == t).then(|| l.split(" - ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or(""))
    })
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
}

/// Mounts `o` at its target unless it is mounted already. Every part must be in place:
/// the base complete, the layer's directories, an empty mount point.
pub fn ensure_mounted(runner: &dyn Runner, o: &Overlay) -> Result<bool> {
    if is_mounted(&o.target) {
        return Ok(false);
    }
    mount_now(runner, o, None)
}

/// Mounts `o` with every file seen as `context` (SELinux `context=`): the container's whole
/// tree carries its own label and level at the cost of one mount, whatever the base's size;
/// nothing is written to the base or the layer. An overlay mounted without that label (by
/// `prepare`, or by lxcprov before libvirt chose the label) is unmounted first: nothing
/// uses it before the container starts. True when it mounted.
pub fn ensure_mounted_labelled(runner: &dyn Runner, o: &Overlay, context: &crate::mcs::Context) -> Result<bool> {
    let want = context_text(context);
    match mounted_context(&o.target) {
        Some(Some(have)) if have == want => return Ok(false),
        Some(_) => unmount(runner, &o.target)
            .with_context(|| format!("unmounting {} to mount it again labelled {want}", o.target.display()))?,
        None => {}
    }
    mount_now(runner, o, Some(context))
}

fn mount_now(runner: &dyn Runner, o: &Overlay, context: Option<&crate::mcs::Context>) -> Result<bool> {
    // A quota layer's file system first (its upper and work are on it).
    super::ensure_disk_mounted(runner, &o.layer)?;
    if !o.base.join(super::BASE_DONE).is_file() {
        bail!(
            "the shared base {} of {} is missing or incomplete; re-create the container (`lxcprov destroy --purge`, then `lxcprov create`)",
            o.base.display(),
            o.target.display()
        );
    }
    for d in [o.upper(), o.work()] {
        let m = std::fs::symlink_metadata(&d).with_context(|| format!("the layer directory {}", d.display()))?;
        if !m.is_dir() {
            bail!("{} is not a directory", d.display());
        }
    }
    match std::fs::symlink_metadata(&o.target) {
        Ok(m) if m.is_dir() => {
            if std::fs::read_dir(&o.target)?.next().is_some() {
                bail!("{} is not empty; lxcprov does not mount an overlay over files", o.target.display());
            }
        }
        Ok(_) => bail!("{} is not a directory", o.target.display()),
        Err(_) => {
            std::fs::create_dir(&o.target).with_context(|| format!("creating {}", o.target.display()))?;
        }
    }
    // An isolated map's view of the shared base: mounted for the overlay's mount, which keeps
    // its own clone of it, then detached (nothing is left mounted at LAYER/lower).
    let lower = o.lower();
    if let Some(m) = o.lower_map() {
        if mounted_any(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default(), &lower) {
            super::idmapped::detach(&lower)?; // a killed run's
        }
        super::idmapped::mount_idmapped(&o.base, &lower, &m)
            .with_context(|| format!("mounting the id-mapped view of the shared base for {}", o.target.display()))?;
    }
    let r = runner
        .run(&mount_cmd_labelled(o, context), &mut |_| {})
        .map_err(anyhow::Error::new)
        .with_context(|| format!("mounting the overlay at {}", o.target.display()));
    if o.mapped_lower {
        let d = super::idmapped::detach(&lower);
        r?;
        d?;
    } else {
        r?;
    }
    if !is_mounted(&o.target) {
        bail!("mounted {}, but the host's mount table does not show it", o.target.display());
    }
    Ok(true)
}

/// Unmounts the overlay at `target` (lazily if it is busy).
pub fn unmount(runner: &dyn Runner, target: &Path) -> Result<()> {
    let t = target.display().to_string();
    if runner.run(&cmd(vec!["umount".into(), t.clone()]), &mut |_| {}).is_err() && is_mounted(target) {
        runner
            .run(&cmd(vec!["umount".into(), "--lazy".into(), t]), &mut |_| {})
            .map_err(anyhow::Error::new)
            .with_context(|| format!("unmounting {}", target.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_overlays_by_mount_point_and_type() {
        let info = "27 1 254:0 / / rw shared:1 - ext4 /dev/vda rw\n\
                    90 27 0:50 / /var/lib/pool/web\\0401 rw shared:5 - overlay overlay rw,lowerdir=/x\n\
                    91 27 0:51 / /var/lib/pool/b rw - tmpfs tmpfs rw\n";
        assert!(mounted_in(info, Path::new("/var/lib/pool/web 1")));
        assert!(!mounted_in(info, Path::new("/var/lib/pool/b")), "not an overlay");
        assert!(!mounted_in(info, Path::new("/var/lib/pool")));
        assert_eq!(peer_group(info, Path::new("/var/lib/pool/x")).as_deref(), Some("shared:1"));
        assert_eq!(peer_group(info, Path::new("/var/lib/pool/web 1/etc")).as_deref(), Some("shared:5"));
        assert_eq!(peer_group(info, Path::new("/var/lib/pool/b/etc")), None, "a private mount");
    }

    #[test]
    fn reads_the_context_of_an_overlay_mount() {
        let info = "90 27 0:50 / /p/web1 rw,relatime shared:5 - overlay overlay rw,context=\"system_u:object_r:container_file_t:s0:c1,c2\",lowerdir=/b,upperdir=/u,workdir=/w\n\
                    91 27 0:51 / /p/web2 rw shared:6 - overlay overlay rw,lowerdir=/b,upperdir=/u2,workdir=/w2\n\
                    92 27 0:52 / /p/web3 rw shared:7 - overlay overlay rw,rootcontext=a:b:c:s0,context=x:y:z:s0,lowerdir=/b\n\
                    93 27 0:53 / /p/t rw - tmpfs tmpfs rw,context=\"a:b:c:s0:c1,c2\"\n";
        assert_eq!(
            context_in(info, Path::new("/p/web1")),
            Some(Some("system_u:object_r:container_file_t:s0:c1,c2".into()))
        );
        assert_eq!(context_in(info, Path::new("/p/web2")), Some(None), "mounted without a label");
        assert_eq!(
            context_in(info, Path::new("/p/web3")),
            Some(Some("x:y:z:s0".into())),
            "rootcontext= is another option"
        );
        assert_eq!(context_in(info, Path::new("/p/t")), None, "not an overlay");
        assert_eq!(context_in(info, Path::new("/p/none")), None);
    }

    #[test]
    fn the_labelled_mount_quotes_the_context() {
        let o = Overlay::new(Path::new("/p"), "c1", Path::new("/cache/k"), "k", None, false);
        let c = crate::mcs::Context::parse("system_u:object_r:container_file_t:s0:c3,c12").unwrap();
        let argv = mount_cmd_labelled(&o, Some(&c)).argv();
        assert!(
            argv.iter().any(|a| a.ends_with(
                ",workdir=/p/.lxcprov/layers/c1/work,context=\"system_u:object_r:container_file_t:s0:c3,c12\""
            )),
            "{argv:?}"
        );
        assert_eq!(mount_cmd_labelled(&o, None).argv(), mount_cmd(&o).argv());
    }

    #[test]
    fn the_mount_command_is_argv_with_the_three_layers() {
        let o = Overlay::new(Path::new("/p"), "c1", Path::new("/cache/k"), "k", None, false);
        let argv = mount_cmd(&o).argv();
        assert!(argv.iter().any(|a| a == "lowerdir=/p/.lxcprov/bases/k@host,upperdir=/p/.lxcprov/layers/c1/upper,workdir=/p/.lxcprov/layers/c1/work"), "{argv:?}");
        assert_eq!(argv.last().unwrap(), "/p/c1");
    }
}
