//! Core's modules depend on each other one way: the kernel at the bottom, domains above it,
//! services above them, `http` on top. This test reads core's sources, builds the graph of
//! `crate::<module>` references between top-level modules (test code left out), and fails on a
//! dependency inside a cycle that is not in [`KNOWN_CYCLE_EDGES`] (which may only shrink), on
//! `crate::http` used outside `http/`, and on a status, header or route path spelled outside it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The dependencies that lie inside a cycle today, as `from -> to`. The list may only shrink:
/// a new dependency that closes or joins a cycle fails the test, and so does a listed one that
/// no longer lies in a cycle (remove it here, so the list stays true).
const KNOWN_CYCLE_EDGES: &[&str] = &[];

/// Top-level modules whose sources may name `crate::http` (the HTTP layer itself, the web
/// consoles above it, and the crate root that routes a request to either).
const HTTP_USERS: &[&str] = &["http", "console", "lib"];

/// Every `.rs` file under `dir`, recursively.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/flags/eval.rs` → `flags`,
/// `src/crypto.rs` → `crypto`).
fn top_module(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file);
    let first = rel
        .components()
        .next()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .unwrap_or_default();
    first.trim_end_matches(".rs").to_owned()
}

/// Whether a file holds only test code.
fn is_test_file(file: &Path) -> bool {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name == "tests.rs" || name.ends_with("_tests.rs") || name == "testing.rs"
}

/// The source without its inline `#[cfg(test)] mod name { ... }` (tests sit at the end of a
/// file; `#[cfg(test)] mod tests;` declarations are kept, their files are skipped).
fn production_part(text: &str) -> &str {
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]\nmod ") {
        let start = from + at;
        let line_end = text[start..]
            .find('\n')
            .and_then(|first| {
                text[start + first + 1..]
                    .find('\n')
                    .map(|l| start + first + 1 + l)
            })
            .unwrap_or(text.len());
        if text[start..line_end].trim_end().ends_with('{') {
            return &text[..start];
        }
        from = line_end;
    }
    text
}

/// The modules a source names as `crate::<module>` or inside `crate::{...}`.
fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("crate::") {
        let start = i + pos + "crate::".len();
        // `$crate::` in macros and `edgeplane_core::` are not this crate's paths here.
        let before = if i + pos > 0 {
            bytes[i + pos - 1]
        } else {
            b' '
        };
        if before.is_ascii_alphanumeric() || before == b'_' || before == b'$' {
            i = start;
            continue;
        }
        if text[start..].starts_with('{') {
            let end = text[start..].find('}').map_or(text.len(), |e| start + e);
            for part in text[start + 1..end].split(',') {
                let name: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
            i = end;
        } else {
            let name: String = text[start..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
            i = start;
        }
    }
    out
}

/// The module graph: module → the modules it references.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !is_test_file(f)) {
        let module = top_module(&src, file);
        let text = std::fs::read_to_string(file).unwrap_or_default();
        // Comments (doc links included) name modules without depending on them.
        let code: String = production_part(&text)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = graph.entry(module.clone()).or_default();
        for name in referenced(&code) {
            if name != module && modules.contains(&name) && name != "testing" {
                deps.insert(name);
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan), each sorted.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: BTreeSet<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.insert(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: BTreeSet::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out
}

#[test]
fn core_modules_form_no_new_cycle() {
    let graph = graph();
    let found: BTreeSet<String> = cycles(&graph)
        .iter()
        .flat_map(|c| {
            let graph = &graph;
            c.iter().flat_map(move |m| {
                graph[m]
                    .iter()
                    .filter(|d| c.contains(d))
                    .map(move |d| format!("{m} -> {d}"))
            })
        })
        .collect();
    let known: BTreeSet<String> = KNOWN_CYCLE_EDGES.iter().map(|e| (*e).to_owned()).collect();
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        new.is_empty() && gone.is_empty(),
        "dependencies inside module cycles changed.\n  new: {new:?}\n  no longer in a cycle (remove from KNOWN_CYCLE_EDGES): {gone:?}"
    );
}

#[test]
fn only_the_http_layer_names_http() {
    let graph = graph();
    let offenders: Vec<&String> = graph
        .iter()
        .filter(|(m, deps)| deps.contains("http") && !HTTP_USERS.contains(&m.as_str()))
        .map(|(m, _)| m)
        .collect();
    assert!(
        offenders.is_empty(),
        "crate::http used outside http/: {offenders:?}"
    );
}

/// The consoles are the top layer: nothing but the crate root's entry point names them.
#[test]
fn nothing_below_the_consoles_names_them() {
    let graph = graph();
    let offenders: Vec<&String> = graph
        .iter()
        .filter(|(m, deps)| deps.contains("console") && !["console", "lib"].contains(&m.as_str()))
        .map(|(m, _)| m)
        .collect();
    assert!(
        offenders.is_empty(),
        "crate::console used below the consoles: {offenders:?}"
    );
}

/// What only the HTTP layer may spell: the `http` crate's types (a status, a header) and the
/// paths of routes. A domain says what happened (its error's kind); `http/` says how it answers.
const HTTP_WORDS: &[&str] = &[
    "::http::",
    "StatusCode",
    "HeaderValue",
    "HeaderName",
    "\"/v1/",
    "\"/oauth/",
    "\"/ofrep/",
    "\"/.well-known/",
];

#[test]
fn no_status_header_or_route_outside_the_http_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut offenders = Vec::new();
    for file in files.iter().filter(|f| !is_test_file(f)) {
        if HTTP_USERS.contains(&top_module(&src, file).as_str()) {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (n, line) in production_part(&text).lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for word in HTTP_WORDS.iter().filter(|w| line.contains(*w)) {
                let rel = file.strip_prefix(&src).unwrap_or(file).display();
                offenders.push(format!("{rel}:{}: {word}", n + 1));
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "HTTP status, header or route outside http/:\n  {}",
        offenders.join("\n  ")
    );
}

/// The graph of the HTTP layer's own modules (`src/http/*.rs`): which route file names which
/// sibling through `super::`. The dispatch (`handlers`) may name them all; nothing may name it
/// back, and no two route files may name each other in a circle.
fn http_graph() -> BTreeMap<String, BTreeSet<String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| top_module(&dir, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| !is_test_file(f)) {
        let module = top_module(&dir, file);
        if module == "mod" {
            continue;
        }
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let code: String = production_part(&text)
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
            // Only `super::` names a sibling here; `crate::webauthn` is the domain, not the route.
            .replace("crate::", "core_root::")
            .replace("super::", "crate::");
        let deps = graph.entry(module.clone()).or_default();
        for name in referenced(&code) {
            if name != module && name != "mod" && modules.contains(&name) {
                deps.insert(name);
            }
        }
    }
    graph
}

#[test]
fn the_http_layer_s_modules_form_no_cycle() {
    let graph = http_graph();
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "cycles between src/http modules: {found:?}"
    );
    assert!(
        graph
            .get("sign_in")
            .is_some_and(|d| d.contains("passwords")),
        "the scan sees route files naming each other: {graph:?}"
    );
}

#[test]
fn the_reference_scan_reads_grouped_and_macro_paths() {
    let text = "use crate::{ids, ports::Clock};\nuse crate::edge;\n$crate::audit::x;\nedgeplane_crate::flags";
    let found: Vec<String> = referenced(text).into_iter().collect();
    assert_eq!(found, ["edge", "ids", "ports"]);
}
