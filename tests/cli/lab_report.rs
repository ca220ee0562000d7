//! `lab report LAB --html FILE` without root: what it refuses, before it reads libvirt or
//! writes anything.

use super::*;

/// The files under `dir`, relative, sorted (to show nothing was written).
fn files(dir: &Path) -> Vec<String> {
    let mut v = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            v.push(e.path().strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    v.sort();
    v
}

fn report(dir: &Path, args: &[&str]) -> std::process::Output {
    lxcprov(dir).current_dir(dir).args(args).output().unwrap()
}

#[test]
fn lab_report_refuses_an_unknown_lab_and_a_file_it_must_not_write() {
    let d = tempfile::tempdir().unwrap();
    let o = report(d.path(), &["lab", "report", "nolab", "--html", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no lab named nolab"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    let o = report(d.path(), &["--json", "lab", "report", "nolab", "--html", "x"]);
    assert_eq!(o.status.code(), Some(2));
    let e = records(&o.stdout).last().and_then(|r| r.as_error().cloned()).expect("an error record");
    assert!(e.message.contains("no lab named nolab"), "{e:?}");
    assert!(files(d.path()).is_empty(), "{:?}", files(d.path()));

    // A lab that exists: FILE is checked before anything is read of its students.
    let labs = d.path().join("state/labs");
    std::fs::create_dir_all(&labs).unwrap();
    std::fs::write(
        labs.join("plain.json"),
        r#"{"name":"plain","profile":"web","security":"none","prefix":"s","isolate_students":false,"password_dir":"/x","members":["plain-s01"]}"#,
    )
    .unwrap();
    let before = files(d.path());
    let o = report(d.path(), &["lab", "report", "plain", "--html", "no/such/dir/report.html"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist") && stderr(&o).contains("Nothing was written"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    assert_eq!(files(d.path()), before, "nothing written, no directory made");
    // A symbolic link is never followed nor replaced, whatever it points at.
    std::fs::write(d.path().join("elsewhere.html"), "keep").unwrap();
    std::os::unix::fs::symlink(d.path().join("elsewhere.html"), d.path().join("r.html")).unwrap();
    let o = report(d.path(), &["lab", "report", "plain", "--html", "r.html"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("symbolic link"), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(d.path().join("r.html")).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(d.path().join("elsewhere.html")).unwrap(), "keep");
    std::fs::create_dir(d.path().join("dir.html")).unwrap();
    let o = report(d.path(), &["lab", "report", "plain", "--html", "dir.html"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    // --html is required.
    let o = report(d.path(), &["lab", "report", "plain"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--html"), "{}", stderr(&o));
}
