//! `lab self-service LAB STUDENT -- REQUEST`: what a student's key runs at the lab's jump
//! account (through sudo, see [`crate::lab::self_service`]). The student is who the forced
//! command says; the request is theirs and untrusted. Every request is rate-limited per
//! student, logged with the student's key fingerprint, and acts on their own container only.

use crate::container;
use crate::context::Context;
use crate::lab::self_service::{self as ss, Bucket, LogEntry, Request};
use crate::name::Name;
use crate::storage::snapshot;
use anyhow::{bail, Context as _, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a restart waits for a graceful shutdown before forcing the container off.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a heavy request waits for one of the host's self-service slots.
const SLOT_WAIT: Duration = Duration::from_secs(120);

/// What was done, for the student.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Served {
    pub lab: String,
    pub student: String,
    pub container: String,
    pub verb: String,
    /// What the student reads (one or more lines).
    pub message: String,
}

/// The lab's self-service directory: `STATE/labs/LAB/self-service` (buckets, the log).
pub fn dir(ctx: &Context, lab: &Name) -> PathBuf {
    ctx.paths.state.join("labs").join(lab.as_str()).join("self-service")
}

/// Serves one request of `student` of lab `lab`; `sent` is what they sent. Refusals and
/// failures are errors with a message for the student; all of it is logged.
pub fn serve(ctx: &Context, lab: &str, student: &str, sent: &[u8], now: u64) -> Result<Served> {
    container::require_root("lab self-service")?;
    let (rec, acc) = crate::lab::access(ctx, lab)?;
    let lab_name = Name::parse(&rec.name)?;
    let st = acc
        .students
        .iter()
        .find(|s| s.student == student)
        .with_context(|| format!("lab {lab} has no student {}", crate::text::for_terminal(student)))?;
    let name = Name::parse(&st.container)?;
    let dir = dir(ctx, &lab_name);
    crate::fsutil::ensure_private_dir(&dir, 0o700)?;
    let log = |verb: Option<&str>, outcome: &str, message: &str| {
        let e = LogEntry {
            time: now,
            lab: rec.name.clone(),
            student: st.student.clone(),
            container: st.container.clone(),
            fingerprint: st.key.fingerprint.clone(),
            request: ss::logged_request(sent),
            verb: verb.map(str::to_string),
            outcome: outcome.into(),
            message: message.into(),
        };
        ss::append_log(&dir.join("log"), &e)
    };

    // The budget first: a refused or malformed request costs one too.
    if let Err(wait) = take_token(&dir, &st.student, now, &log)? {
        bail!(
            "too many requests: try again in {wait} s (you may make {} at once, then one every {} s)",
            ss::BURST,
            ss::REFILL_SECS
        );
    }
    let req = match ss::parse(sent, &st.container, &st.student) {
        Ok(r) => r,
        Err(e) => {
            log(None, "refused", &format!("{e:#}"))?;
            return Err(e);
        }
    };
    let _slot = if req.is_heavy() { Some(slot(ctx)?) } else { None };
    let r = run(ctx, &name, st.address.as_str(), &req);
    match &r {
        Ok(msg) => log(Some(req.verb()), "done", msg.lines().next().unwrap_or(""))?,
        Err(e) => log(Some(req.verb()), "failed", &format!("{e:#}"))?,
    }
    Ok(Served {
        lab: rec.name.clone(),
        student: st.student.clone(),
        container: st.container.clone(),
        verb: req.verb().into(),
        message: r?,
    })
}

/// Appends one line to the lab's self-service log: verb (when it parsed), outcome, message.
type Log<'a> = dyn Fn(Option<&str>, &str, &str) -> Result<()> + 'a;

/// Takes one token of the student's bucket under its lock; `Err(wait)` when it is empty (the
/// first refusal of an empty bucket is logged, the rest of that episode are not).
fn take_token(dir: &Path, student: &str, now: u64, log: &Log) -> Result<std::result::Result<(), u64>> {
    let (path, _lock, text) = crate::fsutil::lock::lock_and_read(dir, student, 4096, "self-service budget")?;
    // A damaged budget file starts empty: a student never gains by breaking it.
    let mut b = match text {
        None => Bucket::full(now),
        Some(t) => serde_json::from_str(&t).unwrap_or(Bucket { tokens: 0.0, at: now, refusal_logged: false }),
    };
    let r = b.take(now);
    if let Err(wait) = r {
        if !b.refusal_logged {
            log(None, "refused", &format!("too many requests: try again in {wait} s"))?;
            b.refusal_logged = true;
        }
    }
    crate::fsutil::write_atomic(&path, serde_json::to_string(&b)?.as_bytes(), 0o600)?;
    Ok(r)
}

/// One of the host's self-service slots (as many as it has CPUs, at least 2): students'
/// resets and restores never take more of the host at once, whatever their number.
fn slot(ctx: &Context) -> Result<crate::fsutil::lock::FileLock> {
    let n = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    let locks = ctx.paths.state.join("locks");
    std::fs::create_dir_all(&locks).with_context(|| format!("creating {}", locks.display()))?;
    let t = std::time::Instant::now();
    loop {
        for i in 0..n {
            if let Some(l) = crate::fsutil::lock::try_lock(&locks.join(format!("self-service-{i}.lock")))? {
                return Ok(l);
            }
        }
        if t.elapsed() > SLOT_WAIT {
            bail!("the host is busy with other students' requests; try again in a few minutes");
        }
        crate::interrupt::check()?;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Does what the request says to the student's container, under its lock.
fn run(ctx: &Context, name: &Name, address: &str, req: &Request) -> Result<String> {
    let pool = &ctx.paths.pool;
    if *req == Request::Help {
        return Ok(ss::help(name.as_str()));
    }
    let _lock = crate::state::lock(&ctx.paths, name)?;
    container::with_real_env(ctx, &*ctx.ui, |env| match req {
        Request::Help => unreachable!("answered above"),
        Request::Status => {
            let state = match env.container(name)?.state()? {
                crate::libvirt::State::Running => "running",
                crate::libvirt::State::Shutoff => "shut off",
                crate::libvirt::State::Other => "paused or in transition",
            };
            let snaps = snapshot::list(pool, name)?;
            Ok(format!(
                "{name} {state} at {address}; snapshots: {}\n",
                if snaps.is_empty() { "none".to_string() } else { tags(&snaps) }
            ))
        }
        Request::Snapshots => {
            let snaps = snapshot::list(pool, name)?;
            let mut s = String::new();
            for x in &snaps {
                s.push_str(&format!("{:44} {:>12} bytes  taken {}\n", x.tag, x.bytes, x.created));
            }
            if snaps.is_empty() {
                s.push_str("no snapshots yet; take one with `snapshot`\n");
            }
            Ok(s)
        }
        Request::Restart => {
            let forced = container::stop(env, name, RESTART_TIMEOUT)?;
            container::start(env, name)?;
            Ok(format!("{name} restarted{}\n", if forced { " (it had to be forced off)" } else { "" }))
        }
        Request::Reset => {
            let guest = crate::ops::reset::guest_of(ctx, &env.container(name)?)?;
            let r = crate::ops::reset::reset(env, name, &guest)?;
            Ok(format!("{name} is back on the lab's base{}\n", checks(r.as_ref())))
        }
        Request::Snapshot(tag) => {
            let own: Vec<_> =
                snapshot::list(pool, name)?.into_iter().filter(|s| s.tag.starts_with(ss::OWN_TAG_PREFIX)).collect();
            if own.len() >= ss::MAX_OWN_SNAPSHOTS {
                bail!(
                    "you keep {} snapshots, the most a student may ({}); delete one with `snapshot --delete --tag T`",
                    own.len(),
                    tags(&own)
                );
            }
            let tag = match tag {
                Some(t) => format!("{}{t}", ss::OWN_TAG_PREFIX),
                None => {
                    let n = own
                        .iter()
                        .filter_map(|s| s.tag.strip_prefix(ss::OWN_TAG_PREFIX).and_then(|n| n.parse::<u64>().ok()))
                        .max()
                        .unwrap_or(0);
                    format!("{}{}", ss::OWN_TAG_PREFIX, n + 1)
                }
            };
            let s = container::snapshot::take(env, name, Some(&tag))?;
            Ok(format!("snapshot {} of {name} ({} bytes of your changes)\n", s.tag, s.bytes))
        }
        Request::Restore(tag) => {
            let s = find_either(pool, name, tag)?;
            let guest = crate::ops::reset::guest_of(ctx, &env.container(name)?)?;
            let r = container::reset::reset_onto(env, name, &guest, None, Some(&s), false)?;
            Ok(format!("{name} is back at snapshot {}{}\n", s.tag, checks(r.as_ref())))
        }
        Request::Delete(tag) => {
            let full = format!("{}{tag}", ss::OWN_TAG_PREFIX);
            let s = snapshot::delete(pool, name, &full)?;
            Ok(format!("deleted snapshot {} of {name}\n", s.tag))
        }
    })
}

/// `tag` as listed, or the student's own `student-TAG`.
fn find_either(pool: &Path, name: &Name, tag: &str) -> Result<snapshot::Snapshot> {
    snapshot::find(pool, name, tag).or_else(|e| {
        let own = format!("{}{tag}", ss::OWN_TAG_PREFIX);
        if snapshot::check_tag(&own).is_ok() {
            snapshot::find(pool, name, &own).map_err(|_| e)
        } else {
            Err(e)
        }
    })
}

fn tags(s: &[snapshot::Snapshot]) -> String {
    s.iter().map(|s| s.tag.as_str()).collect::<Vec<_>>().join(", ")
}

fn checks(r: Option<&crate::verify::Report>) -> String {
    match r {
        Some(r) => {
            let (p, f, _) = r.counts();
            format!("; checks: {p} passed, {f} failed")
        }
        None => " (it was not running, and is not started)".into(),
    }
}
