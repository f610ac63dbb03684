//! The stages: the declared list ([`Stage`]), and one module per stage with its I/O, how it
//! fills the report and what it tells the reporter — `lint`, [`place`] and `free` (the free
//! stage: placement first, then deleting), `build` (with `output`: the builder and the
//! route its image takes), `inspect`, `smoke`, `push`. Each stage
//! is a function of the run's state (`context::Run`) returning its `Outcome`; the
//! sequencer (`crate::run`) calls them in order and records them.
//!
//! [`Stage`] imports nothing of the crate: the report, the settings and the reporter name
//! stages, and the stage modules beside it import those, never the other way round.

use serde::{Deserialize, Serialize};

pub(crate) mod build;
pub(crate) mod context;
pub(crate) mod free;
pub(crate) mod inspect;
pub(crate) mod lint;
pub(crate) mod output;
pub mod place;
pub(crate) mod preflight;
pub(crate) mod push;
pub(crate) mod smoke;

/// A stage of the pipeline, in the order it runs. Cheap checks come first: the lint (with
/// the engine's answer and the registry credentials) before the first byte is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Lint,
    Free,
    Build,
    Inspect,
    Smoke,
    Push,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 6] = [
        Stage::Lint,
        Stage::Free,
        Stage::Build,
        Stage::Inspect,
        Stage::Smoke,
        Stage::Push,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Lint => "lint",
            Stage::Free => "free",
            Stage::Build => "build",
            Stage::Inspect => "inspect",
            Stage::Smoke => "smoke",
            Stage::Push => "push",
        }
    }

    /// The stage names joined for help texts and errors: `lint, free, …`.
    pub fn list() -> String {
        Stage::ALL.map(Stage::name).join(", ")
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage name that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?}: unknown stage (the stages: {})", Stage::list())]
pub struct UnknownStage {
    pub name: String,
}

impl std::str::FromStr for Stage {
    type Err = UnknownStage;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| UnknownStage {
                name: s.to_string(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_lint_comes_before_the_free_stage() {
        for s in Stage::ALL {
            assert_eq!(s.name().parse::<Stage>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert!(Stage::Lint < Stage::Free && Stage::Free < Stage::Build);
        let err = "deploy".parse::<Stage>().unwrap_err();
        assert!(
            err.to_string()
                .contains("lint, free, build, inspect, smoke, push")
        );
    }
}
