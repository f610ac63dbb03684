//! Cleanup commands and the caches they remove: `rm -rf` of apt's lists and cache, of pip's
//! cache in root's home or of a file named under /tmp, and `apt-get clean`.

use crate::ast::{Instruction, Keyword};
use crate::shell::{Cmd, Tok};

/// A cache a cleanup command removes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Cache {
    /// `/var/lib/apt/lists`, `/var/cache/apt` (and `apt-get clean`).
    Apt,
    /// pip's cache in root's home.
    Pip,
    /// One named file or directory under `/tmp` or `/var/tmp` (a download).
    Tmp(String),
}

impl Cache {
    /// Whether an instruction's text shows it may make or use this cache; the cleanup
    /// belongs after the last one that does.
    pub(super) fn used_by(&self, text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        match self {
            Cache::Apt => lower.contains("apt"),
            Cache::Pip => lower.contains("pip"),
            Cache::Tmp(p) => text.contains(p.as_str()),
        }
    }

    /// Whether an instruction between the maker and the cleanup could touch the cache
    /// (or change where it is) without being a maker itself.
    pub(super) fn disturbed_by(&self, inst: &Instruction, text: &str) -> bool {
        let lower = text.to_ascii_lowercase();
        match inst.keyword {
            Keyword::Run => matches!(self, Cache::Tmp(_)) && lower.contains("tmp"),
            // Another user, another shell, a volume (later writes discarded), another stage.
            Keyword::User | Keyword::Shell | Keyword::Volume | Keyword::From => true,
            Keyword::Copy | Keyword::Add | Keyword::Env | Keyword::Arg | Keyword::Workdir => {
                match self {
                    Cache::Apt => lower.contains("apt"),
                    Cache::Pip => ["pip", ".cache", "home", "xdg"]
                        .iter()
                        .any(|w| lower.contains(w)),
                    Cache::Tmp(_) => lower.contains("tmp"),
                }
            }
            _ => false,
        }
    }

    /// Paths a mount on which would make the cleanup act on the mount instead of the
    /// layer.
    pub(super) fn paths(&self) -> Vec<&str> {
        match self {
            Cache::Apt => vec!["/var/lib/apt/lists", "/var/cache/apt"],
            Cache::Pip => vec!["/root/.cache/pip"],
            Cache::Tmp(p) => vec![p.as_str()],
        }
    }
}

/// A command that only removes caches: `rm -rf <known cache paths>` or `apt-get clean`.
#[derive(Debug, Clone)]
pub(super) struct Cleanup {
    /// `rm`'s options as written (`-rf`); empty for `apt-get clean`.
    pub(super) options: Vec<String>,
    /// What it removes: the cache and the operand as written (`apt-get clean` has one
    /// item, with no operand).
    pub(super) items: Vec<(Cache, String)>,
}

pub(super) fn cleanup_of(cmd: &Cmd, script: &str) -> Option<Cleanup> {
    if !cmd.assignments.is_empty() || !cmd.redirects.is_empty() {
        return None;
    }
    let raw = |t: &Tok| script.get(t.range.clone()).unwrap_or("").to_string();
    let first = cmd.words.first()?;
    let rest = cmd.words.get(1..).unwrap_or_default();
    // Only plain words: quotes would change what `~` and globs do.
    if cmd.words.iter().any(|w| raw(w) != w.text) {
        return None;
    }
    match first.text.as_str() {
        "rm" | "/bin/rm" | "/usr/bin/rm" => {
            let mut options = Vec::new();
            let mut items = Vec::new();
            let mut operands_only = false;
            for w in rest {
                let t = w.text.as_str();
                if !operands_only && t == "--" {
                    operands_only = true;
                    options.push(t.to_string());
                } else if !operands_only && t.starts_with('-') {
                    let short = t.len() > 1
                        && !t.starts_with("--")
                        && t.chars()
                            .skip(1)
                            .all(|c| matches!(c, 'r' | 'R' | 'f' | 'v'));
                    let long = matches!(t, "--recursive" | "--force" | "--verbose");
                    if !short && !long {
                        return None;
                    }
                    options.push(t.to_string());
                } else {
                    items.push((cache_of_path(t)?, t.to_string()));
                }
            }
            (!items.is_empty()).then_some(Cleanup { options, items })
        }
        "apt-get" | "apt" => {
            let mut sub = None;
            for w in rest {
                match w.text.as_str() {
                    "-y" | "-q" | "-qq" | "--yes" | "--quiet" | "--assume-yes" => {}
                    "clean" | "autoclean" if sub.is_none() => sub = Some(()),
                    _ => return None,
                }
            }
            sub.map(|()| Cleanup {
                options: Vec::new(),
                items: vec![(Cache::Apt, String::new())],
            })
        }
        _ => None,
    }
}

/// The cache an `rm` operand belongs to, for the paths whose maker can be found.
pub(super) fn cache_of_path(p: &str) -> Option<Cache> {
    if p.contains("..") {
        return None;
    }
    let under = |dir: &str| p == dir || p.strip_prefix(dir).is_some_and(|r| r.starts_with('/'));
    if !p.contains('$') && (under("/var/lib/apt/lists") || under("/var/cache/apt")) {
        return Some(Cache::Apt);
    }
    for home in ["/root", "~", "$HOME", "${HOME}"] {
        if let Some(rest) = p.strip_prefix(home)
            && matches!(rest, "/.cache/pip" | "/.cache/pip/" | "/.cache/pip/*")
        {
            return Some(Cache::Pip);
        }
    }
    let named = p
        .strip_prefix("/tmp/")
        .or_else(|| p.strip_prefix("/var/tmp/"))
        .is_some_and(|rest| {
            !rest.trim_matches('/').is_empty()
                && !rest.contains(|c: char| "*?[]{}$~`\\".contains(c))
        });
    named.then(|| Cache::Tmp(p.trim_end_matches('/').to_string()))
}
