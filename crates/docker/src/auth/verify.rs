//! Credentials checked against the registry before anything is deleted or built: the
//! request a push begins with (`GET /v2/`, then the token request for `push,pull` on the
//! repository, or basic auth where the registry asks for that), and no push. A registry that
//! answers 401 to the credentials, or asks for credentials when there are none, is a refusal;
//! a registry that cannot be reached is left for the push to find (a note, not a refusal).
//!
//! The requests go through `curl`, with the credentials on its standard input (never on a
//! command line another user could read).

use std::io::Write;
use std::process::{Command, Stdio};

use super::Credentials;

/// What the registry said of the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It accepted them (or needs none).
    Accepted,
    /// It refused them, or asked for credentials and there were none: the reason, secrets
    /// left out.
    Refused(String),
    /// It could not be asked (unreachable, no `curl`, an identity token): why.
    Unchecked(String),
}

/// The repository part of an image name on `host`: no registry, no tag or digest; Docker
/// Hub's one-component names are `library/…`.
pub fn repository(image: &str, host: &str) -> String {
    let name = image.trim();
    let name = name.split_once('@').map_or(name, |(n, _)| n);
    let name = match name.rsplit_once(':') {
        Some((n, tag)) if !tag.contains('/') => n,
        _ => name,
    };
    // The first component is the registry when Docker's rule says so (see `registry_host`).
    let name = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            rest
        }
        _ => name,
    };
    if host == super::DOCKER_HUB_HOST && !name.contains('/') {
        format!("library/{name}")
    } else {
        name.to_string()
    }
}

/// The registry's API base: Docker Hub's real host, plain HTTP for loopback registries (as
/// the engine treats them), HTTPS otherwise.
fn base_url(host: &str) -> String {
    if host == super::DOCKER_HUB_HOST {
        return "https://registry-1.docker.io".into();
    }
    let name = host.rsplit_once(':').map_or(host, |(h, _)| h);
    let local = name == "localhost" || name.starts_with("127.") || name == "[::1]";
    format!("{}://{host}", if local { "http" } else { "https" })
}

/// One HTTP answer: the status and the headers, lower-cased names.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// `curl` a URL (credentials, if any, on its standard input); the last answer's status and
/// headers.
fn get(url: &str, creds: Option<&Credentials>) -> Result<Answer, String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-D",
        "-",
        "--max-time",
        "15",
        "-K",
        "-",
    ])
    .arg(url)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("running curl: {e}"))?;
    let config = match creds {
        Some(c) => format!(
            "user = \"{}:{}\"\n",
            escape(&c.username),
            escape(c.password.expose())
        ),
        None => String::new(),
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(config.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("running curl: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(format!("{url} did not answer: {}", err.trim()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    // With redirects there are several header blocks: the last one is the answer.
    let block = text
        .split("\r\n\r\n")
        .filter(|b| b.starts_with("HTTP/"))
        .last()
        .ok_or_else(|| format!("{url} gave no HTTP answer"))?;
    let mut lines = block.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{url} gave no HTTP status"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer { status, headers })
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The parameters of a `WWW-Authenticate: Bearer k="v",…` challenge.
fn challenge_params(value: &str) -> Vec<(String, String)> {
    let rest = value.split_once(' ').map_or("", |(_, r)| r);
    let mut params = Vec::new();
    let mut s = rest;
    while let Some((k, tail)) = s.split_once('=') {
        let k = k.trim().trim_start_matches(',').trim().to_ascii_lowercase();
        let (v, tail) = match tail.strip_prefix('"') {
            Some(q) => q.split_once('"').unwrap_or((q, "")),
            None => tail.split_once(',').unwrap_or((tail, "")),
        };
        params.push((k, v.to_string()));
        s = tail;
    }
    params
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Ask the registry of `host` whether `creds` may push to `repository` (blocking: run it
/// off the async threads).
pub fn verify(host: &str, repository: &str, creds: Option<&Credentials>) -> Verdict {
    if creds.is_some_and(Credentials::is_identity_token) {
        return Verdict::Unchecked("an identity token is checked only by the push".into());
    }
    let base = base_url(host);
    let first = match get(&format!("{base}/v2/"), None) {
        Ok(a) => a,
        Err(e) => return Verdict::Unchecked(e),
    };
    if first.status == 200 {
        return Verdict::Accepted;
    }
    if first.status != 401 {
        return Verdict::Unchecked(format!("{base}/v2/ answered HTTP {}", first.status));
    }
    let who = creds.map_or(String::new(), |c| {
        format!(" for user {} (from {})", c.username, c.source)
    });
    let Some(creds) = creds else {
        return Verdict::Refused(format!(
            "{host} asks for credentials and none were found (--password-stdin, \
             REGISTRY_USERNAME/REGISTRY_PASSWORD, or docker login)"
        ));
    };
    let challenge = first.header("www-authenticate").unwrap_or("");
    let scheme = challenge
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let answer = if scheme == "bearer" {
        let params = challenge_params(challenge);
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let Some(realm) = param("realm") else {
            return Verdict::Unchecked(format!("{host}'s challenge names no token realm"));
        };
        let mut url = format!(
            "{realm}?scope={}",
            percent(&format!("repository:{repository}:push,pull"))
        );
        if let Some(service) = param("service") {
            url.push_str(&format!("&service={}", percent(&service)));
        }
        get(&url, Some(creds))
    } else {
        get(&format!("{base}/v2/"), Some(creds))
    };
    match answer {
        Ok(a) if a.status == 200 => Verdict::Accepted,
        Ok(a) if a.status == 401 || a.status == 403 => Verdict::Refused(format!(
            "{host} refused the credentials{who} (HTTP {}): nothing was deleted or built",
            a.status
        )),
        Ok(a) => Verdict::Unchecked(format!("{host} answered HTTP {}", a.status)),
        Err(e) => Verdict::Unchecked(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_and_challenges_are_read_as_the_engine_reads_them() {
        assert_eq!(repository("ubuntu", "docker.io"), "library/ubuntu");
        assert_eq!(repository("me/app:1.0", "docker.io"), "me/app");
        assert_eq!(
            repository("localhost:5000/team/app:v1", "localhost:5000"),
            "team/app"
        );
        assert_eq!(repository("ghcr.io/o/i@sha256:ab", "ghcr.io"), "o/i");
        let p = challenge_params(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:x:pull""#,
        );
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(base_url("127.0.0.1:5000"), "http://127.0.0.1:5000");
        assert_eq!(base_url("docker.io"), "https://registry-1.docker.io");
    }
}
