//! Students reach their own container: `lab up --ssh-keys DIR` and `lab access LAB`.
//!
//! Each student's public key (`DIR/student07.pub`, or `DIR/LAB-student07.pub`) goes into
//! root's `authorized_keys` in that student's container, and only there. The lab network
//! gets an address on the host and one fixed DHCP lease per student (no dynamic range, so
//! nothing else gets an address), no DNS, no forwarding, and isolated bridge ports: the host
//! reaches every student, students do not reach each other. `lab access` prints the table,
//! an ssh_config (optionally through a jump host) and the jump account's `authorized_keys`
//! (each key may only open a tunnel to its own student's port 22).

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::Path;

/// The lab networks' addresses: one /24 per lab out of 10.213.0.0/16.
const NET_PREFIX: [u8; 2] = [10, 213];
/// The first student's host number (.1 is the host; .2-.10 stay free).
const FIRST_HOST: u32 = 11;
/// Students a lab with SSH access can have (one /24).
pub const MAX_STUDENTS: u32 = 240;
/// A public key file is one line; anything bigger is not a key.
const KEY_FILE_MAX: u64 = 16 << 10;

/// The key types sshd accepts for `authorized_keys` (no certificates, no DSA).
const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// A checked public key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKey {
    pub key_type: String,
    /// The base64 blob, exactly as given.
    pub blob: String,
    /// `SHA256:...`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
}

impl PublicKey {
    /// The `authorized_keys` line: type, blob and a comment lxcprov chose (never the file's).
    /// The key is parsed again first, since it may come from a hand-edited record: the line
    /// is one key and nothing else (no options, no second line).
    pub fn line(&self, comment: &str) -> Result<String> {
        self.check()?;
        checked_name(comment, "key comment")?;
        Ok(format!("{} {} {comment}", self.key_type, self.blob))
    }

    /// Parses the recorded key again as [`parse_public_key`] does; its fingerprint must agree.
    pub fn check(&self) -> Result<()> {
        let line = format!("{} {}", self.key_type, self.blob);
        let shown = crate::text::for_terminal(&line.chars().take(60).collect::<String>()).to_string();
        let k = parse_public_key(&line, &format!("the recorded key {shown:?}"))?;
        if k != *self {
            bail!("the recorded key {shown:?} does not match its recorded fingerprint {:?}", self.fingerprint);
        }
        Ok(())
    }
}

/// A name written into an ssh_config or `authorized_keys` (a host alias, a container, a lab,
/// a network): what [`crate::name::Name`] accepts, so it can carry no space, quote, newline,
/// wildcard or option.
fn checked_name<'a>(s: &'a str, what: &str) -> Result<&'a str> {
    crate::name::Name::parse(s).with_context(|| format!("{what} {:?}", crate::text::for_terminal(s)))?;
    Ok(s)
}

/// Parses one OpenSSH public key (`TYPE BASE64 [COMMENT]`); `origin` names it in errors.
/// Options (`command=...`, `from=...`) are refused: a teacher hands over keys, not policy.
pub fn parse_public_key(text: &str, origin: &str) -> Result<PublicKey> {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    let line = match lines.as_slice() {
        [one] => *one,
        [] => bail!("{origin}: no public key in it (expected one line: TYPE BASE64 [COMMENT])"),
        _ => bail!("{origin}: {} keys in it; give each student exactly one key", lines.len()),
    };
    let mut it = line.split_ascii_whitespace();
    let key_type = it.next().unwrap_or_default();
    if !KEY_TYPES.contains(&key_type) {
        if key_type.contains('=') || key_type.contains(',') {
            bail!("{origin}: options before the key are not accepted; the file must be a plain public key (TYPE BASE64 [COMMENT])");
        }
        bail!(
            "{origin}: {:?} is not a public key type sshd accepts (one of {})",
            crate::text::for_terminal(&key_type.chars().take(40).collect::<String>()),
            KEY_TYPES.join(", ")
        );
    }
    let blob = it.next().with_context(|| format!("{origin}: the key has a type but no key data"))?;
    let raw = base64_decode(blob).with_context(|| format!("{origin}: the key data is not base64"))?;
    check_blob(key_type, &raw).with_context(|| format!("{origin}: not a valid {key_type} public key"))?;
    use sha2::{Digest, Sha256};
    let fingerprint = format!("SHA256:{}", base64_encode_nopad(&Sha256::digest(&raw)));
    Ok(PublicKey { key_type: key_type.into(), blob: blob.into(), fingerprint })
}

/// Reads SSH wire-format fields (RFC 4251) from a key blob.
struct Wire<'a>(&'a [u8]);

impl<'a> Wire<'a> {
    /// A `string`: a 4-byte big-endian length and that many bytes.
    fn string(&mut self, what: &str) -> Result<&'a [u8]> {
        let len = self.0.get(..4).with_context(|| format!("the key data is truncated before its {what}"))?;
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let v = self
            .0
            .get(4..4usize.saturating_add(n))
            .with_context(|| format!("the key data is truncated in its {what}"))?;
        self.0 = &self.0[4 + n..];
        Ok(v)
    }

    /// An `mpint` that must be positive: its significant bytes (no sign byte, no leading
    /// zeros), refused when negative, zero or padded with more than one zero byte.
    fn positive_mpint(&mut self, what: &str) -> Result<&'a [u8]> {
        let v = self.string(what)?;
        if v.first().is_some_and(|b| b & 0x80 != 0) {
            bail!("its {what} is negative");
        }
        let sig = match v {
            [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
            [0, ..] => bail!("its {what} has a superfluous leading zero"),
            _ => v,
        };
        if sig.is_empty() {
            bail!("its {what} is zero");
        }
        Ok(sig)
    }

    fn end(&self) -> Result<()> {
        if !self.0.is_empty() {
            bail!("{} byte(s) follow the key data", self.0.len());
        }
        Ok(())
    }
}

/// The smallest and largest RSA moduli OpenSSH accepts, in bits.
const RSA_MIN_BITS: usize = 1024;
const RSA_MAX_BITS: usize = 16384;

/// Checks a decoded key blob as `ssh-keygen` and sshd read it: its own type equal to the
/// line's, the exact fields of that type with sane sizes, and nothing after them.
fn check_blob(key_type: &str, raw: &[u8]) -> Result<()> {
    let mut w = Wire(raw);
    let inner = w.string("type")?;
    if inner != key_type.as_bytes() {
        bail!(
            "the key data is a {:?} key, not {key_type}",
            crate::text::for_terminal(&String::from_utf8_lossy(&inner[..inner.len().min(40)]))
        );
    }
    let ecdsa = |w: &mut Wire, curve: &str, point_len: usize| -> Result<()> {
        let c = w.string("curve name")?;
        if c != curve.as_bytes() {
            bail!("its curve is {:?}, not {curve}", crate::text::for_terminal(&String::from_utf8_lossy(c)));
        }
        let q = w.string("public point")?;
        if q.len() != point_len || q[0] != 0x04 {
            bail!("its public point is not an uncompressed {curve} point ({point_len} bytes starting 0x04)");
        }
        Ok(())
    };
    match key_type {
        "ssh-ed25519" | "sk-ssh-ed25519@openssh.com" => {
            let k = w.string("public key")?;
            if k.len() != 32 {
                bail!("its public key is {} bytes, not 32", k.len());
            }
        }
        "ssh-rsa" => {
            let e = w.positive_mpint("exponent")?;
            if e.len() > 8 || e[e.len() - 1] & 1 == 0 || e == [1] {
                bail!("its public exponent is not a usable RSA exponent");
            }
            let n = w.positive_mpint("modulus")?;
            let bits = n.len() * 8 - n[0].leading_zeros() as usize;
            if !(RSA_MIN_BITS..=RSA_MAX_BITS).contains(&bits) {
                bail!("its modulus has {bits} bits (OpenSSH accepts {RSA_MIN_BITS} to {RSA_MAX_BITS})");
            }
        }
        "ecdsa-sha2-nistp256" | "sk-ecdsa-sha2-nistp256@openssh.com" => ecdsa(&mut w, "nistp256", 65)?,
        "ecdsa-sha2-nistp384" => ecdsa(&mut w, "nistp384", 97)?,
        "ecdsa-sha2-nistp521" => ecdsa(&mut w, "nistp521", 133)?,
        other => bail!("internal error: no blob check for {other}"),
    }
    if key_type.starts_with("sk-") {
        let app = w.string("application")?;
        if app.is_empty() || !app.iter().all(|b| b.is_ascii_graphic()) {
            bail!("its security-key application is empty or not printable");
        }
    }
    w.end()
}

fn base64_value(c: u8) -> Option<u32> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    } as u32)
}

/// Standard base64 with padding, strict (what OpenSSH writes).
fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() || !b.len().is_multiple_of(4) {
        bail!("length {} is not a multiple of 4", b.len());
    }
    let pad = b.iter().rev().take_while(|&&c| c == b'=').count();
    if pad > 2 {
        bail!("too much padding");
    }
    let mut out = Vec::with_capacity(b.len() / 4 * 3);
    for (i, chunk) in b.chunks(4).enumerate() {
        let last = i == b.len() / 4 - 1;
        let mut v = 0u32;
        let mut n = 0;
        for (j, &c) in chunk.iter().enumerate() {
            if c == b'=' && last && j >= 4 - pad {
                v <<= 6;
                continue;
            }
            v = (v << 6) | base64_value(c).context("a character outside the base64 alphabet")?;
            n += 1;
        }
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        out.extend_from_slice(&bytes[..n - 1]);
    }
    Ok(out)
}

fn base64_encode_nopad(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let v = (c[0] as u32) << 16 | (*c.get(1).unwrap_or(&0) as u32) << 8 | *c.get(2).unwrap_or(&0) as u32;
        for i in 0..=c.len() {
            s.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    s
}

/// One student's way in, as recorded in the lab record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StudentAccess {
    /// The container, `LAB-student07`.
    pub container: String,
    /// The name students use, `student07` (the ssh_config's `Host`).
    pub student: String,
    pub address: String,
    pub mac: String,
    pub key: PublicKey,
}

/// A lab's addresses and keys.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabAccess {
    pub network: String,
    /// The lab's /24, `10.213.X.0/24`.
    pub subnet: String,
    /// The host's address on the lab network.
    pub gateway: String,
    pub students: Vec<StudentAccess>,
}

/// Reads one key per student from `dir`: `student07.pub` or `LAB-student07.pub`. Every
/// student needs one; files that match no student are returned as warnings.
pub fn read_keys(dir: &Path, lab: &str, students: &[(String, String)]) -> Result<(Vec<PublicKey>, Vec<String>)> {
    let meta = std::fs::metadata(dir).with_context(|| format!("--ssh-keys {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("--ssh-keys {}: not a directory (give a directory with one STUDENT.pub per student)", dir.display());
    }
    let mut keys = vec![];
    let mut missing = vec![];
    for (container, short) in students {
        let candidates = [dir.join(format!("{short}.pub")), dir.join(format!("{container}.pub"))];
        let found: Vec<&std::path::PathBuf> = candidates.iter().filter(|p| p.symlink_metadata().is_ok()).collect();
        match found.as_slice() {
            [] => missing.push(format!("{short}.pub")),
            [p] => {
                // The directory's own files only: a key handed in as a symlink could make
                // lxcprov read (and quote in an error) any file root can read.
                if p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink()) {
                    bail!("{}: a symbolic link; key files must be regular files in {}", p.display(), dir.display());
                }
                let text = crate::fsutil::read_regular_bounded_to_string(p, KEY_FILE_MAX, "public key")?;
                keys.push(parse_public_key(&text, &p.display().to_string())?);
            }
            _ => bail!(
                "{short} has two key files ({} and {}); keep one",
                candidates[0].display(),
                candidates[1].display()
            ),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        bail!(
            "--ssh-keys {}: no key for {} student(s) ({}{}); every student needs one. Nothing was created.",
            dir.display(),
            missing.len(),
            shown.join(", "),
            if missing.len() > 5 { ", ..." } else { "" }
        );
    }
    let mut warnings = vec![];
    let known: std::collections::BTreeSet<String> =
        students.iter().flat_map(|(c, s)| [format!("{c}.pub"), format!("{s}.pub")]).collect();
    let mut extra: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pub") && !known.contains(n))
        .collect();
    extra.sort();
    if !extra.is_empty() {
        warnings.push(format!(
            "--ssh-keys: {} key file(s) match no student of lab {lab} and are not used: {}",
            extra.len(),
            crate::text::for_terminal(&extra.join(", "))
        ));
    }
    Ok((keys, warnings))
}

/// IPv4 prefixes (network, prefix length) the host already routes, from `/proc/net/route`
/// (the default route is left out: it overlaps everything by design).
pub fn host_routes(proc_net_route: &str) -> Vec<(Ipv4Addr, u32)> {
    proc_net_route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?;
            let dest = Ipv4Addr::from(dest.to_ne_bytes());
            let mask = u32::from_be_bytes(mask.to_ne_bytes());
            (mask != 0).then_some((dest, mask.count_ones()))
        })
        .collect()
}

fn overlaps(a: Ipv4Addr, alen: u32, b: Ipv4Addr, blen: u32) -> bool {
    let len = alen.min(blen);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    u32::from(a) & mask == u32::from(b) & mask
}

/// Picks the lab's /24: first free one from a start derived from the lab's name, avoiding
/// the host's routes and the subnets other labs hold.
pub fn choose_subnet(lab: &str, routes: &[(Ipv4Addr, u32)], taken: &[String]) -> Result<u8> {
    use sha2::{Digest, Sha256};
    let start = Sha256::digest(lab.as_bytes())[0] as u32;
    for i in 0..254u32 {
        let x = ((start + i) % 254 + 1) as u8;
        let net = Ipv4Addr::new(NET_PREFIX[0], NET_PREFIX[1], x, 0);
        let busy = routes.iter().any(|(d, l)| overlaps(net, 24, *d, *l)) || taken.iter().any(|t| *t == subnet_of(x));
        if !busy {
            return Ok(x);
        }
    }
    bail!(
        "no free /24 left in {}.{}.0.0/16 for the lab network (every one is routed or held by a lab)",
        NET_PREFIX[0],
        NET_PREFIX[1]
    )
}

fn subnet_of(x: u8) -> String {
    format!("{}.{}.{x}.0/24", NET_PREFIX[0], NET_PREFIX[1])
}

/// The lab's addresses: the host at .1, student `i` (0-based) at .11+i with a MAC made of
/// the same two numbers (unique on the host as long as the subnet is).
pub fn assign(network: &str, x: u8, students: &[(String, String)], keys: &[PublicKey]) -> Result<LabAccess> {
    if students.len() as u32 > MAX_STUDENTS {
        bail!(
            "--ssh-keys: a lab with SSH access has at most {MAX_STUDENTS} students (one /24), not {}",
            students.len()
        );
    }
    let students = students
        .iter()
        .zip(keys)
        .enumerate()
        .map(|(i, ((container, short), key))| {
            let host = FIRST_HOST + i as u32;
            StudentAccess {
                container: container.clone(),
                student: short.clone(),
                address: format!("{}.{}.{x}.{host}", NET_PREFIX[0], NET_PREFIX[1]),
                mac: format!("52:54:00:d5:{x:02x}:{host:02x}"),
                key: key.clone(),
            }
        })
        .collect();
    Ok(LabAccess {
        network: network.into(),
        subnet: subnet_of(x),
        gateway: format!("{}.{}.{x}.1", NET_PREFIX[0], NET_PREFIX[1]),
        students,
    })
}

/// An IPv4 address as recorded (`10.213.7.11`), parsed, never passed through as text.
fn checked_ip(s: &str, what: &str) -> Result<Ipv4Addr> {
    s.parse::<Ipv4Addr>()
        .with_context(|| format!("the recorded {what} {:?} is not an IPv4 address", crate::text::for_terminal(s)))
}

impl LabAccess {
    /// Checks everything the record says before any of it is written into an ssh_config, an
    /// `authorized_keys`, a lease or a table: the record is a file anyone with root can edit,
    /// and ssh runs what an ssh_config tells it to (`ProxyCommand`, `LocalCommand`).
    pub fn check(&self) -> Result<()> {
        let bad = |e: anyhow::Error| {
            e.context("the lab record's SSH access is not what lxcprov wrote; bring the lab down and up again, or fix the record")
        };
        self.check_fields().map_err(bad)
    }

    fn check_fields(&self) -> Result<()> {
        checked_name(&self.network, "network name")?;
        let net = self
            .subnet
            .strip_suffix("/24")
            .and_then(|a| a.parse::<Ipv4Addr>().ok())
            .filter(|a| a.octets()[3] == 0 && a.octets()[..2] == NET_PREFIX)
            .with_context(|| {
                format!("the recorded subnet {:?} is not a lab /24", crate::text::for_terminal(&self.subnet))
            })?;
        let inside = |ip: Ipv4Addr| ip.octets()[..3] == net.octets()[..3];
        let gw = checked_ip(&self.gateway, "gateway")?;
        if !inside(gw) {
            bail!("the recorded gateway {gw} is outside the lab's subnet {}", self.subnet);
        }
        for st in &self.students {
            checked_name(&st.container, "container name")?;
            checked_name(&st.student, "student name")?;
            let ip = checked_ip(&st.address, "address")?;
            if !inside(ip) || ip == gw || ip.octets()[3] == 0 || ip.octets()[3] == 255 {
                bail!("the recorded address {ip} of {} is not a student address in {}", st.container, self.subnet);
            }
            let mac_ok = st.mac.len() == 17
                && st.mac.split(':').count() == 6
                && st.mac.split(':').all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
            if !mac_ok {
                bail!(
                    "the recorded MAC address {:?} of {} is not one",
                    crate::text::for_terminal(&st.mac),
                    st.container
                );
            }
            st.key.check().with_context(|| format!("the key of {}", st.container))?;
        }
        Ok(())
    }

    /// The lab network's DHCP section for the network template.
    pub fn dhcp(&self) -> crate::profile::Dhcp {
        crate::profile::Dhcp {
            address: self.gateway.clone(),
            netmask: "255.255.255.0".into(),
            hosts: self.students.iter().map(|s| s.lease()).collect(),
        }
    }

    pub fn student(&self, container: &str) -> Option<&StudentAccess> {
        self.students.iter().find(|s| s.container == container)
    }

    /// An ssh_config with one `Host` per student; `jump` (`USER@HOST[:PORT]`) as ProxyJump.
    pub fn ssh_config(&self, lab: &str, jump: Option<&Jump>) -> Result<String> {
        self.check()?;
        checked_name(lab, "lab name")?;
        let mut s = format!(
            "# lxcprov lab {lab}: `ssh -F THIS_FILE student07` logs in as root in student07's container,\n\
             # with the student's own private key (the teacher gave lxcprov its public half).\n"
        );
        if jump.is_none() {
            s.push_str(
                "# Without ProxyJump this works from the lab host itself (the lab network is not routed further).\n",
            );
        }
        for st in &self.students {
            s.push_str(&format!(
                "\nHost {} {}\n    HostName {}\n    User root\n",
                checked_name(&st.student, "student name")?,
                checked_name(&st.container, "container name")?,
                checked_ip(&st.address, "address")?
            ));
            if let Some(j) = jump {
                s.push_str(&format!("    ProxyJump {j}\n"));
            }
            s.push_str(&format!(
                "    StrictHostKeyChecking accept-new\n    UserKnownHostsFile ~/.ssh/known_hosts.lxcprov-{lab}\n"
            ));
        }
        Ok(s)
    }

    /// The jump account's `authorized_keys`: each student's key may open one tunnel, to its
    /// own container's port 22, and nothing else (no shell, no pty, no other forwarding).
    /// With `self_service`, each key also runs its own student's forced command (the account
    /// then needs a shell, `/bin/sh`, for sshd to run it, and the sudoers rule of
    /// [`super::self_service::Forced::sudoers`]).
    pub fn jump_keys(&self, lab: &str, self_service: Option<&super::self_service::Forced>) -> Result<String> {
        self.check()?;
        checked_name(lab, "lab name")?;
        let mut s = match self_service {
            None => format!("# lxcprov lab {lab}: authorized_keys of the jump account (no shell is needed)\n"),
            Some(_) => format!(
                "# lxcprov lab {lab}: authorized_keys of the jump account (shell /bin/sh; sudoers from `lxcprov lab access {lab} --sudoers USER`)\n"
            ),
        };
        for st in &self.students {
            let ip = checked_ip(&st.address, "address")?;
            // The restrictions are always there: the key line itself carries no options.
            let forced = match self_service {
                Some(f) => format!(",{}", f.key_option(lab, checked_name(&st.student, "student name")?)?),
                None => String::new(),
            };
            s.push_str(&format!("restrict,port-forwarding,permitopen=\"{ip}:22\"{forced} {}\n", st.key_line()?));
        }
        Ok(s)
    }

    /// The sudoers rule for the jump account `user` (see [`Self::jump_keys`]).
    pub fn sudoers(&self, lab: &str, user: &str, forced: &super::self_service::Forced) -> Result<String> {
        self.check()?;
        checked_name(lab, "lab name")?;
        let students: Vec<&str> = self.students.iter().map(|s| s.student.as_str()).collect();
        forced.sudoers(lab, user, &students)
    }
}

impl StudentAccess {
    /// Root's `authorized_keys` line in this student's container.
    pub fn key_line(&self) -> Result<String> {
        self.key.line(&format!("lxcprov-{}", checked_name(&self.container, "container name")?))
    }

    pub fn lease(&self) -> crate::profile::DhcpHost {
        crate::profile::DhcpHost { mac: self.mac.clone(), ip: self.address.clone(), name: self.student.clone() }
    }
}

/// A jump host for the ssh_config, `USER@HOST[:PORT]`, checked so it cannot break the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jump(String);

impl Jump {
    pub fn parse(s: &str) -> Result<Jump> {
        let bad = || anyhow::anyhow!("--jump {:?}: expected USER@HOST or USER@HOST:PORT", crate::text::for_terminal(s));
        let (user, rest) = s.split_once('@').ok_or_else(bad)?;
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.contains(':') => (h, Some(p)),
            _ => (rest, None),
        };
        let user_ok = !user.is_empty()
            && user.len() <= 32
            && user.chars().all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
            && !user.starts_with('-');
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host.chars().all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
            && !host.starts_with('-');
        let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
        if !(user_ok && host_ok && port_ok) {
            return Err(bad());
        }
        Ok(Jump(s.into()))
    }
}

impl std::fmt::Display for Jump {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real key (ssh-keygen -t ed25519), and its fingerprint as ssh-keygen -l prints it.
    const ED: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbWMGpqvTlEUs9Oedxs4TY9gbNETadlP171vexTOpPH teacher@lab";

    #[test]
    fn parses_a_key_and_computes_its_fingerprint() {
        let k = parse_public_key(&format!("# student 1\n{ED}\n"), "s01.pub").unwrap();
        assert_eq!(k.key_type, "ssh-ed25519");
        assert_eq!(k.fingerprint, "SHA256:Jugl0qfZHmM0Q04hwfp0j0w4cygdoIOA4/FkmKNup2M");
        assert_eq!(
            k.line("c").unwrap(),
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGbWMGpqvTlEUs9Oedxs4TY9gbNETadlP171vexTOpPH c"
        );
    }

    #[test]
    fn hostile_key_files_are_refused_with_a_reason() {
        let e = |t: &str| format!("{:#}", parse_public_key(t, "k.pub").unwrap_err());
        assert!(e("").contains("no public key"));
        assert!(e(&format!("{ED}\n{ED}\n")).contains("2 keys"));
        assert!(e(&format!("command=\"/bin/sh\" {ED}")).contains("options"));
        assert!(e(&format!("from=\"*\",no-pty {ED}")).contains("options"));
        assert!(e("ssh-dss AAAAB3NzaC1kc3M=").contains("not a public key type"));
        assert!(e("ssh-ed25519").contains("no key data"));
        assert!(e("ssh-ed25519 !!!!").contains("not base64"));
        assert!(e("ssh-ed25519 AAAA").contains("truncated"));
        // An RSA blob labelled ed25519.
        assert!(e("ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQAB").contains("not ssh-ed25519"));
        assert!(e("\u{1b}[31m AAAA").contains("not a public key type"));
    }

    /// A key line of `ty` whose blob is the given SSH strings (raw bytes appended as is).
    fn key_of(ty: &str, fields: &[&[u8]], trailing: &[u8]) -> String {
        let mut raw = vec![];
        for f in fields {
            raw.extend_from_slice(&(f.len() as u32).to_be_bytes());
            raw.extend_from_slice(f);
        }
        raw.extend_from_slice(trailing);
        let mut enc = base64_encode_nopad(&raw);
        while !enc.len().is_multiple_of(4) {
            enc.push('=');
        }
        format!("{ty} {enc}")
    }

    // Real keys of the other types (ssh-keygen -t rsa -b 1024, -t ecdsa -b 256/384/521).
    const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDspmzKhQzRADcXLH3zQbLOA981vj8VFSTLhGcsXfAPye1ynhiKnu4i7LAd/sh0DGIK8wB5EViqHPw+XjwPoNWKlDmYu/7du8WjUFbU/guJpgQ80l3Ppg0N94P70bO0tN1kf1h3HfPFiXMY3B5L7G+asRIRD2ZjTbwMV1Fcu/5TfQ== root@vm";
    const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOQjESWTbJdkuw2aS+wKkOBPKsNOxSB+hkcJSnSQ7XDUL11CEXYBBGYZ98IpTnoJjLzTcv+8bLijYsOC7XCuAwk= root@vm";
    const P384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBB0lgOk+CcEXzd7IKNWk3gizwiYf5FSfsQMkHsHOgduaXw2hWBvt9TPibx0XNt3oNMjVOqk9ub0bju+azimK0NT030/V3g2cfAMbFPDef5xpRgJD59EV0bCR+o4/C+cFeQ==";
    const P521: &str = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBABs71yRSZuAVZBtgIBFOwF+U70EMzWh55sfX7iMDFgldVkEiMQQrX1f3c6LTRj2wp48e38uNCXGLrQI61hY+XHIQQH3riiWApWZ3Z6bXeq6O/+PRCrl65r7l4oOTeG/dIEqeZ1VpvwvPIrQhCSbxkdxHVN+otOYFyMmlu4OC+ILj5AaBQ==";

    #[test]
    fn keys_are_parsed_as_ssh_keygen_does() {
        for good in [ED, RSA, P256, P384, P521] {
            parse_public_key(good, "k").unwrap_or_else(|e| panic!("{good}: {e:#}"));
        }
        let sk = "sk-ssh-ed25519@openssh.com";
        parse_public_key(&key_of(sk, &[sk.as_bytes(), &[7; 32], b"ssh:"], b""), "k").unwrap();
        let sk_ec = "sk-ecdsa-sha2-nistp256@openssh.com";
        let mut point = vec![4u8];
        point.extend_from_slice(&[9; 64]);
        parse_public_key(&key_of(sk_ec, &[sk_ec.as_bytes(), b"nistp256", &point, b"ssh:"], b""), "k").unwrap();

        let e = |t: &str| format!("{:#}", parse_public_key(t, "k.pub").unwrap_err());
        let ed = "ssh-ed25519".as_bytes();
        // No key material, a short key, trailing bytes, a type mismatch.
        assert!(
            e(&key_of("ssh-ed25519", &[ed], b"")).contains("truncated"),
            "{}",
            e(&key_of("ssh-ed25519", &[ed], b""))
        );
        assert!(e(&key_of("ssh-ed25519", &[ed, b""], b"")).contains("0 bytes, not 32"));
        assert!(e(&key_of("ssh-ed25519", &[ed, &[1; 31]], b"")).contains("31 bytes, not 32"));
        assert!(e(&key_of("ssh-ed25519", &[ed, &[1; 32]], b"x")).contains("1 byte(s) follow"));
        assert!(e(&key_of("ssh-ed25519", &[ed, &[1; 32], b"more"], b"")).contains("follow"));
        assert!(e(&key_of("ssh-ed25519", &[b"ssh-rsa", &[1; 32]], b"")).contains("not ssh-ed25519"));
        assert!(e(&key_of(sk, &[sk.as_bytes(), &[7; 32]], b"")).contains("application"));
        // RSA: a negative, zero or even exponent, a small or missing modulus, trailing bytes.
        let rsa = "ssh-rsa".as_bytes();
        let n = [&[0u8][..], &[0xc5; 128]].concat();
        assert!(parse_public_key(&key_of("ssh-rsa", &[rsa, &[1, 0, 1], &n], b""), "k").is_ok());
        assert!(e(&key_of("ssh-rsa", &[rsa, &[0x81], &n], b"")).contains("negative"));
        assert!(e(&key_of("ssh-rsa", &[rsa, b"", &n], b"")).contains("zero"));
        assert!(e(&key_of("ssh-rsa", &[rsa, &[1, 0, 2], &n], b"")).contains("exponent"));
        assert!(e(&key_of("ssh-rsa", &[rsa, &[1, 0, 1], &[0x45; 64]], b"")).contains("511 bits"));
        assert!(e(&key_of("ssh-rsa", &[rsa, &[1, 0, 1]], b"")).contains("truncated"));
        assert!(e(&key_of("ssh-rsa", &[rsa, &[1, 0, 1], &n], b"\0")).contains("follow"));
        assert!(e(&key_of("ssh-rsa", &[rsa, &[1, 0, 1], &[0, 0, 0x45]], b"")).contains("leading zero"));
        // ECDSA: the wrong curve, a compressed or short point.
        let p256 = "ecdsa-sha2-nistp256".as_bytes();
        assert!(e(&key_of("ecdsa-sha2-nistp256", &[p256, b"nistp384", &point], b"")).contains("curve"));
        let mut compressed = point.clone();
        compressed[0] = 2;
        assert!(e(&key_of("ecdsa-sha2-nistp256", &[p256, b"nistp256", &compressed], b"")).contains("point"));
        assert!(e(&key_of("ecdsa-sha2-nistp256", &[p256, b"nistp256", &point[..33]], b"")).contains("point"));
        assert!(e(&key_of("ecdsa-sha2-nistp384", &["ecdsa-sha2-nistp384".as_bytes(), b"nistp384", &point], b""))
            .contains("point"));
        // A length that points far past the end is "truncated", not a huge allocation.
        assert!(e(&key_of("ssh-ed25519", &[], &[0xff, 0xff, 0xff, 0xff, 1])).contains("truncated"));
    }

    #[test]
    fn hostile_lab_records_never_reach_ssh_config_or_authorized_keys() {
        let k = parse_public_key(ED, "k").unwrap();
        let st: Vec<(String, String)> = (1..=2).map(|i| (format!("l-s{i:02}"), format!("s{i:02}"))).collect();
        let good = assign("lxcprov-lab-l", 7, &st, &vec![k.clone(); 2]).unwrap();
        good.check().unwrap();
        let jump = Jump::parse("lab@host.example").unwrap();
        type Edit = fn(&mut LabAccess);
        let edits: &[(&str, Edit)] = &[
            ("address", |a| a.students[0].address = "10.213.7.11\n    ProxyCommand sh -c id".into()),
            ("address", |a| a.students[0].address = "10.213.7.11:22\" ssh-ed25519 AAAA".into()),
            ("address", |a| a.students[0].address = "192.168.1.1".into()),
            ("student name", |a| a.students[0].student = "s01\n    ProxyCommand sh -c id".into()),
            ("student name", |a| a.students[0].student = "*".into()),
            ("container name", |a| a.students[0].container = "l-s01 x\nLocalCommand id".into()),
            ("network name", |a| a.network = "n'/><x".into()),
            ("gateway", |a| a.gateway = "10.213.7.1 x".into()),
            ("subnet", |a| a.subnet = "0.0.0.0/0".into()),
            ("MAC", |a| a.students[0].mac = "52:54:00:d5:07:0b'/>".into()),
            ("key", |a| a.students[0].key.key_type = "command=\"sh\" ssh-ed25519".into()),
            ("key", |a| a.students[0].key.blob = format!("{} \nssh-ed25519 AAAA", a.students[0].key.blob)),
            ("key", |a| a.students[0].key.blob = "AAAAC3NzaC1lZDI1NTE5AAAAIGbW".into()),
            ("fingerprint", |a| a.students[0].key.fingerprint = "SHA256:other".into()),
        ];
        for (what, edit) in edits {
            let mut a = good.clone();
            edit(&mut a);
            for e in [
                a.check().unwrap_err(),
                a.ssh_config("l", Some(&jump)).unwrap_err(),
                a.jump_keys("l", None).unwrap_err(),
            ] {
                let e = format!("{e:#}");
                assert!(e.contains(what) && e.contains("not what lxcprov wrote"), "{what}: {e}");
            }
        }
        // A key line, written into a container's authorized_keys, is checked too.
        let mut a = good.clone();
        a.students[0].key.blob.push_str(" x\nssh-rsa AAAA");
        assert!(a.students[0].key_line().is_err());
        assert!(good.ssh_config("l\nProxyCommand id", None).is_err());
        assert!(good.jump_keys("l\nssh-ed25519 AAAA", None).is_err());
        // Every jump key line carries its restrictions.
        let jk = good.jump_keys("l", None).unwrap();
        let lines: Vec<&str> = jk.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines.iter().all(|l| l.starts_with("restrict,port-forwarding,permitopen=\"10.213.7.")), "{jk}");
    }

    #[test]
    fn the_comment_never_reaches_authorized_keys() {
        let k = parse_public_key(&format!("{ED} \"injected\noptions"), "k").unwrap_err();
        // Two lines: refused as two keys (the second is not a key).
        assert!(format!("{k:#}").contains("keys in it"));
        let k = parse_public_key(&format!("{ED} evil,command=x"), "k").unwrap();
        assert!(!k.line("lxcprov-x").unwrap().contains("evil"));
    }

    #[test]
    fn base64_round_trips() {
        for n in 1..20u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            let mut enc = base64_encode_nopad(&data);
            while !enc.len().is_multiple_of(4) {
                enc.push('=');
            }
            assert_eq!(base64_decode(&enc).unwrap(), data, "{enc}");
        }
        assert!(base64_decode("A===").is_err());
        assert!(base64_decode("AA=A").is_err());
    }

    #[test]
    fn routes_are_read_from_proc() {
        let t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                 eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                 eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                 virbr1\t0005D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = host_routes(t);
        assert_eq!(r, vec![(Ipv4Addr::new(192, 0, 2, 0), 24), (Ipv4Addr::new(10, 213, 5, 0), 24)]);
    }

    #[test]
    fn subnets_avoid_routes_and_other_labs() {
        let x = choose_subnet("intro", &[], &[]).unwrap();
        let routed = choose_subnet("intro", &[(Ipv4Addr::new(10, 213, x, 0), 24)], &[]).unwrap();
        assert_ne!(routed, x);
        let held = choose_subnet("intro", &[], &[subnet_of(x)]).unwrap();
        assert_ne!(held, x);
        // A wider route covering the whole /16 leaves nothing.
        assert!(choose_subnet("intro", &[(Ipv4Addr::new(10, 0, 0, 0), 8)], &[]).is_err());
    }

    #[test]
    fn assignments_are_fixed_and_distinct() {
        let k = parse_public_key(ED, "k").unwrap();
        let st: Vec<(String, String)> = (1..=3).map(|i| (format!("l-s{i:02}"), format!("s{i:02}"))).collect();
        let a = assign("lxcprov-lab-l", 7, &st, &vec![k.clone(); 3]).unwrap();
        assert_eq!(a.gateway, "10.213.7.1");
        assert_eq!(a.students[0].address, "10.213.7.11");
        assert_eq!(a.students[2].mac, "52:54:00:d5:07:0d");
        let cfg = a.ssh_config("l", Some(&Jump::parse("lab-l@host.example:2222").unwrap())).unwrap();
        assert!(cfg.contains(
            "Host s02 l-s02\n    HostName 10.213.7.12\n    User root\n    ProxyJump lab-l@host.example:2222\n"
        ));
        let jk = a.jump_keys("l", None).unwrap();
        assert!(jk.contains("restrict,port-forwarding,permitopen=\"10.213.7.13:22\" ssh-ed25519 "));
        // Self-service: the same restrictions, plus the student's own forced command.
        let f = super::super::self_service::Forced::new(Path::new("/usr/bin/lxcprov"), &[]).unwrap();
        let jk = a.jump_keys("l", Some(&f)).unwrap();
        assert!(jk.contains("restrict,port-forwarding,permitopen=\"10.213.7.13:22\",command=\"/usr/bin/sudo -n /usr/bin/lxcprov lab self-service l s03 -- \\\"$SSH_ORIGINAL_COMMAND\\\"\" ssh-ed25519 "), "{jk}");
        let su = a.sudoers("l", "lab-l", &f).unwrap();
        assert_eq!(
            su.lines()
                .filter(|l| l.starts_with("lab-l ALL=(root) NOPASSWD: /usr/bin/lxcprov lab self-service l s0"))
                .count(),
            3,
            "{su}"
        );
        let many: Vec<(String, String)> = (0..=MAX_STUDENTS).map(|i| (format!("c{i}"), format!("s{i}"))).collect();
        assert!(assign("n", 7, &many, &vec![k; many.len()]).is_err());
    }

    #[test]
    fn jump_hosts_cannot_break_the_config() {
        assert!(Jump::parse("lab@10.0.0.1").is_ok());
        assert!(Jump::parse("lab@host.example:22").is_ok());
        for bad in ["host", "@h", "u@", "u@h:0", "u@h:x", "u@h\nProxyCommand x", "-oProxyCommand=x@h", "u@h p", "u@-h"]
        {
            assert!(Jump::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn key_files_come_from_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let st = vec![("l-s01".to_string(), "s01".to_string()), ("l-s02".to_string(), "s02".to_string())];
        std::fs::write(d.path().join("s01.pub"), ED).unwrap();
        let e = format!("{:#}", read_keys(d.path(), "l", &st).unwrap_err());
        assert!(e.contains("no key for 1 student(s) (s02.pub)"), "{e}");
        std::fs::write(d.path().join("l-s02.pub"), ED).unwrap();
        std::fs::write(d.path().join("s99.pub"), ED).unwrap();
        let (keys, warn) = read_keys(d.path(), "l", &st).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(warn[0].contains("s99.pub"));
        std::fs::write(d.path().join("s02.pub"), ED).unwrap();
        assert!(format!("{:#}", read_keys(d.path(), "l", &st).unwrap_err()).contains("two key files"));
        std::fs::remove_file(d.path().join("s02.pub")).unwrap();
        // A symlink is refused, even to a good key; so is a directory.
        std::fs::remove_file(d.path().join("l-s02.pub")).unwrap();
        std::os::unix::fs::symlink(d.path().join("s01.pub"), d.path().join("s02.pub")).unwrap();
        assert!(format!("{:#}", read_keys(d.path(), "l", &st).unwrap_err()).contains("symbolic link"));
        std::fs::remove_file(d.path().join("s02.pub")).unwrap();
        std::fs::create_dir(d.path().join("s02.pub")).unwrap();
        assert!(read_keys(d.path(), "l", &st).is_err());
        std::fs::remove_dir(d.path().join("s02.pub")).unwrap();
        // A FIFO where a key is meant is refused, not read (it would hang).
        let fifo = std::ffi::CString::new(d.path().join("s02.pub").as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(read_keys(d.path(), "l", &st).is_err());
    }
}
