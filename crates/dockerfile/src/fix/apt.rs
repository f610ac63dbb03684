//! What the commands of a script do to apt's package lists: fetch them, read them, remove
//! them, or run code that may read them. The one reading the fixer (where the lists may
//! go) and the lint (`HR002`: lists fetched and read by nothing) share.

use super::cleanup::{Cache, cleanup_of};
use crate::shell::{self, Cmd, Script};

/// What an apt command does to the package lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AptUse {
    /// `apt-get update`: fetches them.
    Update,
    /// Install, upgrade, search, …: reads them.
    Needs,
    /// `rm -rf /var/lib/apt/lists/*`: removes them.
    Removes,
    /// Code that cannot be seen (a script, `bash -c`, `xargs`, …): may read them.
    May,
    /// Another program that names them (`ls /var/lib/apt/lists`, `cp -a / …`): reads them,
    /// but is no place for their cleanup (that would be a cleanup in a later layer).
    Named,
}

impl AptUse {
    /// Reads the lists (or may): they must still be there.
    pub(super) fn reads(self) -> bool {
        matches!(self, AptUse::Needs | AptUse::May | AptUse::Named)
    }
}

pub(super) fn apt_use(cmd: &Cmd, script: &str) -> Option<AptUse> {
    if let Some(c) = cleanup_of(cmd, script) {
        let lists = c
            .items
            .iter()
            .any(|(cache, op)| *cache == Cache::Apt && op.starts_with("/var/lib/apt/lists"));
        return lists.then_some(AptUse::Removes);
    }
    let sh = cmd.shell();
    if sh.cleans_apt_lists() {
        // `find /var/lib/apt/lists … -delete`, `apt-get dist-clean`.
        return Some(AptUse::Removes);
    }
    match sh.program()? {
        "apt-get" | "apt" | "aptitude" => match sh.subcommand() {
            Some("update") => Some(AptUse::Update),
            Some("clean" | "autoclean" | "autoremove" | "remove" | "purge" | "mark") => None,
            _ => Some(AptUse::Needs),
        },
        "apt-cache" | "apt-file" | "add-apt-repository" => Some(AptUse::Needs),
        // Any other command that names the lists (or a directory above them) reads them
        // by name: `ls /var/lib/apt/lists`, `tar -c /var/lib/apt`, `cp -a / /rootfs`.
        // (`cd /` and `mkdir -p /var/lib/apt/lists/partial` do not read them.)
        "cd" | "pushd" | "mkdir" => None,
        _ => cmd
            .words
            .iter()
            .skip(1)
            .chain(&cmd.redirects)
            .any(|w| names_the_lists(&w.text))
            .then_some(AptUse::Named),
    }
}

/// Whether a word names apt's lists or a directory that holds them.
fn names_the_lists(word: &str) -> bool {
    const LISTS: &str = "/var/lib/apt/lists";
    let path = word.rsplit_once('=').map_or(word, |(_, v)| v);
    word.contains(LISTS)
        || (path.starts_with('/')
            && matches!(
                path.trim_end_matches('/'),
                "" | "/var" | "/var/lib" | "/var/lib/apt"
            ))
}

/// apt-get, apt or aptitude, read by [`apt_use`] (whose `None` means: a subcommand that
/// does not read the lists, `clean`, `remove`, …).
fn is_apt_front_end(cmd: &Cmd) -> bool {
    matches!(cmd.shell().program(), Some("apt-get" | "apt" | "aptitude"))
}

/// What the commands of `script` (its text `text`) do to the package lists, in order;
/// commands for which `skip` holds are left out. A command that runs code this reader
/// cannot see ([`shell::opaque`]), here or in a command substitution, may need them.
pub(super) fn script_apt_uses(
    script: &Script,
    text: &str,
    copied: &dyn Fn(&str) -> bool,
    skip: &dyn Fn(&Cmd) -> bool,
) -> Vec<AptUse> {
    let mut out = Vec::new();
    for cmd in script.cmds.iter().filter(|c| !skip(c)) {
        for w in cmd
            .assignments
            .iter()
            .chain(&cmd.words)
            .chain(&cmd.redirects)
        {
            if w.text.contains("$(") || w.text.contains('`') {
                for sub in shell::substitutions(&w.text) {
                    let s = shell::read(sub);
                    if s.understood {
                        out.extend(script_apt_uses(&s, sub, copied, &|_| false));
                    } else {
                        out.push(AptUse::May);
                    }
                }
            }
        }
        if let Some(u) = apt_use(cmd, text) {
            out.push(u);
        } else if !is_apt_front_end(cmd) && shell::opaque(cmd, copied) {
            out.push(AptUse::May);
        }
    }
    out
}

/// Whether nothing in `text` after its first `apt-get update` reads the lists it fetched: no
/// install, upgrade, build-dep, source, search … and no code this reader cannot see (a script,
/// `bash -c`, `xargs`, a substitution it cannot read). A script it cannot read may read them.
/// The lint's `HR002` asks this, so that the lint and the fixer share one notion of what
/// needs the lists.
pub(crate) fn lists_unread_after_update(text: &str) -> bool {
    let script = shell::read(text);
    if !script.understood {
        return false;
    }
    let uses = script_apt_uses(&script, text, &|_| false, &|_| false);
    let from = uses
        .iter()
        .position(|u| *u == AptUse::Update)
        .map_or(0, |i| i + 1);
    !uses[from..].iter().any(|u| u.reads())
}
