//! The actions a workflow `uses:`, emulated by what they do on a hosted runner: checkout
//! copies the tree into the workspace; `docker/setup-buildx-action` creates and selects a
//! `docker-container` builder from the BuildKit image; toolchain, cache and runtime actions
//! are no-ops here (the box's `cargo xtask` is prebuilt, and GitHub's cache service cannot be
//! reached); upload-artifact copies its path aside; `./` (or `./dir`) is a local composite
//! action, whose `action.yml` steps run like the job's.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

/// What an action does in the box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Checkout,
    SetupBuildx,
    UploadArtifact,
    /// Nothing to do here; why.
    NoOp(&'static str),
}

/// The actions the box knows, by name (before `@`).
const KNOWN: &[(&str, Kind)] = &[
    ("actions/checkout", Kind::Checkout),
    ("docker/setup-buildx-action", Kind::SetupBuildx),
    ("actions/upload-artifact", Kind::UploadArtifact),
    (
        "dtolnay/rust-toolchain",
        Kind::NoOp("the box's cargo xtask is prebuilt"),
    ),
    (
        "actions-rust-lang/setup-rust-toolchain",
        Kind::NoOp("the box's cargo xtask is prebuilt"),
    ),
    (
        "Swatinem/rust-cache",
        Kind::NoOp("GitHub's cache service cannot be reached"),
    ),
    (
        "actions/cache",
        Kind::NoOp("GitHub's cache service cannot be reached"),
    ),
    (
        "crazy-max/ghaction-github-runtime",
        Kind::NoOp("no Actions runtime (cache service URL and token) to export here"),
    ),
    (
        "docker/login-action",
        Kind::NoOp("the box's steps log in with the credentials they are given"),
    ),
];

/// A `uses:` the box can run: a known action, or a local composite action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Uses {
    Known(&'static str, Kind),
    /// The directory holding `action.yml`.
    Local(PathBuf),
}

/// What `uses` is, with the local action's directory resolved under `repo` (the checkout).
pub fn known(uses: &str, repo: &Path) -> Result<Uses> {
    if let Some(rel) = uses.strip_prefix("./") {
        let dir = repo.join(rel);
        if !["action.yml", "action.yaml"]
            .iter()
            .any(|f| dir.join(f).is_file())
        {
            bail!(
                "uses: {uses}: no action.yml in {} (a local action is read after checkout)",
                dir.display()
            );
        }
        return Ok(Uses::Local(dir));
    }
    let name = uses.split('@').next().unwrap_or(uses);
    match KNOWN.iter().find(|(n, _)| *n == name) {
        Some((n, kind)) => Ok(Uses::Known(n, *kind)),
        None => bail!(
            "uses: {uses}: the runner box does not emulate this action (it knows {}, and local \
             ./ actions)",
            KNOWN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// The `action.yml` (or `.yaml`) in `dir`.
pub fn action_file(dir: &Path) -> PathBuf {
    let yml = dir.join("action.yml");
    if yml.is_file() {
        yml
    } else {
        dir.join("action.yaml")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_actions_and_local_ones_resolve_and_others_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            known("actions/checkout@v4", tmp.path()).unwrap(),
            Uses::Known("actions/checkout", Kind::Checkout)
        );
        assert!(known("./", tmp.path()).is_err());
        std::fs::write(tmp.path().join("action.yml"), "runs: {}").unwrap();
        assert_eq!(
            known("./", tmp.path()).unwrap(),
            Uses::Local(tmp.path().join(""))
        );
        let e = known("evil/action@v1", tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("evil/action") && e.contains("actions/checkout"),
            "{e}"
        );
    }
}
