//! `lab report`: the teacher's page. [`render_html`] turns a lab's figures ([`LabReport`],
//! gathered by `ops::lab_report`) into one self-contained HTML page: inline CSS, a table
//! with a row per student and a small inline SVG chart, nothing fetched from anywhere (no
//! URL, no script, no font; a Content-Security-Policy that allows none). Pure: no host
//! access, no root.
//!
//! Every string in a report comes from a record, a container or a user (names, states,
//! addresses) and is untrusted: it reaches the page only through [`escape_html`]. Numbers
//! are formatted here. The page is also well-formed XML (no named entity beyond XML's, every
//! element closed), so a test can read it back with an XML parser.

use serde::Serialize;

/// A use and the quota it is held against; either may be unknown (`None`, shown as `-`):
/// a stopped container uses nothing measurable, and disk quotas do not exist yet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Gauge<T> {
    pub used: Option<T>,
    pub limit: Option<T>,
}

/// One student's row.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StudentRow {
    /// The name students use, `student07`.
    pub student: String,
    /// The container, `LAB-student07`.
    pub container: String,
    /// `running`, `shutoff` or `missing` (as `lab status` says).
    pub state: String,
    /// The student's address on the lab network (labs with SSH access), else `None`.
    pub address: Option<String>,
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
    /// CPU time used since the container started, in nanoseconds.
    pub cpu_time_ns: Option<u64>,
    /// CPU use over the sample window in percent of one CPU; the limit is the CFS quota.
    pub cpu_percent: Gauge<f64>,
    /// Memory in use and the container's memory limit, in bytes.
    pub memory_bytes: Gauge<u64>,
    /// The container's own data (a copy's tree, an overlay's layer) and its quota, in bytes.
    pub disk_bytes: Gauge<u64>,
    /// The later of the last login and the last change of a file of their own (seconds
    /// since the epoch).
    pub last_activity: Option<u64>,
}

/// What the page shows.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LabReport {
    pub lab: String,
    /// When the figures were gathered, seconds since the epoch.
    pub generated: u64,
    /// How long CPU use was sampled, in milliseconds (0: not sampled).
    pub sample_ms: u64,
    pub students: Vec<StudentRow>,
}

/// Escapes text for HTML element content and quoted attribute values. C0 controls other
/// than tab and newline (which HTML forbids, and XML too) become U+FFFD.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Bytes in binary units: `0 B`, `512 B`, `1.5 KiB`, `64.0 MiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A percentage with one decimal; `-` for what is not a number.
pub fn percent(p: f64) -> String {
    if p.is_finite() {
        format!("{p:.1}%")
    } else {
        "-".into()
    }
}

/// A CPU time: `0.42 s`, `3 min 07 s`, `2 h 05 min`.
pub fn cpu_time(ns: u64) -> String {
    let s = ns / 1_000_000_000;
    match s {
        0..60 => format!("{:.2} s", ns as f64 / 1e9),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// How long before `now` time `t` was: `just now`, `42 s ago`, `5 min ago`, `3 h ago`,
/// `2 d ago` (`in the future` for a clock that disagrees).
pub fn ago(now: u64, t: u64) -> String {
    if t > now + 60 {
        return "in the future".into();
    }
    match now.saturating_sub(t) {
        0..5 => "just now".into(),
        d @ 5..60 => format!("{d} s ago"),
        d @ 60..3600 => format!("{} min ago", d / 60),
        d @ 3600..86_400 => format!("{} h ago", d / 3600),
        d => format!("{} d ago", d / 86_400),
    }
}

/// A use against its quota: `12.0 MiB / 64.0 MiB`, `-` where unknown.
fn against<T: Copy>(g: &Gauge<T>, f: impl Fn(T) -> String) -> String {
    let show = |v: Option<T>| v.map_or_else(|| "-".to_string(), &f);
    format!("{} / {}", show(g.used), show(g.limit))
}

/// The share of the quota used, 0 to 100, when both are known.
fn share(used: Option<f64>, limit: Option<f64>) -> Option<f64> {
    match (used, limit) {
        (Some(u), Some(l)) if l > 0.0 && u.is_finite() => Some((u / l * 100.0).clamp(0.0, 100.0)),
        _ => None,
    }
}

fn as_f64(g: &Gauge<u64>) -> (Option<f64>, Option<f64>) {
    (g.used.map(|v| v as f64), g.limit.map(|v| v as f64))
}

/// A table cell with a use, its quota and, when both are known, a small meter.
fn gauge_cell(text: &str, used: Option<f64>, limit: Option<f64>) -> String {
    let meter = share(used, limit).map_or(String::new(), |p| {
        let level = if p >= 90.0 {
            "high"
        } else if p >= 70.0 {
            "mid"
        } else {
            "low"
        };
        format!(
            "<div class=\"meter\" title=\"{} of the quota\"><div class=\"{level}\" style=\"width:{p:.1}%\"></div></div>",
            percent(p)
        )
    });
    format!("<td class=\"num\">{}{meter}</td>", escape_html(text))
}

/// The CSS class of a state (a fixed set: the state itself is only ever text).
fn state_class(state: &str) -> &'static str {
    match state {
        "running" => "ok",
        "missing" => "bad",
        _ => "off",
    }
}

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 2em; color: #1d2430; background: #fff; }
h1 { font-size: 1.5em; margin: 0 0 .2em 0; }
p.meta { color: #5a6472; margin: 0 0 1.2em 0; }
table { border-collapse: collapse; width: 100%; font-size: .92em; }
th, td { padding: .35em .6em; border-bottom: 1px solid #d9dee5; text-align: left; vertical-align: top; }
th { background: #eef1f5; font-weight: 600; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
small { color: #5a6472; }
.state { padding: .1em .5em; border-radius: .8em; font-size: .85em; }
.state.ok { background: #d7f5dd; color: #145c24; }
.state.off { background: #e6e8eb; color: #3c4450; }
.state.bad { background: #fbd9d9; color: #8a1c1c; }
.fail { color: #b3261e; font-weight: 600; }
.meter { width: 7em; height: .35em; background: #e6e8eb; border-radius: .2em; margin-top: .25em; }
.meter div { height: 100%; border-radius: .2em; }
.meter .low { background: #3a7bd5; }
.meter .mid { background: #e0a100; }
.meter .high { background: #c62828; }
figure { margin: 1.5em 0 0 0; }
figcaption { color: #5a6472; font-size: .9em; margin-bottom: .4em; }
svg text { font-family: system-ui, sans-serif; font-size: 12px; fill: #1d2430; }
";

/// One row of the table.
fn table_row(now: u64, s: &StudentRow) -> String {
    let e = escape_html;
    let dash = || "-".to_string();
    let failed =
        if s.failed > 0 { format!("<span class=\"fail\">{} failed</span>", s.failed) } else { "0 failed".to_string() };
    let checks = format!("{} passed, {failed}, {} skipped", s.passed, s.skipped);
    let cpu = s.cpu_time_ns.map_or_else(dash, cpu_time);
    let (mu, ml) = as_f64(&s.memory_bytes);
    let (du, dl) = as_f64(&s.disk_bytes);
    let activity = s
        .last_activity
        .map_or_else(dash, |t| format!("<span title=\"{}\">{}</span>", crate::sbom::rfc3339(t), ago(now, t)));
    format!(
        "<tr><td>{}<br/><small>{}</small></td><td><span class=\"state {}\">{}</span></td><td class=\"num\">{}</td><td>{checks}</td>{}<td class=\"num\">{}</td>{}{}<td class=\"num\">{activity}</td></tr>\n",
        e(&s.student),
        e(&s.container),
        state_class(&s.state),
        e(&s.state),
        e(s.address.as_deref().unwrap_or("-")),
        gauge_cell(&against(&s.cpu_percent, percent), s.cpu_percent.used, s.cpu_percent.limit),
        e(&cpu),
        gauge_cell(&against(&s.memory_bytes, bytes), mu, ml),
        gauge_cell(&against(&s.disk_bytes, bytes), du, dl),
    )
}

/// The chart: per student a memory bar and a CPU bar, each with a tick at the quota.
fn chart(r: &LabReport) -> String {
    const LABEL: f64 = 150.0;
    const BAR: f64 = 520.0;
    const ROW: f64 = 26.0;
    const TOP: f64 = 34.0;
    let width = LABEL + BAR + 20.0;
    let height = TOP + ROW * r.students.len().max(1) as f64 + 6.0;
    // Full bar: the largest quota or use among the students (one scale for the class).
    let widest = |v: &mut dyn Iterator<Item = f64>| v.filter(|x| x.is_finite()).fold(0.0f64, f64::max);
    let mem_full = widest(
        &mut r.students.iter().flat_map(|s| [s.memory_bytes.used, s.memory_bytes.limit]).flatten().map(|v| v as f64),
    )
    .max(1.0);
    let cpu_full =
        widest(&mut r.students.iter().flat_map(|s| [s.cpu_percent.used, s.cpu_percent.limit]).flatten()).max(100.0);
    let mut svg = format!(
        "<svg role=\"img\" aria-label=\"memory and CPU use per student\" width=\"{width:.0}\" height=\"{height:.0}\" viewBox=\"0 0 {width:.0} {height:.0}\">\n"
    );
    svg += &format!(
        "<rect x=\"{LABEL:.0}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#3a7bd5\"/><text x=\"{:.0}\" y=\"13\">memory (full bar {})</text>\n",
        LABEL + 14.0,
        escape_html(&bytes(mem_full as u64))
    );
    svg += &format!(
        "<rect x=\"{:.0}\" y=\"4\" width=\"10\" height=\"10\" fill=\"#e07b00\"/><text x=\"{:.0}\" y=\"13\">CPU (full bar {} of one CPU)</text>\n",
        LABEL + 260.0,
        LABEL + 274.0,
        percent(cpu_full)
    );
    if r.students.is_empty() {
        svg += &format!("<text x=\"{LABEL:.0}\" y=\"{:.0}\">no students</text>\n", TOP + 14.0);
    }
    let bar = |y: f64, v: Option<f64>, limit: Option<f64>, full: f64, colour: &str, title: String| {
        let w = v.map_or(0.0, |v| (v / full).clamp(0.0, 1.0) * BAR);
        let mut b = format!(
            "<rect x=\"{LABEL:.0}\" y=\"{y:.1}\" width=\"{BAR:.0}\" height=\"8\" fill=\"#eef1f5\"/><rect x=\"{LABEL:.0}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"8\" fill=\"{colour}\"><title>{}</title></rect>",
            escape_html(&title)
        );
        if let Some(l) = limit.filter(|l| l.is_finite()) {
            let x = LABEL + (l / full).clamp(0.0, 1.0) * BAR;
            b += &format!(
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#1d2430\" stroke-width=\"1.5\"/>",
                y - 2.0,
                y + 10.0
            );
        }
        b + "\n"
    };
    for (i, s) in r.students.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        svg += &format!(
            "<text x=\"{:.0}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LABEL - 8.0,
            y + 13.0,
            escape_html(&s.student)
        );
        let (mu, ml) = as_f64(&s.memory_bytes);
        let mem_title = format!("{}: memory {}", s.student, against(&s.memory_bytes, bytes));
        svg += &bar(y, mu, ml, mem_full, "#3a7bd5", mem_title);
        let cpu_title = format!("{}: CPU {}", s.student, against(&s.cpu_percent, percent));
        svg += &bar(y + 10.0, s.cpu_percent.used, s.cpu_percent.limit, cpu_full, "#e07b00", cpu_title);
    }
    svg + "</svg>"
}

/// The page: a title, a line of totals, the table (one row per student) and the chart.
pub fn render_html(r: &LabReport) -> String {
    let lab = escape_html(&r.lab);
    let running = r.students.iter().filter(|s| s.state == "running").count();
    let failing = r.students.iter().filter(|s| s.failed > 0).count();
    let mem: u64 = r.students.iter().filter_map(|s| s.memory_bytes.used).sum();
    let disk: u64 = r.students.iter().filter_map(|s| s.disk_bytes.used).sum();
    let sampled = if r.sample_ms > 0 {
        format!("CPU use sampled over {} ms", r.sample_ms)
    } else {
        "CPU use not sampled".to_string()
    };
    let mut rows = String::new();
    for s in &r.students {
        rows += &table_row(r.generated, s);
    }
    if r.students.is_empty() {
        rows += "<tr><td colspan=\"9\">no students</td></tr>\n";
    }
    format!(
        "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\"/>
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\"/>
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>
<title>Lab {lab}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>Lab {lab}</h1>
<p class=\"meta\">{n} students, {running} running, {failing} with failed checks; memory in use {mem}, disk {disk}. Generated {when} by lxcprov lab report; {sampled}.</p>
<table>
<thead><tr><th>Student</th><th>State</th><th>Address</th><th>Checks</th><th>CPU / quota</th><th>CPU time</th><th>Memory / limit</th><th>Disk / quota</th><th>Last activity</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
<figure>
<figcaption>Use per student: memory and CPU; a tick marks the quota.</figcaption>
{chart}
</figure>
</body>
</html>
",
        n = r.students.len(),
        mem = bytes(mem),
        disk = bytes(disk),
        when = crate::sbom::rfc3339(r.generated),
        chart = chart(r),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: usize) -> StudentRow {
        StudentRow {
            student: format!("student{i:02}"),
            container: format!("intro-student{i:02}"),
            state: "running".into(),
            address: Some(format!("10.213.7.{}", 10 + i)),
            passed: 20,
            failed: usize::from(i == 2),
            skipped: 3,
            cpu_time_ns: Some(1_500_000_000 * i as u64),
            cpu_percent: Gauge { used: Some(12.5 * i as f64), limit: Some(50.0) },
            memory_bytes: Gauge { used: Some(20 << 20), limit: Some(64 << 20) },
            disk_bytes: Gauge { used: Some(3 << 20), limit: None },
            last_activity: Some(1_700_000_000 - 600),
        }
    }

    fn report(students: Vec<StudentRow>) -> LabReport {
        LabReport { lab: "intro".into(), generated: 1_700_000_000, sample_ms: 1000, students }
    }

    /// The page read back as XML (it is well-formed by design).
    fn parse(html: &str) -> roxmltree::Document<'_> {
        let opts = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        roxmltree::Document::parse_with_options(html, opts).unwrap_or_else(|e| panic!("{e}:\n{html}"))
    }

    fn body_rows<'a, 'i>(doc: &'a roxmltree::Document<'i>) -> Vec<roxmltree::Node<'a, 'i>> {
        let tbody = doc.descendants().find(|n| n.has_tag_name("tbody")).expect("a tbody");
        tbody.children().filter(|n| n.has_tag_name("tr")).collect()
    }

    fn cell_texts(tr: roxmltree::Node) -> Vec<String> {
        tr.children()
            .filter(|n| n.has_tag_name("td"))
            .map(|td| td.descendants().filter(|n| n.is_text()).filter_map(|n| n.text()).collect::<String>())
            .collect()
    }

    #[test]
    fn the_escaper_leaves_no_markup() {
        assert_eq!(
            escape_html("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape_html("plain student07"), "plain student07");
        assert_eq!(escape_html("a\u{1b}[2J\u{0}b\tc\n"), "a\u{FFFD}[2J\u{FFFD}b\tc\n");
        assert_eq!(escape_html("&amp;"), "&amp;amp;", "an entity is text, escaped again");
        for s in ["<", ">", "&", "\"", "'", "<img src=x onerror=alert(1)>", "é漢字"] {
            let e = escape_html(s);
            assert!(!e.contains(['<', '>', '"', '\'']), "{s:?} -> {e:?}");
        }
    }

    #[test]
    fn one_row_per_student_with_their_figures() {
        let html = render_html(&report((1..=3).map(row).collect()));
        let doc = parse(&html);
        let rows = body_rows(&doc);
        assert_eq!(rows.len(), 3, "{html}");
        let c = cell_texts(rows[1]);
        assert_eq!(c[0], "student02intro-student02", "the student, then their container");
        assert_eq!(c[1], "running");
        assert_eq!(c[2], "10.213.7.12");
        assert_eq!(c[3], "20 passed, 1 failed, 3 skipped");
        assert_eq!(c[4], "25.0% / 50.0%");
        assert_eq!(c[5], "3.00 s");
        assert_eq!(c[6], "20.0 MiB / 64.0 MiB");
        assert_eq!(c[7], "3.0 MiB / -", "no disk quota yet");
        assert_eq!(c[8], "10 min ago");
        assert!(html.contains("<span class=\"fail\">1 failed</span>"));
        assert!(html.contains("title=\"2023-11-14T22:03:20Z\""), "the time itself on hover");
        // The meters: memory at 31.2% of its limit, CPU at 50% of its quota.
        assert!(html.contains("style=\"width:31.2%\""), "{html}");
        assert!(html.contains("style=\"width:50.0%\""), "{html}");
        // A student's names appear in the chart too.
        let svg = doc.descendants().find(|n| n.has_tag_name("svg")).expect("an inline SVG chart");
        let labels: Vec<&str> = svg.descendants().filter(|n| n.has_tag_name("text")).filter_map(|n| n.text()).collect();
        for i in 1..=3 {
            assert!(labels.contains(&format!("student{i:02}").as_str()), "{labels:?}");
        }
        assert_eq!(svg.descendants().filter(|n| n.has_tag_name("line")).count(), 6, "a quota tick per bar");
    }

    #[test]
    fn unknown_figures_are_dashes_and_a_stopped_student_is_shown() {
        let s = StudentRow {
            student: "student09".into(),
            container: "intro-student09".into(),
            state: "missing".into(),
            ..Default::default()
        };
        let html = render_html(&report(vec![s]));
        let doc = parse(&html);
        let c = cell_texts(body_rows(&doc)[0]);
        assert_eq!(&c[1..], ["missing", "-", "0 passed, 0 failed, 0 skipped", "- / -", "-", "- / -", "- / -", "-"]);
        assert!(html.contains("class=\"state bad\""));
        assert!(!html.contains("NaN") && !html.contains("inf"), "{html}");
    }

    #[test]
    fn hostile_strings_are_text_never_markup() {
        let evil = [
            "<script>alert(1)</script>",
            "\"><img src=x onerror=alert(1)>",
            "' onmouseover='alert(1)",
            "&lt;b&gt;",
            "</td></tr></tbody></table><h1>x</h1>",
            "]]><!--",
        ];
        for bad in evil {
            let s = StudentRow {
                student: bad.into(),
                container: bad.into(),
                state: bad.into(),
                address: Some(bad.into()),
                ..row(1)
            };
            let r = LabReport { lab: bad.into(), ..report(vec![s, row(2)]) };
            let html = render_html(&r);
            // The page parses, still has exactly its two rows, and every hostile string is
            // the text it was (the parser undoes exactly our escaping).
            let doc = parse(&html);
            let rows = body_rows(&doc);
            assert_eq!(rows.len(), 2, "{bad}: {html}");
            let c = cell_texts(rows[0]);
            assert_eq!(c[0], format!("{bad}{bad}"));
            assert_eq!(c[1], bad);
            assert_eq!(c[2], bad);
            let title = doc.descendants().find(|n| n.has_tag_name("title")).unwrap();
            assert_eq!(title.text(), Some(format!("Lab {bad}").as_str()));
            // No element or attribute came from the data.
            let tags: std::collections::BTreeSet<&str> =
                doc.descendants().filter(|n| n.is_element()).map(|n| n.tag_name().name()).collect();
            for t in ["script", "img", "h1"] {
                assert_eq!(tags.contains(t), t == "h1", "{bad}: <{t}>");
            }
            assert_eq!(doc.descendants().filter(|n| n.has_tag_name("h1")).count(), 1, "{bad}");
            assert!(doc.descendants().all(|n| n.attributes().all(|a| !a.name().starts_with("on"))), "{bad}");
            assert!(!html.contains(bad) || !bad.contains(['<', '>', '"', '\'', '&']), "{bad} appears raw");
        }
    }

    #[test]
    fn the_page_is_self_contained() {
        let mut students: Vec<StudentRow> = (1..=30).map(row).collect();
        students[4].address = Some("http://example.org/x.js".into());
        let html = render_html(&report(students));
        let lower = html.to_ascii_lowercase();
        // Nothing fetched: no URL of our own, no script, stylesheet link, font or image.
        for bad in ["https://", "src=", "href=", "<script", "<link", "@import", "url(", "<img", "<iframe", "<object"] {
            assert!(!lower.contains(bad), "the page contains {bad:?}");
        }
        // The one URL is a student's text, escaped, shown as text.
        assert_eq!(lower.matches("http://").count(), 1);
        assert!(html.contains("default-src 'none'"), "a policy that would block anything that slipped in");
        assert!(html.starts_with("<!DOCTYPE html>\n") && html.contains("<style>") && html.contains("<svg "));
        assert_eq!(body_rows(&parse(&html)).len(), 30);
    }

    #[test]
    fn an_empty_lab_is_a_page_too() {
        let html = render_html(&report(vec![]));
        let doc = parse(&html);
        assert_eq!(body_rows(&doc).len(), 1);
        assert!(html.contains("no students"));
    }

    #[test]
    fn numbers_are_formatted_by_us() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(64 << 20), "64.0 MiB");
        assert_eq!(bytes(u64::MAX), "16.0 EiB");
        assert_eq!(percent(12.345), "12.3%");
        assert_eq!(percent(f64::NAN), "-");
        assert_eq!(percent(f64::INFINITY), "-");
        assert_eq!(cpu_time(420_000_000), "0.42 s");
        assert_eq!(cpu_time(187_000_000_000), "3 min 07 s");
        assert_eq!(cpu_time(7_500_000_000_000), "2 h 05 min");
        assert_eq!(ago(1000, 998), "just now");
        assert_eq!(ago(1000, 958), "42 s ago");
        assert_eq!(ago(100_000, 100_000 - 3 * 3600), "3 h ago");
        assert_eq!(ago(1_000_000, 1_000_000 - 2 * 86_400), "2 d ago");
        assert_eq!(ago(1000, 5000), "in the future");
        assert_eq!(share(Some(80.0), Some(64.0)), Some(100.0), "over the quota is a full meter");
        assert_eq!(share(Some(1.0), Some(0.0)), None);
    }
}
