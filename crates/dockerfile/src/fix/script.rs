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
    let mut r = Reader {
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

struct Reader<'a> {
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
            match c {
                ' ' | '\t' => self.i += 1,
                '#' => {
                    self.out.comment = true;
                    while self.peek().is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                '\n' | ';' => {
                    self.i += 1;
                    if c == ';' {
                        self.out.trailing_separator = true;
                    }
                    if c == ';' && self.peek() == Some(';') {
                        // `;;` belongs to `case`, which this reader does not follow.
                        self.out.understood = false;
                        self.i += 1;
                    }
                    self.operator(Separator::Then);
                }
                '&' => {
                    self.i += 1;
                    match self.peek() {
                        Some('&') => {
                            self.i += 1;
                            self.operator(Separator::And);
                        }
                        Some('>') => {
                            // `&>file`, `&>>file`
                            self.i += 1;
                            if self.peek() == Some('>') {
                                self.i += 1;
                            }
                            self.pending_redirect = true;
                        }
                        _ => {
                            self.out.background = true;
                            self.operator(Separator::Then);
                        }
                    }
                }
                '|' => {
                    self.i += 1;
                    if self.peek() == Some('|') {
                        self.i += 1;
                        self.operator(Separator::Or);
                    } else {
                        if self.peek() == Some('&') {
                            self.i += 1;
                        }
                        self.operator(Separator::Pipe);
                    }
                }
                '<' | '>' => self.redirect(),
                '(' => {
                    if self.cur.words.is_empty()
                        && self.cur.assignments.is_empty()
                        && !self.pending_redirect
                    {
                        self.i += 1;
                        self.sub_depth += 1;
                        self.dangling = false;
                    } else {
                        // `name ()`: a function definition.
                        self.out.leaks = true;
                        let start = self.offset();
                        let raw = self.balanced('(', ')');
                        self.word(Tok {
                            range: start..self.offset(),
                            text: raw,
                        });
                    }
                }
                ')' => {
                    self.i += 1;
                    if self.sub_depth == 0 {
                        self.out.understood = false;
                    } else {
                        self.finish_command();
                        self.sub_depth -= 1;
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
            || self.group_depth != 0
            || self.compound_depth != 0
            || self.pending_redirect
            || self.dangling
        {
            self.out.understood = false;
        }
    }

    fn operator(&mut self, sep: Separator) {
        self.finish_command();
        if self.pending_redirect {
            self.out.understood = false;
            self.pending_redirect = false;
        }
        if self.at_top() {
            self.out.top_seps.push(sep);
        }
        self.next_sep = sep;
        // A line break or `;` may end a script; `&&`, `||` and `|` must be followed.
        self.dangling = matches!(sep, Separator::And | Separator::Or | Separator::Pipe);
    }

    fn redirect(&mut self) {
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
                    while let Some(n) = self.peek() {
                        self.i += 1;
                        match n {
                            '\\' => self.i += 1,
                            '`' => break,
                            _ => {}
                        }
                    }
                    text.push_str(self.s.get(from..self.offset()).unwrap_or(""));
                }
                '(' => {
                    // `f()` or `a=(1 2)`: a function or an array, both change the shell.
                    self.out.leaks = true;
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
                    text.push('$');
                    text.push_str(&inner);
                }
                _ => text.push(c),
            }
        }
        self.out.understood = false;
    }

    fn word(&mut self, tok: Tok) {
        if tok.range.is_empty() {
            // Nothing readable here (a stray character): step over it.
            self.i += 1;
            self.out.understood = false;
            return;
        }
        self.dangling = false;
        self.out.trailing_separator = false;
        if self.cur.start.is_none() {
            self.cur.start = Some(tok.range.start);
        }
        self.cur.end = tok.range.end;
        if self.pending_redirect {
            self.pending_redirect = false;
            self.cur.redirects.push(tok);
            return;
        }
        let raw = self.s.get(tok.range.clone()).unwrap_or("");
        // `2>&1`: a file descriptor number right before a redirection.
        if raw.bytes().all(|b| b.is_ascii_digit()) && matches!(self.peek(), Some('<' | '>')) {
            return;
        }
        if self.cur.words.is_empty() {
            if is_assignment(raw) {
                self.cur.assignments.push(tok);
                return;
            }
            if self.cur.assignments.is_empty() && self.reserved(raw) {
                self.cur.keyword_led = true;
                if self.cur.words.is_empty() && self.cur.redirects.is_empty() {
                    self.cur.start = None;
                }
                return;
            }
        }
        self.cur.words.push(tok);
    }

    /// Handle a reserved word at the start of a command; false when `word` is not one.
    fn reserved(&mut self, word: &str) -> bool {
        match word {
            "if" | "while" | "until" => self.compound_depth += 1,
            "then" | "else" | "elif" | "do" | "!" | "time" => {}
            "fi" | "done" => match self.compound_depth.checked_sub(1) {
                Some(d) => self.compound_depth = d,
                None => self.out.understood = false,
            },
            "for" | "select" => {
                self.compound_depth += 1;
                self.cur.for_header = true;
            }
            "{" => self.group_depth += 1,
            "}" => match self.group_depth.checked_sub(1) {
                Some(d) => self.group_depth = d,
                None => self.out.understood = false,
            },
            "function" => self.out.leaks = true,
            "case" | "esac" | "coproc" | "in" => self.out.understood = false,
            _ => return false,
        }
        true
    }

    fn finish_command(&mut self) {
        let cur = std::mem::take(&mut self.cur);
        if cur.for_header {
            // `for x in a b`: a loop header, not a command; the loop variable is set in
            // the shell.
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
            "case x in a) b;; esac",
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
