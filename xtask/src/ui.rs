//! How the xtask shows things: progress (a bar on a terminal, plain lines elsewhere), human
//! tables, and GitHub Actions' step summary and outputs.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use headroom_disk::{Event, Progress, format_size};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// True when running inside a GitHub Actions job.
pub(crate) fn on_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// True on a GitHub-hosted runner: the one place where deleting preinstalled software needs
/// no `--yes` (a self-hosted runner is somebody's machine).
pub(crate) fn github_hosted_runner() -> bool {
    headroom_pipeline::Runner::detect().may_delete_unasked()
}

/// True when output goes to a person at a terminal rather than a CI log.
pub(crate) fn interactive() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || on_github_actions();
    !ci && std::io::stderr().is_terminal()
}

/// Progress of a reclaim, shown on stderr.
pub(crate) struct Reporter {
    bar: Option<ProgressBar>,
    /// Serialises plain lines from the worker threads.
    lines: Mutex<()>,
}

impl Reporter {
    pub(crate) fn new() -> Self {
        let bar = interactive().then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} [{elapsed}] {wide_bar} {pos}/{len} files",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter {
            bar,
            lines: Mutex::new(()),
        }
    }

    /// Set the total number of files the reclaim will remove.
    pub(crate) fn begin_reclaim(&self, files: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(files);
            bar.set_position(0);
            bar.set_message("removing");
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn line(&self, text: String) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let _guard = self.lines.lock().unwrap_or_else(|p| p.into_inner());
                eprintln!("{text}");
            }
        }
    }
}

impl Progress for Reporter {
    fn event(&self, event: Event<'_>) {
        match event {
            Event::Measuring { item } => {
                if let Some(bar) = &self.bar {
                    bar.set_message(format!("measuring {item}"));
                }
            }
            Event::Measured { item, size } => {
                if self.bar.is_none() {
                    self.line(format!(
                        "free: measured {item}: {} in {} files",
                        format_size(size.disk_bytes),
                        size.files
                    ));
                }
            }
            Event::Started { item, bytes, files } => self.line(format!(
                "free: {item}: reclaiming {} ({files} files)",
                format_size(bytes)
            )),
            Event::Removed { files, .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(files);
                }
            }
            Event::Finished {
                item,
                action,
                freed_bytes,
                seconds,
            } => self.line(format!(
                "free: {item}: {} {} in {seconds:.1} s",
                action.as_str(),
                format_size(freed_bytes)
            )),
        }
    }
}

/// A plain text table with aligned columns; numeric-looking columns are right-aligned.
pub(crate) fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let right: Vec<bool> = (0..headers.len())
        .map(|c| {
            rows.iter().all(|r| {
                r.get(c).is_none_or(|v| {
                    v.chars().next().is_none_or(|ch| ch.is_ascii_digit()) && !v.contains('/')
                })
            })
        })
        .collect();
    let mut out = String::new();
    let mut push_row = |cells: Vec<String>| {
        let mut line = String::new();
        for (c, cell) in cells.iter().enumerate() {
            let pad = widths[c].saturating_sub(cell.chars().count());
            if c > 0 {
                line.push_str("  ");
            }
            if right[c] {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if c + 1 < cells.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_row(headers.iter().map(|h| h.to_string()).collect());
    for row in rows {
        push_row(row.clone());
    }
    out
}

/// On GitHub Actions: append Markdown to the step summary, if the runner provides one.
pub(crate) fn github_step_summary(markdown: &str) -> Result<()> {
    Ok(headroom_pipeline::github::append_step_summary(markdown)?)
}

/// On GitHub Actions: set step outputs, if the runner provides the file.
pub(crate) fn github_outputs(pairs: &[(&str, String)]) -> Result<()> {
    Ok(headroom_pipeline::github::append_outputs(pairs)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let t = table(
            &["item", "size"],
            &[
                vec!["android".into(), "12 GB".into()],
                vec!["x".into(), "1.5 MB".into()],
            ],
        );
        assert_eq!(t, "item       size\nandroid   12 GB\nx        1.5 MB\n");
    }
}
