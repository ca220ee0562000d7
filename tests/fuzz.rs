//! Property-based fuzzing of lxcprov's trust boundary (issue 14), on stable Rust.
//!
//! Three properties, each a proptest run with shrinking (a failure is reported with its
//! smallest input and the seed that replays it):
//!
//! - `profiles_structured`: profiles built as YAML from generated values (hostile strings in
//!   every quoting style, YAML special tokens, anchors and aliases, deep nesting, odd
//!   numbers, unknown keys) go through parse, validation, the command-line overrides and
//!   rendering, exactly as `lxcprov render` does.
//! - `profiles_mutated`: the built-in profiles, mutated byte by byte and token by token.
//! - `tar_import`: generated tar archives (raw ustar/GNU/pax headers: `..`, absolute names,
//!   symlinks out of the tree and members written through them, hard links to outside files,
//!   device nodes, setuid files, 0777 directories, xattrs, very long names, garbage) are
//!   imported the way `lxcprov bootstrap --rootfs-from` does: the import step of the real
//!   bootstrap plan (its tar argv, run by the real runner), `normalise_tree`, the guest
//!   configuration, the rename into place, and on failure the removal of the partial tree.
//!
//! What is asserted, per case:
//! - profiles: no panic; the result is `Ok` or an `Err` whose message carries no terminal
//!   control character but newlines; the rendered domain and network XML parse; their
//!   element/attribute/comment structure equals that rendered from a benign twin of the
//!   profile (every string that reaches the XML replaced by a plain word), so no hostile
//!   string ever adds or removes a node or an attribute; every capability element is one of
//!   libvirt's; each hostile string comes back out of the XML exactly as it went in (as text
//!   or an attribute value); each case takes less than `FUZZ_CASE_CPU_MS` (1000) ms of CPU.
//! - tar: no panic; nothing outside `POOL/NAME` is created, changed or removed (a snapshot
//!   of the temporary root, which holds sentinel files, directories and symlinks next to the
//!   pool and the tarball, is compared: type, mode, owner, size, mtime, link count, content,
//!   symlink target); on failure nothing is left in the pool; on success the pool holds
//!   exactly `NAME`, is `0700` root-owned, the tree's root is `0755` root-owned, the tree
//!   holds no character or block device and shares no inode with a file outside it; while it
//!   is assembled, the partial directory is never group- or other-accessible; each case takes
//!   less than 10 s of wall time.
//!
//! A watchdog aborts the process, printing the input, when a single case runs for more than
//! `FUZZ_HANG_SECS` (30) seconds: a hang is reported instead of waited on.
//!
//! Case counts: `FUZZ_CASES` (default 2000) in total, 45% each for the two profile
//! properties and 10% for tar (whose cases fork tar). `FUZZ_SEED` (64 hex digits) replays a
//! run; each property prints its seed, count and time. `scripts/fuzz.sh N` runs N cases in
//! release mode.
//!
//! The tar property extracts with `--same-owner` and creates device nodes, so it needs
//! root. Like a missing tool, a missing root fails under CI (`CI=true` or
//! `LXCPROV_REQUIRE_TOOLS=1`, as `scripts/test.sh` sets) and skips with a message elsewhere.

mod common;

use lxcprov::name::Name;
use lxcprov::profile::{self, Profile};
use lxcprov::render::{self, DomainSpec, NetworkSpec, Templates};
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::collections::BTreeMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Runner: case counts, seeds, timing, the hang watchdog.

fn total_cases() -> u64 {
    std::env::var("FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
}

fn seed() -> [u8; 32] {
    if let Ok(hex) = std::env::var("FUZZ_SEED") {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
            .collect();
        if let Ok(s) = <[u8; 32]>::try_from(bytes.as_slice()) {
            return s;
        }
        panic!("FUZZ_SEED must be 64 hex digits");
    }
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).expect("random seed");
    s
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Wall-clock start of the case in progress (ms since the epoch; 0 when none) and its input.
struct Watch {
    start_ms: AtomicU64,
    input: Mutex<String>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

/// One watchdog per property (they run on parallel test threads).
fn watchdog(name: &'static str) -> &'static Watch {
    static ALL: OnceLock<Mutex<BTreeMap<&'static str, &'static Watch>>> = OnceLock::new();
    let mut all = ALL.get_or_init(Default::default).lock().unwrap();
    all.entry(name).or_insert_with(|| {
        let w: &'static Watch =
            Box::leak(Box::new(Watch { start_ms: AtomicU64::new(0), input: Mutex::new(String::new()) }));
        let limit: u64 = std::env::var("FUZZ_HANG_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(200));
            let s = w.start_ms.load(Ordering::Relaxed);
            if s != 0 && now_ms().saturating_sub(s) > limit * 1000 {
                let input = w.input.lock().map(|i| i.clone()).unwrap_or_default();
                let shown: String = input.chars().take(8192).flat_map(char::escape_debug).collect();
                eprintln!("FUZZ HANG in {name}: one case ran for more than {limit} s; its input:\n{shown}");
                std::process::abort();
            }
        });
        w
    })
}

/// CPU time used by this thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn cpu_budget() -> Duration {
    Duration::from_millis(std::env::var("FUZZ_CASE_CPU_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1000))
}

#[derive(Default)]
struct Stats {
    cases: u64,
    counts: BTreeMap<&'static str, u64>,
    slowest: Duration,
}

impl Stats {
    fn count(&mut self, what: &'static str) {
        *self.counts.entry(what).or_default() += 1;
    }
}

/// Runs `cases` cases of `strategy` through `test`, with shrinking, and prints a summary.
fn fuzz<S, F>(name: &'static str, cases: u64, strategy: S, test: F)
where
    S: Strategy,
    S::Value: std::fmt::Debug,
    F: Fn(&S::Value, &mut Stats) -> Result<(), TestCaseError>,
{
    let seed = seed();
    let config = Config {
        cases: cases.min(u64::from(u32::MAX)) as u32,
        failure_persistence: None,
        max_shrink_iters: 4096,
        // Generated values are filtered rarely; do not give up on a long run.
        max_global_rejects: u32::MAX,
        ..Config::default()
    };
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &seed));
    let watch = watchdog(name);
    let stats = Mutex::new(Stats::default());
    let started = Instant::now();
    let result = runner.run(&strategy, |v| {
        *watch.input.lock().unwrap() = format!("{v:?}");
        watch.start_ms.store(now_ms(), Ordering::Relaxed);
        let mut st = stats.lock().unwrap();
        let t = Instant::now();
        let r = test(&v, &mut st);
        st.cases += 1;
        st.slowest = st.slowest.max(t.elapsed());
        watch.start_ms.store(0, Ordering::Relaxed);
        r
    });
    let st = stats.into_inner().unwrap();
    let took = started.elapsed();
    eprintln!(
        "fuzz {name}: {} cases ({} shrinking steps included) in {:.1} s ({:.0} cases/s), slowest case {:.1} ms, seed {}",
        st.cases,
        st.cases.saturating_sub(cases),
        took.as_secs_f64(),
        st.cases as f64 / took.as_secs_f64().max(1e-9),
        st.slowest.as_secs_f64() * 1000.0,
        hex(&seed)
    );
    eprintln!("fuzz {name}: outcomes {:?}", st.counts);
    if let Err(e) = result {
        panic!("fuzz {name} found a violation (replay with FUZZ_SEED={}): {e}", hex(&seed));
    }
}

// ---------------------------------------------------------------------------------------
// Hostile strings.

/// Fragments hostile to XML, YAML, terminals, templates, installers and labels.
const HOSTILE: &[&str] = &[
    "'",
    "\"",
    "<",
    ">",
    "&",
    "]]>",
    "<!--",
    "-->",
    "<![CDATA[",
    "&amp;",
    "&#0;",
    "&#x1;",
    "&lt;",
    "&#10;",
    "</description><evil a='1'/>",
    "' evil='x",
    "\" evil=\"x",
    "<?xml version='1.0'?>",
    "<!DOCTYPE x [<!ENTITY e 'x'>]>",
    "&e;",
    "{{ name }}",
    "{% if true %}",
    "{# #}",
    "${HOME}",
    "$(id)",
    "`id`",
    "\u{0}",
    "\u{1}",
    "\u{8}",
    "\u{b}",
    "\u{c}",
    "\u{1b}[31m",
    "\u{1b}]0;t\u{7}",
    "\u{7f}",
    "\u{80}",
    "\u{85}",
    "\u{9b}",
    "\u{a0}",
    "\u{ad}",
    "\u{202e}",
    "\u{202a}",
    "\u{2066}",
    "\u{2069}",
    "\u{200e}",
    "\u{61c}",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "\u{fdd0}",
    "\u{fdef}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{fffd}",
    "\u{1fffe}",
    "\u{10ffff}",
    "\u{d7ff}",
    "\u{e000}",
    "\r",
    "\n",
    "\r\n",
    "\t",
    " ",
    "  ",
    "é",
    "\u{301}",
    "😀",
    "\u{1f1fa}",
    "s0:c0.c1023",
    "system_u:system_r:spc_t:s0",
    "system_u:system_r:container_t:s0:c1,c2-s0:c0.c1023",
    "unconfined",
    "/",
    "../",
    "..",
    ".",
    "-rf",
    "--setopt=x",
    "x.rpm",
    "file:x",
    "http://x",
    "https://",
    "file:///",
    "\\",
    "\\0",
    "%",
    "%s",
    "%n",
    ":",
    ": ",
    "- ",
    "? ",
    "#",
    " #",
    "&a",
    "*a",
    "!!binary",
    "!!python/object:os.system",
    "!x",
    "%YAML",
    "---",
    "...",
    "|",
    ">",
    "{",
    "}",
    "[",
    "]",
    ",",
    "~",
    "null",
    "Null",
    "yes",
    "no",
    "on",
    "off",
    "y",
    "n",
    "true",
    "False",
    "0x1F",
    "0o17",
    "1e3",
    ".inf",
    "-.inf",
    ".nan",
    "0",
    "-1",
    "1_000",
    "<<",
    "=",
    "@",
    "c1",
    "web",
    "debian12",
];

/// Ordinary values, valid for some key.
const BENIGN: &[&str] = &[
    "",
    "x",
    "web server",
    "debian12",
    "centos7",
    "fedora",
    "12",
    "9",
    "7",
    "43",
    "24.04",
    "trixie",
    "9.4",
    "nginx",
    "openssh-server",
    "web-server",
    "https://deb.debian.org/debian",
    "http://mirror.example/centos",
    "file:///srv/repo",
    "https://example.org/RPM-GPG-KEY",
    "lxcprov-isolated",
    "clean-traffic",
    "br0",
    "default",
    "system_u:system_r:container_t:s0:c10,c20",
    "system_u:system_r:svirt_lxc_net_t:s0:c1,c2",
    "lxc-container-default",
    "libvirt-abc",
    "/sbin/init",
    "/bin/sh",
    "--verbose",
    "pts/0",
    "tty1",
    "web1",
    "on",
    "off",
    "static",
    "dynamic",
    "none",
    "selinux",
    "apparmor",
    "isolated",
    "network",
    "bridge",
    "default",
    "allow",
    "deny",
    "sys_admin",
    "net_raw",
    "mknod",
];

fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        2 => (0u32..0x100).prop_map(|u| char::from_u32(u).unwrap()),
        1 => select(vec!['\u{fffe}', '\u{ffff}', '\u{fdd0}', '\u{202e}', '\u{1b}', '\u{0}', '\u{85}', '\u{2028}']),
    ]
}

fn hostile_str() -> BoxedStrategy<String> {
    let fragment = prop_oneof![
        5 => select(HOSTILE).prop_map(str::to_string),
        3 => select(BENIGN).prop_map(str::to_string),
        2 => any_char().prop_map(String::from),
    ];
    prop_oneof![
        3 => select(BENIGN).prop_map(str::to_string),
        6 => prop::collection::vec(fragment.clone(), 1..8).prop_map(|v| v.concat()),
        2 => prop::collection::vec(any_char(), 0..24).prop_map(|v| v.into_iter().collect()),
        // Very long: up to ~20 kB.
        1 => (fragment, 1usize..5_000).prop_map(|(f, n)| f.repeat(n.min(20_000 / f.len().max(1)))),
    ]
    .boxed()
}

// ---------------------------------------------------------------------------------------
// A small YAML model and its emitter, so that documents can be written in every style.

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
struct Doc {
    text: String,
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

fn structured_doc() -> impl Strategy<Value = Doc> {
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

// ---------------------------------------------------------------------------------------
// Mutations of valid profiles.

#[derive(Clone, Debug)]
enum Mutation {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Replace(Index, u8),
    DupLine(Index),
    SwapLines(Index, Index),
    Indent(Index, i8),
    Truncate(Index),
    Splice(Index, Index, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let token = prop_oneof![
        4 => select(HOSTILE).prop_map(|s| s.as_bytes().to_vec()),
        2 => prop::collection::vec(any::<u8>(), 1..6),
        1 => (select(HOSTILE), 1usize..2000).prop_map(|(s, n)| s.repeat(n).into_bytes()),
        1 => select(vec!["\n  - x", "\n  x: 1", ": ", "\n- ", "\n---\n", " &a", " *a", " !!str", " !!int", "\t"])
            .prop_map(|s| s.as_bytes().to_vec()),
    ];
    prop_oneof![
        4 => (any::<Index>(), token).prop_map(|(i, t)| Mutation::Insert(i, t)),
        2 => (any::<Index>(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i, n)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        1 => any::<Index>().prop_map(Mutation::DupLine),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        1 => (any::<Index>(), -4i8..5).prop_map(|(i, d)| Mutation::Indent(i, d)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1usize..200).prop_map(|(a, b, n)| Mutation::Splice(a, b, n)),
    ]
}

fn apply(text: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = text.to_vec();
    for m in muts {
        let at = |i: &Index, b: &Vec<u8>| if b.is_empty() { 0 } else { i.index(b.len() + 1) };
        match m {
            Mutation::Insert(i, t) => {
                let p = at(i, &b);
                b.splice(p..p, t.iter().copied());
            }
            Mutation::Delete(i, n) => {
                let p = at(i, &b);
                let e = (p + n).min(b.len());
                b.drain(p..e);
            }
            Mutation::Replace(i, x) => {
                if !b.is_empty() {
                    let p = i.index(b.len());
                    b[p] = *x;
                }
            }
            Mutation::Truncate(i) => {
                let p = at(i, &b);
                b.truncate(p);
            }
            Mutation::Splice(a, c, n) => {
                if !b.is_empty() {
                    let from = a.index(b.len());
                    let piece: Vec<u8> = b[from..(from + n).min(b.len())].to_vec();
                    let to = at(c, &b);
                    b.splice(to..to, piece);
                }
            }
            Mutation::DupLine(_) | Mutation::SwapLines(..) | Mutation::Indent(..) => {
                let mut lines: Vec<Vec<u8>> = b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let n = lines.len();
                match m {
                    Mutation::DupLine(i) => {
                        let l = lines[i.index(n)].clone();
                        lines.insert(i.index(n), l);
                    }
                    Mutation::SwapLines(x, y) => lines.swap(x.index(n), y.index(n)),
                    Mutation::Indent(i, d) => {
                        let l = &mut lines[i.index(n)];
                        if *d > 0 {
                            l.splice(0..0, std::iter::repeat_n(b' ', *d as usize));
                        } else {
                            let k = l.iter().take((-*d) as usize).take_while(|&&c| c == b' ').count();
                            l.drain(..k);
                        }
                    }
                    _ => unreachable!(),
                }
                b = lines.join(&b'\n');
            }
        }
    }
    b
}

#[derive(Clone, Debug)]
struct Mutated {
    base: &'static str,
    muts: Vec<Mutation>,
}

fn mutated_doc() -> impl Strategy<Value = Mutated> {
    let bases: Vec<&'static str> = profile::BUILTIN.iter().map(|(_, t)| *t).chain([FULL_PROFILE]).collect();
    (select(bases), prop::collection::vec(mutation(), 1..8)).prop_map(|(base, muts)| Mutated { base, muts })
}

/// Every key of a profile, valid (the README's table, with a static label and an idmap).
const FULL_PROFILE: &str = r#"description: "every key"
distro: debian12
release: "12"
base_packages: [bash, systemd]
package_sets: [web-server]
packages: [nginx, openssh-server]
mirror: "https://deb.debian.org/debian"
trust: {gpgcheck: true}
memory_mib: 256
vcpus: 1
cpu: {shares: 1024, period_us: 100000, quota_us: 50000}
blkio_weight: 500
network:
  mode: isolated
  name: lxcprov-isolated
  filter: clean-traffic
security:
  model: selinux
  label: static
  static_label: "system_u:system_r:container_t:s0:c10,c20"
  capabilities:
    policy: default
    set: {sys_admin: off, net_raw: off}
  idmap:
    uid: &ids {start: 0, target: 200000, count: 65536}
    gid: *ids
init: {path: /sbin/init, args: ["--log-level=info", "a b"]}
hostname: web1
console: {enabled: true, tty: pts/0}
"#;

// ---------------------------------------------------------------------------------------
// The profile properties.

/// What a case renders besides the profile: a container name, profile name, pool and
/// `--security` override, each maybe hostile.
#[derive(Clone, Debug)]
struct Extras {
    name: String,
    profile_name: String,
    pool: String,
    security: Option<profile::SecModel>,
}

fn extras() -> impl Strategy<Value = Extras> {
    let name =
        prop_oneof![4 => select(vec!["web1", "c1", "a.b-c_d", "x"]).prop_map(str::to_string), 1 => hostile_str()];
    let pname = prop_oneof![4 => select(vec!["web", "p", "my.profile"]).prop_map(str::to_string), 1 => hostile_str()];
    let pool = prop_oneof![
        3 => Just("/var/lib/libvirt/filesystems".to_string()),
        2 => hostile_str().prop_map(|s| format!("/{}", s.replace('\0', ""))),
    ];
    let sec = prop::option::weighted(
        0.3,
        select(vec![profile::SecModel::Selinux, profile::SecModel::Apparmor, profile::SecModel::None]),
    );
    (name, pname, pool, sec).prop_map(|(name, profile_name, pool, security)| Extras {
        name,
        profile_name,
        pool,
        security,
    })
}

fn templates() -> &'static Templates {
    static T: OnceLock<Templates> = OnceLock::new();
    T.get_or_init(|| Templates::load(None).expect("built-in templates"))
}

/// An error shown to a person must carry no terminal control characters but newlines.
fn clean_error(e: &str) -> Result<(), TestCaseError> {
    if let Some(c) = e.chars().find(|&c| c != '\n' && lxcprov::text::needs_terminal_escape(c)) {
        return Err(TestCaseError::fail(format!(
            "error message carries U+{:04X} raw: {}",
            c as u32,
            e.chars().flat_map(char::escape_debug).take(2000).collect::<String>()
        )));
    }
    Ok(())
}

/// The shape of an XML node: names, namespaces and attribute names, comments and
/// processing instructions, but no text and no attribute values.
fn shape(n: roxmltree::Node, out: &mut String) {
    use roxmltree::NodeType;
    match n.node_type() {
        NodeType::Root => n.children().for_each(|c| shape(c, out)),
        NodeType::Element => {
            let t = n.tag_name();
            out.push_str(&format!("<{}|{}", t.namespace().unwrap_or(""), t.name()));
            let mut attrs: Vec<String> =
                n.attributes().map(|a| format!("{}|{}", a.namespace().unwrap_or(""), a.name())).collect();
            attrs.sort();
            let mut ns: Vec<String> = n.namespaces().map(|x| format!("{:?}={}", x.name(), x.uri())).collect();
            ns.sort();
            out.push_str(&format!(" {attrs:?} {ns:?}>"));
            n.children().for_each(|c| shape(c, out));
            out.push_str("</>");
        }
        NodeType::Comment => out.push_str("<!-- -->"),
        NodeType::PI => out.push_str("<? ?>"),
        NodeType::Text => {}
    }
}

fn parse_xml(xml: &str) -> Result<roxmltree::Document<'_>, TestCaseError> {
    roxmltree::Document::parse(xml)
        .map_err(|e| TestCaseError::fail(format!("rendered XML does not parse: {e}\n{}", xml.escape_debug())))
}

fn shape_of(xml: &str) -> Result<String, TestCaseError> {
    let d = parse_xml(xml)?;
    let mut s = String::new();
    shape(d.root(), &mut s);
    Ok(s)
}

/// The profile with every string that reaches the XML replaced by a plain word.
fn benign_twin(p: &Profile) -> Profile {
    let mut t = p.clone();
    t.description = if p.description.is_empty() { String::new() } else { "d".into() };
    t.release = p.release.as_ref().map(|_| "r".into());
    t.init.path = "/i".into();
    t.init.args = p.init.args.iter().map(|_| "a".to_string()).collect();
    t.network.name = "n".into();
    t.network.filter = p.network.filter.as_ref().map(|_| "f".into());
    t.security.static_label = p.security.static_label.as_ref().map(|_| "l".into());
    t
}

fn texts(d: &roxmltree::Document, tag: &str) -> Vec<String> {
    d.descendants().filter(|n| n.has_tag_name(tag)).map(|n| n.text().unwrap_or("").to_string()).collect()
}

fn attr(d: &roxmltree::Document, tag: &str, a: &str) -> Option<String> {
    d.descendants()
        .find(|n| n.has_tag_name(tag) && n.attribute(a).is_some())
        .and_then(|n| n.attribute(a))
        .map(str::to_string)
}

/// What escape_xml makes of a value XML cannot carry at all.
fn as_xml(s: &str) -> String {
    s.chars().map(|c| if lxcprov::text::is_xml_char(c) { c } else { '\u{FFFD}' }).collect()
}

fn check_eq(what: &str, got: Option<String>, want: &str) -> Result<(), TestCaseError> {
    let want = as_xml(want);
    if got.as_deref() != Some(want.as_str()) {
        return Err(TestCaseError::fail(format!("{what}: the XML holds {got:?}, the input was {want:?}")));
    }
    Ok(())
}

/// Parse, validate, override, revalidate and render `text`, then check the XML.
fn profile_case(text: &str, x: &Extras, st: &mut Stats) -> Result<(), TestCaseError> {
    let cpu = thread_cpu();
    let r = check_profile(text, x, st);
    let used = thread_cpu().saturating_sub(cpu);
    if used > cpu_budget() {
        return Err(TestCaseError::fail(format!("one case took {used:?} of CPU (budget {:?})", cpu_budget())));
    }
    r
}

fn check_profile(text: &str, x: &Extras, st: &mut Stats) -> Result<(), TestCaseError> {
    let origin = "fuzz.yaml";
    let (mut p, warnings) = match profile::parse_with_warnings(text, origin) {
        Ok(v) => v,
        Err(e) => {
            st.count("refused by parse or validation");
            if std::env::var_os("FUZZ_DEBUG").is_some() {
                let m = format!("{e:#}");
                eprintln!("REFUSED {}", m.lines().next().unwrap_or("").chars().take(150).collect::<String>());
            }
            return clean_error(&format!("{e:#}"));
        }
    };
    for w in &warnings {
        clean_error(w)?;
    }
    render::apply_overrides(&mut p, &render::Overrides { security: x.security });
    if let Err(e) = profile::check_located(&p, text, origin) {
        st.count("refused after --security");
        return clean_error(&format!("{e:#}"));
    }
    let name = match Name::parse(&x.name) {
        Ok(n) => n,
        Err(e) => {
            clean_error(&e.to_string())?;
            Name::parse("c1").unwrap()
        }
    };
    let pname = match profile::valid_profile_name(&x.profile_name) {
        Ok(()) => x.profile_name.clone(),
        Err(e) => {
            clean_error(&e)?;
            "p".into()
        }
    };
    let distro = lxcprov::distro::lookup(&p.distro)
        .map_err(|e| TestCaseError::fail(format!("a validated profile's distro is unknown: {e}")))?;
    let pool = PathBuf::from(&x.pool);
    let rootfs = pool.join(name.as_str());
    let t = templates();
    let spec = DomainSpec::new(&name, &pname, &p, &distro, &rootfs, None);
    let domain = t.domain(&spec).map_err(|e| TestCaseError::fail(format!("render failed: {e:#}")))?;
    let network = t
        .network(&NetworkSpec::new(&p.network.name))
        .map_err(|e| TestCaseError::fail(format!("network render failed: {e:#}")))?;

    // The same shape, rendered from plain words.
    let twin = benign_twin(&p);
    let c1 = Name::parse("c1").unwrap();
    let tspec = DomainSpec::new(&c1, "p", &twin, &distro, Path::new("/pool/c1"), None);
    let tdomain = t.domain(&tspec).map_err(|e| TestCaseError::fail(format!("twin render failed: {e:#}")))?;
    let tnetwork = t.network(&NetworkSpec::new("n")).unwrap();
    let (got, want) = (shape_of(&domain)?, shape_of(&tdomain)?);
    prop_assert_eq!(
        &got,
        &want,
        "the domain XML's structure differs from its benign twin's:\n{}",
        domain.escape_debug()
    );
    prop_assert_eq!(shape_of(&network)?, shape_of(&tnetwork)?, "network XML structure:\n{}", network);

    // Every hostile string comes back out exactly, as text or as an attribute value.
    let d = parse_xml(&domain)?;
    let desc = if p.description.is_empty() {
        format!("lxcprov container from profile {pname}")
    } else {
        p.description.clone()
    };
    check_eq("description", texts(&d, "description").pop(), &desc)?;
    check_eq("name", texts(&d, "name").pop(), name.as_str())?;
    check_eq("init", texts(&d, "init").pop(), &p.init.path)?;
    let args = texts(&d, "initarg");
    prop_assert_eq!(args.len(), p.init.args.len());
    for (a, want) in args.iter().zip(&p.init.args) {
        check_eq("initarg", Some(a.clone()), want)?;
    }
    check_eq("rootfs", attr(&d, "source", "dir"), &rootfs.display().to_string())?;
    check_eq("metadata profile", attr(&d, "container", "profile"), &pname)?;
    check_eq("metadata release", attr(&d, "container", "release"), &p.release_or(&distro))?;
    let net_attr = if p.network.mode == profile::NetMode::Bridge { "bridge" } else { "network" };
    check_eq("network name", attr(&d, "source", net_attr), &p.network.name)?;
    if let Some(f) = &p.network.filter {
        check_eq("filter", attr(&d, "filterref", "filter"), f)?;
    }
    if spec.seclabel_type == "static" {
        check_eq("label", texts(&d, "label").pop(), spec.static_label.as_deref().unwrap_or(""))?;
    }
    let caps = d.descendants().find(|n| n.has_tag_name("capabilities")).expect("capabilities element");
    let names: Vec<&str> = caps.children().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
    let want: Vec<&str> = p.security.capabilities.set.keys().map(String::as_str).collect();
    prop_assert_eq!(&names, &want);
    for n in names {
        prop_assert!(profile::CAPABILITIES.contains(&n), "capability element {:?} is not libvirt's", n);
    }
    let nd = parse_xml(&network)?;
    check_eq("network XML name", texts(&nd, "name").pop(), &p.network.name)?;
    st.count("accepted and rendered");
    if text.contains(['<', '>', '&', '\'', '"']) {
        st.count("accepted with XML metacharacters in the input");
    }
    Ok(())
}

fn profile_share() -> u64 {
    (total_cases() * 45 / 100).max(1)
}

#[test]
fn profiles_structured() {
    fuzz("profiles_structured", profile_share(), (structured_doc(), extras()), |(doc, x), st| {
        profile_case(&doc.text, x, st)
    });
}

#[test]
fn profiles_mutated() {
    fuzz("profiles_mutated", profile_share(), (mutated_doc(), extras()), |(m, x), st| {
        let bytes = apply(m.base.as_bytes(), &m.muts);
        // Profile files are read as UTF-8; invalid bytes are refused there, so the text that
        // reaches the parser is always valid UTF-8: use the lossy decoding to keep going.
        let text = String::from_utf8_lossy(&bytes);
        profile_case(&text, x, st)
    });
}

/// The benign twin really is benign, and the checks really catch a broken escape.
#[test]
fn the_structure_check_catches_injection() {
    let t = templates();
    let c1 = Name::parse("c1").unwrap();
    let distro = lxcprov::distro::lookup("debian12").unwrap();
    let mut p = profile::parse(FULL_PROFILE, "full.yaml").unwrap();
    p.description = "</description><evil a='1'/><description>".into();
    let spec = DomainSpec::new(&c1, "p", &p, &distro, Path::new("/pool/c1"), None);
    let good = t.domain(&spec).unwrap();
    let twin = DomainSpec::new(&c1, "p", &benign_twin(&p), &distro, Path::new("/pool/c1"), None);
    assert_eq!(shape_of(&good).unwrap(), shape_of(&t.domain(&twin).unwrap()).unwrap());
    // What an unescaped rendering would produce is caught.
    let broken = good.replace(&render::escape_xml(&p.description), &p.description);
    assert_ne!(shape_of(&broken).unwrap(), shape_of(&good).unwrap());
    let broken = good.replace("/pool/c1", "/pool/c1' evil='x");
    assert_ne!(shape_of(&broken).unwrap(), shape_of(&good).unwrap());
    assert!(clean_error("a\nb").is_ok() && clean_error("a\u{1b}[31m").is_err());
}

// ---------------------------------------------------------------------------------------
// Tar archives.

/// `@S@` in a name or link target stands for the absolute path of the sentinel directory,
/// `@T@` for the temporary root (which holds the pool).
#[derive(Clone, Debug)]
enum Entry {
    File {
        name: String,
        mode: u32,
        uid: u32,
        gid: u32,
        data: Vec<u8>,
    },
    Dir {
        name: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Symlink {
        name: String,
        target: String,
    },
    Hardlink {
        name: String,
        target: String,
    },
    Device {
        name: String,
        block: bool,
        major: u32,
        minor: u32,
        mode: u32,
    },
    Fifo {
        name: String,
        mode: u32,
    },
    /// A pax extended header for the next member.
    Pax {
        records: Vec<(String, Vec<u8>)>,
    },
    /// A header block with random bytes (a broken or hostile archive).
    Garbage {
        bytes: Vec<u8>,
    },
}

fn tar_name() -> BoxedStrategy<String> {
    let inside = select(vec![
        "etc",
        "etc/passwd",
        "etc/shadow",
        "etc/hostname",
        "etc/securetty",
        "usr/bin/su",
        "bin/sh",
        "tmp",
        "./",
        ".",
        "dev/sda",
        "dev/null",
        "a/b/c",
        "a",
        "a/b",
        "lnk",
        "lnk/planted",
        "lnk2/x",
        "etc/systemd/system",
        "lib/systemd/system/systemd-networkd.service",
        "root",
        "x",
        "",
    ]);
    let hostile = select(vec![
        "../planted",
        "../../planted",
        "../sentinel/planted",
        "a/../../planted",
        "./../planted",
        "@S@/planted",
        "@S@/secret",
        "@S@/dir/new",
        "@T@/pool/planted",
        "@T@/planted",
        "/planted",
        "//planted",
        "lnk/../../planted",
        "lnk/@S@",
        "etc/../../x",
        "..",
        "a/..",
        "a/../..",
        "x\ny",
        "x\u{1b}y",
        "dir/",
    ]);
    prop_oneof![
        16 => inside.prop_map(str::to_string),
        4 => hostile.prop_map(str::to_string),
        1 => (select(vec!["a/", "../", "x", "ab/cd/"]), 1usize..1200).prop_map(|(p, n)| p.repeat(n)),
        1 => prop::collection::vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 1..20)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
    .boxed()
}

fn link_target() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(vec![
            "@S@", "@S@/secret", "@S@/dir", "@S@/pub", "../../sentinel", "../../sentinel/secret", "/", "/etc", "..",
            "../..", ".", "@T@/pool", "@T@", "lnk", "etc/passwd", "etc", "/etc/shadow", "../../in.tar", "x", "",
        ])
        .prop_map(str::to_string),
        1 => tar_name(),
    ]
    .boxed()
}

fn mode() -> BoxedStrategy<u32> {
    prop_oneof![
        4 => select(vec![0o644, 0o755, 0o777, 0o4755, 0o6755, 0o2755, 0o1777, 0o000, 0o600, 0o7777, 0o666, 0o4777]),
        1 => 0u32..0o10000,
    ]
    .boxed()
}

fn owner() -> BoxedStrategy<u32> {
    prop_oneof![4 => Just(0u32), 2 => select(vec![1u32, 1000, 65534, 100_000, 65535, 2_097_151]), 1 => 0u32..0o7777777]
        .boxed()
}

fn entry() -> BoxedStrategy<Entry> {
    let data = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64),
        1 => Just(b"root:x:0:0::/root:/bin/sh\n".to_vec()),
        1 => (1usize..3000).prop_map(|n| vec![b'x'; n]),
    ];
    let pax_key = select(vec![
        "path",
        "linkpath",
        "size",
        "uid",
        "gid",
        "mode",
        "mtime",
        "uname",
        "SCHILY.xattr.user.x",
        "SCHILY.xattr.security.capability",
        "SCHILY.xattr.trusted.x",
        "SCHILY.xattr.security.selinux",
        "SCHILY.xattr.system.posix_acl_access",
        "GNU.sparse.map",
        "GNU.sparse.size",
        "SCHILY.devmajor",
        "comment",
    ]);
    let pax_value = prop_oneof![
        tar_name().prop_map(String::into_bytes),
        link_target().prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..24),
        select(vec!["0", "-1", "99999999999999999999", "1e9", "unconfined_u:object_r:etc_t:s0"])
            .prop_map(|s| s.as_bytes().to_vec()),
        // A file capability: version 2, cap_setuid|cap_sys_admin effective and permitted.
        Just(vec![0, 0, 0, 2, 0x80, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    ];
    prop_oneof![
        24 => (tar_name(), mode(), owner(), owner(), data).prop_map(|(name, mode, uid, gid, data)| Entry::File { name, mode, uid, gid, data }),
        16 => (tar_name(), mode(), owner(), owner()).prop_map(|(name, mode, uid, gid)| Entry::Dir { name, mode, uid, gid }),
        16 => (tar_name(), link_target()).prop_map(|(name, target)| Entry::Symlink { name, target }),
        10 => (tar_name(), link_target()).prop_map(|(name, target)| Entry::Hardlink { name, target }),
        8 => (tar_name(), any::<bool>(), select(vec![1u32, 8, 0, 4095]), select(vec![3u32, 5, 0, 1, 255]), mode())
            .prop_map(|(name, block, major, minor, mode)| Entry::Device { name, block, major, minor, mode }),
        4 => (tar_name(), mode()).prop_map(|(name, mode)| Entry::Fifo { name, mode }),
        1 => prop::collection::vec((pax_key.prop_map(str::to_string), pax_value), 1..3).prop_map(|records| Entry::Pax { records }),
        // Rare: tar stops at the first bad header.
        1 => prop::collection::vec(any::<u8>(), 0..512).prop_map(|bytes| Entry::Garbage { bytes }),
    ]
    .boxed()
}

#[derive(Clone, Debug)]
struct Archive {
    entries: Vec<Entry>,
    /// Leave out the two zero blocks at the end, or cut the archive short.
    truncate: Option<Index>,
}

fn archive() -> impl Strategy<Value = Archive> {
    (prop::collection::vec(entry(), 1..12), prop::option::weighted(0.05, any::<Index>()))
        .prop_map(|(entries, truncate)| Archive { entries, truncate })
}

fn octal(field: &mut [u8], v: u64) {
    let w = field.len() - 1;
    let s = format!("{v:0w$o}");
    if s.len() <= w {
        field[..w].copy_from_slice(s.as_bytes());
        field[w] = 0;
    } else {
        // GNU base-256 for values that do not fit.
        field.fill(0);
        field[0] = 0x80;
        let bytes = v.to_be_bytes();
        let n = field.len().min(8);
        let l = field.len();
        field[l - n..].copy_from_slice(&bytes[8 - n..]);
    }
}

/// One 512-byte header (GNU magic) and the data blocks.
#[allow(clippy::too_many_arguments)]
fn member(
    out: &mut Vec<u8>,
    name: &[u8],
    typeflag: u8,
    mode: u32,
    uid: u32,
    gid: u32,
    link: &[u8],
    data: &[u8],
    dev: (u32, u32),
) {
    // Names and links that do not fit get a GNU long-name member first.
    if name.len() > 99 {
        let mut n = name.to_vec();
        n.push(0);
        member(out, b"././@LongLink", b'L', 0o644, 0, 0, b"", &n, (0, 0));
    }
    if link.len() > 99 {
        let mut l = link.to_vec();
        l.push(0);
        member(out, b"././@LongLink", b'K', 0o644, 0, 0, b"", &l, (0, 0));
    }
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], u64::from(uid));
    octal(&mut h[116..124], u64::from(gid));
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], 1_700_000_000);
    h[156] = typeflag;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..265].copy_from_slice(b"ustar  \0");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    octal(&mut h[329..337], u64::from(dev.0));
    octal(&mut h[337..345], u64::from(dev.1));
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let cs = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(cs.as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn build_tar(a: &Archive, sentinel: &Path, troot: &Path) -> Vec<u8> {
    let sub = |s: &str| -> Vec<u8> {
        s.replace("@S@", &sentinel.display().to_string()).replace("@T@", &troot.display().to_string()).into_bytes()
    };
    let mut out = vec![];
    for e in &a.entries {
        match e {
            Entry::File { name, mode, uid, gid, data } => {
                member(&mut out, &sub(name), b'0', *mode, *uid, *gid, b"", data, (0, 0))
            }
            Entry::Dir { name, mode, uid, gid } => {
                member(&mut out, &sub(name), b'5', *mode, *uid, *gid, b"", b"", (0, 0))
            }
            Entry::Symlink { name, target } => {
                member(&mut out, &sub(name), b'2', 0o777, 0, 0, &sub(target), b"", (0, 0))
            }
            Entry::Hardlink { name, target } => {
                member(&mut out, &sub(name), b'1', 0o644, 0, 0, &sub(target), b"", (0, 0))
            }
            Entry::Device { name, block, major, minor, mode } => {
                member(&mut out, &sub(name), if *block { b'4' } else { b'3' }, *mode, 0, 0, b"", b"", (*major, *minor))
            }
            Entry::Fifo { name, mode } => member(&mut out, &sub(name), b'6', *mode, 0, 0, b"", b"", (0, 0)),
            Entry::Pax { records } => {
                let mut data = vec![];
                for (k, v) in records {
                    let v = if k == "path" || k == "linkpath" { sub(&String::from_utf8_lossy(v)) } else { v.clone() };
                    // "LEN KEY=VALUE\n", LEN counting itself.
                    let body = 1 + k.len() + 1 + v.len() + 1;
                    let mut len = body + 1;
                    while len.to_string().len() + body != len {
                        len = len.to_string().len() + body;
                    }
                    data.extend_from_slice(format!("{len} {k}=").as_bytes());
                    data.extend_from_slice(&v);
                    data.push(b'\n');
                }
                member(&mut out, b"./PaxHeaders/x", b'x', 0o644, 0, 0, b"", &data, (0, 0));
            }
            Entry::Garbage { bytes } => {
                let mut b = bytes.clone();
                b.resize(512, 0);
                out.extend_from_slice(&b);
            }
        }
    }
    out.extend_from_slice(&[0u8; 1024]);
    if let Some(i) = &a.truncate {
        let l = i.index(out.len());
        out.truncate(l);
    }
    out
}

/// Everything about one path that an escape could change (not atime).
#[derive(Debug, PartialEq, Eq, Clone)]
struct Inode {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    size: u64,
    mtime: (i64, i64),
    nlink: u64,
    ino: u64,
    content: Option<Vec<u8>>,
    target: Option<PathBuf>,
    xattrs: Vec<String>,
}

fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "symlink"
    } else if ft.is_dir() {
        "dir"
    } else if ft.is_file() {
        "file"
    } else if ft.is_char_device() {
        "char"
    } else if ft.is_block_device() {
        "block"
    } else if ft.is_fifo() {
        "fifo"
    } else {
        "socket"
    }
}

fn xattrs(p: &Path) -> Vec<String> {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    let mut buf = vec![0u8; 4096];
    // SAFETY: c is a NUL-terminated path, buf is writable for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return vec![];
    }
    buf.truncate(n as usize);
    buf.split(|&b| b == 0).filter(|s| !s.is_empty()).map(|s| String::from_utf8_lossy(s).into_owned()).collect()
}

/// Every path under `root` except those under `skip`, with its inode data.
fn snapshot(root: &Path, skip: &Path) -> BTreeMap<PathBuf, Inode> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        let ft = m.file_type();
        let dir = ft.is_dir();
        out.insert(
            p.clone(),
            Inode {
                kind: kind(ft),
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                size: if dir { 0 } else { m.size() },
                mtime: (m.mtime(), m.mtime_nsec()),
                nlink: m.nlink(),
                ino: m.ino(),
                content: ft.is_file().then(|| std::fs::read(&p).unwrap_or_default()),
                target: std::fs::read_link(&p).ok(),
                xattrs: xattrs(&p),
            },
        );
        if dir && p != skip {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                todo.push(e.path());
            }
        }
    }
    out
}

/// The paths under `root` (not following symlinks), with their metadata.
fn walk(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = vec![];
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let Ok(m) = std::fs::symlink_metadata(&p) else { continue };
        if m.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                todo.push(e.path());
            }
        }
        out.push((p, m));
    }
    out
}

/// Imports `a` as `lxcprov bootstrap c1 --rootfs-from T/in.tar` does, and checks.
fn tar_case(a: &Archive, st: &mut Stats) -> Result<(), TestCaseError> {
    use lxcprov::plan::Action;
    let t0 = Instant::now();
    // On a tmpfs where there is one: the guest configuration fsyncs each file it writes.
    let base = std::env::var_os("FUZZ_TMPDIR").map(PathBuf::from).unwrap_or_else(|| {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        }
    });
    let tmp = tempfile::Builder::new().prefix("lxcprov-fuzz-").tempdir_in(base).unwrap();
    let troot = tmp.path().to_path_buf();
    let sentinel = troot.join("sentinel");
    std::fs::create_dir_all(sentinel.join("dir")).unwrap();
    std::fs::write(sentinel.join("secret"), "host secret\n").unwrap();
    std::fs::write(sentinel.join("pub"), "public\n").unwrap();
    std::fs::write(sentinel.join("dir/file"), "inside\n").unwrap();
    std::os::unix::fs::symlink("/etc", sentinel.join("etc-link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(sentinel.join("secret"), std::fs::Permissions::from_mode(0o600)).unwrap();
    let ball = troot.join("in.tar");
    std::fs::write(&ball, build_tar(a, &sentinel, &troot)).unwrap();
    let paths =
        lxcprov::paths::Paths { pool: troot.join("pool"), cache: troot.join("cache"), state: troot.join("state") };
    let before = snapshot(&troot, &paths.pool);

    let name = Name::parse("c1").unwrap();
    let p = profile::parse(FULL_PROFILE, "full.yaml").unwrap();
    let distro = lxcprov::distro::lookup(&p.distro).unwrap();
    let tool = lxcprov::bootstrap::choose_tool(distro.installer, None, &|_| true).unwrap();
    let opts = lxcprov::bootstrap::Options { import: Some(ball.clone()), ..Default::default() };
    let plan = lxcprov::bootstrap::plan(&paths, &name, "full", &p, &distro, tool, &opts)
        .map_err(|e| TestCaseError::fail(format!("plan: {e:#}")))?;
    let runner = lxcprov::exec::SystemRunner::default();
    let strict_window = match &plan.source {
        lxcprov::bootstrap::Source::Import { cmd, .. } => cmd.args.iter().any(|a| a == "--no-overwrite-dir"),
        other => panic!("an import plan with source {}", other.kind()),
    };
    let hash = "$6$fuzzsalt$0123456789abcdef";

    // bootstrap::build: a clean partial tree, the private pool, then the build steps.
    lxcprov::fsutil::remove_tree(&plan.partial).unwrap();
    lxcprov::fsutil::ensure_private_dir(&paths.pool, lxcprov::import::POOL_MODE).unwrap();
    let mut exposed = None;
    let mut run = || -> anyhow::Result<()> {
        for step in plan.build_steps() {
            for action in &step.actions {
                match action {
                    Action::MkdirPrivate { path, mode } => lxcprov::fsutil::ensure_private_dir(path, *mode)?,
                    Action::Run { cmd } => {
                        let r = lxcprov::exec::Runner::run(&runner, cmd, &mut |_| {});
                        // While the tree is assembled, host users must not reach into it.
                        if let Ok(m) = std::fs::symlink_metadata(&plan.partial) {
                            if m.mode() & 0o077 != 0 || !m.is_dir() {
                                exposed = Some(m.mode());
                            }
                        }
                        r?
                    }
                    Action::CheckSpace { src, dest } => lxcprov::fsutil::check_free_space(src, dest)?,
                    Action::NormaliseImport { root } => {
                        lxcprov::import::normalise_tree(root)?;
                    }
                    Action::ConfigureGuest { root, .. } => plan.guest.apply(root, hash)?,
                    other => panic!("the import step has an action this harness does not know: {other:?}"),
                }
            }
        }
        Ok(())
    };
    let result = run();
    let ok = match &result {
        Ok(()) => {
            std::fs::rename(&plan.partial, &plan.rootfs).unwrap();
            st.count("imported");
            true
        }
        Err(e) => {
            // bootstrap::build removes the partial tree on failure.
            lxcprov::fsutil::remove_tree(&plan.partial)
                .map_err(|r| TestCaseError::fail(format!("removing the partial tree after {e:#} failed: {r:#}")))?;
            st.count(if format!("{e:#}").contains("`tar") { "refused by tar" } else { "refused after tar" });
            false
        }
    };
    if let Some(m) = exposed {
        // KNOWN FINDING (issue 14, class 7): a member named `./` sets the partial directory's
        // mode and owner (0777, any uid) until normalise_tree runs, against the README's
        // "assembled in POOL/.NAME.partial (mode 0700)". GNU tar's `--no-overwrite-dir` in
        // bootstrap's import command fixes it; this check becomes fatal once that is there.
        if strict_window {
            return Err(TestCaseError::fail(format!(
                "the partial tree was mode {m:o} after tar (reachable by host users while it is assembled)"
            )));
        }
        st.count("KNOWN FINDING: a ./ member changed the partial directory's mode (tar needs --no-overwrite-dir)");
    }

    // Nothing outside POOL/NAME changed.
    let after = snapshot(&troot, &paths.pool);
    for (path, was) in &before {
        match after.get(path) {
            None => return Err(TestCaseError::fail(format!("{} was removed", path.display()))),
            // The temporary root gains the pool: only its mode and owner must stay.
            Some(now) if path == &troot => {
                prop_assert_eq!((now.mode, now.uid, now.gid), (was.mode, was.uid, was.gid));
            }
            Some(now) if now != was => {
                return Err(TestCaseError::fail(format!("{} changed: {was:?} -> {now:?}", path.display())))
            }
            _ => {}
        }
    }
    let pool_entries: Vec<String> = std::fs::read_dir(&paths.pool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: Vec<String> = if ok { vec!["c1".into()] } else { vec![] };
    prop_assert_eq!(&pool_entries, &want, "the pool holds more than POOL/NAME");
    for path in after.keys() {
        if !before.contains_key(path) && !path.starts_with(&paths.pool) {
            return Err(TestCaseError::fail(format!("{} was created outside the pool", path.display())));
        }
    }
    let pm = std::fs::symlink_metadata(&paths.pool).unwrap();
    prop_assert_eq!((pm.mode() & 0o7777, pm.uid(), pm.gid()), (0o700, 0, 0), "pool mode and owner");

    if ok {
        let root = &plan.rootfs;
        let rm = std::fs::symlink_metadata(root).unwrap();
        prop_assert!(rm.is_dir());
        prop_assert_eq!((rm.mode() & 0o7777, rm.uid(), rm.gid()), (0o755, 0, 0), "the tree's root");
        let outside: std::collections::BTreeSet<(u64, u64)> = {
            let dev = std::fs::symlink_metadata(&troot).unwrap().dev();
            before.values().filter(|i| i.kind != "dir").map(|i| (dev, i.ino)).collect()
        };
        for (path, m) in walk(root) {
            let ft = m.file_type();
            prop_assert!(
                !ft.is_char_device() && !ft.is_block_device(),
                "a device node is left in the tree: {}",
                path.display()
            );
            prop_assert!(
                ft.is_dir() || !outside.contains(&(m.dev(), m.ino())),
                "{} shares its inode with a file outside the tree",
                path.display()
            );
            if m.mode() & 0o6000 != 0 && ft.is_file() {
                st.count("setuid/setgid files kept (as documented)");
            }
            if ft.is_dir() && m.mode() & 0o002 != 0 && path != *root {
                st.count("world-writable directories kept inside trees (as documented)");
            }
        }
    }
    let took = t0.elapsed();
    prop_assert!(took < Duration::from_secs(10), "one tar case took {:?}", took);
    Ok(())
}

#[test]
fn tar_import() {
    if !common::is_root() {
        let strict = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false")
            || std::env::var("LXCPROV_REQUIRE_TOOLS").is_ok_and(|v| v == "1");
        assert!(!strict, "the tar import fuzz property needs root (--same-owner, device nodes): run it as root in CI");
        eprintln!("SKIPPED: the tar import fuzz property needs root");
        return;
    }
    if !common::require_tool("tar") {
        return;
    }
    let cases = (total_cases() / 10).max(1);
    fuzz("tar_import", cases, archive(), tar_case);
}
