//! The configuration reference as data: every key of `image.toml` and `headroom.toml`, its
//! type, default, the flag that overrides it and what it means. `docs/configuration.md` is
//! [`markdown`] of it, and the tidy tests keep both in step with the settings' structs (each
//! key parses; each field has a row).

/// One key of a configuration file.
#[derive(Debug, Clone, Copy)]
pub struct Key {
    /// `image.toml` or `headroom.toml`.
    pub file: &'static str,
    /// The table it is in (`""` for the top level, `[[variants]]` for the array's entries).
    pub table: &'static str,
    pub key: &'static str,
    /// Its type as TOML writes it.
    pub kind: &'static str,
    /// What holds when it is not set.
    pub default: &'static str,
    /// The flag of `headroom image` that overrides it, if any.
    pub flag: Option<&'static str>,
    pub meaning: &'static str,
    /// A value that parses, as TOML (the tidy test writes each key with it).
    pub example: &'static str,
}

#[allow(clippy::too_many_arguments)] // one row of a table, named by position as in the table
const fn key(
    file: &'static str,
    table: &'static str,
    key: &'static str,
    kind: &'static str,
    default: &'static str,
    flag: Option<&'static str>,
    meaning: &'static str,
    example: &'static str,
) -> Key {
    Key {
        file,
        table,
        key,
        kind,
        default,
        flag,
        meaning,
        example,
    }
}

const I: &str = "image.toml";
const H: &str = "headroom.toml";

/// Every key, in the order the reference shows them.
#[rustfmt::skip]
pub const KEYS: &[Key] = &[
    key(I, "", "dockerfile", "path", "`CONTEXT/Dockerfile`", Some("--dockerfile"), "The Dockerfile, relative to this file.", "\"Dockerfile\""),
    key(I, "", "context", "path", "this file's directory", Some("--context"), "The build context directory, relative to this file.", "\".\""),
    key(I, "", "image", "string", "none: required", Some("--image"), "Repository to tag and push, lower case, without a tag (`registry:5000/ns/app`).", "\"registry.test/ns/app\""),
    key(I, "", "tags", "list of strings", "`[]`", Some("--tag"), "Extra tags, beside `latest` (on the default branch), `sha-SHORT` and a release tag's semver tags, which come from git.", "[\"nightly\"]"),
    key(I, "", "default_branch", "string", "git's `origin/HEAD`, else `main`/`master`", Some("--default-branch"), "The branch whose builds are tagged `latest`.", "\"main\""),
    key(I, "", "backend", "`engine` \\| `buildx` \\| `auto`", "`auto`", Some("--backend"), "Who builds: the engine's API, or `docker buildx`; `auto` takes buildx when the Dockerfile or flags need BuildKit features the engine's builder lacks.", "\"auto\""),
    key(I, "", "build_args", "table of strings", "`{}`", Some("--build-arg K=V"), "Build arguments; a flag's value wins over the same key here.", "{ PYTHON = \"3.11\" }"),
    key(I, "", "target", "string", "the last stage", Some("--target"), "Build stage to stop at.", "\"runtime\""),
    key(I, "", "platforms", "list of strings", "the engine's", Some("--platform"), "Target platforms (`linux/amd64`, ...).", "[\"linux/amd64\"]"),
    key(I, "", "cache_from", "list of strings", "`[]`", Some("--cache-from"), "Build cache sources, buildx syntax (`type=registry,ref=REPO:cache`, `type=gha`).", "[\"type=local,src=/tmp/cache\"]"),
    key(I, "", "cache_to", "list of strings", "`[]`", Some("--cache-to"), "Build cache exports, buildx syntax; `type=registry` needs `--push`.", "[\"type=inline\"]"),
    key(I, "", "secrets", "list of strings", "`[]`", Some("--secret"), "Build secrets as `id=NAME,src=PATH`; never stored in a layer.", "[\"id=token,src=token.txt\"]"),
    key(I, "", "builder", "string", "the current buildx builder", Some("--builder"), "buildx builder to use (a remote BuildKit).", "\"ci\""),
    key(I, "", "route", "`auto` \\| `load` \\| `push` \\| `push-pull`", "`auto`", Some("--route"), "Where the image goes out of a container builder: pushed from it, pushed then pulled with the builder's state freed between, or loaded; `auto` chooses from the builder, the stages that need the image, the free space and the last image's size.", "\"push-pull\""),
    key(I, "", "cache_budget", "size", "`10G`", Some("--cache-budget"), "The Actions cache's budget: a `type=gha,mode=max` export whose last image took more than half of it becomes `mode=min`.", "\"10G\""),
    key(I, "", "provenance", "bool", "buildx's default", None, "Attach a provenance attestation (buildx only).", "false"),
    key(I, "", "sbom", "bool", "buildx's default", None, "Attach an SBOM attestation (buildx only).", "false"),
    key(I, "free", "need", "size (`30G`, `25GiB`)", "what the last report's build took, plus a quarter and 2 GB", Some("--need"), "Available bytes the build needs on the engine data root's filesystem.", "\"25G\""),
    key(I, "free", "move_data_root", "bool", "`true`", Some("--no-move"), "Whether the free stage may move the engine's data root to a filesystem with more room before it deletes anything.", "true"),
    key(I, "free", "engine_service", "path", "systemd, where the machine runs it", Some("--engine-service"), "A program called as `PROGRAM stop` and `PROGRAM start` to restart the engine for a data-root move.", "\"/usr/local/bin/engine\""),
    key(I, "free", "engine_store", "`classic` \\| `containerd`", "as it is", Some("--engine-store"), "The engine's image store to build with; containerd makes `--cache-to` work with the default driver.", "\"classic\""),
    key(I, "smoke", "gpu", "`auto` \\| `required` \\| `off`", "`auto`", Some("--gpu"), "GPUs for the smoke test. The `[smoke]` table turns the smoke stage on.", "\"auto\""),
    key(I, "smoke", "command", "list of strings", "`python3 /opt/headroom/smoke.py`", None, "The smoke command run in the image.", "[\"python3\", \"-c\", \"print(1)\"]"),
    key(I, "smoke", "exit_code", "integer", "`0`", None, "The exit status the smoke command must end with.", "0"),
    key(I, "smoke", "json", "bool", "`true` for the default command, `false` for yours", None, "Whether the command's `HEADROOM-SMOKE-JSON` result line is judged.", "false"),
    key(I, "smoke", "cuda", "bool", "`true`", None, "Whether the image has a CUDA build of torch; `false` (the ci profile) makes `--gpu auto` run on CPU without asking and `--gpu required` an error.", "false"),
    key(I, "smoke", "health", "bool", "`true`", None, "Whether to start the image with its own command and wait for it to be healthy.", "true"),
    key(I, "smoke", "health_path", "string", "`/health`", None, "The health endpoint's path; `\"\"` leaves the image's own HEALTHCHECK alone to decide.", "\"/health\""),
    key(I, "smoke", "timeout", "integer (seconds)", "the smoke stage's default", None, "Seconds the smoke command may run.", "300"),
    key(I, "smoke", "health_timeout", "integer (seconds)", "the smoke stage's default", None, "Seconds to wait for the container's health.", "60"),
    key(I, "smoke", "port", "integer", "`8000`", None, "Port of the health endpoint inside the container.", "8000"),
    key(I, "smoke", "torch", "string", "any", None, "The torch version the smoke test must find (a local `+cuXXX` part is ignored).", "\"2.3.1\""),
    key(I, "smoke", "min_tflops", "float", "none", None, "Minimum matrix-multiply throughput, TFLOP/s.", "1.5"),
    key(I, "smoke", "imports", "list of strings", "`[]`", None, "Python modules that must import in the image.", "[\"numpy\"]"),
    key(I, "smoke", "model", "string", "none", None, "A model path or name for one load and one inference.", "\"/models/tiny\""),
    key(I, "inspect", "lowest_efficiency", "float (0–1)", "dive's `0.9`", Some("--inspect"), "Fail under this image efficiency. The `[inspect]` table (or `--inspect`) turns the inspect stage on.", "0.9"),
    key(I, "inspect", "highest_wasted_bytes", "size", "disabled", None, "Fail over this many wasted bytes.", "\"100M\""),
    key(I, "inspect", "highest_user_wasted_percent", "float (0–1)", "dive's `0.1`", None, "Fail over this share of wasted bytes.", "0.1"),
    key(I, "inspect", "max_image_size", "size", "none", None, "Fail over this image size.", "\"20G\""),
    key(I, "inspect", "max_layers", "integer", "none", None, "Fail over this many layers.", "40"),
    key(I, "[[variants]]", "name", "string", "none: required", Some("--variant"), "Lower-case letters, digits, `.`, `_`, `-`; it ends every tag of the variant (`latest-cuda12`).", "\"cuda12\""),
    key(I, "[[variants]]", "build_args", "table of strings", "`{}`", None, "Over the config's build args.", "{ CUDA = \"12.1\" }"),
    key(I, "[[variants]]", "tags", "list of strings", "`[]`", None, "Extra tags for this variant alone, as written.", "[\"cu121\"]"),
    key(I, "[[variants]]", "target", "string", "the config's", None, "Build stage to stop at.", "\"runtime\""),
    key(I, "[[variants]]", "dockerfile", "path", "the config's", None, "The variant's Dockerfile, relative to this file.", "\"Dockerfile.cuda\""),
    key(H, "lint", "ignore", "list of rule ids", "`[]`", None, "Rules never reported (`DL3059`, `HR001`, ...).", "[\"DL3059\"]"),
    key(H, "lint", "fail_on", "`error` \\| `warning` \\| `info` \\| `none`", "`lint`: `info` (as hadolint); the pipeline's lint stage: `error`", Some("--fail-on (lint)"), "The least severe finding that fails.", "\"warning\""),
    key(H, "lint", "max_layers", "integer", "the rule's default", None, "HR006's limit on layers.", "12"),
    key(H, "lint", "severity", "table of rule id to severity", "`{}`", None, "A rule's severity, changed.", "{ DL3059 = \"warning\" }"),
    key(H, "free", "protect", "list of paths", "`[]`", None, "Paths never deleted, nor anything below them.", "[\"/opt/keep\"]"),
    key(H, "free", "item", "array of tables (`[[free.item]]`: `name`, `description`, `paths`, `env_paths`, `reclaim`, `packages`, `opt_in`, `fixed_seconds`)", "the built-in catalog", Some("--only / --skip"), "Items added to the catalog; one with a built-in name replaces it.", "[{ name = \"scratch\", paths = [\"/scratch\"] }]"),
];

/// The reference as Markdown: `docs/configuration.md`.
pub fn markdown() -> String {
    let mut out = String::from(
        "<!-- Generated from crates/pipeline/src/reference.rs by the tidy test \
         `configuration_reference_is_in_step`: run it with UPDATE_EXPECT=1 to rewrite. -->\n\
         # Configuration reference\n\n\
         `image.toml` configures `headroom image`: `--config FILE`, else `image.toml` beside \
         `--dockerfile`, else `image.toml` or `docker/image.toml` in `--context`, else (with \
         neither flag) `./docker/image.toml`; without one, every key has its default. Paths in \
         it are relative to it. `headroom.toml` (`--config` of `lint` and `free`, else \
         `./headroom.toml`) holds the `[lint]` and `[free]` tables. An unknown key is an error \
         naming the file and line. A flag given on the command line wins over its key.\n",
    );
    let mut current = ("", "");
    for k in KEYS {
        if (k.file, k.table) != current {
            current = (k.file, k.table);
            let table = match k.table {
                "" => String::new(),
                t if t.starts_with('[') => format!(" `{t}`"),
                t => format!(" `[{t}]`"),
            };
            out.push_str(&format!(
                "\n## `{}`{table}\n\n| key | type | default | flag | meaning |\n|---|---|---|---|---|\n",
                k.file
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            k.key,
            k.kind,
            k.default,
            k.flag
                .map(|f| format!("`{f}`"))
                .unwrap_or_else(|| "—".into()),
            k.meaning
        ));
    }
    out
}
