//! Tidy tests: keep the tree honest about itself.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};

headroom_tests::tests! {
    ci_runs_the_test_command_the_readme_gives;
    libraries_never_print;
    test_code_is_told_apart_from_library_code;
    every_crate_says_what_it_is_for;
    every_library_denies_printing_to_the_compiler_too;
    every_catalog_item_is_documented;
    benchmarks_come_with_their_command;
    the_readme_shows_the_sibling_example_as_it_is;
    the_architecture_maps_every_crate_of_the_workspace;
    no_source_file_is_over_900_lines;
    no_module_imports_a_module_that_imports_it;
    the_circle_finder_sees_a_circle_and_its_absence;
    configuration_reference_is_in_step;
    every_setting_has_a_row_in_the_reference;
}

mod circles;
use circles::{
    no_module_imports_a_module_that_imports_it, the_circle_finder_sees_a_circle_and_its_absence,
};

fn root() -> PathBuf {
    headroom_tests::repo_root().to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn ci_runs_the_test_command_the_readme_gives() {
    let ci = read(".ci/run");
    let readme = read("README.md");
    assert!(
        ci.contains("scripts/provision") && ci.contains("scripts/test"),
        "{ci}"
    );
    assert!(readme.contains("scripts/provision") && readme.contains("scripts/test"));
    let test = read("scripts/test");
    for step in [
        "cargo fmt --all --check",
        "cargo clippy --workspace --all-targets",
        "-D warnings",
        "cargo test --workspace",
    ] {
        assert!(test.contains(step), "scripts/test lacks {step:?}");
    }
}

fn libraries_never_print() {
    let root = root();
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    assert!(!files.is_empty());
    let tests = test_module_files(&files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !tests.contains(f)) {
        let text = std::fs::read_to_string(f).unwrap();
        let rel = f.strip_prefix(&root).unwrap_or(f).display().to_string();
        found.extend(prints_in(&rel, &text));
    }
    assert!(
        found.is_empty(),
        "libraries report through values and callbacks, not by printing:\n{}",
        found.join("\n")
    );
}

/// What [`libraries_never_print`] reads: whole files, less test code (an item, statement,
/// field or argument under `#[cfg(test)]` or `#[test]`, to its end matched by brackets, and
/// the files of test modules), comments and literals.
fn test_code_is_told_apart_from_library_code() {
    let sample = r##"fn a(counter: &Cell<u8>) {
    #[cfg(test)]
    counter.set(println!("test"));
    println!("library, after a test statement");
}
#[cfg(test)]
mod tests {
    fn t() { eprintln!("test {} {}", '}', "}"); }
}
struct S {
    #[cfg(test)]
    field: [u8; { dbg!(1) }],
    other: u8,
}
// println! in a comment, /* and "println!" in a string:
const M: &str = "eprintln! in a string";
/* a block /* nested */ eprintln! */
#[test]
fn t2() { dbg!(1); }
fn b<'a>(x: &'a str) -> char { eprint!("{x}"); let _ = r#"print!("")"#; 'x' }
#[cfg(test)]
mod more;
fn c() { std::io::stderr(); }
"##;
    assert_eq!(
        prints_in("x.rs", sample),
        [
            "x.rs:4: println!",
            "x.rs:20: eprint!(",
            "x.rs:23: io::stderr"
        ]
    );
    assert_eq!(test_code(sample).len(), 5, "{:?}", test_code(sample));
    assert_eq!(test_modules(sample), ["more"]);
}

/// Where library code prints, as `file:line: what`: the print macros, and the standard
/// streams taken by hand. Test code ([`test_code`]), comments and literals are left out, so
/// that neither a doc nor a message that names a macro counts.
fn prints_in(rel: &str, text: &str) -> Vec<String> {
    let mut code = mask(text).into_bytes();
    for (start, end) in test_code(text) {
        for b in &mut code[start..end] {
            if *b != b'\n' {
                *b = b' ';
            }
        }
    }
    let code = String::from_utf8(code).expect("only ASCII was replaced by spaces");
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let what = [
            "println!",
            "eprintln!",
            "print!(",
            "eprint!(",
            "dbg!(",
            "io::stdout",
            "io::stderr",
        ]
        .into_iter()
        .find(|what| {
            line.match_indices(what).any(|(i, _)| {
                !line[..i]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
        });
        if let Some(what) = what {
            found.push(format!("{rel}:{}: {what}", n + 1));
        }
    }
    found
}

/// The byte ranges of `text` that are test code: from each `#[cfg(test)]` or `#[test]` to
/// the end of what it applies to — a `;` or `,` at its level, the `}` that closes its block,
/// or (a field, an argument) the bracket that closes around it.
fn test_code(text: &str) -> Vec<(usize, usize)> {
    let code = mask(text);
    let b = code.as_bytes();
    let mut spans = Vec::new();
    let mut from = 0;
    loop {
        let next = ["#[cfg(test)]", "#[test]"]
            .iter()
            .filter_map(|attr| code[from..].find(attr).map(|at| (from + at, attr.len())))
            .min();
        let Some((start, len)) = next else {
            return spans;
        };
        let mut depth = 0usize;
        let mut end = b.len();
        for (i, &c) in b.iter().enumerate().skip(start + len) {
            match c {
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' if depth == 0 => {
                    end = i;
                    break;
                }
                b'}' if depth == 1 => {
                    end = i + 1;
                    break;
                }
                b')' | b']' | b'}' => depth -= 1,
                b';' | b',' if depth == 0 => {
                    end = i + 1;
                    break;
                }
                _ => {}
            }
        }
        spans.push((start, end));
        from = end;
    }
}

/// The modules that `text` declares as test modules: `#[cfg(test)] mod NAME;`.
fn test_modules(text: &str) -> Vec<String> {
    let code = mask(text);
    test_code(text)
        .into_iter()
        .flat_map(|(start, end)| {
            let item = &code[start..end];
            assert!(
                !item.contains("#[path"),
                "a test module with #[path]: teach the tidy test to find its file"
            );
            declared_modules(item)
        })
        .collect()
}

/// The names of the `mod NAME;` declarations in `code` (masked).
fn declared_modules(code: &str) -> Vec<String> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    code.match_indices("mod ")
        .filter(|(i, _)| !code[..*i].chars().next_back().is_some_and(ident))
        .filter_map(|(i, _)| {
            let rest = code[i + 4..].trim_start();
            let name: String = rest.chars().take_while(|&c| ident(c)).collect();
            let after = rest[name.len()..].trim_start();
            (!name.is_empty() && after.starts_with(';')).then_some(name)
        })
        .collect()
}

/// The files of test modules: those declared `#[cfg(test)] mod NAME;`, and every module
/// these declare in turn. Test code from the first line to the last.
fn test_module_files(files: &[PathBuf]) -> Vec<PathBuf> {
    let mut todo: Vec<(PathBuf, Vec<String>)> = files
        .iter()
        .map(|f| {
            (
                f.clone(),
                test_modules(&std::fs::read_to_string(f).unwrap()),
            )
        })
        .collect();
    let mut found = Vec::new();
    while let Some((parent, modules)) = todo.pop() {
        for name in modules {
            let file = module_file(&parent, &name);
            let text = std::fs::read_to_string(&file).unwrap_or_else(|e| {
                panic!("{}: mod {name}: {}: {e}", parent.display(), file.display())
            });
            todo.push((file.clone(), declared_modules(&mask(&text))));
            found.push(file);
        }
    }
    found
}

/// The file of module `name` declared in `parent` (`NAME.rs` or `NAME/mod.rs`, beside a
/// `lib.rs`, `main.rs` or `mod.rs`, else in the directory named after `parent`).
fn module_file(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.parent().unwrap();
    let stem = parent.file_stem().unwrap();
    let base = if ["lib", "main", "mod"].iter().any(|s| stem == *s) {
        dir.to_path_buf()
    } else {
        dir.join(stem)
    };
    let file = base.join(format!("{name}.rs"));
    if file.is_file() {
        file
    } else {
        base.join(name).join("mod.rs")
    }
}

/// `text` with comments and string and character literals replaced by spaces (line breaks
/// kept), so that the brackets and words left are the code's.
fn mask(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = b.to_vec();
    let mut i = 0;
    while i < b.len() {
        let end = match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => b[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(b.len(), |p| i + p),
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest.
                let (mut depth, mut j) = (0usize, i);
                while j < b.len() {
                    if b[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if b[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        j += 1;
                    }
                }
                j
            }
            b'r' if raw_string_start(b, i) => {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let body = i + 1 + hashes + 1;
                b[body..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(b.len(), |p| body + p + close.len())
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                (j + 1).min(b.len())
            }
            // A character literal ('a', '\n', '\u{e9}', 'é'); else a lifetime ('a).
            b'\'' if b.get(i + 1) == Some(&b'\\') => b[i + 2..]
                .iter()
                .position(|&c| c == b'\'')
                .map_or(i + 1, |p| i + 2 + p + 1),
            b'\'' => {
                let width = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                if b.get(i + 1 + width) == Some(&b'\'') {
                    i + 2 + width
                } else {
                    i + 1
                }
            }
            _ => {
                i += 1;
                continue;
            }
        };
        for c in &mut out[i..end] {
            // Whole characters become spaces (a literal or comment ends on an ASCII byte).
            if *c != b'\n' {
                *c = b' ';
            }
        }
        i = end.max(i + 1);
    }
    String::from_utf8(out).expect("only whole characters were replaced by spaces")
}

/// Whether a raw string (`r"…"`, `r#"…"#`, `br"…"`) starts at the `r` at `i`.
fn raw_string_start(b: &[u8], i: usize) -> bool {
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let before_ok = match i.checked_sub(1).map(|p| b[p]) {
        None => true,
        Some(b'b' | b'c') => i < 2 || !ident(b[i - 2]),
        Some(c) => !ident(c),
    };
    let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
    before_ok && b.get(i + 1 + hashes) == Some(&b'"')
}

const LIBRARIES: [&str; 5] = [
    "crates/disk/src/lib.rs",
    "crates/docker/src/lib.rs",
    "crates/dockerfile/src/lib.rs",
    "crates/inspect/src/lib.rs",
    "crates/pipeline/src/lib.rs",
];

fn every_crate_says_what_it_is_for() {
    for lib in LIBRARIES
        .iter()
        .chain(&["cli/src/lib.rs", "cli/src/main.rs", "xtask/src/main.rs"])
    {
        assert!(read(lib).starts_with("//! "), "{lib} lacks a crate doc");
    }
}

fn every_library_denies_printing_to_the_compiler_too() {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        found.push(format!(
            "crates/{}/src/lib.rs",
            entry.file_name().to_string_lossy()
        ));
    }
    found.sort();
    let mut listed: Vec<String> = LIBRARIES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed, "a crate is missing from LIBRARIES");
    for lib in LIBRARIES {
        assert!(
            read(lib).contains("#![deny(clippy::print_stdout, clippy::print_stderr)]"),
            "{lib}: a library reports through values and callbacks; deny printing"
        );
    }
}

fn every_catalog_item_is_documented() {
    let readme = read("README.md");
    for item in headroom_disk::Catalog::builtin().items {
        assert!(
            readme.contains(&format!("`{}`", item.name)),
            "README lacks `{}`",
            item.name
        );
    }
}

fn benchmarks_come_with_their_command() {
    let doc = read("docs/benchmarks.md");
    for command in [
        "cargo xtask bench free",
        "cargo xtask bench pipeline",
        "cargo xtask bench image",
        "cargo xtask bench inspect",
        "cargo xtask bench lint",
    ] {
        assert!(
            doc.contains(command),
            "docs/benchmarks.md lacks `{command}`"
        );
    }
}

fn the_readme_shows_the_sibling_example_as_it_is() {
    let readme = read("README.md");
    let example = read("examples/sibling-xtask/src/main.rs");
    let call = "headroom_cli::main_with(";
    let line = example
        .lines()
        .find(|l| l.contains(call))
        .unwrap_or_else(|| panic!("{call} is not in the example"));
    assert!(
        readme.contains(line.trim()),
        "README.md does not show the example's line: {}",
        line.trim()
    );
    let code = example.lines().filter(|l| !l.starts_with("//!")).count();
    assert!(code <= 10, "a sibling's xtask is a few lines, not {code}");
    let manifest = read("examples/sibling-xtask/Cargo.toml");
    for dep in manifest.lines().filter(|l| l.contains("git = ")) {
        assert!(readme.contains(dep), "README.md lacks: {dep}");
    }
}

/// docs/ARCHITECTURE.md has a `### \`PATH\`` section for each workspace member, and none for
/// a member that is gone.
fn the_architecture_maps_every_crate_of_the_workspace() {
    let manifest: toml::Table = read("Cargo.toml").parse().unwrap();
    let members: std::collections::BTreeSet<String> = manifest["workspace"]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap().trim_end_matches('/').to_string())
        .collect();
    let architecture = read("docs/ARCHITECTURE.md");
    let mapped: std::collections::BTreeSet<String> = architecture
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split('`').next())
        .map(|p| p.trim_end_matches('/').to_string())
        .collect();
    assert_eq!(
        mapped, members,
        "docs/ARCHITECTURE.md's code map (### `PATH` sections) must list the workspace's members"
    );
    for member in &members {
        let name: toml::Table = read(&format!("{member}/Cargo.toml")).parse().unwrap();
        let name = name["package"]["name"].as_str().unwrap();
        assert!(
            name == "xtask" || name == "headroom-tests" || architecture.contains(name),
            "docs/ARCHITECTURE.md does not name the crate {name} ({member})"
        );
    }
}

/// A file of the product's crates, the lab or the xtask over 900 lines does too many things;
/// test modules in files of their own (`tests.rs`, `tests/`) aside.
fn no_source_file_is_over_900_lines() {
    let mut files = Vec::new();
    for dir in ["crates", "cli/src", "lab/src", "xtask/src"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(!files.is_empty());
    let mut long = Vec::new();
    for f in files {
        let is_test = f.file_name().is_some_and(|n| n == "tests.rs")
            || f.components().any(|c| c.as_os_str() == "tests");
        if is_test {
            continue;
        }
        let lines = std::fs::read_to_string(&f).unwrap().lines().count();
        if lines > 900 {
            long.push(format!("{} ({lines} lines)", f.display()));
        }
    }
    assert!(long.is_empty(), "split by responsibility: {long:?}");
}

/// docs/configuration.md is what `headroom_pipeline::reference::markdown` makes
/// (`UPDATE_EXPECT=1` rewrites it), and every key of the table parses in its file.
fn configuration_reference_is_in_step() {
    use headroom_pipeline::reference::{KEYS, markdown};
    let path = root().join("docs/configuration.md");
    let made = markdown();
    if std::env::var("UPDATE_EXPECT").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &made).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        written == made,
        "docs/configuration.md is not in step with crates/pipeline/src/reference.rs: run \
         UPDATE_EXPECT=1 cargo test -p headroom-tests --test it -- tidy::configuration_reference"
    );
    for k in KEYS {
        let line = format!("{} = {}\n", k.key, k.example);
        let text = match k.table {
            "" => line,
            "[[variants]]" if k.key == "name" => format!("[[variants]]\n{line}"),
            "[[variants]]" => format!("[[variants]]\nname = \"a\"\n{line}"),
            table => format!("[{table}]\n{line}"),
        };
        let parsed = match (k.file, k.table) {
            ("image.toml", _) => toml::from_str::<headroom_pipeline::settings::ImageConfig>(&text)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ("headroom.toml", "lint") => {
                headroom_pipeline::lint::LintConfig::from_toml(&text, "headroom.toml")
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            ("headroom.toml", "free") => {
                headroom_disk::UserConfig::from_toml(&text, "headroom.toml")
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            other => panic!("a file or table the reference does not know: {other:?}"),
        };
        assert!(parsed.is_ok(), "{}: {text}: {parsed:?}", k.file);
    }
}

/// Each field of the settings' structs has its row in the reference (a field added without
/// one fails here).
fn every_setting_has_a_row_in_the_reference() {
    use headroom_pipeline::reference::KEYS;
    let structs = [
        (
            "crates/pipeline/src/settings.rs",
            "ImageConfig",
            "image.toml",
            "",
        ),
        (
            "crates/pipeline/src/settings.rs",
            "FreeConfig",
            "image.toml",
            "free",
        ),
        (
            "crates/pipeline/src/settings.rs",
            "SmokeConfig",
            "image.toml",
            "smoke",
        ),
        (
            "crates/pipeline/src/settings.rs",
            "VariantConfig",
            "image.toml",
            "[[variants]]",
        ),
        (
            "crates/pipeline/src/gate.rs",
            "Thresholds",
            "image.toml",
            "inspect",
        ),
        (
            "crates/pipeline/src/lint.rs",
            "LintConfig",
            "headroom.toml",
            "lint",
        ),
        (
            "crates/disk/src/catalog.rs",
            "UserConfig",
            "headroom.toml",
            "free",
        ),
    ];
    let tables = ["free", "smoke", "inspect", "variants"];
    let mut missing = Vec::new();
    for (file, name, config, table) in structs {
        let text = read(file);
        let start = text
            .find(&format!("pub struct {name} {{"))
            .unwrap_or_else(|| panic!("{file}: no struct {name}"));
        let body = &text[start..];
        let body = &body[..body.find("\n}").unwrap()];
        let mut skip = false;
        let mut rename = None;
        for line in body.lines().skip(1).map(str::trim) {
            if line.starts_with("#[serde(") {
                skip |= line.split(['(', ')', ',', ' ']).any(|word| word == "skip");
                if let Some(r) = line.split("rename = \"").nth(1) {
                    rename = r.split('"').next().map(str::to_string);
                }
                continue;
            }
            let Some((field, _)) = line.trim_start_matches("pub ").split_once(':') else {
                continue;
            };
            if line.starts_with("//") || field.contains(' ') {
                continue;
            }
            let key = rename.take().unwrap_or_else(|| field.to_string());
            if std::mem::take(&mut skip) || (table.is_empty() && tables.contains(&key.as_str())) {
                continue;
            }
            if !KEYS
                .iter()
                .any(|k| k.file == config && k.table == table && k.key == key)
            {
                missing.push(format!("{config} [{table}] {key} ({name})"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "keys without a row in crates/pipeline/src/reference.rs: {missing:?}"
    );
}
