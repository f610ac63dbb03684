//! The build context, as a tar made in Rust and streamed to the engine.
//!
//! The Engine API's `/build` takes the context as one tar body. The `docker` CLI makes that
//! tar itself; headroom talks to the engine directly, so it has to make it too, and it wants
//! three things the CLI does not promise:
//!
//! * **Docker's own choice of files** — `.dockerignore` (or the Dockerfile-specific
//!   `<Dockerfile>.dockerignore` next to the Dockerfile, which BuildKit prefers) applied with
//!   [`crate::ignore`], the Dockerfile and `.dockerignore` always sent, a Dockerfile outside
//!   the context added under a generated name, and symlinks stored as symlinks, never
//!   followed, so a link pointing outside the context cannot leak what it points to;
//! * **a plan before any byte is sent** — [`plan_context`] walks the tree once and returns
//!   the sorted entries and totals, so callers can report the context size up front;
//! * **deterministic, streamed bytes** — [`write_tar`] writes fixed mtimes, uid/gid 0 and no
//!   owner names, keeps permission bits, and reads every file in small pieces;
//!   [`stream_tar`] runs it on a blocking thread behind a small bounded channel, so a
//!   multi-gigabyte context never sits in memory.
//!
//! As with BuildKit, an excluded directory is still sent (with its own mode) when an exception
//! brings back something inside it; the classic CLI leaves such directories for the engine to
//! create. Sockets, FIFOs and device files are left out and listed in
//! [`ContextPlan::skipped`]; hard links are stored as separate regular files.
//!
//! A Dockerfile from outside the context is removed again by the classic builder (`/build`
//! with builder version 1) because the tar's `.dockerignore` names it; BuildKit through the
//! same endpoint (version 2) does not read that file, so there a `COPY . .` would copy the
//! generated Dockerfile too.
//!
//! Two parts: `plan` ([`plan_context`], the entries and their errors) and `write`
//! ([`write_tar`], [`stream_tar`], the tar format). The ignore rules are [`crate::ignore`].

mod plan;
#[cfg(test)]
mod tests;
mod write;

pub use plan::{
    ContextEntry, ContextError, ContextOptions, ContextPlan, EntryData, EntryKind,
    GENERATED_DOCKERFILE, plan_context,
};
pub use write::{CHANNEL_DEPTH, CHUNK_SIZE, DETERMINISTIC_MTIME, stream_tar, write_tar};
