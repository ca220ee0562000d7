//! The library's shape, held by tests: no import cycle between its top-level modules, each
//! module on its floor (the table in `docs/architecture.md`), the progress UI only in the
//! binary, and no file too long to read. These read the source, as a reviewer would.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The top-level modules `src/lib.rs` declares.
fn top_level_modules() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(ROOT).join("src/lib.rs")).unwrap();
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").or_else(|| l.strip_prefix("pub(crate) ")).unwrap_or(l);
            l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')).map(str::to_string)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The names of the child modules a file declares for tests only (`#[cfg(test)] mod x;`).
fn test_only_children(text: &str) -> BTreeSet<String> {
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut v = BTreeSet::new();
    for w in lines.windows(2) {
        if w[0] == "#[cfg(test)]" {
            let l = w[1].strip_prefix("pub(crate) ").or_else(|| w[1].strip_prefix("pub ")).unwrap_or(w[1]);
            if let Some(n) = l.strip_prefix("mod ").and_then(|r| r.strip_suffix(';')) {
                v.insert(n.to_string());
            }
        }
    }
    v
}

/// A file's code without comments and without its inline `#[cfg(test)] mod tests { .. }`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod tests {") {
        Some(i) => &text[..i],
        None => text,
    };
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Every top-level module a piece of code names through `crate::` (paths and `use` groups).
fn crate_refs(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut v = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}}`: the first segment of each top-level entry.
            let (mut depth, mut item, mut end) = (0, String::new(), group.len());
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = k;
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => item.push('\n'),
                    _ if depth == 0 => item.push(ch),
                    _ => {}
                }
            }
            for entry in item.split('\n') {
                let first: String =
                    entry.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if modules.contains(&first) {
                    v.insert(first);
                }
            }
            rest = &group[end..];
        } else {
            let first: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if modules.contains(&first) {
                v.insert(first);
            }
        }
    }
    v
}

/// module -> (module it imports -> the files that import it), test code left out.
fn import_graph() -> BTreeMap<String, BTreeMap<String, BTreeSet<String>>> {
    let src = Path::new(ROOT).join("src");
    let modules: BTreeSet<String> = top_level_modules().into_iter().collect();
    assert!(modules.len() > 10, "src/lib.rs lists too few modules: {modules:?}");
    let mut graph = BTreeMap::new();
    for m in &modules {
        let mut files = vec![];
        let single = src.join(format!("{m}.rs"));
        if single.is_file() {
            files.push(single);
        }
        if src.join(m).is_dir() {
            rust_files(&src.join(m), &mut files);
        }
        assert!(!files.is_empty(), "no source for module {m}");
        // Test-only children of any file of the module.
        let mut skip = BTreeSet::new();
        for f in &files {
            for c in test_only_children(&std::fs::read_to_string(f).unwrap()) {
                skip.insert(f.with_file_name(format!("{c}.rs")));
            }
        }
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in files.iter().filter(|f| !skip.contains(*f)) {
            let code = code_of(&std::fs::read_to_string(f).unwrap());
            for t in crate_refs(&code, &modules).into_iter().filter(|t| t != m) {
                edges.entry(t).or_default().insert(f.strip_prefix(ROOT).unwrap().display().to_string());
            }
        }
        graph.insert(m.clone(), edges);
    }
    graph
}

/// The strongly connected components of more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeMap<String, BTreeSet<String>>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, BTreeMap<String, BTreeSet<String>>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        out: Vec<Vec<String>>,
    }
    impl<'g> T<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            for w in self.g[v].keys() {
                if !self.index.contains_key(w.as_str()) {
                    self.visit(w);
                    let l = self.low[w.as_str()].min(self.low[v]);
                    self.low.insert(v, l);
                } else if self.stack.contains(&w.as_str()) {
                    let l = self.index[w.as_str()].min(self.low[v]);
                    self.low.insert(v, l);
                }
            }
            if self.low[v] == self.index[v] {
                let mut c = vec![];
                while let Some(w) = self.stack.pop() {
                    c.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if c.len() > 1 {
                    c.sort();
                    self.out.push(c);
                }
            }
        }
    }
    let mut t = T { g: graph, index: BTreeMap::new(), low: BTreeMap::new(), stack: vec![], out: vec![] };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

#[test]
fn no_import_cycle_between_top_level_modules() {
    let g = import_graph();
    let found = cycles(&g);
    let mut msg = String::new();
    for c in &found {
        msg += &format!("\ncycle of {} modules: {}\n", c.len(), c.join(", "));
        for a in c {
            for (b, files) in &g[a] {
                if c.contains(b) {
                    msg += &format!("  {a} -> {b}: {}\n", files.iter().cloned().collect::<Vec<_>>().join(", "));
                }
            }
        }
    }
    assert!(found.is_empty(), "the library's top-level modules import each other in a cycle:{msg}");
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut g: BTreeMap<String, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (a, b) in [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d"), ("d", "e")] {
        g.entry(a.into()).or_default().insert(b.into(), BTreeSet::new());
        g.entry(b.into()).or_default();
    }
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".into(), "c".into()]]);
    let modules: BTreeSet<String> = ["host", "verify", "fsutil"].iter().map(|s| s.to_string()).collect();
    let code = "use crate::{host::HostRoot, fsutil::{self, x}};\nlet y = crate::verify::Check;";
    assert_eq!(crate_refs(code, &modules), modules);
    assert!(crate_refs(&code_of("// crate::host is only named\n"), &modules).is_empty());
}

/// Every file under `dir` (relative to the repository) whose name ends with `ext`.
fn files_under(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v = vec![];
    let mut stack = vec![Path::new(ROOT).join(dir)];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(ext) {
                v.push(p);
            }
        }
    }
    v.sort();
    v
}

/// The library tells its caller what it does through `output::Observer`; the terminal UI
/// (indicatif) and the stdout writer are the binary's. Printing from the library is left to
/// the few places that cannot reach an observer, each named here with why.
#[test]
fn the_progress_ui_and_printing_live_in_the_binary() {
    let allowed = [
        // The signal handler says it was interrupted (no allocation, no observer there).
        "src/interrupt.rs",
        // `-v`: the runner echoes each command it runs as the shell does (`+ cmd`).
        "src/exec.rs",
        // A restore that failed in a destructor, where no caller can be told.
        "src/ops/seccomp_learn.rs",
    ];
    let mut found = vec![];
    for f in files_under("src", ".rs") {
        let rel = f.strip_prefix(ROOT).unwrap().display().to_string();
        if rel.starts_with("src/bin/") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(&f).unwrap());
        if code.contains("indicatif") {
            found.push(format!("{rel}: uses indicatif"));
        }
        let prints = ["println!(", "eprintln!(", "print!(", "eprint!("].iter().any(|p| code.contains(p));
        if prints && !allowed.contains(&rel.as_str()) && !rel.ends_with("/tests.rs") {
            found.push(format!("{rel}: prints (use the Observer the caller passes)"));
        }
    }
    assert!(found.is_empty(), "the library shows things itself:\n{}", found.join("\n"));
}

/// No file so long that a newcomer cannot read it at once (sources and tests alike).
#[test]
fn no_file_is_over_900_lines() {
    let mut long = vec![];
    for dir in ["src", "tests"] {
        for f in files_under(dir, ".rs") {
            let n = std::fs::read_to_string(&f).unwrap().lines().count();
            if n > 900 {
                long.push(format!("{}: {n} lines", f.strip_prefix(ROOT).unwrap().display()));
            }
        }
    }
    assert!(long.is_empty(), "split these by feature:\n{}", long.join("\n"));
}

/// The floors `docs/architecture.md` gives each module: rows `| \`module\` | N | ... |`.
fn documented_floors() -> BTreeMap<String, u32> {
    let doc = std::fs::read_to_string(Path::new(ROOT).join("docs/architecture.md")).unwrap();
    doc.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let module = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let floor = cells.get(2)?.parse().ok()?;
            Some((module.to_string(), floor))
        })
        .collect()
}

/// Each module imports only modules on its floor or below, as the architecture page says,
/// and the page lists every module (and no other).
#[test]
fn every_module_keeps_to_its_documented_floor() {
    let floors = documented_floors();
    let g = import_graph();
    let mut wrong = vec![];
    for m in g.keys() {
        if !floors.contains_key(m) {
            wrong.push(format!("{m} is not in docs/architecture.md's table"));
        }
    }
    for m in floors.keys() {
        if !g.contains_key(m) {
            wrong.push(format!("docs/architecture.md lists {m}, which src/lib.rs does not declare"));
        }
    }
    for (a, edges) in &g {
        for (b, files) in edges {
            if let (Some(fa), Some(fb)) = (floors.get(a), floors.get(b)) {
                if fb > fa {
                    let files = files.iter().cloned().collect::<Vec<_>>().join(", ");
                    wrong.push(format!("{a} (floor {fa}) imports {b} (floor {fb}) in {files}"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "the layers do not hold:\n{}", wrong.join("\n"));
}
