//! A simple command as the rules ask about it: its program after `sudo`/`env` prefixes, its
//! subcommand, options and operands, and the package managers it may be.

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

/// `NAME=value`: a shell variable assignment word.
pub(super) fn is_assignment(word: &str) -> bool {
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

    /// Every non-option argument (for `rm`, which has no subcommand).
    pub(crate) fn operands_all(&self) -> Vec<&str> {
        self.args()
            .iter()
            .filter(|a| !a.starts_with('-'))
            .map(String::as_str)
            .collect()
    }

    /// Removes apt's package lists: `rm` of a path under `/var/lib/apt/lists`, `find` from
    /// there with `-delete`, or `apt-get dist-clean` (apt 2.7 and later: `clean` and the
    /// lists).
    pub fn cleans_apt_lists(&self) -> bool {
        const LISTS: &str = "/var/lib/apt/lists";
        let under = |p: &str| p.starts_with(LISTS);
        match self.program() {
            Some("rm") => self.operands_all().into_iter().any(under),
            Some("find") => {
                self.args().first().is_some_and(|p| under(p))
                    && self.args().iter().any(|a| a == "-delete")
            }
            Some("apt-get" | "apt") => self.subcommand() == Some("dist-clean"),
            _ => false,
        }
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
