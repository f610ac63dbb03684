//! Reading the configuration files: where headroom.toml is, a file's text, and the one
//! error type every reader of a file or flag returns ([`ConfigError`], naming the file with
//! its line, or the flag). The settings, the lint's `[lint]` table and the inspect gate's
//! thresholds all read through here; this module imports none of them.

use std::path::{Path, PathBuf};

/// A configuration file or flag that cannot be used: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// The file (with `:LINE` when known) or the flag.
    pub origin: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(origin: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            origin: origin.into(),
            message: message.into(),
        }
    }

    /// A TOML error, located as `FILE:LINE:COLUMN`.
    pub fn toml(origin: &str, text: &str, e: &toml::de::Error) -> ConfigError {
        let at = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("{origin}:{line}:{column}")
        });
        ConfigError::new(at.unwrap_or_else(|| origin.to_string()), e.message())
    }
}

/// A configuration file's text; a missing or unreadable file names itself.
pub(crate) fn read_config(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(path.display().to_string(), e.to_string()))
}

/// headroom.toml in use: the one given, else ./headroom.toml when there is one.
pub fn tool_config_path(given: Option<&Path>) -> Option<PathBuf> {
    match given {
        Some(p) => Some(p.to_path_buf()),
        None => Some(PathBuf::from("headroom.toml")).filter(|p| p.is_file()),
    }
}
