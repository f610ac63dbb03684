//! Credentials from Docker's `config.json`: `credHelpers`, `credsStore` and `auths`, in the
//! Docker CLI's order.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;

use base64::Engine as _;
use serde_json::Value;

use super::credentials::{CredentialSource, Credentials};
use super::error::AuthError;
use super::helper::helper_get;
use super::registry::key_host;
use super::secret::Secret;

/// The parts of `config.json` we use. Parsed by hand from a [`Value`] so that a type error
/// names the key without echoing the value (serde's messages quote offending strings, which
/// could be an `auth` value).
#[derive(Debug, Default)]
pub(super) struct DockerConfig {
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

pub(super) fn read_config(path: &Path) -> Result<Option<DockerConfig>, AuthError> {
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

/// Credentials for `host` (whose server address is `server`) from the config read from
/// `path`; helpers are looked for on `path_var`.
pub(super) fn from_config(
    config: &DockerConfig,
    path: &Path,
    host: &str,
    server: &str,
    path_var: Option<&str>,
) -> Result<Option<Credentials>, AuthError> {
    // A per-registry helper is authoritative for its registry, as in the Docker CLI.
    if let Some(key) = matching_keys(&config.cred_helpers, host, server).first() {
        let helper = &config.cred_helpers[*key];
        return helper_get(helper, server, path_var).map(|found| {
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
        if let Some((username, password)) = helper_get(helper, server, path_var)? {
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
