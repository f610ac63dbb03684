//! Errors: where Docker's parser refuses a Dockerfile, this crate refuses it too, with the
//! place and Docker's message.

use thiserror::Error;

/// A Dockerfile that Docker's parser would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{line}:{column}: {kind}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset in the source.
    pub offset: usize,
    pub kind: ParseErrorKind,
}

/// What is wrong. The messages are Docker's where Docker has one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("file with no instructions")]
    NoInstructions,
    #[error("only one {0} parser directive can be used")]
    DuplicateDirective(String),
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscape(String),
    #[error("when using JSON array syntax, arrays must be comprised of strings only")]
    JsonNotStrings,
    /// Legacy `ENV key` / `LABEL key` without a value.
    #[error("{0} must have two arguments")]
    MissingValue(String),
    /// `ENV a=b c`: once the first pair has `=`, every word needs one.
    #[error("Syntax error - can't find = in {0:?}. Must be of the form: name=value")]
    MissingEquals(String),
    #[error("unterminated heredoc {0}")]
    UnterminatedHeredoc(String),
    /// A heredoc delimiter that does not lex (an unbalanced quote).
    #[error("invalid heredoc delimiter: {0}")]
    InvalidHeredoc(String),
    /// Docker reads lines with a 64 KiB buffer.
    #[error("dockerfile line greater than max allowed size of 65535")]
    LineTooLong,
    /// ONBUILD ONBUILD … nested deeper than this parser follows (Docker refuses any nesting
    /// when building).
    #[error("ONBUILD triggers nested too deeply")]
    TooDeep,
}

/// A word whose quotes or `${…}` do not balance (from [`crate::Word::unquoted`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct WordError(pub String);
