//! The reader: a RUN's shell text, character by character, into a [`Script`]. It follows
//! quotes, substitutions, compound commands (`if`, loops, `case`, groups, subshells) and
//! function definitions closely enough to tell whether `dash -n` would accept the script;
//! what it cannot follow leaves the script not [`Script::understood`].

use super::command::{Separator, is_assignment};
use super::effects::{changes_shell, may_set_errexit, mentions_errexit};
use super::script::{Cmd, Script, Tok};

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
