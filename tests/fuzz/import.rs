//! The import property, `tar_import`: generated archives imported the way
//! `lxcprov bootstrap --rootfs-from` does, by the real bootstrap executor, with a snapshot of
//! everything around the pool compared before and after.

use super::common;
use super::harness::{fuzz, total_cases, Stats};
use super::profiles::FULL_PROFILE;
use super::tarballs::{archive, build_tar, Archive};
use lxcprov::exec::{Cmd, CommandError, Runner, SystemRunner};
use lxcprov::name::Name;
use lxcprov::profile;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Everything about one path that an escape could change (not atime).
#[derive(Debug, PartialEq, Eq, Clone)]
struct Inode {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    nlink: u64,
    ino: u64,
    content: Option<Vec<u8>>,
    target: Option<PathBuf>,
    xattrs: Vec<String>,
}

fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "socket"
    }
}

fn xattrs(p: &Path) -> Vec<String> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: c is a NUL-terminated path, buf is writable for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return vec![];
    }
    buf.truncate(n as usize);
    buf.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

/// Every path under `root` except those under `skip`, with its inode data.
fn snapshot(root: &Path, skip: &Path) -> BTreeMap<PathBuf, Inode> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        let ft = m.file_type();
        let dir = ft.is_dir();
        out.insert(
            p.clone(),
            Inode {
                kind: kind(ft),
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                size: if dir { 0 } else { m.size() },
                mtime: (m.mtime(), m.mtime_nsec()),
                nlink: m.nlink(),
                ino: m.ino(),
                content: ft.is_file().then(|| std::fs::read(&p).unwrap_or_default()),
                target: std::fs::read_link(&p).ok(),
                xattrs: xattrs(&p),
            },
        );
        if dir && p != skip {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// The paths under `root` (not following symlinks), with their metadata.
fn walk(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = vec![];
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if m.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                todo.push(e.path());
            }
        }
        out.push((p, m));
    }
    out
}

/// The real runner, checking after each command what the harness holds of the tree while
/// it is assembled: the partial directory stays a directory no group or other user can
/// reach. A violation is recorded (the last mode seen) for the case to fail on.
struct Watchful<'a> {
    inner: SystemRunner,
    partial: &'a Path,
    /// How many commands ended with the partial tree there to inspect, and the mode of a
    /// partial tree found group- or other-accessible (or not a directory).
    seen: Mutex<(u64, Option<u32>)>,
}

impl<'a> Watchful<'a> {
    fn new(partial: &'a Path) -> Self {
        Watchful { inner: SystemRunner::default(), partial, seen: Mutex::new((0, None)) }
    }

    fn verdict(&self) -> (u64, Option<u32>) {
        *self.seen.lock().unwrap()
    }
}

impl Runner for Watchful<'_> {
    fn run(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<(), CommandError> {
        let r = self.inner.run(cmd, on_line);
        // While the tree is assembled, host users must not reach into it.
        if let Ok(m) = std::fs::symlink_metadata(self.partial) {
            let mut seen = self.seen.lock().unwrap();
            seen.0 += 1;
            if m.mode() & 0o077 != 0 || !m.is_dir() {
                seen.1 = Some(m.mode());
            }
        }
        r
    }
}

/// Imports `a` as `lxcprov bootstrap c1 --rootfs-from T/in.tar` does, and checks.
fn tar_case(a: &Archive, st: &mut Stats) -> Result<(), TestCaseError> {
    let t0 = Instant::now();
    // On a tmpfs where there is one: the guest configuration fsyncs each file it writes.
    let base = std::env::var_os("FUZZ_TMPDIR").map(PathBuf::from).unwrap_or_else(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    });
    let tmp = tempfile::Builder::new().prefix("lxcprov-fuzz-").tempdir_in(base).unwrap();
    let troot = tmp.path().to_path_buf();
    let sentinel = troot.join("sentinel");
    std::fs::create_dir_all(sentinel.join("dir")).unwrap();
    std::fs::write(sentinel.join("secret"), "host secret\n").unwrap();
    std::fs::write(sentinel.join("pub"), "public\n").unwrap();
    std::fs::write(sentinel.join("dir/file"), "inside\n").unwrap();
    std::os::unix::fs::symlink("/etc", sentinel.join("etc-link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sentinel.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let ball = troot.join("in.tar");
    std::fs::write(&ball, build_tar(a, &sentinel, &troot)).unwrap();
    let paths =
        lxcprov::paths::Paths { pool: troot.join("pool"), cache: troot.join("cache"), state: troot.join("state") };
    let before = snapshot(&troot, &paths.pool);

    let name = Name::parse("c1").unwrap();
    let p = profile::parse(FULL_PROFILE, "full.yaml").unwrap();
    let distro = lxcprov::distro::lookup(&p.distro).unwrap();
    let tool = lxcprov::bootstrap::choose_tool(distro.installer, None, &|_| true).unwrap();
    let opts = lxcprov::bootstrap::Options { import: Some(ball.clone()), ..Default::default() };
    let plan = lxcprov::bootstrap::plan(&paths, &name, "full", &p, &distro, tool, &opts)
        .map_err(|e| TestCaseError::fail(format!("plan: {e:#}")))?;
    let strict_window = match &plan.source {
        lxcprov::bootstrap::Source::Import { cmd, .. } => cmd.args.iter().any(|a| a == "--no-overwrite-dir"),
        other => panic!("an import plan with source {}", other.kind()),
    };
    let hash = "$6$fuzzsalt$0123456789abcdef";

    // The real executor, as `lxcprov bootstrap` runs it: it clears a leftover partial tree,
    // ensures the private pool, runs the build steps (the commands through `runner`) and, on
    // failure, removes the partial tree.
    let runner = Watchful::new(&plan.partial);
    let result = lxcprov::bootstrap::build(&plan, &runner, hash, &lxcprov::output::Silent);
    let ok = match &result {
        Ok(_) => {
            std::fs::rename(&plan.partial, &plan.rootfs).unwrap();
            st.count("imported");
            true
        }
        Err(e) => {
            if std::fs::symlink_metadata(&plan.partial).is_ok() {
                return Err(TestCaseError::fail(format!(
                    "the partial tree {} is left after a failed build: {e:#}",
                    plan.partial.display()
                )));
            }
            st.count(if format!("{e:#}").contains("`tar") { "refused by tar" } else { "refused after tar" });
            false
        }
    };
    let (checked, exposed) = runner.verdict();
    prop_assert!(checked > 0, "no command ran while the partial tree existed: the mode check never looked");
    if let Some(m) = exposed {
        // KNOWN FINDING (issue 14, class 7): a member named `./` sets the partial directory's
        // mode and owner (0777, any uid) until normalise_tree runs, against the README's
        // "assembled in POOL/.NAME.partial (mode 0700)". GNU tar's `--no-overwrite-dir` in
        // bootstrap's import command fixes it; this check becomes fatal once that is there.
        if strict_window {
            return Err(TestCaseError::fail(format!(
                "the partial tree was mode {m:o} after tar (reachable by host users while it is assembled)"
            )));
        }
        st.count("KNOWN FINDING: a ./ member changed the partial directory's mode (tar needs --no-overwrite-dir)");
    }

    // Nothing outside POOL/NAME changed.
    let after = snapshot(&troot, &paths.pool);
    for (path, was) in &before {
        match after.get(path) {
            None => return Err(TestCaseError::fail(format!("{} was removed", path.display()))),
            // The temporary root gains the pool: only its mode and owner must stay.
            Some(now) if path == &troot => {
                prop_assert_eq!((now.mode, now.uid, now.gid), (was.mode, was.uid, was.gid));
            }
            Some(now) if now != was => {
                return Err(TestCaseError::fail(format!("{} changed: {was:?} -> {now:?}", path.display())))
            }
            _ => {}
        }
    }
    let pool_entries: Vec<String> = std::fs::read_dir(&paths.pool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: Vec<String> = if ok { vec!["c1".into()] } else { vec![] };
    prop_assert_eq!(&pool_entries, &want, "the pool holds more than POOL/NAME");
    for path in after.keys() {
        if !before.contains_key(path) && !path.starts_with(&paths.pool) {
            return Err(TestCaseError::fail(format!("{} was created outside the pool", path.display())));
        }
    }
    let pm = std::fs::symlink_metadata(&paths.pool).unwrap();
    prop_assert_eq!((pm.mode() & 0o7777, pm.uid(), pm.gid()), (0o700, 0, 0), "pool mode and owner");

    if ok {
        let root = &plan.rootfs;
        let rm = std::fs::symlink_metadata(root).unwrap();
        prop_assert!(rm.is_dir());
        prop_assert_eq!((rm.mode() & 0o7777, rm.uid(), rm.gid()), (0o755, 0, 0), "the tree's root");
        let outside: std::collections::BTreeSet<(u64, u64)> = {
            let dev = std::fs::symlink_metadata(&troot).unwrap().dev();
            before.values().filter(|i| i.kind != "dir").map(|i| (dev, i.ino)).collect()
        };
        for (path, m) in walk(root) {
            let ft = m.file_type();
            prop_assert!(
                !ft.is_char_device() && !ft.is_block_device(),
                "a device node is left in the tree: {}",
                path.display()
            );
            prop_assert!(
                ft.is_dir() || !outside.contains(&(m.dev(), m.ino())),
                "{} shares its inode with a file outside the tree",
                path.display()
            );
            if m.mode() & 0o6000 != 0 && ft.is_file() {
                st.count("setuid/setgid files kept (as documented)");
            }
            if ft.is_dir() && m.mode() & 0o002 != 0 && path != *root {
                st.count("world-writable directories kept inside trees (as documented)");
            }
        }
    }
    let took = t0.elapsed();
    prop_assert!(took < Duration::from_secs(10), "one tar case took {:?}", took);
    Ok(())
}

#[test]
fn tar_import() {
    if !common::is_root() {
        let strict = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
            || std::env::var("LXCPROV_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
        assert!(!strict, "the tar import fuzz property needs root (--same-owner, device nodes): run it as root in CI");
        eprintln!("SKIPPED: the tar import fuzz property needs root");
        return;
    }
    if !common::require_tool("tar") {
        return;
    }
    let cases = (total_cases() / 10).max(1);
    fuzz("tar_import", cases, archive(), tar_case);
}
