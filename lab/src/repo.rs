//! Where the repository is: the lab reads its workloads (docker/, the lint corpus) and writes
//! its results (target/, docs/benchmarks.md) there.

use std::path::{Path, PathBuf};

/// The repository root: the parent of this crate's directory.
pub fn project_root() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| dir.to_path_buf())
}
