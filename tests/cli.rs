//! The binary as a user runs it, without root: profiles, render, dry-run, bad input.

mod common;
#[path = "cli/lab_report.rs"]
mod lab_report;
use common::json::*;
use common::*;
use std::path::Path;

const PROFILES: &[&str] = &["hardened", "minimal", "paper", "web"];
const DISTROS: &[&str] = &["centos7", "centos-stream9", "almalinux9", "rockylinux9", "fedora", "debian12", "ubuntu"];
const SECURITY: &[&str] = &["selinux", "apparmor", "none"];

fn validate(xml: &str, kind: &str, dir: &Path) -> Result<(), String> {
    let f = dir.join(format!("doc-{kind}.xml"));
    std::fs::write(&f, xml).unwrap();
    let o = std::process::Command::new("virt-xml-validate").arg(&f).arg(kind).output().unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}\n{xml}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
    }
}

#[test]
fn golden_domain_xml_for_each_builtin_profile() {
    let d = tempfile::tempdir().unwrap();
    for p in PROFILES {
        let o = run(
            d.path(),
            &[
                "render",
                "web1",
                "--profile",
                p,
                "--pool-dir",
                "/var/lib/libvirt/filesystems",
                "--state-dir",
                "/var/lib/lxcprov",
            ],
        );
        assert!(o.status.success(), "{p}: {}", stderr(&o));
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(format!("{p}.xml"));
        if std::env::var("UPDATE_GOLDEN").is_ok() {
            std::fs::write(&golden, &o.stdout).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}: run UPDATE_GOLDEN=1 cargo test", golden.display()));
        assert_eq!(stdout(&o), want, "rendered XML for {p} differs from {}", golden.display());
    }
}

#[test]
fn every_profile_distro_and_security_mode_validates_against_libvirt_schema() {
    if !require_tool("virt-xml-validate") || !require_tool("xmllint") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut n = 0;
    for p in PROFILES {
        for distro in DISTROS {
            for sec in SECURITY {
                let o = run(d.path(), &["render", "c1", "--profile", p, "--distro", distro, "--security", sec]);
                if *p == "paper" && *sec == "none" {
                    // No user namespace, sys_admin kept: without MAC that is host root.
                    assert_eq!(o.status.code(), Some(2), "{p}/{distro}/{sec}: {}", stdout(&o));
                    assert!(stderr(&o).contains("CVE-2022-0492"), "{}", stderr(&o));
                    continue;
                }
                assert!(o.status.success(), "{p}/{distro}/{sec}: {}", stderr(&o));
                validate(&stdout(&o), "domain", d.path()).unwrap_or_else(|e| panic!("{p}/{distro}/{sec}: {e}"));
                n += 1;
            }
        }
    }
    let o = run(d.path(), &["render", "c1", "--profile", "web", "--network"]);
    assert!(o.status.success());
    validate(&stdout(&o), "network", d.path()).unwrap();
    assert_eq!(n, PROFILES.len() * DISTROS.len() * SECURITY.len() - DISTROS.len(), "all but paper under none");
}

#[test]
fn hostile_profile_strings_give_valid_xml_or_an_error() {
    let d = tempfile::tempdir().unwrap();
    let hostile = "x <y> & \"q\" 'a' ]]> <!-- </description> line1\nline2";
    let prof = d.path().join("evil.yaml");
    std::fs::write(
        &prof,
        format!(
            "description: {}\ninit:\n  path: /sbin/init\n  args: [{}, '--x=<&>']\nsecurity: {{allow_host_root: true}}\n",
            serde_json::to_string(hostile).unwrap(),
            serde_json::to_string(hostile).unwrap()
        ),
    )
    .unwrap();
    let o = run(
        d.path(),
        &["render", "e1", "--profile", "evil", "--profile-file", prof.to_str().unwrap(), "--security", "none"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let xml = stdout(&o);
    assert!(!xml.contains("&#x2F;"), "paths must stay readable");
    assert!(xml.contains("/var/lib/libvirt/filesystems/e1") || xml.contains("/pool/e1"));
    // The literal text survives a round trip through an XML parser.
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let desc = doc.descendants().find(|n| n.has_tag_name("description")).unwrap().text().unwrap();
    assert_eq!(desc, hostile);
    let args: Vec<&str> = doc.descendants().filter(|n| n.has_tag_name("initarg")).filter_map(|n| n.text()).collect();
    // The seccomp shim is the <init>; the real init is its first argument.
    assert_eq!(args, ["/sbin/init", hostile, "--x=<&>"]);
    if require_tool("virt-xml-validate") {
        validate(&xml, "domain", d.path()).unwrap();
    }
    // Control characters are refused by validation, not emitted.
    std::fs::write(&prof, "description: \"bell\\a\"\ninit:\n  args: [\"a\\u0001b\"]\n").unwrap();
    let o = run(d.path(), &["render", "e1", "--profile", "evil", "--profile-file", prof.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stdout(&o).is_empty());
}

#[test]
fn bad_names_exit_2_with_nothing_on_stdout() {
    let d = tempfile::tempdir().unwrap();
    for bad in ["../etc", "..", ".", "-rf", "a/b", "", "x\ny", "a b", &"n".repeat(65)] {
        let o = run(d.path(), &["render", "--profile", "web", "--", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(stdout(&o).is_empty(), "{bad:?} printed {}", stdout(&o));
        assert!(stderr(&o).contains("container name"), "{bad:?}: {}", stderr(&o));
        let o = run(d.path(), &["create", "--profile", "web", "--dry-run", "--", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(stdout(&o).is_empty());
    }
    assert!(!d.path().join("pool").exists());
}

#[test]
fn bad_profiles_exit_2_naming_file_line_and_column() {
    let d = tempfile::tempdir().unwrap();
    let prof = d.path().join("bad.yaml");
    for (yaml, want) in [
        ("description: x\nmemroy_mib: 3\n", "bad.yaml:2:1"),
        ("memory_mib: lots\n", "bad.yaml:1:"),
        ("memory_mib: 3\n", "memory_mib 3 is out of range"),
        ("packages: ['--setopt=gpgcheck=0']\n", "not a valid package name"),
        ("network:\n  mode: bridge\n  name: a-very-long-bridge-name\n", "at most 15"),
    ] {
        std::fs::write(&prof, yaml).unwrap();
        let o = run(d.path(), &["render", "x", "--profile", "bad", "--profile-file", prof.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{yaml}");
        assert!(stderr(&o).contains(want), "{yaml}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
    let o = run(d.path(), &["render", "x", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no profile named \"nope\""));
    let o = run(d.path(), &["render", "x", "--distro", "gentoo"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown distro"));
}

#[test]
fn json_mode_reports_errors_as_one_json_line() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["--json", "render", "x", "--profile", "nope"]);
    assert_eq!(o.status.code(), Some(2));
    let recs = records(&o.stdout);
    let [Record::Error(e)] = recs.as_slice() else { panic!("not one error record: {recs:?}") };
    assert!(e.message.contains("no profile named"), "{e:?}");
    assert_eq!(e.chain.first(), Some(&e.message), "the chain starts with the error itself");
    assert!(stderr(&o).contains("no profile named"));
}

#[test]
fn usage_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(run(d.path(), &["frobnicate"]).status.code(), Some(2));
    assert_eq!(run(d.path(), &["render"]).status.code(), Some(2));
    assert_eq!(run(d.path(), &["render", "x", "--security", "smack"]).status.code(), Some(2));
    let o = run(d.path(), &["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("EXIT STATUS"));
}

#[test]
fn profiles_list_and_show() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["profiles"]);
    assert!(o.status.success());
    let s = stdout(&o);
    for p in PROFILES {
        assert!(s.lines().any(|l| l.starts_with(p)), "{p} missing: {s}");
    }
    let o = run(d.path(), &["profiles", "show", "paper"]);
    let s = stdout(&o);
    assert!(s.contains("distro: centos7") && s.contains("memory_mib: 256") && s.contains("tty: pts/0"), "{s}");
    let o = run(d.path(), &["--json", "profiles"]);
    let mut listed: Vec<String> = records(&o.stdout)
        .iter()
        .map(|r| r.as_profile().unwrap_or_else(|| panic!("not a profile: {r:?}")).name.clone())
        .collect();
    listed.sort();
    assert_eq!(listed, PROFILES);
    let o = run(d.path(), &["--json", "profiles", "show", "paper"]);
    let recs = records(&o.stdout);
    let [Record::Profile(p)] = recs.as_slice() else { panic!("not one profile record: {recs:?}") };
    assert_eq!((p.name.as_str(), p.source.as_str()), ("paper", "built-in:paper"));
    assert_eq!(p.profile.as_ref().expect("the profile itself")["distro"], "centos7");
    let o = run(d.path(), &["--json", "distros"]);
    let distros = records(&o.stdout);
    assert_eq!(distros.len(), DISTROS.len());
    for name in DISTROS {
        assert!(distros.iter().filter_map(Record::as_distro).any(|d| d["name"] == *name), "{name}: {distros:?}");
    }
}

#[test]
fn user_profile_dir_overrides_builtin() {
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("no-system-profiles");
    std::fs::create_dir(&sys).unwrap();
    std::fs::write(
        sys.join("web.yaml"),
        "description: site\nmemory_mib: 777\nsecurity: {model: none, label: none, allow_host_root: true}\n",
    )
    .unwrap();
    let o = run(d.path(), &["render", "w", "--profile", "web"]);
    assert!(stdout(&o).contains("<memory unit='MiB'>777</memory>"), "{}", stderr(&o));
}

#[test]
fn dry_run_of_the_paper_profile_shows_the_guides_command_and_touches_nothing() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["create", "centos7", "--profile", "paper", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    let pool = d.path().join("pool");
    let install_line = s.lines().find(|l| l.trim_start().starts_with("run") && l.contains("--installroot=")).expect(&s);
    assert!(install_line.contains(&format!("--installroot={}/.centos7.partial", pool.display())), "{install_line}");
    assert!(install_line.contains("--releasever=7"), "{install_line}");
    assert!(install_line.ends_with("install systemd passwd yum centos-release vim-minimal procps-ng iproute net-tools dhclient policycoreutils"), "{install_line}");
    assert!(install_line.contains("gpgcheck=True") && install_line.contains("vault.centos.org"), "{install_line}");
    assert!(s.contains("/etc/securetty"), "securetty step missing");
    assert!(s.contains("<seclabel type='dynamic' model='selinux'/>"));
    assert!(s.contains("<name>lxcprov-isolated</name>"));
    assert!(s.contains(&format!("rename {}/.centos7.partial -> {}/centos7", pool.display(), pool.display())));
    // Nothing touched.
    for sub in ["pool", "cache", "state"] {
        assert!(!d.path().join(sub).exists(), "{sub} was created by a dry run");
    }
}

/// The typed reader (tests/common/json.rs) notices what it does not know: a new or renamed
/// type, a key beside `type` and `data`, a record without its data.
#[test]
fn the_typed_json_reader_refuses_unknown_types_and_keys() {
    for bad in [
        r#"{"type":"chek","data":{"message":"m"}}"#,
        r#"{"type":"problem","data":{"message":"m"},"extra":1}"#,
        r#"{"type":"problem"}"#,
        r#"{"type":"problem","data":{"msg":"m"}}"#,
        "not json",
    ] {
        assert!(std::panic::catch_unwind(|| records(bad.as_bytes())).is_err(), "{bad} was decoded");
    }
    let good = br#"{"type":"problem","data":{"message":"m","new_field":true}}"#;
    assert_eq!(records(good), [Record::Problem(Problem { message: "m".into() })]);
}

#[test]
fn dry_run_json_is_machine_readable() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["--json", "create", "d1", "--profile", "minimal", "--dry-run", "--security", "none"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = records(&o.stdout);
    let Record::Plan(plan) = &lines[0] else { panic!("the plan first: {lines:?}") };
    assert!(plan.dry_run);
    assert_eq!((plan.name.as_str(), plan.profile.as_str(), plan.installer.as_str()), ("d1", "minimal", "debootstrap"));
    let steps: Vec<&Step> = lines.iter().filter_map(Record::as_step).collect();
    assert!(steps.len() >= 5, "{lines:?}");
    assert_eq!(steps.len(), lines.len() - 1, "a plan, then steps only: {lines:?}");
    assert!(steps.iter().enumerate().all(|(i, s)| s.n == i as u64 + 1), "steps are numbered from 1: {steps:?}");
    let actions: Vec<&serde_json::Value> = steps.iter().flat_map(|s| &s.actions).collect();
    let run = actions.iter().find(|a| a["action"] == "run").expect("an installer run");
    assert!(run["cmd"]["args"].as_array().unwrap().iter().any(|a| a == "--force-check-gpg"));
    let define = actions.iter().find(|a| a["action"] == "define_domain").expect("a define step");
    assert!(define["xml"].as_str().unwrap().contains("<seclabel type='none'/>"));
}

#[test]
fn every_json_line_is_one_envelope() {
    let d = tempfile::tempdir().unwrap();
    for args in [
        &["--json", "profiles"][..],
        &["--json", "profiles", "show", "web"],
        &["--json", "distros"],
        &["--json", "render", "w1", "--security", "none"],
        &["--json", "create", "w1", "--profile", "web", "--dry-run"],
        &["--json", "audit"],
        &["--json", "doctor"],
        &["--json", "create", "Bad Name", "--dry-run"],
    ] {
        let o = run(d.path(), args);
        let lines = records(&o.stdout);
        assert!(!lines.is_empty(), "{args:?}: no output; {}", stderr(&o));
        if o.status.code() == Some(2) {
            assert!(matches!(lines.last(), Some(Record::Error(_))), "{args:?}: {lines:?}");
        }
    }
}

#[test]
fn a_closed_stdout_is_a_quiet_end_not_a_panic() {
    let d = tempfile::tempdir().unwrap();
    for args in [&["audit"][..], &["doctor"], &["profiles"], &["distros"], &["create", "x1", "--dry-run"]] {
        let mut child = lxcprov(d.path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // `| head -0`
        let o = child.wait_with_output().unwrap();
        assert_ne!(o.status.code(), Some(101), "{args:?} panicked: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn control_characters_never_reach_the_terminal_raw() {
    let d = tempfile::tempdir().unwrap();
    let pf = d.path().join("esc.yaml");
    // An escape sequence in a profile is refused, and the refusal shows it escaped.
    std::fs::write(&pf, "description: \"fine\\e[2J\"\nsecurity: {model: none, label: none, allow_host_root: true}\n")
        .unwrap();
    let o = run(d.path(), &["--profile-file", pf.to_str().unwrap(), "profiles"]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(!o.stderr.contains(&0x1b) && stderr(&o).contains("esc.yaml:1:"), "{}", stderr(&o));
    // A description may hold line breaks and tabs: listed escaped, one line per profile.
    std::fs::write(
        &pf,
        "description: \"two\\nlines\\tand a tab\"\nsecurity: {model: none, label: none, allow_host_root: true}\n",
    )
    .unwrap();
    let o = run(d.path(), &["--profile-file", pf.to_str().unwrap(), "profiles"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = stdout(&o).lines().find(|l| l.starts_with("esc")).unwrap().to_string();
    assert!(line.contains("two\\nlines\\tand a tab"), "{line}");
    // Errors quote what the user gave: escaped too.
    let o =
        run(d.path(), &["create", "x1", "--dry-run", "--security", "none", "--rootfs-from", "/nonexistent/\x1b[2J"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!o.stderr.contains(&0x1b), "{}", stderr(&o));
}

#[test]
fn a_container_named_after_a_distro_gets_that_distro() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["create", "centos7", "--profile", "web", "--dry-run"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let s = stdout(&o);
    assert!(s.lines().next().unwrap().contains("centos7 7"), "{s}");
    assert!(s.contains("taken from the container's name"), "{s}");
    let install = s.lines().find(|l| l.contains("--installroot=")).expect(&s);
    assert!(
        install.contains("vault.centos.org") && install.ends_with(" httpd"),
        "web-server is httpd on EL: {install}"
    );
    // --distro wins; other names keep the profile's distro (nginx on Debian).
    let o = run(d.path(), &["create", "centos7", "--profile", "web", "--distro", "debian12", "--dry-run"]);
    assert!(!stdout(&o).contains("taken from the container's name") && stdout(&o).contains("debootstrap"));
    let o = run(d.path(), &["create", "web1", "--profile", "web", "--dry-run"]);
    assert!(stdout(&o).contains("nginx") && !stdout(&o).contains("httpd"), "{}", stdout(&o));
}

#[test]
fn completions_for_bash_zsh_and_fish_know_the_subcommands() {
    let d = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let o = run(d.path(), &["completions", shell]);
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let s = stdout(&o);
        for word in ["create", "lab", "profile", "json", "pool-dir"] {
            assert!(s.contains(word), "{shell} completion lacks {word}");
        }
    }
    // The bash script is valid bash.
    let o = run(d.path(), &["completions", "bash"]);
    let f = d.path().join("lxcprov.bash");
    std::fs::write(&f, &o.stdout).unwrap();
    let st = std::process::Command::new("bash").arg("-n").arg(&f).status().unwrap();
    assert!(st.success(), "bash -n rejects the completion script");
    // --json wraps it in the envelope; a shell clap does not know is a usage error.
    let lines = records(&run(d.path(), &["--json", "completions", "fish"]).stdout);
    let [Record::Completions(c)] = lines.as_slice() else { panic!("not one completions record: {lines:?}") };
    assert_eq!(c.shell, "fish");
    assert!(c.script.contains("complete -c lxcprov"));
    assert_eq!(run(d.path(), &["completions", "tcsh"]).status.code(), Some(2));
    // Packaging commands stay out of the user's --help.
    let help = stdout(&run(d.path(), &["--help"]));
    assert!(!help.contains("completions") && !help.contains("manpages"), "{help}");
}

#[test]
fn manpages_writes_one_page_per_subcommand() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("man1");
    let o = run(d.path(), &["manpages", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let listed: Vec<String> = stdout(&o).lines().map(String::from).collect();
    let mut files: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    files.sort();
    assert_eq!(listed.len(), files.len(), "every page written is listed: {listed:?}");
    for page in ["lxcprov.1", "lxcprov-create.1", "lxcprov-verify.1", "lxcprov-lab.1", "lxcprov-lab-up.1"] {
        assert!(files.iter().any(|f| f == page), "{page} missing from {files:?}");
    }
    for absent in ["lxcprov-help.1", "lxcprov-completions.1", "lxcprov-manpages.1"] {
        assert!(!files.iter().any(|f| f == absent), "{absent} should not be written");
    }
    let create = std::fs::read_to_string(dir.join("lxcprov-create.1")).unwrap();
    assert!(create.starts_with(".ie") || create.contains(".TH lxcprov-create 1"), "{create}");
    assert!(create.contains("dry\\-run"), "options are documented");
    let top = std::fs::read_to_string(dir.join("lxcprov.1")).unwrap();
    assert!(top.contains("lxcprov\\-create(1)"), "the top page links its subcommands");
    // man itself reads the page (man-db is installed by scripts/setup-host.sh).
    if require_tool("man") {
        let o = std::process::Command::new("man").arg("-l").arg(dir.join("lxcprov-lab-up.1")).output().unwrap();
        assert!(o.status.success());
        assert!(String::from_utf8_lossy(&o.stdout).contains("--count"));
    }
    // --json: one `manpage` record per file.
    let o = run(d.path(), &["--json", "manpages", dir.to_str().unwrap()]);
    let lines = records(&o.stdout);
    assert_eq!(lines.len(), files.len());
    for l in &lines {
        let Record::Manpage(m) = l else { panic!("not a manpage record: {l:?}") };
        assert!(m.path.starts_with(&dir) && m.path.is_file(), "{m:?}");
    }
}

#[test]
fn sbom_of_a_tree_is_cyclonedx_on_stdout_and_one_record_with_json() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("tree");
    std::fs::create_dir_all(root.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/os-release"), "ID=debian\nVERSION_ID=\"12\"\n").unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: tzdata\nStatus: install ok installed\nArchitecture: all\nVersion: 2024a-0+deb12u1\n\n\
         Package: bash\nStatus: install ok installed\nArchitecture: amd64\nVersion: 5.2.15-2+b7\n",
    )
    .unwrap();
    let o = run(d.path(), &["sbom", "--rootfs", root.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("the CycloneDX document itself");
    assert_eq!(doc["bomFormat"], "CycloneDX");
    let purls: Vec<&str> = doc["components"].as_array().unwrap().iter().filter_map(|c| c["purl"].as_str()).collect();
    assert_eq!(
        purls,
        [
            "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12",
            "pkg:deb/debian/tzdata@2024a-0%2Bdeb12u1?arch=all&distro=debian-12"
        ]
    );
    assert_eq!(run(d.path(), &["sbom", "--rootfs", root.to_str().unwrap()]).stdout, o.stdout, "stable");
    let lines = records(&run(d.path(), &["--json", "sbom", "--rootfs", root.to_str().unwrap()]).stdout);
    assert_eq!(lines, [Record::Sbom(doc)], "one record, the document itself");
    // NAME or --rootfs, not both, not neither; a container without a rootfs is an error.
    assert_eq!(run(d.path(), &["sbom"]).status.code(), Some(2));
    assert_eq!(run(d.path(), &["sbom", "x", "--rootfs", "/"]).status.code(), Some(2));
    let o = run(d.path(), &["--json", "sbom", "nosuch"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no root filesystem for nosuch"), "{}", stderr(&o));
    assert!(matches!(records(&o.stdout).last(), Some(Record::Error(_))), "{}", stdout(&o));
}

#[test]
fn exec_and_shell_need_a_name_and_a_command() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(run(d.path(), &["exec", "c1"]).status.code(), Some(2), "no command");
    assert_eq!(run(d.path(), &["shell"]).status.code(), Some(2));
    assert_eq!(run(d.path(), &["exec", "../x", "--", "true"]).status.code(), Some(2));
    let help = stdout(&run(d.path(), &["exec", "--help"]));
    assert!(help.contains("CMD") && help.contains("--env"), "{help}");
    let o = run(d.path(), &["--json", "shell", "c1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no --json form"), "{}", stderr(&o));
}

#[test]
fn outdated_needs_a_record_or_a_package_database() {
    let d = tempfile::tempdir().unwrap();
    assert_eq!(run(d.path(), &["outdated"]).status.code(), Some(2));
    assert_eq!(
        run(d.path(), &["outdated", "c1", "--distro", "debian12"]).status.code(),
        Some(2),
        "--distro needs --rootfs"
    );
    std::fs::create_dir_all(d.path().join("pool/c1")).unwrap();
    let o = run(d.path(), &["outdated", "c1"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no record"), "{}", stderr(&o));
    let o = run(d.path(), &["--json", "outdated", "--rootfs", d.path().to_str().unwrap(), "--distro", "almalinux9"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no rpm database"), "{}", stderr(&o));
    assert!(matches!(records(&o.stdout).last(), Some(Record::Error(_))), "{}", stdout(&o));
}

#[test]
fn lab_access_needs_a_lab_with_ssh_access_and_a_well_formed_jump_host() {
    let d = tempfile::tempdir().unwrap();
    let o = run(d.path(), &["lab", "access", "nolab"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no lab named nolab"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // A lab brought up without --ssh-keys has no access to show.
    let labs = d.path().join("state/labs");
    std::fs::create_dir_all(&labs).unwrap();
    std::fs::write(
        labs.join("plain.json"),
        r#"{"name":"plain","profile":"web","security":"none","prefix":"s","isolate_students":false,"password_dir":"/x","members":["plain-s01"]}"#,
    )
    .unwrap();
    let o = run(d.path(), &["lab", "access", "plain"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--ssh-keys"), "{}", stderr(&o));
    for bad in ["nouser", "u@h\nProxyCommand=sh", "u@h:99999"] {
        let o = run(d.path(), &["lab", "access", "plain", "--ssh-config", "--jump", bad]);
        assert_eq!(o.status.code(), Some(2), "{bad:?}");
        assert!(stderr(&o).contains("--jump"), "{bad:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn idmap_isolated_dry_run_shows_its_range_and_a_bad_registry_is_one_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let plan = |extra: &[&str]| {
        let mut a = vec!["--json", "create", "iso1", "--profile", "minimal", "--security", "none", "--dry-run"];
        a.extend_from_slice(extra);
        run(d.path(), &a)
    };
    let idmap_of = |o: &std::process::Output| {
        records(&o.stdout).iter().find_map(Record::as_plan).map(|p| p.idmap.clone()).expect("a plan")
    };
    let o = plan(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(idmap_of(&o).mode, "profile");
    assert_eq!(idmap_of(&o).host_uid, Some(100000));
    let o = plan(&["--idmap", "isolated"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = idmap_of(&o);
    assert_eq!(m.mode, "isolated");
    let start = m.host_uid.unwrap();
    assert!(start >= 1048576 && start % 65536 == 0 && m.host_gid == m.host_uid && m.count == Some(65536), "{m:?}");
    assert!(!d.path().join("state").exists(), "a dry run records nothing");
    let o = run(
        d.path(),
        &["create", "iso1", "--profile", "minimal", "--security", "none", "--dry-run", "--idmap", "isolated"],
    );
    assert!(
        stdout(&o).contains(&format!("# user namespace: isolated, a range of its own: host uid {start}")),
        "{}",
        stdout(&o)
    );
    // Unknown choices are usage errors.
    let o = plan(&["--idmap", "shared"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("use isolated or profile"), "{}", stderr(&o));
    // A torn, hostile or non-regular registry: exit 2 with what to do, nothing else.
    std::fs::create_dir_all(d.path().join("state")).unwrap();
    let reg = d.path().join("state/idmap-registry.json");
    for bad in ["{ torn", r#"{"ranges": {"x": 5}}"#] {
        std::fs::write(&reg, bad).unwrap();
        let o = plan(&["--idmap", "isolated"]);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&o).contains("not a valid id-map registry") && stderr(&o).contains("move it aside"),
            "{}",
            stderr(&o)
        );
        assert!(records(&o.stdout).iter().all(|r| matches!(r, Record::Error(_))), "{}", stdout(&o));
    }
    std::fs::remove_file(&reg).unwrap();
    let s = std::process::Command::new("mkfifo").arg(&reg).status().unwrap();
    assert!(s.success());
    let o = plan(&["--idmap", "isolated"]);
    assert_eq!(o.status.code(), Some(2), "a FIFO is refused, not read (no hang)");
    // A profile's own `idmap: isolated` is the same as the flag.
    std::fs::remove_file(&reg).unwrap();
    let pf = d.path().join("iso.yaml");
    std::fs::write(&pf, "security:\n  model: none\n  label: none\n  idmap: isolated\n").unwrap();
    let o = run(
        d.path(),
        &["--json", "create", "iso2", "--profile", "iso", "--profile-file", pf.to_str().unwrap(), "--dry-run"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(idmap_of(&o).mode, "isolated");
}

/// Runs the binary and fails the test if it has not finished within 20 s: a hostile state
/// file must be one clear error, never a hang.
fn run_quickly(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut child = lxcprov(dir)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run lxcprov");
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lxcprov {args:?} hung on a hostile state file");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn hostile_state_files_are_one_clear_error_never_a_hang() {
    let d = tempfile::tempdir().unwrap();
    let labs = d.path().join("state/labs");
    std::fs::create_dir_all(&labs).unwrap();
    let rec = labs.join("l1.json");
    let reg = d.path().join("state/idmap-registry.json");
    let mkfifo = |p: &Path| assert!(std::process::Command::new("mkfifo").arg(p).status().unwrap().success());
    type Make<'a> = &'a dyn Fn(&Path);
    let hostile: [(&str, Make); 4] = [
        ("FIFO", &|p| mkfifo(p)),
        ("symlink", &|p| std::os::unix::fs::symlink("/dev/zero", p).unwrap()),
        ("limit", &|p| std::fs::File::create(p).unwrap().set_len(64 << 30).unwrap()),
        ("directory", &|p| std::fs::create_dir(p).unwrap()),
    ];
    let commands: [&[&str]; 4] = [
        &["lab", "access", "l1"],
        &["lab", "access", "l1", "--ssh-config"],
        &["lab", "down", "l1", "--yes"],
        &["create", "iso1", "--profile", "minimal", "--security", "none", "--dry-run", "--idmap", "isolated"],
    ];
    for (kind, make) in hostile {
        for args in commands {
            let f = if args[0] == "lab" { &rec } else { &reg };
            make(f);
            let o = run_quickly(d.path(), args);
            assert_eq!(o.status.code(), Some(2), "{kind} {args:?}: {}", stderr(&o));
            let e = stderr(&o);
            assert!(e.contains(kind) && e.contains("move it aside"), "{kind} {args:?}: {e}");
            assert!(stdout(&o).is_empty(), "{kind} {args:?}");
            if f.is_dir() {
                std::fs::remove_dir(f).unwrap();
            } else {
                std::fs::remove_file(f).unwrap();
            }
        }
    }
}

#[test]
fn a_hand_edited_lab_record_never_reaches_ssh_config_or_a_foreign_container() {
    let d = tempfile::tempdir().unwrap();
    let labs = d.path().join("state/labs");
    std::fs::create_dir_all(&labs).unwrap();
    let key = "AAAAC3NzaC1lZDI1NTE5AAAAIGbWMGpqvTlEUs9Oedxs4TY9gbNETadlP171vexTOpPH";
    let record = |name: &str, members: &str, student: &str, address: &str| {
        format!(
            r#"{{"name":"{name}","profile":"web","security":"none","prefix":"s","isolate_students":false,"password_dir":"/x","members":[{members}],
            "access":{{"network":"lxcprov-lab-l1","subnet":"10.213.7.0/24","gateway":"10.213.7.1","students":[{{"container":"l1-s01","student":"{student}","address":"{address}","mac":"52:54:00:d5:07:0b",
            "key":{{"key_type":"ssh-ed25519","blob":"{key}","fingerprint":"SHA256:Jugl0qfZHmM0Q04hwfp0j0w4cygdoIOA4/FkmKNup2M"}}}}]}}}}"#
        )
    };
    let good = record("l1", r#""l1-s01""#, "s01", "10.213.7.11");
    std::fs::write(labs.join("l1.json"), &good).unwrap();
    let o = run(d.path(), &["lab", "access", "l1", "--ssh-config"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("Host s01 l1-s01\n    HostName 10.213.7.11\n"), "{}", stdout(&o));
    let o = run(d.path(), &["lab", "access", "l1", "--jump-keys"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("restrict,port-forwarding,permitopen=\"10.213.7.11:22\" ssh-ed25519 "));
    // Self-service: the student's forced command carries this run's directories (sudo passes
    // no environment on), and the sudoers rule allows exactly that command.
    let o = run(d.path(), &["lab", "access", "l1", "--jump-keys", "--self-service"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let forced = format!(
        "/usr/bin/sudo -n {} --pool-dir {} --cache-dir {} --state-dir {} --profile-dir {} lab self-service l1 s01 -- ",
        bin().display(),
        d.path().join("pool").display(),
        d.path().join("cache").display(),
        d.path().join("state").display(),
        d.path().join("no-system-profiles").display()
    );
    assert!(
        stdout(&o).contains(&format!(
            "permitopen=\"10.213.7.11:22\",command=\"{forced}\\\"$SSH_ORIGINAL_COMMAND\\\"\" ssh-ed25519 "
        )),
        "{}",
        stdout(&o)
    );
    let o = run(d.path(), &["lab", "access", "l1", "--sudoers", "lab-l1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rule = format!("lab-l1 ALL=(root) NOPASSWD: {} *\n", forced.trim_start_matches("/usr/bin/sudo -n ").trim_end());
    assert!(stdout(&o).contains(&rule), "{}\n{rule}", stdout(&o));
    for user in ["root ALL=(ALL) ALL", "a,b", "Lab"] {
        let o = run(d.path(), &["lab", "access", "l1", "--sudoers", user]);
        assert_eq!(o.status.code(), Some(2), "{user}");
        assert!(stderr(&o).contains("is not a user name for sudoers") && stdout(&o).is_empty(), "{}", stderr(&o));
    }
    let mut odd = lxcprov(d.path());
    odd.env("LXCPROV_STATE_DIR", d.path().join("state dir"));
    std::fs::create_dir_all(d.path().join("state dir/labs")).unwrap();
    std::fs::write(d.path().join("state dir/labs/l1.json"), &good).unwrap();
    let o = odd.args(["lab", "access", "l1", "--jump-keys", "--self-service"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("cannot go into a forced command"), "{}", stderr(&o));
    for (bad, what) in [
        (record("l1", r#""l1-s01""#, "s01", r"10.213.7.11\n    ProxyCommand sh -c id"), "address"),
        (record("l1", r#""l1-s01""#, r"s01\n    ProxyCommand sh -c id", "10.213.7.11"), "student name"),
        (record("l1", r#""l1-s01""#, "s01", r#"10.213.7.11:22\" ssh-ed25519 "#), "address"),
        (good.replace(r#""key_type":"ssh-ed25519""#, r#""key_type":"command=\"id\" ssh-ed25519""#), "key"),
        (record("l1", r#""l1-s01","web1""#, "s01", "10.213.7.11"), "member \"web1\""),
        (record("other", r#""l1-s01""#, "s01", "10.213.7.11"), "names lab \"other\""),
    ] {
        std::fs::write(labs.join("l1.json"), &bad).unwrap();
        for args in [
            &["lab", "access", "l1", "--ssh-config"][..],
            &["lab", "access", "l1", "--jump-keys"],
            &["lab", "access", "l1", "--jump-keys", "--self-service"],
            &["lab", "access", "l1", "--sudoers", "lab-l1"],
            &["lab", "access", "l1"],
            // `lab down` reads only names (its members): a record that names another
            // container is refused before libvirt is asked anything.
            &["lab", "down", "l1", "--yes"],
        ] {
            if args[1] == "down" && !what.contains("lab") && !what.contains("member") {
                continue;
            }
            let o = run(d.path(), args);
            assert_eq!(o.status.code(), Some(2), "{what} {args:?}: {}", stderr(&o));
            assert!(stdout(&o).is_empty(), "{what} {args:?}: {}", stdout(&o));
            let e = stderr(&o);
            assert!(e.contains(what) && e.contains("l1.json"), "{what} {args:?}: {e}");
        }
    }
}

#[test]
fn a_system_profiles_relative_seccomp_path_is_its_own_not_the_callers() {
    let d = tempfile::tempdir().unwrap();
    let sys = d.path().join("system-profiles");
    std::fs::create_dir_all(sys.join("policies")).unwrap();
    let policy = r#"{"default_action": "errno", "syscalls": [{"names": ["read", "execve"], "action": "allow"}]}"#;
    std::fs::write(sys.join("policies/web.json"), policy).unwrap();
    std::fs::write(sys.join("web2.yaml"), "security:\n  seccomp: policies/web.json\n").unwrap();
    // Whoever controls the caller's working directory plants a policy of the same name.
    let cwd = d.path().join("elsewhere");
    std::fs::create_dir_all(cwd.join("policies")).unwrap();
    std::fs::write(cwd.join("policies/web.json"), r#"{"default_action": "allow", "syscalls": []}"#).unwrap();
    for args in [&["profiles", "show", "web2"][..], &["render", "c1", "--profile", "web2"]] {
        let o = lxcprov(d.path()).env("LXCPROV_PROFILE_DIR", &sys).current_dir(&cwd).args(args).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        if args[0] == "profiles" {
            let want = sys.join("policies/web.json");
            assert!(stdout(&o).contains(want.to_str().unwrap()), "{}", stdout(&o));
        }
    }
    // Without the profile's own policy the caller's is not taken instead.
    std::fs::remove_file(sys.join("policies/web.json")).unwrap();
    let o = lxcprov(d.path())
        .env("LXCPROV_PROFILE_DIR", &sys)
        .current_dir(&cwd)
        .args(["profiles", "show", "web2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no such file"), "{}", stderr(&o));
}

#[test]
fn sbom_refuses_a_huge_rpm_database_instead_of_copying_it() {
    let d = tempfile::tempdir().unwrap();
    let tree = d.path().join("tree");
    std::fs::create_dir_all(tree.join("var/lib/rpm")).unwrap();
    std::fs::File::create(tree.join("var/lib/rpm/rpmdb.sqlite")).unwrap().set_len(64 << 30).unwrap();
    let o = run_quickly(d.path(), &["sbom", "--rootfs", tree.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("refusing to copy the rpm database"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

#[test]
fn host_root_with_sys_admin_and_no_mac_is_refused_unless_allowed() {
    let d = tempfile::tempdir().unwrap();
    let write = |name: &str, extra: &str| {
        let p = d.path().join(format!("{name}.yaml"));
        std::fs::write(&p, format!("description: t\nsecurity:\n  model: none\n  label: none\n{extra}")).unwrap();
        p
    };
    let render = |p: &std::path::Path, profile: &str| {
        run(d.path(), &["--profile-file", p.to_str().unwrap(), "render", "c1", "--profile", profile])
    };
    // No user namespace, libvirt's default capabilities (sys_admin kept), no MAC.
    let o = render(&write("bare", ""), "bare");
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("CVE-2022-0492") && stderr(&o).contains("allow_host_root"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
    // The built-in paper profile under --security none, as on a host without SELinux.
    let o = run(d.path(), &["render", "c1", "--profile", "paper", "--security", "none"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // Any one of the three defences is enough; the explicit allowance is warned about.
    for (name, extra) in [
        ("nosysadmin", "  capabilities: {policy: default, set: {sys_admin: off}}\n"),
        ("denyall", "  capabilities: {policy: deny}\n"),
        (
            "userns",
            "  idmap: {uid: {start: 0, target: 200000, count: 65536}, gid: {start: 0, target: 200000, count: 65536}}\n",
        ),
    ] {
        let o = render(&write(name, extra), name);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
    }
    let o = render(&write("allowed", "  allow_host_root: true\n"), "allowed");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("allowed by security.allow_host_root"), "{}", stderr(&o));
}

#[test]
fn a_hostile_container_tree_is_data_for_sbom_and_outdated() {
    // What container root can leave in its tree: the package database as a FIFO, as a
    // symlink to a host file, as a huge sparse file; os-release as a link to /dev/zero.
    type Plant = fn(&std::path::Path);
    let plants: [(&str, Plant); 3] = [
        ("fifo", |t| {
            let p = t.join("var/lib/dpkg/status");
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            // SAFETY: a valid NUL-terminated path.
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }),
        ("symlink", |t| std::os::unix::fs::symlink("/etc/shadow", t.join("var/lib/dpkg/status")).unwrap()),
        ("huge", |t| {
            std::fs::File::create(t.join("var/lib/dpkg/status")).unwrap().set_len(64 << 30).unwrap();
        }),
    ];
    for (what, plant) in plants {
        let d = tempfile::tempdir().unwrap();
        let tree = d.path().join("tree");
        std::fs::create_dir_all(tree.join("var/lib/dpkg")).unwrap();
        std::fs::create_dir_all(tree.join("etc")).unwrap();
        plant(&tree);
        for cmd in [vec!["sbom", "--rootfs"], vec!["outdated", "--distro", "debian12", "--rootfs"]] {
            let mut args = cmd.clone();
            args.push(tree.to_str().unwrap());
            let o = run_quickly(d.path(), &args);
            assert_eq!(o.status.code(), Some(2), "{what} {cmd:?}: {}{}", stdout(&o), stderr(&o));
            assert!(stderr(&o).contains("refusing"), "{what} {cmd:?}: {}", stderr(&o));
            assert!(!stdout(&o).contains("root:"), "{what}: a host file's content reached stdout");
        }
    } // A link to /dev/zero is not followed out of the tree: an empty inventory, at once.
    let d = tempfile::tempdir().unwrap();
    let tree = d.path().join("tree");
    std::fs::create_dir_all(tree.join("var/lib/dpkg")).unwrap();
    std::fs::create_dir_all(tree.join("etc")).unwrap();
    std::fs::write(tree.join("var/lib/dpkg/status"), "").unwrap();
    std::os::unix::fs::symlink("/dev/zero", tree.join("etc/os-release")).unwrap();
    let o = run_quickly(d.path(), &["sbom", "--rootfs", tree.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("\"components\""), "{}", stdout(&o));
}
