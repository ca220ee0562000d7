//! `proc_views`: the container sees its own uptime, load, CPUs and `/proc/stat`: every
//! `/proc` file the live XML binds (lxcfs's views) is a `fuse.lxcfs` mount in the init's
//! mount namespace (its `/proc/PID/mountinfo`, read from the host).

use super::{Check, Ctx};

pub(super) fn proc_views(cx: &Ctx) -> Check {
    const ID: &str = "proc_views";
    let wanted = &cx.facts.domain.proc_views;
    if wanted.is_empty() {
        return Check::skip(
            ID,
            "the live XML binds no /proc views (resources.proc_views off, or no lxcfs on the host at creation)",
            vec![],
        );
    }
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let path = cx.host.proc().join(init.to_string()).join("mountinfo");
    let info = match crate::fsutil::read_regular_bounded_to_string(&path, 4 << 20, "the init's mountinfo") {
        Ok(t) => t,
        Err(e) => return Check::fail(ID, format!("cannot read {}: {e:#}", path.display()), vec![]),
    };
    // `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER`
    let fstype_at = |point: &str| {
        info.lines().rev().find_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            (f.get(4) == Some(&point)).then(|| f.iter().position(|x| *x == "-").and_then(|i| f.get(i + 1)).copied())?
        })
    };
    let mut bad = vec![];
    let mut ev = vec![];
    for w in wanted {
        match fstype_at(w) {
            Some("fuse.lxcfs") => ev.push(format!("{w}: fuse.lxcfs")),
            Some(other) => bad.push(format!("{w} is {other}, not lxcfs's view")),
            None => bad.push(format!("{w} is not mounted over (the host's values show)")),
        }
    }
    Check::verdict(ID, bad, format!("{} /proc files are lxcfs's views of the container itself", wanted.len()), ev)
}
