//! Running programs: the lab's one way to script, on duct.
//!
//! duct rather than xshell: the lab streams the output of long runs (dockerd, `cargo xtask
//! image`, builds) line by line while they run, needs the pids of what it started to pass a
//! signal on, and waits with a deadline — duct's `reader()`, `start()`, `pids()` and
//! `wait_timeout` do that; xshell only runs a command to its end. The product's crates run
//! programs with duct too.
//!
//! A [`Cmd`] is a duct expression that also knows how to show itself, so every error names
//! the command line that failed, its exit status and what it said on stderr. Its environment
//! is set as a program's usually is: the last `env` or `env_remove` of a variable wins (duct
//! itself lets the innermost, that is the first, win).

use std::ffi::{OsStr, OsString};
use std::io::ErrorKind;
use std::path::Path;

use anyhow::{Result, anyhow, bail};

/// A command line: what duct runs, and how errors show it.
#[derive(Debug, Clone)]
pub struct Cmd {
    expr: duct::Expression,
    /// Set (`Some`) or removed (`None`), in order: the last of a name wins.
    env: Vec<(OsString, Option<OsString>)>,
    shown: String,
}

/// For [`cmd`] with a program alone.
pub const NO_ARGS: [&str; 0] = [];

/// `program args…`; it runs with standard input closed.
pub fn cmd<P, I, S>(program: P, args: I) -> Cmd
where
    P: AsRef<OsStr>,
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut shown = quote(&program.as_ref().to_string_lossy());
    for a in &args {
        shown.push(' ');
        shown.push_str(&quote(&a.to_string_lossy()));
    }
    Cmd {
        expr: duct::cmd(program.as_ref(), args),
        env: Vec::new(),
        shown,
    }
}

impl Cmd {
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Cmd {
        let value = value.as_ref().to_owned();
        self.env.push((name.as_ref().to_owned(), Some(value)));
        self
    }

    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Cmd {
        self.env.push((name.as_ref().to_owned(), None));
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Cmd {
        self.expr = self.expr.dir(dir.as_ref());
        self
    }

    /// Send standard output nowhere (for [`Cmd::run`]).
    pub fn stdout_null(mut self) -> Cmd {
        self.expr = self.expr.stdout_null();
        self
    }

    /// This command's standard output into `next`'s standard input.
    pub fn pipe(self, next: Cmd) -> Cmd {
        Cmd {
            shown: format!("{} | {}", self.shown, next.shown),
            expr: self.with_env().pipe(next.with_env()),
            env: Vec::new(),
        }
    }

    /// The expression with its environment, each variable set or removed once.
    fn with_env(&self) -> duct::Expression {
        let mut expr = self.expr.clone();
        let mut done: Vec<&OsString> = Vec::new();
        for (name, value) in self.env.iter().rev() {
            if done.contains(&name) {
                continue;
            }
            done.push(name);
            expr = match value {
                Some(v) => expr.env(name, v),
                None => expr.env_remove(name),
            };
        }
        expr
    }

    /// The command line, quoted as a shell would need it.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The duct expression, standard input closed, for streaming its output (`reader()`)
    /// or waiting with a deadline (`start()`).
    pub fn expression(&self) -> duct::Expression {
        self.with_env().stdin_null()
    }

    /// Run to the end; its standard output, trimmed. Fails, with what it said on stderr,
    /// unless it exits 0.
    pub fn read(&self) -> Result<String> {
        let out = self.output()?;
        if !out.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.shown,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// Run to the end, its standard output and error captured, whatever its exit status
    /// (for a tool whose status means something else, or whose stderr is read).
    pub fn output(&self) -> Result<std::process::Output> {
        self.expression()
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .map_err(|e| self.spawn_error(e))
    }

    /// Run to the end with its output going where the lab's goes (a person watches a long
    /// step); fails unless it exits 0.
    pub fn run(&self) -> Result<()> {
        let out = self
            .expression()
            .unchecked()
            .run()
            .map_err(|e| self.spawn_error(e))?;
        if !out.status.success() {
            bail!("`{}` failed ({})", self.shown, out.status);
        }
        Ok(())
    }

    /// Whether it ran and exited 0, its output discarded.
    pub fn succeeds(&self) -> bool {
        self.expression()
            .stdout_null()
            .stderr_null()
            .unchecked()
            .run()
            .is_ok_and(|o| o.status.success())
    }

    pub(crate) fn spawn_error(&self, e: std::io::Error) -> anyhow::Error {
        if e.kind() == ErrorKind::NotFound {
            anyhow!(
                "running `{}`: not found ({e}); scripts/provision installs what the lab runs",
                self.shown
            )
        } else {
            anyhow!("running `{}`: {e}", self.shown)
        }
    }
}

/// `s` as a shell reads it back: bare when it is plain, else in single quotes.
pub fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./,:=+@".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_command_and_says_what_it_printed() {
        let err = cmd("sh", ["-c", "echo oops >&2; exit 3"])
            .read()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`sh -c 'echo oops >&2; exit 3'` failed"),
            "{err}"
        );
        assert!(err.contains("oops"), "{err}");
        let missing = cmd("headroom-no-such-program", ["x"]).read().unwrap_err();
        assert!(
            missing.to_string().contains("scripts/provision"),
            "{missing}"
        );
    }

    #[test]
    fn output_is_trimmed_and_pipes_join() {
        let out = cmd("printf", [" a b \n"]).pipe(cmd("tr", ["a", "x"]));
        assert_eq!(out.shown(), "printf ' a b \n' | tr a x");
        assert_eq!(out.read().unwrap(), "x b");
        assert!(cmd("true", NO_ARGS).succeeds());
        assert!(!cmd("false", NO_ARGS).succeeds());
    }

    #[test]
    fn the_last_setting_of_a_variable_wins() {
        let echo = |c: Cmd| c.read().unwrap();
        let sh = || cmd("sh", ["-c", "echo \"${HR_X-unset}\""]);
        assert_eq!(echo(sh().env("HR_X", "a").env_remove("HR_X")), "unset");
        assert_eq!(echo(sh().env_remove("HR_X").env("HR_X", "b")), "b");
        assert_eq!(echo(sh().env("HR_X", "a").env("HR_X", "c")), "c");
        // The right side reads its input first: one that exits unread kills `echo` with
        // SIGPIPE, which a pipeline reports as its failure.
        let reader = cmd("sh", ["-c", "cat >/dev/null; echo \"${HR_X-unset}\""]);
        let piped = cmd("echo", ["in"]).pipe(reader.env_remove("HR_X").env("HR_X", "d"));
        assert_eq!(echo(piped), "d");
    }

    #[test]
    fn quoting_keeps_plain_words_bare() {
        assert_eq!(quote("a/b-c.d"), "a/b-c.d");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }
}
