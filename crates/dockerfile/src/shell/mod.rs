//! Just enough of the POSIX shell to read a RUN line: the simple commands it runs, their
//! words with quotes removed, and what separates them. Lints and the fixer ask "does this
//! RUN call `apt-get install`, with which options?" — not what the script computes.
//!
//! Compound commands are looked into: the commands of a subshell `( … )` or a group `{ …; }`
//! are listed in place, and the reserved words of `if`/`then`/`else`/`elif`/`fi`,
//! `while`/`until`/`do`/`done`, `!` and the patterns of `case … in PATTERN) …;; esac` are taken
//! off, so `if true; then pip install x; fi` lists `true` and `pip install x` — every rule sees
//! a command wherever it runs. Words keep `$VAR` and `$(…)` as written (a command
//! substitution is one word); here-documents inside the script are not interpreted.
//!
//! This is the bottom layer that the lint and the fixer share:
//!
//! * `read` (`read.rs`): the one reader. It keeps positions (the byte range of every
//!   word), the separators at the top level, and what in the script would reach past it if
//!   more commands were joined after it in the same shell; its answer is a `Script`
//!   (`script.rs`). Anything it does not follow (unbalanced quotes or parentheses, an
//!   operator at the end, a syntax error) makes the script not `understood`, and
//!   the fixer leaves such a RUN alone.
//! * [`Command`] (`command.rs`): a simple command as the rules ask about it (`program`,
//!   `is_apt`, `is_pip_install`, …); [`commands`] lists them.
//! * `effects.rs`: what a command does beyond its own output: changes the shell, may turn
//!   on `set -e`, runs code that cannot be seen from here.
//! * `substitutions`: the scripts of the `$( … )` and `` ` … ` `` in a word.

mod command;
mod effects;
mod read;
mod script;
#[cfg(test)]
mod tests;

pub use command::{Command, Separator};
pub(crate) use effects::opaque;
pub(crate) use read::read;
pub(crate) use script::{Cmd, Script, Tok};

/// The simple commands of `script`, in order, at every nesting level. The script is read
/// by the one shell reader the lint and the fixer share (`read`, which also keeps
/// positions); a script it cannot follow to the end still lists what it read.
pub fn commands(script: &str) -> Vec<Command> {
    read(script).cmds.iter().map(|c| c.shell()).collect()
}

/// The scripts of the `$( … )` and `` ` … ` `` command substitutions in a word as the
/// reader keeps it, outermost first (a substitution that does not end is taken to the end of
/// the word). `$(( … ))` is arithmetic expansion, not a script: it is looked into for the
/// substitutions it may hold (`$(( $(nproc) / 2 ))` holds `nproc`), and is not read as one.
pub(crate) fn substitutions(word: &str) -> Vec<&str> {
    let bytes = word.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let (start, end) = match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'(') && bytes.get(i + 2) != Some(&b'(') => {
                let mut depth = 0usize;
                let mut end = bytes.len();
                for (j, b) in bytes.iter().enumerate().skip(i + 1) {
                    match b {
                        b'(' => depth += 1,
                        b')' => {
                            depth -= 1;
                            if depth == 0 {
                                end = j;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                (i + 2, end)
            }
            b'`' => {
                let end = bytes[i + 1..]
                    .iter()
                    .position(|&b| b == b'`')
                    .map_or(bytes.len(), |p| i + 1 + p);
                (i + 1, end)
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.push(word.get(start..end).unwrap_or(""));
        i = end + 1;
    }
    out
}
