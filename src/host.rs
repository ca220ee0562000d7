//! Facts about the host's security modules.

/// Is SELinux enabled (enforcing or permissive)?
pub fn selinux_enabled() -> bool {
    !matches!(selinux::current_mode(), selinux::SELinuxMode::NotRunning)
}

/// Is AppArmor enabled?
pub fn apparmor_enabled() -> bool {
    std::fs::read_to_string("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
        && std::fs::read_to_string("/sys/kernel/security/lsm").map(|s| s.contains("apparmor")).unwrap_or(false)
}
