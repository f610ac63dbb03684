//! What happened to an item: the one word that progress events and reports share.

use serde::{Deserialize, Serialize};

/// What happened to an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Removed,
    /// Removed in part: something of the item left it mid-walk (renamed out) and was kept.
    Partial,
    Planned,
    Skipped,
    Failed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Removed => "removed",
            Action::Partial => "partial",
            Action::Planned => "planned",
            Action::Skipped => "skipped",
            Action::Failed => "failed",
        }
    }
}
