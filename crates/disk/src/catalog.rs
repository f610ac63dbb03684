//! The catalog of reclaimable items, kept as data (`catalog.toml`, embedded), and the user's
//! additions and protected paths.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

const BUILTIN: &str = include_str!("catalog.toml");

/// How an item's space is reclaimed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReclaimKind {
    #[default]
    Delete,
    Swap,
    DockerImages,
    DockerBuildCache,
    AptClean,
    AptRemove,
}

impl ReclaimKind {
    /// Kinds that act on the host through a service or package manager, which `--root` rules out.
    pub fn needs_host(self) -> bool {
        matches!(
            self,
            ReclaimKind::DockerImages
                | ReclaimKind::DockerBuildCache
                | ReclaimKind::AptClean
                | ReclaimKind::AptRemove
        )
    }
}

/// One reclaimable item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub paths: Vec<String>,
    /// Environment variables whose values are further paths of the item.
    #[serde(default)]
    pub env_paths: Vec<String>,
    #[serde(default)]
    pub reclaim: ReclaimKind,
    /// Package name patterns (`*` globs) for `apt-remove`.
    #[serde(default)]
    pub packages: Vec<String>,
    /// Chosen only when named explicitly.
    #[serde(default)]
    pub opt_in: bool,
    #[serde(default)]
    pub fixed_seconds: f64,
}

/// How long reclaiming is estimated to take, to order items by cost per byte.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    pub seconds_per_file: f64,
    pub seconds_per_gb: f64,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            seconds_per_file: 0.00004,
            seconds_per_gb: 0.05,
        }
    }
}

impl CostModel {
    pub fn estimate(&self, item: &ItemSpec, files: u64, bytes: u64) -> f64 {
        item.fixed_seconds
            + files as f64 * self.seconds_per_file
            + bytes as f64 / 1e9 * self.seconds_per_gb
    }
}

/// The set of items headroom knows how to reclaim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// Roots that paths from the environment and from users' items must lie below.
    #[serde(default = "builtin_allowed_roots")]
    pub allowed_roots: Vec<String>,
    #[serde(default)]
    pub cost: CostModel,
    #[serde(default, rename = "item")]
    pub items: Vec<ItemSpec>,
}

/// The user's part of the configuration (the `[free]` table of `headroom.toml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserConfig {
    /// Paths never deleted, nor anything below them.
    #[serde(default)]
    pub protect: Vec<String>,
    /// Items added to the catalog; one with a built-in name replaces it.
    #[serde(default, rename = "item")]
    pub items: Vec<ItemSpec>,
}

#[derive(Deserialize)]
struct ConfigFile {
    #[serde(default)]
    free: UserConfig,
    // Other tools' tables (`[image]`, …) live in the same file.
    #[serde(flatten)]
    _rest: toml::Table,
}

impl UserConfig {
    /// Parse the `[free]` table of a configuration file; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| Error::Config {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        for p in &file.free.protect {
            if !p.starts_with('/') {
                return Err(Error::Config {
                    origin: origin.to_string(),
                    message: format!("free.protect: {p:?} is not an absolute path"),
                });
            }
        }
        Ok(file.free)
    }
}

impl Catalog {
    /// The catalog shipped with headroom.
    pub fn builtin() -> Self {
        // The embedded catalog is checked by a unit test; failing here is a build defect.
        Self::from_toml(BUILTIN, "built-in catalog").expect("the built-in catalog is valid")
    }

    /// Parse and validate a catalog; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self> {
        let catalog: Catalog = toml::from_str(text).map_err(|e| Error::Config {
            origin: origin.to_string(),
            message: e.to_string(),
        })?;
        for item in &catalog.items {
            validate(item, origin)?;
        }
        let mut names: Vec<&str> = catalog.items.iter().map(|i| i.name.as_str()).collect();
        names.sort_unstable();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Config {
                origin: origin.to_string(),
                message: format!("item {:?} is defined twice", w[0]),
            });
        }
        Ok(catalog)
    }

    /// This catalog with the user's items added (same name: replaced). Their paths must lie
    /// below [`Catalog::allowed_roots`].
    pub fn with_user(mut self, user: &UserConfig, origin: &str) -> Result<Self> {
        for item in &user.items {
            validate(item, origin)?;
            for p in &item.paths {
                if !self.allows(p) {
                    return Err(Error::Config {
                        origin: origin.to_string(),
                        message: format!(
                            "item {:?}: path {p:?} is not below an allowed root ({}); refused",
                            item.name,
                            self.allowed_roots.join(", ")
                        ),
                    });
                }
            }
            match self.items.iter_mut().find(|i| i.name == item.name) {
                Some(existing) => *existing = item.clone(),
                None => self.items.push(item.clone()),
            }
        }
        Ok(self)
    }

    /// True when `path` (absolute, as in the catalog) lies strictly below an allowed root.
    pub fn allows(&self, path: &str) -> bool {
        valid_item_path(path).is_ok()
            && self.allowed_roots.iter().any(|root| {
                let p = std::path::Path::new(path);
                p != std::path::Path::new(root) && p.starts_with(root)
            })
    }

    pub fn get(&self, name: &str) -> Option<&ItemSpec> {
        self.items.iter().find(|i| i.name == name)
    }

    pub fn names(&self) -> Vec<&str> {
        self.items.iter().map(|i| i.name.as_str()).collect()
    }

    /// Check that every name exists; `origin` is the flag or file that gave them.
    pub fn check_names(&self, names: &[String], origin: &str) -> Result<()> {
        for name in names {
            if self.get(name).is_none() {
                return Err(Error::UnknownItem {
                    name: name.clone(),
                    origin: origin.to_string(),
                    known: self.names().join(", "),
                });
            }
        }
        Ok(())
    }
}

fn builtin_allowed_roots() -> Vec<String> {
    Catalog::builtin().allowed_roots
}

/// An item path must be absolute and plain: no `.` or `..`, and at least one name below `/`.
pub(crate) fn valid_item_path(p: &str) -> std::result::Result<(), &'static str> {
    use std::path::Component;
    if !p.starts_with('/') {
        return Err("is not absolute");
    }
    let mut names = 0;
    for c in std::path::Path::new(p).components() {
        match c {
            Component::RootDir => {}
            Component::Normal(_) => names += 1,
            Component::CurDir | Component::ParentDir | Component::Prefix(_) => {
                return Err("contains '.' or '..'");
            }
        }
    }
    if names == 0 || p.split('/').any(|part| part == "." || part == "..") {
        return Err(if names == 0 {
            "names the root directory; refused"
        } else {
            "contains '.' or '..'"
        });
    }
    Ok(())
}

fn validate(item: &ItemSpec, origin: &str) -> Result<()> {
    let bad = |message: String| Error::Config {
        origin: origin.to_string(),
        message,
    };
    let name = &item.name;
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !name_ok {
        return Err(bad(format!(
            "item name {name:?} must be lower-case letters, digits and '-'"
        )));
    }
    for p in &item.paths {
        valid_item_path(p).map_err(|why| bad(format!("item {name:?}: path {p:?} {why}")))?;
    }
    let needs_paths = matches!(item.reclaim, ReclaimKind::Delete | ReclaimKind::Swap);
    if needs_paths && item.paths.is_empty() && item.env_paths.is_empty() {
        return Err(bad(format!("item {name:?}: has no paths")));
    }
    if item.reclaim == ReclaimKind::AptRemove && item.packages.is_empty() {
        return Err(bad(format!("item {name:?}: apt-remove needs `packages`")));
    }
    if !(item.fixed_seconds.is_finite() && item.fixed_seconds >= 0.0) {
        return Err(bad(format!("item {name:?}: fixed_seconds must be >= 0")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_has_the_runner_items() {
        let c = Catalog::builtin();
        for name in [
            "android",
            "dotnet",
            "haskell",
            "codeql",
            "toolcache",
            "swift",
            "powershell",
            "chromium",
            "boost",
            "swap",
            "docker-images",
            "docker-build-cache",
            "apt-cache",
            "large-packages",
        ] {
            assert!(c.get(name).is_some(), "{name} missing");
        }
        assert!(c.get("large-packages").unwrap().opt_in);
        assert_eq!(c.get("swap").unwrap().reclaim, ReclaimKind::Swap);
        assert_eq!(
            c.get("toolcache").unwrap().env_paths,
            ["AGENT_TOOLSDIRECTORY"]
        );
    }

    #[test]
    fn config_errors_name_the_file_and_line() {
        let err = UserConfig::from_toml("[free]\nprotect = [\"/a\"]\nbogus = 1\n", "headroom.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("headroom.toml"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = UserConfig::from_toml("[free]\nprotect = [\"rel\"]\n", "h.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an absolute path"), "{err}");
    }

    #[test]
    fn user_items_are_validated_and_merged() {
        let user = UserConfig::from_toml(
            "[image]\nx = 1\n[free]\n[[free.item]]\nname = \"conda\"\npaths = [\"/usr/share/miniconda\"]\n",
            "h.toml",
        )
        .unwrap();
        let c = Catalog::builtin().with_user(&user, "h.toml").unwrap();
        assert!(c.get("conda").is_some());
        for bad in [
            "[[free.item]]\nname = \"Bad Name\"\npaths = [\"/x\"]\n",
            "[[free.item]]\nname = \"x\"\npaths = [\"relative\"]\n",
            "[[free.item]]\nname = \"x\"\npaths = [\"/\"]\n",
            "[[free.item]]\nname = \"x\"\npaths = [\"/.\"]\n",
            "[[free.item]]\nname = \"x\"\npaths = [\"//\"]\n",
            "[[free.item]]\nname = \"x\"\npaths = [\"/a/./b\"]\n",
            "[[free.item]]\nname = \"x\"\npaths = [\"/a/../..\"]\n",
            "[[free.item]]\nname = \"x\"\n",
        ] {
            let user = UserConfig::from_toml(bad, "h.toml").unwrap();
            let err = Catalog::builtin().with_user(&user, "h.toml").unwrap_err();
            assert!(err.to_string().starts_with("h.toml: item"), "{err}");
        }
        let err = Catalog::builtin()
            .check_names(&["androi".to_string()], "--only")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"androi\" in --only") && err.contains("android"),
            "{err}"
        );
    }
}
