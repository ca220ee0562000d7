//! Self-service for students: through the lab's SSH jump account, a student's key runs one
//! forced command, `sudo -n lxcprov lab self-service LAB STUDENT -- "$SSH_ORIGINAL_COMMAND"`,
//! so the student can reset, restart, snapshot and restore **their own** container and
//! nothing else, without host root and without libvirt access.
//!
//! Everything the student sends is untrusted: [`parse`] accepts only the verbs below, on the
//! student's own container, with plain tags; a [`Bucket`] per student bounds how often they
//! can make the host work; every request (done, refused or failed) is one line of the lab's
//! self-service log with the student's key fingerprint. The jump account's key lines and the
//! sudoers rule that allows exactly these commands are written by [`Forced`].

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The longest request a student may send (bytes).
pub const MAX_REQUEST: usize = 256;
/// Requests a student may make at once before waiting (the bucket's size).
pub const BURST: f64 = 10.0;
/// Seconds for one request to come back to the bucket.
pub const REFILL_SECS: f64 = 30.0;
/// Snapshots a student may keep (those they took themselves).
pub const MAX_OWN_SNAPSHOTS: usize = 5;
/// What a student's own snapshot tags start with (the teacher's are left alone).
pub const OWN_TAG_PREFIX: &str = "student-";
/// The self-service log is rotated (to `.1`) beyond this size.
pub const LOG_MAX: u64 = 1 << 20;
/// Where the jump account's forced command finds sudo.
pub const SUDO: &str = "/usr/bin/sudo";

/// What a student asked for, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Help,
    Status,
    Restart,
    Reset,
    /// A snapshot, with the tag the student gave (without [`OWN_TAG_PREFIX`]).
    Snapshot(Option<String>),
    Snapshots,
    Restore(String),
    /// Deletes one of the student's own snapshots.
    Delete(String),
}

impl Request {
    /// The verb, as logged.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Help => "help",
            Request::Status => "status",
            Request::Restart => "restart",
            Request::Reset => "reset",
            Request::Snapshot(_) => "snapshot",
            Request::Snapshots => "snapshots",
            Request::Restore(_) => "restore",
            Request::Delete(_) => "snapshot --delete",
        }
    }

    /// Does it make the host work (stop, copy, rebuild a layer)?
    pub fn is_heavy(&self) -> bool {
        matches!(
            self,
            Request::Restart | Request::Reset | Request::Snapshot(_) | Request::Restore(_) | Request::Delete(_)
        )
    }
}

/// What `help` (or an empty command) shows the student.
pub fn help(container: &str) -> String {
    format!(
        "Self-service for your container {container}. Send one of these as the ssh command:\n\
         \x20 status                        its state and your snapshots\n\
         \x20 restart                       shut it down and start it again\n\
         \x20 reset --yes                   back to the lab's base: everything you changed is deleted\n\
         \x20 snapshot [--tag T]            keep what you changed so far (at most {MAX_OWN_SNAPSHOTS} of your own)\n\
         \x20 snapshots                     list the snapshots you can restore\n\
         \x20 restore TAG --yes             back to a snapshot: everything changed since is deleted\n\
         \x20 snapshot --delete --tag T     delete one of your own snapshots\n\
         You may make {BURST} requests at once, then one every {REFILL_SECS} s.\n"
    )
}

/// Parses what the student sent (`SSH_ORIGINAL_COMMAND`) for their container `own` (student
/// `student`). Only the verbs of [`help`] are accepted, with no shell syntax (it is never
/// given to a shell), at most one name that must be the student's own, plain tags, and no
/// option twice. The message of a refusal is for the student and quotes nothing raw.
pub fn parse(sent: &[u8], own: &str, student: &str) -> Result<Request> {
    if sent.len() > MAX_REQUEST {
        bail!("the request is {} bytes; requests are at most {MAX_REQUEST} (send `help`)", sent.len());
    }
    let Ok(text) = std::str::from_utf8(sent) else { bail!("the request is not text; send `help`") };
    if let Some(c) = text.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ' || *c == '\t')) {
        bail!(
            "the request holds the character {:?}, which no command uses; send `help`",
            c.escape_default().to_string()
        );
    }
    let words: Vec<&str> = text.split_ascii_whitespace().collect();
    let Some((&verb, rest)) = words.split_first() else { return Ok(Request::Help) };
    if !["help", "status", "snapshots", "restart", "reset", "snapshot", "restore"].contains(&verb) {
        bail!("{} is not a self-service command; send `help`", shown(verb));
    }
    let mut yes = false;
    let mut delete = false;
    let mut tag: Option<&str> = None;
    let mut positional: Vec<&str> = vec![];
    let mut it = rest.iter();
    while let Some(&w) = it.next() {
        match w {
            "--yes" | "-y" if !yes => yes = true,
            "--delete" if !delete => delete = true,
            "--tag" if tag.is_none() => {
                let Some(&t) = it.next() else { bail!("--tag needs a tag") };
                tag = Some(t);
            }
            w if w.starts_with('-') => bail!("{verb}: the option {} is not accepted here; send `help`", shown(w)),
            w => positional.push(w),
        }
    }
    // A name is allowed where the lxcprov command has one, and must be the student's own.
    let mine = |w: &str| w == own || w == student;
    let refuse_other = |w: &str| -> anyhow::Error {
        anyhow::anyhow!("you may act only on your own container {own}, not on {}", shown(w))
    };
    let take_name = |positional: &mut Vec<&str>, wanted: usize| -> Result<()> {
        if positional.len() > wanted {
            let w = positional.remove(0);
            if !mine(w) {
                return Err(refuse_other(w));
            }
        }
        if positional.len() > wanted {
            bail!("{verb}: too many words ({}); send `help`", shown(positional[wanted]));
        }
        Ok(())
    };
    let flags_allowed = |allowed: &[&str]| -> Result<()> {
        for (set, name) in [(yes, "--yes"), (delete, "--delete"), (tag.is_some(), "--tag")] {
            if set && !allowed.contains(&name) {
                bail!("{verb}: the option {name} is not accepted here; send `help`");
            }
        }
        Ok(())
    };
    let checked_tag = |t: &str| -> Result<String> {
        crate::storage::snapshot::check_tag(t).map_err(|_| {
            anyhow::anyhow!("the tag {} is not one: use 1 to 40 letters, digits, '.', '_' or '-'", shown(t))
        })?;
        if t.len() > 40 {
            bail!("the tag {} is too long: use at most 40 characters", shown(t));
        }
        Ok(t.to_string())
    };
    let r = match verb {
        "help" => {
            flags_allowed(&[])?;
            take_name(&mut positional, 0)?;
            Request::Help
        }
        "status" | "snapshots" | "restart" => {
            flags_allowed(&[])?;
            take_name(&mut positional, 0)?;
            match verb {
                "status" => Request::Status,
                "snapshots" => Request::Snapshots,
                _ => Request::Restart,
            }
        }
        "reset" => {
            flags_allowed(&["--yes"])?;
            take_name(&mut positional, 0)?;
            if !yes {
                bail!("reset deletes everything you changed in {own} since it was created: send `reset --yes`");
            }
            Request::Reset
        }
        "snapshot" => {
            flags_allowed(&["--tag", "--delete"])?;
            take_name(&mut positional, 0)?;
            match (delete, tag) {
                (true, None) => bail!("snapshot --delete needs the snapshot: `snapshot --delete --tag T`"),
                (true, Some(t)) => Request::Delete(checked_tag(t.strip_prefix(OWN_TAG_PREFIX).unwrap_or(t))?),
                (false, t) => {
                    Request::Snapshot(t.map(|t| checked_tag(t.strip_prefix(OWN_TAG_PREFIX).unwrap_or(t))).transpose()?)
                }
            }
        }
        "restore" => {
            flags_allowed(&["--yes"])?;
            take_name(&mut positional, 1)?;
            let Some(&t) = positional.first() else {
                bail!("restore needs the snapshot: `restore TAG --yes` (see `snapshots`)")
            };
            let t = checked_tag_any(t)?;
            if !yes {
                bail!("restore deletes everything you changed in {own} since snapshot {t}: send `restore {t} --yes`");
            }
            Request::Restore(t)
        }
        other => bail!("{} is not a self-service command; send `help`", shown(other)),
    };
    Ok(r)
}

/// A tag as listed (a teacher's `snap-1` or the student's `student-x`).
fn checked_tag_any(t: &str) -> Result<String> {
    crate::storage::snapshot::check_tag(t)
        .map_err(|_| anyhow::anyhow!("the tag {} is not one (see `snapshots`)", shown(t)))?;
    Ok(t.to_string())
}

/// A word the student sent, for a message: at most 40 characters, escaped.
fn shown(w: &str) -> String {
    let cut: String = w.chars().take(40).collect();
    format!("{:?}{}", crate::text::for_terminal(&cut), if w.chars().count() > 40 { "..." } else { "" })
}

/// A student's request budget: `BURST` at once, one more every `REFILL_SECS`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// Requests left (fractional while refilling).
    pub tokens: f64,
    /// When `tokens` was last brought up to date (seconds since the epoch).
    pub at: u64,
    /// Whether the refusal of an empty bucket is already in the log (one line per episode).
    #[serde(default)]
    pub refusal_logged: bool,
}

impl Bucket {
    pub fn full(now: u64) -> Bucket {
        Bucket { tokens: BURST, at: now, refusal_logged: false }
    }

    /// Takes one request's token; `Err(seconds to wait)` when there is none.
    pub fn take(&mut self, now: u64) -> std::result::Result<(), u64> {
        let elapsed = now.saturating_sub(self.at) as f64;
        // A clock set back never adds tokens; a hand-edited file never exceeds the burst.
        let tokens = if self.tokens.is_finite() { self.tokens.clamp(0.0, BURST) } else { 0.0 };
        self.tokens = (tokens + elapsed / REFILL_SECS).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            self.refusal_logged = false;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) * REFILL_SECS - 1e-6).ceil().max(1.0) as u64)
        }
    }
}

/// One line of the self-service log.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LogEntry {
    pub time: u64,
    pub lab: String,
    pub student: String,
    pub container: String,
    /// The key that ran it (`SHA256:...`), from the lab record.
    pub fingerprint: String,
    /// What the student sent, escaped and cut to [`MAX_REQUEST`] characters.
    pub request: String,
    /// The verb when the request parsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
    /// `done`, `refused` (not allowed, or too many requests) or `failed`.
    pub outcome: String,
    pub message: String,
}

/// What the student sent, as it goes into the log: escaped, never more than the limit.
pub fn logged_request(sent: &[u8]) -> String {
    let cut = &sent[..sent.len().min(MAX_REQUEST)];
    let s = crate::text::for_terminal(&String::from_utf8_lossy(cut)).into_owned();
    if sent.len() > MAX_REQUEST {
        format!("{s}... ({} bytes)", sent.len())
    } else {
        s
    }
}

/// Appends one entry to the log at `path` (mode 0600), moving a log beyond [`LOG_MAX`] to
/// `PATH.1` first, so a student can never fill the host's disk through it.
pub fn append_log(path: &Path, e: &LogEntry) -> Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.len() > LOG_MAX) {
        let old = path.with_extension("log.1");
        std::fs::rename(path, &old).with_context(|| format!("rotating {}", path.display()))?;
    }
    let mut line = serde_json::to_string(e)?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.write_all(line.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The jump account's forced command and its sudoers rule: `sudo -n BIN [OPTIONS] lab
/// self-service LAB STUDENT -- "$SSH_ORIGINAL_COMMAND"`. Every word is checked to be a plain
/// path or option (`A-Z a-z 0-9 / . _ + -`), so nothing can break the `authorized_keys` line,
/// the shell sshd runs it with, or the sudoers file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forced {
    /// The lxcprov binary and the global options it needs (non-default directories).
    words: Vec<String>,
}

impl Forced {
    /// `bin` (absolute) with `options` (`--state-dir`, `/var/...`) before the subcommand.
    pub fn new(bin: &Path, options: &[(&str, &Path)]) -> Result<Forced> {
        let mut words = vec![plain_path(bin, "the lxcprov binary")?];
        for (opt, p) in options {
            if !opt.starts_with("--") || !opt[2..].bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
                bail!("{opt:?} is not an option the forced command can carry");
            }
            words.push(opt.to_string());
            words.push(plain_path(p, opt)?);
        }
        Ok(Forced { words })
    }

    /// The command without the student's request, for `lab` and `student`.
    fn command(&self, lab: &str, student: &str) -> Result<String> {
        for (w, what) in [(lab, "lab name"), (student, "student name")] {
            crate::name::Name::parse(w).map_err(|e| anyhow::anyhow!("{what}: {e:#}"))?;
        }
        Ok(format!("{} lab self-service {lab} {student} --", self.words.join(" ")))
    }

    /// The `command="..."` option of a student's jump key line.
    pub fn key_option(&self, lab: &str, student: &str) -> Result<String> {
        // sshd takes `\"` inside the option as a quote; sh -c then expands the variable as
        // one word (double-quoted: no splitting, no globbing, no command substitution).
        Ok(format!("command=\"{SUDO} -n {} \\\"$SSH_ORIGINAL_COMMAND\\\"\"", self.command(lab, student)?))
    }

    /// A sudoers rule letting `user` run exactly each student's forced command, as root.
    pub fn sudoers(&self, lab: &str, user: &str, students: &[&str]) -> Result<String> {
        let user_ok = !user.is_empty()
            && user.len() <= 32
            && user.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && user.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !user_ok {
            bail!(
                "{:?} is not a user name for sudoers: use lower-case letters, digits, '_' or '-', starting with a letter or '_'",
                crate::text::for_terminal(&user.chars().take(40).collect::<String>())
            );
        }
        let mut s = format!(
            "# lxcprov lab {lab}: the jump account {user} may run each student's self-service\n\
             # (its authorized_keys from `lxcprov lab access {lab} --jump-keys --self-service`), nothing else.\n\
             # Install with: visudo -cf FILE && install -m 0440 FILE /etc/sudoers.d/lxcprov-{lab}\n"
        );
        for st in students {
            s.push_str(&format!("{user} ALL=(root) NOPASSWD: {} *\n", self.command(lab, st)?));
        }
        Ok(s)
    }
}

fn plain_path(p: &Path, what: &str) -> Result<String> {
    let s = p.to_str().unwrap_or("");
    let ok = s.starts_with('/')
        && s.len() <= 200
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b))
        && !s.split('/').any(|c| c == "..");
    if !ok {
        bail!(
            "{what} {:?} cannot go into a forced command: use an absolute path of letters, digits, '/', '.', '_', '+' or '-'",
            crate::text::for_terminal(&p.to_string_lossy())
        );
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "intro-student01";
    fn p(s: &str) -> Result<Request> {
        parse(s.as_bytes(), OWN, "student01")
    }
    fn refused(s: &str) -> String {
        format!("{:#}", p(s).unwrap_err())
    }

    #[test]
    fn the_allowed_verbs_parse_on_the_students_own_container() {
        assert_eq!(p("").unwrap(), Request::Help);
        assert_eq!(p("   ").unwrap(), Request::Help);
        assert_eq!(p("help").unwrap(), Request::Help);
        assert_eq!(p("status").unwrap(), Request::Status);
        assert_eq!(p("status intro-student01").unwrap(), Request::Status);
        assert_eq!(p("restart student01").unwrap(), Request::Restart);
        assert_eq!(p("reset --yes").unwrap(), Request::Reset);
        assert_eq!(p("reset intro-student01 -y").unwrap(), Request::Reset);
        assert_eq!(p("snapshot").unwrap(), Request::Snapshot(None));
        assert_eq!(p("snapshot --tag before.lab2").unwrap(), Request::Snapshot(Some("before.lab2".into())));
        assert_eq!(p("snapshot --tag student-x").unwrap(), Request::Snapshot(Some("x".into())));
        assert_eq!(p("snapshots").unwrap(), Request::Snapshots);
        assert_eq!(p("restore snap-1 --yes").unwrap(), Request::Restore("snap-1".into()));
        assert_eq!(p("restore\tintro-student01  student-2 --yes").unwrap(), Request::Restore("student-2".into()));
        assert_eq!(p("snapshot --delete --tag x").unwrap(), Request::Delete("x".into()));
    }

    #[test]
    fn another_students_container_is_refused() {
        for s in [
            "reset intro-student02 --yes",
            "restart student02",
            "status intro-student02",
            "restore intro-student02 snap-1 --yes",
            "snapshot intro",
        ] {
            let e = refused(s);
            assert!(e.contains("only on your own container intro-student01"), "{s}: {e}");
        }
    }

    #[test]
    fn argument_injection_and_anything_else_is_refused_with_a_reason() {
        let long = "status ".to_string() + &"a".repeat(300);
        let cases: &[(&str, &str)] = &[
            ("rm -rf /", "not a self-service command"),
            ("reset", "send `reset --yes`"),
            ("restore snap-1", "send `restore snap-1 --yes`"),
            ("restore", "restore needs the snapshot"),
            ("reset --yes; id", "the option"),
            ("reset --yes ; id", "only on your own container"),
            ("status && id", "only on your own container"),
            ("status $(id)", "only on your own container"),
            ("status `id`", "only on your own container"),
            ("status --connect qemu:///system", "the option \"--connect\""),
            ("status --state-dir=/tmp/x", "the option"),
            ("reset --yes --yes", "the option \"--yes\""),
            ("snapshot --tag ../../etc", "not one"),
            ("snapshot --tag -rf", "is not one"),
            ("snapshot --tag", "--tag needs a tag"),
            ("snapshot --delete", "needs the snapshot"),
            ("restore ../x --yes", "not one"),
            ("restore a b c --yes", "only on your own container"),
            ("restore intro-student01 a b --yes", "too many words"),
            ("reset\n--yes", "character"),
            ("status\u{7}", "character"),
            ("statüs", "character"),
            ("lab down intro --purge --yes", "not a self-service command"),
            ("sh", "not a self-service command"),
            ("status extra words", "only on your own container"),
            ("snapshot --tag aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "too long"),
            ("--help", "not a self-service command"),
        ];
        for (s, want) in cases {
            let e = refused(s);
            assert!(e.contains(want), "{s:?}: {e}");
            assert!(!e.contains('\n') && e.len() < 300, "{s:?}: {e}");
        }
        assert!(refused(&long).contains("at most 256"));
        assert!(format!("{:#}", parse(b"status \xff", OWN, "student01").unwrap_err()).contains("not text"));
    }

    #[test]
    fn a_bucket_allows_a_burst_then_one_request_per_refill() {
        let mut b = Bucket::full(1000);
        for _ in 0..BURST as usize {
            assert!(b.take(1000).is_ok());
        }
        assert_eq!(b.take(1000), Err(REFILL_SECS as u64));
        assert_eq!(b.take(1010), Err(20));
        assert!(b.take(1030).is_ok());
        assert!(b.take(1030).is_err());
        // A clock set back, a hand-edited bucket: never more than the burst.
        let mut b = Bucket { tokens: 1e9, at: 5000, refusal_logged: false };
        for _ in 0..BURST as usize {
            assert!(b.take(4000).is_ok());
        }
        assert!(b.take(4000).is_err());
        let mut b = Bucket { tokens: f64::NAN, at: 0, refusal_logged: false };
        assert!(b.take(10).is_err());
    }

    #[test]
    fn the_log_is_escaped_bounded_and_rotated() {
        assert_eq!(logged_request(b"reset\x1b[2J --yes"), "reset\\u{1b}[2J --yes");
        let big = vec![b'a'; 10_000];
        let l = logged_request(&big);
        assert!(l.len() < MAX_REQUEST + 40 && l.ends_with("(10000 bytes)"), "{l}");
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("self-service.log");
        let e = LogEntry {
            time: 1,
            lab: "l".into(),
            student: "s".into(),
            container: "l-s".into(),
            fingerprint: "SHA256:x".into(),
            request: logged_request(&big),
            verb: None,
            outcome: "refused".into(),
            message: "m".into(),
        };
        for _ in 0..4000 {
            append_log(&path, &e).unwrap();
        }
        let now = std::fs::metadata(&path).unwrap().len();
        let old = std::fs::metadata(d.path().join("self-service.log.1")).unwrap().len();
        assert!(now <= LOG_MAX + 1000 && old <= LOG_MAX + 1000, "{now} {old}");
        // A link planted where the log goes is not followed.
        let d2 = tempfile::tempdir().unwrap();
        let target = d2.path().join("elsewhere");
        std::os::unix::fs::symlink(&target, d2.path().join("self-service.log")).unwrap();
        assert!(append_log(&d2.path().join("self-service.log"), &e).is_err());
        assert!(!target.exists());
    }

    #[test]
    fn forced_commands_and_sudoers_rules_carry_plain_words_only() {
        let f = Forced::new(Path::new("/usr/bin/lxcprov"), &[("--state-dir", Path::new("/srv/lx/state"))]).unwrap();
        assert_eq!(
            f.key_option("intro", "student01").unwrap(),
            "command=\"/usr/bin/sudo -n /usr/bin/lxcprov --state-dir /srv/lx/state lab self-service intro student01 -- \\\"$SSH_ORIGINAL_COMMAND\\\"\""
        );
        let s = f.sudoers("intro", "lab-intro", &["student01", "student02"]).unwrap();
        assert!(s.contains("\nlab-intro ALL=(root) NOPASSWD: /usr/bin/lxcprov --state-dir /srv/lx/state lab self-service intro student02 -- *\n"), "{s}");
        for bad in [
            "/tmp/a b",
            "/tmp/a\"b",
            "relative",
            "/tmp/$(id)",
            "/tmp/a,b",
            "/tmp/a:b",
            "/tmp/../etc",
            "/tmp/a\nb",
            "/tmp/a\\b",
        ] {
            assert!(Forced::new(Path::new(bad), &[]).is_err(), "{bad:?}");
            assert!(Forced::new(Path::new("/bin/x"), &[("--state-dir", Path::new(bad))]).is_err(), "{bad:?}");
        }
        assert!(Forced::new(Path::new("/bin/x"), &[("--x; id", Path::new("/a"))]).is_err());
        for bad in ["root ALL", "a,b", "", "Root", "-x", "a:b", &"a".repeat(33)] {
            assert!(f.sudoers("intro", bad, &["s1"]).is_err(), "{bad:?}");
        }
        assert!(f.key_option("intro", "s1 x").is_err());
        assert!(f.key_option("a\"b", "s1").is_err());
    }
}
