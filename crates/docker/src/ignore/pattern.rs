//! One `.dockerignore` pattern: Docker's syntax check, and its matcher — the four cases of
//! moby/patternmatcher's compiler, the general one run as a small NFA, so that matching is
//! linear in the path's length whatever the pattern.

/// The text before the first character that could be anything but itself.
pub(super) fn literal_prefix(pattern: &str) -> String {
    pattern
        .chars()
        .take_while(|c| !matches!(c, '*' | '?' | '[' | '\\' | '^'))
        .collect()
}

/// The syntax check Docker runs on each pattern (`filepath.Match(pattern, ".")`), plus the
/// one its regular-expression compiler adds: a range like `[z-a]` is refused.
pub(super) fn validate(p: &[char]) -> Result<(), String> {
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
pub(super) enum Matcher {
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
    pub(super) fn is_match(&self, path: &str) -> bool {
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
pub(super) fn compile(pattern: &str, p: &[char]) -> Matcher {
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
pub(super) struct Program {
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
