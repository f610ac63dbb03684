//! Planning: which items to reclaim to reach a free-space target, cheapest per byte first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, ItemSpec, ReclaimKind};
use crate::error::{Error, Result};
use crate::host;
use crate::layout::LayoutReport;
use crate::measure::{Size, measure_excluding};
use crate::mounts::MountTable;
use crate::progress::{Event, Progress};
use crate::resolve::{self, Anchor, Identity, Resolve};
use crate::size::format_size;
use crate::usage::{FsUsage, device_of, usage};

/// Where the catalog's paths are and what the reclaim may touch.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// Resolve every catalog path under this directory and touch nothing outside it:
    /// no swapoff, no apt, no Docker.
    pub root: Option<PathBuf>,
    /// Environment variables consulted for items' `env_paths`.
    pub vars: BTreeMap<String, String>,
}

impl Environment {
    /// The machine itself, with the process's environment.
    pub fn host() -> Self {
        Environment {
            root: None,
            vars: utf8_vars(),
        }
    }

    /// A tree that stands for a runner's root filesystem (tests, chroots, mounted images).
    pub fn under_root(root: impl Into<PathBuf>) -> Self {
        Environment {
            root: Some(root.into()),
            vars: utf8_vars(),
        }
    }

    /// A catalog path (absolute) as it is seen from here.
    pub fn resolve(&self, path: &str) -> PathBuf {
        match &self.root {
            Some(root) => root.join(path.trim_start_matches('/')),
            None => PathBuf::from(path),
        }
    }

    /// An item's paths as seen from here, with those its `env_paths` add; a variable whose
    /// value is not a plain path below an allowed root is left out, with a note.
    fn item_paths(&self, item: &ItemSpec, catalog: &Catalog) -> (Vec<PathBuf>, Vec<String>) {
        let mut paths: Vec<PathBuf> = item.paths.iter().map(|p| self.resolve(p)).collect();
        let mut notes = Vec::new();
        for var in &item.env_paths {
            let Some(value) = self.vars.get(var) else {
                continue;
            };
            if !catalog.allows(value) {
                notes.push(format!(
                    "{var}={value:?} ignored: not a plain path below an allowed root ({})",
                    catalog.allowed_roots.join(", ")
                ));
                continue;
            }
            let p = self.resolve(value);
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
        (paths, notes)
    }
}

/// The environment's variables that are valid UTF-8 (the others cannot name catalog paths).
fn utf8_vars() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

/// Which items are candidates.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Take every candidate, not only enough to meet the target.
    pub all: bool,
    /// Only these items (opt-in items must be named here).
    pub only: Vec<String>,
    /// Never these items.
    pub skip: Vec<String>,
}

/// What to plan for.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    /// The filesystem to free space on is the one holding this path.
    pub target_path: PathBuf,
    /// At least this many bytes available afterwards. `None`: every candidate.
    pub need: Option<u64>,
    pub selection: Selection,
    /// Paths never deleted (absolute; resolved like catalog paths).
    pub protect: Vec<String>,
}

/// The decision for one item.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", content = "reason", rename_all = "kebab-case")]
pub enum Decision {
    Reclaim,
    Skip(String),
}

/// One catalog item as planned.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedItem {
    pub spec: ItemSpec,
    /// Existing paths on the target filesystem that reclaim will act on.
    pub paths: Vec<PathBuf>,
    /// Paths inside `paths` that will be kept: other filesystems and protected paths.
    pub keep: Vec<PathBuf>,
    pub size: Size,
    pub estimated_seconds: f64,
    pub decision: Decision,
    /// apt-remove: the installed packages that matched.
    pub packages: Vec<String>,
    /// Notes worth showing (paths left out and why).
    pub notes: Vec<String>,
    /// What each path was when planned: reclaim deletes a path only if it still is that
    /// inode, on that mount.
    pub pinned: Vec<Pin>,
}

/// A planned path and the object it named.
#[derive(Debug, Clone, Serialize)]
pub struct Pin {
    pub path: PathBuf,
    #[serde(flatten)]
    pub id: Identity,
}

impl PlannedItem {
    pub fn selected(&self) -> bool {
        self.decision == Decision::Reclaim
    }

    fn skip(&mut self, reason: impl Into<String>) {
        self.decision = Decision::Skip(reason.into());
    }
}

/// A plan: the target filesystem, the items with their decisions, and the projection.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub filesystem: FsUsage,
    pub need: Option<u64>,
    pub items: Vec<PlannedItem>,
    /// Available bytes if every selected item frees what it measured.
    pub projected_available: u64,
    /// How far the projection falls short of `need`, if it does.
    pub shortfall: Option<u64>,
    #[serde(skip)]
    pub(crate) root: Option<PathBuf>,
    pub(crate) protect: Vec<PathBuf>,
    /// The protect entries as they were resolved.
    pub protected: Vec<Protected>,
    /// The directory everything is resolved from (`--root`, or the filesystem's mount
    /// point), held open from planning on.
    #[serde(skip)]
    pub(crate) anchor: Option<Arc<Anchor>>,
    /// `openat2` or `openat+mount-id`.
    pub resolver: &'static str,
    /// The hosted-runner layout recognised around the plan's root, and why.
    pub layout: Option<LayoutReport>,
}

impl Plan {
    pub fn selected(&self) -> impl Iterator<Item = &PlannedItem> {
        self.items.iter().filter(|i| i.selected())
    }

    pub fn planned_bytes(&self) -> u64 {
        self.selected().map(|i| i.size.reclaimable_bytes()).sum()
    }

    /// Under `--root` (nothing outside the tree is touched).
    pub fn is_rooted(&self) -> bool {
        self.root.is_some()
    }
}

/// One protect entry as resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Protected {
    /// As written in the configuration.
    pub entry: String,
    /// The path it resolved to (under `--root` when one is given).
    pub path: String,
    /// Present (before a reclaim), or still present (after one).
    pub kept: bool,
    pub note: Option<String>,
}

/// Plan a reclaim. Measures each candidate (in parallel inside each item); never deletes.
pub fn plan(
    catalog: &Catalog,
    env: &Environment,
    request: &PlanRequest,
    progress: &dyn Progress,
) -> Result<Plan> {
    let sel = &request.selection;
    catalog.check_names(&sel.only, "--only")?;
    catalog.check_names(&sel.skip, "--skip")?;
    // Everything is compared by canonical path: a relative or symlinked --root must not
    // hide a mount point or a protected path from the planner.
    let mut env = env.clone();
    if let Some(root) = &env.root {
        let canonical = std::fs::canonicalize(root).map_err(|_| Error::Missing {
            what: "--root directory",
            path: root.clone(),
        })?;
        if !canonical.is_dir() {
            return Err(Error::Config {
                origin: format!("--root {}", root.display()),
                message: "not a directory".into(),
            });
        }
        if canonical == Path::new("/") {
            return Err(Error::Config {
                origin: format!("--root {}", root.display()),
                message: "is this machine's own root; run without --root instead".into(),
            });
        }
        // A bind mount of / elsewhere is the host's root under another name.
        if let (Ok(r), Ok(h)) = (
            resolve::identity_of_path(&canonical),
            resolve::identity_of_path(Path::new("/")),
        ) && r.dev == h.dev
            && r.ino == h.ino
        {
            return Err(Error::Config {
                origin: format!("--root {}", root.display()),
                message: "is this machine's own root directory, mounted (bound) here; refused: \
                          run without --root to free this machine"
                    .into(),
            });
        }
        env.root = Some(canonical);
    }
    let env = &env;
    let target_path = std::fs::canonicalize(&request.target_path).map_err(|_| Error::Missing {
        what: "target path",
        path: request.target_path.clone(),
    })?;
    let mut filesystem = usage(&target_path)?;
    filesystem.path = request.target_path.clone();
    // The filesystem the target is on, following a symlinked target (stat, not lstat).
    let target_dev = rustix::fs::stat(&target_path)
        .map(|s| s.st_dev)
        .map_err(|e| Error::io(&target_path, e))?;
    let mounts = MountTable::read()?;
    let anchor_path = match &env.root {
        Some(root) => root.clone(),
        None => std::fs::canonicalize(&filesystem.mount_point)
            .map_err(|e| Error::io(&filesystem.mount_point, e))?,
    };
    let anchor = Arc::new(Anchor::open(&anchor_path).map_err(|e| Error::io(&anchor_path, e))?);
    let layout =
        crate::layout::recognise(&anchor_path, &std::env::vars().collect()).map_err(|message| {
            Error::Config {
                origin: "recognising the runner's layout".into(),
                message,
            }
        })?;
    let (protect, protected) = resolve_protect(&request.protect, env, &anchor, catalog)?;
    let cwd = std::env::current_dir().and_then(std::fs::canonicalize).ok();
    let active_swaps = host::active_swaps();

    let available = filesystem.available_bytes;
    let already_met = request
        .need
        .filter(|&need| available >= need && !sel.all)
        .map(|need| {
            format!(
                "target already met: {} available, {} needed",
                format_size(available),
                format_size(need)
            )
        });
    let mut items: Vec<PlannedItem> = catalog
        .items
        .iter()
        .map(|spec| {
            let mut item = PlannedItem {
                spec: spec.clone(),
                paths: Vec::new(),
                keep: Vec::new(),
                size: Size::default(),
                estimated_seconds: 0.0,
                decision: Decision::Reclaim,
                packages: Vec::new(),
                notes: Vec::new(),
                pinned: Vec::new(),
            };
            let ctx = Ctx {
                catalog,
                anchor: &anchor,
                cwd: cwd.as_deref(),
                env,
                target_dev,
                filesystem: &filesystem,
                mounts: &mounts,
                protect: &protect,
                active_swaps: &active_swaps,
            };
            if let Some(reason) = preselect(spec, sel, env) {
                item.skip(reason);
            } else if let Some(reason) = already_met.clone() {
                item.skip(reason);
            } else {
                progress.event(Event::Measuring { item: &spec.name });
                ctx.size_item(&mut item);
                if item.selected() {
                    progress.event(Event::Measured {
                        item: &spec.name,
                        size: item.size,
                    });
                }
            }
            item.estimated_seconds =
                catalog
                    .cost
                    .estimate(spec, item.size.files, item.size.disk_bytes);
            item
        })
        .collect();

    let mut projected = available;
    if already_met.is_none() {
        // Cheapest seconds per byte first; ties keep catalog order.
        let mut order: Vec<usize> = (0..items.len()).filter(|&i| items[i].selected()).collect();
        order.sort_by(|&a, &b| {
            cost_per_byte(&items[a])
                .partial_cmp(&cost_per_byte(&items[b]))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut chosen: Vec<usize> = Vec::new();
        for idx in order {
            if let Some(need) = request.need.filter(|_| !sel.all)
                && projected >= need
            {
                let reason = format!(
                    "not needed: target of {} met by cheaper items",
                    format_size(need)
                );
                items[idx].skip(reason);
                continue;
            }
            if let Some(&outer) = chosen
                .iter()
                .find(|&&c| contains_all(&items[c].paths, &items[idx].paths))
            {
                let reason = format!("included in {}", items[outer].spec.name);
                items[idx].skip(reason);
                continue;
            }
            let (inner, kept): (Vec<usize>, Vec<usize>) = chosen
                .iter()
                .partition(|&&c| contains_all(&items[idx].paths, &items[c].paths));
            // Partial overlap (some paths shared, some not) would put two deleters on one
            // tree and count its bytes twice: the later item gives way.
            if let Some(&other) = kept
                .iter()
                .find(|&&c| overlaps(&items[c].paths, &items[idx].paths))
            {
                let reason = format!("overlaps {} in part: not taken", items[other].spec.name);
                items[idx].skip(reason);
                continue;
            }
            // Items already chosen inside this one are covered by it: they are dropped
            // (never two deleters on one tree) and their bytes are counted once.
            let inner_bytes: u64 = inner
                .iter()
                .map(|&c| items[c].size.reclaimable_bytes())
                .sum();
            let reason = format!("included in {}", items[idx].spec.name);
            for c in inner {
                items[c].skip(reason.clone());
            }
            projected = projected.saturating_add(
                items[idx]
                    .size
                    .reclaimable_bytes()
                    .saturating_sub(inner_bytes),
            );
            chosen = kept;
            chosen.push(idx);
        }
    }
    let shortfall = request
        .need
        .filter(|&need| projected < need)
        .map(|need| need - projected);
    Ok(Plan {
        filesystem,
        need: request.need,
        items,
        projected_available: projected,
        shortfall,
        root: env.root.clone(),
        protect,
        protected,
        anchor: Some(anchor),
        resolver: resolve::method().name(),
        layout: Some(layout),
    })
}

fn cost_per_byte(item: &PlannedItem) -> f64 {
    item.estimated_seconds / (item.size.reclaimable_bytes().max(1) as f64)
}

/// True when some path of `a` and some path of `b` are the same or nested.
fn overlaps(a: &[PathBuf], b: &[PathBuf]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| x.starts_with(y) || y.starts_with(x)))
}

/// True when every path of `inner` lies inside one of `outer` (and `inner` has paths).
fn contains_all(outer: &[PathBuf], inner: &[PathBuf]) -> bool {
    !inner.is_empty()
        && !outer.is_empty()
        && inner.iter().all(|i| outer.iter().any(|o| i.starts_with(o)))
}

/// Decisions made from the selection and environment alone, before measuring.
fn preselect(spec: &ItemSpec, sel: &Selection, env: &Environment) -> Option<String> {
    let named = sel.only.iter().any(|n| n == &spec.name);
    if sel.skip.iter().any(|n| n == &spec.name) {
        return Some("skipped by --skip".into());
    }
    if !sel.only.is_empty() && !named {
        return Some("not in --only".into());
    }
    if spec.opt_in && !named {
        return Some(format!("opt-in: name it with --only {}", spec.name));
    }
    if env.root.is_some() && spec.reclaim.needs_host() {
        return Some("acts on the host (Docker/apt): not done with --root".into());
    }
    None
}

struct Ctx<'a> {
    catalog: &'a Catalog,
    anchor: &'a Anchor,
    cwd: Option<&'a Path>,
    env: &'a Environment,
    target_dev: u64,
    filesystem: &'a FsUsage,
    mounts: &'a MountTable,
    protect: &'a [PathBuf],
    active_swaps: &'a [PathBuf],
}

impl Ctx<'_> {
    fn size_item(&self, item: &mut PlannedItem) {
        match item.spec.reclaim {
            ReclaimKind::Delete | ReclaimKind::Swap | ReclaimKind::AptClean => {
                self.size_paths(item)
            }
            ReclaimKind::DockerImages | ReclaimKind::DockerBuildCache => self.size_docker(item),
            ReclaimKind::AptRemove => self.size_packages(item),
        }
    }

    fn size_paths(&self, item: &mut PlannedItem) {
        let mut present = Vec::new();
        let mut elsewhere = Vec::new();
        let (paths, env_notes) = self.env.item_paths(&item.spec, self.catalog);
        item.notes.extend(env_notes);
        for path in paths {
            let dev = match device_of(&path) {
                Ok(dev) => dev,
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                    continue;
                }
                Err(e) => {
                    item.notes.push(format!("cannot read: {e}"));
                    continue;
                }
            };
            if self.mounts.mounts.iter().any(|m| m.mount_point == path) {
                item.notes.push(format!(
                    "{}: is a mount point; refused (name the paths inside it)",
                    path.display()
                ));
                continue;
            }
            if let Some(root) = &self.env.root
                && !resolves_within(&path, root)
            {
                item.notes.push(format!(
                    "{}: leads outside --root {} through a symlink",
                    path.display(),
                    root.display()
                ));
                continue;
            }
            if let Some(p) = self.protect.iter().find(|p| path.starts_with(p)) {
                item.notes
                    .push(format!("{}: protected by {}", path.display(), p.display()));
                continue;
            }
            if item.spec.reclaim == ReclaimKind::Swap
                && self.env.root.is_some()
                && self.active_swaps.contains(&path)
            {
                item.notes
                    .push(format!("{}: in use as this host's swap", path.display()));
                continue;
            }
            if dev != self.target_dev {
                elsewhere.push(path);
                continue;
            }
            if let Some(cwd) = self.cwd
                && cwd.starts_with(&path)
            {
                item.notes.push(format!(
                    "{}: is the working directory or one of its ancestors; refused",
                    path.display()
                ));
                continue;
            }
            // Pin what the path is now, resolved beneath the anchor: never through a
            // symlink or across a mount point (a bind mount included).
            let id = match self.anchor.parent_of(&path) {
                Ok((parent, name)) => match resolve::identity_at(&parent, &name) {
                    Ok(id) => id,
                    Err(rustix::io::Errno::NOENT) => continue,
                    Err(e) => {
                        item.notes
                            .push(format!("{}: {}", path.display(), std::io::Error::from(e)));
                        continue;
                    }
                },
                Err(Resolve::Missing) => continue,
                Err(Resolve::Refused(why)) => {
                    item.notes.push(format!(
                        "{}: not reachable from {} without crossing a symlink or a mount ({why})",
                        path.display(),
                        self.anchor.path.display()
                    ));
                    continue;
                }
            };
            if id.mnt_id != 0 && self.anchor.id.mnt_id != 0 && id.mnt_id != self.anchor.id.mnt_id {
                item.notes.push(format!(
                    "{}: is a mount point (a bind mount or another filesystem); refused",
                    path.display()
                ));
                continue;
            }
            item.pinned.push(Pin {
                path: path.clone(),
                id,
            });
            present.push(path);
        }
        if present.is_empty() {
            let reason = if !elsewhere.is_empty() {
                format!(
                    "on another filesystem than {} ({})",
                    self.filesystem.mount_point.display(),
                    join_paths(&elsewhere)
                )
            } else if !item.notes.is_empty() {
                item.notes.join("; ")
            } else {
                format!(
                    "not present ({})",
                    join_paths(&self.env.item_paths(&item.spec, self.catalog).0)
                )
            };
            return item.skip(reason);
        }
        for p in &elsewhere {
            item.notes.push(format!(
                "{}: on another filesystem, left alone",
                p.display()
            ));
        }
        // Keep other filesystems mounted inside the item, and protected paths inside it.
        let mut keep: Vec<PathBuf> = present
            .iter()
            .flat_map(|p| self.mounts.mounts_under(p))
            .collect();
        keep.extend(
            self.protect
                .iter()
                .filter(|p| present.iter().any(|q| p.starts_with(q)))
                .cloned(),
        );
        keep.sort();
        keep.dedup();
        let m = measure_excluding(&present, &keep);
        for e in m.errors.iter().take(3) {
            item.notes.push(format!("could not measure {e}"));
        }
        for p in &m.other_filesystems {
            if !keep.contains(p) {
                keep.push(p.clone());
            }
        }
        item.size = m.size;
        item.keep = keep;
        item.paths = present;
        if item.size.files == 0 && item.spec.reclaim != ReclaimKind::Swap {
            item.skip(format!("empty ({})", join_paths(&item.paths)));
        }
    }

    fn size_docker(&self, item: &mut PlannedItem) {
        let data_root = match host::docker_data_root() {
            Ok(r) => r,
            Err(e) => return item.skip(format!("Docker not available: {e}")),
        };
        match device_of(&data_root) {
            Ok(dev) if dev == self.target_dev => {}
            Ok(_) => {
                return item.skip(format!(
                    "Docker's data root {} is on another filesystem than {}",
                    data_root.display(),
                    self.filesystem.mount_point.display()
                ));
            }
            Err(e) => return item.skip(format!("Docker's data root: {e}")),
        }
        let kind = if item.spec.reclaim == ReclaimKind::DockerImages {
            "Images"
        } else {
            "Build Cache"
        };
        match host::docker_reclaimable(kind) {
            Ok(0) => item.skip("nothing reclaimable"),
            Ok(bytes) => {
                item.size.disk_bytes = bytes;
                item.notes
                    .push(format!("in Docker's data root {}", data_root.display()));
            }
            Err(e) => item.skip(e),
        }
    }

    fn size_packages(&self, item: &mut PlannedItem) {
        match host::installed_packages(&item.spec.packages) {
            Ok(found) if found.is_empty() => item.skip("none of its packages is installed"),
            Ok(found) => {
                item.size.disk_bytes = found.iter().map(|(_, b)| b).sum();
                item.packages = found.into_iter().map(|(n, _)| n).collect();
            }
            Err(e) => item.skip(format!("cannot list packages: {e}")),
        }
    }
}

pub(crate) fn join_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resolve the protect entries: each must be absolute, without `..`, inside (or above) some
/// item's paths, and reachable beneath the anchor without a symlink. Errors name the entry.
fn resolve_protect(
    entries: &[String],
    env: &Environment,
    anchor: &Anchor,
    catalog: &Catalog,
) -> Result<(Vec<PathBuf>, Vec<Protected>)> {
    let item_paths: Vec<PathBuf> = catalog
        .items
        .iter()
        .flat_map(|i| env.item_paths(i, catalog).0)
        .collect();
    let mut paths = Vec::new();
    let mut report = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let bad = |message: String| Error::Protect {
            index: i,
            entry: entry.clone(),
            message,
        };
        if !entry.starts_with('/') {
            return Err(bad("is not an absolute path".into()));
        }
        if entry.split('/').any(|c| c == "..") {
            return Err(bad(
                "contains '..': name the path to protect itself, without '..' (a '..' after a \
                 symlink leads elsewhere than it reads)"
                    .into(),
            ));
        }
        // Lexically clean: `//` and `.` components go.
        let path: PathBuf = env.resolve(entry).components().collect();
        if !item_paths
            .iter()
            .any(|p| path.starts_with(p) || p.starts_with(&path))
        {
            return Err(bad(
                "protects nothing: it is neither inside nor above any item's paths (see \
                 `cargo xtask free --list`)"
                    .into(),
            ));
        }
        let mut note = None;
        let present = match anchor.parent_of(&path) {
            Ok((parent, name)) => resolve::identity_at(&parent, &name).is_ok(),
            Err(Resolve::Missing) => false,
            Err(Resolve::Refused(why)) if why.contains("symlink") => {
                return Err(bad(format!(
                    "{why}: a protected path may not pass through a symlink; name the real path"
                )));
            }
            Err(Resolve::Refused(why)) => {
                note = Some(why);
                false
            }
        };
        if !present && note.is_none() {
            note = Some("not present".into());
        }
        report.push(Protected {
            entry: entry.clone(),
            path: path.to_string_lossy().into_owned(),
            kept: present,
            note,
        });
        paths.push(path);
    }
    Ok((paths, report))
}

/// True when `path`'s parent directory, with symlinks resolved, is still inside `root`:
/// under `--root`, a symlinked `usr/` must not lead the deleter onto the host.
fn resolves_within(path: &Path, root: &Path) -> bool {
    let (Some(parent), Ok(root)) = (path.parent(), std::fs::canonicalize(root)) else {
        return false;
    };
    std::fs::canonicalize(parent).is_ok_and(|p| p.starts_with(&root))
}

/// True when `path` is `root` or inside it, lexically.
pub(crate) fn within(path: &Path, root: &Path) -> bool {
    path.starts_with(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::NoProgress;

    #[test]
    fn a_protect_entry_that_cannot_be_honoured_is_a_protect_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let request = |protect: &str| PlanRequest {
            target_path: root.path().to_path_buf(),
            need: None,
            selection: Selection::default(),
            protect: vec!["/opt/hostedtoolcache".into(), protect.into()],
        };
        let env = Environment::under_root(root.path());
        for (entry, why) in [
            ("relative/path", "is not an absolute path"),
            ("/opt/../etc", "contains '..'"),
            ("/srv/nothing-here", "protects nothing"),
        ] {
            let err = plan(&Catalog::builtin(), &env, &request(entry), &NoProgress).unwrap_err();
            match &err {
                Error::Protect {
                    index, entry: e, ..
                } => assert_eq!((*index, e.as_str()), (1, entry)),
                other => panic!("{entry}: not a protect error: {other}"),
            }
            // The text callers show after the configuration file's name.
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("free.protect[1] {entry:?}: {why}")),
                "{text}"
            );
        }
    }
}
