//! Rendering a [`Report`]: aligned human lines or JSON Lines.

use super::{Check, Report, Status};
use serde::Serialize;

/// Control characters (a process name can hold an ANSI escape) and bidi controls are shown
/// escaped ([`crate::text::for_terminal`]), so a container cannot write to the admin's
/// terminal through `verify`.
fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    crate::text::for_terminal(s)
}

fn status_text(s: Status, color: bool) -> String {
    let (code, text) = match s {
        Status::Pass => ("32", "PASS"),
        Status::Fail => ("1;31", "FAIL"),
        Status::Skip => ("33", "SKIP"),
    };
    if color {
        format!("\x1b[{code}m{text}\x1b[0m")
    } else {
        text.to_string()
    }
}

/// One line per check (`PASS  pidns         init is PID 1 inside, ...`), the evidence
/// indented below each check when `verbose`, then `web1: 6 passed, 1 failed, 3 skipped`.
/// ANSI colour on the status word only when `color`.
pub fn render_human(report: &Report, color: bool, verbose: bool) -> String {
    let width = report.checks.iter().map(|c| c.id.len()).max().unwrap_or(0).max(10) + 2;
    let mut out = String::new();
    if let Some(n) = &report.note {
        out.push_str(&format!("{}: {}\n", printable(&report.name), printable(n)));
    }
    for c in &report.checks {
        out.push_str(&format!("{}  {:<width$}{}\n", status_text(c.status, color), c.id, printable(&c.summary)));
        if verbose {
            for e in &c.evidence {
                out.push_str(&format!("      - {}\n", printable(e)));
            }
        }
    }
    let (p, f, s) = report.counts();
    out.push_str(&format!("{}: {p} passed, {f} failed, {s} skipped\n", printable(&report.name)));
    out
}

/// One JSON Lines record (see [`render_jsonl`]): `type` is the variant, `data` its fields.
#[derive(Serialize)]
#[serde(tag = "type", content = "data", rename_all = "lowercase")]
enum Line<'a> {
    Note { container: &'a str, message: &'a str },
    Check { container: &'a str, id: &'a str, status: Status, summary: &'a str, evidence: &'a [String] },
    Summary { container: &'a str, passed: usize, failed: usize, skipped: usize },
}

impl<'a> Line<'a> {
    fn check(container: &'a str, c: &'a Check) -> Line<'a> {
        Line::Check { container, id: c.id, status: c.status, summary: &c.summary, evidence: &c.evidence }
    }
}

/// JSON Lines: one `check` record per check, then one `summary` record; each line ends
/// with `\n`. Field names are stable:
///
/// - `{"type":"check","data":{"container":NAME,"id":ID,"status":"pass"|"fail"|"skip",
///   "summary":TEXT,"evidence":[TEXT,...]}}`
/// - `{"type":"summary","data":{"container":NAME,"passed":N,"failed":N,"skipped":N}}`
pub fn render_jsonl(report: &Report) -> String {
    let (passed, failed, skipped) = report.counts();
    let name = report.name.as_str();
    let note = report.note.as_deref().map(|message| Line::Note { container: name, message });
    note.into_iter()
        .chain(report.checks.iter().map(|c| Line::check(name, c)))
        .chain(std::iter::once(Line::Summary { container: name, passed, failed, skipped }))
        .map(|l| serde_json::to_string(&l).expect("a report always serialises") + "\n")
        .collect()
}
