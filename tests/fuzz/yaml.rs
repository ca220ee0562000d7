//! Structured profiles: a small YAML model and its emitter, so that documents can be written
//! in every style (escaped, quoted, single-quoted, plain, block), and the generator of whole
//! profile documents from it (hostile strings in every key, junk values, anchors and aliases,
//! deep nesting, odd numbers, unknown keys, document framing).

use super::hostile::hostile_str;
use proptest::prelude::*;
use proptest::sample::select;

#[derive(Clone, Debug)]
enum Style {
    /// Double-quoted, every character outside printable ASCII escaped: the exact string.
    Escaped,
    /// Double-quoted with only `\` and `"` escaped: raw characters reach the scanner.
    Quoted,
    /// Single-quoted (`''` for `'`).
    Single,
    /// Plain, as is.
    Plain,
    /// A literal block scalar `|-` (or folded `>-`).
    Block(bool),
}

#[derive(Clone, Debug)]
enum Y {
    Str(String, Style),
    /// Emitted exactly as given (numbers, booleans, tokens).
    Raw(String),
    Seq(Vec<Y>, bool),
    /// Entries; `true`: flow style.
    Map(Vec<(Y, Y)>, bool),
    /// `&NAME value`.
    Anchor(String, Box<Y>),
    /// `*NAME`.
    Alias(String),
    /// `depth` levels of brackets or braces around a scalar.
    Deep(usize, bool),
}

fn s(v: &str) -> Y {
    Y::Str(v.to_string(), Style::Plain)
}

fn escape_dq(s: &str, all: bool) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if all && !(' '..='~').contains(&c) => {
                let u = c as u32;
                if u <= 0xFF {
                    out.push_str(&format!("\\x{u:02x}"));
                } else if u <= 0xFFFF {
                    out.push_str(&format!("\\u{u:04x}"));
                } else {
                    out.push_str(&format!("\\U{u:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

fn emit(y: &Y, indent: usize, out: &mut String, in_flow: bool) {
    let pad = " ".repeat(indent);
    match y {
        Y::Str(v, style) => match style {
            Style::Escaped => out.push_str(&format!("\"{}\"", escape_dq(v, true))),
            Style::Quoted => out.push_str(&format!("\"{}\"", escape_dq(v, false))),
            Style::Single => out.push_str(&format!("'{}'", v.replace('\'', "''"))),
            Style::Plain => out.push_str(v),
            Style::Block(folded) if !in_flow => {
                out.push_str(if *folded { ">-\n" } else { "|-\n" });
                for l in v.split('\n') {
                    out.push_str(&format!("{pad}  {l}\n"));
                }
                out.push_str(&pad);
            }
            Style::Block(_) => out.push_str(&format!("\"{}\"", escape_dq(v, true))),
        },
        Y::Raw(r) => out.push_str(r),
        Y::Alias(a) => out.push_str(&format!("*{a}")),
        Y::Anchor(a, v) => {
            out.push_str(&format!("&{a} "));
            emit(v, indent, out, in_flow);
        }
        Y::Deep(d, braces) => {
            let (o, c) = if *braces { ("{a: ", "}") } else { ("[", "]") };
            out.push_str(&o.repeat(*d));
            out.push('x');
            out.push_str(&c.repeat(*d));
        }
        Y::Seq(items, flow) => {
            if *flow || in_flow || items.is_empty() {
                out.push('[');
                for (i, it) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    emit(it, indent, out, true);
                }
                out.push(']');
            } else {
                for it in items {
                    out.push_str(&format!("\n{pad}- "));
                    emit(it, indent + 2, out, false);
                }
            }
        }
        Y::Map(entries, flow) => {
            if *flow || in_flow || entries.is_empty() {
                out.push('{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    emit(k, indent, out, true);
                    out.push_str(": ");
                    emit(v, indent, out, true);
                }
                out.push('}');
            } else {
                for (k, v) in entries {
                    out.push_str(&format!("\n{pad}"));
                    emit(k, indent, out, false);
                    out.push(':');
                    if !matches!(v, Y::Seq(_, false) | Y::Map(_, false)) || is_empty_collection(v) {
                        out.push(' ');
                    }
                    emit(v, indent + 2, out, false);
                }
            }
        }
    }
}

fn is_empty_collection(y: &Y) -> bool {
    matches!(y, Y::Seq(v, _) if v.is_empty()) || matches!(y, Y::Map(v, _) if v.is_empty())
}

fn style() -> impl Strategy<Value = Style> {
    prop_oneof![
        6 => Just(Style::Escaped),
        2 => Just(Style::Quoted),
        2 => Just(Style::Single),
        2 => Just(Style::Plain),
        1 => any::<bool>().prop_map(Style::Block),
    ]
}

/// A string value from `base` (an ordinary value of its key) or a hostile one, in any style.
fn str_of(base: &'static [&'static str]) -> BoxedStrategy<Y> {
    let v = prop_oneof![
        40 => Just(base[0].to_string()),
        6 => select(base).prop_map(str::to_string),
        1 => hostile_str(),
    ];
    (v, style()).prop_map(|(v, st)| Y::Str(v, st)).boxed()
}

fn any_str() -> BoxedStrategy<Y> {
    (hostile_str(), style()).prop_map(|(v, st)| Y::Str(v, st)).boxed()
}

/// A value of the wrong kind, or hostile in structure.
fn junk() -> BoxedStrategy<Y> {
    prop_oneof![
        3 => any_str(),
        2 => num(&[0]),
        1 => (1usize..200, any::<bool>()).prop_map(|(d, b)| Y::Deep(d, b)),
        1 => (1usize..64, any::<bool>()).prop_map(|(d, b)| Y::Deep(d, b)),
        1 => prop::collection::vec(any_str(), 0..4).prop_map(|v| Y::Seq(v, true)),
        1 => prop::collection::vec((any_str(), any_str()), 0..3).prop_map(|v| Y::Map(v, true)),
        1 => Just(Y::Alias("nope".into())),
    ]
    .boxed()
}

/// Either `good` (mostly) or junk.
fn or_junk(good: BoxedStrategy<Y>) -> BoxedStrategy<Y> {
    prop_oneof![60 => good, 1 => junk()].boxed()
}

fn num(interesting: &'static [i64]) -> BoxedStrategy<Y> {
    prop_oneof![
        40 => select(interesting[..1].to_vec()).prop_map(|n| Y::Raw(n.to_string())),
        4 => select(interesting).prop_map(|n| Y::Raw(n.to_string())),
        1 => any::<i64>().prop_map(|n| Y::Raw(n.to_string())),
        1 => any::<u64>().prop_map(|n| Y::Raw(n.to_string())),
        1 => select(vec![
            "0x100", "0o17", "017", "1_000", "1e3", "2.5", ".inf", "-.inf", ".nan", "~", "null", "true", "\"256\"",
            "18446744073709551616", "-0", "+12", "4294967296", "-2147483649", "0b101", "9223372036854775808",
        ])
        .prop_map(|r| Y::Raw(r.to_string())),
    ]
    .boxed()
}

fn boolean() -> BoxedStrategy<Y> {
    prop_oneof![
        30 => select(vec!["true", "false"]).prop_map(|b| Y::Raw(b.into())),
        1 => select(vec!["yes", "no", "on", "off", "True", "FALSE", "1", "0", "\"true\"", "~"]).prop_map(|b| Y::Raw(b.into())),
    ]
    .boxed()
}

fn list(item: BoxedStrategy<Y>, max: usize) -> BoxedStrategy<Y> {
    (prop::collection::vec(item, 0..max), any::<bool>()).prop_map(|(v, f)| Y::Seq(v, f)).boxed()
}

/// A mapping of the given optional entries, shuffled, sometimes with an unknown key.
fn map(entries: Vec<(&'static str, BoxedStrategy<Y>)>) -> BoxedStrategy<Y> {
    map_p(entries, 0.6)
}

/// [`map`] whose keys are each present with probability `p`.
fn map_p(entries: Vec<(&'static str, BoxedStrategy<Y>)>, p: f64) -> BoxedStrategy<Y> {
    let parts: Vec<BoxedStrategy<Option<(Y, Y)>>> =
        entries.into_iter().map(|(k, v)| prop::option::weighted(p, v.prop_map(move |v| (s(k), v))).boxed()).collect();
    let unknown = prop::option::weighted(0.03, (any_str(), junk()));
    let entries = (parts, unknown).prop_map(|(parts, unknown)| {
        let mut e: Vec<(Y, Y)> = parts.into_iter().flatten().collect();
        e.extend(unknown);
        e
    });
    (entries.prop_shuffle(), any::<bool>()).prop_map(|(e, flow)| Y::Map(e, flow)).boxed()
}

const CAPS_SOME: &[&str] = &["sys_admin", "net_raw", "mknod", "sys_module", "chown", "setuid", "sys_time", "bpf"];

fn idrange() -> BoxedStrategy<Y> {
    let valid =
        select(vec![(0i64, 100_000i64, 65_536i64), (0, 200_000, 65_536), (0, 1_000_000, 1)]).prop_map(|(a, b, c)| {
            Y::Map(
                vec![
                    (s("start"), Y::Raw(a.to_string())),
                    (s("target"), Y::Raw(b.to_string())),
                    (s("count"), Y::Raw(c.to_string())),
                ],
                true,
            )
        });
    let n = || num(&[0, 1, 65536, 100_000, 200_000, 1_000_000, 4_294_967_295, 65535, 100_001]);
    prop_oneof![8 => valid, 1 => map_p(vec![("start", n()), ("target", n()), ("count", n())], 0.95)].boxed()
}

fn profile_yaml() -> BoxedStrategy<Y> {
    let urls: &'static [&'static str] = &[
        "https://deb.debian.org/debian",
        "http://mirror.example/centos",
        "file:///srv/repo",
        "https://example.org/KEY",
        "http://example.org/KEY",
        "ftp://x/y",
        "https://x y",
    ];
    let repo = map_p(
        vec![("id", str_of(&["local", "base", "x", "a b"])), ("url", str_of(urls)), ("gpgkeys", list(str_of(urls), 3))],
        0.98,
    );
    let capset = (
        prop::collection::btree_map(
            prop_oneof![30 => select(CAPS_SOME).prop_map(str::to_string), 1 => hostile_str()],
            prop_oneof![30 => select(vec!["on", "off"]).prop_map(s), 1 => junk()],
            0..5,
        ),
        any::<bool>(),
    )
        .prop_map(|(m, f)| Y::Map(m.into_iter().map(|(k, v)| (Y::Str(k, Style::Escaped), v)).collect(), f))
        .boxed();
    let idmap = prop_oneof![
        3 => map_p(vec![("uid", idrange()), ("gid", idrange())], 0.97),
        // gid: an alias of uid.
        1 => idrange().prop_map(|u| Y::Map(
            vec![(s("uid"), Y::Anchor("ids".into(), Box::new(u))), (s("gid"), Y::Alias("ids".into()))],
            false
        )),
    ]
    .boxed();
    let labels = prop_oneof![
        6 => select(vec![
            ("selinux", "dynamic", None),
            ("selinux", "none", None),
            ("apparmor", "dynamic", None),
            ("none", "none", None),
            ("selinux", "static", Some("system_u:system_r:container_t:s0:c10,c20")),
            ("selinux", "static", Some("system_u:system_r:svirt_lxc_net_t:s0:c1,c1023")),
            ("apparmor", "static", Some("lxc-container-default")),
            ("apparmor", "static", Some("libvirt-8e6b6d3c-0e0e-4c2a")),
        ])
        .prop_map(|(m, l, st)| {
            let mut e = vec![(s("model"), s(m)), (s("label"), s(l))];
            if let Some(st) = st {
                e.push((s("static_label"), Y::Str(st.into(), Style::Escaped)));
            }
            e
        }),
        1 => (
            or_junk(str_of(&["selinux", "apparmor", "none"])),
            or_junk(str_of(&["dynamic", "static", "none"])),
            prop::option::of(prop_oneof![
                str_of(&[
                    "system_u:system_r:container_t:s0:c10,c20",
                    "system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023",
                    "system_u:system_r:spc_t:s0:c1,c2",
                    "unconfined",
                ]),
                any_str(),
            ]),
        )
            .prop_map(|(m, l, st)| {
                let mut e = vec![(s("model"), m), (s("label"), l)];
                e.extend(st.map(|st| (s("static_label"), st)));
                e
            }),
    ];
    let rest = map(vec![
        ("allow_range", boolean()),
        ("allow_type", boolean()),
        (
            "capabilities",
            map(vec![("policy", or_junk(str_of(&["default", "allow", "deny"]))), ("set", or_junk(capset))]),
        ),
        ("idmap", or_junk(idmap)),
    ]);
    let security = (labels, rest, any::<bool>())
        .prop_map(|(mut l, rest, flow)| {
            if let Y::Map(e, _) = rest {
                l.extend(e);
            }
            Y::Map(l, flow)
        })
        .boxed();
    let root = map(vec![
        ("description", or_junk(any_str())),
        (
            "distro",
            or_junk(str_of(&[
                "debian12",
                "centos7",
                "centos-stream9",
                "almalinux9",
                "rockylinux9",
                "fedora",
                "ubuntu",
            ])),
        ),
        ("release", or_junk(str_of(&["12", "9", "7", "43", "24.04", "trixie", "9.4", "bookworm", ".."]))),
        ("base_packages", or_junk(list(str_of(&["bash", "nginx", "systemd", "x.rpm", "-y"]), 4))),
        ("package_sets", or_junk(list(str_of(&["web-server", "nope"]), 3))),
        ("packages", or_junk(list(str_of(&["nginx", "openssh-server", "vim-enhanced", "file:x"]), 4))),
        ("repos", or_junk(list(repo, 3))),
        ("mirror", or_junk(str_of(urls))),
        ("trust", or_junk(map(vec![("gpgcheck", boolean())]))),
        ("memory_mib", num(&[16, 15, 256, 1_048_576, 1_048_577, 0])),
        ("vcpus", num(&[1, 0, 4096, 4097])),
        (
            "cpu",
            or_junk(map(vec![
                ("shares", num(&[2, 1, 1024, 262_144, 262_145])),
                ("period_us", num(&[1000, 999, 100_000, 1_000_000, 1_000_001])),
                ("quota_us", num(&[1000, 999, 50_000, 17_592_186_044_415, 17_592_186_044_416, -1])),
            ])),
        ),
        ("blkio_weight", num(&[100, 99, 500, 1000, 1001])),
        (
            "network",
            or_junk(map(vec![
                ("mode", or_junk(str_of(&["isolated", "network", "bridge"]))),
                ("name", str_of(&["lxcprov-isolated", "default", "br0", "averyveryverylongbridgename"])),
                ("filter", str_of(&["clean-traffic", "no-arp-spoofing"])),
            ])),
        ),
        ("security", or_junk(security)),
        (
            "init",
            or_junk(map(vec![
                (
                    "path",
                    prop_oneof![
                        str_of(&["/sbin/init", "/bin/sh", "/lib/systemd/systemd", "sbin/init"]),
                        (hostile_str(), style()).prop_map(|(v, st)| Y::Str(format!("/{v}"), st)),
                    ]
                    .boxed(),
                ),
                ("args", or_junk(list(any_str(), 4))),
            ])),
        ),
        ("hostname", str_of(&["web1", "a.b.c", "-x", "x_y"])),
        ("console", or_junk(map(vec![("enabled", boolean()), ("tty", str_of(&["pts/0", "tty1", "pts/00", "ttyS0"]))]))),
    ]);
    root
}

/// A whole structured profile document: framing, the mapping, and an alias plan.
#[derive(Clone, Debug)]
pub struct Doc {
    pub text: String,
}

fn add_aliases(y: &mut Y, plan: &[bool], i: &mut usize, anchored: &mut bool) {
    match y {
        Y::Str(..) => {
            let pick = plan.get(*i % plan.len().max(1)).copied().unwrap_or(false);
            *i += 1;
            if pick {
                if *anchored {
                    *y = Y::Alias("s".into());
                } else {
                    *anchored = true;
                    *y = Y::Anchor("s".into(), Box::new(y.clone()));
                }
            }
        }
        Y::Seq(v, _) => v.iter_mut().for_each(|x| add_aliases(x, plan, i, anchored)),
        Y::Map(v, _) => v.iter_mut().for_each(|(_, x)| add_aliases(x, plan, i, anchored)),
        _ => {}
    }
}

pub fn structured_doc() -> impl Strategy<Value = Doc> {
    let prefix = prop_oneof![
        20 => Just(""),
        1 => select(vec!["---\n", "%YAML 1.1\n---\n", "\u{feff}", "# comment\n", "--- !!map\n", "--- "]),
    ];
    let suffix = prop_oneof![
        20 => Just(""),
        1 => select(vec!["\n", "\n...\n", "\n---\n", "\n# end", "\n--- {}\n", "\n\u{0}"]),
    ];
    let aliases = prop::option::weighted(0.15, prop::collection::vec(prop::bool::weighted(0.3), 1..8));
    (prefix, profile_yaml(), suffix, aliases).prop_map(|(prefix, mut y, suffix, aliases)| {
        if let Some(plan) = aliases {
            add_aliases(&mut y, &plan, &mut 0, &mut false);
        }
        let mut body = String::new();
        emit(&y, 0, &mut body, false);
        let body = body.strip_prefix('\n').unwrap_or(&body).to_string();
        Doc { text: format!("{prefix}{body}{suffix}") }
    })
}
