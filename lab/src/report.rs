//! How the lab shows results: aligned tables for people, sections of docs/benchmarks.md,
//! and GitHub Actions' step summary and outputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::sh::cmd;

/// The product's table for people (aligned columns, numbers to the right).
pub use headroom_pipeline::render::human::table;

/// On GitHub Actions: append Markdown to the step summary, if the runner provides one.
pub fn github_step_summary(markdown: &str) -> Result<()> {
    Ok(headroom_pipeline::github::append_step_summary(markdown)?)
}

/// On GitHub Actions: set step outputs, if the runner provides the file.
pub fn github_outputs(pairs: &[(&str, String)]) -> Result<()> {
    Ok(headroom_pipeline::github::append_outputs(pairs)?)
}

/// docs/benchmarks.md, where `--record` writes.
pub fn benchmarks_md() -> PathBuf {
    crate::repo::project_root().join("docs/benchmarks.md")
}

/// Today's date (UTC) as a record shows it: `2026-12-02`.
pub fn today() -> Result<String> {
    cmd("date", ["-u", "+%F"]).read()
}

/// Put `section` (its markers included) into the Markdown file at `path`: in place of the
/// old section between `start_mark` and `end_mark` when they are there, else at the end;
/// create the file when absent.
pub fn record_between(path: &Path, section: &str, start_mark: &str, end_mark: &str) -> Result<()> {
    let old = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::from(
            "# Benchmarks\n\nEvery figure here comes with the command that reproduces it.\n",
        ),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let new = match (old.find(start_mark), old.find(end_mark)) {
        (Some(start), Some(end)) if start < end => {
            let mut after = &old[end + end_mark.len()..];
            after = after.strip_prefix('\n').unwrap_or(after);
            format!("{}{section}{after}", &old[..start])
        }
        (None, None) => {
            let mut text = old.trim_end().to_string();
            text.push_str("\n\n");
            text.push_str(section);
            text
        }
        _ => bail!(
            "{}: the markers {} and {} are unbalanced; fix them by hand",
            path.display(),
            start_mark,
            end_mark
        ),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, new).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_replaces_the_section_or_appends_it() {
        const START: &str = "<!-- t:start -->";
        const END: &str = "<!-- t:end -->";
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("benchmarks.md");
        let section = |n: u32| format!("{START}\nrun {n}\n{END}\n");
        record_between(&path, &section(1), START, END).unwrap();
        let first = std::fs::read_to_string(&path).unwrap();
        assert!(first.starts_with("# Benchmarks\n"));
        assert!(first.ends_with(&section(1)));
        std::fs::write(&path, format!("{first}\n## Other\n")).unwrap();
        record_between(&path, &section(2), START, END).unwrap();
        let second = std::fs::read_to_string(&path).unwrap();
        assert!(second.contains(&section(2)) && !second.contains("run 1"));
        assert!(second.ends_with("\n## Other\n"));
        std::fs::write(&path, format!("{START}\n")).unwrap();
        let err = record_between(&path, &section(3), START, END).unwrap_err();
        assert!(err.to_string().contains("unbalanced"), "{err}");
    }
}
