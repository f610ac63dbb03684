//! `headroom-disk`: measure, plan, free and watch disk space on CI runners.
//!
//! A hosted runner guarantees little free disk, and big image builds need more. This crate
//! does the freeing as a library, so that a pipeline (or a sibling repository) can:
//!
//! - ask which filesystem holds a path and how full it is ([`usage`]);
//! - measure what deleting a set of paths would free, as `du -x` counts it ([`measure`]);
//! - read the catalog of reclaimable runner software, kept as data ([`Catalog`]);
//! - plan the cheapest set of items that reaches a free-space target ([`plan()`]);
//! - reclaim a plan in parallel, in the foreground or the background ([`reclaim()`], [`spawn`]);
//! - or do all of that in one call: [`free_until`];
//! - watch a filesystem's free space and its low-water mark while work goes on ([`Watchdog`]).
//!
//! Safety is the design rule: deletion walks directories through file descriptors, never
//! follows a symbolic link, never enters another filesystem, and never touches a path that
//! the plan did not name. The library never prints; progress arrives through [`Progress`].
//!
//! Code map, from the entry points down (imports run one way: no module imports, directly or
//! through others, a module that imports it):
//! - `reclaim`: carry a plan out ([`reclaim()`], [`spawn`], [`free_until`]) through `remove`
//!   (descriptor-relative deletion), `lock` (one deleter per tree), `host` (Docker, apt, swap)
//!   and `accounting` (freed bytes checked against the filesystem's own figure);
//! - `report`: what a reclaim did or would do ([`FreeReport`]), as serde types and Markdown;
//! - `plan`: which items to reclaim ([`plan()`], [`Plan`], the [`Protected`] entries), from the
//!   `catalog`, sized by `measure`, each path pinned through `resolve` beneath an anchor;
//! - `progress`: [`Progress`] and its [`Event`]s; `action`: the [`Action`] that names an item's
//!   outcome, in events and in reports alike;
//! - `watch` ([`Watchdog`]), `place` (where else a data root could go), `usage` and `mounts`
//!   (which filesystem holds a path, how full it is);
//! - the ground: `fsio` (directory access, the I/O pool), `size`, `atomic`, `error`.
//!
//! ```no_run
//! use headroom_disk::{Catalog, Environment, NoProgress, PlanRequest, ReclaimOptions, Selection};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plan = headroom_disk::plan(
//!     &Catalog::builtin(),
//!     &Environment::host(),
//!     &PlanRequest {
//!         target_path: "/var/lib/docker".into(),
//!         need: Some(headroom_disk::parse_size("30G")?),
//!         selection: Selection::default(),
//!         protect: vec![],
//!     },
//!     &NoProgress,
//! )?;
//! // Go on with other work while the disk is freed; join when the space is needed.
//! let handle =
//!     headroom_disk::spawn(plan, ReclaimOptions::default(), std::sync::Arc::new(NoProgress))?;
//! let report = handle.join().expect("the reclaim thread");
//! assert!(report.target_met);
//! # Ok(())
//! # }
//! ```

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod accounting;
mod action;
mod atomic;
mod catalog;
mod error;
mod fsio;
mod host;
mod layout;
mod lock;
mod measure;
mod mounts;
mod place;
mod plan;
mod progress;
mod reclaim;
mod remove;
mod report;
mod resolve;
mod size;
mod usage;
mod watch;

pub use accounting::Accounting;
pub use action::Action;
pub use atomic::{check_replaceable, write_atomically};
pub use catalog::{Catalog, CostModel, ItemSpec, ReclaimKind, UserConfig};
pub use error::{Error, Result};
pub use host::docker_data_root;
pub use layout::{LayoutEvidence, LayoutReport, recognise as recognise_layout};
pub use measure::{Measurement, Size, measure, measure_excluding};
pub use mounts::{Mount, MountTable};
pub use place::{Candidate, DATA_ROOT_FS_TYPES, candidates, statvfs_probe};
pub use plan::{
    Decision, Environment, Pin, Plan, PlanRequest, PlannedItem, Protected, Selection, plan,
};
pub use progress::{Event, NoProgress, Progress};
pub use reclaim::{ReclaimHandle, ReclaimOptions, free_until, reclaim, spawn};
pub use remove::{RemoveOutcome, remove_tree};
pub use report::{FilesystemReport, FreeReport, ItemReport};
pub use resolve::Identity;
pub use size::{format_size, parse_size};
pub use usage::{FsUsage, available_bytes, usage};
pub use watch::{Sample, Timeline, WatchConfig, Watchdog};
