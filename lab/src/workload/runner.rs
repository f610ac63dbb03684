//! A hosted runner's preinstalled software, scaled down to a simulated disk: synthetic files
//! at the catalog's paths, as much of each as `runner.toml` says a GitHub-hosted runner has.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::signals;

/// The runner's disk, as data (`runner.toml`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerLayout {
    pub disk_gb: f64,
    pub free_gb: f64,
    #[serde(rename = "area")]
    pub areas: Vec<Area>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    pub path: String,
    pub gb: f64,
    pub mean_file_kb: u64,
}

/// The layout of `runner.toml`, checked to add up.
pub fn runner_layout() -> Result<RunnerLayout> {
    let layout: RunnerLayout =
        toml::from_str(include_str!("runner.toml")).context("lab/src/workload/runner.toml")?;
    let filled: f64 = layout.areas.iter().map(|a| a.gb).sum();
    if (filled + layout.free_gb - layout.disk_gb).abs() > 0.01 {
        bail!(
            "lab/src/workload/runner.toml: areas ({filled} GB) and free_gb ({}) do not add up \
             to disk_gb ({})",
            layout.free_gb,
            layout.disk_gb
        );
    }
    Ok(layout)
}

#[derive(Debug, Clone, Serialize)]
/// What was written to one area.
pub struct AreaSummary {
    pub path: String,
    pub bytes: u64,
    pub files: u64,
}

/// Fill the areas of the runner whose `/` is `root` so that what is left is the runner's
/// free share of `usable`.
pub fn fill(root: &Path, runner: &RunnerLayout, usable: u64) -> Result<Vec<AreaSummary>> {
    let scale = usable as f64 / runner.disk_gb;
    let mut out = Vec::new();
    for (i, area) in runner.areas.iter().enumerate() {
        signals::check()?;
        let bytes = (area.gb * scale) as u64;
        let dir = root.join(area.path.trim_start_matches('/'));
        let files = write_area(&dir, bytes, area.mean_file_kb.max(1) * 1024, i as u64)
            .with_context(|| format!("filling {}", dir.display()))?;
        out.push(AreaSummary {
            path: area.path.clone(),
            bytes,
            files,
        });
    }
    Ok(out)
}

/// Remove what is left of the runner's tree at `root` and fill it again.
pub fn refill(root: &Path, runner: &RunnerLayout, usable: u64) -> Result<()> {
    if root.exists() {
        // The runner's /etc (daemon.json) stays.
        let keep = [root.join("etc")];
        let outcome = headroom_disk::remove_tree(root, &keep, &|_| {});
        if let Some(e) = outcome.errors.first() {
            bail!("clearing {}: {e}", root.display());
        }
    }
    fill(root, runner, usable).map(|_| ())
}

/// Write `bytes` in files averaging `mean` bytes (sizes cycle through ¼, ½, 1 and 2¼ of it),
/// 64 to a directory. Zeros are written, so every block is allocated.
pub fn write_area(dir: &Path, bytes: u64, mean: u64, seed: u64) -> Result<u64> {
    const SHAPE: [u64; 4] = [1, 2, 4, 9]; // quarters of the mean: averages 1
    let buf = vec![0u8; 1 << 20];
    let mut written = 0u64;
    let mut files = 0u64;
    while written < bytes {
        if files % 256 == 0 {
            signals::check()?;
        }
        let sub = dir.join(format!("lib{:03}", files / 64));
        if files % 64 == 0 {
            std::fs::create_dir_all(&sub).with_context(|| sub.display().to_string())?;
        }
        let shape = SHAPE[((files + seed) % 4) as usize];
        let size = (mean * shape / 4).clamp(1, bytes - written);
        let path = sub.join(format!("f{files:05}.so"));
        let mut f = std::fs::File::create(&path).with_context(|| path.display().to_string())?;
        let mut left = size;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])
                .with_context(|| path.display().to_string())?;
            left -= n as u64;
        }
        written += size;
        files += 1;
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn the_runner_layout_adds_up_and_names_catalog_paths() {
        let layout = runner_layout().expect("simulate_runner.toml parses and adds up");
        let catalog = headroom_disk::Catalog::builtin();
        let known: Vec<&String> = catalog.items.iter().flat_map(|i| &i.paths).collect();
        let reclaimable = layout
            .areas
            .iter()
            .filter(|a| known.iter().any(|k| **k == a.path))
            .count();
        // Every area but the operating system's is something the catalog reclaims.
        assert_eq!(reclaimable, layout.areas.len() - 1);
    }

    #[test]
    fn areas_are_written_to_the_byte_in_many_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = write_area(dir.path(), 10_000_000, 100_000, 0).expect("write");
        let mut total = 0;
        let mut count = 0;
        for e in walk(dir.path()) {
            total += std::fs::metadata(&e).expect("meta").len();
            count += 1;
        }
        assert_eq!(total, 10_000_000);
        assert_eq!(count, files);
        assert!(files > 50, "{files} files");
    }

    fn walk(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
