//! A RUN as the planner sees it: its script as the shell reader reads it, where its text
//! comes from, its mounts, and whether it may be edited, joined or followed.

use crate::ast::{Instruction, Word};
use crate::shell::{self, Cmd, Script};

use super::cleanup::cleanup_of;
use super::srcmap::SrcMap;

/// A `--mount` flag: its type and target.
#[derive(Debug, Clone)]
pub(super) struct Mount {
    pub(super) kind: String,
    pub(super) target: Option<String>,
    /// A bind mount that may be written (`rw`): the writes are dropped after the RUN.
    pub(super) writable: bool,
}

pub(super) fn mounts(inst: &Instruction) -> Vec<Mount> {
    inst.flags_named("mount")
        .map(|f| {
            let mut m = Mount {
                kind: "bind".to_string(),
                target: None,
                writable: false,
            };
            for kv in f.value.as_deref().unwrap_or("").split(',') {
                match kv.split_once('=') {
                    Some(("type", v)) => m.kind = v.to_string(),
                    Some(("target" | "dst" | "destination", v)) => m.target = Some(v.to_string()),
                    Some(("rw" | "readwrite", v)) => m.writable = v != "false",
                    None if matches!(kv, "rw" | "readwrite") => m.writable = true,
                    _ => {}
                }
            }
            m
        })
        .collect()
}

impl Mount {
    /// Whether files written under `path` would land in this mount rather than in the
    /// layer (or the other way round): one path holds the other. Secrets and SSH sockets
    /// live elsewhere.
    pub(super) fn covers(&self, path: &str) -> bool {
        if matches!(self.kind.as_str(), "secret" | "ssh") {
            return false;
        }
        let Some(t) = self.target.as_deref() else {
            return true;
        };
        let t = t.trim_end_matches('/');
        let p = path.trim_end_matches('/');
        let inside =
            |a: &str, b: &str| a == b || a.strip_prefix(b).is_some_and(|r| r.starts_with('/'));
        t.is_empty() || inside(p, t) || inside(t, p)
    }
}

/// A RUN as the planner sees it.
#[derive(Debug)]
pub(super) struct Run<'d> {
    pub(super) inst: &'d Instruction,
    pub(super) stage: usize,
    /// The shell-form text.
    pub(super) word: Option<&'d Word>,
    pub(super) script: Script,
    pub(super) map: Option<SrcMap>,
    /// Run by `/bin/sh -c`: no SHELL before it in its stage or in a stage it is built on,
    /// and no Windows base.
    pub(super) default_shell: bool,
    pub(super) frozen: bool,
    /// The text other RUNs' cleanups look at: the script with its cleanup commands blanked
    /// out (or, when it cannot be read, all of it and its heredocs).
    pub(super) uses: String,
    pub(super) mounts: Vec<Mount>,
}

impl Run<'_> {
    /// The fixer may splice this RUN's script.
    pub(super) fn editable(&self) -> bool {
        self.word.is_some()
            && self.inst.heredocs.is_empty()
            && self.script.understood
            && self.map.is_some()
            && self.default_shell
            && !self.frozen
    }

    /// Commands may be joined after this RUN's script, in the same shell: see
    /// [`Script::may_be_followed`].
    pub(super) fn joinable(&self) -> bool {
        self.editable() && !self.script.heredoc && self.script.may_be_followed()
    }

    pub(super) fn text(&self) -> &str {
        self.word.map_or("", |w| w.text.as_str())
    }

    pub(super) fn raw(&self, cmd: &Cmd) -> &str {
        self.text().get(cmd.range.clone()).unwrap_or("")
    }

    pub(super) fn has_cache_mount(&self) -> bool {
        self.mounts.iter().any(|m| m.kind == "cache")
    }

    /// Whether this RUN may be joined with its neighbours: a tmpfs or a writable bind
    /// mount is new for every RUN, so a joined RUN would see the files another left there.
    /// A RUN that is not [`Run::joinable`] may still be the last of a joined run.
    pub(super) fn mergeable(&self) -> bool {
        self.editable()
            && !self.script.comment
            && !self.script.background
            && !self.script.heredoc
            && !self
                .mounts
                .iter()
                .any(|m| m.kind == "tmpfs" || (m.kind == "bind" && m.writable))
    }
}

impl<'d> Run<'d> {
    pub(super) fn new(
        src: &str,
        escape: char,
        inst: &'d Instruction,
        stage: usize,
        default_shell: bool,
        frozen: bool,
    ) -> Run<'d> {
        let word = inst.shell();
        let script = word.map_or_else(Script::default, |w| shell::read(&w.text));
        let map = word.and_then(|w| SrcMap::new(src, w, escape));
        let mut uses = match word {
            Some(w) if script.understood && default_shell => {
                let mut t = w.text.clone();
                for c in &script.cmds {
                    if cleanup_of(c, &w.text).is_some() {
                        let blank = " ".repeat(c.range.len());
                        t.replace_range(c.range.clone(), &blank);
                    }
                }
                t
            }
            _ => inst.original.clone(),
        };
        for h in &inst.heredocs {
            uses.push('\n');
            uses.push_str(&h.body);
        }
        Run {
            inst,
            stage,
            word,
            script,
            map,
            default_shell,
            frozen,
            uses,
            mounts: mounts(inst),
        }
    }
}
