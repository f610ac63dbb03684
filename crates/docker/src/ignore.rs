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

use std::fmt;

use thiserror::Error;

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

/// The text before the first character that could be anything but itself.
fn literal_prefix(pattern: &str) -> String {
    pattern
        .chars()
        .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\' | '^'))
        .collect()
}

/// The syntax check Docker runs on each pattern (`filepath.Match(pattern, ".")`), plus the
/// one its regular-expression compiler adds: a range like `[z-a]` is refused.
fn validate(p: &[char]) -> Result<(), String> {
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '\\' => {
                if i + 1 >= p.len() {
                    return Err("trailing `\\` escapes nothing".to_string());
                }
                i += 2;
            }
            '[' => {
                let (_, next) = parse_class(p, i + 1)?;
                i = next;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Parses a character class whose `[` is just before `start`; returns it and the index after
/// its `]`.
fn parse_class(p: &[char], start: usize) -> Result<(CharSet, usize), String> {
    let mut i = start;
    let negated = p.get(i) == Some(&'^');
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    loop {
        if p.get(i) == Some(&']') && !ranges.is_empty() {
            i += 1;
            break;
        }
        let (lo, next) = class_char(p, i)?;
        i = next;
        let mut hi = lo;
        if p.get(i) == Some(&'-') {
            let (h, next) = class_char(p, i + 1)?;
            hi = h;
            i = next;
        }
        if lo > hi {
            return Err(format!("character range `{lo}-{hi}` is reversed"));
        }
        ranges.push((lo, hi));
    }
    Ok((CharSet::Class { negated, ranges }, i))
}

/// One (possibly escaped) character inside a class, which must be followed by more pattern.
fn class_char(p: &[char], mut i: usize) -> Result<(char, usize), String> {
    match p.get(i) {
        None => return Err("unclosed `[`".to_string()),
        Some('-') | Some(']') => return Err("empty or malformed character class".to_string()),
        Some('\\') => i += 1,
        Some(_) => {}
    }
    let c = *p.get(i).ok_or_else(|| "unclosed `[`".to_string())?;
    i += 1;
    if i >= p.len() {
        return Err("unclosed `[`".to_string());
    }
    Ok((c, i))
}

/// How one pattern is matched; mirrors the four cases of patternmatcher's compiler, which
/// must be kept apart because its shortcuts do not always agree with its regular expressions
/// (`**foo` matches `xfoo` by suffix, for instance).
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard: the whole path must be equal.
    Exact(String),
    /// `prefix**`: the path starts with the prefix.
    Prefix(String),
    /// `**suffix` with nothing wild after: the path ends with the suffix (or equals it minus
    /// a leading `/`).
    Suffix(String),
    /// Everything else: an anchored regular expression, run as a small NFA.
    Program(Program),
}

impl Matcher {
    fn is_match(&self, path: &str) -> bool {
        match self {
            Matcher::Exact(p) => path == p,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(s) => {
                path.ends_with(s.as_str()) || s.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Program(program) => program.is_match(path),
        }
    }
}

/// Pieces of the regular expression Docker builds from a pattern.
enum Token {
    /// Exactly one character from the set.
    One(CharSet),
    /// `*`: `[^/]*`.
    Star,
    /// `**` at the end of a wild pattern: `.*`.
    AnyTail,
    /// `**` (or `**/`) elsewhere: `(.*/)?`.
    Dirs,
    /// An unescaped `^`, which Docker leaves as a regular-expression anchor.
    Start,
}

#[derive(Debug, Clone)]
enum CharSet {
    Lit(char),
    /// `[^/]`
    NotSlash,
    /// `.` (which, in Go's regular expressions, does not match a newline)
    NotNewline,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

impl CharSet {
    fn contains(&self, c: char) -> bool {
        match self {
            CharSet::Lit(l) => c == *l,
            CharSet::NotSlash => c != '/',
            CharSet::NotNewline => c != '\n',
            CharSet::Class { negated, ranges } => {
                ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
            }
        }
    }
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Exact,
    Prefix,
    Suffix,
    Regex,
}

/// Translates a validated pattern the way patternmatcher's `compile` does.
fn compile(pattern: &str, p: &[char]) -> Matcher {
    let mut kind = Kind::Exact;
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut step = 0;
    while i < p.len() {
        let c = p[i];
        i += 1;
        match c {
            '*' if p.get(i) == Some(&'*') => {
                i += 1;
                if p.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == p.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        tokens.push(Token::AnyTail);
                        kind = Kind::Regex;
                    }
                } else {
                    tokens.push(Token::Dirs);
                    kind = Kind::Regex;
                }
                if step == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                kind = Kind::Regex;
            }
            '?' => {
                tokens.push(Token::One(CharSet::NotSlash));
                kind = Kind::Regex;
            }
            '\\' => match p.get(i) {
                Some(&escaped) => {
                    i += 1;
                    tokens.push(Token::One(CharSet::Lit(escaped)));
                    kind = Kind::Regex;
                }
                None => tokens.push(Token::One(CharSet::Lit('\\'))),
            },
            '[' => {
                // Validated already; an error here cannot happen, but never panic.
                match parse_class(p, i) {
                    Ok((set, next)) => {
                        tokens.push(Token::One(set));
                        i = next;
                    }
                    Err(_) => tokens.push(Token::One(CharSet::Lit('['))),
                }
                kind = Kind::Regex;
            }
            ']' => {
                tokens.push(Token::One(CharSet::Lit(']')));
                kind = Kind::Regex;
            }
            '^' => tokens.push(Token::Start),
            other => tokens.push(Token::One(CharSet::Lit(other))),
        }
        step += 1;
    }
    match kind {
        Kind::Exact => Matcher::Exact(pattern.to_string()),
        Kind::Prefix => Matcher::Prefix(pattern.strip_suffix("**").unwrap_or("").to_string()),
        Kind::Suffix => Matcher::Suffix(pattern.strip_prefix("**").unwrap_or("").to_string()),
        Kind::Regex => Matcher::Program(Program::new(tokens)),
    }
}

/// A Thompson NFA: matching is linear in the path length whatever the pattern.
#[derive(Debug, Clone)]
struct Program {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    /// Consume one character from the set, then go to the node.
    Char(CharSet, usize),
    /// Try both.
    Split(usize, usize),
    /// Continue only at the start of the path.
    AtStart(usize),
    Match,
}

impl Program {
    fn new(tokens: Vec<Token>) -> Self {
        let mut nodes = Vec::new();
        for token in tokens {
            let k = nodes.len();
            match token {
                Token::One(set) => nodes.push(Node::Char(set, k + 1)),
                Token::Star => {
                    nodes.push(Node::Split(k + 1, k + 2));
                    nodes.push(Node::Char(CharSet::NotSlash, k));
                }
                Token::AnyTail => {
                    nodes.push(Node::Split(k + 1, k + 2));
                    nodes.push(Node::Char(CharSet::NotNewline, k));
                }
                Token::Dirs => {
                    nodes.push(Node::Split(k + 1, k + 4));
                    nodes.push(Node::Split(k + 2, k + 3));
                    nodes.push(Node::Char(CharSet::NotNewline, k + 1));
                    nodes.push(Node::Char(CharSet::Lit('/'), k + 4));
                }
                Token::Start => nodes.push(Node::AtStart(k + 1)),
            }
        }
        nodes.push(Node::Match);
        Self { nodes }
    }

    fn is_match(&self, text: &str) -> bool {
        let n = self.nodes.len();
        let mut current = vec![false; n];
        let mut next = vec![false; n];
        let mut stack = Vec::new();
        self.add(&mut current, &mut stack, 0, true);
        for c in text.chars() {
            next.iter_mut().for_each(|b| *b = false);
            let mut alive = false;
            for (i, node) in self.nodes.iter().enumerate() {
                if !current[i] {
                    continue;
                }
                if let Node::Char(set, to) = node {
                    if set.contains(c) {
                        self.add(&mut next, &mut stack, *to, false);
                        alive = true;
                    }
                }
            }
            if !alive {
                return false;
            }
            std::mem::swap(&mut current, &mut next);
        }
        current.last().copied().unwrap_or(false)
    }

    /// Adds `start` and everything reachable from it without consuming a character.
    fn add(&self, set: &mut [bool], stack: &mut Vec<usize>, start: usize, at_start: bool) {
        stack.push(start);
        while let Some(i) = stack.pop() {
            if i >= set.len() || set[i] {
                continue;
            }
            set[i] = true;
            match &self.nodes[i] {
                Node::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Node::AtStart(to) if at_start => stack.push(*to),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text, ".dockerignore").expect("valid patterns")
    }

    /// (ignore file, path, excluded?)
    const CASES: &[(&str, &str, bool)] = &[
        // No rules.
        ("", "a", false),
        // Plain names, and directories excluding their contents.
        ("a", "a", true),
        ("a", "a/b/c", true),
        ("a", "b", false),
        ("a", "ab", false),
        ("a", "b/a", false),
        // `*` stays within one component.
        ("*.md", "README.md", true),
        ("*.md", "docs/a.md", false),
        ("*.md\n!README.md", "README.md", false),
        ("*.md\n!README.md", "CHANGES.md", true),
        ("*.md\n!README.md", "docs/README.md", false),
        ("a/*", "a", false),
        ("a/*", "a/b", true),
        ("a/*", "a/b/c", true),
        ("*/temp*", "x/temporary", true),
        ("*/temp*", "x/y/temp", false),
        ("*/temp*", "temp", false),
        ("*/*/temp*", "x/y/temp1", true),
        ("*/*/temp*", "x/temp1", false),
        ("*", "anything", true),
        ("*", "a/b", true),
        // `?` is one character, never `/`.
        ("temp?", "tempa", true),
        ("temp?", "temp", false),
        ("a?b", "axb", true),
        ("a?b", "a/b", false),
        // `**`.
        ("**/*.pyc", "a.pyc", true),
        ("**/*.pyc", "x/y/a.pyc", true),
        ("**/*.pyc", "a.pyc.txt", false),
        ("**/*.pyc", "x/a.py", false),
        ("**/*.pyc", "cache.pyc/inner", true),
        ("docs/**", "docs", false),
        ("docs/**", "docs/a", true),
        ("docs/**", "docs/a/b", true),
        ("docs/**", "docsx", false),
        ("docs/**\n!docs/keep/**", "docs/keep/a", false),
        ("docs/**\n!docs/keep/**", "docs/keep/a/b", false),
        ("docs/**\n!docs/keep/**", "docs/keep", true),
        ("docs/**\n!docs/keep/**", "docs/other", true),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**/b", "a/b/c", true),
        ("a/**/b", "a/xb", false),
        ("a/**/b", "b", false),
        ("a/**/b", "x/a/b", false),
        ("**", "a", true),
        ("**", "a/b/c", true),
        ("**\n!keep", "keep", false),
        ("**\n!keep", "keep/x", false),
        ("**\n!keep", "other", true),
        ("**/foo", "foo", true),
        ("**/foo", "a/b/foo", true),
        ("**/foo", "afoo", false),
        ("**/foo", "foo/bar", true),
        // patternmatcher's shortcuts: `**foo` is a plain suffix test, `foo**` a prefix test.
        ("**foo", "afoo", true),
        ("**foo", "a/bfoo", true),
        ("foo**", "foobar", true),
        ("foo**", "foo/x", true),
        ("foo**", "fo", false),
        // `.` in a regular expression does not match a newline; `**` in the middle uses it.
        ("a/**/b", "a/x\ny/b", false),
        // Character classes.
        ("[a-c]x", "ax", true),
        ("[a-c]x", "bx", true),
        ("[a-c]x", "dx", false),
        ("[a-c]x", "x", false),
        ("[^a-c]x", "dx", true),
        ("[^a-c]x", "ax", false),
        ("[!a]x", "!x", true),
        ("[!a]x", "ax", true),
        ("[!a]x", "bx", false),
        ("[\\]]", "]", true),
        ("[a\\-z]", "-", true),
        ("[a\\-z]", "b", false),
        ("[é-ë]lan", "élan", true),
        // Escapes.
        ("\\*literal", "*literal", true),
        ("\\*literal", "xliteral", false),
        ("a\\?", "a?", true),
        ("a\\?", "ab", false),
        // Characters special to regular expressions but not to patterns are literal.
        ("a.b", "a.b", true),
        ("a.b", "axb", false),
        ("a+(b)|{c}$", "a+(b)|{c}$", true),
        ("a.*", "a.txt", true),
        ("a.*", "ab", false),
        // An unescaped `^` is literal in a pattern without wildcards and an anchor otherwise.
        ("^a", "^a", true),
        ("^a", "a", false),
        ("^a*", "abc", true),
        ("^a*", "^abc", false),
        // Cleaning: leading `/`, `./`, trailing `/`, `..`, doubled slashes.
        ("/leading", "leading", true),
        ("/leading", "x/leading", false),
        ("./a", "a", true),
        ("build/", "build", true),
        ("build/", "build/out.o", true),
        ("a//b", "a/b", true),
        ("a/../b", "b", true),
        ("a/../b", "a/b", false),
        ("../x", "x", false),
        ("/../x", "x", true),
        (".", "a", false),
        ("*\n!./a", "a", false),
        ("!./a\n*", "a", true),
        // Comments and blank lines; a `#` after whitespace is a pattern.
        ("# comment\n\n   \nfoo", "foo", true),
        ("# foo", "# foo", false),
        ("  # foo", "# foo", true),
        ("  foo  ", "foo", true),
        ("! foo\nfoo", "foo", true),
        ("foo\n! foo", "foo", false),
        ("\u{feff}foo", "foo", true),
        ("foo\r\nbar\r\n", "bar", true),
        ("foo\r\nbar\r", "bar", true),
        // The last matching pattern wins.
        ("!a.txt\n*.txt", "a.txt", true),
        ("*.txt\n!a.txt", "a.txt", false),
        ("*.txt\n!a.txt\na.txt", "a.txt", true),
        ("a\n!a/b", "a", true),
        ("a\n!a/b", "a/b", false),
        ("a\n!a/b", "a/b/c", false),
        ("a\n!a/b", "a/c", true),
        // An exception for an excluded parent re-includes the children, through the parent.
        ("a\n!a", "a/b", false),
        // ...but a walk only carries down a rule that was looked at for the parent: Docker's
        // `MatchesUsingParentResults` leaves these excluded, because when `a` was decided
        // nothing was excluded yet, so `!a` was skipped (`MatchesOrParentMatches` would
        // include them).
        ("a/*\n!a", "a/b", true),
        ("a/b\n!a", "a/b", true),
        ("a/b\n!a", "a/b/c", true),
        ("a/b\n!a", "a", false),
    ];

    #[test]
    fn table() {
        let mut failures = Vec::new();
        for (text, path, expected) in CASES {
            let got = rules(text).is_excluded(path);
            if got != *expected {
                failures.push(format!("{text:?} on {path:?}: got {got}, want {expected}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn paths_are_cleaned_before_matching() {
        let r = rules("a/b");
        assert!(r.is_excluded("./a/b"));
        assert!(r.is_excluded("/a/b"));
        assert!(r.is_excluded("a/b/"));
        assert!(r.is_excluded("a//b/c"));
        assert!(!r.is_excluded(""));
        assert!(!r.is_excluded("."));
        assert!(!rules("*").is_excluded("/"));
    }

    #[test]
    fn normalised_patterns() {
        let r = rules("# c\n/a/\n./b/../c\n!  /d/e/\n**/\n");
        let got: Vec<String> = r.patterns().collect();
        assert_eq!(got, ["a", "c", "!d/e", "**"]);
        assert!(r.has_exceptions());
        assert!(!rules("a").has_exceptions());
        assert!(rules("# only a comment\n\n").is_empty());
    }

    #[test]
    fn errors_name_origin_and_line() {
        for (text, line) in [
            ("ok\n[abc", 2),
            ("ok\n\n# c\n!", 4),
            ("!/", 1),
            ("a\\", 1),
            ("[]", 1),
            ("[a-]", 1),
            ("[-a]", 1),
            ("[^]", 1),
            ("[z-a]", 1),
            ("x\n[a", 2),
            ("[a-\\", 1),
        ] {
            let err = DockerIgnore::parse(text, "ctx/.dockerignore")
                .expect_err(&format!("{text:?} should be refused"));
            assert_eq!(err.origin, "ctx/.dockerignore");
            assert_eq!(err.line, line, "{text:?}");
            let message = err.to_string();
            assert!(
                message.starts_with(&format!("ctx/.dockerignore:{line}: ")),
                "{message}"
            );
        }
    }

    #[test]
    fn never_panics() {
        let alphabet = [
            'a', '/', '*', '?', '[', ']', '^', '!', '\\', '-', '.', ' ', 'é', '\n',
        ];
        // Every pattern of up to four characters from the alphabet, against a few paths.
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let mut longer = Vec::new();
            for p in &patterns {
                for c in alphabet {
                    longer.push(format!("{p}{c}"));
                }
            }
            patterns.extend(longer);
        }
        for p in &patterns {
            if let Ok(mut r) = DockerIgnore::parse(p, "fuzz") {
                for path in ["a", "a/b", "!", "é/a", "[", "", "a/../b", "*"] {
                    r.is_excluded(path);
                    r.can_skip_dir(path);
                }
                r.must_include("a/b");
            }
        }
    }

    #[test]
    fn walk_state_matches_is_excluded() {
        let r = rules("a/b\n!a\nx/**\n!x/y/**\n*.md\n!README.md");
        let root = r.root_state();
        let (ea, sa) = r.check("a", &root);
        let (eab, sab) = r.check("a/b", &sa);
        let (eabc, _) = r.check("a/b/c", &sab);
        assert_eq!(
            (ea, eab, eabc),
            (
                r.is_excluded("a"),
                r.is_excluded("a/b"),
                r.is_excluded("a/b/c")
            )
        );
        // A stale state (from before rules were added) is tolerated.
        let mut grown = r.clone();
        grown.must_include("a/b");
        assert!(!grown.check("a/b", &sa).0);
    }

    #[test]
    fn directory_pruning_is_conservative() {
        let r = rules("node_modules\n*.md\n!README.md");
        assert!(r.can_skip_dir("node_modules"));
        assert!(!r.can_skip_dir("src"), "not excluded");

        let r = rules("docs\n!docs/keep/**");
        assert!(!r.can_skip_dir("docs"));
        assert!(r.may_include_below("docs"));
        assert!(!r.may_include_below("docsx"));

        let r = rules("*\n!**/keep");
        assert!(
            !r.can_skip_dir("anything"),
            "a wildcard exception may match below"
        );

        let r = rules("a\n!ab");
        assert!(r.can_skip_dir("a"));

        let r = rules("**\n!src/*.rs");
        assert!(!r.can_skip_dir("src"));
        assert!(r.can_skip_dir("target"));
        assert!(!r.can_skip_dir("."), "the root is never excluded");
    }

    #[test]
    fn must_include_adds_an_exact_exception_only_when_needed() {
        let mut r = rules("*\n!src");
        r.must_include("Dockerfile");
        r.must_include("src/Dockerfile");
        assert!(!r.is_excluded("Dockerfile"));
        assert!(r.is_excluded("Dockerfile2"));
        assert_eq!(
            r.patterns().collect::<Vec<_>>(),
            ["*", "!src", "!Dockerfile"]
        );

        let mut r = rules("docker");
        r.must_include("docker/Dockerfile");
        assert!(!r.is_excluded("docker/Dockerfile"));
        assert!(r.is_excluded("docker/other"));
        assert!(!r.can_skip_dir("docker"));

        // Literal even with pattern characters in the name.
        let mut r = rules("*");
        r.must_include("we[ird]*");
        assert!(!r.is_excluded("we[ird]*"));
        assert!(r.is_excluded("weird"));

        // Paths outside the context are ignored.
        let mut r = rules("*");
        r.must_include("../Dockerfile");
        assert_eq!(r.patterns().count(), 1);
    }

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            (".", "."),
            ("/", "/"),
            ("a/", "a"),
            ("./a", "a"),
            ("a//b", "a/b"),
            ("a/./b", "a/b"),
            ("a/../b", "b"),
            ("a/..", "."),
            ("../a", "../a"),
            ("../../a/b/..", "../../a"),
            ("/../a", "/a"),
            ("/a/b/../../..", "/"),
            ("!..", "!.."),
        ] {
            assert_eq!(clean(input), want, "{input:?}");
        }
    }
}
