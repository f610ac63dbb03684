//! `lint --fix` on a real engine: each fixture in tests/fixtures/dockerfiles/fix is built as
//! written and as fixed (classic builder, local Debian base), and the two root filesystems
//! must hold the same files, modes, owners, link targets and contents, except the caches the
//! fix removed and the few files that differ between any two builds. The fixed image must
//! have fewer layers and must not be larger.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use headroom_dockerfile::fix::{FixOptions, fix};
use headroom_tests::{debian_base, sh};

headroom_tests::tests! {
    fixed_apt_split_builds_the_same_files_in_fewer_layers needs Docker;
    fixed_apt_late_cleanup_builds_the_same_files_in_fewer_layers needs Docker;
    fixed_pip_builds_the_same_files_in_fewer_layers needs Docker;
    fixed_download_builds_the_same_files_in_fewer_layers needs Docker;
}

fn root() -> PathBuf {
    headroom_tests::repo_root().to_path_buf()
}

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/dockerfiles/fix")
}

/// Paths (relative to /) where the fixes remove caches: present in the image as written,
/// gone from the fixed one.
const CACHES: &[&str] = &["var/lib/apt/lists", "var/cache/apt", "root/.cache"];

/// Files whose contents differ between any two builds of the same Dockerfile, so they are
/// compared by presence, type, mode and owner only.
fn volatile(path: &str) -> bool {
    // dpkg's and apt's logs carry the time of each step.
    path.starts_with("var/log/")
        // ldconfig's cache of the libraries it has seen, keyed by inode and ctime.
        || path == "var/cache/ldconfig/aux-cache"
        // apt's binary caches record the mtime of dpkg's status file: when the last
        // install ran.
        || matches!(path, "var/cache/apt/pkgcache.bin" | "var/cache/apt/srcpkgcache.bin")
        // Compiled Python records the mtime of its source, and pip compiles at install time.
        || path.ends_with(".pyc")
}

fn under(path: &str, dir: &str) -> bool {
    path == dir || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

/// One entry of an exported filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    link: String,
    size: u64,
    digest: u64,
}

/// Images made by one fixture, removed when it ends, however it ends.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = Command::new("docker")
                .args(["image", "rm", "--force", image])
                .output();
        }
    }
}

fn check_fixture(name: &str) {
    let _builds = crate::BUILDS.lock().unwrap_or_else(|e| e.into_inner());
    let base = debian_base();
    let original = fixtures().join(format!("{name}.Dockerfile"));
    let src = std::fs::read_to_string(&original).unwrap();
    let fixed = fix(&src, &FixOptions::default()).unwrap();
    assert!(fixed.changed(), "{name}: nothing to fix");
    assert!(
        fixed.after.final_stage.run < fixed.before.final_stage.run,
        "{name}: {:?} -> {:?}",
        fixed.before,
        fixed.after
    );
    let tmp = tempfile::tempdir().unwrap();
    let fixed_path = tmp.path().join(format!("{name}.fixed.Dockerfile"));
    std::fs::write(&fixed_path, &fixed.text).unwrap();

    let tag = |which: &str| format!("headroom-test/fix-{name}-{which}:latest");
    let images = Images(vec![tag("original"), tag("fixed")]);
    build(&original, &images.0[0], base);
    build(&fixed_path, &images.0[1], base);

    let before = export(&images.0[0], tmp.path());
    let after = export(&images.0[1], tmp.path());
    let mut problems = Vec::new();
    let mut removed = 0usize;
    let mut drifted = Vec::new();
    for (path, a) in &before {
        let cache = CACHES.iter().any(|c| under(path, c));
        match after.get(path) {
            None if cache => removed += 1,
            None => problems.push(format!("gone: {path}")),
            Some(b) => {
                let same = if volatile(path) {
                    if a != b {
                        drifted.push(path.as_str());
                    }
                    (a.kind, a.mode, a.uid, a.gid) == (b.kind, b.mode, b.uid, b.gid)
                } else {
                    a == b
                };
                if !same {
                    problems.push(format!("changed: {path}: {a:?} -> {b:?}"));
                }
            }
        }
    }
    for path in after.keys().filter(|p| !before.contains_key(*p)) {
        problems.push(format!("new: {path}"));
    }
    assert!(
        problems.is_empty(),
        "{name}: the fixed image differs in {} places:\n{}\n\nfixed Dockerfile:\n{}",
        problems.len(),
        problems
            .iter()
            .take(30)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        fixed.text
    );

    let (size_before, layers_before) = inspect(&images.0[0]);
    let (size_after, layers_after) = inspect(&images.0[1]);
    let pyc = drifted.iter().filter(|p| p.ends_with(".pyc")).count();
    drifted.retain(|p| !p.ends_with(".pyc"));
    eprintln!(
        "{name}: {layers_before} -> {layers_after} layers, {size_before} -> {size_after} bytes, \
         {removed} cache entries removed; differing as in any two builds: {pyc} .pyc, {drifted:?}"
    );
    assert_eq!(
        layers_before - layers_after,
        fixed.before.final_stage.run - fixed.after.final_stage.run,
        "{name}: every RUN is a layer"
    );
    assert!(
        size_after <= size_before,
        "{name}: {size_after} > {size_before} bytes"
    );
}

fn build(dockerfile: &Path, image: &str, base: &str) {
    // No cache: both builds fetch the apt lists at the same time, so they see the same
    // packages.
    let out = Command::new("docker")
        .args([
            "build",
            "--no-cache",
            "--quiet",
            "--force-rm",
            "--tag",
            image,
        ])
        .arg("--file")
        .arg(dockerfile)
        .args(["--build-arg", &format!("BASE={base}")])
        .arg(fixtures().join("context"))
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker build -f {}: {}\n{}",
        dockerfile.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn inspect(image: &str) -> (u64, usize) {
    let out = sh(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{.Size}} {{len .RootFS.Layers}}",
            image,
        ],
    );
    let mut it = out.split_whitespace();
    let size = it.next().unwrap().parse().unwrap();
    let layers = it.next().unwrap().parse().unwrap();
    (size, layers)
}

/// The root filesystem of a container made from `image`, read from `docker export`.
fn export(image: &str, dir: &Path) -> BTreeMap<String, Entry> {
    let id = sh("docker", &["create", image]).trim().to_string();
    let tar = dir.join(format!("{id}.tar"));
    let out = Command::new("docker")
        .args(["export", "--output"])
        .arg(&tar)
        .arg(&id)
        .output()
        .unwrap();
    let _ = Command::new("docker").args(["rm", "--force", &id]).output();
    assert!(
        out.status.success(),
        "docker export: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries = read_tar(&tar);
    std::fs::remove_file(&tar).unwrap();
    entries
}

/// A tar reader for what `docker export` writes (ustar, with PAX or GNU long names).
fn read_tar(path: &Path) -> BTreeMap<String, Entry> {
    let mut r = BufReader::new(std::fs::File::open(path).unwrap());
    let mut out = BTreeMap::new();
    let mut long_name: Option<String> = None;
    let mut long_link: Option<String> = None;
    let mut header = [0u8; 512];
    loop {
        if r.read_exact(&mut header).is_err() || header.iter().all(|&b| b == 0) {
            break;
        }
        let field = |a: usize, b: usize| {
            let f = &header[a..b];
            let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
            String::from_utf8_lossy(&f[..end]).into_owned()
        };
        let number = |a: usize, b: usize| -> u64 {
            let f = &header[a..b];
            if f[0] & 0x80 != 0 {
                // base-256
                f[1..].iter().fold(0u64, |n, &c| (n << 8) | u64::from(c))
            } else {
                let s = field(a, b);
                u64::from_str_radix(s.trim_matches(|c: char| c == ' ' || c == '\0'), 8).unwrap_or(0)
            }
        };
        let kind = header[156];
        let size = number(124, 136);
        let mut data = Vec::new();
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        let keep = matches!(kind, b'x' | b'L' | b'K');
        let mut left = size;
        let mut buf = vec![0u8; 1 << 16];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            r.read_exact(&mut buf[..n]).unwrap();
            if keep {
                data.extend_from_slice(&buf[..n]);
            } else {
                buf[..n].hash(&mut hasher);
            }
            left -= n as u64;
        }
        let pad = (512 - size % 512) % 512;
        std::io::copy(&mut (&mut r).take(pad), &mut std::io::sink()).unwrap();
        match kind {
            b'x' => {
                for (k, v) in pax(&data) {
                    match k.as_str() {
                        "path" => long_name = Some(v),
                        "linkpath" => long_link = Some(v),
                        _ => {}
                    }
                }
                continue;
            }
            b'L' => {
                long_name = Some(
                    String::from_utf8_lossy(&data)
                        .trim_end_matches('\0')
                        .to_string(),
                );
                continue;
            }
            b'K' => {
                long_link = Some(
                    String::from_utf8_lossy(&data)
                        .trim_end_matches('\0')
                        .to_string(),
                );
                continue;
            }
            b'g' => continue,
            _ => {}
        }
        let name = long_name.take().unwrap_or_else(|| {
            let prefix = field(345, 500);
            let name = field(0, 100);
            if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            }
        });
        let link = long_link.take().unwrap_or_else(|| field(157, 257));
        let name = name
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if name.is_empty() || name == "." {
            continue;
        }
        out.insert(
            name,
            Entry {
                kind: if kind == 0 { b'0' } else { kind },
                mode: (number(100, 108) & 0o7777) as u32,
                uid: number(108, 116),
                gid: number(116, 124),
                link,
                size,
                digest: hasher.finish(),
            },
        );
    }
    out
}

/// PAX records: `LEN key=value\n`.
fn pax(data: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(data);
    let mut out = Vec::new();
    let mut rest: &str = &text;
    while let Some((len, after)) = rest.split_once(' ') {
        let Ok(len) = len.parse::<usize>() else { break };
        let record_len = len.saturating_sub(len.to_string().len() + 1);
        let record = after.get(..record_len).unwrap_or(after);
        if let Some((k, v)) = record.trim_end_matches('\n').split_once('=') {
            out.push((k.to_string(), v.to_string()));
        }
        rest = after.get(record_len..).unwrap_or("");
    }
    out
}

fn fixed_apt_split_builds_the_same_files_in_fewer_layers() {
    check_fixture("apt-split");
}

fn fixed_apt_late_cleanup_builds_the_same_files_in_fewer_layers() {
    check_fixture("apt-late-cleanup");
}

fn fixed_pip_builds_the_same_files_in_fewer_layers() {
    check_fixture("pip");
}

fn fixed_download_builds_the_same_files_in_fewer_layers() {
    check_fixture("download");
}
