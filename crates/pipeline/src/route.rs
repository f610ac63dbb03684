//! Where the built image goes, chosen to fit the disk (the rules; `stage::output` does the
//! work), and the cache exports held to the Actions cache's budget.
//!
//! On a builder apart from the engine (`docker-container`, `remote`, `kubernetes`: what
//! `docker/setup-buildx-action` makes), `--load` puts the image on the disk several times:
//! the builder's snapshots, its exported blobs, and the copy loaded into the engine (measured
//! at 3–4× the image, `docs/benchmarks.md`). So:
//!
//! - **push**: nothing here needs the image (no smoke test, no inspection): the builder pushes
//!   it (`--push`) and nothing is loaded;
//! - **push-pull**: the smoke test or the inspection needs it here: the builder pushes, its
//!   state is freed (`docker buildx prune`), then the engine pulls the image: the peaks come
//!   one after the other instead of on top of each other. The tags are in the registry before
//!   the smoke test runs (a failed smoke test still fails the run);
//! - **load**: `--load`, as before: when nothing is pushed, or when the disk has room for
//!   [`LOAD_MULTIPLE`] times the image expected (the last report's image);
//! - **engine**: the engine's own builder (the engine backend, or buildx's `docker` driver)
//!   builds into the engine's store: one copy, nothing to route.

use serde::{Deserialize, Serialize};

use headroom_disk::format_size;
use headroom_docker::builder::BuilderFacts;

/// `--route` / `route`: where the image goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteChoice {
    /// Chosen from the builder, the stages that need the image, the free space and the
    /// image's expected size.
    #[default]
    Auto,
    Load,
    Push,
    PushPull,
}

impl std::str::FromStr for RouteChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(RouteChoice::Auto),
            "load" => Ok(RouteChoice::Load),
            "push" => Ok(RouteChoice::Push),
            "push-pull" => Ok(RouteChoice::PushPull),
            other => Err(format!(
                "unknown route {other:?} (auto, load, push or push-pull)"
            )),
        }
    }
}

/// The route taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    Engine,
    Load,
    Push,
    PushPull,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Engine => "engine",
            Route::Load => "load",
            Route::Push => "push",
            Route::PushPull => "push-pull",
        }
    }

    /// Whether the builder pushes the image itself.
    pub fn pushes(self) -> bool {
        matches!(self, Route::Push | Route::PushPull)
    }
}

/// Peak disk of a `--load` build with a push on a container builder, as a multiple of the
/// image (measured at 3.07× for the torch stack and 3.97× for random data: the higher one).
pub const LOAD_MULTIPLE: u64 = 4;

/// What the route is chosen from.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteInputs {
    /// The builder runs apart from the engine.
    pub separate_builder: bool,
    /// The image is pushed (`--push`, the push stage not skipped).
    pub push: bool,
    /// A later stage (smoke, inspect) needs the image in the engine.
    pub needs_local: bool,
    /// Free bytes on the data root's filesystem now, when it is on this machine.
    pub available: Option<u64>,
    /// The image's expected size (the last report's).
    pub expected: Option<u64>,
}

/// The route for `choice`, and why; an error for a route that cannot work here.
pub fn choose(choice: RouteChoice, i: RouteInputs) -> Result<(Route, String), String> {
    if !i.separate_builder {
        let why = "the engine's own builder builds into the engine's store: one copy";
        return match choice {
            RouteChoice::Auto | RouteChoice::Load => Ok((Route::Engine, why.into())),
            _ => Err(format!(
                "route {} needs a builder apart from the engine (a docker-container \
                 builder, --builder); {why}",
                route_name(choice)
            )),
        };
    }
    if choice != RouteChoice::Auto && choice != RouteChoice::Load && !i.push {
        return Err(format!(
            "route {} pushes from the builder: give --push (and do not skip the push stage)",
            route_name(choice)
        ));
    }
    match choice {
        RouteChoice::Load => Ok((Route::Load, "route = \"load\" was asked for".into())),
        RouteChoice::Push if i.needs_local => Err(
            "route push loads nothing, but the smoke test or the inspection needs the image \
             here: use push-pull (or load)"
                .into(),
        ),
        RouteChoice::Push => Ok((Route::Push, "route = \"push\" was asked for".into())),
        RouteChoice::PushPull => Ok((
            Route::PushPull,
            "route = \"push-pull\" was asked for".into(),
        )),
        RouteChoice::Auto => Ok(auto(i)),
    }
}

fn route_name(choice: RouteChoice) -> &'static str {
    match choice {
        RouteChoice::Auto => "auto",
        RouteChoice::Load => "load",
        RouteChoice::Push => "push",
        RouteChoice::PushPull => "push-pull",
    }
}

fn auto(i: RouteInputs) -> (Route, String) {
    if !i.push {
        return (
            Route::Load,
            "nothing is pushed: the image is loaded into the engine".into(),
        );
    }
    if !i.needs_local {
        return (
            Route::Push,
            "nothing here needs the image (no smoke test, no inspection): the builder \
             pushes it and nothing is loaded"
                .into(),
        );
    }
    match (i.expected, i.available) {
        (Some(e), Some(a)) if a >= e.saturating_mul(LOAD_MULTIPLE) => (
            Route::Load,
            format!(
                "{} free holds {LOAD_MULTIPLE}× the expected image ({}): --load",
                format_size(a),
                format_size(e)
            ),
        ),
        (Some(e), Some(a)) => (
            Route::PushPull,
            format!(
                "{} free is under {LOAD_MULTIPLE}× the expected image ({}): push, free the \
                 builder's state, then pull for the smoke test",
                format_size(a),
                format_size(e)
            ),
        ),
        _ => (
            Route::PushPull,
            "the image's size is not known yet (no earlier report): push, free the \
             builder's state, then pull for the smoke test"
                .into(),
        ),
    }
}

/// The Actions cache's size per repository, GitHub's default.
pub const ACTIONS_CACHE_BUDGET: u64 = 10_000_000_000;

/// Hold `type=gha,mode=max` exports to `budget`: `mode=max` exports every stage's layers,
/// at least the image's own; when the last image alone (`expected`) took more than half the
/// budget, the export is switched to `mode=min` (the final image's layers only) and the
/// reason returned.
pub fn fit_actions_cache(
    cache_to: &mut [String],
    budget: u64,
    expected: Option<u64>,
) -> Option<String> {
    let expected = expected?;
    if expected <= budget / 2 {
        return None;
    }
    let mut switched = false;
    for c in cache_to.iter_mut() {
        let parts: Vec<&str> = c.split(',').map(str::trim).collect();
        if parts.contains(&"type=gha") && parts.contains(&"mode=max") {
            *c = parts
                .iter()
                .map(|p| if *p == "mode=max" { "mode=min" } else { p })
                .collect::<Vec<_>>()
                .join(",");
            switched = true;
        }
    }
    switched.then(|| {
        format!(
            "the Actions cache export went from mode=max to mode=min: the last image was {}, \
             over half the cache budget of {} (mode=max would also export every earlier \
             stage's layers)",
            format_size(expected),
            format_size(budget)
        )
    })
}

/// The report's `builder`: the builder, the route and the builder's disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BuilderReport {
    /// The route taken and why.
    pub route: Option<Route>,
    pub why: String,
    /// The builder, as buildx knows it (absent for the engine backend).
    pub facts: Option<BuilderFacts>,
    /// The builder's state before the build, after it, and after it was freed.
    pub state_before_bytes: Option<u64>,
    pub state_after_build_bytes: Option<u64>,
    pub state_after_prune_bytes: Option<u64>,
    /// Whether the builder's state was pruned after the push.
    pub pruned: bool,
    /// Cache exports that failed while the image was built (and pushed): warnings.
    pub cache_warnings: Vec<String>,
    /// Changes made to fit the budget (the Actions cache's mode).
    pub notes: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inputs() -> RouteInputs {
        RouteInputs {
            separate_builder: true,
            push: true,
            needs_local: true,
            available: Some(14_000_000_000),
            expected: Some(6_200_000_000),
        }
    }

    #[test]
    fn auto_pushes_straight_when_nothing_local_needs_the_image() {
        let i = RouteInputs {
            needs_local: false,
            ..inputs()
        };
        assert_eq!(choose(RouteChoice::Auto, i).unwrap().0, Route::Push);
    }

    #[test]
    fn auto_loads_only_when_the_budget_allows() {
        assert_eq!(
            choose(RouteChoice::Auto, inputs()).unwrap().0,
            Route::PushPull
        );
        let roomy = RouteInputs {
            available: Some(30_000_000_000),
            ..inputs()
        };
        assert_eq!(choose(RouteChoice::Auto, roomy).unwrap().0, Route::Load);
        let unknown = RouteInputs {
            expected: None,
            ..inputs()
        };
        assert_eq!(
            choose(RouteChoice::Auto, unknown).unwrap().0,
            Route::PushPull
        );
        let no_push = RouteInputs {
            push: false,
            ..inputs()
        };
        assert_eq!(choose(RouteChoice::Auto, no_push).unwrap().0, Route::Load);
    }

    #[test]
    fn the_engines_builder_has_one_route_and_impossible_routes_are_refused() {
        let engine = RouteInputs {
            separate_builder: false,
            ..inputs()
        };
        assert_eq!(choose(RouteChoice::Auto, engine).unwrap().0, Route::Engine);
        assert!(choose(RouteChoice::Push, engine).is_err());
        let e = choose(RouteChoice::Push, inputs()).unwrap_err();
        assert!(e.contains("push-pull"), "{e}");
        let no_push = RouteInputs {
            push: false,
            ..inputs()
        };
        assert!(
            choose(RouteChoice::PushPull, no_push)
                .unwrap_err()
                .contains("--push")
        );
        assert!("sideways".parse::<RouteChoice>().is_err());
        assert_eq!(
            "push-pull".parse::<RouteChoice>().unwrap(),
            RouteChoice::PushPull
        );
    }

    #[test]
    fn mode_max_gives_way_to_mode_min_when_the_last_image_would_not_fit() {
        let mut c = vec!["type=gha,mode=max".to_string(), "type=inline".to_string()];
        assert!(fit_actions_cache(&mut c, ACTIONS_CACHE_BUDGET, Some(1_000_000_000)).is_none());
        assert_eq!(c[0], "type=gha,mode=max");
        let note = fit_actions_cache(&mut c, ACTIONS_CACHE_BUDGET, Some(6_200_000_000)).unwrap();
        assert_eq!(c[0], "type=gha,mode=min");
        assert!(note.contains("mode=min"), "{note}");
        assert!(fit_actions_cache(&mut c, ACTIONS_CACHE_BUDGET, None).is_none());
    }
}
