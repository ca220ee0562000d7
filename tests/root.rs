//! Root tier: real dnf, debootstrap, libvirtd and containers on this machine.
//!
//! Every test here is `#[ignore]`d so the default `cargo test` needs no root. `scripts/test.sh`
//! (and so `.ci/run`) runs them with `cargo test --test root -- --ignored --test-threads=1`,
//! after `scripts/setup-host.sh` has installed the tools and started libvirtd. Once run,
//! a missing tool, missing root or an unreachable libvirtd FAILS; nothing is skipped.
//! Domains and networks use the prefix `lxcprov-it-` and are cleaned before and after.
//!
//! The tests live in `tests/root/`, one file per feature; their helpers (work directories,
//! virsh, profiles, the busybox tree, the signed RPM repositories, checks) are in
//! `tests/root/fixtures.rs`, which every module reaches through `use super::*`. A test's
//! full name carries its module: `cargo test --test root -- --ignored lifecycle::`.

mod common;
#[path = "root/fixtures.rs"]
mod fixtures;

#[path = "root/debian.rs"]
mod debian;
#[path = "root/doctor.rs"]
mod doctor;
#[path = "root/enter.rs"]
mod enter;
#[path = "root/exec.rs"]
mod exec;
#[path = "root/idmap.rs"]
mod idmap;
#[path = "root/lab.rs"]
mod lab;
#[path = "root/lifecycle.rs"]
mod lifecycle;
#[path = "root/overlay.rs"]
mod overlay;
#[path = "root/package.rs"]
mod package;
#[path = "root/rpm.rs"]
mod rpm;
#[path = "root/seccomp.rs"]
mod seccomp;
#[path = "root/selfservice.rs"]
mod selfservice;

use common::json::*;
use common::*;
use fixtures::*;

/// Root, the tools the tier drives, and a libvirtd that answers: checked first by every
/// test that needs them, so a host without them fails at once with what to do.
fn preflight() {
    assert!(is_root(), "the root tier must run as root");
    for tool in ["virsh", "debootstrap", "dnf", "rpmbuild", "createrepo_c", "gpg", "busybox"] {
        assert!(
            std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
                .unwrap_or(false),
            "{tool} is missing: run scripts/setup-host.sh"
        );
    }
    let o = Command::new("virsh").args(["-c", URI, "version"]).output().unwrap();
    assert!(
        o.status.success(),
        "libvirtd does not answer on {URI}: run scripts/setup-host.sh\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
