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

/// The simple commands of `script`, in order.
pub fn commands(script: &str) -> Vec<Command> {
    let mut out = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut separator = Separator::Start;
    let mut chars = script.chars().peekable();

    fn finish_word(words: &mut Vec<String>, word: &mut String, in_word: &mut bool) {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    }
    let finish_command = |out: &mut Vec<Command>, words: &mut Vec<String>, separator: Separator| {
        let all = std::mem::take(words);
        push_command(out, &all, separator);
    };

    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                match chars.next() {
                    // A backslash-newline joins lines.
                    Some('\n') => {}
                    Some(n) => {
                        word.push(n);
                        in_word = true;
                    }
                    None => {}
                }
            }
            '\'' => {
                in_word = true;
                for n in chars.by_ref() {
                    if n == '\'' {
                        break;
                    }
                    word.push(n);
                }
            }
            '"' => {
                in_word = true;
                while let Some(n) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' => match chars.peek() {
                            Some(&e @ ('"' | '\\' | '$' | '`')) => {
                                word.push(e);
                                chars.next();
                            }
                            Some('\n') => {
                                chars.next();
                            }
                            _ => word.push('\\'),
                        },
                        _ => word.push(n),
                    }
                }
            }
            '$' if chars.peek() == Some(&'(') => {
                in_word = true;
                word.push('$');
                copy_balanced(&mut chars, &mut word);
            }
            '`' => {
                in_word = true;
                word.push('`');
                for n in chars.by_ref() {
                    word.push(n);
                    if n == '`' {
                        break;
                    }
                }
            }
            '(' | '{'
                if !in_word
                    && opens_compound(&words)
                    && (c == '(' || chars.peek().is_some_and(|n| n.is_whitespace())) =>
            {
                // A subshell or group: its commands, in place.
                let close = if c == '(' { ')' } else { '}' };
                let mut inner = String::new();
                let mut depth = 1;
                for n in chars.by_ref() {
                    if n == c {
                        depth += 1;
                    } else if n == close {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    inner.push(n);
                }
                let prefix = std::mem::take(&mut words);
                push_command(&mut out, &prefix, separator);
                let mut first = prefix.iter().all(|w| is_reserved(w));
                for mut cmd in commands(&inner) {
                    if first {
                        cmd.separator = separator;
                        first = false;
                    }
                    out.push(cmd);
                }
                separator = Separator::Then;
            }
            '#' if !in_word => {
                // A comment runs to the end of the line.
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                }
            }
            ' ' | '\t' => finish_word(&mut words, &mut word, &mut in_word),
            '\n' | ';' => {
                finish_word(&mut words, &mut word, &mut in_word);
                finish_command(&mut out, &mut words, separator);
                separator = Separator::Then;
            }
            '&' => {
                finish_word(&mut words, &mut word, &mut in_word);
                finish_command(&mut out, &mut words, separator);
                if chars.peek() == Some(&'&') {
                    chars.next();
                    separator = Separator::And;
                } else {
                    separator = Separator::Then;
                }
            }
            '|' => {
                finish_word(&mut words, &mut word, &mut in_word);
                finish_command(&mut out, &mut words, separator);
                if chars.peek() == Some(&'|') {
                    chars.next();
                    separator = Separator::Or;
                } else {
                    separator = Separator::Pipe;
                }
            }
            _ => {
                word.push(c);
                in_word = true;
            }
        }
    }
    finish_word(&mut words, &mut word, &mut in_word);
    finish_command(&mut out, &mut words, separator);
    out
}

/// Reserved words that may come before a command in a compound command.
fn is_reserved(word: &str) -> bool {
    matches!(
        word,
        "if" | "then" | "else" | "elif" | "do" | "while" | "until" | "!" | "{" | "("
    )
}

/// Whether a `(` or `{` here starts a subshell or group: at the start of a command, or after
/// reserved words only (`if (`, `then {`, `! (`).
fn opens_compound(words: &[String]) -> bool {
    words.iter().all(|w| is_reserved(w))
}

/// A `case` pattern at the start of a command: `a)`, `*)`, `x|y)`, `(a)`.
fn is_case_pattern(word: &str) -> bool {
    word.ends_with(')') && !word.contains("$(") && !word.contains('=') && word.len() > 1
}

/// Add the command `all` (assignments and words) with its reserved words taken off; a
/// closing word alone (`fi`, `done`, `esac`, `}`) adds nothing.
fn push_command(out: &mut Vec<Command>, all: &[String], separator: Separator) {
    let mut w = all;
    loop {
        match w.first().map(String::as_str) {
            Some(first) if is_reserved(first) => w = &w[1..],
            // `case WORD in PATTERN) cmd …`: the header, then the first branch's command.
            Some("case") if w.len() > 3 && w[2] == "in" => {
                out.push(Command {
                    separator,
                    assignments: Vec::new(),
                    words: w[..3].to_vec(),
                });
                // `x|y) cmd`: the `|` ended this command at `x`, the first alternative;
                // the next command starts at `y)`.
                if !w[3..].iter().any(|x| is_case_pattern(x)) {
                    return;
                }
                return push_command(out, &w[3..], Separator::Then);
            }
            Some(first) if is_case_pattern(first) => w = &w[1..],
            _ => break,
        }
    }
    if w.is_empty() || matches!(w[0].as_str(), "fi" | "done" | "esac" | "}") && w.len() == 1 {
        return;
    }
    let split = w.iter().take_while(|x| is_assignment(x)).count();
    let (assignments, rest) = w.split_at(split);
    out.push(Command {
        separator,
        assignments: assignments.to_vec(),
        words: rest.to_vec(),
    });
}

/// Copy `(…)` with nesting, starting at the `(`.
fn copy_balanced(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, word: &mut String) {
    let mut depth = 0usize;
    for n in chars.by_ref() {
        word.push(n);
        match n {
            '(' => depth += 1,
            ')' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return;
                }
            }
            _ => {}
        }
    }
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
            ["for p in a b", "apk add $p"]
        );
        assert_eq!(
            w("while read l; do pip install $l; done < reqs"),
            ["read l", "pip install $l", "done < reqs"]
        );
        assert_eq!(
            w("case $A in x|y) pip install x ;; *) apt-get install -y z ;; esac"),
            ["case $A in", "pip install x", "apt-get install -y z"]
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
