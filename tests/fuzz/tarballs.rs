//! Tar archives: generated members (raw ustar/GNU/pax headers: `..`, absolute names,
//! symlinks out of the tree and members written through them, hard links to outside files,
//! device nodes, setuid files, 0777 directories, xattrs, very long names, garbage) and the
//! writer that turns them into an archive's bytes.

use proptest::prelude::*;
use proptest::sample::{select, Index};
use std::path::Path;

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
pub struct Archive {
    entries: Vec<Entry>,
    /// Leave out the two zero blocks at the end, or cut the archive short.
    truncate: Option<Index>,
}

pub fn archive() -> impl Strategy<Value = Archive> {
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

pub fn build_tar(a: &Archive, sentinel: &Path, troot: &Path) -> Vec<u8> {
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
