//! `lab collect LAB --out DIR [--student N]`: each student's work back for grading. Per
//! student one plain tar archive of what they changed (their overlay layer, or in copy
//! storage the entries that differ from the golden base, under `files/`, with what they
//! deleted in `lxcprov/deleted.json`),
//! with their container's `verify` records and their package changes against the golden
//! base (`lxcprov/verify.jsonl`, `lxcprov/packages.json`), taken with the container frozen;
//! and one `manifest.json` for the class (each archive's sha256, size, student, container,
//! time).

use crate::context::Context;
use crate::libvirt::State;
use crate::name::Name;
use crate::storage::Layout;
use anyhow::{bail, Context as _, Result};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What `lab collect` is asked for.
#[derive(Clone, Debug)]
pub struct CollectOptions {
    /// A directory of its own (created if missing; archives are never overwritten).
    pub out: PathBuf,
    /// Only this student (1 is the first).
    pub student: Option<u32>,
    /// The most a student's changes may hold; beyond it that student is refused.
    pub max_bytes: u64,
}

/// One student's archive, as the manifest lists it.
#[derive(Clone, Debug, Serialize)]
pub struct Collected {
    pub student: String,
    pub container: String,
    /// The archive's file name in the output directory.
    pub archive: String,
    pub sha256: String,
    pub bytes: u64,
    /// Seconds since the epoch.
    pub time: u64,
    /// Packages added, removed or changed against the base.
    pub package_changes: usize,
}

#[derive(Serialize)]
struct Manifest<'a> {
    lab: &'a str,
    created: u64,
    students: &'a [Collected],
}

/// The package changes of a tree against its base: name -> [base version, now] (either
/// `None` when absent).
fn package_changes(
    base: &std::path::Path,
    now: &std::path::Path,
    runner: &dyn crate::exec::Runner,
) -> Result<serde_json::Value> {
    let inv = |root: &std::path::Path| -> Result<BTreeMap<String, String>> {
        Ok(crate::sbom::inventory(root, runner)?.packages.into_iter().map(|p| (p.name, p.version)).collect())
    };
    let (before, after) = (inv(base)?, inv(now)?);
    let mut changes = BTreeMap::new();
    for name in before.keys().chain(after.keys()) {
        let (b, a) = (before.get(name), after.get(name));
        if b != a {
            changes.insert(name.clone(), serde_json::json!({"base": b, "now": a}));
        }
    }
    Ok(serde_json::to_value(changes)?)
}

/// The base-cache entry a copy-storage container was made from (it must still be cached:
/// it is what the student's changes are told apart from).
fn copy_base(env: &crate::container::Env, n: &Name) -> Result<PathBuf> {
    let record =
        crate::state::Record::load(&env.paths.record(n))?.with_context(|| format!("{n} has no lxcprov record"))?;
    let base = env.paths.base(&record.cache_key);
    if !base.join(crate::paths::BASE_MARKER).is_file() {
        bail!(
            "{n} uses copy storage and its golden base {} is no longer cached, so what the student changed cannot be told apart; bring the base back with `lxcprov bootstrap` of the lab's profile (or use overlay storage, whose layer is the changes)",
            base.display()
        );
    }
    Ok(base)
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// Collects every student (or student N) into `o.out`; the manifest's entries, in order.
/// One student's failure stops the run before the manifest is written, and says which.
pub fn collect(ctx: &Context, lab: &str, o: &CollectOptions) -> Result<(PathBuf, Vec<Collected>)> {
    crate::container::require_root("lab collect")?;
    let (lab_name, names) = crate::ops::lab_reset::students(ctx, lab, o.student)?;
    let _lab_lock = crate::state::lab_lock(&ctx.paths, &lab_name)?;
    std::fs::create_dir_all(&o.out).with_context(|| format!("creating {}", o.out.display()))?;
    let manifest_path = o.out.join("manifest.json");
    if std::fs::symlink_metadata(&manifest_path).is_ok() {
        bail!("{} exists: collect into an empty directory (archives are never overwritten)", manifest_path.display());
    }
    let mut entries = vec![];
    crate::container::with_real_env(ctx, &*ctx.ui, |env| {
        for n in &names {
            let entry = collect_one(ctx, env, &lab_name, n, o).with_context(|| format!("collecting {n}"))?;
            ctx.ui.info(&format!("{n}: {} ({} bytes)", entry.archive, entry.bytes));
            entries.push(entry);
        }
        Ok(())
    })?;
    let m = Manifest { lab: lab_name.as_str(), created: now(), students: &entries };
    crate::fsutil::write_atomic(&manifest_path, serde_json::to_string_pretty(&m)?.as_bytes(), 0o600)?;
    Ok((manifest_path, entries))
}

fn collect_one(
    ctx: &Context,
    env: &crate::container::Env,
    lab: &Name,
    n: &Name,
    o: &CollectOptions,
) -> Result<Collected> {
    let _lock = crate::state::lock(&ctx.paths, n)?;
    let c = env.container(n)?;
    let layout = Layout::of_container(&env.paths.pool, n)?;
    let running = c.state()? == State::Running;
    // The checks and the packages first, with the container running as it is.
    let verify = if running {
        crate::verify::render_jsonl(&crate::container::verify_domain(env, n)?).into_bytes()
    } else {
        let report = crate::verify::Report {
            name: n.to_string(),
            checks: vec![],
            note: Some("not running: not verified".into()),
        };
        crate::verify::render_jsonl(&report).into_bytes()
    };
    layout.driver().mount(env.runner)?;
    // The golden base and the tree as the guest sees it: an overlay's shared base, or the
    // base-cache entry a copy was made from.
    let (base, tree) = match &layout {
        Layout::Overlay(ov) => (ov.base.clone(), ov.target.clone()),
        Layout::Copy(_) => (copy_base(env, n)?, env.paths.rootfs(n)),
    };
    // A tree without a package database (busybox) has no package changes to report: said
    // in the file, not a failure of the collect.
    let (packages, changes) = match package_changes(&base, &tree, env.runner) {
        Ok(p) => {
            let n = p.as_object().map_or(0, |m| m.len());
            (serde_json::json!({ "changes": p }), n)
        }
        Err(e) => (serde_json::json!({ "changes": {}, "note": format!("{e:#}") }), 0),
    };
    let student = n.as_str().strip_prefix(&format!("{lab}-")).unwrap_or(n.as_str()).to_string();
    let archive = format!("{student}.tar");
    let mut notes = vec![("verify.jsonl", verify), ("packages.json", serde_json::to_vec_pretty(&packages)?)];
    let out = o.out.join(&archive);
    let a = c.frozen(&format!("archiving {n}"), || match &layout {
        Layout::Overlay(ov) => crate::storage::collect::archive_layer(env.runner, ov, &notes, &out, o.max_bytes),
        Layout::Copy(_) => {
            // What differs from the base, listed with the container frozen, then archived.
            let record = crate::state::Record::load(&env.paths.record(n))?
                .with_context(|| format!("{n} has no lxcprov record"))?;
            let shift = record.idmap.map(|m| (m.uid.target, m.gid.target));
            let ch = crate::storage::diff::changes(&base, &tree, shift)?;
            // The cache's own marker is not the student's doing.
            let deleted: Vec<String> = ch
                .deleted
                .iter()
                .filter(|p| p.as_os_str() != crate::paths::BASE_MARKER)
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            notes.push(("deleted.json", serde_json::to_vec_pretty(&deleted)?));
            let src = crate::storage::collect::Source::Listed { root: &tree, changes: &ch };
            crate::storage::collect::archive(env.runner, &src, &notes, &out, o.max_bytes)
        }
    })?;
    Ok(Collected {
        student,
        container: n.to_string(),
        archive,
        sha256: a.sha256,
        bytes: a.bytes,
        time: now(),
        package_changes: changes,
    })
}
