//! A RUN as the checks see it: the commands it runs (its script, the heredoc it runs, or its
//! exec form), whether its `apt-get update` fetches lists nothing reads, and its mounts.

use std::collections::BTreeMap;

use crate::ast::Instruction;
use crate::fix::lists_unread_after_update;
use crate::shell::{self, Command};

/// A RUN as the checks see it.
pub(super) struct Run<'a> {
    pub(super) inst: &'a Instruction,
    pub(super) commands: Vec<Command>,
    /// Nothing after the script's `apt-get update` reads the lists (the fixer's reading).
    pub(super) lists_unread: bool,
    /// `--mount` values, for cache-mount exemptions.
    pub(super) mounts: Vec<String>,
    /// The commands inside its `$( … )` and backquoted substitutions, at any depth: they
    /// run too (`pip` inside `$( … )` still fills pip's cache).
    pub(super) substituted: Vec<Command>,
}

impl<'a> Run<'a> {
    /// The commands of a RUN as hadolint reads them: the shell text; the body of the heredoc
    /// the command line starts with (`RUN <<EOF`), after what else is on the line; the exec
    /// form's words joined by spaces. `None` for a RUN without arguments.
    pub(super) fn new(inst: &'a Instruction) -> Option<Run<'a>> {
        let (commands, lists_unread) = if let Some(script) = inst.shell() {
            let mut commands = shell::commands(&script.text);
            match inst.heredocs.first() {
                Some(heredoc) if script.text.trim_start().starts_with("<<") => {
                    for c in &mut commands {
                        c.words.retain(|w| !w.starts_with("<<"));
                    }
                    commands.retain(|c| !c.words.is_empty() || !c.assignments.is_empty());
                    let body = heredoc.content();
                    commands.extend(shell::commands(&body));
                    let unread = lists_unread_after_update(&body);
                    (commands, unread)
                }
                _ => (commands, lists_unread_after_update(&script.text)),
            }
        } else {
            let words: Vec<&str> = inst.exec()?.iter().map(|w| w.text.as_str()).collect();
            let text = words.join(" ");
            (shell::commands(&text), lists_unread_after_update(&text))
        };
        let mut substituted = Vec::new();
        substituted_commands(&commands, 0, &mut substituted);
        Some(Run {
            inst,
            substituted,
            commands,
            lists_unread,
            mounts: inst
                .flags_named("mount")
                .filter_map(|f| f.value.clone())
                .collect(),
        })
    }

    pub(super) fn cache_mount_on(&self, path_part: &str) -> bool {
        self.mounts.iter().any(|m| {
            (m.contains("type=cache") || m.contains("type=tmpfs"))
                && m.split(',').any(|kv| {
                    kv.split_once('=').is_some_and(|(k, v)| {
                        matches!(k, "target" | "dst" | "destination") && v.contains(path_part)
                    })
                })
        })
    }

    pub(super) fn any(&self, f: impl Fn(&Command) -> bool) -> bool {
        self.commands.iter().any(f)
    }

    /// `rm -r…` of a path starting with `prefix`.
    pub(super) fn removes(&self, prefix: &str) -> bool {
        self.commands.iter().any(|c| removes(c, prefix))
    }
}

/// The commands of the substitutions in the words of `commands`, and of theirs (a few levels
/// deep: a script cannot nest them without bound in a Dockerfile line anyway).
fn substituted_commands(commands: &[Command], depth: usize, out: &mut Vec<Command>) {
    if depth > 8 {
        return;
    }
    for c in commands {
        for w in c.assignments.iter().chain(&c.words) {
            for script in shell::substitutions(w) {
                let inner = shell::commands(script);
                substituted_commands(&inner, depth + 1, out);
                out.extend(inner);
            }
        }
    }
}

pub(super) fn removes(c: &Command, prefix: &str) -> bool {
    c.is_rm() && c.operands_all().iter().any(|p| p.starts_with(prefix))
}

/// The values hadolint takes as setting PIP_NO_CACHE_DIR (anything else, `2` included, does
/// not exempt a pip install from DL3042 there).
pub(super) fn truthy(v: &str) -> bool {
    let v = v.trim_matches(['"', '\'']).to_ascii_lowercase();
    matches!(v.as_str(), "1" | "true" | "on" | "yes")
}

pub(super) fn record_env(inst: &Instruction, env: &mut BTreeMap<String, String>) {
    for kv in inst.pairs() {
        let key = kv.key.text.trim_matches(['"', '\'']).to_string();
        let value = kv
            .value
            .as_ref()
            .map(|v| v.text.clone())
            .unwrap_or_default();
        env.insert(key, value);
    }
}
