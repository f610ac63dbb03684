//! The credential-helper protocol: run `docker-credential-<helper> get`, with a time limit,
//! and read its answer without ever echoing it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::error::AuthError;
use super::secret::Secret;

/// How long a `docker-credential-*` helper may take before we give up on it (a helper that
/// waits for a GUI unlock prompt would otherwise hang the build).
const HELPER_TIMEOUT: Duration = Duration::from_secs(60);

/// Finds `docker-credential-<helper>` on `path` (a `PATH` value).
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
/// has no credentials for that server. The helper is looked for on, and given, `path_var`.
pub(super) fn helper_get(
    helper: &str,
    server: &str,
    path_var: Option<&str>,
) -> Result<Option<(String, Secret)>, AuthError> {
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
