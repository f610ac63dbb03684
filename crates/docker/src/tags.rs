//! Image tags and OCI labels from git, the way `docker/metadata-action` computes them.
//!
//! A local `cargo xtask image` and the CI workflow should tag the same commit the same way,
//! without a GitHub Action in the loop. [`git_facts`] reads what git (or, on GitHub Actions,
//! the `GITHUB_*` variables) says about `HEAD`; [`compute_tags`] turns that into `latest`,
//! `sha-1234567` and semver tags; [`oci_labels`] into the `org.opencontainers.image.*` labels.

use std::collections::BTreeMap;
use std::path::Path;

/// What git says about the checkout being built.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GitFacts {
    /// Full commit id of `HEAD`.
    pub sha: Option<String>,
    /// The branch checked out; `None` when detached.
    pub branch: Option<String>,
    /// A tag that points exactly at `HEAD`.
    pub tag: Option<String>,
    /// The repository's default branch when it can be told (`origin/HEAD`, or the GitHub
    /// event payload on Actions).
    pub default_branch: Option<String>,
    /// Uncommitted changes (including untracked, not ignored, files).
    pub dirty: bool,
    /// `remote.origin.url` as configured (may hold credentials: see [`normalize_source`]).
    pub remote_url: Option<String>,
}

/// What to tag besides the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagRules {
    /// The branch whose builds are `latest`; default: [`GitFacts::default_branch`], else
    /// `main` or `master`.
    pub default_branch: Option<String>,
    /// More tags, as given by the user (validated).
    pub extra: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TagError {
    #[error(
        "invalid image tag {tag:?}: a tag is 1 to 128 characters of letters, digits, '_', '.' \
         and '-', and may not start with '.' or '-'"
    )]
    Invalid { tag: String },
}

/// A `major.minor.patch[-prerelease][+build]` version (leading `v` allowed in the tag).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SemVer {
    major: u64,
    minor: u64,
    patch: u64,
    pre: Option<String>,
    build: Option<String>,
}

impl SemVer {
    /// Strict SemVer 2.0: numbers without leading zeros, non-empty dot-separated identifiers
    /// of `[0-9A-Za-z-]`, numeric prerelease identifiers without leading zeros.
    fn parse(tag: &str) -> Option<Self> {
        let s = tag.strip_prefix(['v', 'V']).unwrap_or(tag);
        let (s, build) = match s.split_once('+') {
            Some((s, b)) => (s, Some(b)),
            None => (s, None),
        };
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (s, None),
        };
        let num = |n: &str| -> Option<u64> {
            let ok = !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
                && (n == "0" || !n.starts_with('0'));
            if ok { n.parse().ok() } else { None }
        };
        let mut parts = core.split('.');
        let (major, minor, patch) = (
            num(parts.next()?)?,
            num(parts.next()?)?,
            num(parts.next()?)?,
        );
        if parts.next().is_some() {
            return None;
        }
        let idents_ok = |s: &str, numeric_rule: bool| {
            s.split('.').all(|id| {
                !id.is_empty()
                    && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !(numeric_rule
                        && id.len() > 1
                        && id.starts_with('0')
                        && id.bytes().all(|b| b.is_ascii_digit()))
            })
        };
        if pre.is_some_and(|p| !idents_ok(p, true)) || build.is_some_and(|b| !idents_ok(b, false)) {
            return None;
        }
        Some(Self {
            major,
            minor,
            patch,
            pre: pre.map(str::to_string),
            build: build.map(str::to_string),
        })
    }

    /// The full version as a Docker tag: `+` (not allowed in tags) becomes `_`, as Helm does
    /// for OCI tags.
    fn version_tag(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if let Some(pre) = &self.pre {
            s.push('-');
            s.push_str(pre);
        }
        if let Some(build) = &self.build {
            s.push('_');
            s.push_str(build);
        }
        s
    }

    /// The version as written in labels (`+` kept).
    fn version_label(&self) -> String {
        let mut s = format!("{}.{}.{}", self.major, self.minor, self.patch);
        if let Some(pre) = &self.pre {
            s.push('-');
            s.push_str(pre);
        }
        if let Some(build) = &self.build {
            s.push('+');
            s.push_str(build);
        }
        s
    }
}

/// Whether `tag` is a valid Docker tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn is_valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    let Some(first) = bytes.next() else {
        return false;
    };
    tag.len() <= 128
        && (first.is_ascii_alphanumeric() || first == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A git ref name made into a Docker tag the way metadata-action sanitises: every run of
/// characters a tag cannot hold becomes `-`, a leading `.`/`-` is dropped, and the result is
/// cut to 128 characters. `None` if nothing is left.
fn sanitize_tag(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_start_matches(['.', '-']);
    let out: String = out.chars().take(128).collect();
    is_valid_tag(&out).then_some(out)
}

/// `sha-` and the first 7 characters of `sha`, if it looks like a commit id.
fn short_sha(sha: &str) -> Option<String> {
    let ok = sha.len() >= 7 && sha.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| sha[..7].to_ascii_lowercase())
}

/// The tags for an image built from `facts`, in a stable order:
/// the version tags (`1.2.3`, `1.2`, `1`), `latest`, `sha-1234567`, then `rules.extra`.
/// Duplicates are dropped (first occurrence kept).
///
/// Decisions:
/// - A semver tag (`v1.2.3` or `1.2.3`) yields `1.2.3`, `1.2`, `1`, as metadata-action's
///   `type=semver` does; the git tag's own spelling (`v1.2.3`) is not added (put it in
///   `extra` if wanted). For `0.y.z` the bare major `0` is not emitted: 0.x promises no
///   compatibility, and `0` would float across breaking releases (metadata-action's README
///   suggests the same opt-out).
/// - A prerelease (`v1.2.3-rc.1`) yields only `1.2.3-rc.1`: no `1.2`, `1`, or `latest`
///   from the tag. Build metadata (`+b5`) becomes `_b5` since `+` is not allowed in tags.
/// - A git tag that is not semver is used as it is, sanitised (metadata-action's
///   `type=ref,event=tag`).
/// - `latest` when the checked-out branch is the default branch (`rules.default_branch`,
///   else `facts.default_branch`, else `main` or `master`), or when `HEAD` is detached at a
///   stable semver tag (a tag build on CI). A stable tag on a non-default branch (a backport)
///   does not move `latest`.
/// - `facts.dirty` is not looked at: whether to refuse or mark a dirty build is the
///   caller's policy.
pub fn compute_tags(facts: &GitFacts, rules: &TagRules) -> Result<Vec<String>, TagError> {
    fn push(tag: String, tags: &mut Vec<String>) {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let mut tags: Vec<String> = Vec::new();

    let semver = facts.tag.as_deref().and_then(SemVer::parse);
    let stable = semver.as_ref().is_some_and(|v| v.pre.is_none());
    match (&semver, facts.tag.as_deref()) {
        (Some(v), _) => {
            push(v.version_tag(), &mut tags);
            if v.pre.is_none() {
                push(format!("{}.{}", v.major, v.minor), &mut tags);
                if v.major > 0 {
                    push(v.major.to_string(), &mut tags);
                }
            }
        }
        (None, Some(tag)) => {
            if let Some(t) = sanitize_tag(tag) {
                push(t, &mut tags);
            }
        }
        (None, None) => {}
    }

    let on_default = match (
        facts.branch.as_deref(),
        rules
            .default_branch
            .as_deref()
            .or(facts.default_branch.as_deref()),
    ) {
        (Some(branch), Some(default)) => branch == default,
        (Some(branch), None) => branch == "main" || branch == "master",
        (None, _) => false,
    };
    let detached_release = facts.branch.is_none() && stable;
    if on_default || detached_release {
        push("latest".to_string(), &mut tags);
    }

    if let Some(short) = facts.sha.as_deref().and_then(short_sha) {
        push(format!("sha-{short}"), &mut tags);
    }

    for extra in &rules.extra {
        if !is_valid_tag(extra) {
            return Err(TagError::Invalid { tag: extra.clone() });
        }
        push(extra.clone(), &mut tags);
    }
    Ok(tags)
}

/// Label keys set by [`oci_labels`].
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";
pub const LABEL_SOURCE: &str = "org.opencontainers.image.source";
pub const LABEL_CREATED: &str = "org.opencontainers.image.created";
pub const LABEL_VERSION: &str = "org.opencontainers.image.version";

/// The OCI labels for an image built from `facts`:
/// - `revision`: the commit id;
/// - `source`: the remote as a browsable `https://` URL without credentials
///   ([`normalize_source`]); left out for local paths;
/// - `created`: `created` as given (an RFC 3339 time chosen by the caller);
/// - `version`: `version` if given, else the semver of the tag (`1.2.3`), else the tag as it
///   is, else the branch name, else the short sha.
///
/// Labels with nothing to say are left out.
pub fn oci_labels(
    facts: &GitFacts,
    version: Option<&str>,
    created: &str,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    if let Some(sha) = facts.sha.as_deref().filter(|s| !s.is_empty()) {
        labels.insert(LABEL_REVISION.to_string(), sha.to_string());
    }
    if let Some(source) = facts.remote_url.as_deref().and_then(normalize_source) {
        labels.insert(LABEL_SOURCE.to_string(), source);
    }
    if !created.is_empty() {
        labels.insert(LABEL_CREATED.to_string(), created.to_string());
    }
    let version = version
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .or_else(|| {
            let tag = facts.tag.as_deref()?;
            Some(
                SemVer::parse(tag)
                    .map(|v| v.version_label())
                    .unwrap_or_else(|| tag.to_string()),
            )
        })
        .or_else(|| facts.branch.clone())
        .or_else(|| facts.sha.as_deref().and_then(short_sha));
    if let Some(version) = version {
        labels.insert(LABEL_VERSION.to_string(), version);
    }
    labels
}

/// A git remote URL as a browsable `https://host/path` URL, without user, password/token,
/// port, `.git` suffix or trailing `/`. Handles `https://user:token@host/o/r.git`,
/// `ssh://git@host:22/o/r.git`, `git@host:o/r.git` and `git://host/o/r`. Local paths and
/// `file://` URLs give `None` (nothing to link to).
pub fn normalize_source(url: &str) -> Option<String> {
    let url = url.trim();
    let (host_part, path) = if let Some((scheme, rest)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(
            scheme.as_str(),
            "https" | "http" | "ssh" | "git" | "git+ssh" | "ssh+git"
        ) {
            return None;
        }
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        // Drop credentials (`user:token@`), then an ssh port; keep an http(s) port.
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = match scheme.as_str() {
            "ssh" | "git+ssh" | "ssh+git" | "git" => host.split(':').next().unwrap_or(host),
            _ => host,
        };
        (host.to_string(), path.to_string())
    } else {
        // scp-like syntax: [user@]host:path — but not a local path (`/x`, `./x`, `C:\x`).
        let (before, path) = url.split_once(':')?;
        if before.contains('/') || before.len() <= 1 || path.starts_with('\\') {
            return None;
        }
        let host = before.rsplit_once('@').map_or(before, |(_, h)| h);
        (host.to_string(), path.trim_start_matches('/').to_string())
    };
    if host_part.is_empty() {
        return None;
    }
    let path = path.trim_end_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        Some(format!("https://{}", host_part.to_ascii_lowercase()))
    } else {
        Some(format!("https://{}/{path}", host_part.to_ascii_lowercase()))
    }
}

/// Runs `git args…` in `dir`; its trimmed stdout on success, `None` on any failure (no git,
/// not a repository, no such ref).
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = duct::cmd("git", args)
        .dir(dir)
        // Reading status must not take the index lock from a concurrent git.
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin_null()
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

/// What git says about `repo_dir`'s `HEAD`. On GitHub Actions (`GITHUB_ACTIONS=true` in
/// `env`), `GITHUB_SHA`, `GITHUB_REF` (or `GITHUB_REF_NAME` + `GITHUB_REF_TYPE`) win over
/// the checkout (which Actions leaves detached), the default branch comes from the event
/// payload (`GITHUB_EVENT_PATH`) and the source from `GITHUB_SERVER_URL`/`GITHUB_REPOSITORY`.
/// Pull-request refs give neither a branch nor a tag.
///
/// Without git, or outside a repository, every field is `None` (and `dirty` false): not an
/// error.
pub fn git_facts(repo_dir: &Path, env: &BTreeMap<String, String>) -> GitFacts {
    let var = |name: &str| env.get(name).filter(|v| !v.is_empty()).cloned();

    let sha = non_empty(git(repo_dir, &["rev-parse", "--verify", "-q", "HEAD"]));
    let in_repo = sha.is_some() || git(repo_dir, &["rev-parse", "--git-dir"]).is_some();
    let mut facts = GitFacts {
        sha,
        ..GitFacts::default()
    };
    if in_repo {
        facts.branch = non_empty(git(repo_dir, &["symbolic-ref", "--short", "-q", "HEAD"]));
        if facts.sha.is_some() {
            facts.tag = non_empty(git(repo_dir, &["describe", "--tags", "--exact-match"]));
        }
        facts.dirty = git(repo_dir, &["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
        facts.remote_url = non_empty(git(repo_dir, &["config", "--get", "remote.origin.url"]));
        facts.default_branch = non_empty(git(
            repo_dir,
            &["symbolic-ref", "--short", "-q", "refs/remotes/origin/HEAD"],
        ))
        .map(|r| r.strip_prefix("origin/").map(str::to_string).unwrap_or(r));
    }

    if var("GITHUB_ACTIONS").as_deref() == Some("true") {
        if let Some(sha) = var("GITHUB_SHA") {
            facts.sha = Some(sha);
        }
        let from_ref = var("GITHUB_REF").map(|r| {
            if let Some(b) = r.strip_prefix("refs/heads/") {
                (Some(b.to_string()), None)
            } else if let Some(t) = r.strip_prefix("refs/tags/") {
                (None, Some(t.to_string()))
            } else {
                (None, None) // refs/pull/N/merge and the like
            }
        });
        let from_name = || match (var("GITHUB_REF_TYPE").as_deref(), var("GITHUB_REF_NAME")) {
            (Some("branch"), Some(n)) => Some((Some(n), None)),
            (Some("tag"), Some(n)) => Some((None, Some(n))),
            _ => None,
        };
        if let Some((branch, tag)) = from_ref.or_else(from_name) {
            facts.branch = branch;
            facts.tag = tag;
        }
        if let Some(default) = var("GITHUB_EVENT_PATH").and_then(|p| event_default_branch(&p)) {
            facts.default_branch = Some(default);
        }
        if let (Some(server), Some(repo)) = (var("GITHUB_SERVER_URL"), var("GITHUB_REPOSITORY")) {
            facts.remote_url = Some(format!("{}/{repo}", server.trim_end_matches('/')));
        }
    }
    facts
}

/// `repository.default_branch` from a GitHub event payload.
fn event_default_branch(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value
        .get("repository")?
        .get("default_branch")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    fn facts(branch: Option<&str>, tag: Option<&str>) -> GitFacts {
        GitFacts {
            sha: Some(SHA.into()),
            branch: branch.map(Into::into),
            tag: tag.map(Into::into),
            ..GitFacts::default()
        }
    }

    #[test]
    fn tag_table() {
        let rules = TagRules::default();
        let cases: &[(GitFacts, &[&str])] = &[
            (facts(Some("main"), None), &["latest", "sha-0123456"]),
            (facts(Some("master"), None), &["latest", "sha-0123456"]),
            (facts(Some("feature/x"), None), &["sha-0123456"]),
            (facts(None, None), &["sha-0123456"]),
            (
                facts(None, Some("v1.2.3")),
                &["1.2.3", "1.2", "1", "latest", "sha-0123456"],
            ),
            (
                facts(None, Some("1.2.3")),
                &["1.2.3", "1.2", "1", "latest", "sha-0123456"],
            ),
            (
                facts(Some("main"), Some("v1.2.3")),
                &["1.2.3", "1.2", "1", "latest", "sha-0123456"],
            ),
            // A backport release on a non-default branch does not move latest.
            (
                facts(Some("release-1.1"), Some("v1.1.5")),
                &["1.1.5", "1.1", "1", "sha-0123456"],
            ),
            (
                facts(None, Some("v1.2.3-rc.1")),
                &["1.2.3-rc.1", "sha-0123456"],
            ),
            (
                facts(Some("main"), Some("v2.0.0-beta")),
                &["2.0.0-beta", "latest", "sha-0123456"],
            ),
            (
                facts(None, Some("v0.4.1")),
                &["0.4.1", "0.4", "latest", "sha-0123456"],
            ),
            (
                facts(None, Some("v10.0.0")),
                &["10.0.0", "10.0", "10", "latest", "sha-0123456"],
            ),
            (
                facts(None, Some("v1.2.3+build.5")),
                &["1.2.3_build.5", "1.2", "1", "latest", "sha-0123456"],
            ),
            // Not semver: used as a plain ref tag, sanitised; never latest.
            (facts(None, Some("v1.2")), &["v1.2", "sha-0123456"]),
            (facts(None, Some("v01.2.3")), &["v01.2.3", "sha-0123456"]),
            (
                facts(None, Some("release/2024 q1")),
                &["release-2024-q1", "sha-0123456"],
            ),
            (
                GitFacts {
                    branch: Some("main".into()),
                    ..GitFacts::default()
                },
                &["latest"],
            ),
            (
                GitFacts {
                    sha: Some("nothex!".into()),
                    ..GitFacts::default()
                },
                &[],
            ),
            (GitFacts::default(), &[]),
        ];
        for (f, want) in cases {
            assert_eq!(compute_tags(f, &rules).unwrap(), *want, "{f:?}");
        }
    }

    #[test]
    fn default_branch_sources() {
        let mut f = facts(Some("main"), None);
        f.default_branch = Some("develop".into());
        assert_eq!(
            compute_tags(&f, &TagRules::default()).unwrap(),
            ["sha-0123456"]
        );
        f.branch = Some("develop".into());
        assert_eq!(
            compute_tags(&f, &TagRules::default()).unwrap(),
            ["latest", "sha-0123456"]
        );
        // The rule wins over what git says.
        let rules = TagRules {
            default_branch: Some("trunk".into()),
            extra: vec![],
        };
        assert_eq!(compute_tags(&f, &rules).unwrap(), ["sha-0123456"]);
        f.branch = Some("trunk".into());
        assert_eq!(compute_tags(&f, &rules).unwrap(), ["latest", "sha-0123456"]);
    }

    #[test]
    fn extra_tags_are_validated_and_deduplicated() {
        let rules = TagRules {
            default_branch: None,
            extra: vec!["latest".into(), "edge".into(), "1.2".into(), "edge".into()],
        };
        assert_eq!(
            compute_tags(&facts(Some("main"), Some("v1.2.3")), &rules).unwrap(),
            ["1.2.3", "1.2", "1", "latest", "sha-0123456", "edge"]
        );
        let too_long = "a".repeat(129);
        for bad in ["", ".hidden", "-x", "a+b", "a/b", "ü", too_long.as_str()] {
            let rules = TagRules {
                default_branch: None,
                extra: vec!["ok".into(), bad.into()],
            };
            let e = compute_tags(&facts(None, None), &rules).unwrap_err();
            assert_eq!(e, TagError::Invalid { tag: bad.into() });
            assert!(e.to_string().contains(&format!("{bad:?}")));
        }
        assert!(is_valid_tag(&"a".repeat(128)));
        assert!(is_valid_tag("_x.Y-1"));
    }

    #[test]
    fn semver_parsing() {
        let ok = [
            "1.2.3",
            "v1.2.3",
            "0.0.0",
            "1.2.3-rc.1",
            "1.2.3-0.3.7",
            "1.0.0-x-y-z.--",
        ];
        for s in ok {
            assert!(SemVer::parse(s).is_some(), "{s}");
        }
        let bad = [
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.2.3-",
            "1.2.3-01",
            "1.2.3-a..b",
            "x1.2.3",
            "1.2.3+",
        ];
        for s in bad {
            assert!(SemVer::parse(s).is_none(), "{s}");
        }
    }

    #[test]
    fn source_normalisation() {
        let cases = [
            ("git@github.com:o/r.git", Some("https://github.com/o/r")),
            ("git@github.com:o/r", Some("https://github.com/o/r")),
            ("https://github.com/o/r.git", Some("https://github.com/o/r")),
            ("https://github.com/o/r/", Some("https://github.com/o/r")),
            (
                "https://x-access-token:ghs_SECRET@github.com/o/r.git",
                Some("https://github.com/o/r"),
            ),
            (
                "https://user@gitlab.example.com/g/sub/r.git",
                Some("https://gitlab.example.com/g/sub/r"),
            ),
            (
                "http://git.local:3000/o/r.git",
                Some("https://git.local:3000/o/r"),
            ),
            (
                "ssh://git@github.com:22/o/r.git",
                Some("https://github.com/o/r"),
            ),
            (
                "ssh://git@GitHub.com/o/r.git",
                Some("https://github.com/o/r"),
            ),
            ("git://github.com/o/r.git", Some("https://github.com/o/r")),
            ("/srv/git/r.git", None),
            ("./r", None),
            ("file:///srv/git/r.git", None),
            ("C:\\repos\\r", None),
            ("", None),
        ];
        for (url, want) in cases {
            assert_eq!(normalize_source(url).as_deref(), want, "{url}");
        }
    }

    #[test]
    fn labels() {
        let mut f = facts(Some("main"), Some("v1.2.3"));
        f.remote_url = Some("https://u:tok@github.com/o/r.git".into());
        let l = oci_labels(&f, None, "2024-05-01T12:00:00Z");
        assert_eq!(l[LABEL_REVISION], SHA);
        assert_eq!(l[LABEL_SOURCE], "https://github.com/o/r");
        assert_eq!(l[LABEL_CREATED], "2024-05-01T12:00:00Z");
        assert_eq!(l[LABEL_VERSION], "1.2.3");
        assert!(!l.values().any(|v| v.contains("tok")));

        assert_eq!(oci_labels(&f, Some("9.9.9"), "t")[LABEL_VERSION], "9.9.9");
        let f = facts(Some("feature/x"), None);
        assert_eq!(oci_labels(&f, None, "t")[LABEL_VERSION], "feature/x");
        let f = facts(None, Some("v1.2.3+b.1"));
        assert_eq!(oci_labels(&f, None, "t")[LABEL_VERSION], "1.2.3+b.1");
        let f = facts(None, None);
        let l = oci_labels(&f, None, "");
        assert_eq!(l[LABEL_VERSION], "0123456");
        assert!(!l.contains_key(LABEL_SOURCE) && !l.contains_key(LABEL_CREATED));
        assert!(oci_labels(&GitFacts::default(), None, "").is_empty());
    }

    #[test]
    fn github_actions_env_wins() {
        let dir = tempfile::tempdir().unwrap();
        let event = dir.path().join("event.json");
        std::fs::write(&event, r#"{"repository":{"default_branch":"trunk"}}"#).unwrap();
        let mut env: BTreeMap<String, String> = [
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_SHA", SHA),
            ("GITHUB_REF", "refs/tags/v1.2.3"),
            ("GITHUB_SERVER_URL", "https://github.com"),
            ("GITHUB_REPOSITORY", "o/r"),
            ("GITHUB_EVENT_PATH", event.to_str().unwrap()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        // Not a repository: git says nothing, the environment says it all.
        let f = git_facts(dir.path(), &env);
        assert_eq!(f.sha.as_deref(), Some(SHA));
        assert_eq!(f.tag.as_deref(), Some("v1.2.3"));
        assert_eq!(f.branch, None);
        assert_eq!(f.default_branch.as_deref(), Some("trunk"));
        assert_eq!(f.remote_url.as_deref(), Some("https://github.com/o/r"));

        env.insert("GITHUB_REF".into(), "refs/heads/feature".into());
        let f = git_facts(dir.path(), &env);
        assert_eq!(
            (f.branch.as_deref(), f.tag.as_deref()),
            (Some("feature"), None)
        );

        env.insert("GITHUB_REF".into(), "refs/pull/7/merge".into());
        let f = git_facts(dir.path(), &env);
        assert_eq!((f.branch.as_deref(), f.tag.as_deref()), (None, None));

        env.remove("GITHUB_REF");
        env.insert("GITHUB_REF_NAME".into(), "v2.0.0".into());
        env.insert("GITHUB_REF_TYPE".into(), "tag".into());
        assert_eq!(git_facts(dir.path(), &env).tag.as_deref(), Some("v2.0.0"));

        // Without GITHUB_ACTIONS=true the variables are ignored.
        env.remove("GITHUB_ACTIONS");
        assert_eq!(git_facts(dir.path(), &env), GitFacts::default());
    }

    /// Runs git in `dir` with a fixed identity and no user/system config.
    fn run_git(dir: &Path, args: &[&str]) {
        let out = duct::cmd("git", args)
            .dir(dir)
            .env("GIT_AUTHOR_NAME", "Test")
            .env("GIT_AUTHOR_EMAIL", "test@example.com")
            .env("GIT_COMMITTER_NAME", "Test")
            .env("GIT_COMMITTER_EMAIL", "test@example.com")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdout_capture()
            .stderr_capture()
            .unchecked()
            .run()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn real_git_repository() {
        let none = BTreeMap::new();
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path();

        // Not a repository yet.
        assert_eq!(git_facts(repo, &none), GitFacts::default());

        run_git(repo, &["init", "-q", "-b", "dev"]);
        // An unborn branch: a repository without commits.
        let f = git_facts(repo, &none);
        assert_eq!((f.sha.as_deref(), f.branch.as_deref()), (None, Some("dev")));

        std::fs::write(repo.join("a.txt"), "a\n").unwrap();
        run_git(repo, &["add", "a.txt"]);
        run_git(repo, &["commit", "-q", "-m", "first"]);
        run_git(repo, &["tag", "v1.2.3"]);

        let f = git_facts(repo, &none);
        let sha = f.sha.clone().unwrap();
        assert_eq!(sha.len(), 40);
        assert!(sha.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(f.branch.as_deref(), Some("dev"));
        assert_eq!(f.tag.as_deref(), Some("v1.2.3"));
        assert_eq!(
            (
                f.dirty,
                f.remote_url.as_deref(),
                f.default_branch.as_deref()
            ),
            (false, None, None)
        );
        let sha_tag = format!("sha-{}", &sha[..7]);
        assert_eq!(
            compute_tags(&f, &TagRules::default()).unwrap(),
            ["1.2.3", "1.2", "1", sha_tag.as_str()]
        );

        // Detached at the release tag: latest.
        run_git(repo, &["checkout", "-q", "--detach", "v1.2.3"]);
        let f = git_facts(repo, &none);
        assert_eq!(f.branch, None);
        assert_eq!(
            compute_tags(&f, &TagRules::default()).unwrap(),
            ["1.2.3", "1.2", "1", "latest", sha_tag.as_str()]
        );

        // On main, a new commit without a tag; then a dirty tree and a remote.
        run_git(repo, &["checkout", "-q", "-b", "main"]);
        std::fs::write(repo.join("b.txt"), "b\n").unwrap();
        run_git(repo, &["add", "b.txt"]);
        run_git(repo, &["commit", "-q", "-m", "second"]);
        let f = git_facts(repo, &none);
        assert_eq!(
            (f.branch.as_deref(), f.tag.as_deref(), f.dirty),
            (Some("main"), None, false)
        );
        assert_ne!(f.sha.as_deref(), Some(sha.as_str()));
        let tags = compute_tags(&f, &TagRules::default()).unwrap();
        assert_eq!(tags.len(), 2);
        assert_eq!(tags[0], "latest");
        assert!(tags[1].starts_with("sha-"));

        std::fs::write(repo.join("untracked.txt"), "u\n").unwrap();
        run_git(repo, &["remote", "add", "origin", "git@github.com:o/r.git"]);
        run_git(repo, &["update-ref", "refs/remotes/origin/main", "HEAD"]);
        run_git(
            repo,
            &[
                "symbolic-ref",
                "refs/remotes/origin/HEAD",
                "refs/remotes/origin/main",
            ],
        );
        let f = git_facts(repo, &none);
        assert!(f.dirty);
        assert_eq!(f.remote_url.as_deref(), Some("git@github.com:o/r.git"));
        assert_eq!(f.default_branch.as_deref(), Some("main"));
        let labels = oci_labels(&f, None, "2024-05-01T12:00:00Z");
        assert_eq!(labels[LABEL_SOURCE], "https://github.com/o/r");
        assert_eq!(labels[LABEL_VERSION], "main");
        assert_eq!(Some(&labels[LABEL_REVISION]), f.sha.as_ref());

        // A prerelease tag on a feature branch: only its version and the sha.
        run_git(repo, &["checkout", "-q", "-b", "feature"]);
        run_git(repo, &["tag", "-a", "-m", "rc", "v2.0.0-rc.1"]);
        let f = git_facts(repo, &none);
        let tags = compute_tags(&f, &TagRules::default()).unwrap();
        assert_eq!(tags[0], "2.0.0-rc.1");
        assert_eq!(tags.len(), 2);
    }
}
