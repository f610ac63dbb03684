//! Dockerfile analysis: a parser that follows Docker's own syntax, a lint for layers and
//! caches, and a fixer that merges layers without changing what the image contains.
//!
//! # Code map
//!
//! From the bottom up; nothing imports a module above it, and the library never prints.
//!
//! * `error.rs`, `json.rs`, `lex.rs`: parse errors with Docker's messages; exec-form JSON
//!   read as Go reads it; Docker's word lexing (quotes, escapes, heredoc markers).
//! * `ast.rs`: the tree ([`Dockerfile`], [`Instruction`], [`Args`], …), every part with its
//!   [`Span`].
//! * `parser/`: text to tree. `source.rs` holds the text as Docker reads it (bytes as text,
//!   physical lines, positions, continuations), `args.rs` shapes each instruction's
//!   arguments, `mod.rs` reads directives, instructions and heredocs.
//! * `stages.rs`, `dump.rs`: the build stages and what `--from` names; the JSON dump.
//! * [`validate`]: what BuildKit refuses once the file is parsed (`mount.rs`: `--mount`;
//!   `go.rs`: Go's durations and quoting, did-you-mean suggestions).
//! * [`shell`]: the one shell reader (positions, separators, compound commands, what a
//!   script does to the shell), and the command view the rules ask (`program`, `is_apt`,
//!   …). It knows nothing of Dockerfiles; the lint and the fixer both read RUN scripts
//!   through it.
//! * [`diagnostic`], [`rules`]: what a finding is (with its fix and applicability), and the
//!   rule and fix tables, as data. They know neither the checks nor the fixer.
//! * [`fix`]: the fixer: a planner over the file's RUNs, one file per family of fixes,
//!   rendering and read-back (its own code map tells more). It knows no findings.
//! * [`lint`]: on top: the rule families over stages and RUNs, the ignores, and findings
//!   made whole with the fixer's answer.
//!
//! # Parsing
//!
//! [`parse`] reads a Dockerfile the way BuildKit's `frontend/dockerfile/parser` does (the
//! parser behind both `docker build` builders), and keeps, for every instruction, flag,
//! argument, heredoc and comment, where it is in the source ([`Span`]: 1-based line and
//! column, and byte offsets), so lints can point at it and fixers can splice the text.
//!
//! What Docker does, and this parser with it:
//!
//! * **Parser directives** (`# syntax=`, `# escape=`, `# check=`, names in any case) are read
//!   only from the top: the first line that is not one (an instruction, another comment, an
//!   empty line) ends them. A directive given twice, or an escape other than `\` and
//!   `` ` ``, is an error.
//! * **Line continuation**: a line whose last non-blank character is the escape character
//!   (not itself escaped) continues on the next. The escape character and the blanks after it
//!   are removed and the rest of the line is kept as it is, so `echo a \` + `  && b` becomes
//!   `echo a   && b`. Comment lines and empty lines inside a continuation are dropped (see
//!   [`Instruction::inner_comments`] and [`Instruction::empty_continuation_lines`]). A
//!   continuation that reaches the end of the file ends the instruction there.
//! * Line endings may be `\n` or `\r\n`; a UTF-8 byte-order mark at the start is dropped;
//!   lines longer than 65535 bytes are an error, as in Docker.
//! * **Flags** (`--name=value`, `--name`) before the arguments of any instruction, quotes
//!   removed and escapes resolved; a bare `--` ends them.
//! * **Exec form**: arguments that are a JSON array of strings, read as Go's `encoding/json`
//!   reads them. Text that is not valid JSON falls back to the shell (or word) form; a valid
//!   array holding something other than strings is an error.
//! * **Heredocs** on RUN, COPY and ADD in shell form (also as an ONBUILD trigger): `<<EOF`,
//!   `<<-EOF` (leading tabs stripped), quoted delimiters (`<<"EOF"`, `<<'EOF'`, any quoted
//!   part: no variable expansion), an optional file descriptor (`3<<EOF`), blanks after `<<`,
//!   several per line (bodies follow in order).
//! * Per instruction, the arguments are shaped as Docker shapes them ([`Args`]): JSON or shell
//!   text for RUN, CMD, ENTRYPOINT, SHELL; JSON or words for COPY, ADD, VOLUME; words for FROM
//!   and EXPOSE; the rest of the line for MAINTAINER, STOPSIGNAL, USER, WORKDIR; key-value
//!   pairs for ENV and LABEL (with the legacy `ENV key value with spaces`) and ARG; the kind
//!   and command of HEALTHCHECK; the nested trigger of ONBUILD. Quotes in words stay as
//!   written, as in Docker's parser; [`Word::unquoted`] removes them as Docker does when it
//!   uses a word.
//! * Keywords are matched ignoring case; an unknown keyword is kept ([`Keyword::Unknown`]),
//!   since Docker's parser keeps it too ([`validate::validate`] refuses it, as Docker's build
//!   does). A file without instructions is an error.
//!
//! Errors ([`ParseError`]) carry the line and column and Docker's message. The parser never
//! panics, whatever the input. Docker reads bytes: [`parse_bytes`] keeps bytes that are not
//! UTF-8 (a Latin-1 comment, script or label) through [`decode_bytes`], one character per
//! byte, and [`encode_text`] gives them back.
//!
//! Differences from Docker, deliberately: text is read as Unicode characters, where Docker
//! reads flag words and the HEALTHCHECK kind byte by byte (which garbles non-ASCII text in
//! them); ONBUILD triggers nested more than 8 deep and `${…}` substitutions nested more than
//! 64 deep are refused (Docker's build refuses `ONBUILD ONBUILD` anyway); Docker's
//! alternative directive forms used only to pick a frontend (`// syntax=`, a JSON first line)
//! are not directives here.
//!
//! # Validation
//!
//! [`validate::validate`] refuses what BuildKit refuses once the file is parsed, before
//! anything runs, with BuildKit's messages: unknown instructions, wrong argument counts
//! (`COPY onlyone`, `FROM a b`), unknown, repeated or ill-valued flags (`RUN --foo`,
//! `COPY --link=maybe`), `ONBUILD FROM`/`MAINTAINER`/`ONBUILD`, a `SHELL` that is not JSON,
//! `HEALTHCHECK` types, durations and retries, `--mount` types and keys, `--network`
//! modes, and an instruction before the first `FROM` other than `ARG`.
//!
//! # Lint
//!
//! [`lint::lint_with_fixes`] finds layer and cache problems: hadolint's rules where hadolint
//! has them (same ids and meaning: `DL3059`, `DL3009`, `DL3015`, `DL3042`, `DL3019`,
//! `DL3032`, `DL3036`, `DL3040`, `DL3060`) and headroom's own (`HR001` cleanup in a later
//! layer, `HR002` `apt-get update` alone, `HR003` one package per install repeated, `HR004`
//! `COPY .` before the dependencies, `HR005` an archive downloaded and extracted in
//! different layers, `HR006` too many layers, `HR007` no `.dockerignore` beside a large
//! context). Each is a [`diagnostic::Finding`] that carries, when it is made, the
//! [`diagnostic::Fix`] that answers it (as ruff's diagnostics carry an `Option<Fix>`): the
//! index of the fixer's change and its [`diagnostic::Applicability`] (`safe`: `--fix`
//! applies it; `unsafe`: only `--fix-unsafe`), so what the lint calls fixable is what the
//! fixer does. [`lint::lint`] gives the findings without fixes, for a file that is not to be
//! rewritten. [`rules::RULES`] holds the rules' ids, severities, titles, hints and fixes, and
//! [`rules::FIXES`] what each fix is, as data; [`shell`] reads RUN lines into commands.
//!
//! # Fix
//!
//! [`fix::fix`] (for `cargo xtask lint --fix`) rewrites the text: consecutive RUNs
//! joined, cleanups moved into the RUN that made the data, apt lists removed where they were
//! fetched, `--no-cache-dir` for pip and `--no-cache` for apk — none of which changes what
//! gets installed — and, only when asked, `--no-install-recommends` (which does). It gives
//! the new text, each change (stable id, the lint rules it answers, description, original
//! lines, safe or unsafe), the layer counts before and after, and a unified diff. Whatever
//! is not fixed stays byte for byte; each rewrite is read back before it is kept. Every
//! change carries its [`fix::Edit`]s (splices of the original text); [`fix::Fixes`] is the
//! lint's view of them.
//!
//! # Stages
//!
//! [`Dockerfile::stages`] lists the build stages (index, lower-case name, base image text,
//! the earlier stage the base names, the FROM's span); [`Dockerfile::resolve_stage`] and
//! [`Dockerfile::copy_from`] say what `--from=<name|index>` points at, as BuildKit decides.
//!
//! # Dump
//!
//! [`Dockerfile::dump`] (what `cargo xtask lint --dump FILE` prints) is a JSON array with one
//! object per instruction:
//!
//! ```json
//! [
//!   {"line": 1, "end_line": 1, "instruction": "from", "flags": ["--platform=linux/amd64"],
//!    "args": ["debian:12", "AS", "build"]},
//!   {"line": 2, "end_line": 4, "instruction": "run", "flags": ["--mount=type=cache,target=/root/.cache"],
//!    "shell": "pip install torch   && rm -rf /tmp/x"},
//!   {"line": 5, "end_line": 5, "instruction": "cmd", "flags": [], "args": ["python", "-m", "app"], "json": true},
//!   {"line": 6, "end_line": 6, "instruction": "env", "flags": [], "args": ["A=1", "B=\"two words\""]},
//!   {"line": 7, "end_line": 9, "instruction": "copy", "flags": [], "args": ["<<EOF", "/etc/motd"],
//!    "heredocs": [{"name": "EOF", "body": "hello\n", "strip_tabs": false, "expand": true}]},
//!   {"line": 10, "end_line": 10, "instruction": "onbuild", "flags": [],
//!    "trigger": {"line": 10, "end_line": 10, "instruction": "run", "flags": [], "shell": "make"}}
//! ]
//! ```
//!
//! * `line`, `end_line`: 1-based first and last physical line (continuations and heredoc
//!   bodies included).
//! * `instruction`: the keyword in lower case (unknown keywords too).
//! * `flags`: `--name=value`, or `--name` without a value, quotes removed.
//! * Then either `shell` (RUN, CMD, ENTRYPOINT and SHELL in shell form: the text exactly as
//!   Docker hands it to the shell, continuations joined) or `args`: the JSON array of the exec
//!   form (with `"json": true`); `key=value` strings for ENV, LABEL and ARG (`key` alone for an
//!   ARG without a value; legacy `ENV k v w` as `k=v w`), values as written (quotes kept); the
//!   words of FROM, EXPOSE, COPY, ADD and VOLUME as Docker splits them; the rest of the line
//!   as one string for MAINTAINER, STOPSIGNAL, USER, WORKDIR and unknown instructions; `[]`
//!   when there is nothing.
//! * HEALTHCHECK: `args` starts with the kind (`CMD`, `NONE`), followed by the exec-form list
//!   (`"json": true`); in shell form `args` is just the kind and the command is in `shell`.
//! * ONBUILD: `trigger`, the nested instruction in the same shape.
//! * `heredocs` (only when there are some): `name`, `body` (the lines as written, line
//!   endings included), `strip_tabs` (`<<-`), `expand` (false when the delimiter was quoted),
//!   and `fd` when a file descriptor was given.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod ast;
pub mod diagnostic;
mod dump;
mod error;
pub mod fix;
mod json;
mod lex;
pub mod lint;
mod parser;
pub mod rules;
pub mod shell;
mod stages;
pub mod validate;

pub use ast::{
    Args, Comment, Directive, Dockerfile, Flag, Heredoc, Instruction, KeyValue, Keyword, Position,
    Span, Word,
};
pub use error::{ParseError, ParseErrorKind, WordError};
pub use parser::{decode_bytes, encode_text, parse, parse_bytes};
pub use stages::{Stage, StageRef};

/// `text` with quotes removed and escapes resolved as Docker does when it uses a word of ENV,
/// LABEL, COPY and the like (its `ProcessWord`); variables are left as written.
pub fn unquote(text: &str, escape: char) -> Result<String, WordError> {
    lex::unquote(text, escape)
}

#[cfg(test)]
mod tests;
