//! `pidns` and `userns`: the init's PID and user namespaces, from `/proc/PID/status`
//! (`NSpid`), `/proc/PID/{uid_map,gid_map}` and the `ns/` links against PID 1's.

use super::procfs::{ns_inode, ns_link, ns_pair, read_trim, status_field};
use super::{Check, Ctx};
use crate::profile::IdRange;

/// `pidns`: `NSpid: <host> ... 1`, the host PID is not 1, and the pid namespace differs
/// from the host's.
pub(super) fn pidns(cx: &Ctx) -> Check {
    const ID: &str = "pidns";
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let proc = cx.host.proc();
    let (mut ev, mut bad) = (Vec::new(), Vec::new());
    if init == 1 {
        bad.push("the container's init is the host's PID 1".into());
    }
    let path = proc.join(init.to_string()).join("status");
    match std::fs::read_to_string(&path) {
        Err(e) => bad.push(format!("cannot read {}: {e}", path.display())),
        Ok(status) => match status_field(&status, "NSpid") {
            None => bad.push(format!("{} has no NSpid line", path.display())),
            Some(v) => {
                ev.push(format!("{}: NSpid: {}", path.display(), v.split_whitespace().collect::<Vec<_>>().join(" ")));
                bad.extend(nspid_problem(v, init));
            }
        },
    }
    let ns = ns_pair(&proc, init, "pid", &mut ev);
    let ok = match &ns {
        Err(e) => {
            bad.push(format!("cannot compare pid namespaces: {e}"));
            String::new()
        }
        Ok((a, b)) if a == b => {
            bad.push(format!("shares the host's pid namespace ({a})"));
            String::new()
        }
        Ok((a, b)) => {
            format!("init is PID 1 inside, {init} on the host; pid ns {} != host {}", ns_inode(a), ns_inode(b))
        }
    };
    Check::verdict(ID, bad, ok, ev)
}

/// What is wrong with an `NSpid` value for `init`, if anything.
pub(super) fn nspid_problem(value: &str, init: u32) -> Option<String> {
    let ids: Vec<&str> = value.split_whitespace().collect();
    match ids.as_slice() {
        [] => Some("NSpid is empty".into()),
        [only] => Some(format!("NSpid is just {only}: init is not in a child pid namespace")),
        [first, .., last] if *first != init.to_string() => {
            Some(format!("NSpid starts with {first}, not the init's host PID {init} (last {last})"))
        }
        [.., last] if *last != "1" => Some(format!("init is PID {last} inside its namespace, not 1")),
        _ => None,
    }
}

/// `userns`: the init's uid/gid maps are the profile's, root inside is not root outside,
/// and the user namespace differs from the host's.
pub(super) fn userns(cx: &Ctx) -> Check {
    const ID: &str = "userns";
    let Some(want) = cx.expect.idmap else {
        if cx.expect.baseline {
            return Check::fail(
                ID,
                "no user namespace: root in the container is root on the host (paper, section 3.5)",
                vec![format!(
                    "the live XML has {}",
                    if cx.facts.domain.idmap.is_some() { "an <idmap>" } else { "no <idmap>" }
                )],
            );
        }
        return Check::skip(ID, "profile sets no idmap", vec![]);
    };
    let init = match cx.running(ID) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let proc = cx.host.proc();
    let (mut ev, mut bad) = (Vec::new(), Vec::new());
    let dir = proc.join(init.to_string());
    for (file, range) in [("uid_map", want.uid), ("gid_map", want.gid)] {
        check_map(&dir.join(file), file, range, &mut ev, &mut bad);
    }
    match cx.facts.domain.idmap {
        Some(live) if live == want => ev.push("live XML <idmap> matches the profile".into()),
        Some(live) => bad.push(format!("the live XML's idmap {live:?} is not the profile's {want:?}")),
        None => bad.push("the live XML has no <idmap>".into()),
    }
    let ns = ns_pair(&proc, init, "user", &mut ev);
    match &ns {
        Err(e) => bad.push(format!("cannot compare user namespaces: {e}")),
        Ok((a, b)) if a == b => bad.push(format!("shares the host's user namespace ({a})")),
        Ok(_) => {}
    }
    let host_ns =
        ns.as_ref().map(|(a, b)| format!("; user ns {} != host {}", ns_inode(a), ns_inode(b))).unwrap_or_default();
    // Who else maps these host ids: nobody, for an isolated range.
    let mut shared = String::new();
    if let Ok((mine, host)) = &ns {
        let others = namespaces_mapping(&proc, init, mine, host, want.uid);
        let span = format!("{}..{}", want.uid.target, u64::from(want.uid.target) + u64::from(want.uid.count));
        match (&others[..], cx.expect.idmap_isolated) {
            ([], true) => shared = format!("; isolated: no other user namespace maps host uids {span}"),
            ([], false) => ev.push(format!("no other user namespace maps host uids {span}")),
            (o, true) => bad.push(format!(
                "its isolated range (host uids {span}) is also mapped by {}",
                o.iter().map(|(ns, pid)| format!("user namespace {ns} (pid {pid})")).collect::<Vec<_>>().join(", ")
            )),
            (o, false) => {
                shared = format!("; the profile's map is shared with {} other user namespace(s)", o.len());
                ev.extend(
                    o.iter()
                        .map(|(ns, pid)| format!("host uids {span} also mapped by user namespace {ns} (pid {pid})")),
                );
            }
        }
    }
    let ok = format!(
        "root inside is uid {} on the host (uid_map {}, gid_map {}){host_ns}{shared}",
        want.uid.target,
        fmt_range(want.uid),
        fmt_range(want.gid)
    );
    Check::verdict(ID, bad, ok, ev)
}

/// Other user namespaces on the host whose uid map meets `want`'s host ids: one process of
/// each (namespace inode, pid). The container's own processes are left out, nested
/// namespaces included (they share its PID namespace), as are the host's and zombies.
fn namespaces_mapping(proc: &std::path::Path, init: u32, mine: &str, host: &str, want: IdRange) -> Vec<(String, u32)> {
    let my_pidns = ns_link(proc, init, "pid").ok();
    let (lo, hi) = (u64::from(want.target), u64::from(want.target) + u64::from(want.count));
    let mut seen = std::collections::BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(proc) else { return vec![] };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(user) = ns_link(proc, pid, "user") else { continue };
        if user == mine || user == host || seen.contains_key(&user) {
            continue;
        }
        if my_pidns.is_some() && ns_link(proc, pid, "pid").ok() == my_pidns {
            continue;
        }
        // A zombie (a destroyed container's init its parent has not reaped yet) holds nothing.
        if super::procfs::is_zombie(&e.path()) {
            continue;
        }
        let text = std::fs::read_to_string(e.path().join("uid_map")).unwrap_or_default();
        let meets = parse_map(&text).unwrap_or_default().iter().any(|r| {
            let (a, b) = (u64::from(r.target), u64::from(r.target) + u64::from(r.count));
            a < hi && lo < b
        });
        if meets {
            seen.insert(user, pid);
        }
    }
    seen.into_iter().map(|(ns, pid)| (ns_inode(&ns).to_string(), pid)).collect()
}

fn fmt_range(r: IdRange) -> String {
    format!("{} {} {}", r.start, r.target, r.count)
}

/// One `uid_map`/`gid_map` file against the profile's range.
fn check_map(path: &std::path::Path, file: &str, want: IdRange, ev: &mut Vec<String>, bad: &mut Vec<String>) {
    let text = match read_trim(path) {
        Ok(t) => t,
        Err(e) => {
            bad.push(format!("cannot read {file}: {e}"));
            return;
        }
    };
    let lines = match parse_map(&text) {
        Ok(l) => l,
        Err(e) => {
            bad.push(format!("{}: {e}", path.display()));
            return;
        }
    };
    let shown: Vec<String> = lines.iter().map(|r| fmt_range(*r)).collect();
    ev.push(format!("{}: {}", path.display(), shown.join(" | ")));
    if lines != [want] {
        bad.push(format!("{file} is [{}], the profile wants [{}]", shown.join(" | "), fmt_range(want)));
    }
    let what = &file[..3];
    match map_id(&lines, 0) {
        None => bad.push(format!("{what} 0 inside is not mapped")),
        Some(0) => bad.push(format!("{what} 0 inside is {what} 0 on the host")),
        Some(_) => {}
    }
}

/// Parses `inside outside count` lines (the kernel pads them with spaces).
pub(super) fn parse_map(text: &str) -> Result<Vec<IdRange>, String> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .map_err(|_| format!("bad map line {l:?}"))?;
            match f.as_slice() {
                [start, target, count] => Ok(IdRange { start: *start, target: *target, count: *count }),
                _ => Err(format!("bad map line {l:?}")),
            }
        })
        .collect()
}

/// The host id that `id` inside maps to.
pub(super) fn map_id(map: &[IdRange], id: u32) -> Option<u64> {
    map.iter()
        .find(|r| id >= r.start && u64::from(id) < u64::from(r.start) + u64::from(r.count))
        .map(|r| u64::from(r.target) + u64::from(id - r.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid_values() {
        assert_eq!(nspid_problem("4242\t1", 4242), None);
        assert_eq!(nspid_problem("4242 17 1", 4242), None);
        assert!(nspid_problem("4242", 4242).unwrap().contains("not in a child pid namespace"));
        assert!(nspid_problem("4242 7", 4242).unwrap().contains("PID 7 inside"));
        assert!(nspid_problem("99 1", 4242).unwrap().contains("not the init's host PID"));
    }

    #[test]
    fn maps() {
        let m = parse_map("         0     200000      65536\n").unwrap();
        assert_eq!(m, [IdRange { start: 0, target: 200000, count: 65536 }]);
        assert_eq!(map_id(&m, 0), Some(200000));
        assert_eq!(map_id(&m, 65535), Some(265535));
        assert_eq!(map_id(&m, 65536), None);
        assert_eq!(map_id(&parse_map("0 0 4294967295").unwrap(), 0), Some(0));
        assert!(parse_map("0 1").is_err() && parse_map("a b c").is_err());
    }
}
