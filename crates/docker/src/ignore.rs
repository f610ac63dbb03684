//! `.dockerignore` rules, decided the way Docker decides them.
//!
//! headroom writes the build-context tar itself ([`crate::context`]) instead of letting the
//! `docker` CLI do it, so it has to agree with Docker about which files the engine sees: a file
//! that Docker would send but headroom drops breaks a `COPY`, and one that Docker would drop
//! but headroom sends busts the build cache or leaks a secret into an image. This module
//! re-implements, in our own code, the three pieces of Docker that make that decision:
//!
//! * reading the file (moby/patternmatcher `ignorefile.ReadAll`): a UTF-8 BOM is dropped, a
//!   line whose first character is `#` is a comment, surrounding whitespace is trimmed, blank
//!   lines are skipped, a leading `!` marks an exception, and every pattern is cleaned like Go's
//!   `filepath.Clean` with a leading `/` removed (`./a`, `a/`, `/a` all become `a`);
//! * matching (moby/patternmatcher): the syntax of Go's `filepath.Match` (`*` and `?` never
//!   match `/`, `[...]` classes with ranges and `^` negation, `\` escapes) plus `**`, which
//!   matches any number of directories, including none; a pattern that matches a directory
//!   excludes everything below it, and the last matching pattern wins;
//! * walking (the CLI's archiver and BuildKit's fsutil): each entry is decided from its
//!   parent directory's per-pattern results (`MatchesUsingParentResults`), and an excluded
//!   directory is only skipped when no exception could bring back something below it.
//!
//! The CLI also always sends the Dockerfile and the `.dockerignore` file, even when they are
//! excluded, by appending exceptions for them; [`DockerIgnore::must_include`] does the same.
//!
//! Quirks kept on purpose, because Docker has them: `[!a]` is a class of `!` and `a` (only
//! `^` negates); an unescaped `^` in a wild pattern is a start anchor; `**foo` is a plain
//! suffix test (it matches `xfoo`); and an exception is only carried down from a parent when
//! Docker looked at it for that parent (`a/b` then `!a` leaves `a/b` excluded).
//!
//! Where this differs from Docker, deliberately: inside `[...]`, `*`, `?` and `\x` are the
//! literal characters (Docker's regular-expression translation garbles them); an escaped
//! letter such as `\d` is that letter, not a regular-expression class; a reversed range such
//! as `[z-a]` is refused when parsing (Docker fails later, while walking). Directory pruning is
//! as conservative as BuildKit's: the classic CLI archiver would skip an excluded directory
//! even when an exception like `!**/keep` could match inside it.
//!
//! Here: reading the file and deciding paths during a walk ([`DockerIgnore`]). One pattern's
//! syntax and matching are `pattern`.

mod pattern;
#[cfg(test)]
mod tests;

use std::fmt;

use thiserror::Error;

use pattern::{Matcher, compile, literal_prefix, validate};

/// A `.dockerignore` pattern that Docker would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{origin}:{line}: invalid pattern `{pattern}`: {reason}")]
pub struct IgnoreError {
    /// Where the patterns came from (usually the ignore file's path).
    pub origin: String,
    /// 1-based line number in that file.
    pub line: usize,
    /// The pattern as written on that line (trimmed).
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parsed `.dockerignore` rules.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

/// Per-pattern match results of a directory, handed down to its children during a walk
/// (Docker's `MatchInfo`). Get the root's from [`DockerIgnore::root_state`] and each
/// directory's from [`DockerIgnore::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchState {
    matched: Vec<bool>,
}

#[derive(Debug, Clone)]
struct Rule {
    /// Cleaned pattern without the `!`.
    pattern: String,
    exception: bool,
    matcher: Matcher,
    /// Every path this pattern can match starts with this string.
    literal_prefix: String,
}

impl DockerIgnore {
    /// Rules that exclude nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the text of a `.dockerignore` file; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, IgnoreError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (index, raw) in text.split('\n').enumerate() {
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            // Comments are recognised before trimming, exactly at the start of the line.
            if raw.starts_with('#') {
                continue;
            }
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let error = |reason: &str| IgnoreError {
                origin: origin.to_string(),
                line: index + 1,
                pattern: trimmed.to_string(),
                reason: reason.to_string(),
            };
            // ignorefile.ReadAll: normalise, keeping the `!` aside.
            let (invert, body) = match trimmed.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, trimmed),
            };
            let mut body = if body.is_empty() {
                String::new()
            } else {
                clean(body)
            };
            if body.len() > 1 && body.starts_with('/') {
                body.remove(0);
            }
            let line = if invert { format!("!{body}") } else { body };
            // patternmatcher.New: trim and clean once more, then split off the `!`.
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let line = clean(line);
            let (exception, pattern) = match line.strip_prefix('!') {
                Some("") => return Err(error("`!` alone is not a pattern")),
                Some(rest) => (true, rest.to_string()),
                None => (false, line.clone()),
            };
            let chars: Vec<char> = pattern.chars().collect();
            validate(&chars).map_err(|reason| error(&reason))?;
            rules.push(Rule {
                matcher: compile(&pattern, &chars),
                literal_prefix: literal_prefix(&pattern),
                pattern,
                exception,
            });
        }
        Ok(Self { rules })
    }

    /// True when there are no patterns at all.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when at least one pattern is an exception (`!…`).
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// The patterns in order, normalised as Docker normalises them (exceptions keep their `!`).
    pub fn patterns(&self) -> impl Iterator<Item = String> + '_ {
        self.rules.iter().map(|r| r.to_string())
    }

    /// Whether Docker leaves `rel_path` (slash-separated, relative to the context root) out of
    /// the build context. The path is cleaned first; the root itself is never excluded.
    ///
    /// This gives the same answer as a walk from the root would, directory by directory.
    pub fn is_excluded(&self, rel_path: &str) -> bool {
        let path = normalize_rel(rel_path);
        if path.is_empty() || path == "." {
            return false;
        }
        let mut state = self.root_state();
        let mut excluded = false;
        let ends = path.match_indices('/').map(|(i, _)| i);
        for end in ends.chain(std::iter::once(path.len())) {
            let (e, s) = self.check(&path[..end], &state);
            excluded = e;
            state = s;
        }
        excluded
    }

    /// The match state of the context root, to pass to [`check`](Self::check) for top-level
    /// entries.
    pub fn root_state(&self) -> MatchState {
        MatchState {
            matched: vec![false; self.rules.len()],
        }
    }

    /// One step of a walk: whether `rel_path` (clean, slash-separated) is excluded, given the
    /// state of its parent directory, and the state to hand to its own children.
    pub fn check(&self, rel_path: &str, parent: &MatchState) -> (bool, MatchState) {
        let mut state = MatchState {
            matched: vec![false; self.rules.len()],
        };
        let mut excluded = false;
        for (i, rule) in self.rules.iter().enumerate() {
            let mut hit = parent.matched.get(i).copied().unwrap_or(false);
            if !hit {
                // An exclusion cannot change an excluded path, nor an exception an included
                // one, so Docker does not look (and then records "no match" for this rule).
                if rule.exception != excluded {
                    continue;
                }
                hit = rule.matcher.is_match(rel_path);
            }
            state.matched[i] = hit;
            if hit {
                excluded = !rule.exception;
            }
        }
        (excluded, state)
    }

    /// Whether some exception pattern might match `dir` itself, one of its parents or
    /// anything below it, so that a walk must look inside `dir` even though it is excluded.
    /// Conservative: it answers `true` whenever the exception's literal prefix (the text
    /// before its first wildcard) is compatible with `dir/`.
    pub fn may_include_below(&self, dir: &str) -> bool {
        let dir_slash = format!("{}/", normalize_rel(dir));
        self.rules.iter().filter(|r| r.exception).any(|r| {
            r.literal_prefix.starts_with(&dir_slash) || dir_slash.starts_with(&r.literal_prefix)
        })
    }

    /// Whether a walk may skip the directory `dir` without looking inside: it is excluded and
    /// no exception could bring back anything below it.
    pub fn can_skip_dir(&self, dir: &str) -> bool {
        self.is_excluded(dir) && !self.may_include_below(dir)
    }

    /// Makes sure `rel_path` is sent even if the patterns exclude it, as the Docker CLI does
    /// for the Dockerfile and `.dockerignore`: when it is excluded, an exception matching
    /// exactly that path is appended.
    pub fn must_include(&mut self, rel_path: &str) {
        let path = normalize_rel(rel_path);
        if path.is_empty() || path == "." || path == ".." || path.starts_with("../") {
            return;
        }
        if self.is_excluded(&path) {
            self.rules.push(Rule {
                matcher: Matcher::Exact(path.clone()),
                literal_prefix: path.clone(),
                pattern: path,
                exception: true,
            });
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exception {
            write!(f, "!{}", self.pattern)
        } else {
            f.write_str(&self.pattern)
        }
    }
}

/// Cleans a path given by a caller: slash-separated, relative, no `.` or empty components.
fn normalize_rel(path: &str) -> String {
    let cleaned = clean(path);
    match cleaned.strip_prefix('/') {
        Some("") => ".".to_string(),
        Some(rest) => rest.to_string(),
        None => cleaned,
    }
}

/// Go's `path.Clean`: the shortest equivalent path, purely lexically.
pub(crate) fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|p| *p != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}
