//! No import circles: inside each crate of the workspace, no module imports, directly or
//! through others, a module that imports it (docs/ARCHITECTURE.md). An import is a path that
//! names another module of the same crate: `use crate::a::B`, `super::x::f()`, `use child::C`,
//! an inline `crate::a::b::f()`. Test code (`#[cfg(test)]`, `#[test]`, test modules' files)
//! is left out, as are a module's re-exports of its own descendants (`pub use child::X`: the
//! parent's face, not something it uses) and a module's paths to its own ancestors (`super::X`
//! in a child: a module and the submodules it declares are one room, whose private parts the
//! children may see); circles between siblings, cousins or crates' top modules are what it
//! finds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::{declared_modules, mask, module_file, root, test_code};

/// A module's path from its crate's root (`[]` for `lib.rs` or `main.rs`).
type ModPath = Vec<String>;

pub(super) fn no_module_imports_a_module_that_imports_it() {
    let mut circles = Vec::new();
    let mut crates = 0;
    for entry in crate_roots() {
        crates += 1;
        let graph = module_graph(&entry);
        assert!(
            graph.len() > 1 || entry.ends_with("main.rs"),
            "{}: no modules found",
            entry.display()
        );
        for cycle in cycles(&graph) {
            let names: Vec<String> = cycle.iter().map(display).collect();
            circles.push(format!("{}: {}", entry.display(), names.join(" -> ")));
        }
    }
    assert!(crates >= 7, "found only {crates} crates");
    assert!(
        circles.is_empty(),
        "modules that import each other (break the circle: move what both need below both):\n{}",
        circles.join("\n")
    );
}

/// The import circles that a `use` between two sibling modules makes are found (the test
/// above cannot pass for want of finding them).
pub(super) fn the_circle_finder_sees_a_circle_and_its_absence() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    let write = |rel: &str, text: &str| std::fs::write(src.join(rel), text).unwrap();
    write("lib.rs", "mod a;\nmod b;\nmod c;\npub use a::A;\n");
    write("a.rs", "use crate::b::{self, B};\npub struct A;\n");
    write("b.rs", "pub struct B(super::c::C);\n");
    write(
        "c.rs",
        "// use crate::a::A; (a comment)\npub struct C;\n#[cfg(test)]\nmod tests { use crate::a::A; }\n",
    );
    let graph = module_graph(&src.join("lib.rs"));
    assert!(cycles(&graph).is_empty(), "{graph:?}");
    write(
        "c.rs",
        "pub struct C;\nfn f() -> usize { std::mem::size_of::<crate::a::A>() }\n",
    );
    let found = cycles(&module_graph(&src.join("lib.rs")));
    assert_eq!(found.len(), 1, "{found:?}");
    let members: BTreeSet<String> = found[0].iter().map(display).collect();
    assert_eq!(
        members,
        ["a", "b", "c"].iter().map(|s| s.to_string()).collect()
    );
}

fn display(m: &ModPath) -> String {
    if m.is_empty() {
        "crate".to_string()
    } else {
        m.join("::")
    }
}

/// Each workspace member's root file (`src/lib.rs`, `src/main.rs`).
fn crate_roots() -> Vec<PathBuf> {
    let root = root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let members = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("members"))
        .expect("Cargo.toml lists the workspace's members");
    members
        .split('"')
        .skip(1)
        .step_by(2)
        .flat_map(|m| ["lib.rs", "main.rs"].map(|f| root.join(m).join("src").join(f)))
        .filter(|p| p.is_file())
        .collect()
}

/// The modules of the crate whose root file is `entry`, each with the modules it imports.
fn module_graph(entry: &Path) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    // The module tree first: which module paths exist, and their files.
    let mut files: BTreeMap<ModPath, (PathBuf, String)> = BTreeMap::new();
    let mut todo = vec![(entry.to_path_buf(), ModPath::new())];
    while let Some((file, path)) = todo.pop() {
        let text =
            std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let code = without_test_code(&text);
        for name in declared_modules(&code) {
            let mut child = path.clone();
            child.push(name.clone());
            let file = path_attribute(&text, &name)
                .map_or_else(|| module_file(&file, &name), |p| file.with_file_name(p));
            todo.push((file, child));
        }
        files.insert(path, (file, code));
    }
    let modules: BTreeSet<ModPath> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(path, (_, code))| {
            let imports = imported_paths(code)
                .into_iter()
                .filter_map(|(segments, reexport)| {
                    let target = resolve(path, &segments, &modules)?;
                    let descendant = target.len() > path.len() && target.starts_with(path);
                    let ancestor = path.starts_with(&target);
                    if ancestor || (reexport && descendant) {
                        None
                    } else {
                        Some(target)
                    }
                })
                .collect();
            (path.clone(), imports)
        })
        .collect()
}

/// The file that a `#[path = "FILE"]` before `mod NAME;` names (relative to the declaring
/// file's folder).
fn path_attribute(text: &str, name: &str) -> Option<String> {
    let decl = format!("mod {name};");
    text.match_indices(&decl).find_map(|(at, _)| {
        let mut before = text[..at].trim_end();
        for vis in ["pub(crate)", "pub(super)", "pub"] {
            before = before.strip_suffix(vis).unwrap_or(before).trim_end();
        }
        let attr = before.strip_suffix("\"]")?;
        let open = attr.rfind("#[path")?;
        let value = attr[open..].split('"').nth(1)?;
        Some(value.to_string())
    })
}

/// `text` masked, with its test code blanked.
fn without_test_code(text: &str) -> String {
    let mut code = mask(text).into_bytes();
    for (start, end) in test_code(text) {
        for c in &mut code[start..end] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    }
    String::from_utf8(code).expect("only ASCII bytes were replaced")
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The paths that `code` names: each `use` tree expanded (with whether the `use` is `pub`, a
/// re-export), then the paths outside `use` items that start with `crate::`, `super::` or
/// `self::`.
fn imported_paths(code: &str) -> Vec<(Vec<String>, bool)> {
    let mut found = Vec::new();
    let mut rest = String::with_capacity(code.len());
    let mut i = 0;
    while let Some(at) = find_word(&code[i..], "use").map(|p| i + p) {
        let Some(end) = code[at..].find(';').map(|p| at + p) else {
            break;
        };
        let before = code[..at].trim_end();
        let reexport = before.ends_with("pub") || before.ends_with(')') && before.contains("pub(");
        for path in expand_use(&code[at + 3..end]) {
            found.push((path, reexport));
        }
        rest.push_str(&code[i..at]);
        i = end + 1;
    }
    rest.push_str(&code[i..]);
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(at) = find_word(&rest[from..], start.trim_end_matches(':')).map(|p| from + p)
        {
            from = at + 1;
            if !rest[at..].starts_with(start) {
                continue;
            }
            let path: String = rest[at..]
                .chars()
                .take_while(|&c| is_ident(c) || c == ':')
                .collect();
            found.push((segments(&path), false));
        }
    }
    found
}

/// Where `word` occurs in `text` as a whole word (no identifier character either side).
fn find_word(text: &str, word: &str) -> Option<usize> {
    text.match_indices(word).map(|(i, _)| i).find(|&i| {
        !text[..i].chars().next_back().is_some_and(is_ident)
            && !text[i + word.len()..].chars().next().is_some_and(is_ident)
    })
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A `use` tree's paths: `a::{b::{C, D}, self, e as f}` is `a::b::C`, `a::b::D`, `a`, `a::e`.
fn expand_use(tree: &str) -> Vec<Vec<String>> {
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
    let tree = tree.trim().trim_start_matches("::");
    let Some(open) = tree.find('{') else {
        let plain = tree.split(" as ").next().unwrap_or(tree);
        let mut segs = segments(plain);
        if segs.last().is_some_and(|s| s == "self" || s == "*") {
            segs.pop();
        }
        return vec![segs];
    };
    let prefix = tree[..open].trim_end_matches("::");
    let close = tree.rfind('}').unwrap_or(tree.len());
    let inner = &tree[open + 1..close];
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    let mut parts = Vec::new();
    for (i, c) in inner.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                parts.push(&inner[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&inner[start..]);
    for part in parts.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        for tail in expand_use(part) {
            let mut path = segments(prefix);
            path.extend(tail);
            out.push(path);
        }
    }
    out
}

/// The module that `segments`, named in module `from`, lands in: the longest prefix that is
/// a module of the crate. `None` for another crate's paths.
fn resolve(from: &ModPath, segments: &[String], modules: &BTreeSet<ModPath>) -> Option<ModPath> {
    let (mut base, mut rest) = match segments.first().map(String::as_str) {
        Some("crate") => (ModPath::new(), &segments[1..]),
        Some("self") => (from.clone(), &segments[1..]),
        Some("super") => {
            let mut base = from.clone();
            let mut rest = segments;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            (base, rest)
        }
        // A child module named without `self::` (`use child::X` in the 2018 editions).
        Some(first) => {
            let mut child = from.clone();
            child.push(first.to_string());
            if !modules.contains(&child) {
                return None;
            }
            (from.clone(), segments)
        }
        None => return None,
    };
    while let Some((first, tail)) = rest.split_first() {
        let mut next = base.clone();
        next.push(first.clone());
        if !modules.contains(&next) {
            break;
        }
        base = next;
        rest = tail;
    }
    Some(base)
}

/// The import circles of `graph`: its strongly connected components of more than one
/// module, each as one cycle through them (Tarjan's algorithm, then a path inside the
/// component).
fn cycles(graph: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<ModPath>> {
    let nodes: Vec<&ModPath> = graph.keys().collect();
    let index_of: BTreeMap<&ModPath, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let edges: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            graph[*n]
                .iter()
                .filter_map(|t| index_of.get(t).copied())
                .collect()
        })
        .collect();
    let mut components = Vec::new();
    let mut state = Tarjan {
        index: vec![None; nodes.len()],
        low: vec![0; nodes.len()],
        on_stack: vec![false; nodes.len()],
        stack: Vec::new(),
        next: 0,
    };
    for v in 0..nodes.len() {
        if state.index[v].is_none() {
            state.visit(v, &edges, &mut components);
        }
    }
    components
        .into_iter()
        .filter(|c: &Vec<usize>| c.len() > 1)
        .map(|c| {
            cycle_in(&c, &edges)
                .into_iter()
                .map(|i| nodes[i].clone())
                .collect()
        })
        .collect()
}

struct Tarjan {
    index: Vec<Option<usize>>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
}

impl Tarjan {
    fn visit(&mut self, v: usize, edges: &[Vec<usize>], out: &mut Vec<Vec<usize>>) {
        self.index[v] = Some(self.next);
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &edges[v] {
            match self.index[w] {
                None => {
                    self.visit(w, edges, out);
                    self.low[v] = self.low[v].min(self.low[w]);
                }
                Some(iw) if self.on_stack[w] => self.low[v] = self.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(self.low[v]) == self.index[v] {
            let mut component = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack[w] = false;
                component.push(w);
                if w == v {
                    break;
                }
            }
            out.push(component);
        }
    }
}

/// A cycle through the component's first member, as a path that returns to it (breadth
/// first, inside the component).
fn cycle_in(component: &[usize], edges: &[Vec<usize>]) -> Vec<usize> {
    let inside: BTreeSet<usize> = component.iter().copied().collect();
    let start = component[0];
    let mut came_from: BTreeMap<usize, usize> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for &w in &edges[v] {
            if !inside.contains(&w) {
                continue;
            }
            if w == start {
                // start -> ... -> v, then back to start.
                let mut path = vec![v];
                let mut at = v;
                while let Some(&p) = came_from.get(&at) {
                    path.push(p);
                    at = p;
                }
                path.reverse();
                if path.first() != Some(&start) {
                    path.insert(0, start);
                }
                path.push(start);
                return path;
            }
            if let std::collections::btree_map::Entry::Vacant(e) = came_from.entry(w) {
                if w != start {
                    e.insert(v);
                    queue.push_back(w);
                }
            }
        }
    }
    component.to_vec()
}
