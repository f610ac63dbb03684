//! A reading of a RUN's shell text that keeps positions: every simple command with the byte
//! range of each of its words, the separators at the top level, and what in the script would
//! reach past it if more commands were joined after it in the same shell.
//!
//! [`crate::shell`] answers "which commands does this RUN run"; the fixer also needs to know
//! where to insert a flag, which commands it may remove, and whether `A && B` still means "A,
//! then B in a fresh shell". Anything this reader does not follow (`case`, unbalanced quotes
//! or parentheses, an operator at the end) makes the script not [`Script::understood`], and
//! the fixer leaves such a RUN alone.

use std::ops::Range;

use crate::shell::{Command, Separator, is_assignment};

/// A word of the script: where it is and its text with quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tok {
    /// Byte range in the script, quotes included.
    pub range: Range<usize>,
    /// Quotes removed, escapes resolved; `$VAR` and `$(…)` kept as written.
    pub text: String,
}

/// One simple command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cmd {
    /// What comes before it, at its own nesting level.
    pub sep: Separator,
    /// `NAME=value` words before the program.
    pub assignments: Vec<Tok>,
    /// The program and its arguments (reserved words such as `then` left out).
    pub words: Vec<Tok>,
    /// Targets of redirections (`> /dev/null`); not arguments.
    pub redirects: Vec<Tok>,
    /// From its first word to its last (redirections included).
    pub range: Range<usize>,
    /// At the top level: not inside `( )`, `{ }`, `if`, a loop, and not led by a reserved
    /// word. Only such commands may be removed from a script.
    pub top: bool,
    /// Inside a `( … )` subshell: whatever it does to the shell stays there.
    pub in_subshell: bool,
}

impl Cmd {
    /// The command as [`crate::shell`] sees it, for its helpers (`program`, `is_apt`, …).
    pub fn shell(&self) -> Command {
        Command {
            separator: self.sep,
            assignments: self.assignments.iter().map(|t| t.text.clone()).collect(),
            words: self.words.iter().map(|t| t.text.clone()).collect(),
        }
    }

    /// Index in [`Cmd::words`] of the first word after the program that is not an option
    /// (`apt-get -y install x` → `install`), for commands whose program is `words[at]`.
    pub fn subcommand_at(&self, program_at: usize) -> Option<usize> {
        self.words
            .iter()
            .enumerate()
            .skip(program_at + 1)
            .find(|(_, w)| !w.text.starts_with('-'))
            .map(|(i, _)| i)
    }

    /// Index in [`Cmd::words`] of the program after `sudo`/`env`/`command` prefixes (as
    /// [`Command::effective_words`] skips them).
    pub fn program_at(&self) -> usize {
        let shell = self.shell();
        self.words.len() - shell.effective_words().len()
    }
}

/// What [`read`] found in a script.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Script {
    /// Every simple command, at every nesting level, in the order written.
    pub cmds: Vec<Cmd>,
    /// The operators between top-level items (`&&`, `||`, `;`, `|`).
    pub top_seps: Vec<Separator>,
    /// A `&` that sends something to the background (anywhere).
    pub background: bool,
    /// A `#` comment: anything joined after it on the same logical line would be commented
    /// out.
    pub comment: bool,
    /// A shell here-document (`<<`): its body cannot live on a joined line.
    pub heredoc: bool,
    /// Something that changes the shell for the commands after it (`cd`, `export`, `set`,
    /// `exit`, a bare assignment, a function definition, …) outside any subshell.
    pub leaks: bool,
    /// Read completely: balanced, no construct this reader does not follow.
    pub understood: bool,
    /// The script may turn on `set -e` (`set -e`, `set -eux`, `set -o …`, a `set` whose
    /// options are computed, `eval`, `.`/`source`), anywhere in it. POSIX ignores -e in
    /// every member of an AND-OR list but the last, so such a script may only be the last
    /// part of a joined RUN.
    pub errexit: bool,
    /// The script ends with `;` (after its last command): `a; && b` is a syntax error.
    pub trailing_separator: bool,
    /// The script ends with an unescaped `\`, which the shell keeps as a character only
    /// because nothing follows it.
    pub trailing_backslash: bool,
}

impl Script {
    /// Whether the top level has `||` or `;`: joined after `X &&`, the script must be
    /// parenthesised to keep its meaning.
    pub fn needs_parens(&self) -> bool {
        self.trailing_separator
            || self
                .top_seps
                .iter()
                .any(|s| matches!(s, Separator::Or | Separator::Then))
    }

    /// Whether more commands may be joined after this script in the same shell (in a
    /// subshell where it changes the shell): it must not end in a character that only
    /// means itself at the end, nor turn on `-e`, which a non-last member of `&&` ignores.
    pub fn may_be_followed(&self) -> bool {
        !self.errexit && !self.trailing_backslash && !self.comment && !self.background
    }

    /// Whether the top level is one `&&` chain of simple commands, so that one of them can be
    /// taken out without changing what the others do or when the script fails.
    pub fn is_and_chain(&self) -> bool {
        self.understood
            && self.top_seps.iter().all(|s| *s == Separator::And)
            && self.cmds.iter().all(|c| c.top)
    }
}

/// Builtins that change the shell itself, so that their effect would reach commands joined
/// after them.
const STATEFUL: &[&str] = &[
    ".",
    "alias",
    "bind",
    "break",
    "builtin",
    "cd",
    "continue",
    "declare",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "getopts",
    "hash",
    "let",
    "local",
    "mapfile",
    "popd",
    "pushd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "trap",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
];

/// Read `script` (a RUN's shell text).
pub(crate) fn read(script: &str) -> Script {
    read_nested(script, 0)
}

/// How deep command substitutions are followed (`$( $( … ) )`); deeper is not understood.
const MAX_NESTING: usize = 32;

fn read_nested(script: &str, nesting: usize) -> Script {
    let mut r = Reader {
        nesting,
        nest: Vec::new(),
        function_body: false,
        expect_do: false,
        s: script,
        chars: script.char_indices().collect(),
        i: 0,
        out: Script {
            understood: true,
            ..Script::default()
        },
        cur: Current::default(),
        sub_depth: 0,
        group_depth: 0,
        compound_depth: 0,
        next_sep: Separator::Start,
        pending_redirect: false,
        dangling: false,
        pipeline_start: true,
        cases: Vec::new(),
        closed: false,
    };
    r.run();
    r.out.errexit |= mentions_errexit(script);
    r.out
}

#[derive(Default)]
struct Current {
    assignments: Vec<Tok>,
    words: Vec<Tok>,
    redirects: Vec<Tok>,
    start: Option<usize>,
    end: usize,
    keyword_led: bool,
    for_header: bool,
}

/// An open compound command, and which part of it is being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nest {
    IfCondition,
    IfThen,
    IfElse,
    LoopHeader,
    LoopBody,
    Group,
    Subshell,
    Case,
}

struct Reader<'a> {
    /// The compound commands open here, innermost last: each middle or closing word must
    /// match the innermost (`( do )`, `{ fi`, `if a; else` are syntax errors).
    nest: Vec<Nest>,
    /// A function's `name()` was read: its body comes next.
    function_body: bool,
    /// A `for` header was read: `do` comes next.
    expect_do: bool,
    /// How many command substitutions enclose this script.
    nesting: usize,
    s: &'a str,
    chars: Vec<(usize, char)>,
    i: usize,
    out: Script,
    cur: Current,
    sub_depth: usize,
    group_depth: usize,
    compound_depth: usize,
    next_sep: Separator,
    pending_redirect: bool,
    /// An operator was read and no command has followed it yet.
    dangling: bool,
    /// The next word would open a pipeline (where `!` may stand).
    pipeline_start: bool,
    /// The `case` commands being read, innermost last.
    cases: Vec<Case>,
    /// A compound command just ended (`fi`, `done`, `esac`, `}`, `)`): only redirections
    /// and operators may follow.
    closed: bool,
}

/// Where the reader is in a `case WORD in (PATTERN | …) LIST ;; … esac`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    /// After `case`: the word, then `in`.
    Header,
    /// Before a branch: its patterns up to `)`, or `esac`.
    Patterns,
    /// A branch's commands, up to `;;` (`;&`, `;;&`) or `esac`.
    Body,
}

impl Reader<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).map(|&(_, c)| c)
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).map(|&(_, c)| c)
    }

    fn offset(&self) -> usize {
        self.chars.get(self.i).map_or(self.s.len(), |&(o, _)| o)
    }

    fn at_top(&self) -> bool {
        self.sub_depth == 0 && self.group_depth == 0 && self.compound_depth == 0
    }

    fn run(&mut self) {
        while let Some(c) = self.peek() {
            if self.cases.last() == Some(&Case::Patterns) {
                self.patterns();
                continue;
            }
            match c {
                ' ' | '\t' => self.i += 1,
                // A line continuation between words.
                '\\' if self.peek_at(1) == Some('\n') => self.i += 2,
                '#' => {
                    self.out.comment = true;
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                // After `&&`, `||` or `|`, a line break continues the list (`a |\n b` is
                // one pipeline); `;` there is a syntax error.
                '\n' if self.dangling => self.i += 1,
                ';' if self.dangling => {
                    self.i += 1;
                    self.out.understood = false;
                }
                '\n' | ';' => {
                    self.i += 1;
                    if c == ';' {
                        self.out.trailing_separator = true;
                    }
                    let ends_branch = c == ';' && matches!(self.peek(), Some(';' | '&'));
                    if ends_branch {
                        // `;;`, `;&` or `;;&`: the end of a `case` branch.
                        self.i += 1;
                        if self.peek() == Some('&') {
                            self.i += 1;
                        }
                    }
                    if ends_branch {
                        self.operator(Separator::Then);
                    } else if c == ';' {
                        self.list_operator(Separator::Then);
                    } else {
                        self.operator(Separator::Then);
                    }
                    if ends_branch {
                        match self.cases.last_mut() {
                            Some(state @ Case::Body) => *state = Case::Patterns,
                            _ => self.out.understood = false,
                        }
                    }
                }
                '&' => {
                    self.i += 1;
                    match self.peek() {
                        Some('&') => {
                            self.i += 1;
                            self.list_operator(Separator::And);
                        }
                        Some('>') => {
                            // `&>file`, `&>>file`
                            self.i += 1;
                            if self.peek() == Some('>') {
                                self.i += 1;
                            }
                            if self.pending_redirect {
                                self.out.understood = false;
                            }
                            self.pending_redirect = true;
                        }
                        _ => {
                            self.out.background = true;
                            self.list_operator(Separator::Then);
                        }
                    }
                }
                '|' => {
                    self.i += 1;
                    if self.peek() == Some('|') {
                        self.i += 1;
                        self.list_operator(Separator::Or);
                    } else {
                        if self.peek() == Some('&') {
                            self.i += 1;
                        }
                        self.list_operator(Separator::Pipe);
                    }
                }
                '<' | '>' => self.redirect(),
                '(' => {
                    if self.cur.words.is_empty()
                        && self.cur.assignments.is_empty()
                        && self.cur.redirects.is_empty()
                        && !self.pending_redirect
                    {
                        self.i += 1;
                        self.sub_depth += 1;
                        self.function_body = false;
                        self.nest_step("(");
                        self.dangling = true;
                        self.pipeline_start = true;
                    } else {
                        // `name ()`: a function definition; `a b()` and `f (x)` are
                        // syntax errors.
                        self.out.leaks = true;
                        let raw = self.balanced('(', ')');
                        if self.cur.words.len() != 1
                            || !self.cur.assignments.is_empty()
                            || !self.cur.redirects.is_empty()
                            || raw
                                .strip_prefix('(')
                                .and_then(|r| r.strip_suffix(')'))
                                .is_none_or(|inner| !inner.trim().is_empty())
                        {
                            self.out.understood = false;
                        }
                        self.function_header();
                    }
                }
                ')' => {
                    self.i += 1;
                    if self.sub_depth == 0 || self.dangling {
                        // `)` without its `(`, or `( )` with nothing inside.
                        self.out.understood = false;
                    } else {
                        self.finish_command();
                        self.nest_step(")");
                        self.sub_depth -= 1;
                        self.closed = true;
                    }
                }
                _ => {
                    let tok = self.read_word();
                    self.word(tok);
                }
            }
        }
        self.finish_command();
        if self.sub_depth != 0
            || !self.nest.is_empty()
            || self.group_depth != 0
            || self.compound_depth != 0
            || !self.cases.is_empty()
            || self.pending_redirect
            || self.dangling
        {
            self.out.understood = false;
        }
    }

    /// Before a `case` branch: `esac`, or the branch's patterns (`(a | b*)`, `*)`) up to
    /// their `)`. Patterns are not commands; what the branch runs follows.
    fn patterns(&mut self) {
        loop {
            match self.peek() {
                Some(' ' | '\t' | '\n') => self.i += 1,
                Some('#') => {
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                _ => break,
            }
        }
        if self.peek().is_none() {
            self.cases.pop();
            self.out.understood = false;
            return;
        }
        let start = self.i;
        let word = self.read_word();
        let esac = self.s.get(word.range.clone()) == Some("esac");
        if esac && !matches!(self.peek(), Some(')' | '|')) {
            self.nest_step("esac");
            self.cases.pop();
            self.end_compound();
            self.cur.keyword_led = true;
            self.dangling = false;
            self.out.trailing_separator = false;
            self.closed = true;
            return;
        }
        self.i = start;
        if self.peek() == Some('(') {
            self.i += 1;
        }
        loop {
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.i += 1;
            }
            let pattern = self.read_word();
            if pattern.range.is_empty() {
                // No pattern before `)` or `|`: a syntax error, or a case this reader does
                // not follow.
                self.cases.pop();
                self.out.understood = false;
                return;
            }
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.i += 1;
            }
            match self.peek() {
                Some('|') => self.i += 1,
                Some(')') => {
                    self.i += 1;
                    if let Some(state) = self.cases.last_mut() {
                        *state = Case::Body;
                    }
                    self.next_sep = Separator::Then;
                    self.dangling = false;
                    self.pipeline_start = true;
                    return;
                }
                _ => {
                    self.cases.pop();
                    self.out.understood = false;
                    return;
                }
            }
        }
    }

    fn end_compound(&mut self) {
        match self.compound_depth.checked_sub(1) {
            Some(d) => self.compound_depth = d,
            None => self.out.understood = false,
        }
    }

    /// `;`, `&`, `&&`, `||` or `|`: each must follow a command (`a && ; b`, `! && b`,
    /// `( ; )` and `a & && b` are syntax errors), where a line break may follow nothing.
    fn list_operator(&mut self, sep: Separator) {
        let nothing_before = self.dangling
            || !self.closed
                && self.cur.words.is_empty()
                && self.cur.assignments.is_empty()
                && self.cur.redirects.is_empty()
                && !self.cur.for_header;
        // `for i in a b` ends with `;` or a line break, not `&&`, `|` or `&`.
        let header_joined =
            self.cur.for_header && (sep != Separator::Then || self.peek_back() == Some('&'));
        if nothing_before || header_joined {
            self.out.understood = false;
        }
        self.operator(sep);
    }

    fn operator(&mut self, sep: Separator) {
        self.closed = false;
        self.finish_command();
        if self.pending_redirect {
            self.out.understood = false;
            self.pending_redirect = false;
        }
        if self.at_top() {
            self.out.top_seps.push(sep);
        }
        self.next_sep = sep;
        self.pipeline_start = sep != Separator::Pipe;
        // A line break or `;` may end a script; `&&`, `||` and `|` must be followed.
        self.dangling = matches!(sep, Separator::And | Separator::Or | Separator::Pipe);
    }

    fn redirect(&mut self) {
        if self.pending_redirect {
            // `< > f`: a redirection needs its word first.
            self.out.understood = false;
        }
        let first = self.peek();
        self.i += 1;
        match (first, self.peek()) {
            (Some('<'), Some('<')) => {
                self.i += 1;
                if self.peek() == Some('<') {
                    // `<<<word`: a here-string, one word.
                    self.i += 1;
                } else {
                    self.out.heredoc = true;
                    if self.peek() == Some('-') {
                        self.i += 1;
                    }
                }
            }
            (Some('>'), Some('>' | '|' | '&')) | (Some('<'), Some('>' | '&')) => self.i += 1,
            _ => {}
        }
        if self.cur.start.is_none() {
            self.cur.start = Some(self.offset());
        }
        self.pending_redirect = true;
    }

    /// Copy `open … close` with nesting and quotes, from the `open` at the cursor; the text
    /// as written.
    fn balanced(&mut self, open: char, close: char) -> String {
        let start = self.offset();
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '\\' => self.i += 1,
                '\'' => self.skip_until('\''),
                '"' => self.skip_double(),
                c if c == open => depth += 1,
                c if c == close => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return self.s.get(start..self.offset()).unwrap_or("").to_string();
                    }
                }
                _ => {}
            }
        }
        self.out.understood = false;
        self.s.get(start..).unwrap_or("").to_string()
    }

    /// A command substitution's `( … )` (from [`Reader::balanced`]): its script must be one
    /// this reader understands, or the whole script is not. `$(( … ))` is arithmetic.
    fn substitution(&mut self, parens: &str) {
        if parens.starts_with("((") || !self.out.understood {
            return;
        }
        let body = parens
            .strip_prefix('(')
            .and_then(|b| b.strip_suffix(')'))
            .unwrap_or(parens);
        if self.nesting >= MAX_NESTING || !read_nested(body, self.nesting + 1).understood {
            self.out.understood = false;
        }
    }

    fn skip_until(&mut self, end: char) {
        while let Some(c) = self.peek() {
            self.i += 1;
            if c == end {
                return;
            }
        }
        self.out.understood = false;
    }

    fn skip_double(&mut self) {
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '\\' => self.i += 1,
                '"' => return,
                _ => {}
            }
        }
        self.out.understood = false;
    }

    /// A word from the cursor: up to unquoted whitespace or an operator.
    fn read_word(&mut self) -> Tok {
        let start = self.offset();
        let mut text = String::new();
        while let Some(c) = self.peek() {
            match c {
                ' ' | '\t' | '\n' | ';' | '&' | '|' | '<' | '>' | ')' => break,
                '\\' => {
                    self.i += 1;
                    match self.peek() {
                        Some('\n') => self.i += 1,
                        Some(n) => {
                            text.push(n);
                            self.i += 1;
                        }
                        None => self.out.trailing_backslash = true,
                    }
                }
                '\'' => {
                    self.i += 1;
                    let from = self.offset();
                    self.skip_until('\'');
                    let to = self.offset().saturating_sub(1).max(from);
                    text.push_str(self.s.get(from..to).unwrap_or(""));
                }
                '"' => {
                    self.i += 1;
                    self.double_quoted(&mut text);
                }
                '$' if self.peek_at(1) == Some('(') => {
                    self.i += 1;
                    let inner = self.balanced('(', ')');
                    if inner.starts_with("((") && inner.contains('=') {
                        // `$((x = 1))` assigns.
                        self.out.leaks = true;
                    }
                    self.substitution(&inner);
                    text.push('$');
                    text.push_str(&inner);
                }
                '$' if self.peek_at(1) == Some('{') => {
                    self.i += 1;
                    let inner = self.balanced('{', '}');
                    if inner.contains('=') {
                        // `${X:=v}` assigns (and `${X:-a=b}` is rare enough to be treated
                        // the same way).
                        self.out.leaks = true;
                    }
                    text.push('$');
                    text.push_str(&inner);
                }
                '`' => {
                    let from = self.offset();
                    self.i += 1;
                    let mut closed = false;
                    while let Some(n) = self.peek() {
                        self.i += 1;
                        match n {
                            '\\' => self.i += 1,
                            '`' => {
                                closed = true;
                                break;
                            }
                            _ => {}
                        }
                    }
                    if closed {
                        // Inside backquotes, `\\` before `` ` ``, `\\` or `$` is removed.
                        let body = self.s.get(from + 1..self.offset() - 1).unwrap_or("");
                        let mut inner = String::with_capacity(body.len());
                        let mut chars = body.chars().peekable();
                        while let Some(c) = chars.next() {
                            match (c, chars.peek()) {
                                ('\\', Some('`' | '\\' | '$')) => {}
                                _ => inner.push(c),
                            }
                        }
                        self.substitution(&format!("({inner})"));
                    } else {
                        self.out.understood = false;
                    }
                    text.push_str(self.s.get(from..self.offset()).unwrap_or(""));
                }
                '(' => {
                    // `f()` or `a=(1 2)`: a function or an array, both change the shell.
                    // Only a command's first word may name a function (`a f()` is a syntax
                    // error), and dash has no arrays.
                    self.out.leaks = true;
                    if !self.cur.words.is_empty()
                        || !self.cur.assignments.is_empty()
                        || !self.cur.redirects.is_empty()
                        || self.pending_redirect
                        || text.contains('=')
                    {
                        self.out.understood = false;
                    }
                    let inner = self.balanced('(', ')');
                    text.push_str(&inner);
                }
                _ => {
                    text.push(c);
                    self.i += 1;
                }
            }
        }
        Tok {
            range: start..self.offset(),
            text,
        }
    }

    fn double_quoted(&mut self, text: &mut String) {
        while let Some(c) = self.peek() {
            self.i += 1;
            match c {
                '"' => return,
                '\\' => match self.peek() {
                    Some(e @ ('"' | '\\' | '$' | '`')) => {
                        text.push(e);
                        self.i += 1;
                    }
                    Some('\n') => self.i += 1,
                    _ => text.push('\\'),
                },
                '$' if self.peek() == Some('(') => {
                    let inner = self.balanced('(', ')');
                    self.substitution(&inner);
                    text.push('$');
                    text.push_str(&inner);
                }
                _ => text.push(c),
            }
        }
        self.out.understood = false;
    }

    /// The character before the cursor.
    fn peek_back(&self) -> Option<char> {
        self.i
            .checked_sub(1)
            .and_then(|i| self.chars.get(i))
            .map(|&(_, c)| c)
    }

    /// After `name()`: the body must follow, a compound command (dash would take a simple
    /// command too; this reader does not follow that).
    fn function_header(&mut self) {
        self.cur = Current::default();
        self.dangling = true;
        self.pipeline_start = false;
        self.function_body = true;
    }

    fn word(&mut self, tok: Tok) {
        if tok.range.is_empty() {
            // Nothing readable here (a stray character): step over it.
            self.i += 1;
            self.out.understood = false;
            return;
        }
        let raw = self.s.get(tok.range.clone()).unwrap_or("");
        if std::mem::take(&mut self.expect_do) && raw != "do" {
            // `for i in a; b`: the loop's `do` must follow its header.
            self.out.understood = false;
        }
        if std::mem::take(&mut self.function_body)
            && !matches!(raw, "{" | "if" | "while" | "until" | "for" | "case")
        {
            self.out.understood = false;
        }
        if !self.pending_redirect
            && self.cur.words.is_empty()
            && self.cur.assignments.is_empty()
            && self.cur.redirects.is_empty()
            && raw.len() > 2
            && raw.ends_with("()")
        {
            self.function_header();
            return;
        }
        // `2>&1`: a file descriptor number right before a redirection.
        let fd_number =
            raw.bytes().all(|b| b.is_ascii_digit()) && matches!(self.peek(), Some('<' | '>'));
        // Words that continue or close a compound command.
        let closing = matches!(
            raw,
            "then" | "do" | "else" | "elif" | "fi" | "done" | "esac" | "}"
        );
        if self.dangling && self.cur.words.is_empty() && closing {
            // `if then`, `{ }`, `a && fi`: a reserved word where a command must be.
            self.out.understood = false;
        }
        self.dangling = false;
        self.out.trailing_separator = false;
        if self.cur.start.is_none() {
            self.cur.start = Some(tok.range.start);
        }
        self.cur.end = tok.range.end;
        if self.pending_redirect {
            self.pending_redirect = false;
            if fd_number {
                // `< 2>&1`: the file descriptor of another redirection, not a file name.
                self.out.understood = false;
            }
            self.cur.redirects.push(tok);
            return;
        }
        if self.closed && !fd_number && !closing {
            // `fi b`, `(a) b`: a word after a compound command is a syntax error (a
            // reserved word such as `then` or `fi` may follow it: `if (a) then b; fi`).
            self.out.understood = false;
        }
        if self.cases.last() == Some(&Case::Header) {
            // `case WORD in`: the word is matched, not run.
            if raw == "in" && self.cur.words.len() == 1 {
                self.cur = Current::default();
                if let Some(state) = self.cases.last_mut() {
                    *state = Case::Patterns;
                }
            } else if self.cur.words.is_empty() {
                self.cur.words.push(tok);
            } else {
                self.out.understood = false;
            }
            return;
        }
        if fd_number {
            return;
        }
        if self.cur.words.is_empty() {
            if is_assignment(raw) {
                self.cur.assignments.push(tok);
                return;
            }
            // After an assignment or a redirection, `if` or `for` is a command name.
            if self.cur.assignments.is_empty()
                && self.cur.redirects.is_empty()
                && !self.cur.for_header
                && self.reserved(raw)
            {
                self.cur.keyword_led = true;
                if self.cur.words.is_empty() && self.cur.redirects.is_empty() {
                    self.cur.start = None;
                }
                return;
            }
        }
        self.pipeline_start = false;
        self.cur.words.push(tok);
    }

    /// Handle a reserved word at the start of a command; false when `word` is not one.
    /// Step the compound commands for an opening, middle or closing word (`(` and `)` for
    /// subshells); a word that does not fit the innermost one is a syntax error.
    fn nest_step(&mut self, word: &str) {
        use Nest::*;
        let top = self.nest.last().copied();
        let next = match (word, top) {
            ("if", _) => Some(IfCondition),
            ("while" | "until" | "for" | "select", _) => Some(LoopHeader),
            ("{", _) => Some(Group),
            ("(", _) => Some(Subshell),
            ("case", _) => Some(Case),
            ("then", Some(IfCondition)) | ("elif", Some(IfThen)) => {
                self.nest.pop();
                Some(if word == "then" { IfThen } else { IfCondition })
            }
            ("else", Some(IfThen)) => {
                self.nest.pop();
                Some(IfElse)
            }
            ("do", Some(LoopHeader)) => {
                self.nest.pop();
                Some(LoopBody)
            }
            ("fi", Some(IfThen | IfElse))
            | ("done", Some(LoopBody))
            | ("}", Some(Group))
            | (")", Some(Subshell))
            | ("esac", Some(Case)) => {
                self.nest.pop();
                None
            }
            ("then" | "elif" | "else" | "do" | "fi" | "done" | "}" | ")" | "esac", _) => {
                self.out.understood = false;
                None
            }
            _ => None,
        };
        self.nest.extend(next);
    }

    fn reserved(&mut self, word: &str) -> bool {
        self.nest_step(word);
        let at_pipeline_start = self.pipeline_start;
        // After these a command must come before any operator or closing word.
        self.dangling = matches!(
            word,
            "!" | "if" | "while" | "until" | "then" | "else" | "elif" | "do" | "{"
        );
        // After these, a new list begins: `if ! a`, `then ! b`, `{ ! c; }`.
        self.pipeline_start = matches!(
            word,
            "if" | "while" | "until" | "then" | "else" | "elif" | "do" | "{" | "time"
        );
        match word {
            "if" | "while" | "until" => self.compound_depth += 1,
            "then" | "else" | "elif" | "do" => self.closed = false,
            "!" => {
                // `!` negates a whole pipeline: it may open one (`a && ! b`), not follow
                // `|` (`a | ! b`) or another `!` (dash refuses `! ! b`).
                if !at_pipeline_start {
                    self.out.understood = false;
                }
                return true;
            }
            // A keyword in bash, a program in dash: the two shells read what follows
            // differently (`time fi`).
            "time" => self.out.understood = false,
            "fi" | "done" => {
                self.end_compound();
                self.closed = true;
            }
            "case" => {
                self.compound_depth += 1;
                self.cases.push(Case::Header);
            }
            "esac" => {
                match self.cases.pop() {
                    Some(Case::Body) => self.end_compound(),
                    _ => self.out.understood = false,
                }
                self.closed = true;
            }
            "for" | "select" => {
                self.compound_depth += 1;
                self.cur.for_header = true;
            }
            "{" => self.group_depth += 1,
            "}" => {
                match self.group_depth.checked_sub(1) {
                    Some(d) => self.group_depth = d,
                    None => self.out.understood = false,
                }
                self.closed = true;
            }
            "function" => self.out.leaks = true,
            "coproc" | "in" => self.out.understood = false,
            _ => return false,
        }
        true
    }

    fn finish_command(&mut self) {
        let cur = std::mem::take(&mut self.cur);
        if self.cases.last() == Some(&Case::Header) {
            // `case WORD` and a line break before `in`: not followed here.
            self.out.understood = false;
            return;
        }
        if cur.for_header {
            // `for x in a b`: a loop header, not a command; the loop variable is set in
            // the shell. Its first word is a name, then `in` and the words, or nothing.
            let name = cur.words.first().map(|w| w.text.as_str()).unwrap_or("");
            let named = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            let raw_in = cur.words.get(1).and_then(|w| self.s.get(w.range.clone()));
            if !named || !matches!(raw_in, None | Some("in")) || !cur.redirects.is_empty() {
                self.out.understood = false;
            }
            self.expect_do = true;
            if self.sub_depth == 0 {
                self.out.leaks = true;
            }
            return;
        }
        if cur.words.is_empty() && cur.assignments.is_empty() {
            return;
        }
        let start = cur.start.unwrap_or(0);
        let top = self.at_top() && !cur.keyword_led;
        let cmd = Cmd {
            sep: self.next_sep,
            assignments: cur.assignments,
            words: cur.words,
            redirects: cur.redirects,
            range: start..cur.end.max(start),
            top,
            in_subshell: self.sub_depth > 0,
        };
        if self.sub_depth == 0 && changes_shell(&cmd) {
            self.out.leaks = true;
        }
        if may_set_errexit(&cmd) {
            self.out.errexit = true;
        }
        self.out.cmds.push(cmd);
    }
}

/// Whether a command, run in the current shell, changes that shell for later commands.
fn changes_shell(cmd: &Cmd) -> bool {
    let Some(first) = cmd.words.first() else {
        // `A=1` alone sets a shell variable.
        return true;
    };
    let program = cmd.shell().program().map(str::to_string);
    // POSIX: assignments before a special builtin stay in the shell (`A=1 :`); the other
    // special builtins are STATEFUL already.
    let special_keeps = !cmd.assignments.is_empty() && matches!(first.text.as_str(), ":" | "times");
    special_keeps
        || STATEFUL.contains(&first.text.as_str())
        || program.is_some_and(|p| STATEFUL.contains(&p.as_str()))
        || (first.text == "printf" && cmd.words.iter().any(|w| w.text == "-v"))
}

/// Whether a command may turn on `-e`: `set` with an option cluster holding `e`, with `-o`
/// (or `+o`, whose value could be anything), with computed words; or code this reader
/// cannot see (`eval`, `.`, `source`).
fn may_set_errexit(cmd: &Cmd) -> bool {
    let words: Vec<&str> = cmd.words.iter().map(|w| w.text.as_str()).collect();
    match words.first() {
        Some(&"set") => words[1..].iter().any(|a| {
            a.contains(['$', '`'])
                || (a.starts_with('-') && *a != "--" && (a.contains('e') || a.contains('o')))
        }),
        Some(&("eval" | "." | "source")) => true,
        _ => false,
    }
}

/// Whether `script` may turn on `-e` anywhere, also inside command substitutions (which
/// [`read`] keeps as words): a `set` word followed by an option that could be `-e`.
pub(crate) fn mentions_errexit(script: &str) -> bool {
    let bytes = script.as_bytes();
    let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    script.match_indices("set").any(|(at, _)| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i).copied());
        if before.is_some_and(word_char) {
            return false;
        }
        let rest = &script[at + 3..];
        if !rest.starts_with([' ', '\t']) {
            return false;
        }
        let arg = rest.trim_start_matches([' ', '\t']);
        let opt: String = arg
            .chars()
            .take_while(|c| !c.is_whitespace() && !";&|)".contains(*c))
            .collect();
        opt.contains(['$', '`'])
            || (opt.starts_with(['-', '+', '"', '\''])
                && opt != "--"
                && (opt.contains('e') || opt.contains('o')))
    })
}

/// Whether a command runs code that cannot be seen from here, so that it may do anything
/// (run apt, need its lists): another shell or interpreter, `xargs`, `eval`, `find -exec`,
/// a script (by path, by its extension, or a program that `copied` names: files a COPY or
/// ADD of the Dockerfile brings in), or a program whose name is computed.
pub(crate) fn opaque(cmd: &Cmd, copied: &dyn Fn(&str) -> bool) -> bool {
    const RUNNERS: &[&str] = &[
        "sh",
        "bash",
        "dash",
        "zsh",
        "ksh",
        "mksh",
        "ash",
        "busybox",
        "eval",
        ".",
        "source",
        "xargs",
        "parallel",
        "su",
        "runuser",
        "chroot",
        "timeout",
        "stdbuf",
        "setsid",
        "flock",
        "watch",
        "time",
        "strace",
        "script",
        "make",
        "gmake",
        "fakeroot",
        "unshare",
        "nsenter",
        "gosu",
        "su-exec",
        "tini",
        "dumb-init",
        "xvfb-run",
        "python",
        "python2",
        "python3",
        "perl",
        "ruby",
        "node",
        "php",
        "lua",
        "Rscript",
        "tclsh",
        "expect",
        "run-parts",
        "dpkg-reconfigure",
        "debconf",
        "ansible",
        "ansible-playbook",
        "salt-call",
        "puppet",
        "chef-solo",
        "invoke-rc.d",
        "service",
        "systemctl",
    ];
    let sh = cmd.shell();
    if sh.pip_args().is_some() {
        // pip, and `python -m pip`: a package installer that does not run apt.
        return false;
    }
    let words = sh.effective_words();
    let Some(first) = words.first() else {
        // Only assignments (or a prefix alone): nothing runs.
        return words.len() != cmd.words.len();
    };
    let name = first.rsplit('/').next().unwrap_or(first);
    if name.starts_with("python") {
        // `python -m venv|ensurepip|compileall`: known modules.
        let m = words.iter().position(|w| w == "-m");
        if m.and_then(|i| words.get(i + 1))
            .is_some_and(|m| matches!(m.as_str(), "venv" | "ensurepip" | "compileall"))
        {
            return false;
        }
        return true;
    }
    let system = ["/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/"]
        .iter()
        .any(|d| first.strip_prefix(d).is_some_and(|r| !r.contains('/')));
    first.contains(['$', '`'])
        || RUNNERS.contains(&name)
        || (first.contains('/') && !system)
        || [".sh", ".bash", ".py", ".pl", ".rb", ".js"]
            .iter()
            .any(|e| name.ends_with(e))
        || (name == "find"
            && words
                .iter()
                .any(|w| matches!(w.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir")))
        || copied(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &Script) -> Vec<Vec<&str>> {
        s.cmds
            .iter()
            .map(|c| c.words.iter().map(|w| w.text.as_str()).collect())
            .collect()
    }

    #[test]
    fn syntax_errors_are_not_understood() {
        // Each is refused by `dash -n`, so merging it would stop the RUNs before it.
        for bad in [
            "! && c3 a1",
            "set x() -e",
            "echo x x() > /tmp/f",
            "c4 ` { a1",
            "a & && b",
            "( a; do exit 3 )",
            "for time i in 1 2; do c; done",
            "for i then in 1 2; do c; done",
            "for i in 1 && 2; do c; done",
            "for i in 1; c; done",
            "c | 2>&1 for i in 1 2; do c; done",
            "2>&1 ( cd /d2 )",
            "( exit 3 && < > true )",
            "f() | { c; }",
            ": && f() { c; < }",
            "a; f() { c4 fi in-f; > }",
            "true < 2>&1",
            "2>&1 x() { c; }",
            "case a in a) b ;; ) esac",
            "echo $( 0; else c )",
            "echo $(fi)",
            "if a; then b; else c; fi; fi",
            "{ a; )",
            "( a; }",
            "( )",
            "if then fi",
        ] {
            assert!(!read(bad).understood, "{bad}");
        }
        for ok in [
            "f() { c; }",
            "f () ( c )",
            "echo $(a; b) `c` \"$(d | e)\" $((1 + 2))",
            "for i in 1 2\ndo c; done",
            "for i; do c; done",
            "a 2>&1 >/dev/null <in",
        ] {
            assert!(read(ok).understood, "{ok}");
        }
    }

    #[test]
    fn bang_opens_a_pipeline_and_nothing_else() {
        for ok in [
            "! a",
            "a && ! b || ! c; ! d",
            "if ! a; then ! b; else ! c; fi",
            "while ! a; do ! b; done",
            "( ! a ) | b",
            "a | ( ! b )",
            "{ ! a; }",
            "case x in x) ! a ;; esac",
            "test ! -f x",
        ] {
            assert!(read(ok).understood, "{ok}");
        }
        // dash refuses each of these ("\"!\" unexpected"); bash the first two.
        for bad in [
            "a | ! b", "a |\n! b", "! ! a", "a && ; b", "a |; b", "f (é", "f (x)",
        ] {
            assert!(!read(bad).understood, "{bad}");
        }
        // A line break after an operator continues the list.
        let s = read("a |\n  b &&\n c ||\n\n d");
        assert!(s.understood, "{s:?}");
        assert_eq!(s.top_seps, [Separator::Pipe, Separator::And, Separator::Or]);
    }

    #[test]
    fn case_branches_are_commands_and_patterns_are_not() {
        let src = "case \"$a\" in (x | y*) apt-get install -y x ;; *) pip install z ;& esac && b";
        let s = read(src);
        assert!(s.understood && !s.needs_parens(), "{s:?}");
        assert_eq!(
            texts(&s),
            vec![
                vec!["apt-get", "install", "-y", "x"],
                vec!["pip", "install", "z"],
                vec!["b"]
            ]
        );
        // Inside the case: not top-level, so never removed from the script.
        assert_eq!(
            s.cmds.iter().map(|c| c.top).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(s.top_seps, [Separator::And]);
        let x = &s.cmds[0].words[3];
        assert_eq!(&src[x.range.clone()], "x");
        // Reserved words may follow a compound command without a separator.
        for ok in [
            "if (true) then echo x; fi",
            "{ (echo y) }",
            "for i in 1; do { echo w; } done",
            "case a in a) (echo v) esac",
        ] {
            assert!(read(ok).understood, "{ok}");
        }
        // Nested, and an empty branch.
        let s = read("case a in a) case b in b) c;; esac;; *) ;; esac");
        assert!(s.understood, "{s:?}");
        assert_eq!(texts(&s), vec![vec!["c"]]);
    }

    #[test]
    fn commands_words_and_positions() {
        let src = "apt-get update && DEBIAN_FRONTEND=x apt-get install -y 'a b' >/dev/null 2>&1";
        let s = read(src);
        assert!(s.understood && !s.leaks && !s.needs_parens() && s.is_and_chain());
        assert_eq!(
            texts(&s),
            vec![
                vec!["apt-get", "update"],
                vec!["apt-get", "install", "-y", "a b"]
            ]
        );
        let c = &s.cmds[1];
        assert_eq!(c.assignments[0].text, "DEBIAN_FRONTEND=x");
        assert_eq!(c.redirects.len(), 2);
        assert_eq!(&src[c.words[3].range.clone()], "'a b'");
        assert_eq!(&src[c.range.clone()], &src[18..]);
        assert_eq!(c.subcommand_at(c.program_at()), Some(1));
    }

    #[test]
    fn top_level_operators_and_nesting() {
        let s = read("a || b");
        assert!(s.needs_parens());
        let s = read("(a || b; cd /x) && c | d");
        assert!(!s.needs_parens() && !s.leaks, "{s:?}");
        assert!(s.cmds[0].in_subshell && !s.cmds[0].top);
        let s = read("if a; then cd /x; fi && b");
        assert!(s.understood && s.leaks && !s.needs_parens(), "{s:?}");
        assert!(!s.is_and_chain());
        let s = read("{ cd /x; }");
        assert!(s.leaks && s.understood);
        let s = read("for p in a b; do echo $p; done");
        assert!(s.understood && s.leaks);
        assert_eq!(texts(&s), vec![vec!["echo", "$p"]]);
    }

    #[test]
    fn what_reaches_past_the_script() {
        for leaky in [
            "cd /x && make",
            "export A=1",
            "A=1",
            "set -e; a",
            "a && exit 0",
            ". /etc/profile",
            "f() { a; }",
            "echo ${A:=1}",
            "command cd /x",
            "sudo true && umask 077",
            "A=1 :",
            "a && A=1 times",
        ] {
            assert!(read(leaky).leaks, "{leaky}");
        }
        for fine in [
            "A=1 make",
            "A=1 true",
            ":",
            "(cd /x && make)",
            "echo $(cd /x; pwd)",
            "env A=1 make",
            "rm -rf /x",
        ] {
            let s = read(fine);
            assert!(!s.leaks && s.understood, "{fine}: {s:?}");
        }
    }

    #[test]
    fn comments_background_heredocs_and_odd_text() {
        assert!(read("a # b && c").comment);
        assert!(!read("echo a#b").comment);
        assert!(read("sleep 1 &").background);
        assert!(!read("a &> /dev/null").background);
        assert!(read("cat <<EOF").heredoc);
        assert!(!read("cat <<<word").heredoc);
        for odd in [
            "a &&",
            "a |",
            "(a",
            "a)",
            "'a",
            "\"a",
            "case x in a) b;; esac b",
            "case x in a) b",
            "case x in a b) c;; esac",
            "fi",
        ] {
            assert!(!read(odd).understood, "{odd}");
        }
        for any in [
            "", "\\", "$(", "`", "${", "<", "2>", "((", "))", "a=(", "&&&", "|&",
        ] {
            let _ = read(any);
        }
    }
}
