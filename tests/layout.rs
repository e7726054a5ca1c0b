//! The crate's module layout (issue 16): no import cycle among the core modules, and the core
//! knows nothing of RocksDB or the C ABI.
//!
//! The core is every top-level module under src/ except `ffi`, `rocks` (the RocksDB layer and
//! the C ABI on top of the core) and `sync` (the std/loom shim every layer may use); the list
//! is computed from the tree, so a new module is core by default.
//!
//! The import graph is read from the source text, not from rustc, by a deliberately small
//! scanner:
//! * every .rs file under src/ belongs to a module: src/a.rs and src/a/mod.rs are `a`,
//!   src/a/b.rs is `a::b`; src/lib.rs is the crate root and is left out;
//! * comments (doc comments included), string, byte-string, raw-string and char literals are
//!   blanked out first (newlines kept, so line numbers stay right);
//! * a reference is `crate::x` (also `$crate::x`), or `crate::{x, y::z}` (each entry of the
//!   group), or `super::` (repeated as often as written) resolved against the file's module
//!   and followed the same way; `self::` stays in the module and is ignored;
//! * the graph is per top-level module: a reference from `a::b` to `c::d` is the edge a -> c,
//!   and references inside one top-level module are not edges. Only names that are top-level
//!   modules count (`crate::VERSION` is no edge).
//!
//! Known simplification: `super::` inside an inline `mod tests { }` is resolved against the
//! file's module, one level too high; for a top-level file it then names crate-root items,
//! which only matter if they are module names (an `use super::*` is no edge).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules outside the core.
const NOT_CORE: [&str; 3] = ["ffi", "rocks", "sync"];

/// External crates the core must not name.
const ROCKS_CRATES: [&str; 2] = ["rocksdb", "librocksdb_sys"];

/// One source file: its module path and its code with comments and literals blanked out.
struct File {
    path: String,
    module: Vec<String>,
    code: String,
}

/// Where an edge comes from, for the failure message: "src/a.rs:12".
type Edges = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn src_files() -> Vec<File> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    walk(&root.join("src"), &mut paths);
    paths.sort();
    paths
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(root.join("src")).unwrap();
            let mut module: Vec<String> = rel
                .with_extension("")
                .iter()
                .map(|s| s.to_str().unwrap().to_owned())
                .collect();
            if module.last().is_some_and(|m| m == "mod") {
                module.pop();
            }
            if module == ["lib"] || module == ["main"] || module.is_empty() {
                return None; // the crate root
            }
            let text = std::fs::read_to_string(&path).unwrap();
            Some(File {
                path: format!("src/{}", rel.display()),
                module,
                code: strip(&text),
            })
        })
        .collect()
}

/// The source with comments and literals replaced by spaces (newlines kept).
fn strip(text: &str) -> String {
    let s: Vec<char> = text.chars().collect();
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let (mut out, mut i) = (String::with_capacity(text.len()), 0);
    // Blanks s[from..to] into out, keeping newlines.
    let blank = |out: &mut String, from: usize, to: usize| {
        out.extend(
            s[from..to.min(s.len())]
                .iter()
                .map(|&c| if c == '\n' { c } else { ' ' }),
        )
    };
    while i < s.len() {
        let at = |k: usize| s.get(i + k).copied().unwrap_or('\0');
        let start = i;
        if at(0) == '/' && at(1) == '/' {
            while i < s.len() && s[i] != '\n' {
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let (mut depth, mut j) = (0, i); // block comments nest
            while j < s.len() {
                if s[j] == '/' && s.get(j + 1) == Some(&'*') {
                    (depth, j) = (depth + 1, j + 2);
                } else if s[j] == '*' && s.get(j + 1) == Some(&'/') {
                    (depth, j) = (depth - 1, j + 2);
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            i = j;
        } else if (i == 0 || !ident(s[i - 1])) && matches!(at(0), 'r' | 'b' | 'c') && {
            // A raw string: r"..", r#".."#, br#".."#, cr"..".
            let mut j = i + usize::from(at(0) != 'r' && at(1) == 'r') + 1;
            while s.get(j) == Some(&'#') {
                j += 1;
            }
            s.get(j) == Some(&'"') && (at(0) == 'r' || at(1) == 'r')
        } {
            let open = s[i..].iter().position(|&c| c == '"').unwrap() + i;
            let hashes = open
                - s[i..open]
                    .iter()
                    .position(|&c| c == '#')
                    .map_or(open, |p| p + i);
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let rest: String = s[open + 1..].iter().collect();
            let len = rest
                .find(&close)
                .map_or(s.len(), |p| rest[..p].chars().count());
            i = open + 1 + len + 1 + hashes;
        } else if at(0) == '"' {
            i += 1; // (a b"" or c"" prefix is harmless: it stays as an identifier letter)
            while i < s.len() && s[i] != '"' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if at(0) == '\'' && (at(1) == '\\' || at(2) == '\'') {
            // A char literal ('x', '\n', '\''); a lifetime ('a) has no closing quote.
            i += 2;
            while i < s.len() && s[i] != '\'' {
                i += if s[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else {
            out.push(s[i]);
            i += 1;
            continue;
        }
        blank(&mut out, start, i);
    }
    out
}

/// The top-level modules a file names, with the line of each reference.
fn references(file: &File, top_level: &BTreeSet<String>) -> Vec<(String, usize)> {
    let code = &file.code;
    let ident_char = |c: char| c.is_alphanumeric() || c == '_';
    let line_of = |pos: usize| code[..pos].matches('\n').count() + 1;
    let mut found = Vec::new();
    for word in ["crate::", "super::"] {
        for (pos, _) in code.match_indices(word) {
            let before = code[..pos].chars().next_back();
            if before.is_some_and(|c| ident_char(c) || (c == ':' && word == "super::")) {
                continue; // part of a longer name, or a later super:: of a chain
            }
            // The module the path starts from: the crate root, or the file's module minus one
            // level per `super::`.
            let mut rest = &code[pos + word.len()..];
            let mut base = file.module.clone();
            if word == "super::" {
                base.pop();
                while let Some(r) = rest.trim_start().strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
            } else {
                base.clear();
            }
            let leading = |t: &str| -> String {
                let t = t.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
                t.chars().take_while(|&c| ident_char(c)).collect()
            };
            let names: Vec<String> = if let Some(top) = base.first() {
                vec![top.clone()] // anything under a module is in its top-level module
            } else if let Some(group) = rest.trim_start().strip_prefix('{') {
                // `{x, y::z, w::{..}}`: the first name of every entry at depth 0.
                let (mut depth, mut names, mut entry_start) = (0, Vec::new(), 0);
                for (at, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            names.push(leading(&group[entry_start..]));
                            entry_start = at + 1;
                        }
                        _ => {}
                    }
                }
                names.push(leading(&group[entry_start..]));
                names
            } else {
                vec![leading(rest)]
            };
            for name in names {
                if top_level.contains(&name) {
                    found.push((name, line_of(pos)));
                }
            }
        }
    }
    found
}

/// The top-level modules under src/ and the edges between them (self-edges left out).
fn graph(files: &[File]) -> (BTreeSet<String>, Edges) {
    let top_level: BTreeSet<String> = files.iter().map(|f| f.module[0].clone()).collect();
    let mut edges = Edges::new();
    for file in files {
        for (to, line) in references(file, &top_level) {
            if to != file.module[0] {
                let sites = edges.entry(file.module[0].clone()).or_default();
                sites
                    .entry(to)
                    .or_default()
                    .push(format!("{}:{line}", file.path));
            }
        }
    }
    (top_level, edges)
}

fn core(top_level: &BTreeSet<String>) -> BTreeSet<String> {
    let core: BTreeSet<String> = top_level
        .iter()
        .filter(|m| !NOT_CORE.contains(&m.as_str()))
        .cloned()
        .collect();
    assert!(
        core.len() >= 3 && core.contains("error") && core.contains("manager"),
        "the scanner found no sensible core: {core:?}"
    );
    core
}

/// The shortest path from `from` to `to` (at least one edge) inside `nodes`, breadth first.
fn shortest_path(
    from: &str,
    to: &str,
    nodes: &BTreeSet<String>,
    edges: &Edges,
) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([from.to_owned()]);
    while let Some(node) = queue.pop_front() {
        for next in edges.get(&node).into_iter().flat_map(|m| m.keys()) {
            if !nodes.contains(next) || came_from.contains_key(next) {
                continue;
            }
            came_from.insert(next.clone(), node.clone());
            if next == to {
                let mut path = vec![to.to_owned()];
                while path.len() == 1 || path.last().unwrap() != from {
                    path.push(came_from[path.last().unwrap()].clone());
                }
                path.reverse();
                return Some(path);
            }
            queue.push_back(next.clone());
        }
    }
    None
}

/// The groups of modules that import each other (the graph's strongly connected components
/// with more than one module), each with the shortest cycle through each of its modules.
fn cycles(nodes: &BTreeSet<String>, edges: &Edges) -> Vec<(BTreeSet<String>, BTreeSet<String>)> {
    let mut groups: Vec<(BTreeSet<String>, BTreeSet<String>)> = Vec::new();
    for node in nodes {
        let Some(cycle) = shortest_path(node, node, nodes, edges) else {
            continue; // on no cycle
        };
        // Written from its first module in name order, so a rotation is not listed twice.
        let mut ring = cycle[1..].to_vec();
        let first = (0..ring.len()).min_by_key(|&i| &ring[i]).unwrap();
        ring.rotate_left(first);
        ring.push(ring[0].clone());
        let text = ring.join(" -> ");
        // Its group: every module it reaches that reaches it back.
        let group: BTreeSet<String> = nodes
            .iter()
            .filter(|m| {
                *m == node
                    || (shortest_path(node, m, nodes, edges).is_some()
                        && shortest_path(m, node, nodes, edges).is_some())
            })
            .cloned()
            .collect();
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, texts)) => {
                texts.insert(text);
            }
            None => groups.push((group, BTreeSet::from([text]))),
        }
    }
    groups
}

#[test]
fn the_core_modules_have_no_import_cycle() {
    let files = src_files();
    let (top_level, edges) = graph(&files);
    let core = core(&top_level);
    let groups = cycles(&core, &edges);
    if groups.is_empty() {
        return;
    }
    let mut report = format!("import cycle(s) among the core modules {core:?}:\n");
    for (group, texts) in &groups {
        for text in texts {
            report += &format!("  {text}\n");
        }
        report += "  every import among those modules:\n";
        for from in group {
            for (to, sites) in edges.get(from).into_iter().flatten() {
                if group.contains(to) {
                    report += &format!("    {from} -> {to}: {}\n", sites.join(", "));
                }
            }
        }
    }
    panic!("{report}");
}

#[test]
fn the_core_never_references_rocks_ffi_or_rocksdb() {
    let files = src_files();
    let (top_level, edges) = graph(&files);
    let core = core(&top_level);
    let mut wrong = Vec::new();
    for from in &core {
        for (to, sites) in edges.get(from).into_iter().flatten() {
            if to == "rocks" || to == "ffi" {
                wrong.push(format!("{from} -> {to}: {}", sites.join(", ")));
            }
        }
    }
    // The RocksDB crates by name: any identifier `rocksdb` or `librocksdb_sys` in core code.
    let ident_char = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    for file in files.iter().filter(|f| core.contains(&f.module[0])) {
        for krate in ROCKS_CRATES {
            for (pos, _) in file.code.match_indices(krate) {
                let before = file.code[..pos].chars().next_back();
                let after = file.code[pos + krate.len()..].chars().next();
                if !ident_char(before) && !ident_char(after) {
                    let line = file.code[..pos].matches('\n').count() + 1;
                    wrong.push(format!(
                        "{} names the crate {krate}: {}:{line}",
                        file.module[0], file.path
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the core must not depend on rocks, ffi or RocksDB:\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_scanner_reads_paths_groups_and_super_but_not_comments_or_strings() {
    let text = r##"
        use crate::{alpha, beta::{X, Y}, self as me};
        // use crate::gamma;
        /* crate::gamma /* nested */ crate::gamma */
        /// [`crate::gamma`]
        const S: &str = "crate::gamma"; const R: &str = r#"crate::gamma "# "#;
        const C: char = '"'; fn f<'a>(x: &'a str) -> u8 { crate::delta::run(); b'"' }
        use super::super::epsilon::Z;
        use super::Local;
    "##;
    let file = File {
        path: "src/x/y.rs".into(),
        module: vec!["x".into(), "y".into()],
        code: strip(text),
    };
    let top: BTreeSet<String> = ["alpha", "beta", "gamma", "delta", "epsilon", "x"]
        .map(String::from)
        .into();
    let names: BTreeSet<String> = references(&file, &top).into_iter().map(|r| r.0).collect();
    let want: BTreeSet<String> = ["alpha", "beta", "delta", "epsilon", "x"]
        .map(String::from)
        .into();
    assert_eq!(names, want, "stripped code:\n{}", file.code);
    assert_eq!(
        strip(text).len(),
        text.len(),
        "stripping keeps every (ASCII) position"
    );
}
