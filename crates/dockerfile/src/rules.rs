//! The rule table and the fix table, as data: what each lint rule is (id, severity, what is
//! wrong, what to do, the fix that answers it) and what each fix is (its printed id,
//! whether it keeps what gets installed, what it does). The lint ([`crate::lint`]) and the
//! fixer ([`crate::fix`]) both read them; neither holds a copy.

use serde::Serialize;

use crate::diagnostic::{Applicability, Severity};

/// A rule: its stable id, default severity, what it means and how to fix it.
#[derive(Debug, Serialize)]
pub struct Rule {
    pub id: &'static str,
    pub severity: Severity,
    /// One line: what is wrong.
    pub title: &'static str,
    /// What to do about it.
    pub hint: &'static str,
    /// The fix of [`crate::fix`] that answers it, if any ([`FixId::safety`] says whether it
    /// keeps what gets installed). The one table of which fix answers which rule.
    pub fix: Option<FixId>,
}

/// Every rule, hadolint's first.
pub static RULES: &[Rule] = &[
    Rule {
        id: "DL3059",
        severity: Severity::Info,
        title: "Multiple consecutive RUN instructions: each is a layer",
        hint: "merge them into one RUN joined with &&",
        fix: Some(FixId::MergeRuns),
    },
    Rule {
        id: "DL3009",
        severity: Severity::Info,
        title: "apt lists are left in the layer after apt-get update",
        hint: "end the same RUN with `&& rm -rf /var/lib/apt/lists/*`, or keep the lists out of the layer with `RUN --mount=type=cache,target=/var/lib/apt/lists …` (not flagged)",
        fix: Some(FixId::AptListsCleanup),
    },
    Rule {
        id: "DL3015",
        severity: Severity::Info,
        title: "apt-get install without --no-install-recommends pulls in extra packages",
        hint: "add --no-install-recommends (changes what is installed: --fix-unsafe)",
        fix: Some(FixId::AptNoInstallRecommends),
    },
    Rule {
        id: "DL3042",
        severity: Severity::Warning,
        title: "pip install without --no-cache-dir keeps pip's cache in the layer",
        hint: "add --no-cache-dir (or set ENV PIP_NO_CACHE_DIR=1), or keep the cache out of the layer and between builds with `RUN --mount=type=cache,target=/root/.cache/pip …` (not flagged)",
        fix: Some(FixId::PipNoCacheDir),
    },
    Rule {
        id: "DL3019",
        severity: Severity::Info,
        title: "apk add without --no-cache keeps the package index in the layer",
        hint: "use `apk add --no-cache`, or `RUN --mount=type=cache,target=/var/cache/apk …` (not flagged)",
        fix: Some(FixId::ApkNoCache),
    },
    Rule {
        id: "DL3032",
        severity: Severity::Warning,
        title: "yum install without `yum clean all` in the same RUN",
        hint: "end the same RUN with `&& yum clean all`, or `RUN --mount=type=cache,target=/var/cache/yum …` (not flagged)",
        fix: None,
    },
    Rule {
        id: "DL3036",
        severity: Severity::Warning,
        title: "zypper install without `zypper clean` in the same RUN",
        hint: "end the same RUN with `&& zypper clean`, or `RUN --mount=type=cache,target=/var/cache/zypp …` (not flagged)",
        fix: None,
    },
    Rule {
        id: "DL3040",
        severity: Severity::Warning,
        title: "dnf install without `dnf clean all` in the same RUN",
        hint: "end the same RUN with `&& dnf clean all`, or `RUN --mount=type=cache,target=/var/cache/libdnf5 …` (not flagged)",
        fix: None,
    },
    Rule {
        id: "DL3060",
        severity: Severity::Info,
        title: "yarn install without `yarn cache clean` in the same RUN",
        hint: "end the same RUN with `&& yarn cache clean`, or `RUN --mount=type=cache,target=/usr/local/share/.cache/yarn …` (not flagged)",
        fix: None,
    },
    Rule {
        id: "HR001",
        severity: Severity::Warning,
        title: "Cleanup in a later layer than the one that made the data: the bytes stay in the image",
        hint: "do the cleanup in the RUN that downloads or installs (--fix moves it there)",
        fix: Some(FixId::MoveCleanup),
    },
    Rule {
        id: "HR002",
        severity: Severity::Warning,
        title: "apt-get update alone in a RUN: its lists are a layer of their own, and a cached update goes stale",
        hint: "run `apt-get update && apt-get install …` in the same RUN",
        fix: Some(FixId::MergeRuns),
    },
    Rule {
        id: "HR003",
        severity: Severity::Warning,
        title: "One package per install RUN, repeated: a layer and a resolver run per package",
        hint: "install the packages in one command (one RUN)",
        fix: Some(FixId::MergeRuns),
    },
    Rule {
        id: "HR004",
        severity: Severity::Warning,
        title: "The whole context is copied before the dependencies are installed: any change to any file re-runs the install",
        hint: "copy the dependency manifests (requirements.txt, package.json, …) first, install, then copy the rest",
        fix: None,
    },
    Rule {
        id: "HR005",
        severity: Severity::Warning,
        title: "An archive is downloaded in one layer and extracted in another: the archive stays in the image",
        hint: "download, extract and delete the archive in one RUN (or `ADD --checksum` + extract in a later stage)",
        fix: None,
    },
    Rule {
        id: "HR008",
        severity: Severity::Warning,
        title: "`RUN chown -R` or `chmod -R` over files a COPY added: every file is written again into a new layer, and the image holds them twice",
        hint: "set the owner and mode when copying: `COPY --chown=user:group` / `COPY --chmod=…`",
        fix: None,
    },
    Rule {
        id: "HR006",
        severity: Severity::Warning,
        title: "Too many layers in the final stage",
        hint: "merge RUN instructions and COPY what belongs together at once",
        fix: Some(FixId::MergeRuns),
    },
    Rule {
        id: "HR007",
        severity: Severity::Warning,
        title: "No .dockerignore next to a large build context: all of it is sent to the builder",
        hint: "add a .dockerignore that leaves out .git, caches, data and build output",
        fix: None,
    },
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id.eq_ignore_ascii_case(id))
}

/// The fixes, by stable id. What each is lives in [`FIXES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FixId {
    MergeRuns,
    MoveCleanup,
    AptListsCleanup,
    PipNoCacheDir,
    ApkNoCache,
    AptNoInstallRecommends,
}

/// A fix: its id, the name printed for it, whether it keeps what gets installed, and what
/// it does.
#[derive(Debug)]
pub struct FixKind {
    pub id: FixId,
    /// As printed and in the JSON: `merge-runs`, `move-cleanup`, …
    pub name: &'static str,
    pub safety: Applicability,
    /// One line: what it does.
    pub title: &'static str,
}

/// Every fix, in the order of [`FixId`] (checked when the crate is built).
pub static FIXES: [FixKind; 6] = [
    FixKind {
        id: FixId::MergeRuns,
        name: "merge-runs",
        safety: Applicability::Safe,
        title: "Consecutive RUNs with the same flags joined into one (`apt-get update` alone folded into the install after it)",
    },
    FixKind {
        id: FixId::MoveCleanup,
        name: "move-cleanup",
        safety: Applicability::Safe,
        title: "A cleanup in a later RUN moved into the RUN that made the data",
    },
    FixKind {
        id: FixId::AptListsCleanup,
        name: "apt-lists-cleanup",
        safety: Applicability::Safe,
        title: "`rm -rf /var/lib/apt/lists/*` added to the last RUN that uses apt",
    },
    FixKind {
        id: FixId::PipNoCacheDir,
        name: "pip-no-cache-dir",
        safety: Applicability::Safe,
        title: "`--no-cache-dir` added to `pip install`",
    },
    FixKind {
        id: FixId::ApkNoCache,
        name: "apk-no-cache",
        safety: Applicability::Safe,
        title: "`--no-cache` added to `apk add`",
    },
    FixKind {
        id: FixId::AptNoInstallRecommends,
        name: "apt-no-install-recommends",
        safety: Applicability::Unsafe,
        title: "`--no-install-recommends` added to `apt-get install` (unsafe: fewer packages)",
    },
];

// Each row of FIXES stands at the position of its id.
const _: () = {
    let mut i = 0;
    while i < FIXES.len() {
        assert!(FIXES[i].id as usize == i);
        i += 1;
    }
};

impl FixId {
    /// What this fix is: its row of [`FIXES`].
    pub fn kind(self) -> &'static FixKind {
        &FIXES[self as usize]
    }

    /// The id as printed: `merge-runs`, `move-cleanup`, …
    pub fn as_str(self) -> &'static str {
        self.kind().name
    }

    /// The lint rules this fix answers, from the rule table ([`RULES`]).
    pub fn rules(self) -> Vec<&'static str> {
        RULES
            .iter()
            .filter(|r| r.fix == Some(self))
            .map(|r| r.id)
            .collect()
    }

    /// Whether the fix keeps what gets installed.
    pub fn safety(self) -> Applicability {
        self.kind().safety
    }
}

impl Serialize for FixId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_rule_is_described_once() {
        let mut seen = BTreeSet::new();
        for r in RULES {
            assert!(seen.insert(r.id), "{} twice", r.id);
            assert!(!r.title.is_empty() && !r.hint.is_empty());
        }
        assert!(rule("dl3059").is_some());
    }

    #[test]
    fn every_fix_is_described_once_and_answers_a_rule() {
        let mut names = BTreeSet::new();
        for f in &FIXES {
            assert!(names.insert(f.name), "{} twice", f.name);
            assert!(!f.title.is_empty());
            assert!(!f.id.rules().is_empty(), "{} answers no rule", f.name);
            assert_eq!(
                serde_json::to_value(f.id).expect("serializes"),
                f.name,
                "the JSON names it as printed"
            );
        }
    }
}
