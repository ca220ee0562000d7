//! Helpers shared by the integration tests: run the real binary with a clean environment.
#![allow(dead_code)]

pub mod json;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_lxcprov"))
}

/// A command for the binary that ignores the host's /etc/lxcprov/profiles and libvirt URI,
/// with pool, cache and state under `dir`.
pub fn lxcprov(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.env_remove("LIBVIRT_DEFAULT_URI")
        .env("LXCPROV_PROFILE_DIR", dir.join("no-system-profiles"))
        .env("LXCPROV_POOL_DIR", dir.join("pool"))
        .env("LXCPROV_CACHE_DIR", dir.join("cache"))
        .env("LXCPROV_STATE_DIR", dir.join("state"))
        // Rendered XML does not depend on whether this host runs lxcfs; the test of the
        // /proc views points this at the real one.
        .env("LXCPROV_LXCFS_DIR", dir.join("no-lxcfs"))
        // The default (auto) follows the host (is the libvirt hook installed?): tests say
        // which storage they test; the overlay tests pass --storage overlay.
        // LXCPROV_TEST_STORAGE=auto (with the hook installed) runs the others in overlay
        // storage wherever it applies (imports stay copies).
        .env("LXCPROV_STORAGE", std::env::var("LXCPROV_TEST_STORAGE").unwrap_or_else(|_| "copy".into()))
        .stdin(Stdio::null());
    c
}

pub fn run(dir: &Path, args: &[&str]) -> Output {
    lxcprov(dir).args(args).output().expect("run lxcprov")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Is a tool required here? In CI (CI=true) or with LXCPROV_REQUIRE_TOOLS=1 a missing tool
/// fails the test; elsewhere the test says it skipped.
pub fn require_tool(tool: &str) -> bool {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    if found {
        return true;
    }
    let strict = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
        || std::env::var("LXCPROV_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
    if strict {
        panic!("{tool} is required for this test (CI): install it (scripts/setup-host.sh)");
    }
    eprintln!("SKIPPED: {tool} not installed");
    false
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc_geteuid() == 0 }
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
