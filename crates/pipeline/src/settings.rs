//! What the pipeline runs with, resolved once: the flags ([`ImageArgs`], the same for
//! headroom's xtask and a sibling's), `docker/image.toml` ([`ImageConfig`]), headroom.toml's
//! `[lint]` and `[free]` tables and dive's `.dive-ci`, into one [`Settings`] value. Every
//! file is read and checked here, before any stage runs: an unknown key, a bad size or a bad
//! flag is an error naming the file (with its line) or the flag, and nothing has been
//! deleted or built yet.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use camino::{Utf8Path, Utf8PathBuf};
use headroom_disk::{Catalog, UserConfig, parse_size};
use headroom_docker::auth::Secret;
use headroom_docker::build::{BackendChoice, BuildSpec, SecretSpec};
use headroom_docker::relocate::ServiceManager;
use headroom_docker::smoke::GpuPolicy;
use headroom_docker::tags::TagRules;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, read_config};
use crate::gate::Thresholds;
use crate::lint::LintConfig;
use crate::report::Report;
use crate::runner::Runner;
use crate::stage::Stage;

/// `headroom_pipeline::settings::tool_config_path` is the path callers have named it by; it
/// lives in [`crate::config`].
pub use crate::config::tool_config_path;

/// The built-in catalog with headroom.toml's `[free]` table applied (extra items, protected
/// paths).
pub fn load_catalog(config: Option<&Path>) -> Result<(Catalog, UserConfig), ConfigError> {
    let Some(path) = tool_config_path(config) else {
        return Ok((Catalog::builtin(), UserConfig::default()));
    };
    let origin = path.display().to_string();
    let text = read_config(&path)?;
    let user = UserConfig::from_toml(&text, &origin)
        .map_err(|e| ConfigError::new(&origin, e.to_string()))?;
    let catalog = Catalog::builtin()
        .with_user(&user, &origin)
        .map_err(|e| ConfigError::new(&origin, e.to_string()))?;
    Ok((catalog, user))
}

/// The pipeline's flags: lint → free → build → inspect → smoke → push.
///
/// Settings come from the project's image.toml (paths in it are relative to that file):
/// `--config`, else `image.toml` beside the Dockerfile, else `image.toml` or
/// `docker/image.toml` in the context, else (with neither flag) `docker/image.toml` here.
/// Without one, the defaults: CONTEXT/Dockerfile. Without --push nothing leaves the machine.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ImageArgs {
    /// Configuration file [default: image.toml beside the Dockerfile, else image.toml or
    /// docker/image.toml in the context, else ./docker/image.toml; none: the defaults].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The Dockerfile [default: `dockerfile` in the config, else CONTEXT/Dockerfile].
    #[arg(long, value_name = "FILE")]
    pub dockerfile: Option<PathBuf>,
    /// The build context directory [default: `context` in the config, else the config's
    /// directory].
    #[arg(long, value_name = "DIR")]
    pub context: Option<PathBuf>,
    /// Repository to tag and push, e.g. 127.0.0.1:5000/ns/app or docker.io/org/app.
    #[arg(long, value_name = "NAME")]
    pub image: Option<String>,
    /// Extra tag (repeatable); `latest` and `sha-<short>` come from git.
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Build argument (repeatable).
    #[arg(long = "build-arg", value_name = "K=V")]
    pub build_args: Vec<String>,
    /// engine | buildx | auto: auto takes buildx when the Dockerfile or flags need BuildKit
    /// features the engine's builder lacks [default: `backend` in the config, else auto].
    #[arg(long, value_name = "BACKEND")]
    pub backend: Option<BackendChoice>,
    /// Import build cache (repeatable; buildx syntax, e.g. type=registry,ref=REPO:cache or
    /// type=local,src=DIR).
    #[arg(long = "cache-from", value_name = "SPEC")]
    pub cache_from: Vec<String>,
    /// Export build cache (repeatable; e.g. type=inline, type=local,dest=DIR;
    /// type=registry needs --push).
    #[arg(long = "cache-to", value_name = "SPEC")]
    pub cache_to: Vec<String>,
    /// Target platform (repeatable or comma-separated).
    #[arg(long = "platform", value_name = "OS/ARCH", value_delimiter = ',')]
    pub platforms: Vec<String>,
    /// Build secret id=NAME,src=PATH (repeatable); never stored in a layer.
    #[arg(long = "secret", value_name = "id=NAME,src=PATH")]
    pub secrets: Vec<SecretSpec>,
    /// Build stage to stop at.
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,
    /// buildx builder to use (a remote BuildKit).
    #[arg(long, value_name = "NAME")]
    pub builder: Option<String>,
    /// Push the tags after a successful build and smoke test.
    #[arg(long)]
    pub push: bool,
    /// Where the image goes from a builder apart from the engine: auto, load (--load),
    /// push (straight from the builder), push-pull (push, free the builder's state, pull for
    /// the smoke test) [default: `route` in the config, else auto].
    #[arg(long, value_name = "ROUTE")]
    pub route: Option<crate::route::RouteChoice>,
    /// The Actions cache's budget: a type=gha,mode=max export whose last image took more
    /// than half of it is made mode=min [default: `cache_budget` in the config, else 10G].
    #[arg(long, value_name = "SIZE")]
    pub cache_budget: Option<String>,
    /// Stages to skip (comma-separated): lint, free, build, inspect, smoke, push.
    #[arg(long, value_name = "STAGES", value_delimiter = ',')]
    pub skip: Vec<Stage>,
    /// Where to write the JSON report [default: on GitHub Actions
    /// $RUNNER_TEMP/headroom/report.json, elsewhere target/headroom/report.json in the
    /// project].
    #[arg(long, value_name = "PATH")]
    pub report: Option<PathBuf>,
    /// Read the registry password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// Registry username (with --password-stdin).
    #[arg(long, value_name = "USER")]
    pub username: Option<String>,
    /// Free-stage target: available bytes needed on the data root's filesystem.
    #[arg(long, value_name = "SIZE")]
    pub need: Option<String>,
    /// Let the free stage delete off a GitHub-hosted runner.
    #[arg(long)]
    pub yes: bool,
    /// Resolve the free stage's catalog paths under DIR (a tree standing for the runner's
    /// disk: the simulator, chroots); nothing outside it is touched, no apt, swap or Docker.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Never move the engine's data root to another filesystem: the free stage only
    /// deletes [default: `free.move_data_root` in the config, else move when it fits].
    #[arg(long)]
    pub no_move: bool,
    /// How to stop and start the engine for a data-root move: a program called as
    /// `PROGRAM stop` and `PROGRAM start` [default: `free.engine_service` in the config,
    /// else systemd where the machine runs it].
    #[arg(long, value_name = "PROGRAM")]
    pub engine_service: Option<PathBuf>,
    /// The engine's image store to build with: classic, or containerd (which makes
    /// `--cache-to` work with the default docker driver, and takes about twice the disk); the
    /// free stage switches it by restarting the engine [default: `free.engine_store`, else
    /// as it is].
    #[arg(long, value_name = "STORE")]
    pub engine_store: Option<EngineStore>,
    /// Run the free stage alongside lint and build instead of before them. While it is
    /// still deleting, the build keeps the floor (--free-floor): under it, the build waits
    /// at a step boundary for the free stage to finish.
    #[arg(long)]
    pub free_in_background: bool,
    /// With --free-in-background: the available bytes to keep on the data root's
    /// filesystem while the free stage runs [default: a quarter of the target].
    #[arg(long, value_name = "SIZE")]
    pub free_floor: Option<String>,
    /// The default branch, for the `latest` tag.
    #[arg(long, value_name = "BRANCH")]
    pub default_branch: Option<String>,
    /// Build without the build cache.
    #[arg(long)]
    pub no_cache: bool,
    /// GPUs for the smoke test: auto (when the engine has them), required, off
    /// [default: `smoke.gpu` in the config, else auto].
    #[arg(long, value_name = "POLICY")]
    pub gpu: Option<GpuPolicy>,
    /// Analyse the built image's layers and waste, and gate on its thresholds.
    #[arg(long)]
    pub inspect: bool,
    /// Build only these of the config's `[[variants]]` (repeatable or comma-separated)
    /// [default: all of them].
    #[arg(long = "variant", value_name = "NAME", value_delimiter = ',')]
    pub variants: Vec<String>,
}

/// `docker/image.toml`. Its paths are UTF-8, as TOML's strings are, and relative to the
/// file's directory unless absolute.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    pub dockerfile: Option<Utf8PathBuf>,
    pub context: Option<Utf8PathBuf>,
    pub image: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub default_branch: Option<String>,
    pub backend: Option<BackendChoice>,
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    #[serde(default)]
    pub platforms: Vec<String>,
    #[serde(default)]
    pub cache_from: Vec<String>,
    #[serde(default)]
    pub cache_to: Vec<String>,
    #[serde(default)]
    pub secrets: Vec<String>,
    pub builder: Option<String>,
    /// `--route`.
    pub route: Option<crate::route::RouteChoice>,
    /// `--cache-budget`.
    pub cache_budget: Option<String>,
    pub provenance: Option<bool>,
    pub sbom: Option<bool>,
    #[serde(default)]
    pub free: FreeConfig,
    /// The smoke stage runs when this table is present (or --gpu is given).
    pub smoke: Option<SmokeConfig>,
    /// The inspect stage runs when this table is present (or --inspect is given): waste and
    /// size thresholds, on top of dive's `.dive-ci` rules.
    pub inspect: Option<Thresholds>,
    /// A build matrix: each variant is the same build with its own build args (and target,
    /// Dockerfile), tagged with its name as a suffix; all of them in one report.
    #[serde(default)]
    pub variants: Vec<VariantConfig>,
}

/// `[[variants]]` of the image config.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VariantConfig {
    /// Lower-case letters, digits, `.`, `_`, `-`: it ends every tag (`latest-cuda12.1`).
    pub name: String,
    /// Over the config's build args.
    #[serde(default)]
    pub build_args: BTreeMap<String, String>,
    /// Extra tags for this variant alone, as written.
    #[serde(default)]
    pub tags: Vec<String>,
    pub target: Option<String>,
    pub dockerfile: Option<Utf8PathBuf>,
}

/// `[smoke]`: what the smoke test checks in the built image.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeConfig {
    pub gpu: Option<GpuPolicy>,
    /// The torch version the smoke test must find (the local `+cuXXX` part is ignored).
    pub torch: Option<String>,
    /// Minimum matrix-multiply throughput, TFLOP/s.
    pub min_tflops: Option<f64>,
    /// A model path or name for one load and one inference.
    pub model: Option<String>,
    /// Seconds to wait for the container's health.
    pub health_timeout: Option<u64>,
    /// Seconds the smoke script may run.
    pub timeout: Option<u64>,
    /// Python modules that must import in the image.
    #[serde(default)]
    pub imports: Vec<String>,
    /// Port of the health endpoint inside the container.
    pub port: Option<u16>,
    /// The smoke command [default: python3 /opt/headroom/smoke.py].
    pub command: Option<Vec<String>>,
    /// The exit status the smoke command must end with [default: 0].
    pub exit_code: Option<i64>,
    /// Whether the command prints a JSON result whose checks are judged [default: true for
    /// the default command, false for one of yours].
    pub json: Option<bool>,
    /// Whether the image has a CUDA build of torch [default: true]; `false` (the ci profile)
    /// makes `--gpu auto` run on CPU without asking, and `--gpu required` an error.
    pub cuda: Option<bool>,
    /// Whether to start the image with its own command and wait for it to be healthy
    /// [default: true].
    pub health: Option<bool>,
    /// The health endpoint's path [default: /health]; `""` turns the HTTP probe off (the
    /// image's own HEALTHCHECK alone decides).
    pub health_path: Option<String>,
}

/// `[free]` of the image config.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FreeConfig {
    /// Available bytes the build needs on the data root's filesystem, e.g. "25G".
    pub need: Option<String>,
    /// Whether the free stage may move the data root to a filesystem with more room before
    /// it deletes anything [default: true].
    pub move_data_root: Option<bool>,
    /// `--engine-service`.
    pub engine_service: Option<Utf8PathBuf>,
    /// `--engine-store`.
    pub engine_store: Option<EngineStore>,
}

/// The engine's image store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum EngineStore {
    /// The graph driver's store (overlay2).
    Classic,
    /// containerd's image store (`features.containerd-snapshotter`).
    Containerd,
}

impl ImageConfig {
    /// Read `path`; the default path may be absent (all defaults), a given one may not.
    pub fn load(path: &Path, is_default: bool) -> Result<ImageConfig, ConfigError> {
        if !path.exists() {
            if is_default {
                return Ok(ImageConfig::default());
            }
            return Err(ConfigError::new(
                format!("--config {}", path.display()),
                "no such file",
            ));
        }
        let origin = path.display().to_string();
        let text = read_config(path)?;
        toml::from_str(&text).map_err(|e| ConfigError::toml(&origin, &text, &e))
    }
}

/// The image config a run reads: `--config` when given; else the first file there is of
/// `image.toml` beside `--dockerfile`, `image.toml` and `docker/image.toml` in `--context`;
/// and only when neither flag is given, `docker/image.toml` and `image.toml` in the current
/// directory. A config is the user's project's: never one of another tree (headroom's own
/// included) because the command happens to run there.
pub fn image_config_path(args: &ImageArgs) -> Option<PathBuf> {
    if let Some(given) = &args.config {
        return Some(given.clone());
    }
    let mut candidates = Vec::new();
    if let Some(dockerfile) = &args.dockerfile {
        let dir = dockerfile.parent().unwrap_or(Path::new(""));
        candidates.push(dir.join("image.toml"));
    }
    if let Some(context) = &args.context {
        candidates.push(context.join("image.toml"));
        candidates.push(context.join("docker/image.toml"));
    }
    if args.dockerfile.is_none() && args.context.is_none() {
        candidates.push(PathBuf::from("docker/image.toml"));
        candidates.push(PathBuf::from("image.toml"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Where the free stage's target comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedSource {
    /// `--need` or `free.need`.
    Given,
    /// What the last report's build consumed, plus a quarter and 2 GB.
    LastReport,
}

/// One build of the matrix, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub name: String,
    pub build_args: BTreeMap<String, String>,
    pub tags: Vec<String>,
    pub target: Option<String>,
    pub dockerfile: Option<PathBuf>,
}

/// Everything a pipeline run needs, resolved and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The build, without tags and labels (they come from git when the pipeline runs).
    pub spec: BuildSpec,
    pub tag_rules: TagRules,
    /// Where git facts (tags, labels) are read: the first of the context, the config's
    /// directory and the workspace that is in a git repository.
    pub git_dirs: Vec<PathBuf>,
    pub backend: BackendChoice,
    pub push: bool,
    /// Where the image goes from a container builder (`crate::route`).
    pub route: crate::route::RouteChoice,
    /// The Actions cache's budget in bytes.
    pub cache_budget: u64,
    /// The image's expected size: the last report's image.
    pub expected_image_bytes: Option<u64>,
    pub skip: Vec<Stage>,
    pub report_path: PathBuf,
    /// `--password-stdin`'s password: `Debug` shows `***`.
    pub password: Option<Secret>,
    pub username: Option<String>,
    /// The free stage's target, and where it came from.
    pub need: Option<(u64, NeedSource)>,
    /// May delete without a GitHub-hosted runner (`--yes`, or `--root`).
    pub yes: bool,
    pub root: Option<PathBuf>,
    /// The free stage may move the data root first (`--no-move`, `free.move_data_root`).
    pub move_data_root: bool,
    /// How the engine is stopped and started for a move; `None`: no move is possible.
    pub engine_service: Option<ServiceManager>,
    /// The image store the build must have (`--engine-store`); `None`: as it is.
    pub engine_store: Option<EngineStore>,
    pub free_in_background: bool,
    pub free_floor: Option<u64>,
    pub catalog: Catalog,
    pub protect: Vec<String>,
    pub lint: LintConfig,
    /// The smoke test, when it runs: `[smoke]`, or the defaults with `--gpu`.
    pub smoke: Option<SmokeConfig>,
    pub gpu: Option<GpuPolicy>,
    /// The inspect gate's thresholds, when the stage runs.
    pub inspect: Option<Thresholds>,
    /// Whether deleting needs no `--yes` here (a GitHub-hosted runner).
    pub hosted_runner: bool,
    /// The matrix; empty: one build.
    pub variants: Vec<Variant>,
    /// Within a matrix: the variant this run builds; its name ends every computed tag.
    pub variant: Option<Variant>,
    /// Whether the run writes `$GITHUB_OUTPUT` and the step summary (a matrix writes them
    /// once for all its variants).
    pub github_outputs: bool,
}

impl Settings {
    /// Resolve flags and files. `workspace` is the project's root: the default report goes
    /// to its `target/headroom/report.json`. Reads headroom.toml and `.dive-ci` from the
    /// working directory, and the password from standard input with `--password-stdin`.
    pub fn resolve(args: &ImageArgs, workspace: &Path) -> Result<Settings, ConfigError> {
        let found = image_config_path(args);
        let config = match (&args.config, &found) {
            (Some(given), _) => ImageConfig::load(given, false)?,
            (None, Some(path)) => ImageConfig::load(path, true)?,
            (None, None) => ImageConfig::default(),
        };
        let config_path = found.unwrap_or_else(|| PathBuf::from("image.toml"));
        let origin = config_path.display().to_string();
        // Without a config, paths are the flags' own (relative to the current directory).
        let base = config_path
            .parent()
            .filter(|_| config_path.is_file())
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let spec = build_spec(args, &config, &base, &origin)?;
        let report_path = args
            .report
            .clone()
            .unwrap_or_else(|| default_report_path(workspace));
        let password = if args.password_stdin {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| {
                ConfigError::new("--password-stdin", format!("reading standard input: {e}"))
            })?;
            Some(Secret::new(text.trim_end_matches(['\n', '\r'])))
        } else {
            None
        };
        let size = |flag: &str, v: &str| {
            parse_size(v).map_err(|e| ConfigError::new(flag, format!("{v:?}: {e}")))
        };
        let last = Report::read(&report_path).ok();
        let cache_budget = match (&args.cache_budget, &config.cache_budget) {
            (Some(b), _) => size("--cache-budget", b)?,
            (None, Some(b)) => size(&format!("{origin}: cache_budget"), b)?,
            (None, None) => crate::route::ACTIONS_CACHE_BUDGET,
        };
        let need = match (&args.need, &config.free.need) {
            (Some(n), _) => Some((size("--need", n)?, NeedSource::Given)),
            (None, Some(n)) => Some((size(&format!("{origin}: free.need"), n)?, NeedSource::Given)),
            (None, None) => last
                .as_ref()
                .and_then(crate::policy::estimate_need)
                .map(|n| (n, NeedSource::LastReport)),
        };
        let free_floor = match &args.free_floor {
            Some(f) => Some(size("--free-floor", f)?),
            None => None,
        };
        if let Some(root) = &args.root {
            if !root.is_dir() {
                return Err(ConfigError::new(
                    format!("--root {}", root.display()),
                    "not a directory",
                ));
            }
        }
        let engine_service = match (&args.engine_service, &config.free.engine_service) {
            (Some(p), _) => Some(service_program("--engine-service", p)?),
            (None, Some(p)) => Some(service_program(
                &format!("{origin}: free.engine_service"),
                &in_config_dir(&base, p),
            )?),
            // Under --root the engine is not the machine's own: never restart that one.
            (None, None) if args.root.is_none() => ServiceManager::detect(),
            (None, None) => None,
        };
        let (catalog, user) = load_catalog(None)?;
        let lint = LintConfig::load(None)?;
        let smoke = match (&config.smoke, args.gpu) {
            (Some(c), _) => Some(c.clone()),
            (None, Some(_)) => Some(SmokeConfig::default()),
            (None, None) => None,
        };
        let inspect = if config.inspect.is_some() || args.inspect {
            let mut t = crate::gate::thresholds(Path::new(".dive-ci"), Path::new("/nonexistent"))?;
            if let Some(ours) = &config.inspect {
                t = t.with(ours);
            }
            Some(t.checked()?)
        } else {
            None
        };
        let mut git_dirs = vec![spec.context.clone()];
        if !base.as_os_str().is_empty() {
            git_dirs.push(base.clone());
        }
        git_dirs.push(workspace.to_path_buf());
        Ok(Settings {
            tag_rules: TagRules {
                default_branch: args
                    .default_branch
                    .clone()
                    .or_else(|| config.default_branch.clone()),
                extra: config.tags.iter().chain(&args.tags).cloned().collect(),
            },
            git_dirs,
            backend: args.backend.or(config.backend).unwrap_or_default(),
            push: args.push,
            route: args.route.or(config.route).unwrap_or_default(),
            cache_budget,
            expected_image_bytes: last.as_ref().and_then(|r| r.image.size_bytes),
            skip: args.skip.clone(),
            report_path,
            password,
            username: args.username.clone(),
            need,
            yes: args.yes,
            root: args.root.clone(),
            move_data_root: !args.no_move && config.free.move_data_root.unwrap_or(true),
            engine_service,
            engine_store: args.engine_store.or(config.free.engine_store),
            free_in_background: args.free_in_background,
            free_floor,
            catalog,
            protect: user.protect,
            lint,
            smoke,
            gpu: args.gpu,
            inspect,
            hosted_runner: Runner::detect().may_delete_unasked(),
            variants: variants(&config, &args.variants, &base, &origin)?,
            variant: None,
            github_outputs: true,
            spec,
        })
    }

    pub fn skipped(&self, stage: Stage) -> bool {
        self.skip.contains(&stage)
    }

    /// The free stage deletes (rather than printing its plan): on a GitHub-hosted runner,
    /// with `--yes`, or under `--root`.
    pub fn may_delete(&self) -> bool {
        self.hosted_runner || self.yes || self.root.is_some()
    }
}

/// The config's `[[variants]]`, checked, narrowed to `--variant`s when given.
fn variants(
    config: &ImageConfig,
    wanted: &[String],
    base: &Path,
    origin: &str,
) -> Result<Vec<Variant>, ConfigError> {
    let mut out: Vec<Variant> = Vec::new();
    for (i, v) in config.variants.iter().enumerate() {
        let what = format!("{origin}: variants[{i}] (name {:?})", v.name);
        let valid = !v.name.is_empty()
            && v.name.len() <= 64
            && v.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
            && !v.name.starts_with(['.', '-']);
        if !valid {
            return Err(ConfigError::new(
                what,
                "a name is 1 to 64 of a-z, 0-9, '.', '_', '-', not starting with '.' or '-' (it \
                 ends every tag of the variant)",
            ));
        }
        if out.iter().any(|o| o.name == v.name) {
            return Err(ConfigError::new(what, "two variants have this name"));
        }
        out.push(Variant {
            name: v.name.clone(),
            build_args: v.build_args.clone(),
            tags: v.tags.clone(),
            target: v.target.clone(),
            dockerfile: v.dockerfile.as_deref().map(|d| in_config_dir(base, d)),
        });
    }
    if wanted.is_empty() {
        return Ok(out);
    }
    for w in wanted {
        if !out.iter().any(|v| &v.name == w) {
            let known: Vec<&str> = out.iter().map(|v| v.name.as_str()).collect();
            return Err(ConfigError::new(
                format!("--variant {w}"),
                if known.is_empty() {
                    format!("{origin} has no [[variants]]")
                } else {
                    format!("not among {origin}'s variants: {}", known.join(", "))
                },
            ));
        }
    }
    out.retain(|v| wanted.contains(&v.name));
    Ok(out)
}

impl Settings {
    /// The settings of one variant's run: its build args over the config's, its target and
    /// Dockerfile, its report beside the matrix's (`report.NAME.json`), and no GitHub
    /// outputs of its own.
    pub fn for_variant(&self, v: &Variant) -> Settings {
        let mut s = self.clone();
        s.variants = Vec::new();
        s.variant = Some(v.clone());
        s.github_outputs = false;
        s.spec.build_args.extend(v.build_args.clone());
        if let Some(t) = &v.target {
            s.spec.target = Some(t.clone());
        }
        if let Some(d) = &v.dockerfile {
            s.spec.dockerfile = d.clone();
        }
        s.report_path = variant_report_path(&self.report_path, &v.name);
        s
    }
}

/// A path the config gives: relative to the config's directory `base`, unless absolute.
fn in_config_dir(base: &Path, p: &Utf8Path) -> PathBuf {
    if p.is_absolute() {
        p.as_std_path().to_path_buf()
    } else {
        base.join(p)
    }
}

/// Where the report goes without `--report`: on GitHub Actions `$RUNNER_TEMP/headroom/
/// report.json` (the job's user may write there, and it is outside the checkout), elsewhere
/// the project's `target/headroom/report.json`.
pub fn default_report_path(workspace: &Path) -> PathBuf {
    let temp = std::env::var_os("RUNNER_TEMP").filter(|t| !t.is_empty());
    match temp {
        Some(temp) if crate::Runner::detect().github_actions => {
            PathBuf::from(temp).join("headroom/report.json")
        }
        _ => workspace.join("target/headroom/report.json"),
    }
}

/// `target/headroom/report.json` → `target/headroom/report.NAME.json`.
pub fn variant_report_path(report: &Path, name: &str) -> PathBuf {
    let stem = report
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "report".into());
    report.with_file_name(format!("{stem}.{name}.json"))
}

/// `--engine-service PROGRAM`: it must be there and executable.
fn service_program(what: &str, path: &Path) -> Result<ServiceManager, ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            Ok(ServiceManager::script(path))
        }
        Ok(_) => Err(ConfigError::new(
            format!("{what} {}", path.display()),
            "not an executable file",
        )),
        Err(e) => Err(ConfigError::new(
            format!("{what} {}", path.display()),
            e.to_string(),
        )),
    }
}

/// The build as flags and config describe it (tags and labels come later, from git).
fn build_spec(
    args: &ImageArgs,
    config: &ImageConfig,
    base: &Path,
    origin: &str,
) -> Result<BuildSpec, ConfigError> {
    let rel = |p: &Utf8PathBuf| in_config_dir(base, p);
    let context =
        match &args.context {
            Some(c) => c.clone(),
            None => config.context.as_ref().map(rel).unwrap_or_else(|| {
                match base.as_os_str().is_empty() {
                    true => PathBuf::from("."),
                    false => base.to_path_buf(),
                }
            }),
        };
    let dockerfile = match &args.dockerfile {
        Some(f) => f.clone(),
        None => config
            .dockerfile
            .as_ref()
            .map(rel)
            .unwrap_or_else(|| context.join("Dockerfile")),
    };
    let image = args
        .image
        .clone()
        .or_else(|| config.image.clone())
        .ok_or_else(|| {
            ConfigError::new(
                "--image",
                format!("no image name: pass --image NAME or set `image` in {origin}"),
            )
        })?;
    let last = image.rsplit('/').next().unwrap_or(&image);
    if image.contains('@')
        || last.contains(':')
        || image.is_empty()
        || image != image.to_ascii_lowercase()
    {
        return Err(ConfigError::new(
            format!("--image {image:?}"),
            "give the repository only, in lower case (e.g. registry:5000/ns/app); tags come \
             from git and --tag",
        ));
    }
    let mut build_args = config.build_args.clone();
    for kv in &args.build_args {
        let (k, v) = kv
            .split_once('=')
            .ok_or_else(|| ConfigError::new(format!("--build-arg {kv:?}"), "expected K=V"))?;
        build_args.insert(k.to_string(), v.to_string());
    }
    let mut secrets = Vec::new();
    for s in &config.secrets {
        secrets.push(
            s.parse::<SecretSpec>()
                .map_err(|e| ConfigError::new(format!("{origin}: secrets"), e.to_string()))?,
        );
    }
    secrets.extend(args.secrets.iter().cloned());
    let or = |flag: &Vec<String>, conf: &Vec<String>| {
        if flag.is_empty() {
            conf.clone()
        } else {
            flag.clone()
        }
    };
    let cache_to = or(&args.cache_to, &config.cache_to);
    if !args.push && cache_to.iter().any(|c| c.contains("type=registry")) {
        return Err(ConfigError::new(
            "--cache-to type=registry",
            "it uploads to a registry, and without --push nothing may leave this machine: add \
             --push, or use type=inline or type=local",
        ));
    }
    Ok(BuildSpec {
        context,
        dockerfile,
        image,
        tags: Vec::new(),
        build_args,
        target: args.target.clone().or_else(|| config.target.clone()),
        labels: BTreeMap::new(),
        platforms: or(&args.platforms, &config.platforms),
        secrets,
        cache_from: or(&args.cache_from, &config.cache_from),
        cache_to,
        builder: args.builder.clone().or_else(|| config.builder.clone()),
        provenance: config.provenance,
        sbom: config.sbom,
        no_cache: args.no_cache,
        // The build stage routes it (`stage::output`).
        output: Default::default(),
        registry_logins: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows_in_the_settings_debug_output() {
        let workspace = tempfile::tempdir().expect("a temporary directory");
        let args = ImageArgs {
            config: None,
            image: Some("registry.test/ns/app".into()),
            ..ImageArgs::default()
        };
        let mut settings = Settings::resolve(&args, workspace.path()).expect("resolves");
        let password = "hunter2-correct-horse";
        settings.password = Some(Secret::new(password));
        settings.username = Some("ci".into());
        let shown = format!("{settings:?}");
        assert!(!shown.contains(password), "{shown}");
        assert!(shown.contains("password: Some(***)"), "{shown}");
        let shown = format!("{:#?}", settings.clone());
        assert!(!shown.contains(password), "{shown}");
    }

    #[test]
    fn config_paths_are_relative_to_the_config_unless_absolute() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("docker/image.toml");
        std::fs::create_dir_all(config.parent().expect("a parent")).expect("mkdir");
        std::fs::write(
            &config,
            "image = \"registry.test/ns/app\"\ndockerfile = \"Dockerfile.gpu\"\n\
             context = \"..\"\n[[variants]]\nname = \"abs\"\ndockerfile = \"/srv/Dockerfile\"\n",
        )
        .expect("write the config");
        let args = ImageArgs {
            config: Some(config.clone()),
            ..ImageArgs::default()
        };
        let settings = Settings::resolve(&args, dir.path()).expect("resolves");
        let base = dir.path().join("docker");
        assert_eq!(settings.spec.dockerfile, base.join("Dockerfile.gpu"));
        assert_eq!(settings.spec.context, base.join(".."));
        assert_eq!(
            settings.variants[0].dockerfile.as_deref(),
            Some(Path::new("/srv/Dockerfile"))
        );
    }
}
