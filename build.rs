//! Builds the seccomp init shim (`crates/lxcprov-init`) and hands it to lxcprov to embed
//! (`include_bytes!`, see `src/seccomp/host.rs`), so that one `cargo build` (or `cargo
//! install --path .`) gives an lxcprov whose default `create` works.
//!
//! The shim runs inside the container before its init, where the host's libc and loader may
//! be missing, so it must be statically linked. Only `cargo rustc` can ask that of one
//! crate (`-C target-feature=+crt-static`; the musl target is not installable here), so this
//! runs a nested `cargo rustc` with a target directory of its own under `OUT_DIR` (never the
//! outer build's, whose lock cargo holds). `--locked`: the outer build already resolved (or
//! enforced) `Cargo.lock`, and with every crate of it downloaded the nested build needs no
//! network. The jobserver of the outer build is inherited (`CARGO_MAKEFLAGS`), so the nested
//! build does not add jobs. The result is checked to be static with lxcprov's own check.

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "src/seccomp/elf.rs"]
mod elf;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("cargo sets {k} for build scripts"))
}

fn main() {
    let manifest = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env("OUT_DIR"));
    for p in ["build.rs", "src/seccomp/elf.rs", "crates/lxcprov-init", "Cargo.lock", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={p}");
    }
    let release = env("PROFILE") == "release";
    let target_dir = out.join("shim-target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&manifest)
        .args(["rustc", "--locked", "--quiet", "-p", "lxcprov-init", "--bin", "lxcprov-init"])
        .arg("--manifest-path")
        .arg(manifest.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    if release {
        cmd.arg("--release");
    }
    // Cross builds: the shim runs where lxcprov runs.
    let (target, host) = (env("TARGET"), env("HOST"));
    if target != host {
        cmd.args(["--target", &target]);
    }
    // `cargo clippy` lints through a workspace wrapper; the shim is linted on its own
    // (scripts/test.sh), and here it must really be compiled.
    cmd.env_remove("RUSTC_WORKSPACE_WRAPPER").env_remove("CLIPPY_ARGS").env_remove("CARGO_TARGET_DIR");
    // No debug information: the shim is copied into every container's seccomp directory.
    cmd.args(["--", "-C", "target-feature=+crt-static", "-C", "strip=debuginfo"]);
    let status = cmd.status().unwrap_or_else(|e| panic!("running cargo to build the init shim: {e}"));
    assert!(status.success(), "building the seccomp init shim (crates/lxcprov-init) failed: {status}");

    let profile_dir = if release { "release" } else { "debug" };
    let built = if target != host {
        target_dir.join(&target).join(profile_dir).join("lxcprov-init")
    } else {
        target_dir.join(profile_dir).join("lxcprov-init")
    };
    let bytes = std::fs::read(&built).unwrap_or_else(|e| panic!("reading {}: {e}", built.display()));
    match elf::is_static_elf(&bytes) {
        Ok(true) => {}
        Ok(false) => panic!("{} is dynamically linked: the init shim must be static", built.display()),
        Err(e) => panic!("{}: {e}", built.display()),
    }
    write_if_changed(&out.join("lxcprov-init"), &bytes);
}

/// Leaves the file (and its mtime) alone when the bytes are the same.
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return;
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}
