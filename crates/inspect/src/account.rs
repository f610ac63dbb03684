//! The accounting: apply the layers in order to a model of the image's filesystem, following
//! every stored copy of a file to whether the final image still shows it; and dive's figures.

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::rc::Rc;

use super::layer::{Kind, LayerData};
use super::report::{DIVE_EXPLANATION, DiveFigures, WastedPath};

/// A path of the model, as a prefix of a path the archive holds: the ancestors of an entry
/// share its one copy of the text, so a path `d` components deep costs `d` small keys, not
/// `d` strings of up to its length (which made memory grow with the square of the depth).
/// Compared, ordered and hashed as the text it stands for.
#[derive(Clone)]
struct Key {
    text: Rc<str>,
    len: usize,
}

impl Key {
    fn new(text: &str) -> Key {
        Key {
            len: text.len(),
            text: Rc::from(text),
        }
    }

    /// The first `len` bytes of this key (a `/` boundary: an ancestor).
    fn prefix(&self, len: usize) -> Key {
        Key {
            text: Rc::clone(&self.text),
            len: len.min(self.len),
        }
    }

    fn as_str(&self) -> &str {
        self.text.get(..self.len).unwrap_or("")
    }

    /// The keys of every ancestor directory, shortest first.
    fn ancestors(&self) -> impl Iterator<Item = Key> + '_ {
        self.as_str()
            .match_indices('/')
            .map(|(i, _)| self.prefix(i))
    }
}

impl Borrow<str> for Key {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Key {
    fn eq(&self, other: &Key) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Key) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Key {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// The entries of `map` strictly under the directory `dir` (`dir/…`).
fn under<'a, V>(map: &'a BTreeMap<Key, V>, dir: &str) -> impl Iterator<Item = (&'a Key, &'a V)> {
    let prefix = format!("{dir}/");
    let start: Bound<&str> = Bound::Included(prefix.as_str());
    let range = map.range::<str, _>((start, Bound::Unbounded));
    range.take_while(move |(k, _)| k.as_str().starts_with(prefix.as_str()))
}

/// Per-layer figures.
#[derive(Debug, Default, Clone)]
pub(super) struct LayerStats {
    pub(super) size_bytes: u64,
    pub(super) empty: bool,
    pub(super) files_added: u64,
    pub(super) files_modified: u64,
    pub(super) files_removed: u64,
    pub(super) bytes_removed: u64,
    pub(super) whiteouts: u64,
    pub(super) opaque_whiteouts: u64,
    pub(super) hard_links: u64,
    pub(super) symlinks: u64,
    pub(super) wasted_bytes: u64,
}

/// Everything [`account`] works out.
#[derive(Debug)]
pub(super) struct Accounting {
    pub(super) layers: Vec<LayerStats>,
    pub(super) total_bytes: u64,
    pub(super) visible_bytes: u64,
    pub(super) wasted_bytes: u64,
    pub(super) efficiency: f64,
    pub(super) top_wasted: Vec<WastedPath>,
    pub(super) duplicate_bytes: u64,
    pub(super) dive: DiveFigures,
}

/// A regular file as one layer stored it.
#[derive(Debug)]
struct Copy {
    layer: usize,
    path: Key,
    bytes: u64,
    content: u128,
    /// Paths of the current filesystem that show this copy (its own, hard links).
    refs: u32,
    /// The layer that took away its last path.
    removed_in: Option<usize>,
}

/// A path of the filesystem model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Dir,
    /// A regular file: the index of its copy.
    File(usize),
    Symlink,
    Other,
}

impl Node {
    fn copy(self) -> Option<usize> {
        match self {
            Node::File(c) => Some(c),
            _ => None,
        }
    }
}

/// Non-directory paths of lower layers that the current layer took away: path → its copy.
type Removed = BTreeMap<Key, Option<usize>>;

/// The filesystem as the layers so far build it.
#[derive(Debug, Default)]
struct Fs {
    nodes: BTreeMap<Key, Node>,
    copies: Vec<Copy>,
}

impl Fs {
    /// One path less shows `node`'s copy; the copy dies with its last path.
    fn release(&mut self, node: Node, layer: usize) {
        if let Some(copy) = node.copy().and_then(|c| self.copies.get_mut(c)) {
            copy.refs = copy.refs.saturating_sub(1);
            if copy.refs == 0 {
                copy.removed_in = Some(layer);
            }
        }
    }

    /// Take away everything under `dir` (and `dir` itself with `with_self`); `dir` empty is the
    /// root.
    fn hide(&mut self, dir: &str, with_self: bool, layer: usize, removed: &mut Removed) {
        let mut keys: Vec<Key> = if dir.is_empty() {
            self.nodes.keys().cloned().collect()
        } else {
            under(&self.nodes, dir).map(|(k, _)| k.clone()).collect()
        };
        if with_self && !dir.is_empty() {
            if let Some((k, _)) = self.nodes.get_key_value(dir) {
                keys.push(k.clone());
            }
        }
        for key in keys {
            if let Some(node) = self.nodes.remove(key.as_str()) {
                if node != Node::Dir {
                    removed.insert(key, node.copy());
                }
                self.release(node, layer);
            }
        }
    }

    /// Make every ancestor of `path` a directory (a file in the way is replaced).
    fn parents(&mut self, path: &Key, layer: usize, removed: &mut Removed) {
        for ancestor in path.ancestors() {
            match self.nodes.get(ancestor.as_str()).copied() {
                Some(Node::Dir) => {}
                Some(other) => {
                    self.nodes.insert(ancestor.clone(), Node::Dir);
                    removed.insert(ancestor, other.copy());
                    self.release(other, layer);
                }
                None => {
                    self.nodes.insert(ancestor, Node::Dir);
                }
            }
        }
    }

    /// Put `node` at `path` for `layer`.
    fn place(
        &mut self,
        path: &Key,
        node: Node,
        layer: usize,
        stats: &mut LayerStats,
        removed: &mut Removed,
    ) {
        self.parents(path, layer, removed);
        match self.nodes.get(path.as_str()).copied() {
            Some(Node::Dir) if node == Node::Dir => return,
            Some(old) => {
                if old == Node::Dir {
                    // A directory replaced by a file: everything under it goes.
                    self.hide(path.as_str(), false, layer, removed);
                } else if node == Node::Dir {
                    removed.insert(path.clone(), old.copy());
                }
                self.release(old, layer);
                if node != Node::Dir {
                    stats.files_modified += 1;
                }
            }
            None => {
                if node != Node::Dir {
                    if removed.remove(path.as_str()).is_some() {
                        stats.files_modified += 1;
                    } else {
                        stats.files_added += 1;
                    }
                }
            }
        }
        self.nodes.insert(path.clone(), node);
    }

    /// Apply one layer: its whiteouts first (they only hide lower layers, wherever they sit in
    /// the tar), then its entries in tar order.
    fn apply(&mut self, layer: usize, data: &LayerData) -> LayerStats {
        let mut stats = LayerStats {
            empty: data.records.iter().all(|r| r.kind == Kind::Dir),
            ..LayerStats::default()
        };
        let mut removed = Removed::new();
        for record in &data.records {
            match record.kind {
                Kind::Whiteout => {
                    stats.whiteouts += 1;
                    self.hide(&record.path, true, layer, &mut removed);
                }
                Kind::Opaque => {
                    stats.opaque_whiteouts += 1;
                    self.hide(&record.path, false, layer, &mut removed);
                }
                _ => {}
            }
        }
        for record in &data.records {
            if matches!(record.kind, Kind::Whiteout | Kind::Opaque) {
                continue;
            }
            let key = Key::new(&record.path);
            let node = match &record.kind {
                Kind::Whiteout | Kind::Opaque => continue,
                Kind::Dir => Node::Dir,
                Kind::File { size, content } => {
                    stats.size_bytes = stats.size_bytes.saturating_add(*size);
                    self.copies.push(Copy {
                        layer,
                        path: key.clone(),
                        bytes: *size,
                        content: *content,
                        refs: 1,
                        removed_in: None,
                    });
                    Node::File(self.copies.len() - 1)
                }
                Kind::HardLink { target } => {
                    stats.hard_links += 1;
                    match self.nodes.get(target.as_str()).copied() {
                        Some(Node::File(c)) => {
                            if let Some(copy) = self.copies.get_mut(c) {
                                copy.refs = copy.refs.saturating_add(1);
                            }
                            Node::File(c)
                        }
                        Some(Node::Symlink) => Node::Symlink,
                        _ => Node::Other,
                    }
                }
                Kind::Symlink => {
                    stats.symlinks += 1;
                    Node::Symlink
                }
                Kind::Other => Node::Other,
            };
            self.place(&key, node, layer, &mut stats, &mut removed);
        }
        stats.files_removed = removed.len() as u64;
        let gone: HashSet<usize> = removed.values().filter_map(|c| *c).collect();
        stats.bytes_removed = gone
            .iter()
            .filter_map(|c| self.copies.get(*c))
            .map(|c| c.bytes)
            .fold(0u64, u64::saturating_add);
        stats
    }
}

/// Account for the layers, bottom first.
pub(super) fn account(layers: &[&LayerData], top_n: usize) -> Accounting {
    let mut fs = Fs::default();
    let mut stats: Vec<LayerStats> = layers
        .iter()
        .enumerate()
        .map(|(i, data)| fs.apply(i, data))
        .collect();

    let mut total_bytes = 0u64;
    let mut visible_bytes = 0u64;
    let mut dead: Vec<&Copy> = Vec::new();
    // By size and content: a file whose size no other file has is not hashed (its content
    // is 0), and cannot be a duplicate.
    let mut contents: HashMap<(u64, u128), u64> = HashMap::new();
    for copy in &fs.copies {
        total_bytes = total_bytes.saturating_add(copy.bytes);
        if copy.refs > 0 {
            visible_bytes = visible_bytes.saturating_add(copy.bytes);
            if copy.bytes > 0 {
                *contents.entry((copy.bytes, copy.content)).or_insert(0) += 1;
            }
        } else {
            if let Some(s) = stats.get_mut(copy.layer) {
                s.wasted_bytes = s.wasted_bytes.saturating_add(copy.bytes);
            }
            if copy.bytes > 0 {
                dead.push(copy);
            }
        }
    }
    dead.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(a.layer.cmp(&b.layer))
            .then_with(|| a.path.cmp(&b.path))
    });
    let top_wasted = dead
        .iter()
        .take(top_n)
        .map(|c| WastedPath {
            path: c.path.as_str().to_string(),
            bytes: c.bytes,
            written_in: c.layer,
            removed_in: c.removed_in,
        })
        .collect();
    let duplicate_bytes = contents
        .iter()
        .map(|((bytes, _), count)| bytes.saturating_mul(count.saturating_sub(1)))
        .fold(0u64, u64::saturating_add);
    let wasted_bytes = total_bytes.saturating_sub(visible_bytes);

    Accounting {
        dive: dive(layers, &stats),
        layers: std::mem::take(&mut stats),
        total_bytes,
        visible_bytes,
        wasted_bytes,
        efficiency: ratio(visible_bytes, total_bytes),
        top_wasted,
        duplicate_bytes,
    }
}

/// `part / whole`, 1.0 when `whole` is 0.
fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        1.0
    } else {
        part as f64 / whole as f64
    }
}

/// A node of one layer's tree, as dive builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DiveKind {
    /// A directory the tar only implies (a parent of an entry).
    Implied,
    Dir,
    File,
    /// `.wh.<name>`, kept under its own name as dive keeps it.
    Whiteout,
}

/// dive's figures (see [`DiveFigures`]).
fn dive(layers: &[&LayerData], stats: &[LayerStats]) -> DiveFigures {
    // Per path: (cumulative size, smallest size, times seen).
    let mut paths: HashMap<Key, (u64, i64, u32)> = HashMap::new();
    // The stacked tree of the layers below: path → (is a directory, size).
    let mut stacked: BTreeMap<Key, (bool, u64)> = BTreeMap::new();

    for data in layers {
        let mut tree: BTreeMap<Key, (DiveKind, u64)> = BTreeMap::new();
        let add_parents = |tree: &mut BTreeMap<Key, (DiveKind, u64)>, key: &Key| {
            for ancestor in key.ancestors() {
                tree.entry(ancestor).or_insert((DiveKind::Implied, 0));
            }
        };
        for record in &data.records {
            let (key, kind, size) = match &record.kind {
                Kind::Opaque => {
                    // dive drops the marker but has already made its directory.
                    if !record.path.is_empty() {
                        let key = Key::new(&record.path);
                        add_parents(&mut tree, &key);
                        tree.entry(key).or_insert((DiveKind::Implied, 0));
                    }
                    continue;
                }
                Kind::Whiteout => {
                    let key = match record.path.rsplit_once('/') {
                        Some((parent, name)) => format!("{parent}/.wh.{name}"),
                        None => format!(".wh.{}", record.path),
                    };
                    (Key::new(&key), DiveKind::Whiteout, 0)
                }
                Kind::Dir => (Key::new(&record.path), DiveKind::Dir, 0),
                Kind::File { size, .. } => (Key::new(&record.path), DiveKind::File, *size),
                Kind::HardLink { .. } | Kind::Symlink | Kind::Other => {
                    (Key::new(&record.path), DiveKind::File, 0)
                }
            };
            add_parents(&mut tree, &key);
            tree.insert(key, (kind, size));
        }

        // Visit the leaves against the layers below, in dive's order (depth first, children
        // by name: the leaves sorted by their components).
        let mut leaves: Vec<(&Key, &(DiveKind, u64))> = tree
            .iter()
            .filter(|(key, _)| under(&tree, key.as_str()).next().is_none())
            .collect();
        leaves.sort_by(|a, b| a.0.as_str().split('/').cmp(b.0.as_str().split('/')));
        for (key, (kind, size)) in leaves {
            let (path, bytes) = if *kind == DiveKind::Whiteout {
                let path = whiteout_target(key.as_str());
                let bytes = match stacked.get(path.as_str()) {
                    Some((true, own)) => under(&stacked, &path)
                        .map(|(_, (_, s))| *s)
                        .fold(*own, u64::saturating_add),
                    Some((false, _)) => 0,
                    None => {
                        // dive 0.13.1 on a whiteout of a path no lower layer has: the path's
                        // entry is made with its "smallest size" still -1, the lookup fails,
                        // and the rest of this layer goes unvisited. Done as dive does it.
                        paths.entry(Key::new(&path)).or_insert((0, -1, 0));
                        break;
                    }
                };
                (Key::new(&path), bytes)
            } else {
                (key.clone(), *size)
            };
            let signed = i64::try_from(bytes).unwrap_or(i64::MAX);
            let seen = paths.entry(path).or_insert((0, signed, 0));
            seen.0 = seen.0.saturating_add(bytes);
            if seen.1 < 0 || signed < seen.1 {
                seen.1 = signed;
            }
            seen.2 += 1;
        }

        // Stack this layer on the tree below.
        for (key, (kind, _)) in &tree {
            if *kind == DiveKind::Whiteout {
                let path = whiteout_target(key.as_str());
                let doomed: Vec<Key> = under(&stacked, &path).map(|(k, _)| k.clone()).collect();
                for k in doomed {
                    stacked.remove(k.as_str());
                }
                stacked.remove(path.as_str());
            }
        }
        for (key, (kind, size)) in tree {
            match kind {
                DiveKind::Whiteout => {}
                DiveKind::Implied => {
                    stacked.entry(key).or_insert((true, 0));
                }
                DiveKind::Dir => {
                    stacked.insert(key, (true, size));
                }
                DiveKind::File => {
                    stacked.insert(key, (false, size));
                }
            }
        }
    }

    let (minimum, cumulative) = paths.values().fold((0i64, 0u64), |(min, cum), (c, m, _)| {
        (min.saturating_add(*m), cum.saturating_add(*c))
    });
    let wasted_bytes = paths
        .values()
        .filter(|(_, _, seen)| *seen >= 2)
        .map(|(c, _, _)| *c)
        .fold(0u64, u64::saturating_add);
    let user_size_bytes = stats
        .iter()
        .skip(1)
        .map(|s| s.size_bytes)
        .fold(0u64, u64::saturating_add);
    DiveFigures {
        efficiency: if cumulative == 0 {
            1.0
        } else {
            minimum as f64 / cumulative as f64
        },
        wasted_bytes,
        // As dive divides: +Inf when bytes are wasted and no layer above the first holds
        // any, NaN when neither.
        user_wasted_percent: wasted_bytes as f64 / user_size_bytes as f64,
        user_size_bytes,
        explanation: DIVE_EXPLANATION.to_string(),
    }
}

/// `a/.wh.b` → `a/b`.
fn whiteout_target(key: &str) -> String {
    match key.rsplit_once('/') {
        Some((parent, name)) => format!("{parent}/{}", name.strip_prefix(".wh.").unwrap_or(name)),
        None => key.strip_prefix(".wh.").unwrap_or(key).to_string(),
    }
}
