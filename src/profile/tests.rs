//! Profile parsing, validation and location tests (no root, no host access).

use super::*;

fn err(yaml: &str) -> String {
    format!("{:#}", parse(yaml, "t.yaml").unwrap_err())
}

#[test]
fn builtins_parse_and_validate() {
    let all = load_all(&Sources::default()).unwrap();
    let names: Vec<&str> = all.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["hardened", "minimal", "paper", "web"]);
}

#[test]
fn paper_profile_is_the_guide() {
    let p = find(&Sources::default(), "paper").unwrap().profile;
    assert_eq!(p.distro, "centos7");
    assert_eq!(p.memory_mib, 256);
    assert_eq!(p.security.model, SecModel::Selinux);
    assert_eq!(p.security.label, LabelType::Dynamic);
    assert_eq!(p.console.tty, "pts/0");
    let d = crate::distro::lookup("centos7").unwrap();
    let pkgs = p.base_packages.clone().unwrap_or(d.base_packages.clone());
    assert_eq!(
        pkgs.join(" "),
        "systemd passwd yum centos-release vim-minimal procps-ng iproute net-tools dhclient policycoreutils"
    );
}

#[test]
fn web_profile_has_filter_caps_and_idmap() {
    let p = find(&Sources::default(), "web").unwrap().profile;
    assert_eq!(p.network.filter.as_deref(), Some("clean-traffic"));
    assert!(p.security.idmap.is_some());
    assert!(p.security.capabilities.set.values().any(|s| *s == CapState::Off));
    assert_eq!(p.package_sets, ["web-server"]);
}

#[test]
fn unknown_key_names_file_line_column() {
    let e = err("description: x\nmemroy_mib: 5\n");
    assert!(e.contains("t.yaml:2:1"), "{e}");
    assert!(e.contains("unknown field `memroy_mib`"), "{e}");
}

#[test]
fn nested_unknown_key_is_refused() {
    let e = err("security:\n  model: selinux\n  lable: static\n");
    assert!(e.contains("t.yaml:3:3") && e.contains("unknown field `lable`"), "{e}");
}

#[test]
fn wrong_type_is_refused_with_location() {
    let e = err("memory_mib: lots\n");
    assert!(e.contains("t.yaml:1:") && e.contains("invalid type"), "{e}");
    let e = err("packages: httpd\n");
    assert!(e.contains("t.yaml:1:"), "{e}");
    let e = err("security:\n  model: smack\n");
    assert!(e.contains("t.yaml:2:") && e.contains("unknown variant"), "{e}");
}

#[test]
fn out_of_range_values_are_refused() {
    assert!(err("memory_mib: 1\n").contains("memory_mib 1 is out of range"));
    assert!(err("vcpus: 0\n").contains("vcpus 0"));
    assert!(err("cpu:\n  shares: 1\n").contains("cpu.shares"));
    assert!(err("blkio_weight: 5\n").contains("blkio_weight"));
    assert!(err("memory_mib: -5\n").contains("t.yaml:1:"));
}

#[test]
fn hostile_package_names_are_refused() {
    for bad in ["--setopt=gpgcheck=0", "-x", "a b", "../x", "pkg;rm", "", "a/b", "$(x)", "pkg>=1"] {
        let y = format!("packages: [{}]\n", serde_json::to_string(bad).unwrap());
        assert!(err(&y).contains("not a valid package name"), "{bad}");
    }
    assert!(valid_package("vim-minimal") && valid_package("gcc-c++") && valid_package("libstdc++6:amd64"));
}

#[test]
fn hostile_mirrors_are_refused() {
    for bad in ["ftp://x", "http://a b", "http://x\n", "file://relative", "--mirror", "http://x\"y"] {
        let y = format!("mirror: {}\n", serde_json::to_string(bad).unwrap());
        assert!(err(&y).contains("mirror"), "{bad}");
    }
}

#[test]
fn security_combinations_are_checked() {
    assert!(err("security:\n  label: static\n").contains("static_label is missing"));
    assert!(err("security:\n  static_label: 'a:b:c:s0:c1,c2'\n").contains("not static"));
    assert!(err("security:\n  label: static\n  static_label: 'system_u:system_r:container_t:s0:c1'\n")
        .contains("exactly two"));
    assert!(err("security:\n  label: static\n  static_label: 'system_u:system_r:container_t:s0:c1,c1'\n")
        .contains("distinct"));
    assert!(err("security:\n  capabilities:\n    set: { sys_pwn: off }\n").contains("unknown capability"));
    assert!(err("security:\n  capabilities:\n    set: { sys_admin: maybe }\n").contains("unknown variant"));
    assert!(err(
        "security:\n  idmap:\n    uid: {start: 0, target: 0, count: 10}\n    gid: {start: 0, target: 1, count: 10}\n"
    )
    .contains("host root"));
    parse("security:\n  label: static\n  static_label: 'system_u:system_r:container_t:s0:c1,c2'\n", "t").unwrap();
}

#[test]
fn names_and_paths_are_checked() {
    assert!(err("hostname: 'a_b'\n").contains("hostname"));
    assert!(err("network:\n  name: '../x'\n").contains("network.name"));
    assert!(err("init:\n  path: sbin/init\n").contains("absolute"));
    assert!(err("console:\n  tty: ttyS0\n").contains("console.tty"));
    assert!(err("distro: gentoo\n").contains("unknown distro"));
    assert!(err("package_sets: [database]\n").contains("package set"));
}

#[test]
fn later_sources_override_earlier() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    std::fs::create_dir(&sys).unwrap();
    std::fs::write(sys.join("web.yaml"), "description: site web\nmemory_mib: 512\n").unwrap();
    std::fs::write(sys.join("extra.yml"), "description: extra\n").unwrap();
    let user = dir.path().join("web.yaml");
    std::fs::write(&user, "description: user web\nmemory_mib: 1024\n").unwrap();
    let mut src = Sources { system_dir: Some(sys.clone()), files: vec![] };
    assert_eq!(find(&src, "web").unwrap().profile.memory_mib, 512);
    assert!(find(&src, "extra").is_ok());
    src.files.push(user);
    let l = find(&src, "web").unwrap();
    assert_eq!(l.profile.memory_mib, 1024);
    assert!(l.source.ends_with("web.yaml"));
    let e = format!("{:#}", find(&src, "nope").unwrap_err());
    assert!(e.contains("no profile named \"nope\"") && e.contains("paper"), "{e}");
}

fn ok(yaml: &str) -> Vec<String> {
    parse_with_warnings(yaml, "t.yaml").map(|(_, w)| w).unwrap_or_else(|e| panic!("{yaml}: {e:#}"))
}

/// `s` as a double-quoted YAML scalar with every character outside printable ASCII
/// written as an escape, so that hostile characters reach the profile (raw, the YAML
/// parser itself refuses most of them).
fn yq(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

#[test]
fn raw_hostile_characters_are_refused_by_the_parser_with_a_location() {
    for ch in ['\u{1b}', '\u{fffe}', '\u{ffff}', '\u{0}'] {
        let e = err(&format!("memory_mib: 64\ndescription: a{ch}b\n"));
        // libyaml's reader refuses them (its location is the document's, with a byte offset).
        assert!(e.starts_with("t.yaml:") && e.contains("not allowed"), "{ch:?}: {e}");
    }
}

fn static_label(label: &str, extra: &str) -> String {
    format!("security:\n  label: static\n  static_label: {}\n{extra}", yq(label))
}

#[test]
fn every_error_names_its_key_location() {
    for (yaml, at) in [
        ("description: x\nmemory_mib: 0\n", "t.yaml:2:1: memory_mib 0"),
        ("vcpus: 0\n", "t.yaml:1:1: vcpus 0"),
        ("cpu:\n  shares: 1\n", "t.yaml:2:3: cpu.shares 1"),
        ("cpu: {period_us: 5}\n", "t.yaml:1:7: cpu.period_us"),
        ("cpu:\n  quota_us: -1\n", "t.yaml:2:3: cpu.quota_us"),
        ("blkio_weight: 5000\n", "t.yaml:1:1: blkio_weight"),
        ("packages: [vim, -x]\n", "t.yaml:1:17: package \"-x\""),
        ("base_packages:\n  - ok\n  - 'x.rpm'\n", "t.yaml:3:5: package \"x.rpm\""),
        ("network:\n  mode: bridge\n  name: averyveryverylongbridge\n", "t.yaml:3:3: network.name"),
        ("security:\n  idmap:\n    uid: {start: 0, target: 100000, count: 0}\n    gid: {start: 0, target: 100000, count: 1}\n", "t.yaml:3:37: security.idmap.uid.count"),
        ("security:\n  idmap:\n    uid: {start: 0, target: 1, count: 1}\n    gid:\n      start: 0\n      target: 40000\n      count: 65536\n", "t.yaml:6:7: security.idmap.gid"),
        ("security:\n  capabilities:\n    set:\n      sys_pwn: on\n", "t.yaml:4:7: security.capabilities.set"),
        ("repos:\n  - id: a\n    url: https://x/\n    gpgkeys: ['http://x/key']\n", "t.yaml:4:15: repository \"a\": signing key"),
        ("release: '..'\n", "t.yaml:1:1: release \"..\""),
        ("console: {tty: ttyS0}\n", "t.yaml:1:11: console.tty"),
        ("init:\n  path: relative\n", "t.yaml:2:3: init.path"),
        ("security:\n  label: static\n", "t.yaml:2:3: security.label is static"),
    ] {
        let e = err(yaml);
        assert!(e.contains(at), "{yaml}\nwant {at}\ngot {e}");
    }
}

#[test]
fn all_errors_are_reported_at_once() {
    let e = err("memory_mib: 1\nvcpus: 0\npackages: ['-x']\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), 3, "{e}");
    assert!(lines[0].starts_with("t.yaml:1:1: ") && lines[1].starts_with("t.yaml:2:1: "), "{e}");
    assert!(lines[2].starts_with("t.yaml:3:12: "), "{e}");
}

#[test]
fn validate_without_text_still_refuses() {
    let p = Profile { release: Some("7/../../x".into()), ..Default::default() };
    let e = format!("{:#}", p.validate().unwrap_err());
    assert!(e.contains("release \"7/../../x\""), "{e}");
    assert_eq!(Profile::default().validate().unwrap(), Vec::<String>::new());
}

#[test]
fn overrides_are_revalidated_with_locations() {
    let l = find(&Sources::default(), "web").unwrap();
    let mut p = l.profile.clone();
    p.release = Some("..".into()); // as --release .. would
    let e = format!("{:#}", l.revalidate(&p).unwrap_err());
    assert!(e.starts_with("built-in:web: release \"..\""), "{e}");
    p.release = None;
    p.memory_mib = 0;
    let e = format!("{:#}", l.revalidate(&p).unwrap_err());
    assert!(e.starts_with("built-in:web:") && e.contains(":1: memory_mib 0"), "{e}");
    p.memory_mib = 256;
    assert_eq!(l.revalidate(&p).unwrap(), Vec::<String>::new());
}

#[test]
fn releases_are_checked_per_distro() {
    for bad in ["..", "7/../../x", "9/", "", " 9", "9 ", "x y", "../../etc", "9\\n", "%2e%2e"] {
        let e = err(&format!("distro: almalinux9\nrelease: {}\n", yq(bad)));
        assert!(e.contains("release"), "{bad:?}: {e}");
    }
    for bad in ["..", "bookworm/..", "Bookworm", "bookworm-backports", "12;x"] {
        let e = err(&format!("distro: debian12\nrelease: {}\n", yq(bad)));
        assert!(e.contains("release"), "{bad:?}: {e}");
    }
    assert!(err("distro: fedora\nrelease: bookworm\n").contains("is not a release of fedora"));
    ok("distro: fedora\nrelease: '40'\n");
    ok("distro: almalinux9\nrelease: '9.4'\n");
    ok("distro: centos7\nrelease: '7'\n");
    ok("distro: debian12\nrelease: trixie\n");
    ok("distro: debian12\nrelease: '13'\n");
    ok("distro: ubuntu\nrelease: '22.04'\n");
}

#[test]
fn package_names_never_become_files_urls_or_options() {
    for bad in [
        "x.rpm",
        "X.RPM",
        "evil-1.0-1.x86_64.rpm",
        "x.deb",
        "x.udeb",
        "file:x",
        "http:x",
        "https:evil",
        "ftp:x",
        "FILE:x",
        "a:b:c",
        "*",
        "vim*",
        "vi?",
        "[a]",
        "-y",
        "--nogpgcheck",
        "@core",
        "x=1",
        "./x",
        "/tmp/x.rpm",
        "pkg,other",
        "pkg{a,b}",
        "!x",
        "~x",
        ".x",
        "x y",
        "x\ty",
        "ü",
    ] {
        assert!(!valid_package(bad), "{bad:?}");
        let e = err(&format!("packages: [{}]\n", yq(bad)));
        assert!(e.contains("not a valid package name") || e.contains("packages[0]"), "{bad:?}: {e}");
    }
    for good in
        ["vim-minimal", "gcc-c++", "libstdc++6:amd64", "bash-0:5.1.8-6.el9", "python3.11", "kernel~rc", "x11-utils"]
    {
        assert!(valid_package(good), "{good:?}");
    }
    assert!(!valid_package(&"a".repeat(201)));
}

#[test]
fn plain_http_keys_are_refused_and_plain_http_repos_warned() {
    let e = err("repos:\n  - {id: a, url: 'https://x/', gpgkeys: ['http://x/key']}\n");
    assert!(e.contains("signing key") && e.contains("plain http"), "{e}");
    let w = ok("repos:\n  - {id: a, url: 'http://x/', gpgkeys: ['https://x/key']}\n");
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].starts_with("t.yaml:2:") && w[0].contains("WARNING") && w[0].contains("plain http"), "{w:?}");
    let e = err("trust: {gpgcheck: false}\nrepos:\n  - {id: a, url: 'http://x/'}\n");
    assert!(e.contains("plain http and trust.gpgcheck is off"), "{e}");
    let e = err("trust: {gpgcheck: false}\nmirror: 'http://mirror/'\n");
    assert!(e.contains("mirror") && e.contains("gpgcheck is off"), "{e}");
    let w = ok("distro: centos-stream9\nmirror: 'http://mirror/'\n");
    assert!(w.len() == 1 && w[0].contains("WARNING") && w[0].starts_with("t.yaml:2:1:"), "{w:?}");
    // Debian's Release files are signed: http mirrors are the norm there.
    assert!(ok("distro: debian12\nmirror: 'http://deb.debian.org/debian'\n").is_empty());
    ok("repos:\n  - {id: a, url: 'file:///srv/r', gpgkeys: ['file:///srv/key']}\n");
    ok("trust: {gpgcheck: false}\nrepos:\n  - {id: a, url: 'file:///srv/r'}\n");
    assert!(err("repos:\n  - {id: a, url: 'https://x/', gpgkeys: ['ftp://x/key']}\n").contains("not an https://"));
    assert!(err("repos:\n  - {id: a, url: 'https://x/'}\n  - {id: a, url: 'https://y/'}\n").contains("given twice"));
}

#[test]
fn static_selinux_labels_are_checked_whole() {
    let e = err(&static_label("system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023", ""));
    assert!(e.contains("t.yaml:3:3:") && e.contains("clearance") && e.contains("allow_range"), "{e}");
    let w = ok(&static_label("system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023", "  allow_range: true\n"));
    assert!(w.len() == 1 && w[0].contains("WARNING") && w[0].starts_with("t.yaml:3:3:"), "{w:?}");
    for t in ["unconfined_t", "spc_t", "virtd_t"] {
        let l = format!("system_u:system_r:{t}:s0:c1,c2");
        assert!(err(&static_label(&l, "")).contains("allow_type"), "{t}");
        let w = ok(&static_label(&l, "  allow_type: true\n"));
        assert!(w.len() == 1 && w[0].contains("WARNING"), "{w:?}");
    }
    for bad in [
        "system_u:system_r:container_t:s0:c+1,c2",
        "system_u:system_r:container_t:s0:c01,c2",
        "system_u:system_r:container_t:s0:c2,c1",
        "system_u:system_r:container_t:s0:c1,c1",
        "system_u:system_r:container_t:s0:c1,c1024",
        "system_u:system_r:container_t:s0:c1,c2-s0:c1,c2-s0",
        "system_u:system_r:container_t:s0:c1,c2-",
        "system_u:system_r:container_t:s0:c1,c2,c3",
        "system_u:system_r:container_t",
        "system_u:system_r:container_t:s0:c1,c2 ",
    ] {
        assert!(err(&static_label(bad, "  allow_range: true\n  allow_type: true\n")).contains("static_label"), "{bad}");
    }
    ok(&static_label("system_u:system_r:svirt_lxc_net_t:s0:c10,c20", ""));
    ok(&static_label("system_u:system_r:container_t:s0:c1,c2-s0:c1,c2", ""));
    assert!(valid_static_label("system_u:system_r:container_t:s0:c1,c2").is_ok());
    assert!(valid_static_label("system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023").is_err());
}

#[test]
fn static_apparmor_labels_must_confine() {
    let aa = |l: &str| format!("security:\n  model: apparmor\n  label: static\n  static_label: {}\n", yq(l));
    ok(&aa("libvirt-0b1c"));
    for bad in ["unconfined", "UNCONFINED", "", "a b", "x//&unconfined", "../x", "-x", "a\u{202e}b"] {
        assert!(err(&aa(bad)).contains("static_label"), "{bad:?}");
    }
}

#[test]
fn non_xml_characters_are_refused_everywhere() {
    for ch in [
        '\u{0}',
        '\u{1}',
        '\u{8}',
        '\u{b}',
        '\u{c}',
        '\u{1b}',
        '\u{7f}',
        '\u{85}',
        '\u{9b}',
        '\u{fffe}',
        '\u{ffff}',
        '\u{fdd0}',
        '\u{fdef}',
        '\u{1fffe}',
        '\u{10ffff}',
        '\u{202e}',
        '\u{2066}',
    ] {
        let s = format!("a{ch}b");
        for (yaml, key) in [
            (format!("description: {}\n", yq(&s)), "t.yaml:1:1: description"),
            (format!("hostname: {}\n", yq(&s)), "t.yaml:1:1: hostname"),
            (format!("packages: [vim, {}]\n", yq(&s)), "t.yaml:1:17: packages[1]"),
            (format!("network:\n  name: {}\n", yq(&s)), "t.yaml:2:3: network.name"),
            (format!("network:\n  filter: {}\n", yq(&s)), "t.yaml:2:3: network.filter"),
            (format!("init:\n  path: {}\n", yq(&format!("/sbin/{s}"))), "t.yaml:2:3: init.path"),
            (format!("init:\n  args: [{}]\n", yq(&s)), "t.yaml:2:10: init.args[0]"),
            (format!("mirror: {}\n", yq(&format!("https://{s}"))), "t.yaml:1:1: mirror"),
            (format!("repos:\n  - id: {}\n    url: https://x/\n", yq(&s)), "t.yaml:2:5: repos[0].id"),
            (
                static_label(&format!("system_u:system_r:container_t:s0:c1,c2{ch}"), ""),
                "t.yaml:3:3: security.static_label",
            ),
            (
                format!("security:\n  capabilities:\n    set: {{{}: on}}\n", yq(&s)),
                "t.yaml:3:11: security.capabilities.set.a",
            ),
        ] {
            let e = err(&yaml);
            assert!(e.contains(key), "{ch:?} {yaml:?}\nwant {key}\ngot {e}");
            assert!(e.contains(&format!("U+{:04X}", ch as u32)), "{e}");
            // The message quotes the value, but never the raw character.
            assert!(!e.contains(ch), "{ch:?} reached the message: {e}");
        }
    }
    // Tabs and newlines are text in init arguments and descriptions (listings escape them).
    ok("init:\n  args: [\"a\\tb\\nc\"]\n");
    ok("description: \"a\\nb\\tc\"\n");
    ok("description: \"wéb ✓ 日本語\"\n");
}

#[test]
fn hostile_profile_file_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["a\u{1b}[2Jb", "x\u{fffe}", "-x", ".hidden", "a b", "wéb", "a\u{202e}b", "a'b", "a<b"] {
        let p = dir.path().join(format!("{bad}.yaml"));
        std::fs::write(&p, "description: x\n").unwrap();
        let e = format!("{:#}", load_file(&p).unwrap_err());
        assert!(e.contains("profile name"), "{bad:?}: {e}");
        assert!(!e.contains('\u{1b}') && !e.contains('\u{fffe}'), "{e}");
        std::fs::remove_file(&p).unwrap();
    }
    let p = dir.path().join("ok-name_1.2.yaml");
    std::fs::write(&p, "description: x\n").unwrap();
    assert_eq!(load_file(&p).unwrap().name, "ok-name_1.2");
}

#[test]
fn idmaps_never_shift_twice_or_overflow() {
    let idmap = |uid: &str| {
        format!("security:\n  idmap:\n    uid: {uid}\n    gid: {{start: 0, target: 100000, count: 65536}}\n")
    };
    for (uid, want) in [
        ("{start: 0, target: 40000, count: 65536}", "overlap"),
        ("{start: 0, target: 1, count: 2}", "overlap"),
        ("{start: 0, target: 65535, count: 65536}", "overlap"),
        ("{start: 0, target: 4294967295, count: 1}", "exceeds the id space"),
        ("{start: 0, target: 4294000000, count: 1000000}", "exceeds the id space"),
        ("{start: 0, target: 100000, count: 4294967295}", "exceeds the id space"),
        ("{start: 1, target: 100000, count: 65536}", "start must be 0"),
        ("{start: 0, target: 100000, count: 0}", "at least 1"),
        ("{start: 0, target: 0, count: 65536}", "host root"),
        ("{start: 0, target: 100000, count: 4294967296}", "t.yaml:3:"),
        ("{start: 0, target: -1, count: 1}", "t.yaml:3:"),
    ] {
        let e = err(&idmap(uid));
        assert!(e.contains(want), "{uid}: {e}");
    }
    ok(&idmap("{start: 0, target: 4294901759, count: 65536}"));
}

#[test]
fn a_fixed_map_onto_host_accounts_is_refused_unless_allowed() {
    let idmap = |uid: &str, allow: bool| {
        format!(
            "security:\n  idmap_allow_host_ids: {allow}\n  idmap:\n    uid: {uid}\n    gid: {{start: 0, target: 100000, count: 65536}}\n"
        )
    };
    // Container root as host uid 1 (daemon), or any system account below UID_MIN.
    for uid in ["{start: 0, target: 1, count: 1}", "{start: 0, target: 999, count: 1}"] {
        let e = err(&idmap(uid, false));
        assert!(
            e.contains("t.yaml:4:") && e.contains("host accounts") && e.contains("idmap_allow_host_ids"),
            "{uid}: {e}"
        );
        let (_, warnings) = parse_with_warnings(&idmap(uid, true), "t.yaml").unwrap();
        assert!(warnings.iter().any(|w| w.contains("host accounts") && w.contains("allowed")), "{warnings:?}");
    }
    // Above UID_MIN, an account in /etc/passwd: `nobody` (65534) is on every Debian host.
    let e = err(&idmap("{start: 0, target: 65530, count: 10}", false));
    assert!(e.contains("host accounts") && e.contains("65534"), "{e}");
    // target 0 stays "host root" (no shift at all), never allowed.
    assert!(err(&idmap("{start: 0, target: 0, count: 1}", true)).contains("host root"));
    // The built-in profiles stay valid (their ranges are above every account), and a
    // profile without the key does not show it.
    for l in load_all(&Sources::default()).unwrap() {
        assert!(l.warnings.iter().all(|w| !w.contains("host accounts")), "{}: {:?}", l.name, l.warnings);
    }
    assert!(!crate::yaml::to_string(&Profile::default()).unwrap().contains("idmap_allow_host_ids"));
}

#[test]
fn host_accounts_are_read_from_passwd_group_and_login_defs() {
    let d = tempfile::tempdir().unwrap();
    let etc = d.path();
    std::fs::write(etc.join("login.defs"), "# x\nUID_MIN 500\nGID_MIN\t600\n").unwrap();
    std::fs::write(etc.join("passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:150000:150001::/h:/bin/sh\n").unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\nstaff:x:250000:\n").unwrap();
    use crate::host::host_accounts_met as met;
    assert!(met(etc, false, 499, 1).unwrap().contains("below the first regular uid (500"));
    assert_eq!(met(etc, false, 500, 1), None);
    assert!(met(etc, true, 500, 1).unwrap().contains("GID_MIN"));
    assert!(met(etc, false, 100000, 65536).unwrap().contains("\"alice\"'s in"));
    assert!(met(etc, true, 100000, 65536).unwrap().contains("150001"), "a primary gid counts");
    assert!(met(etc, true, 200000, 65536).unwrap().contains("\"staff\"'s in"));
    assert_eq!(met(etc, false, 200000, 65536), None);
    // Without login.defs the first regular id is 1000.
    assert!(met(&etc.join("none"), false, 999, 1).is_some());
    assert!(met(&etc.join("none"), false, 1000, 1).is_none());
}

#[test]
fn new_keys_are_not_shown_unless_set() {
    let p = find(&Sources::default(), "web").unwrap().profile;
    let y = crate::yaml::to_string(&p).unwrap();
    assert!(!y.contains("allow_range") && !y.contains("allow_type"), "{y}");
}

#[test]
fn builtins_have_no_warnings() {
    for l in load_all(&Sources::default()).unwrap() {
        assert!(l.warnings.is_empty(), "{}: {:?}", l.name, l.warnings);
    }
}

#[test]
fn mirror_overrides_can_be_checked_alone() {
    assert_eq!(mirror_trust("https://m/", false, true), Ok(None));
    assert_eq!(mirror_trust("file:///srv/m", false, true), Ok(None));
    assert!(mirror_trust("http://m/", false, false).is_err());
    assert!(mirror_trust("http://m/", true, true).unwrap().unwrap().starts_with("WARNING"));
    assert_eq!(mirror_trust("http://m/", true, false), Ok(None));
    assert!(mirror_trust("--mirror=x", true, true).is_err());
}

#[test]
fn the_catalog_passes_the_profile_rules() {
    for d in crate::distro::catalog() {
        for p in d.base_packages.iter().chain(d.package_sets.values().flatten()) {
            assert!(valid_package(p), "{}: {p}", d.name);
        }
        for k in &d.gpgkeys {
            assert!(valid_url(k) && !k.starts_with("http://"), "{}: {k}", d.name);
        }
        let rpm = d.installer != crate::distro::InstallerKind::Debootstrap;
        assert_eq!(mirror_trust(&d.mirror, true, rpm), Ok(None), "{}", d.name);
    }
}

#[test]
fn many_problems_are_listed_up_to_a_bound() {
    let pkgs: Vec<String> = (0..500).map(|i| format!("'-x{i}'")).collect();
    let e = err(&format!("packages: [{}]\n", pkgs.join(", ")));
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(lines.len(), validate::MAX_LISTED + 1, "{e}");
    assert_eq!(*lines.last().unwrap(), format!("t.yaml: ... and {} more", 500 - validate::MAX_LISTED));
}

#[test]
fn every_builtin_profile_has_a_seccomp_filter_and_hardened_the_strictest() {
    for l in load_all(&Sources::default()).unwrap() {
        let want = if l.name == "hardened" { "strict" } else { "default" };
        assert_eq!(l.profile.security.seccomp, want, "{}", l.name);
    }
    assert_eq!(Profile::default().security.seccomp, "default");
}

#[test]
fn seccomp_key_is_checked_and_located() {
    let e = err("security:\n  seccomp: deny\n");
    assert!(e.contains("t.yaml:2:") && e.contains("must be none, default, strict"), "{e}");
    let e = err("security:\n  seccomp: /nonexistent/policy.json\n");
    assert!(e.contains("t.yaml:2:") && e.contains("no such file"), "{e}");
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("p.json");
    std::fs::write(&f, r#"{"default_action": "kill", "syscalls": [{"names": ["nosuch"], "action": "allow"}]}"#)
        .unwrap();
    let e = err(&format!("security:\n  seccomp: {}\n", f.display()));
    assert!(e.contains("t.yaml:2:") && e.contains("not an x86_64 system call"), "{e}");
    std::fs::write(
        &f,
        r#"{"default_action": "errno", "syscalls": [{"names": ["read", "execve"], "action": "allow"}]}"#,
    )
    .unwrap();
    let p = parse(&format!("security:\n  seccomp: {}\n", f.display()), "t.yaml").unwrap();
    assert_eq!(p.security.seccomp_choice(), crate::seccomp::Choice::File(f));
    assert_eq!(parse("security:\n  seccomp: none\n", "t.yaml").unwrap().security.seccomp, "none");
}

#[test]
fn idmap_isolated_or_a_map_and_nothing_else() {
    let p = parse("security:\n  idmap: isolated\n", "t.yaml").unwrap();
    assert_eq!(p.security.idmap, Some(crate::profile::IdmapSetting::Isolated(None)));
    assert_eq!(p.security.idmap_map(), None, "not allocated yet");
    let y = crate::yaml::to_string(&p).unwrap();
    assert!(y.contains("idmap: isolated"), "shown as written: {y}");
    assert_eq!(parse(&y, "t.yaml").unwrap().security.idmap, p.security.idmap, "round trip");
    let fixed = parse("security:\n  idmap:\n    uid: {start: 0, target: 100000, count: 65536}\n    gid: {start: 0, target: 100000, count: 65536}\n", "t.yaml").unwrap();
    assert_eq!(fixed.security.idmap_map().map(|m| m.uid.target), Some(100000));
    for (bad, want) in [
        ("bogus", "t.yaml:2:10: security.idmap: invalid value: string \"bogus\", expected `isolated` or a map"),
        ("Isolated", "invalid value"),
        ("7", "invalid type: integer"),
        ("[isolated]", "invalid type: sequence"),
        ("{uid: {start: 0, target: 1, count: 2}}", "missing field `gid`"),
        ("{isolated: true}", "unknown field `isolated`"),
        (
            "{uid: {start: 0, target: 100000, count: 65536}, gid: {start: 0, target: 100000, count: 65536}, x: 1}",
            "unknown field `x`",
        ),
    ] {
        let e = err(&format!("security:\n  idmap: {bad}\n"));
        assert!(e.contains(want), "{bad}: {e}");
    }
}

#[test]
fn a_relative_seccomp_path_is_the_profile_files_own() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("policies")).unwrap();
    let pol = d.path().join("policies/web.json");
    std::fs::write(
        &pol,
        r#"{"default_action": "errno", "syscalls": [{"names": ["read", "execve"], "action": "allow"}]}"#,
    )
    .unwrap();
    let f = d.path().join("web.yaml");
    std::fs::write(&f, "security:\n  seccomp: policies/web.json\n").unwrap();
    let l = load_file(&f).unwrap();
    assert_eq!(l.profile.security.seccomp_choice(), crate::seccomp::Choice::File(pol.clone()));
    let (p, _) = parse_in("security:\n  seccomp: ./policies/web.json\n", "t.yaml", Some(d.path())).unwrap();
    assert_eq!(p.security.seccomp_choice(), crate::seccomp::Choice::File(d.path().join("./policies/web.json")));
    // Without a file to be relative to, a relative path is refused (it would be the
    // working directory's).
    let e = err("security:\n  seccomp: policies/web.json\n");
    assert!(e.contains("t.yaml:2:") && e.contains("relative path"), "{e}");
}
