//! Which GitHub-hosted runner layout this is, and why: the rules are data (`layouts.toml`),
//! the evidence is measured (the root filesystem, a separate `/mnt`, the architecture).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::size::{format_size, parse_size};

/// What the recognition looked at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutEvidence {
    /// The directory standing for the runner's `/` (`--root`, or the target's mount point).
    pub root: String,
    pub root_total_bytes: u64,
    pub root_available_bytes: u64,
    /// `/mnt` under it, when it is a filesystem of its own.
    pub mnt_total_bytes: Option<u64>,
    pub mnt_available_bytes: Option<u64>,
    /// `X64`, `ARM64`: `RUNNER_ARCH` on Actions, else this machine's.
    pub arch: String,
    /// `GITHUB_ACTIONS=true` and `RUNNER_ENVIRONMENT=github-hosted`.
    pub hosted: bool,
    /// Bytes in one of a runner's GB (`HEADROOM_RUNNER_GB`; 10^9 by default).
    pub gb_bytes: u64,
}

/// The layout recognised (none when no rule set held), and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayoutReport {
    pub name: Option<String>,
    /// For a match, each rule that held; otherwise, per layout, the first that did not.
    pub why: Vec<String>,
    pub evidence: LayoutEvidence,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rules {
    arch: BTreeMap<String, String>,
    layout: Vec<Rule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    name: String,
    hosted: Option<bool>,
    root_gb: Option<[f64; 2]>,
    separate_mnt: Option<bool>,
    mnt_gb: Option<[f64; 2]>,
    arch: Option<String>,
}

fn rules() -> Result<Rules, String> {
    toml::from_str(include_str!("layouts.toml"))
        .map_err(|e| format!("crates/disk/src/layouts.toml: {e}"))
}

/// Measure the layout around `root` (the runner's `/`) and recognise it. `env` is the
/// process environment (passed in so that tests can give their own).
pub fn recognise(root: &Path, env: &BTreeMap<String, String>) -> Result<LayoutReport, String> {
    let rules = rules()?;
    let gb_bytes = match env.get("HEADROOM_RUNNER_GB").filter(|v| !v.is_empty()) {
        Some(v) => parse_size(v)
            .ok()
            .filter(|&b| b > 0)
            .ok_or_else(|| format!("HEADROOM_RUNNER_GB={v:?}: give a size, e.g. 4MiB"))?,
        None => 1_000_000_000,
    };
    let vfs = |p: &Path| {
        rustix::fs::statvfs(p)
            .map(|v| (v.f_blocks * v.f_frsize, v.f_bavail * v.f_frsize))
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    let (root_total, root_available) = vfs(root)?;
    let root_dev = std::fs::metadata(root)
        .map_err(|e| format!("{}: {e}", root.display()))?
        .dev();
    let mnt = root.join("mnt");
    let mnt_fs = match std::fs::symlink_metadata(&mnt) {
        // One that cannot be read is not evidence of a second disk.
        Ok(m) if m.is_dir() && m.dev() != root_dev => vfs(&mnt).ok(),
        _ => None,
    };
    let machine = std::env::consts::ARCH;
    let arch = env
        .get("RUNNER_ARCH")
        .filter(|a| !a.is_empty())
        .cloned()
        .or_else(|| rules.arch.get(machine).cloned())
        .unwrap_or_else(|| machine.to_string());
    let evidence = LayoutEvidence {
        root: root.to_string_lossy().into_owned(),
        root_total_bytes: root_total,
        root_available_bytes: root_available,
        mnt_total_bytes: mnt_fs.map(|m| m.0),
        mnt_available_bytes: mnt_fs.map(|m| m.1),
        arch,
        hosted: env.get("GITHUB_ACTIONS").is_some_and(|v| v == "true")
            && env
                .get("RUNNER_ENVIRONMENT")
                .is_some_and(|v| v == "github-hosted"),
        gb_bytes,
    };
    Ok(match_rules(&rules, evidence))
}

fn match_rules(rules: &Rules, evidence: LayoutEvidence) -> LayoutReport {
    let mut misses = Vec::new();
    for rule in &rules.layout {
        match check(rule, &evidence) {
            Ok(why) => {
                return LayoutReport {
                    name: Some(rule.name.clone()),
                    why,
                    evidence,
                };
            }
            Err(miss) => misses.push(format!("not {}: {miss}", rule.name)),
        }
    }
    LayoutReport {
        name: None,
        why: misses,
        evidence,
    }
}

/// Every rule of `rule` that held, in words; or the first that did not.
fn check(rule: &Rule, e: &LayoutEvidence) -> Result<Vec<String>, String> {
    let gb = |bytes: u64| bytes as f64 / e.gb_bytes as f64;
    let size = |bytes: u64| {
        let scaled = if e.gb_bytes == 1_000_000_000 {
            String::new()
        } else {
            format!(" ({})", format_size(bytes))
        };
        format!("{:.0} GB{scaled}", gb(bytes))
    };
    let mut why = Vec::new();
    let mut hold = |ok: bool, text: String| {
        if !ok {
            return Err(text);
        }
        why.push(text);
        Ok(())
    };
    if let Some(hosted) = rule.hosted {
        let text = if e.hosted {
            "a GitHub-hosted runner"
        } else {
            "not a GitHub-hosted runner"
        };
        hold(hosted == e.hosted, text.into())?;
    }
    if let Some([low, high]) = rule.root_gb {
        let g = gb(e.root_total_bytes);
        hold(
            (low..=high).contains(&g),
            format!(
                "root filesystem {}, {} free (rule {low}–{high} GB)",
                size(e.root_total_bytes),
                size(e.root_available_bytes)
            ),
        )?;
    }
    if let Some(separate) = rule.separate_mnt {
        let text = match e.mnt_total_bytes {
            Some(total) => format!("/mnt a filesystem of its own, {}", size(total)),
            None => "no separate /mnt".to_string(),
        };
        hold(separate == e.mnt_total_bytes.is_some(), text)?;
    }
    if let Some([low, high]) = rule.mnt_gb {
        let total = e.mnt_total_bytes.unwrap_or(0);
        hold(
            (low..=high).contains(&gb(total)),
            format!("/mnt {} (rule {low}–{high} GB)", size(total)),
        )?;
    }
    if let Some(arch) = &rule.arch {
        hold(*arch == e.arch, format!("architecture {}", e.arch))?;
    }
    Ok(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evidence(root_gb: u64, mnt_gb: Option<u64>, arch: &str, hosted: bool) -> LayoutEvidence {
        let gb = 4 << 20;
        LayoutEvidence {
            root: "/".into(),
            root_total_bytes: root_gb * gb,
            root_available_bytes: root_gb * gb / 4,
            mnt_total_bytes: mnt_gb.map(|g| g * gb),
            mnt_available_bytes: mnt_gb.map(|g| g * gb),
            arch: arch.into(),
            hosted,
            gb_bytes: gb,
        }
    }

    #[test]
    fn each_layout_is_recognised_by_its_rules_and_nothing_else_is() {
        let rules = rules().expect("layouts.toml parses");
        let name = |e| match_rules(&rules, e).name;
        assert_eq!(
            name(evidence(145, None, "X64", true)).as_deref(),
            Some("public-145")
        );
        assert_eq!(
            name(evidence(72, None, "X64", true)).as_deref(),
            Some("private-72")
        );
        assert_eq!(
            name(evidence(72, Some(74), "X64", true)).as_deref(),
            Some("dual")
        );
        assert_eq!(
            name(evidence(145, None, "ARM64", true)).as_deref(),
            Some("arm")
        );
        // Not on Actions, another size, or a /mnt where none belongs: none, with the reasons.
        let none = match_rules(&rules, evidence(145, None, "X64", false));
        assert_eq!(none.name, None);
        assert_eq!(none.why.len(), rules.layout.len(), "{:?}", none.why);
        assert!(
            none.why[0].contains("not a GitHub-hosted runner"),
            "{:?}",
            none.why
        );
        assert_eq!(name(evidence(100, None, "X64", true)), None);
        assert_eq!(name(evidence(145, Some(74), "X64", true)), None);
        // The reasons name the measured sizes at the scale.
        let hit = match_rules(&rules, evidence(72, None, "X64", true));
        assert!(
            hit.why.iter().any(|w| w.contains("root filesystem 72 GB")),
            "{:?}",
            hit.why
        );
        assert!(
            hit.why.iter().any(|w| w == "no separate /mnt"),
            "{:?}",
            hit.why
        );
    }

    #[test]
    fn a_bad_scale_is_an_error_naming_the_variable() {
        let env = BTreeMap::from([("HEADROOM_RUNNER_GB".to_string(), "lots".to_string())]);
        let e = recognise(Path::new("/"), &env).unwrap_err();
        assert!(e.contains("HEADROOM_RUNNER_GB"), "{e}");
        let here = recognise(Path::new("/"), &BTreeMap::new()).unwrap();
        assert!(!here.evidence.hosted && here.name.is_none(), "{here:?}");
    }
}
