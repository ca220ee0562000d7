//! Root tier, `doctor`: it proves that libvirtd calls the LXC hook, rather than guessing
//! from the file's age, and its probe leaves nothing.

use super::*;

/// Keeps the hook file itself (its inode, so its birth time, which `doctor` compares with
/// libvirtd's start) under a second name, and renames it back over whatever a test left at
/// the hook's path when it drops.
struct KeepHookFile(String);
impl KeepHookFile {
    fn keep() -> KeepHookFile {
        let keep = format!("{HOST_HOOK}.lxcprov-it-kept");
        let _ = std::fs::remove_file(&keep);
        std::fs::hard_link(HOST_HOOK, &keep).unwrap();
        KeepHookFile(keep)
    }
}
impl Drop for KeepHookFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::rename(&self.0, HOST_HOOK) {
            eprintln!("WARNING: could not put {HOST_HOOK} back from {}: {e}", self.0);
        }
    }
}

/// `doctor` proves whether libvirtd calls the hook rather than guessing from the file's age:
/// with the hook file re-created after libvirtd started (as a test or an admin may do; the
/// same text, so libvirtd's behaviour does not change), a probe domain's start shows the
/// hook ran, and doctor says so instead of "never calls it". Nothing of the probe is left.
#[test]
#[ignore = "root tier: needs root and libvirtd (scripts/test.sh)"]
fn doctor_proves_that_libvirtd_calls_a_hook_file_newer_than_itself() {
    preflight();
    let text = std::fs::read_to_string(HOST_HOOK).unwrap_or_default();
    assert!(
        text.contains("# lxcprov libvirt LXC hook") && text.contains("\nexec "),
        "{HOST_HOOK} is not an active lxcprov hook: run scripts/quickstart.sh (or lxcprov hook install)"
    );
    // The file libvirtd found is kept (a hard link) and put back at the end, failed or not:
    // its birth time stays older than libvirtd, as it was.
    let _hook = KeepHookFile::keep();
    // Re-created, not rewritten: a new file (new birth time), the same text and mode.
    let mode = std::fs::metadata(HOST_HOOK).unwrap().permissions().mode();
    let tmp = format!("{HOST_HOOK}.lxcprov-it-{}", std::process::id());
    std::fs::write(&tmp, &text).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).unwrap();
    std::fs::rename(&tmp, HOST_HOOK).unwrap();
    let d = workdir("doctor-hook");
    let o = lx(d.path(), &["--json", "doctor"]);
    let recs = records(&o.stdout);
    let item = recs.iter().filter_map(Record::as_item).find(|i| i.id == "lxc_hook").expect("an lxc_hook item");
    let detail = &item.detail;
    assert_eq!(item.level, ItemLevel::Ok, "{item:?}");
    assert!(detail.contains("libvirtd calls it") && detail.contains("probe domain"), "{detail}");
    assert!(!detail.contains("never calls") && !detail.contains("does not call"), "{detail}");
    // The probe leaves no domain and no scratch directory.
    let o = virsh(&["list", "--all", "--name"]);
    assert!(!stdout(&o).contains("lxcprov-hookprobe-"), "{}", stdout(&o));
    let state: Vec<_> = [d.path().to_path_buf(), d.path().join("state")]
        .iter()
        .flat_map(|p| std::fs::read_dir(p).map(|r| r.flatten().collect::<Vec<_>>()).unwrap_or_default())
        .collect();
    assert!(
        state.iter().all(|e| !e.file_name().to_string_lossy().contains("hookprobe")),
        "{:?}",
        state.iter().map(|e| e.file_name()).collect::<Vec<_>>()
    );
}
