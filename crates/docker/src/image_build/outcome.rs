//! What a build says: [`BuildEvent`]s to a [`BuildProgress`] while it runs, then a
//! [`BuildOutcome`] or a [`BuildError`] with the last lines of its output.

use serde::{Deserialize, Serialize};

use super::spec::Backend;

/// Progress of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A step (instruction) started; `cached` when it came from the cache.
    Step { name: String, cached: bool },
    /// A line of build output.
    Line(String),
}

/// Receives a build's [`BuildEvent`]s, in order. The library never prints: the caller decides
/// how to show them. A closure `Fn(BuildEvent)` is a `BuildProgress`.
pub trait BuildProgress: Send + Sync {
    fn event(&self, event: BuildEvent);
}

impl<F: Fn(BuildEvent) + Send + Sync> BuildProgress for F {
    fn event(&self, event: BuildEvent) {
        self(event)
    }
}

/// A finished build.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BuildOutcome {
    pub backend: Option<Backend>,
    pub image_id: Option<String>,
    pub references: Vec<String>,
    pub steps: u32,
    pub cached_steps: u32,
    pub seconds: f64,
    pub last_lines: Vec<String>,
    /// The digest the builder pushed (`--push`), as buildx's metadata gives it.
    #[serde(default)]
    pub pushed_digest: Option<String>,
    /// Cache exports that failed in a build that passed (`ignore-error=true`): the vertex
    /// and BuildKit's error.
    #[serde(default)]
    pub cache_warnings: Vec<String>,
}

/// A failed build: the step that failed, the last lines, and whether the disk was full.
#[derive(Debug, Clone, thiserror::Error, Serialize)]
#[error("{message}")]
pub struct BuildError {
    pub message: String,
    pub failing_step: Option<String>,
    pub last_lines: Vec<String>,
    pub no_space: bool,
}

impl BuildError {
    pub(super) fn new(
        message: impl Into<String>,
        failing_step: Option<String>,
        last_lines: Vec<String>,
    ) -> Self {
        let message = message.into();
        let no_space = is_no_space(&message) || last_lines.iter().any(|l| is_no_space(l));
        BuildError {
            message,
            failing_step,
            last_lines,
            no_space,
        }
    }
}

/// True for the ways a full disk shows up in build output.
pub fn is_no_space(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("no space left on device")
        || t.contains("enospc")
        || t.contains("disk quota exceeded")
}

const KEEP_LINES: usize = 40;

/// Keeps the last lines of output for error reports.
#[derive(Debug, Default)]
pub(super) struct Tail {
    pub(super) lines: std::collections::VecDeque<String>,
}

impl Tail {
    pub(super) fn push(&mut self, line: &str) {
        for l in line.lines() {
            let l = l.trim_end();
            if l.is_empty() {
                continue;
            }
            if self.lines.len() == KEEP_LINES {
                self.lines.pop_front();
            }
            self.lines.push_back(l.to_string());
        }
    }
    pub(super) fn take(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }
}
