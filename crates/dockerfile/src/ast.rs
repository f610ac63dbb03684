//! The syntax tree: what a Dockerfile says, instruction by instruction, with the place in the
//! source of every part so that lints can point at it and fixers can rewrite it.

use std::ops::Range;

use serde::Serialize;

/// A place in the source: 1-based line and column, and the byte offset from the start of the
/// text given to [`crate::parse`].
///
/// Columns count characters (Unicode scalar values) from the start of the physical line; a
/// UTF-8 byte-order mark on the first line is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Position {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset in the source.
    pub offset: usize,
}

/// A stretch of source, from `start` up to (not including) `end`.
///
/// Something joined from several physical lines (a word continued with the escape character)
/// spans all of them, continuation characters and dropped comment lines included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub start: Position,
    pub end: Position,
}

impl Span {
    /// The byte range, to slice or splice the source.
    pub fn range(&self) -> Range<usize> {
        self.start.offset..self.end.offset
    }

    /// The source text under this span, or `None` when `src` is not the parsed text.
    pub fn text<'s>(&self, src: &'s str) -> Option<&'s str> {
        src.get(self.range())
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    /// The parser directives at the top (`# syntax=`, `# escape=`, `# check=`), in order.
    pub directives: Vec<Directive>,
    /// The escape character in force: `\` unless `# escape=` chose `` ` ``.
    pub escape: char,
    /// Whether the source began with a UTF-8 byte-order mark (Docker drops it).
    pub bom: bool,
    /// The instructions, in source order.
    pub instructions: Vec<Instruction>,
    /// Comment lines after the last instruction.
    pub trailing_comments: Vec<Comment>,
}

/// A parser directive such as `# escape=\``.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Directive {
    /// The name in lower case (`syntax`, `escape` or `check`); Docker matches it ignoring case.
    pub name: String,
    /// The value, with surrounding whitespace removed.
    pub value: String,
    /// 1-based line.
    pub line: usize,
    /// The whole directive line, from `#` to the end of the line.
    pub span: Span,
}

/// A comment line (`#` first on the line, after optional whitespace).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Comment {
    /// The text after the `#`, with surrounding whitespace removed.
    pub text: String,
    /// 1-based line.
    pub line: usize,
    /// From `#` to the end of the line.
    pub span: Span,
}

/// An instruction keyword. Docker matches keywords ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Keyword {
    Add,
    Arg,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    Stopsignal,
    User,
    Volume,
    Workdir,
    /// A keyword Docker does not know, in lower case. The parser keeps it; the build fails
    /// on it with "unknown instruction".
    Unknown(String),
}

impl Keyword {
    /// The keyword for `word`, whatever its case.
    pub fn parse(word: &str) -> Keyword {
        let lower = word.to_lowercase();
        match lower.as_str() {
            "add" => Keyword::Add,
            "arg" => Keyword::Arg,
            "cmd" => Keyword::Cmd,
            "copy" => Keyword::Copy,
            "entrypoint" => Keyword::Entrypoint,
            "env" => Keyword::Env,
            "expose" => Keyword::Expose,
            "from" => Keyword::From,
            "healthcheck" => Keyword::Healthcheck,
            "label" => Keyword::Label,
            "maintainer" => Keyword::Maintainer,
            "onbuild" => Keyword::Onbuild,
            "run" => Keyword::Run,
            "shell" => Keyword::Shell,
            "stopsignal" => Keyword::Stopsignal,
            "user" => Keyword::User,
            "volume" => Keyword::Volume,
            "workdir" => Keyword::Workdir,
            _ => Keyword::Unknown(lower),
        }
    }

    /// The keyword in lower case, as in the dump (`run`, `copy`, …).
    pub fn as_str(&self) -> &str {
        match self {
            Keyword::Add => "add",
            Keyword::Arg => "arg",
            Keyword::Cmd => "cmd",
            Keyword::Copy => "copy",
            Keyword::Entrypoint => "entrypoint",
            Keyword::Env => "env",
            Keyword::Expose => "expose",
            Keyword::From => "from",
            Keyword::Healthcheck => "healthcheck",
            Keyword::Label => "label",
            Keyword::Maintainer => "maintainer",
            Keyword::Onbuild => "onbuild",
            Keyword::Run => "run",
            Keyword::Shell => "shell",
            Keyword::Stopsignal => "stopsignal",
            Keyword::User => "user",
            Keyword::Volume => "volume",
            Keyword::Workdir => "workdir",
            Keyword::Unknown(s) => s,
        }
    }

    /// Whether Docker knows this keyword.
    pub fn is_known(&self) -> bool {
        !matches!(self, Keyword::Unknown(_))
    }
}

impl Serialize for Keyword {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One instruction, with everything that belongs to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// What instruction this is.
    pub keyword: Keyword,
    /// The keyword as written (`run`, `Run`, `RUN`) and where.
    pub keyword_word: Word,
    /// 1-based line of the keyword.
    pub line: usize,
    /// 1-based last physical line: continuation lines and heredoc bodies (up to the
    /// terminator line) included.
    pub end_line: usize,
    /// From the keyword to the end of the last physical line (line terminator excluded).
    pub span: Span,
    /// The byte range of the whole physical lines the instruction occupies: from the start of
    /// its first line (indentation included) to after the terminator of its last line. Remove
    /// this range to remove the instruction.
    pub whole_lines: Range<usize>,
    /// The logical line as Docker reads it: continuations joined (the escape character, the
    /// whitespace after it and the line break removed, the rest of each line kept), comment
    /// lines and empty lines inside the continuation dropped, leading whitespace of the first
    /// line removed. Heredoc bodies are not part of it.
    pub original: String,
    /// The `--name[=value]` flags between the keyword and the arguments.
    pub flags: Vec<Flag>,
    /// The arguments, shaped by the instruction.
    pub args: Args,
    /// Heredocs (`<<EOF`) in the order their bodies follow the instruction line (RUN, COPY and
    /// ADD in shell form only, as in Docker).
    pub heredocs: Vec<Heredoc>,
    /// Every comment line since the previous instruction (or the directives), in order. Docker
    /// keeps them too (its `PrevComment`); see [`Instruction::adjacent_comments`] for the block
    /// right above the instruction.
    pub comments: Vec<Comment>,
    /// Comment lines inside the continuation, which Docker drops from the instruction.
    pub inner_comments: Vec<Comment>,
    /// Empty or whitespace-only lines inside the continuation, which Docker skips with a
    /// warning ("Empty continuation lines will become errors in a future release").
    pub empty_continuation_lines: Vec<usize>,
}

/// The arguments of an instruction, shaped the way Docker's parser shapes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "form", content = "value", rename_all = "snake_case")]
pub enum Args {
    /// Nothing after the keyword (and flags).
    Empty,
    /// A JSON array of strings: the exec form of RUN, CMD, ENTRYPOINT and SHELL, and the JSON
    /// form of COPY, ADD and VOLUME. Each word's text is the decoded string; its span covers
    /// the JSON string literal, quotes included.
    Json(Vec<Word>),
    /// Shell form of RUN, CMD, ENTRYPOINT and SHELL: the text handed to the shell, exactly as
    /// Docker passes it (`/bin/sh -c <text>` by default).
    Shell(Word),
    /// Whitespace-separated words, as written (FROM, EXPOSE, and COPY, ADD and VOLUME when not
    /// JSON). Docker does not treat quotes specially here.
    Words(Vec<Word>),
    /// The rest of the line as one string (MAINTAINER, STOPSIGNAL, USER, WORKDIR).
    Text(Word),
    /// Key-value pairs (ENV, LABEL, ARG).
    Pairs(Vec<KeyValue>),
    /// HEALTHCHECK: the kind (`CMD`, `NONE`, as written) and its command (empty, JSON or shell).
    Healthcheck { kind: Word, command: Box<Args> },
    /// ONBUILD: the trigger instruction.
    Onbuild(Box<Instruction>),
    /// An unknown instruction: the text after the keyword and flags. Docker keeps no arguments
    /// for these.
    Unknown(Word),
}

/// A piece of text from the source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Word {
    /// The text as Docker's parser keeps it: quotes and escapes are still in place (except in
    /// JSON arrays, which are decoded). See [`Word::unquoted`].
    pub text: String,
    pub span: Span,
}

impl Word {
    /// The text after the shell-like processing Docker applies when it uses the word: quotes
    /// removed, escapes resolved, variables left as written (`$A`, `${A:-x}`).
    pub fn unquoted(&self, escape: char) -> Result<String, crate::error::WordError> {
        crate::lex::unquote(&self.text, escape)
    }
}

/// An instruction flag: `--name=value` or `--name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Flag {
    /// The name without the leading `--`.
    pub name: String,
    /// The value after the first `=`; `None` for a bare `--name`. Quotes are removed and
    /// escapes resolved, as Docker does for flags.
    pub value: Option<String>,
    pub span: Span,
}

impl Flag {
    /// The flag as Docker's parser records it: `--name=value`, or `--name`.
    pub fn text(&self) -> String {
        match &self.value {
            Some(v) => format!("--{}={}", self.name, v),
            None => format!("--{}", self.name),
        }
    }
}

/// One `key=value` (or legacy `key value`) pair of ENV, LABEL or ARG.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    /// The key as written (quotes kept, as in Docker's parser).
    pub key: Word,
    /// The value as written (quotes kept); `None` for an ARG without a default.
    pub value: Option<Word>,
    /// The legacy form `ENV key value with spaces` (also LABEL): the value is the rest of the
    /// line.
    pub legacy: bool,
    /// The whole pair.
    pub span: Span,
}

impl KeyValue {
    /// `key=value` (or `key` for an ARG without a value), as the dump shows it.
    pub fn to_docker_string(&self) -> String {
        match &self.value {
            Some(v) => format!("{}={}", self.key.text, v.text),
            None => self.key.text.clone(),
        }
    }
}

/// A heredoc attached to RUN, COPY or ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word, quotes removed (`EOF` for `<<'EOF'`).
    pub name: String,
    /// The file descriptor written before `<<` (`3<<EOF`), if any.
    pub fd: Option<u64>,
    /// `<<-`: leading tabs are stripped from the body lines (and the terminator may be
    /// indented with tabs).
    pub strip_tabs: bool,
    /// Whether Docker expands variables in the body: false when any part of the delimiter
    /// was quoted.
    pub expand: bool,
    /// The body lines exactly as written, line terminators included, terminator line
    /// excluded. See [`Heredoc::content`].
    pub body: String,
    /// The `<<EOF` word in the instruction line.
    pub span: Span,
    /// The body lines and the terminator line.
    pub body_span: Span,
}

impl Heredoc {
    /// The body as the build uses it: with `<<-`, leading tabs removed from every line.
    pub fn content(&self) -> String {
        if !self.strip_tabs {
            return self.body.clone();
        }
        let mut out = String::with_capacity(self.body.len());
        for line in self.body.split_inclusive('\n') {
            out.push_str(line.trim_start_matches('\t'));
        }
        out
    }
}

impl Instruction {
    /// The keyword in lower case.
    pub fn name(&self) -> &str {
        self.keyword.as_str()
    }

    /// The first flag called `name` (`"from"` for `--from=…`).
    pub fn flag(&self, name: &str) -> Option<&Flag> {
        self.flags.iter().find(|f| f.name == name)
    }

    /// Every flag called `name`, in order (RUN may carry several `--mount`).
    pub fn flags_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Flag> + 'a {
        self.flags.iter().filter(move |f| f.name == name)
    }

    /// Whether the two instructions' flags say the same to the builder: the same flags and
    /// values, in any order across names (BuildKit reads each kind of flag apart), and in the
    /// same order within one name (two `--mount`s over one target: the later one wins). The
    /// one test of "same flags" for the lint (DL3059) and the fixer (which RUNs it may join).
    pub fn same_flags(&self, other: &Instruction) -> bool {
        fn said(i: &Instruction) -> Vec<(&str, Option<&str>)> {
            let mut f: Vec<_> = i
                .flags
                .iter()
                .map(|f| (f.name.as_str(), f.value.as_deref()))
                .collect();
            // Stable: flags of one name keep their order.
            f.sort_by(|a, b| a.0.cmp(b.0));
            f
        }
        said(self) == said(other)
    }

    /// The command arguments: for HEALTHCHECK, those of its command; otherwise the
    /// instruction's own.
    fn command_args(&self) -> &Args {
        match &self.args {
            Args::Healthcheck { command, .. } => command,
            other => other,
        }
    }

    /// Whether this RUN, CMD, ENTRYPOINT, SHELL or HEALTHCHECK uses the exec (JSON) form.
    pub fn is_exec_form(&self) -> bool {
        self.is_command() && matches!(self.command_args(), Args::Json(_))
    }

    /// Whether this RUN, CMD, ENTRYPOINT, SHELL or HEALTHCHECK uses the shell form.
    pub fn is_shell_form(&self) -> bool {
        self.is_command() && matches!(self.command_args(), Args::Shell(_))
    }

    fn is_command(&self) -> bool {
        matches!(
            self.keyword,
            Keyword::Run
                | Keyword::Cmd
                | Keyword::Entrypoint
                | Keyword::Shell
                | Keyword::Healthcheck
        )
    }

    /// The exec-form list of RUN, CMD, ENTRYPOINT, SHELL or HEALTHCHECK.
    pub fn exec(&self) -> Option<&[Word]> {
        match (self.is_command(), self.command_args()) {
            (true, Args::Json(words)) => Some(words),
            _ => None,
        }
    }

    /// The shell-form text of RUN, CMD, ENTRYPOINT, SHELL or HEALTHCHECK.
    pub fn shell(&self) -> Option<&Word> {
        match (self.is_command(), self.command_args()) {
            (true, Args::Shell(text)) => Some(text),
            _ => None,
        }
    }

    /// The words of FROM, EXPOSE, and COPY/ADD/VOLUME in either form.
    pub fn words(&self) -> &[Word] {
        match &self.args {
            Args::Words(w) | Args::Json(w) => w,
            _ => &[],
        }
    }

    /// The pairs of ENV, LABEL and ARG.
    pub fn pairs(&self) -> &[KeyValue] {
        match &self.args {
            Args::Pairs(p) => p,
            _ => &[],
        }
    }

    /// The ONBUILD trigger.
    pub fn trigger(&self) -> Option<&Instruction> {
        match &self.args {
            Args::Onbuild(t) => Some(t),
            _ => None,
        }
    }

    /// The block of comment lines directly above the instruction (no empty line between them
    /// and it): where `# hadolint ignore=DL3008` and `# headroom ignore=…` are read.
    pub fn adjacent_comments(&self) -> &[Comment] {
        let mut first = self.comments.len();
        let mut next_line = self.line;
        while first > 0 {
            let c = &self.comments[first - 1];
            if c.line + 1 != next_line {
                break;
            }
            next_line = c.line;
            first -= 1;
        }
        &self.comments[first..]
    }

    /// Docker's `PrevComment`: the comments since the previous instruction, restarted by an
    /// empty `#` line.
    pub fn docker_comments(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for c in &self.comments {
            if c.text.is_empty() {
                out.clear();
            } else {
                out.push(c.text.as_str());
            }
        }
        out
    }
}

impl Dockerfile {
    /// The directive called `name` (lower case), if present.
    pub fn directive(&self, name: &str) -> Option<&Directive> {
        self.directives.iter().find(|d| d.name == name)
    }

    /// Every instruction, with ONBUILD triggers visited after their ONBUILD.
    pub fn walk(&self) -> impl Iterator<Item = &Instruction> {
        self.instructions
            .iter()
            .flat_map(|i| std::iter::successors(Some(i), |i| i.trigger()))
    }
}
