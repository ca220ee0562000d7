//! Ctrl-C, SIGTERM and SIGHUP handling. The first one sets a flag instead of killing lxcprov, so the
//! step in progress can remove what it created (a partial root filesystem, a domain) and
//! say so. Children share the terminal's process group and receive SIGINT themselves; the
//! runner stops a running child on SIGTERM/SIGHUP. An interrupted run exits 130.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Installs the handler (once, at start).
pub fn install() {
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: the user insists.
            eprintln!("lxcprov: interrupted twice, exiting without cleanup");
            std::process::exit(130);
        }
        eprintln!("lxcprov: interrupted; cleaning up (press Ctrl-C again to exit at once)");
    });
}

/// Has the user asked to stop?
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The error of a run stopped by Ctrl-C, SIGTERM or SIGHUP (exit status 130).
#[derive(Debug, thiserror::Error)]
#[error("interrupted (Ctrl-C, SIGTERM or SIGHUP)")]
pub struct Interrupted;

/// Fails with [`Interrupted`] when an interrupt arrived.
pub fn check() -> anyhow::Result<()> {
    if requested() {
        return Err(Interrupted.into());
    }
    Ok(())
}
