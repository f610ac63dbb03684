//! The host-side reclaimers: Docker, apt and swap, driven through their own command-line
//! tools (the sync library stays free of an async Docker client).

use std::path::{Path, PathBuf};

use crate::size::parse_size;

/// Run a command, returning its stdout, or an error line with its stderr.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = duct::cmd(program, args)
        .stdout_capture()
        .stderr_capture()
        .unchecked()
        .run()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            last.trim()
        ))
    }
}

/// Docker's data root (`docker info`), when a daemon answers; else why not.
pub fn docker_data_root() -> Result<PathBuf, String> {
    let out = run("docker", &["info", "--format", "{{.DockerRootDir}}"])?;
    let root = out.trim();
    if root.is_empty() {
        return Err("docker info returned no data root".into());
    }
    Ok(PathBuf::from(root))
}

/// Reclaimable bytes of a `docker system df` row ("Images", "Build Cache").
pub(crate) fn docker_reclaimable(kind: &str) -> Result<u64, String> {
    let out = run("docker", &["system", "df", "--format", "{{json .}}"])?;
    for line in out.lines() {
        let Ok(row) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if row.get("Type").and_then(|t| t.as_str()) != Some(kind) {
            continue;
        }
        let text = row
            .get("Reclaimable")
            .and_then(|t| t.as_str())
            .unwrap_or("0B");
        return Ok(parse_docker_size(text));
    }
    Err(format!("docker system df has no {kind:?} row"))
}

/// Docker prints sizes like `1.2GB (50%)` or `512kB`.
fn parse_docker_size(text: &str) -> u64 {
    let value = text.split(" (").next().unwrap_or("").trim();
    parse_size(value).unwrap_or(0)
}

/// Prune images no container uses, or the whole build cache; returns the bytes Docker says
/// it reclaimed.
pub(crate) fn docker_prune(build_cache: bool) -> Result<u64, String> {
    let args: &[&str] = if build_cache {
        &["builder", "prune", "--all", "--force"]
    } else {
        &["image", "prune", "--all", "--force"]
    };
    let out = run("docker", args)?;
    let freed = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Total reclaimed space:")
                .or_else(|| l.strip_prefix("Total:"))
        })
        .map_or(0, parse_docker_size);
    Ok(freed)
}

/// Active swap files and partitions, from `/proc/swaps`.
pub(crate) fn active_swaps() -> Vec<PathBuf> {
    let Ok(text) = std::fs::read_to_string("/proc/swaps") else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .map(|p| PathBuf::from(p.replace("\\040", " ")))
        .collect()
}

pub(crate) fn swapoff(path: &Path) -> Result<(), String> {
    let p = path.to_string_lossy();
    run("swapoff", &[&p]).map(|_| ())
}

pub(crate) fn apt_clean() -> Result<(), String> {
    run("apt-get", &["clean"]).map(|_| ())
}

/// Installed packages matching the patterns, with their installed size in bytes.
pub(crate) fn installed_packages(patterns: &[String]) -> Result<Vec<(String, u64)>, String> {
    let out = run(
        "dpkg-query",
        &[
            "-W",
            "-f",
            "${db:Status-Abbrev} ${Package} ${Installed-Size}\n",
        ],
    )?;
    let mut found = Vec::new();
    for line in out.lines() {
        let mut parts = line.split_whitespace();
        let (Some(status), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        if !status.starts_with("ii") {
            continue;
        }
        let kib: u64 = parts.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        if patterns.iter().any(|p| glob_match(p, name)) {
            found.push((name.to_string(), kib * 1024));
        }
    }
    Ok(found)
}

/// Remove packages through apt, which runs their maintainer scripts in dpkg's order.
pub(crate) fn apt_remove(packages: &[String]) -> Result<(), String> {
    let mut args = vec!["remove", "--purge", "-y", "-q"];
    args.extend(packages.iter().map(String::as_str));
    run("apt-get", &args)?;
    run("apt-get", &["autoremove", "--purge", "-y", "-q"]).map(|_| ())
}

/// `*` matches any run of characters; everything else literally.
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("llvm-*", "llvm-15"));
        assert!(glob_match("temurin-*-jdk", "temurin-17-jdk"));
        assert!(!glob_match("temurin-*-jdk", "temurin-17-jre"));
        assert!(glob_match("firefox", "firefox"));
        assert!(!glob_match("firefox", "firefox-esr"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("ab*ba", "aba"));
    }

    #[test]
    fn docker_sizes() {
        assert_eq!(parse_docker_size("1.2GB (50%)"), 1_200_000_000);
        assert_eq!(parse_docker_size("0B"), 0);
        assert_eq!(parse_docker_size("512kB"), 512_000);
        assert_eq!(parse_docker_size("garbage"), 0);
    }
}
