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

/// What comes before a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Separator {
    /// The first command of the script.
    Start,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `;`, `&` or a line break
    Then,
    /// `|`
    Pipe,
}

/// One simple command: its words, quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub separator: Separator,
    /// `NAME=value` assignments before the program (`DEBIAN_FRONTEND=noninteractive apt-get`).
    pub assignments: Vec<String>,
    /// The program and its arguments.
    pub words: Vec<String>,
}

/// The simple commands of `script`, in order, at every nesting level. The script is read
/// by the one shell reader the lint and the fixer share ([`crate::fix`]'s, which also keeps
/// positions); a script it cannot follow to the end still lists what it read.
pub fn commands(script: &str) -> Vec<Command> {
    crate::fix::script::read(script)
        .cmds
        .iter()
        .map(|c| c.shell())
        .collect()
}

/// `NAME=value`: a shell variable assignment word.
pub(crate) fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            !name.is_empty()
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with(|c: char| c.is_ascii_digit())
        }
        None => false,
    }
}

impl Command {
    /// The program's name without its directory (`/opt/venv/bin/pip` → `pip`), after
    /// `sudo`, `env` and `command` prefixes.
    pub fn program(&self) -> Option<&str> {
        let w = self.effective_words();
        w.first().map(|p| p.rsplit('/').next().unwrap_or(p))
    }

    /// The words from the program on, with `sudo`/`env`/`command` and their options and
    /// `env`'s assignments skipped.
    pub fn effective_words(&self) -> &[String] {
        let mut w = &self.words[..];
        loop {
            match w.first().map(|p| p.rsplit('/').next().unwrap_or(p)) {
                Some("sudo" | "command" | "exec" | "nice" | "nohup") => {
                    w = &w[1..];
                    while w.first().is_some_and(|a| a.starts_with('-')) {
                        w = &w[1..];
                    }
                }
                Some("env") => {
                    w = &w[1..];
                    while w
                        .first()
                        .is_some_and(|a| a.starts_with('-') || is_assignment(a))
                    {
                        w = &w[1..];
                    }
                }
                _ => return w,
            }
        }
    }

    /// The arguments after the program.
    pub fn args(&self) -> &[String] {
        let w = self.effective_words();
        if w.is_empty() { w } else { &w[1..] }
    }

    /// Whether any argument is exactly one of `options`.
    pub fn has_any(&self, options: &[&str]) -> bool {
        self.args().iter().any(|a| options.contains(&a.as_str()))
    }

    /// The first argument that is not an option (`apt-get -y install x` → `install`).
    pub fn subcommand(&self) -> Option<&str> {
        self.args()
            .iter()
            .find(|a| !a.starts_with('-'))
            .map(String::as_str)
    }

    /// The words after the subcommand that are not options: packages, paths.
    pub fn operands(&self) -> Vec<&str> {
        let args = self.args();
        let Some(at) = args.iter().position(|a| !a.starts_with('-')) else {
            return Vec::new();
        };
        args[at + 1..]
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(String::as_str)
            .collect()
    }

    /// `apt-get`, `apt` or `aptitude` with `subcommand` (`update`, `install`, …).
    pub fn is_apt(&self, subcommand: &str) -> bool {
        matches!(self.program(), Some("apt-get" | "apt" | "aptitude"))
            && self.subcommand() == Some(subcommand)
    }

    /// `pip install`, in any of its spellings: `pip`, `pip3`, `pip3.11`, a path to one, or
    /// `python -m pip` (pipx and pipenv are other tools).
    pub fn is_pip_install(&self) -> bool {
        self.pip_args()
            .and_then(|a| a.iter().find(|w| !w.starts_with('-')))
            .is_some_and(|s| s == "install")
    }

    /// The arguments after `pip` (or `python -m pip`).
    pub fn pip_args(&self) -> Option<&[String]> {
        let w = self.effective_words();
        let program = self.program()?;
        if is_pip(program) {
            return Some(&w[1..]);
        }
        if program.starts_with("python") {
            let at = w.iter().position(|a| a == "-m")?;
            if w.get(at + 1).is_some_and(|m| m == "pip") {
                return Some(&w[at + 2..]);
            }
        }
        None
    }

    /// `rm` with a recursive option.
    pub fn is_rm(&self) -> bool {
        self.program() == Some("rm")
    }
}

fn is_pip(program: &str) -> bool {
    program == "pip"
        || program
            .strip_prefix("pip")
            .is_some_and(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(script: &str) -> Vec<Vec<String>> {
        commands(script).into_iter().map(|c| c.words).collect()
    }

    #[test]
    fn commands_split_on_operators_and_keep_quoted_text_whole() {
        let c = commands(
            "apt-get update && apt-get install -y 'a b' \"c\\\"d\"; rm -rf /x || true | cat & sleep 1",
        );
        let seps: Vec<Separator> = c.iter().map(|c| c.separator).collect();
        assert_eq!(
            seps,
            [
                Separator::Start,
                Separator::And,
                Separator::Then,
                Separator::Or,
                Separator::Pipe,
                Separator::Then
            ]
        );
        assert_eq!(c[1].words, ["apt-get", "install", "-y", "a b", "c\"d"]);
        assert!(c[1].is_apt("install"));
        assert_eq!(c[1].operands(), ["a b", "c\"d"]);
    }

    #[test]
    fn assignments_sudo_and_env_are_looked_through() {
        let c = commands("DEBIAN_FRONTEND=noninteractive sudo -E apt-get -y install x");
        assert_eq!(c[0].assignments, ["DEBIAN_FRONTEND=noninteractive"]);
        assert!(c[0].is_apt("install"));
        let c = commands("env A=1 /usr/bin/pip3.11 install --no-cache-dir torch");
        assert!(c[0].is_pip_install());
        assert!(c[0].has_any(&["--no-cache-dir"]));
    }

    #[test]
    fn pip_in_all_its_spellings() {
        for s in [
            "pip install x",
            "pip3 install x",
            "/opt/venv/bin/pip install x",
            "python3 -m pip install x",
            "python -m pip -q install x",
        ] {
            assert!(commands(s)[0].is_pip_install(), "{s}");
        }
        for s in [
            "pipx install x",
            "pipenv install",
            "pip download x",
            "python -m venv x",
        ] {
            assert!(!commands(s)[0].is_pip_install(), "{s}");
        }
    }

    #[test]
    fn commands_inside_compound_commands_are_listed() {
        let w = |s: &str| -> Vec<String> { words(s).into_iter().map(|c| c.join(" ")).collect() };
        assert_eq!(
            w(
                "if [ -f x ]; then pip install a; elif true; then apk add b; else apt-get install c; fi"
            ),
            [
                "[ -f x ]",
                "pip install a",
                "true",
                "apk add b",
                "apt-get install c"
            ]
        );
        assert_eq!(
            w("for p in a b; do apk add $p; done"),
            ["apk add $p"],
            "a loop's header is not a command"
        );
        assert_eq!(
            w("while read l; do pip install $l; done < reqs"),
            ["read l", "pip install $l"]
        );
        assert_eq!(
            w("case $A in x|y) pip install x ;; *) apt-get install -y z ;; esac"),
            ["pip install x", "apt-get install -y z"],
            "patterns are not commands"
        );
        assert_eq!(
            w(
                "case \"$(uname -m)\" in\n  (x86_64 | amd64)\n    apk add a ;;\n  arm*) apk add b ;&\n  *) ;;\nesac && pip install c"
            ),
            ["apk add a", "apk add b", "pip install c"]
        );
        assert_eq!(
            w("case $a in esac) apk add x;; esac"),
            ["apk add x"],
            "`esac` as a pattern"
        );
        assert_eq!(
            w("{ apt-get update; apt-get install -y x; } && ( cd /s && pip install . )"),
            [
                "apt-get update",
                "apt-get install -y x",
                "cd /s",
                "pip install ."
            ]
        );
        assert_eq!(w("! pip install x"), ["pip install x"]);
        assert_eq!(
            w("echo {a,b} {x}"),
            ["echo {a,b} {x}"],
            "brace words are words"
        );
        assert!(commands("if (pip install x); then :; fi")[0].is_pip_install());
    }

    #[test]
    fn substitutions_and_comments_are_opaque_subshells_are_not() {
        assert_eq!(
            words("echo $(a && b) `c;d` && (cd /x; make) # && rm x"),
            vec![
                vec!["echo".to_string(), "$(a && b)".into(), "`c;d`".into()],
                vec!["cd".to_string(), "/x".into()],
                vec!["make".to_string()],
            ]
        );
        let cmds = commands("a && (b; c) || d");
        let seps: Vec<Separator> = cmds.iter().map(|c| c.separator).collect();
        assert_eq!(
            seps,
            [
                Separator::Start,
                Separator::And,
                Separator::Then,
                Separator::Or
            ]
        );
        assert_eq!(words("a \\\n  b"), vec![vec!["a".to_string(), "b".into()]]);
    }

    #[test]
    fn any_text_is_read_without_panicking() {
        for s in [
            "", "&&", "'", "\"", "$(", "`", "(", "{", "\\", "a=b", "a |", "|| b",
        ] {
            let _ = commands(s);
        }
        assert!(commands("A=1").iter().all(|c| c.program().is_none()));
    }
}
