//! Which image the archive holds: `manifest.json` when present, else `index.json` (through
//! nested indexes) — its config and its layers in order.

use serde_json::{Map, Value};

use super::archive::Collected;
use super::error::InspectError;
use super::report::Layout;
use super::text::{normalize, short};

/// How deep nested indexes are followed.
const MAX_DEPTH: usize = 8;

/// The image to analyse.
#[derive(Debug)]
pub(super) struct Plan {
    pub(super) layout: Layout,
    pub(super) image: Option<String>,
    /// The document that lists the layers (for messages).
    pub(super) referrer: String,
    pub(super) config: Config,
    /// Paths of the layer blobs in the archive, bottom first.
    pub(super) layers: Vec<String>,
}

/// What the analysis takes from the image config.
#[derive(Debug, Default)]
pub(super) struct Config {
    /// `created_by` of the history entries that made a layer, in order.
    pub(super) created_by: Vec<Option<String>>,
    /// `rootfs.diff_ids`.
    pub(super) diff_ids: Option<Vec<String>>,
}

fn json_error(name: &str, message: impl Into<String>) -> InspectError {
    InspectError::Json {
        name: short(name),
        message: message.into(),
    }
}

fn parse(name: &str, bytes: &[u8]) -> Result<Value, InspectError> {
    serde_json::from_slice(bytes).map_err(|e| json_error(name, e.to_string()))
}

/// Why [`docker`] gave up: an empty `manifest.json` (the index may know better), or an error.
enum DockerError {
    Empty,
    Fail(InspectError),
}
use DockerError::{Empty, Fail};

impl From<InspectError> for DockerError {
    fn from(e: InspectError) -> Self {
        Fail(e)
    }
}

/// Pick the image (the one named `image`, else the first) and its parts.
pub(super) fn resolve(c: &Collected, image: Option<&str>) -> Result<Plan, InspectError> {
    match (c.json("manifest.json"), c.json("index.json")) {
        (Some(manifest), index) => match docker(c, manifest, image) {
            // An empty manifest.json next to an index: the index knows better.
            Err(Empty) => match index {
                Some(index) => oci(c, index, image),
                None => Err(json_error("manifest.json", "the list of images is empty")),
            },
            Err(Fail(e)) => Err(e),
            Ok(plan) => Ok(plan),
        },
        (None, Some(index)) => oci(c, index, image),
        (None, None) => Err(InspectError::NotAnImage),
    }
}

/// The legacy layout: `manifest.json` = `[{Config, RepoTags, Layers}]`.
fn docker(c: &Collected, bytes: &[u8], want: Option<&str>) -> Result<Plan, DockerError> {
    const NAME: &str = "manifest.json";
    let value = parse(NAME, bytes)?;
    let list = value
        .as_array()
        .ok_or_else(|| json_error(NAME, "expected a list"))?;
    if list.is_empty() {
        return Err(Empty);
    }
    let tags_of = |item: &Value| -> Vec<String> {
        item.get("RepoTags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (at, item) = match want {
        None => (0, &list[0]),
        Some(want) => list
            .iter()
            .enumerate()
            .find(|(_, item)| tags_of(item).iter().any(|t| same_name(t, want)))
            .ok_or_else(|| InspectError::NoSuchImage(want.to_string()))?,
    };
    let object = item
        .as_object()
        .ok_or_else(|| json_error(NAME, format!("entry {at}: expected an object")))?;
    let config_path = object
        .get("Config")
        .and_then(Value::as_str)
        .map(normalize)
        .ok_or_else(|| {
            json_error(
                NAME,
                format!("entry {at}: \"Config\" is missing or not a string"),
            )
        })?;
    let layers = match object.get("Layers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(layers)) => layers
            .iter()
            .map(|l| l.as_str().map(normalize))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                json_error(
                    NAME,
                    format!("entry {at}: \"Layers\" must be a list of paths"),
                )
            })?,
        Some(_) => {
            return Err(json_error(
                NAME,
                format!("entry {at}: \"Layers\" must be a list of paths"),
            )
            .into());
        }
    };
    let tags = tags_of(item);
    let image = match want {
        Some(want) => tags.into_iter().find(|t| same_name(t, want)),
        None => tags.into_iter().next(),
    };
    let config = config(c, &config_path, NAME)?;
    Ok(Plan {
        layout: Layout::Docker,
        image,
        referrer: NAME.to_string(),
        config,
        layers,
    })
}

/// The OCI layout: `index.json` → (index →)* manifest → config and layers.
fn oci(c: &Collected, bytes: &[u8], want: Option<&str>) -> Result<Plan, InspectError> {
    const NAME: &str = "index.json";
    let value = parse(NAME, bytes)?;
    let index = value
        .as_object()
        .ok_or_else(|| json_error(NAME, "expected an object"))?;
    let mut missing: Option<(String, String)> = None;
    for descriptor in descriptors(index, NAME)? {
        if is_attestation(descriptor) {
            continue;
        }
        let name = ref_name(descriptor);
        if let Some(want) = want {
            if !name.as_deref().is_some_and(|n| same_name(n, want)) {
                continue;
            }
        }
        if let Some((path, manifest)) = descend(c, descriptor, NAME, 0, &mut missing)? {
            return manifest_plan(c, &path, manifest, name);
        }
    }
    Err(match (missing, want) {
        (Some((referrer, path)), _) => InspectError::Missing {
            referrer: short(&referrer),
            path,
        },
        (None, Some(want)) => InspectError::NoSuchImage(want.to_string()),
        (None, None) => json_error(NAME, "no image manifest in \"manifests\""),
    })
}

/// The `manifests` of an index (`null` or absent: none).
fn descriptors<'a>(index: &'a Map<String, Value>, name: &str) -> Result<&'a [Value], InspectError> {
    match index.get("manifests") {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(list)) => Ok(list),
        Some(_) => Err(json_error(name, "\"manifests\" must be a list")),
    }
}

/// Whether a descriptor is a BuildKit attestation (provenance, SBOM), not an image.
fn is_attestation(descriptor: &Value) -> bool {
    let annotated = descriptor
        .pointer("/annotations/vnd.docker.reference.type")
        .and_then(Value::as_str)
        == Some("attestation-manifest");
    let unknown_platform =
        descriptor.pointer("/platform/os").and_then(Value::as_str) == Some("unknown");
    annotated || unknown_platform
}

/// The image name a descriptor carries.
fn ref_name(descriptor: &Value) -> Option<String> {
    let annotations = descriptor.get("annotations")?;
    [
        "io.containerd.image.name",
        "org.opencontainers.image.ref.name",
    ]
    .iter()
    .find_map(|key| annotations.get(*key).and_then(Value::as_str))
    .map(str::to_string)
}

/// Whether two image names are the same, allowing Docker Hub's implicit parts
/// (`docker.io/library/`, `:latest`).
fn same_name(a: &str, b: &str) -> bool {
    fn canonical(name: &str) -> String {
        let name = name
            .strip_prefix("docker.io/library/")
            .or_else(|| name.strip_prefix("docker.io/"))
            .or_else(|| name.strip_prefix("index.docker.io/library/"))
            .unwrap_or(name);
        let last = name.rsplit('/').next().unwrap_or(name);
        if last.contains(':') || last.contains('@') {
            name.to_string()
        } else {
            format!("{name}:latest")
        }
    }
    a == b || canonical(a) == canonical(b)
}

/// `sha256:<hex>` → `blobs/sha256/<hex>`.
fn blob_path(descriptor: &Value, referrer: &str) -> Result<String, InspectError> {
    let digest = descriptor
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| json_error(referrer, "a descriptor has no \"digest\""))?;
    let valid = digest.split_once(':').filter(|(algorithm, encoded)| {
        !algorithm.is_empty()
            && !encoded.is_empty()
            && algorithm
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
            && encoded
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
    });
    match valid {
        Some((algorithm, encoded)) => Ok(format!("blobs/{algorithm}/{encoded}")),
        None => Err(json_error(
            referrer,
            format!("\"{digest}\" is not a digest"),
        )),
    }
}

/// Follow a descriptor to an image manifest: `Some((path, manifest))`, or `None` when its blob
/// is not in the archive (noted in `missing`; a multi-platform index saved for one platform).
fn descend(
    c: &Collected,
    descriptor: &Value,
    referrer: &str,
    depth: usize,
    missing: &mut Option<(String, String)>,
) -> Result<Option<(String, Value)>, InspectError> {
    if depth >= MAX_DEPTH {
        return Err(json_error(
            referrer,
            format!("indexes nested deeper than {MAX_DEPTH}"),
        ));
    }
    let path = blob_path(descriptor, referrer)?;
    let Some(bytes) = c.json(&path) else {
        if c.layers.contains_key(c.resolve(&path)) || c.other.contains(c.resolve(&path)) {
            return Err(json_error(
                &path,
                "expected a JSON manifest or index (not JSON, or over the 64 MiB limit)",
            ));
        }
        missing.get_or_insert_with(|| (referrer.to_string(), path.clone()));
        return Ok(None);
    };
    let value = parse(&path, bytes)?;
    let Some(object) = value.as_object() else {
        return Err(json_error(&path, "expected an object"));
    };
    let media_type = descriptor
        .get("mediaType")
        .or_else(|| object.get("mediaType"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let is_index = media_type.contains("index")
        || media_type.contains("manifest.list")
        || (object.contains_key("manifests") && !object.contains_key("config"));
    if is_index {
        for child in descriptors(object, &path)? {
            if is_attestation(child) {
                continue;
            }
            if let Some(found) = descend(c, child, &path, depth + 1, missing)? {
                return Ok(Some(found));
            }
        }
        return Ok(None);
    }
    if !object.contains_key("config") {
        return Err(json_error(&path, "neither an image manifest nor an index"));
    }
    Ok(Some((path, value)))
}

fn manifest_plan(
    c: &Collected,
    path: &str,
    manifest: Value,
    image: Option<String>,
) -> Result<Plan, InspectError> {
    let config_descriptor = manifest
        .get("config")
        .ok_or_else(|| json_error(path, "no \"config\""))?;
    let config_path = blob_path(config_descriptor, path)?;
    let layers = match manifest.get("layers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|d| blob_path(d, path))
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(json_error(path, "\"layers\" must be a list")),
    };
    let config = config(c, &config_path, path)?;
    Ok(Plan {
        layout: Layout::Oci,
        image,
        referrer: short(path),
        config,
        layers,
    })
}

/// Read the image config at `path`.
fn config(c: &Collected, path: &str, referrer: &str) -> Result<Config, InspectError> {
    let Some(bytes) = c.json(path) else {
        if c.layers.contains_key(c.resolve(path)) || c.other.contains(c.resolve(path)) {
            return Err(json_error(
                path,
                "the image config is not JSON, or over the 64 MiB limit",
            ));
        }
        return Err(InspectError::Missing {
            referrer: short(referrer),
            path: path.to_string(),
        });
    };
    let value = parse(path, bytes)?;
    let object = value
        .as_object()
        .ok_or_else(|| json_error(path, "expected an object"))?;
    let created_by = object
        .get("history")
        .and_then(Value::as_array)
        .map(|history| {
            history
                .iter()
                .filter(|h| h.get("empty_layer").and_then(Value::as_bool) != Some(true))
                .map(|h| {
                    h.get("created_by")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let diff_ids = object
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        });
    Ok(Config {
        created_by,
        diff_ids,
    })
}
