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
//!
//! The order of the sources is here ([`resolve`]); the rest lives below it:
//! - `secret`: [`Secret`], the wrapper that prints `***`;
//! - `credentials`: [`Credentials`] and their [`CredentialSource`];
//! - `error`: [`AuthError`];
//! - `registry`: [`registry_host`] and the keys Docker files credentials under;
//! - `config`: reading `config.json` (`credHelpers`, `credsStore`, `auths`);
//! - `helper`: the `docker-credential-*` protocol;
//! - `verify`: the credentials checked against the registry (a token request, no push).

mod config;
mod credentials;
mod error;
mod helper;
mod registry;
mod secret;
#[cfg(test)]
mod tests;
pub mod verify;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

pub use credentials::{CredentialSource, Credentials};
pub use error::AuthError;
pub use registry::{DOCKER_HUB_HOST, DOCKER_HUB_SERVER, registry_host};
pub use secret::Secret;

use registry::{key_host, server_address};

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
    let Some(config) = config::read_config(&path)? else {
        return Ok(None);
    };
    config::from_config(&config, &path, &host, &server, opts.path_var())
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
