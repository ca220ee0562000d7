//! Facts about the host's security modules.

/// Is SELinux enabled (enforcing or permissive)?
pub fn selinux_enabled() -> bool {
    !matches!(selinux::current_mode(), selinux::SELinuxMode::NotRunning)
}

/// Is AppArmor enabled?
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled").map(|s| s.trim() == "Y").unwrap_or(false)
        && std::fs::read_to_string("/sys/kernel/security/lsm").map(|s| s.contains("apparmor")).unwrap_or(false)
}

/// Is PID 1 systemd (read from `{proc}/1/comm`)?
pub fn pid1_is_systemd(proc: &std::path::Path) -> bool {
    std::fs::read_to_string(proc.join("1/comm")).is_ok_and(|c| c.trim() == "systemd")
}

/// The SELinux policy type from `{etc}/selinux/config` (`SELINUXTYPE=`), default `default`.
pub fn selinux_type(etc: &std::path::Path) -> String {
    std::fs::read_to_string(etc.join("selinux/config"))
        .ok()
        .and_then(|t| parse_selinux_type(&t))
        .unwrap_or_else(|| "default".into())
}

/// `SELINUXTYPE=...` from the text of `/etc/selinux/config` (comments and quotes allowed).
/// A value that is not a plain directory name (`..`, slashes) counts as unset.
pub fn parse_selinux_type(config: &str) -> Option<String> {
    let value = config.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "SELINUXTYPE").then(|| v.trim().trim_matches(['"', '\'']).to_string())
    })?;
    let valid = !value.is_empty()
        && value != "."
        && value != ".."
        && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    valid.then_some(value)
}

/// `{etc}/selinux/TYPE/contexts/lxc_contexts`.
pub fn lxc_contexts_path(etc: &std::path::Path) -> std::path::PathBuf {
    etc.join("selinux").join(selinux_type(etc)).join("contexts/lxc_contexts")
}

/// A `key = "value"` entry of `lxc_contexts` (keys: process, file, content, sandbox_*).
pub fn lxc_context(text: &str, key: &str) -> Option<String> {
    text.lines().map(str::trim).filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// The label a container's root filesystem needs: the `file` context of `lxc_contexts`
/// (readable by every container: dynamic labels), or that type with the container's own
/// level (static labels: files separated as well as processes).
pub fn rootfs_label(lxc_contexts: &str, static_label: Option<&str>) -> Option<String> {
    let file = lxc_context(lxc_contexts, "file")?;
    match static_label {
        None => Some(file),
        Some(l) => {
            let (_, level) = crate::mcs::split_context(l)?;
            let mut parts: Vec<&str> = file.splitn(4, ':').collect();
            parts.truncate(3);
            Some(format!("{}:{level}", parts.join(":")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LXC: &str = "process = \"system_u:system_r:container_t:s0\"\ncontent = \"system_u:object_r:virt_var_lib_t:s0\"\nfile = \"system_u:object_r:container_file_t:s0\"\n";

    #[test]
    fn rootfs_labels() {
        assert_eq!(rootfs_label(LXC, None).as_deref(), Some("system_u:object_r:container_file_t:s0"));
        assert_eq!(
            rootfs_label(LXC, Some("system_u:system_r:container_t:s0:c10,c20")).as_deref(),
            Some("system_u:object_r:container_file_t:s0:c10,c20")
        );
        assert_eq!(rootfs_label("", None), None);
    }

    #[test]
    fn reads_policy_type() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("selinux")).unwrap();
        std::fs::write(d.path().join("selinux/config"), "SELINUX=enforcing\nSELINUXTYPE=targeted\n").unwrap();
        assert_eq!(lxc_contexts_path(d.path()), d.path().join("selinux/targeted/contexts/lxc_contexts"));
    }
}
