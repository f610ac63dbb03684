//! What the reader ([`super::read`]) finds in a script: every simple command with the byte
//! range of each of its words, the separators at the top level, and what in the script would
//! reach past it if more commands were joined after it in the same shell.
//!
//! [`super::commands`] answers "which commands does this RUN run"; the fixer also needs to
//! know where to insert a flag, which commands it may remove, and whether `A && B` still
//! means "A, then B in a fresh shell".

use std::ops::Range;

use super::command::{Command, Separator};

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
