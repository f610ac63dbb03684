//! Registry names: the registry of an image reference, and the keys Docker files
//! credentials under.

/// The registry host Docker uses for Docker Hub images.
pub const DOCKER_HUB_HOST: &str = "docker.io";

/// The key Docker Hub credentials are stored under in `config.json` and credential helpers.
pub const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

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
pub(super) fn key_host(key: &str) -> String {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = rest.split('/').next().unwrap_or(rest);
    canonical_host(host)
}

/// The server address for a host: what helpers are asked for and what the engine is told.
pub(super) fn server_address(host: &str) -> String {
    if canonical_host(host) == DOCKER_HUB_HOST {
        DOCKER_HUB_SERVER.to_string()
    } else {
        host.to_string()
    }
}
