//! Progress reporting: the library never prints; it tells a [`Progress`] what it is doing.

use crate::action::Action;
use crate::measure::Size;

/// Something happening during planning or reclaiming.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Sizing an item's paths.
    Measuring {
        item: &'a str,
    },
    Measured {
        item: &'a str,
        size: Size,
    },
    /// Reclaim of an item begins; `bytes`/`files` are what the plan measured.
    Started {
        item: &'a str,
        bytes: u64,
        files: u64,
    },
    /// Some more entries of an item were removed.
    Removed {
        item: &'a str,
        files: u64,
    },
    Finished {
        item: &'a str,
        action: Action,
        freed_bytes: u64,
        seconds: f64,
    },
}

/// Receives [`Event`]s; called from several threads at once.
pub trait Progress: Sync {
    fn event(&self, event: Event<'_>);
}

impl<F: Fn(Event<'_>) + Sync> Progress for F {
    fn event(&self, event: Event<'_>) {
        self(event)
    }
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&self, _: Event<'_>) {}
}
