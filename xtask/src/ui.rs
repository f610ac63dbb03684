//! Where the xtask shows things: progress (a bar on a terminal, plain lines elsewhere) on
//! stderr, and GitHub Actions' step summary and outputs. The text itself is made by
//! `headroom_pipeline::render`.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Result;
use headroom_disk::{Event, Progress};
use headroom_pipeline::render::human;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Tables are made by the library's renderer; the lab's commands name them by this path.
pub(crate) use headroom_pipeline::render::human::table;

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
            Event::Removed { files, .. } => {
                if let Some(bar) = &self.bar {
                    bar.inc(files);
                }
            }
            // With a bar, what is being measured shows on it; a log gets a line per item.
            Event::Measured { .. } if self.bar.is_some() => {}
            other => {
                if let Some(line) = human::free_event(&other) {
                    self.line(line);
                }
            }
        }
    }
}

/// On GitHub Actions: append Markdown to the step summary, if the runner provides one.
pub(crate) fn github_step_summary(markdown: &str) -> Result<()> {
    Ok(headroom_pipeline::github::append_step_summary(markdown)?)
}

/// On GitHub Actions: set step outputs, if the runner provides the file.
pub(crate) fn github_outputs(pairs: &[(&str, String)]) -> Result<()> {
    Ok(headroom_pipeline::github::append_outputs(pairs)?)
}
