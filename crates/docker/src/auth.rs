//! Registry credentials, found the way the Docker CLI finds them.
//!
//! Pushing through the Engine API means we, not the `docker` CLI, must hand the engine the
//! credentials for the target registry. This module resolves them from the same places a user
//! expects — `--password-stdin`, the conventional CI environment variables, and
//! `config.json` (`credHelpers`, `credsStore`, `auths`) — and records *where* they came from
//! so that a report can say so.
//!
//! The password is wrapped in [`Secret`], whose `Debug` and `Display` print `***`. No error
//! built here carries a password, a base64 `auth` value, or a helper's output verbatim: errors
//! name files, keys, variables and helpers instead.

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

/// The registry host Docker uses for Docker Hub images.
pub const DOCKER_HUB_HOST: &str = "docker.io";

/// The key Docker Hub credentials are stored under in `config.json` and credential helpers.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// How long a `docker-credential-*` helper may take before we give up on it (a helper that
/// waits for a GUI unlock prompt would otherwise hang the build).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// A password or token. `Debug` and `Display` print `***`; use [`Secret::expose`] at the one
/// place the value is really needed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Never log or format the result.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where credentials came from, for reports. Never holds the secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CredentialSource {
    /// `--password-stdin` (with the username from `--username` or the environment).
    Stdin,
    /// A pair of environment variables.
    Env { user_var: String, pass_var: String },
    /// An `auths` entry of a `config.json`.
    ConfigAuths { path: PathBuf },
    /// The `credsStore` helper named in `config.json`.
    CredsStore { helper: String },
    /// A per-registry `credHelpers` entry in `config.json`.
    CredHelper { helper: String },
}

impl fmt::Display for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stdin => f.write_str("--password-stdin"),
            Self::Env { user_var, pass_var } => {
                write!(f, "environment ({user_var}/{pass_var})")
            }
            Self::ConfigAuths { path } => write!(f, "auths in {}", path.display()),
            Self::CredsStore { helper } => {
                write!(f, "credsStore docker-credential-{helper}")
            }
            Self::CredHelper { helper } => {
                write!(f, "credHelpers docker-credential-{helper}")
            }
        }
    }
}

/// Credentials for one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
    /// The server address the credentials belong to: the registry host, or
    /// [`DOCKER_HUB_SERVER`] for Docker Hub (what the engine expects as `serveraddress`).
    pub server: String,
    pub source: CredentialSource,
}

impl Credentials {
    /// Docker's convention: a helper or `config.json` returning the username `<token>` means
    /// the password is an identity (refresh) token, to be sent as `identitytoken` rather than
    /// as a basic-auth password.
    pub fn is_identity_token(&self) -> bool {
        self.username == "<token>"
    }
}

/// Inputs to [`resolve`]. Everything that would otherwise be read from the process is passed
/// in, so that tests do not touch the process environment.
///
/// `Debug` hides `password_stdin` and shows only the *names* of the variables in `env`.
#[derive(Clone, Default)]
pub struct ResolveOptions {
    /// The password already read from standard input by the caller (`--password-stdin`).
    /// One trailing newline (`\n` or `\r\n`) is removed, as `docker login` does.
    pub password_stdin: Option<String>,
    /// `--username`.
    pub username: Option<String>,
    /// A snapshot of the environment ([`ResolveOptions::from_process_env`] takes one). Read
    /// for the credential variables, `DOCKER_CONFIG`, `HOME`/`USERPROFILE` and `PATH`.
    pub env: BTreeMap<String, String>,
    /// The Docker config directory; default `$DOCKER_CONFIG`, else `~/.docker`.
    pub docker_config_dir: Option<PathBuf>,
    /// The `PATH` to find `docker-credential-*` helpers on and to give them; default
    /// `env["PATH"]`.
    pub path_env: Option<String>,
}

impl fmt::Debug for ResolveOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResolveOptions")
            .field(
                "password_stdin",
                &self.password_stdin.as_ref().map(|_| "***"),
            )
            .field("username", &self.username)
            .field("env (names only)", &self.env.keys().collect::<Vec<_>>())
            .field("docker_config_dir", &self.docker_config_dir)
            .field("path_env", &self.path_env)
            .finish()
    }
}

impl ResolveOptions {
    /// Options with `env` filled from the current process environment (non-UTF-8 variables are
    /// skipped) and nothing else set.
    pub fn from_process_env() -> Self {
        Self {
            env: std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
                .collect(),
            ..Self::default()
        }
    }

    /// The variable's value, with an empty value counted as unset (CI systems expand a
    /// missing secret to an empty string).
    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn config_dir(&self) -> Option<PathBuf> {
        if let Some(dir) = &self.docker_config_dir {
            return Some(dir.clone());
        }
        if let Some(dir) = self.var("DOCKER_CONFIG") {
            return Some(PathBuf::from(dir));
        }
        let home = self.var("HOME").or_else(|| self.var("USERPROFILE"))?;
        Some(Path::new(home).join(".docker"))
    }

    fn path_var(&self) -> Option<&str> {
        self.path_env.as_deref().or_else(|| self.var("PATH"))
    }
}

/// Why credentials could not be resolved. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(
        "--password-stdin was given but no username: pass --username or set {}",
        .env_vars.join(" or ")
    )]
    StdinWithoutUsername { env_vars: Vec<&'static str> },

    #[error("--password-stdin was given but standard input was empty")]
    EmptyStdinPassword,

    #[error(
        "{set} is set but {missing} is not (or is empty): set both {set} and {missing}, or neither"
    )]
    HalfSetEnv {
        set: &'static str,
        missing: &'static str,
    },

    #[error("cannot read Docker config {}: {source}", .path.display())]
    ConfigRead { path: PathBuf, source: io::Error },

    #[error("Docker config {} is not valid JSON: {message} at line {line} column {column}", .path.display())]
    ConfigSyntax {
        path: PathBuf,
        message: String,
        line: usize,
        column: usize,
    },

    #[error("Docker config {}: {what}", .path.display())]
    ConfigShape { path: PathBuf, what: String },

    #[error("Docker config {}: auths[{key:?}].auth {reason}", .path.display())]
    BadAuthField {
        path: PathBuf,
        key: String,
        reason: &'static str,
    },

    #[error("credential helper docker-credential-{helper} was not found on PATH")]
    HelperNotFound { helper: String },

    #[error("cannot run credential helper docker-credential-{helper}: {source}")]
    HelperSpawn { helper: String, source: io::Error },

    #[error("credential helper docker-credential-{helper} did not answer within {}s", .timeout.as_secs())]
    HelperTimedOut { helper: String, timeout: Duration },

    #[error("credential helper docker-credential-{helper} failed ({status}){}",
        .stderr_first_line.as_deref().map(|l| format!(": {l}")).unwrap_or_default())]
    HelperFailed {
        helper: String,
        status: String,
        stderr_first_line: Option<String>,
    },

    #[error("credential helper docker-credential-{helper} answered something unexpected: {what}")]
    HelperOutput { helper: String, what: String },
}

/// The registry part of an image reference, by Docker's rules: the first `/`-separated
/// component is a registry when it contains `.` or `:`, is `localhost`, or has an upper-case
/// letter; otherwise the image lives on Docker Hub (`docker.io`). `index.docker.io` and
/// `registry-1.docker.io` are reported as `docker.io`.
pub fn registry_host(image: &str) -> String {
    let image = image.trim();
    match image.split_once('/') {
        Some((first, _))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            canonical_host(first).to_string()
        }
        _ => DOCKER_HUB_HOST.to_string(),
    }
}

/// Docker Hub's aliases collapse to `docker.io`; other hosts are returned as they are
/// (lower-cased, as host names are case-insensitive).
fn canonical_host(host: &str) -> String {
    let lower = host.to_ascii_lowercase();
    match lower.as_str() {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB_HOST.to_string(),
        _ => lower,
    }
}

/// A `config.json` key (`https://ghcr.io`, `ghcr.io/v1/`, `https://index.docker.io/v1/`)
/// reduced to its host, as the Docker CLI's `ConvertToHostname` does, then made canonical.
fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    canonical_host(host)
}

/// The server address for a host: what helpers are asked for and what the engine is told.
fn server_address(host: &str) -> String {
    if canonical_host(host) == DOCKER_HUB_HOST {
        DOCKER_HUB_SERVER.to_string()
    } else {
        host.to_string()
    }
}

/// Resolves credentials for the registry `host` (as returned by [`registry_host`]; a
/// `https://host/v1/`-style address is accepted too and reduced to its host).
///
/// Order, first match wins:
/// 1. `opts.password_stdin`, with the username from `opts.username`, else `REGISTRY_USERNAME`,
///    else (Docker Hub only) `DOCKERHUB_USERNAME`;
/// 2. `REGISTRY_USERNAME` + `REGISTRY_PASSWORD`, for any host;
/// 3. `DOCKERHUB_USERNAME` + `DOCKERHUB_TOKEN`, for Docker Hub only;
/// 4. `config.json`: `credHelpers[host]`, else `credsStore`, else `auths[host]`.
///
/// A pair with only one half set is an error. A missing config file, or a helper that says
/// "credentials not found", means no credentials: `Ok(None)`.
pub fn resolve(host: &str, opts: &ResolveOptions) -> Result<Option<Credentials>, AuthError> {
    let host = key_host(host.trim());
    let is_hub = host == DOCKER_HUB_HOST;
    let server = server_address(&host);

    // 1. --password-stdin.
    if let Some(raw) = &opts.password_stdin {
        let password = raw
            .strip_suffix('\n')
            .map(|p| p.strip_suffix('\r').unwrap_or(p))
            .unwrap_or(raw);
        if password.is_empty() {
            return Err(AuthError::EmptyStdinPassword);
        }
        let username = opts
            .username
            .as_deref()
            .filter(|u| !u.is_empty())
            .or_else(|| opts.var("REGISTRY_USERNAME"))
            .or_else(|| is_hub.then(|| opts.var("DOCKERHUB_USERNAME")).flatten());
        let Some(username) = username else {
            let mut env_vars = vec!["REGISTRY_USERNAME"];
            if is_hub {
                env_vars.push("DOCKERHUB_USERNAME");
            }
            return Err(AuthError::StdinWithoutUsername { env_vars });
        };
        return Ok(Some(Credentials {
            username: username.to_string(),
            password: Secret::new(password),
            server,
            source: CredentialSource::Stdin,
        }));
    }

    // 2. and 3. Environment pairs.
    //
    // Decision: REGISTRY_USERNAME/REGISTRY_PASSWORD name "the registry we push to" and apply
    // to any host. DOCKERHUB_USERNAME/DOCKERHUB_TOKEN are Docker Hub credentials and are only
    // used for Docker Hub: sending a Hub token to another registry would both fail (401) and
    // leak the token to a third party. For other hosts they are ignored (a half-set Hub pair
    // is then not an error either).
    if let Some(creds) = env_pair(opts, "REGISTRY_USERNAME", "REGISTRY_PASSWORD", &server)? {
        return Ok(Some(creds));
    }
    if is_hub {
        if let Some(creds) = env_pair(opts, "DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN", &server)? {
            return Ok(Some(creds));
        }
    }

    // 4. config.json.
    let Some(dir) = opts.config_dir() else {
        return Ok(None);
    };
    let path = dir.join("config.json");
    let Some(config) = read_config(&path)? else {
        return Ok(None);
    };
    from_config(&config, &path, &host, &server, opts)
}

fn env_pair(
    opts: &ResolveOptions,
    user_var: &'static str,
    pass_var: &'static str,
    server: &str,
) -> Result<Option<Credentials>, AuthError> {
    match (opts.var(user_var), opts.var(pass_var)) {
        (Some(user), Some(pass)) => Ok(Some(Credentials {
            username: user.to_string(),
            password: Secret::new(pass),
            server: server.to_string(),
            source: CredentialSource::Env {
                user_var: user_var.to_string(),
                pass_var: pass_var.to_string(),
            },
        })),
        (Some(_), None) => Err(AuthError::HalfSetEnv {
            set: user_var,
            missing: pass_var,
        }),
        (None, Some(_)) => Err(AuthError::HalfSetEnv {
            set: pass_var,
            missing: user_var,
        }),
        (None, None) => Ok(None),
    }
}

/// The parts of `config.json` we use. Parsed by hand from a [`Value`] so that a type error
/// names the key without echoing the value (serde's messages quote offending strings, which
/// could be an `auth` value).
#[derive(Debug, Default)]
struct DockerConfig {
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct AuthEntry {
    auth: Option<Secret>,
    username: Option<String>,
    password: Option<Secret>,
}

fn read_config(path: &Path) -> Result<Option<DockerConfig>, AuthError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(AuthError::ConfigRead {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    if text.trim().is_empty() {
        // The Docker CLI treats an empty file as an empty config.
        return Ok(Some(DockerConfig::default()));
    }
    let value: Value = serde_json::from_str(&text).map_err(|e| AuthError::ConfigSyntax {
        path: path.to_path_buf(),
        // Syntax and EOF messages are fixed texts ("expected value", "trailing comma"…); a
        // `Value` cannot fail with a data error, so nothing from the file is echoed.
        message: syntax_message(&e),
        line: e.line(),
        column: e.column(),
    })?;
    parse_config(&value)
        .map(Some)
        .map_err(|what| AuthError::ConfigShape {
            path: path.to_path_buf(),
            what,
        })
}

/// serde_json's message without its " at line L column C" tail (we report those separately).
fn syntax_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

fn parse_config(value: &Value) -> Result<DockerConfig, String> {
    let root = value
        .as_object()
        .ok_or_else(|| "the top level is not a JSON object".to_string())?;
    let mut config = DockerConfig::default();

    if let Some(store) = root.get("credsStore") {
        match store {
            Value::String(s) if !s.is_empty() => config.creds_store = Some(s.clone()),
            Value::String(_) | Value::Null => {}
            _ => return Err("credsStore is not a string".into()),
        }
    }

    if let Some(helpers) = root.get("credHelpers") {
        match helpers {
            Value::Object(map) => {
                for (key, helper) in map {
                    match helper {
                        Value::String(s) if !s.is_empty() => {
                            config.cred_helpers.insert(key.clone(), s.clone());
                        }
                        Value::String(_) => {}
                        _ => return Err(format!("credHelpers[{key:?}] is not a string")),
                    }
                }
            }
            Value::Null => {}
            _ => return Err("credHelpers is not an object".into()),
        }
    }

    if let Some(auths) = root.get("auths") {
        match auths {
            Value::Object(map) => {
                for (key, entry) in map {
                    let entry = entry
                        .as_object()
                        .ok_or_else(|| format!("auths[{key:?}] is not an object"))?;
                    let field = |name: &str| -> Result<Option<String>, String> {
                        match entry.get(name) {
                            None | Some(Value::Null) => Ok(None),
                            Some(Value::String(s)) if s.is_empty() => Ok(None),
                            Some(Value::String(s)) => Ok(Some(s.clone())),
                            Some(_) => Err(format!("auths[{key:?}].{name} is not a string")),
                        }
                    };
                    config.auths.insert(
                        key.clone(),
                        AuthEntry {
                            auth: field("auth")?.map(Secret::new),
                            username: field("username")?,
                            password: field("password")?.map(Secret::new),
                        },
                    );
                }
            }
            Value::Null => {}
            _ => return Err("auths is not an object".into()),
        }
    }
    Ok(config)
}

/// Keys of `map` that stand for `host`: the server address itself first, then the bare host,
/// then any other key whose host part (without scheme and path) is the same registry, in
/// key order.
fn matching_keys<'a, V>(map: &'a BTreeMap<String, V>, host: &str, server: &str) -> Vec<&'a str> {
    let mut keys: Vec<&str> = Vec::new();
    for exact in [server, host] {
        if let Some((k, _)) = map.get_key_value(exact) {
            keys.push(k);
        }
    }
    for k in map.keys() {
        if key_host(k) == host && !keys.contains(&k.as_str()) {
            keys.push(k);
        }
    }
    keys
}

fn from_config(
    config: &DockerConfig,
    path: &Path,
    host: &str,
    server: &str,
    opts: &ResolveOptions,
) -> Result<Option<Credentials>, AuthError> {
    // A per-registry helper is authoritative for its registry, as in the Docker CLI.
    if let Some(key) = matching_keys(&config.cred_helpers, host, server).first() {
        let helper = &config.cred_helpers[*key];
        return helper_get(helper, server, opts).map(|found| {
            found.map(|(username, password)| Credentials {
                username,
                password,
                server: server.to_string(),
                source: CredentialSource::CredHelper {
                    helper: helper.clone(),
                },
            })
        });
    }

    // Decision: with a credsStore, the Docker CLI never looks at `auths` credentials. We fall
    // back to an `auths` entry that holds real credentials when the store has none for this
    // registry: such entries are written by tools that edit config.json directly, and using
    // them is what the user meant. Empty `auths` entries (the usual markers a store leaves)
    // are skipped as before.
    if let Some(helper) = &config.creds_store {
        if let Some((username, password)) = helper_get(helper, server, opts)? {
            return Ok(Some(Credentials {
                username,
                password,
                server: server.to_string(),
                source: CredentialSource::CredsStore {
                    helper: helper.clone(),
                },
            }));
        }
    }

    for key in matching_keys(&config.auths, host, server) {
        let entry = &config.auths[key];
        if let Some((username, password)) = decode_entry(entry, key, path)? {
            return Ok(Some(Credentials {
                username,
                password,
                server: server.to_string(),
                source: CredentialSource::ConfigAuths {
                    path: path.to_path_buf(),
                },
            }));
        }
    }
    Ok(None)
}

/// An `auths` entry's credentials: the base64 `auth` field (`user:pass`), else the
/// `username`/`password` fields; `None` for an entry with neither (a marker left by a store).
fn decode_entry(
    entry: &AuthEntry,
    key: &str,
    path: &Path,
) -> Result<Option<(String, Secret)>, AuthError> {
    let bad = |reason| AuthError::BadAuthField {
        path: path.to_path_buf(),
        key: key.to_string(),
        reason,
    };
    if let Some(auth) = &entry.auth {
        // Never include base64's own error: it quotes the offending byte of the secret.
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(auth.expose().trim())
            .map_err(|_| bad("is not valid base64"))?;
        let text = String::from_utf8(bytes).map_err(|_| bad("does not decode to UTF-8 text"))?;
        let (user, pass) = text
            .split_once(':')
            .ok_or_else(|| bad("does not decode to \"username:password\""))?;
        if user.is_empty() {
            return Err(bad("decodes to an empty username"));
        }
        return Ok(Some((user.to_string(), Secret::new(pass))));
    }
    match (&entry.username, &entry.password) {
        (Some(user), Some(pass)) => Ok(Some((user.clone(), pass.clone()))),
        _ => Ok(None),
    }
}

/// Finds `docker-credential-<helper>` on `path`.
fn find_helper(helper: &str, path: Option<&str>) -> Option<PathBuf> {
    let name = format!("docker-credential-{helper}");
    let path = path?;
    std::env::split_paths(path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .flat_map(|dir| {
            let plain = dir.join(&name);
            let exe = dir.join(format!("{name}.exe"));
            [plain, exe]
        })
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

/// Runs `docker-credential-<helper> get` with `server` on stdin (the credential-helper
/// protocol) and parses `{"Username": …, "Secret": …}`. `Ok(None)` when the helper says it
/// has no credentials for that server.
fn helper_get(
    helper: &str,
    server: &str,
    opts: &ResolveOptions,
) -> Result<Option<(String, Secret)>, AuthError> {
    let path_var = opts.path_var();
    let program = find_helper(helper, path_var).ok_or_else(|| AuthError::HelperNotFound {
        helper: helper.to_string(),
    })?;
    let mut expr = duct::cmd(program, ["get"])
        .stdin_bytes(server.as_bytes().to_vec())
        .stdout_capture()
        .stderr_capture()
        .unchecked();
    if let Some(p) = path_var {
        expr = expr.env("PATH", p);
    }
    let spawn_err = |source| AuthError::HelperSpawn {
        helper: helper.to_string(),
        source,
    };
    let handle = expr.start().map_err(spawn_err)?;
    let output = match handle.wait_timeout(HELPER_TIMEOUT).map_err(spawn_err)? {
        Some(output) => output,
        None => {
            // Best effort: the helper is abandoned either way.
            let _ = handle.kill();
            return Err(AuthError::HelperTimedOut {
                helper: helper.to_string(),
                timeout: HELPER_TIMEOUT,
            });
        }
    };

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        // Helpers print "credentials not found in native keychain" (on stdout, per the
        // protocol) when they hold nothing for the server.
        let not_found = |s: &str| s.to_ascii_lowercase().contains("credentials not found");
        if not_found(&stdout) || not_found(&stderr) {
            return Ok(None);
        }
        let stderr_first_line = stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(|l| truncate(l, 200));
        return Err(AuthError::HelperFailed {
            helper: helper.to_string(),
            status: output.status.to_string(),
            stderr_first_line,
        });
    }

    let bad = |what: &str| AuthError::HelperOutput {
        helper: helper.to_string(),
        what: what.to_string(),
    };
    let value: Value =
        serde_json::from_str(stdout.trim()).map_err(|_| bad("its output is not JSON"))?;
    let field = |name: &str| value.get(name).and_then(Value::as_str).unwrap_or_default();
    let username = field("Username");
    let secret = field("Secret");
    if !value.is_object() {
        return Err(bad("its output is not a JSON object"));
    }
    if username.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    if secret.is_empty() {
        return Err(bad("\"Secret\" is missing or empty"));
    }
    Ok(Some((username.to_string(), Secret::new(secret))))
}

fn truncate(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "hunter2-s3cr3t";

    fn opts() -> ResolveOptions {
        ResolveOptions::default()
    }

    fn with_env(pairs: &[(&str, &str)]) -> ResolveOptions {
        ResolveOptions {
            env: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..opts()
        }
    }

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    /// A config dir with `config.json` holding `json`.
    fn config_dir(json: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        dir
    }

    fn assert_no_secret(text: &str) {
        assert!(!text.contains(PASSWORD), "secret leaked into: {text}");
        assert!(
            !text.contains(&b64(&format!("me:{PASSWORD}"))),
            "auth leaked: {text}"
        );
    }

    #[test]
    fn registry_host_follows_docker_rules() {
        let cases = [
            ("ubuntu", "docker.io"),
            ("ubuntu:22.04", "docker.io"),
            ("library/ubuntu", "docker.io"),
            ("library/ubuntu:latest", "docker.io"),
            ("localhost/x", "localhost"),
            ("localhost:5000/x", "localhost:5000"),
            ("127.0.0.1:5000/ns/app", "127.0.0.1:5000"),
            ("ghcr.io/o/r:tag", "ghcr.io"),
            ("my.reg/x@sha256:0123456789abcdef", "my.reg"),
            ("ubuntu@sha256:0123456789abcdef", "docker.io"),
            ("docker.io/library/ubuntu", "docker.io"),
            ("index.docker.io/library/ubuntu", "docker.io"),
            ("registry-1.docker.io/x/y", "docker.io"),
            ("localhost:5000", "docker.io"), // no slash: a Hub name with tag "5000"
            ("Registry/x", "registry"),      // upper case marks a host
            ("[::1]:5000/x", "[::1]:5000"),
        ];
        for (image, want) in cases {
            assert_eq!(registry_host(image), want, "image {image}");
        }
    }

    #[test]
    fn secret_and_credentials_never_show_the_password() {
        let creds = Credentials {
            username: "me".into(),
            password: Secret::new(PASSWORD),
            server: "ghcr.io".into(),
            source: CredentialSource::Stdin,
        };
        assert_no_secret(&format!("{creds:?}"));
        assert_no_secret(&format!("{creds:#?}"));
        assert_no_secret(&format!("{}", creds.password));
        assert!(format!("{creds:?}").contains("***"));
        assert_eq!(creds.password.expose(), PASSWORD);
        assert!(!creds.is_identity_token());
    }

    #[test]
    fn resolve_options_debug_hides_secrets() {
        let mut o = with_env(&[("REGISTRY_PASSWORD", PASSWORD)]);
        o.password_stdin = Some(PASSWORD.into());
        let dbg = format!("{o:?}");
        assert_no_secret(&dbg);
        assert!(dbg.contains("REGISTRY_PASSWORD"), "{dbg}");
    }

    #[test]
    fn host_may_be_given_as_an_address() {
        let o = with_env(&[("DOCKERHUB_USERNAME", "hub"), ("DOCKERHUB_TOKEN", "t")]);
        let c = resolve(DOCKER_HUB_SERVER, &o).unwrap().unwrap();
        assert_eq!(c.server, DOCKER_HUB_SERVER);
        let c = resolve("index.docker.io", &o).unwrap().unwrap();
        assert_eq!(c.username, "hub");
    }

    #[test]
    fn stdin_wins_and_takes_username_from_flag_or_env() {
        let mut o = with_env(&[
            ("REGISTRY_USERNAME", "envuser"),
            ("REGISTRY_PASSWORD", "envpass"),
        ]);
        o.password_stdin = Some(format!("{PASSWORD}\r\n"));
        let c = resolve("ghcr.io", &o).unwrap().unwrap();
        assert_eq!(c.username, "envuser");
        assert_eq!(c.password.expose(), PASSWORD);
        assert_eq!(c.source, CredentialSource::Stdin);
        assert_eq!(c.server, "ghcr.io");

        o.username = Some("flaguser".into());
        let c = resolve("ghcr.io", &o).unwrap().unwrap();
        assert_eq!(c.username, "flaguser");

        // DOCKERHUB_USERNAME supplies the name only for Docker Hub.
        let mut o = with_env(&[("DOCKERHUB_USERNAME", "hubuser")]);
        o.password_stdin = Some(PASSWORD.into());
        let c = resolve("docker.io", &o).unwrap().unwrap();
        assert_eq!(c.username, "hubuser");
        assert_eq!(c.server, DOCKER_HUB_SERVER);
        let e = resolve("ghcr.io", &o).unwrap_err();
        assert!(matches!(e, AuthError::StdinWithoutUsername { .. }));
    }

    #[test]
    fn stdin_without_username_names_what_is_missing() {
        let mut o = opts();
        o.password_stdin = Some(PASSWORD.into());
        let msg = resolve("docker.io", &o).unwrap_err().to_string();
        assert!(msg.contains("--username"), "{msg}");
        assert!(msg.contains("REGISTRY_USERNAME"), "{msg}");
        assert!(msg.contains("DOCKERHUB_USERNAME"), "{msg}");
        assert_no_secret(&msg);

        o.password_stdin = Some("\n".into());
        o.username = Some("me".into());
        assert!(matches!(
            resolve("docker.io", &o).unwrap_err(),
            AuthError::EmptyStdinPassword
        ));
    }

    #[test]
    fn env_pairs_and_precedence() {
        let o = with_env(&[
            ("REGISTRY_USERNAME", "reg"),
            ("REGISTRY_PASSWORD", "regpass"),
            ("DOCKERHUB_USERNAME", "hub"),
            ("DOCKERHUB_TOKEN", "hubtoken"),
        ]);
        let c = resolve("docker.io", &o).unwrap().unwrap();
        assert_eq!(c.username, "reg");
        assert_eq!(
            c.source,
            CredentialSource::Env {
                user_var: "REGISTRY_USERNAME".into(),
                pass_var: "REGISTRY_PASSWORD".into()
            }
        );

        let o = with_env(&[
            ("DOCKERHUB_USERNAME", "hub"),
            ("DOCKERHUB_TOKEN", "hubtoken"),
        ]);
        let c = resolve("docker.io", &o).unwrap().unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.expose()),
            ("hub", "hubtoken")
        );
        assert_eq!(c.server, DOCKER_HUB_SERVER);
        // Hub credentials are never offered to another registry.
        assert_eq!(resolve("ghcr.io", &o).unwrap(), None);

        // Env beats config.json.
        let dir = config_dir(&format!(
            r#"{{"auths":{{"ghcr.io":{{"auth":"{}"}}}}}}"#,
            b64("cfg:cfgpass")
        ));
        let mut o = with_env(&[("REGISTRY_USERNAME", "reg"), ("REGISTRY_PASSWORD", "p")]);
        o.docker_config_dir = Some(dir.path().to_path_buf());
        assert_eq!(resolve("ghcr.io", &o).unwrap().unwrap().username, "reg");
        o.env.clear();
        assert_eq!(resolve("ghcr.io", &o).unwrap().unwrap().username, "cfg");
    }

    #[test]
    fn half_set_pairs_are_errors_naming_both_variables() {
        for (set, missing) in [
            ("REGISTRY_USERNAME", "REGISTRY_PASSWORD"),
            ("REGISTRY_PASSWORD", "REGISTRY_USERNAME"),
            ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"),
            ("DOCKERHUB_TOKEN", "DOCKERHUB_USERNAME"),
        ] {
            // An empty value counts as unset.
            let o = with_env(&[(set, PASSWORD), (missing, "")]);
            let msg = resolve("docker.io", &o).unwrap_err().to_string();
            assert!(msg.contains(set) && msg.contains(missing), "{msg}");
            assert_no_secret(&msg);
        }
        // A half-set Hub pair does not matter for another registry.
        let o = with_env(&[("DOCKERHUB_USERNAME", "hub")]);
        assert_eq!(resolve("ghcr.io", &o).unwrap(), None);
    }

    #[test]
    fn config_auths_forms_and_keys() {
        let cases: &[(&str, &str, &str)] = &[
            // (key in auths, host asked for, server reported)
            ("127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:5000"),
            ("https://127.0.0.1:5000", "127.0.0.1:5000", "127.0.0.1:5000"),
            (
                "http://127.0.0.1:5000/v1/",
                "127.0.0.1:5000",
                "127.0.0.1:5000",
            ),
            ("https://ghcr.io/v1/", "ghcr.io", "ghcr.io"),
            (DOCKER_HUB_SERVER, "docker.io", DOCKER_HUB_SERVER),
            ("docker.io", "docker.io", DOCKER_HUB_SERVER),
            ("index.docker.io", "docker.io", DOCKER_HUB_SERVER),
        ];
        for (key, host, server) in cases {
            let dir = config_dir(&format!(
                r#"{{"auths":{{"other.io":{{"auth":"{}"}},"{key}":{{"auth":"{}"}}}}}}"#,
                b64("wrong:x"),
                b64(&format!("me:{PASSWORD}"))
            ));
            let o = ResolveOptions {
                docker_config_dir: Some(dir.path().to_path_buf()),
                ..opts()
            };
            let c = resolve(host, &o)
                .unwrap()
                .unwrap_or_else(|| panic!("{key}"));
            assert_eq!(c.username, "me", "{key}");
            assert_eq!(c.password.expose(), PASSWORD);
            assert_eq!(&c.server, server);
            assert_eq!(
                c.source,
                CredentialSource::ConfigAuths {
                    path: dir.path().join("config.json")
                }
            );
            assert_eq!(resolve("nothere.io", &o).unwrap(), None);
        }

        // username/password fields; a password containing ':' in `auth`.
        let dir = config_dir(&format!(
            r#"{{"auths":{{"a.io":{{"username":"u","password":"{PASSWORD}"}},
                "b.io":{{"auth":"{}"}}, "c.io":{{}}}}}}"#,
            b64("me:pa:ss")
        ));
        let o = ResolveOptions {
            docker_config_dir: Some(dir.path().to_path_buf()),
            ..opts()
        };
        let a = resolve("a.io", &o).unwrap().unwrap();
        assert_eq!((a.username.as_str(), a.password.expose()), ("u", PASSWORD));
        let b = resolve("b.io", &o).unwrap().unwrap();
        assert_eq!((b.username.as_str(), b.password.expose()), ("me", "pa:ss"));
        assert_eq!(resolve("c.io", &o).unwrap(), None);
    }

    #[test]
    fn config_dir_defaults_from_env() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir(home.path().join(".docker")).unwrap();
        std::fs::write(
            home.path().join(".docker/config.json"),
            format!(r#"{{"auths":{{"h.io":{{"auth":"{}"}}}}}}"#, b64("home:p")),
        )
        .unwrap();
        let other = config_dir(&format!(
            r#"{{"auths":{{"h.io":{{"auth":"{}"}}}}}}"#,
            b64("dc:p")
        ));
        let home_s = home.path().to_str().unwrap();
        let o = with_env(&[("HOME", home_s)]);
        assert_eq!(resolve("h.io", &o).unwrap().unwrap().username, "home");
        let o = with_env(&[
            ("HOME", home_s),
            ("DOCKER_CONFIG", other.path().to_str().unwrap()),
        ]);
        assert_eq!(resolve("h.io", &o).unwrap().unwrap().username, "dc");
        // No HOME, no DOCKER_CONFIG: nowhere to look.
        assert_eq!(resolve("h.io", &opts()).unwrap(), None);
    }

    #[test]
    fn missing_or_empty_config_is_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        let o = ResolveOptions {
            docker_config_dir: Some(dir.path().join("nope")),
            ..opts()
        };
        assert_eq!(resolve("ghcr.io", &o).unwrap(), None);
        let dir = config_dir("  \n");
        let o = ResolveOptions {
            docker_config_dir: Some(dir.path().to_path_buf()),
            ..opts()
        };
        assert_eq!(resolve("ghcr.io", &o).unwrap(), None);
    }

    #[test]
    fn malformed_config_names_file_and_position() {
        let secret_auth = b64(&format!("me:{PASSWORD}"));
        let dir = config_dir(&format!(
            "{{\n  \"auths\": {{\"x\": {{\"auth\": \"{secret_auth}\",}}\n"
        ));
        let o = ResolveOptions {
            docker_config_dir: Some(dir.path().to_path_buf()),
            ..opts()
        };
        let e = resolve("x", &o).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("config.json"), "{msg}");
        assert!(
            matches!(e, AuthError::ConfigSyntax { line: 2, .. }),
            "{e:?}"
        );
        assert!(msg.contains("line 2 column"), "{msg}");
        assert_no_secret(&msg);
        assert_no_secret(&format!("{e:?}"));

        // Wrong types name the key but never quote the value.
        for json in [
            format!(r#"{{"auths":{{"x":{{"auth":["{secret_auth}"]}}}}}}"#),
            format!(r#"{{"auths":{{"x":"{secret_auth}"}}}}"#),
            format!(r#"{{"auths":["{secret_auth}"]}}"#),
            format!(r#"["{secret_auth}"]"#),
            r#"{"credsStore": 3}"#.to_string(),
        ] {
            let dir = config_dir(&json);
            let o = ResolveOptions {
                docker_config_dir: Some(dir.path().to_path_buf()),
                ..opts()
            };
            let e = resolve("x", &o).unwrap_err();
            assert!(matches!(e, AuthError::ConfigShape { .. }), "{e:?}");
            let msg = e.to_string();
            assert!(msg.contains("config.json"), "{msg}");
            assert_no_secret(&msg);
            assert_no_secret(&format!("{e:?}"));
        }
    }

    #[test]
    fn bad_auth_fields_are_errors_without_the_value() {
        let cases = [
            (format!("{PASSWORD}$$$"), "not valid base64"),
            (b64(PASSWORD), "username:password"),
            (
                base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', b'x']),
                "UTF-8",
            ),
            (b64(&format!(":{PASSWORD}")), "empty username"),
        ];
        for (auth, want) in cases {
            let dir = config_dir(&format!(r#"{{"auths":{{"x.io":{{"auth":"{auth}"}}}}}}"#));
            let o = ResolveOptions {
                docker_config_dir: Some(dir.path().to_path_buf()),
                ..opts()
            };
            let e = resolve("x.io", &o).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want) && msg.contains("x.io"), "{msg}");
            assert!(!msg.contains(&auth), "{msg}");
            assert_no_secret(&msg);
            assert_no_secret(&format!("{e:?}"));
        }
    }

    /// Writes `docker-credential-<name>` into `dir`: a shell script that checks it was called
    /// as `get`, records its stdin, and runs `body`.
    #[cfg(unix)]
    fn fake_helper(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.join(format!("docker-credential-{name}"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 9\nread -r server\n\
             printf '%s' \"$server\" > \"$(dirname \"$0\")/{name}.asked\"\n{body}\n"
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[cfg(unix)]
    struct HelperEnv {
        bin: tempfile::TempDir,
        config: tempfile::TempDir,
    }

    #[cfg(unix)]
    impl HelperEnv {
        fn new(config_json: &str) -> Self {
            Self {
                bin: tempfile::tempdir().unwrap(),
                config: config_dir(config_json),
            }
        }
        fn opts(&self) -> ResolveOptions {
            ResolveOptions {
                docker_config_dir: Some(self.config.path().to_path_buf()),
                // The helper scripts need sh, dirname and printf from the system PATH.
                path_env: Some(format!("{}:/usr/bin:/bin", self.bin.path().display())),
                ..opts()
            }
        }
        fn asked(&self, name: &str) -> String {
            std::fs::read_to_string(self.bin.path().join(format!("{name}.asked"))).unwrap()
        }
    }

    #[cfg(unix)]
    #[test]
    fn cred_helpers_entry_runs_that_helper() {
        let env = HelperEnv::new(
            r#"{"credHelpers":{"ghcr.io":"fake","docker.io":"hub"},"credsStore":"store",
                "auths":{"ghcr.io":{"auth":"bWU6eA=="}}}"#,
        );
        fake_helper(
            env.bin.path(),
            "fake",
            &format!(
                r#"printf '{{"ServerURL":"%s","Username":"helperuser","Secret":"{PASSWORD}"}}' "$server""#
            ),
        );
        fake_helper(
            env.bin.path(),
            "hub",
            r#"printf '{"Username":"<token>","Secret":"idtoken"}'"#,
        );
        let c = resolve("ghcr.io", &env.opts()).unwrap().unwrap();
        assert_eq!(c.username, "helperuser");
        assert_eq!(c.password.expose(), PASSWORD);
        assert_eq!(
            c.source,
            CredentialSource::CredHelper {
                helper: "fake".into()
            }
        );
        assert_eq!(env.asked("fake"), "ghcr.io");

        // Docker Hub: the helper is asked for the index server URL.
        let c = resolve("docker.io", &env.opts()).unwrap().unwrap();
        assert!(c.is_identity_token());
        assert_eq!(env.asked("hub"), DOCKER_HUB_SERVER);
        assert_eq!(c.server, DOCKER_HUB_SERVER);
    }

    #[cfg(unix)]
    #[test]
    fn creds_store_then_auths_fallback() {
        let env = HelperEnv::new(&format!(
            r#"{{"credsStore":"store","auths":{{"a.io":{{}},"b.io":{{"auth":"{}"}}}}}}"#,
            b64("fileuser:filepass")
        ));
        fake_helper(
            env.bin.path(),
            "store",
            r#"if [ "$server" = a.io ]; then
                 printf '{"ServerURL":"a.io","Username":"storeuser","Secret":"storepass"}'
               else
                 echo "credentials not found in native keychain"; exit 1
               fi"#,
        );
        let a = resolve("a.io", &env.opts()).unwrap().unwrap();
        assert_eq!(
            (a.username.as_str(), a.password.expose()),
            ("storeuser", "storepass")
        );
        assert_eq!(
            a.source,
            CredentialSource::CredsStore {
                helper: "store".into()
            }
        );
        // Not in the store: the auths entry with real credentials is used.
        let b = resolve("b.io", &env.opts()).unwrap().unwrap();
        assert_eq!(b.username, "fileuser");
        assert!(matches!(b.source, CredentialSource::ConfigAuths { .. }));
        // Nowhere: no credentials, not an error.
        assert_eq!(resolve("c.io", &env.opts()).unwrap(), None);
    }

    #[cfg(unix)]
    #[test]
    fn helper_failures_are_reported_without_output() {
        let env = HelperEnv::new(r#"{"credsStore":"broken"}"#);
        fake_helper(
            env.bin.path(),
            "broken",
            &format!(
                "echo '{{\"Secret\":\"{PASSWORD}\"}}'\n\
                 echo 'keychain is locked' >&2\necho 'second line {PASSWORD}' >&2\nexit 3"
            ),
        );
        let e = resolve("x.io", &env.opts()).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, AuthError::HelperFailed { .. }), "{e:?}");
        assert!(msg.contains("docker-credential-broken"), "{msg}");
        assert!(msg.contains("keychain is locked"), "{msg}");
        assert!(msg.contains('3'), "{msg}");
        assert_no_secret(&msg);
        assert_no_secret(&format!("{e:?}"));

        // Garbage on stdout with success.
        fake_helper(
            env.bin.path(),
            "broken",
            &format!("echo 'not json {PASSWORD}'"),
        );
        let e = resolve("x.io", &env.opts()).unwrap_err();
        assert!(matches!(e, AuthError::HelperOutput { .. }), "{e:?}");
        assert_no_secret(&e.to_string());
        assert_no_secret(&format!("{e:?}"));

        // The helper is not installed.
        let env = HelperEnv::new(r#"{"credsStore":"absent"}"#);
        let e = resolve("x.io", &env.opts()).unwrap_err();
        assert!(matches!(e, AuthError::HelperNotFound { .. }), "{e:?}");
        assert!(e.to_string().contains("docker-credential-absent"));
    }

    #[test]
    fn source_display_is_readable() {
        let s = CredentialSource::Env {
            user_var: "REGISTRY_USERNAME".into(),
            pass_var: "REGISTRY_PASSWORD".into(),
        };
        assert_eq!(
            s.to_string(),
            "environment (REGISTRY_USERNAME/REGISTRY_PASSWORD)"
        );
        assert_eq!(
            CredentialSource::CredsStore {
                helper: "desktop".into()
            }
            .to_string(),
            "credsStore docker-credential-desktop"
        );
    }
}
