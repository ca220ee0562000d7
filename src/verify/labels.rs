//! [`ProcLabels`]: the production [`LabelSource`].

use super::{HostRoot, LabelSource};
use std::borrow::Borrow;
use std::path::{Path, PathBuf};

/// Labels from the running kernel: process labels from `{proc}/PID/attr/current` (SELinux
/// or AppArmor, whichever is the active LSM), file labels with `getfilecon`, the mode with
/// `security_getenforce`. Reading other processes' labels needs root.
#[derive(Clone, Debug)]
pub struct ProcLabels {
    proc: PathBuf,
}

impl ProcLabels {
    /// Reads `/proc` under `host` (a `HostRoot` or a `&HostRoot`).
    pub fn new(host: impl Borrow<HostRoot>) -> ProcLabels {
        ProcLabels { proc: host.borrow().proc() }
    }
}

/// The label text without the trailing NUL/newline; `None` when empty.
fn clean(bytes: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(bytes);
    let s = s.trim_end_matches(['\0', '\n']).trim();
    (!s.is_empty()).then(|| s.to_string())
}

impl LabelSource for ProcLabels {
    /// `None` on any error, e.g. EINVAL when no LSM is active (this project's dev host).
    fn process_label(&self, pid: u32) -> Option<String> {
        let bytes = std::fs::read(self.proc.join(pid.to_string()).join("attr/current")).ok()?;
        clean(&bytes)
    }

    /// The raw (untranslated, so `mcstrans` cannot turn `s0` into `SystemLow`) label of the
    /// path, following symlinks as the mount of the rootfs does. `None` on any error.
    fn file_label(&self, path: &Path) -> Option<String> {
        let ctx = selinux::SecurityContext::of_path(path, true, true).ok()??;
        clean(ctx.as_bytes())
    }

    fn enforcing(&self) -> Option<bool> {
        match selinux::current_mode() {
            selinux::SELinuxMode::Enforcing => Some(true),
            selinux::SELinuxMode::Permissive => Some(false),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_labels_from_attr_current() {
        let dir = tempfile::tempdir().unwrap();
        let attr = dir.path().join("proc/42/attr");
        std::fs::create_dir_all(&attr).unwrap();
        std::fs::write(attr.join("current"), b"system_u:system_r:container_t:s0:c1,c2\0").unwrap();
        std::fs::create_dir_all(dir.path().join("proc/43/attr")).unwrap();
        std::fs::write(dir.path().join("proc/43/attr/current"), b"\0").unwrap();
        let l = ProcLabels::new(HostRoot::new(dir.path()));
        assert_eq!(l.process_label(42).as_deref(), Some("system_u:system_r:container_t:s0:c1,c2"));
        assert_eq!(l.process_label(43), None);
        assert_eq!(l.process_label(44), None);
    }
}
