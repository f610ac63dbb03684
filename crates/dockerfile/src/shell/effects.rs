//! What a command does beyond its own output: whether it changes the shell for the commands
//! after it, whether it may turn on `set -e`, whether it runs code that cannot be seen from
//! here.

use super::script::Cmd;

/// Builtins that change the shell itself, so that their effect would reach commands joined
/// after them.
const STATEFUL: &[&str] = &[
    ".",
    "alias",
    "bind",
    "break",
    "builtin",
    "cd",
    "continue",
    "declare",
    "enable",
    "eval",
    "exec",
    "exit",
    "export",
    "getopts",
    "hash",
    "let",
    "local",
    "mapfile",
    "popd",
    "pushd",
    "read",
    "readarray",
    "readonly",
    "return",
    "set",
    "shift",
    "shopt",
    "source",
    "trap",
    "typeset",
    "ulimit",
    "umask",
    "unalias",
    "unset",
];
/// Whether a command, run in the current shell, changes that shell for later commands.
pub(super) fn changes_shell(cmd: &Cmd) -> bool {
    let Some(first) = cmd.words.first() else {
        // `A=1` alone sets a shell variable.
        return true;
    };
    let program = cmd.shell().program().map(str::to_string);
    // POSIX: assignments before a special builtin stay in the shell (`A=1 :`); the other
    // special builtins are STATEFUL already.
    let special_keeps = !cmd.assignments.is_empty() && matches!(first.text.as_str(), ":" | "times");
    special_keeps
        || STATEFUL.contains(&first.text.as_str())
        || program.is_some_and(|p| STATEFUL.contains(&p.as_str()))
        || (first.text == "printf" && cmd.words.iter().any(|w| w.text == "-v"))
}

/// Whether a command may turn on `-e`: `set` with an option cluster holding `e`, with `-o`
/// (or `+o`, whose value could be anything), with computed words; or code this reader
/// cannot see (`eval`, `.`, `source`).
pub(super) fn may_set_errexit(cmd: &Cmd) -> bool {
    let words: Vec<&str> = cmd.words.iter().map(|w| w.text.as_str()).collect();
    match words.first() {
        Some(&"set") => words[1..].iter().any(|a| {
            a.contains(['$', '`'])
                || (a.starts_with('-') && *a != "--" && (a.contains('e') || a.contains('o')))
        }),
        Some(&("eval" | "." | "source")) => true,
        _ => false,
    }
}

/// Whether `script` may turn on `-e` anywhere, also inside command substitutions (which
/// [`read`] keeps as words): a `set` word followed by an option that could be `-e`.
pub(super) fn mentions_errexit(script: &str) -> bool {
    let bytes = script.as_bytes();
    let word_char = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'-';
    script.match_indices("set").any(|(at, _)| {
        let before = at.checked_sub(1).and_then(|i| bytes.get(i).copied());
        if before.is_some_and(word_char) {
            return false;
        }
        let rest = &script[at + 3..];
        if !rest.starts_with([' ', '\t']) {
            return false;
        }
        let arg = rest.trim_start_matches([' ', '\t']);
        let opt: String = arg
            .chars()
            .take_while(|c| !c.is_whitespace() && !";&|)".contains(*c))
            .collect();
        opt.contains(['$', '`'])
            || (opt.starts_with(['-', '+', '"', '\''])
                && opt != "--"
                && (opt.contains('e') || opt.contains('o')))
    })
}

/// The commands that cannot run a package manager (`safe_commands.txt`, one a line).
const SAFE_COMMANDS: &str = include_str!("safe_commands.txt");

/// Whether `name` is on the allow-list of commands that cannot run a package manager.
pub(crate) fn known_safe(name: &str) -> bool {
    use std::collections::BTreeSet;
    use std::sync::OnceLock;
    static SAFE: OnceLock<BTreeSet<&'static str>> = OnceLock::new();
    SAFE.get_or_init(|| {
        SAFE_COMMANDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
    .contains(name)
}

/// Whether a command may run code that cannot be seen from here, and so may do anything (run
/// apt, need its lists). Unknown means "may": only a program on the allow-list of commands
/// that cannot run a package manager ([`known_safe`]) is known not to, and then only when it
/// is named plainly (no `$`, no directory outside the system's), no COPY or ADD of the
/// Dockerfile brings in a file of its name (`copied`), and its arguments run nothing
/// (`find -exec`, awk's `system` or pipes). pip is known too: a package installer that does
/// not run apt, and so are `python -m venv|ensurepip|compileall`.
pub(crate) fn opaque(cmd: &Cmd, copied: &dyn Fn(&str) -> bool) -> bool {
    let sh = cmd.shell();
    if sh.pip_args().is_some() {
        return false;
    }
    let words = sh.effective_words();
    let Some(first) = words.first() else {
        // Only assignments (or a prefix alone): nothing runs.
        return words.len() != cmd.words.len();
    };
    let name = first.rsplit('/').next().unwrap_or(first);
    if name.starts_with("python") {
        let m = words.iter().position(|w| w == "-m");
        return !m
            .and_then(|i| words.get(i + 1))
            .is_some_and(|m| matches!(m.as_str(), "venv" | "ensurepip" | "compileall"));
    }
    let system = ["/bin/", "/usr/bin/", "/sbin/", "/usr/sbin/"]
        .iter()
        .any(|d| first.strip_prefix(d).is_some_and(|r| !r.contains('/')));
    let runs_commands = match name {
        "find" => words
            .iter()
            .any(|w| matches!(w.as_str(), "-exec" | "-execdir" | "-ok" | "-okdir")),
        "awk" | "gawk" | "mawk" => words[1..]
            .iter()
            .any(|w| w.contains("system") || w.contains('|')),
        _ => false,
    };
    !known_safe(name)
        || first.contains(['$', '`'])
        || (first.contains('/') && !system)
        || runs_commands
        || copied(name)
}
