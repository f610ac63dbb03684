//! Where the commands show things: progress (a bar on a terminal, plain lines elsewhere) on
//! stderr, `-q`/`-v`, repeated lines folded, and GitHub Actions' step summary and outputs.
//! The text itself is made by `headroom_pipeline::render`. There is no colour to turn off:
//! NO_COLOR and a dumb terminal are honoured by printing none (and no bar on a dumb one).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use anyhow::Result;
use headroom_disk::{Event, Progress};
use headroom_pipeline::render::human;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Tables are made by the library's renderer; the lab's commands name them by this path.
pub use headroom_pipeline::render::human::table;

/// How much the commands print: quiet (errors and the closing summary), normal (repeats
/// folded), verbose (every line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Set from `-q`/`-v` once, before a command runs.
pub(crate) fn set_verbosity(global: crate::Global) {
    let v = if global.quiet {
        0
    } else if global.verbose {
        2
    } else {
        1
    };
    VERBOSITY.store(v, Ordering::Relaxed);
}

/// The verbosity `-q`/`-v` chose.
pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// Text fit for a terminal: control characters and bytes that are not text (a garbage
/// archive's name or contents in an error) shown escaped, never raw. Newlines and tabs stay.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

/// Identical lines in a row, shown once with a count: "… (×6)". With -v, every line.
#[derive(Debug, Default)]
pub(crate) struct Folded {
    last: Mutex<Option<(String, usize)>>,
}

impl Folded {
    /// Print `line` on stderr unless it repeats the previous one.
    pub(crate) fn line(&self, line: &str) {
        if verbosity() == Verbosity::Verbose {
            eprintln!("{}", printable(line));
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        match last.as_mut() {
            Some((text, n)) if text == line => *n += 1,
            _ => {
                flush(&mut last);
                eprintln!("{}", printable(line));
                *last = Some((line.to_string(), 1));
            }
        }
    }

    /// The count of the last repeated line, if it repeated.
    pub(crate) fn flush(&self) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        flush(&mut last);
    }
}

fn flush(last: &mut Option<(String, usize)>) {
    if let Some((_, n)) = last.take() {
        if n > 1 {
            eprintln!("  (the line above {} more times)", n - 1);
        }
    }
}

/// True when running inside a GitHub Actions job.
pub fn on_github_actions() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// True on a GitHub-hosted runner: the one place where deleting preinstalled software needs
/// no `--yes` (a self-hosted runner is somebody's machine).
pub(crate) fn github_hosted_runner() -> bool {
    headroom_pipeline::Runner::detect().may_delete_unasked()
}

/// True when output goes to a person at a terminal rather than a CI log (or a dumb
/// terminal, or -q).
pub fn interactive() -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") || on_github_actions();
    let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
    !ci && !dumb && verbosity() != Verbosity::Quiet && std::io::stderr().is_terminal()
}

/// A spinner on a terminal for a stage whose length is unknown (build steps, push);
/// `None` on CI, where plain lines are the log.
pub(crate) fn spinner(prefix: &str) -> Option<ProgressBar> {
    interactive().then(|| {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {pos} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(prefix.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        bar
    })
}

/// Progress of a reclaim, shown on stderr.
#[derive(Debug)]
pub struct Reporter {
    bar: Option<ProgressBar>,
    /// Serialises plain lines from the worker threads.
    lines: Mutex<()>,
}

impl Default for Reporter {
    fn default() -> Self {
        Reporter::new()
    }
}

impl Reporter {
    pub fn new() -> Self {
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
        if verbosity() == Verbosity::Quiet {
            return;
        }
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
