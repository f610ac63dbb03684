//! Tidy tests: keep the tree honest about itself.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};

headroom_tests::tests! {
    ci_runs_the_test_command_the_readme_gives;
    libraries_never_print;
    every_crate_says_what_it_is_for;
    every_library_denies_printing_to_the_compiler_too;
    every_catalog_item_is_documented;
    benchmarks_come_with_their_command;
    the_readme_shows_the_sibling_example_as_it_is;
}

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
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    assert!(!files.is_empty());
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        // Unit tests sit at the end of a file, after `#[cfg(test)]`.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (n, line) in code.lines().enumerate() {
            for mac in ["println!", "eprintln!", "print!(", "eprint!(", "dbg!("] {
                assert!(
                    !line.contains(mac),
                    "{}:{}: libraries report through values and callbacks, not {mac}",
                    f.display(),
                    n + 1
                );
            }
        }
    }
}

const LIBRARIES: [&str; 5] = [
    "crates/disk/src/lib.rs",
    "crates/docker/src/lib.rs",
    "crates/dockerfile/src/lib.rs",
    "crates/inspect/src/lib.rs",
    "crates/pipeline/src/lib.rs",
];

fn every_crate_says_what_it_is_for() {
    for lib in LIBRARIES.iter().chain(&["xtask/src/main.rs"]) {
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
    for call in ["Settings::resolve(", "Pipeline::new(settings).run("] {
        let line = example
            .lines()
            .find(|l| l.contains(call))
            .unwrap_or_else(|| panic!("{call} is not in the example"));
        assert!(
            readme.contains(line.trim()),
            "README.md does not show the example's line: {}",
            line.trim()
        );
    }
    let manifest = read("examples/sibling-xtask/Cargo.toml");
    for dep in manifest.lines().filter(|l| l.contains("git = ")) {
        assert!(readme.contains(dep), "README.md lacks: {dep}");
    }
}
