//! The disk layouts of GitHub-hosted runners in 2026, as data (`layouts.toml`): a root disk
//! (and for `dual` a second one at `/mnt`), the operating system and the preinstalled trees
//! in their measured proportions, and the scale at which the runner box makes them.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::runner::{Area, RunnerLayout};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    box_mib_per_gb: u64,
    incident_need_gb: f64,
    #[serde(rename = "layout")]
    layouts: Vec<LayoutSpec>,
    trees: BTreeMap<String, Trees>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayoutSpec {
    name: String,
    disk_gb: f64,
    free_gb: f64,
    trees: String,
    os_gb: f64,
    second_disk_gb: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Trees {
    /// Where the operating system's share (`os_gb`) is written.
    os_path: String,
    area: Vec<Area>,
}

/// One layout, ready to make.
#[derive(Debug)]
pub struct HostedLayout {
    pub name: String,
    /// The root disk and what fills it (the operating system first), as the simulator's
    /// [`RunnerLayout`].
    pub root: RunnerLayout,
    pub second_disk_gb: Option<f64>,
    /// MiB of the box per GB of the runner.
    pub mib_per_gb: u64,
    /// What the seed's incident's build needs on a runner, in GB.
    pub incident_need_gb: f64,
}

impl HostedLayout {
    /// The root disk's size in the box, in bytes.
    pub fn root_bytes(&self) -> u64 {
        gb_to_box(self.root.disk_gb, self.mib_per_gb)
    }

    /// The second disk's size in the box, in bytes.
    pub fn second_bytes(&self) -> Option<u64> {
        self.second_disk_gb.map(|gb| gb_to_box(gb, self.mib_per_gb))
    }

    /// `NAME: 72 GB disk (16 GB free) at 1/256: 288 MiB`.
    pub fn describe(&self) -> String {
        let second = self
            .second_disk_gb
            .map(|gb| format!(" + {gb} GB at /mnt"))
            .unwrap_or_default();
        format!(
            "{}: {} GB disk ({} GB free){second}, at {} MiB per GB",
            self.name, self.root.disk_gb, self.root.free_gb, self.mib_per_gb
        )
    }
}

impl HostedLayout {
    /// The naive Dockerfile of the seed's incident needs more than this layout has free
    /// (about 8 units where the pipeline's target is 6.5: `docker/simulate/`).
    pub fn incident_runs_out(&self) -> bool {
        self.root.free_gb < self.incident_need_gb * 8.0 / 6.5
    }
}

fn gb_to_box(gb: f64, mib_per_gb: u64) -> u64 {
    (gb * mib_per_gb as f64) as u64 * (1 << 20)
}

/// The names of the layouts, in the file's order.
pub fn names() -> Result<Vec<String>> {
    Ok(file()?.layouts.into_iter().map(|l| l.name).collect())
}

/// The layout `name`; an error naming the known ones otherwise.
pub fn layout(name: &str) -> Result<HostedLayout> {
    let file = file()?;
    let known: Vec<&str> = file.layouts.iter().map(|l| l.name.as_str()).collect();
    let Some(spec) = file.layouts.iter().find(|l| l.name == name) else {
        bail!("no runner layout {name:?}: known are {}", known.join(", "));
    };
    let Some(trees) = file.trees.get(&spec.trees) else {
        bail!(
            "lab/src/workload/layouts.toml: layout {name} names trees {:?}, which are not there",
            spec.trees
        );
    };
    let mut areas = vec![Area {
        path: trees.os_path.clone(),
        gb: spec.os_gb,
        mean_file_kb: 90,
    }];
    areas.extend(trees.area.iter().map(|a| Area {
        path: a.path.clone(),
        gb: a.gb,
        mean_file_kb: a.mean_file_kb,
    }));
    let filled: f64 = areas.iter().map(|a| a.gb).sum();
    if (filled + spec.free_gb - spec.disk_gb).abs() > 0.01 {
        bail!(
            "lab/src/workload/layouts.toml: layout {name}: the areas ({filled} GB) and free_gb \
             ({}) do not add up to disk_gb ({})",
            spec.free_gb,
            spec.disk_gb
        );
    }
    Ok(HostedLayout {
        name: spec.name.clone(),
        root: RunnerLayout {
            disk_gb: spec.disk_gb,
            free_gb: spec.free_gb,
            areas,
        },
        second_disk_gb: spec.second_disk_gb,
        mib_per_gb: file.box_mib_per_gb,
        incident_need_gb: file.incident_need_gb,
    })
}

fn file() -> Result<File> {
    toml::from_str(include_str!("layouts.toml")).context("lab/src/workload/layouts.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_adds_up_and_unknown_names_are_refused() {
        let names = names().expect("layouts.toml parses");
        assert_eq!(names, ["public-145", "private-72", "dual", "arm"]);
        for name in &names {
            let l = layout(name).expect("adds up");
            assert!(l.root_bytes() < 1 << 30, "{}", l.describe());
        }
        assert!(layout("dual").unwrap().second_bytes().is_some());
        // The incident runs out of space on the small layouts only.
        let out: Vec<bool> = names
            .iter()
            .map(|n| layout(n).unwrap().incident_runs_out())
            .collect();
        assert_eq!(out, [false, true, true, false]);
        let e = layout("private-75").unwrap_err().to_string();
        assert!(e.contains("public-145") && e.contains("arm"), "{e}");
    }
}
