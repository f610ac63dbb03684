use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;

use super::plan::compare_paths;
use super::*;

fn put(root: &Path, rel: &str, content: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    fs::write(path, content).expect("write");
}

fn options(root: &Path, dockerfile: &Path) -> ContextOptions {
    ContextOptions {
        root: root.to_path_buf(),
        dockerfile: dockerfile.to_path_buf(),
    }
}

fn plan_of(root: &Path) -> ContextPlan {
    plan_context(&options(root, &root.join("Dockerfile"))).expect("plan")
}

fn paths(plan: &ContextPlan) -> Vec<&str> {
    plan.entries.iter().map(|e| e.path.as_str()).collect()
}

fn tar_of(plan: &ContextPlan) -> Vec<u8> {
    let mut bytes = Vec::new();
    let n = write_tar(plan, &mut bytes).expect("write_tar");
    assert_eq!(n, bytes.len() as u64);
    assert_eq!(n, plan.tar_len());
    bytes
}

struct Item {
    path: String,
    kind: tar::EntryType,
    mode: u32,
    link: Option<Vec<u8>>,
    content: Vec<u8>,
}

fn read_tar(bytes: &[u8]) -> Vec<Item> {
    let mut archive = tar::Archive::new(bytes);
    let mut items = Vec::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let header = entry.header();
        assert_eq!(header.mtime().expect("mtime"), DETERMINISTIC_MTIME);
        assert_eq!(header.uid().expect("uid"), 0);
        assert_eq!(header.gid().expect("gid"), 0);
        assert_eq!(header.username_bytes(), Some(&b""[..]));
        assert_eq!(header.groupname_bytes(), Some(&b""[..]));
        let kind = header.entry_type();
        let mode = header.mode().expect("mode");
        let path = String::from_utf8(entry.path_bytes().into_owned()).expect("utf-8");
        let link = entry.link_name_bytes().map(|l| l.into_owned());
        let mut content = Vec::new();
        entry.read_to_end(&mut content).expect("content");
        items.push(Item {
            path,
            kind,
            mode,
            link,
            content,
        });
    }
    items
}

fn item<'a>(items: &'a [Item], path: &str) -> &'a Item {
    items
        .iter()
        .find(|i| i.path == path)
        .unwrap_or_else(|| panic!("{path} is not in the tar"))
}

#[test]
fn ignore_rules_are_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    put(
        root,
        ".dockerignore",
        b"# deps\n*.log\n!keep.log\nnode_modules\ndocs\n!docs/keep.md\n",
    );
    put(root, "app.py", b"print(1)\n");
    put(root, "debug.log", b"noise");
    put(root, "keep.log", b"kept");
    put(root, "node_modules/x/y.js", b"dep");
    put(root, "docs/a.md", b"a");
    put(root, "docs/keep.md", b"keep");
    put(root, "src/main.rs", b"fn main() {}\n");
    put(root, "src/nested/deep.log", b"not top level, so kept");

    let plan = plan_of(root);
    assert_eq!(
        paths(&plan),
        [
            ".dockerignore",
            "Dockerfile",
            "app.py",
            "docs",
            "docs/keep.md",
            "keep.log",
            "src",
            "src/main.rs",
            "src/nested",
            "src/nested/deep.log",
        ]
    );
    assert_eq!(plan.dockerfile_name(), "Dockerfile");
    assert!(!plan.dockerfile_generated);
    assert_eq!(plan.ignore_file, Some(plan.root.join(".dockerignore")));
    assert_eq!(plan.files, 7);
    let sizes: u64 = [13, 55, 9, 4, 4, 13, 22].iter().sum();
    assert_eq!(plan.bytes, sizes);
    let docs = &plan.entries[3];
    assert_eq!(docs.kind(), EntryKind::Dir);

    let items = read_tar(&tar_of(&plan));
    assert_eq!(item(&items, "docs/").kind, tar::EntryType::Directory);
    assert_eq!(item(&items, "docs/keep.md").content, b"keep");
    assert_eq!(item(&items, "app.py").content, b"print(1)\n");
    assert!(items.iter().all(|i| !i.path.starts_with("node_modules")));
    assert!(items.iter().all(|i| i.path != "debug.log"));
}

#[cfg(unix)]
#[test]
fn an_unreadable_excluded_directory_is_not_an_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    put(root, ".dockerignore", b"secret\nlocked\n!locked/x\n");
    put(root, "secret/key", b"k");
    put(root, "locked/key", b"k");
    for d in ["secret", "locked"] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let plan = plan_of(root);
    for d in ["secret", "locked"] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    assert_eq!(paths(&plan), [".dockerignore", "Dockerfile"]);
}

#[cfg(unix)]
#[test]
fn symlinks_are_stored_as_links_and_never_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let outside = dir.path().join("outside");
    put(&outside, "secret.txt", b"TOPSECRET");
    let root = dir.path().join("ctx");
    put(&root, "Dockerfile", b"FROM scratch\n");
    std::os::unix::fs::symlink(&outside, root.join("dirlink")).expect("symlink");
    std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("filelink")).expect("symlink");
    std::os::unix::fs::symlink("Dockerfile", root.join("relative")).expect("symlink");

    let plan = plan_of(&root);
    assert_eq!(
        paths(&plan),
        ["Dockerfile", "dirlink", "filelink", "relative"]
    );
    assert!(
        plan.entries[1..]
            .iter()
            .all(|e| e.kind() == EntryKind::Symlink && e.size == 0)
    );
    let bytes = tar_of(&plan);
    assert!(
        !bytes.windows(9).any(|w| w == b"TOPSECRET"),
        "the outside file leaked into the tar"
    );
    let items = read_tar(&bytes);
    assert_eq!(items.len(), 4);
    let link = item(&items, "dirlink");
    assert_eq!(link.kind, tar::EntryType::Symlink);
    assert_eq!(
        link.link.as_deref(),
        Some(outside.as_os_str().as_encoded_bytes())
    );
    assert_eq!(
        item(&items, "relative").link.as_deref(),
        Some(&b"Dockerfile"[..])
    );
}

#[test]
fn output_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    put(root, "a/b/c.txt", b"c");
    put(root, "a/d.txt", b"d");
    put(root, "z.txt", b"z");
    let first = tar_of(&plan_of(root));
    assert_eq!(first, tar_of(&plan_of(root)));

    let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for rel in ["Dockerfile", "a/b/c.txt", "a/d.txt", "z.txt"] {
        let file = File::options()
            .write(true)
            .open(root.join(rel))
            .expect("open");
        file.set_modified(long_ago).expect("set mtime");
    }
    for rel in ["a", "a/b"] {
        if let Ok(d) = File::open(root.join(rel)) {
            let _ = d.set_modified(long_ago);
        }
    }
    assert_eq!(first, tar_of(&plan_of(root)));
    let items = read_tar(&first);
    let order: Vec<&str> = items.iter().map(|i| i.path.as_str()).collect();
    assert_eq!(
        order,
        ["Dockerfile", "a/", "a/b/", "a/b/c.txt", "a/d.txt", "z.txt"]
    );
}

#[cfg(unix)]
#[test]
fn permission_bits_are_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    put(root, "bin/run.sh", b"#!/bin/sh\n");
    put(root, "private", b"p");
    let set = |rel: &str, mode: u32| {
        fs::set_permissions(root.join(rel), fs::Permissions::from_mode(mode)).expect("chmod")
    };
    set("bin/run.sh", 0o750);
    set("private", 0o600);
    set("bin", 0o711);
    let items = read_tar(&tar_of(&plan_of(root)));
    assert_eq!(item(&items, "bin/run.sh").mode, 0o750);
    assert_eq!(item(&items, "private").mode, 0o600);
    assert_eq!(item(&items, "bin/").mode, 0o711);
}

#[test]
fn long_names_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    let deep = format!("{}/{}/{}", "d".repeat(60), "e".repeat(70), "f".repeat(150));
    put(root, &deep, b"deep");
    let exactly_100 = "x".repeat(100);
    put(root, &exactly_100, b"100");
    #[cfg(unix)]
    let long_target = format!("../{}", "t".repeat(200));
    #[cfg(unix)]
    std::os::unix::fs::symlink(&long_target, root.join("longlink")).expect("symlink");

    let plan = plan_of(root);
    let items = read_tar(&tar_of(&plan));
    assert_eq!(item(&items, &deep).content, b"deep");
    assert_eq!(item(&items, &exactly_100).content, b"100");
    let dir_short = format!("{}/", "d".repeat(60));
    assert_eq!(item(&items, &dir_short).kind, tar::EntryType::Directory);
    assert_eq!(
        item(&items, &format!("{}/{}/", "d".repeat(60), "e".repeat(70))).kind,
        tar::EntryType::Directory
    );
    #[cfg(unix)]
    assert_eq!(
        item(&items, "longlink").link.as_deref(),
        Some(long_target.as_bytes())
    );
}

#[tokio::test]
async fn a_large_file_streams_in_bounded_chunks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    const SIZE: usize = 20 * 1024 * 1024;
    {
        let mut file = File::create(root.join("big.bin")).expect("create");
        let block: Vec<u8> = (0..=255u8).cycle().take(1024 * 1024).collect();
        for _ in 0..SIZE / block.len() {
            file.write_all(&block).expect("write");
        }
    }
    let plan = plan_of(root);
    assert_eq!(plan.bytes, SIZE as u64 + 13);
    let expected_len = plan.tar_len();

    let (mut stream, writer) = stream_tar(plan);
    let mut received = Vec::with_capacity(expected_len as usize);
    let mut chunks = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.expect("chunk");
        assert!(chunk.len() <= CHUNK_SIZE);
        received.extend_from_slice(&chunk);
        chunks += 1;
    }
    let written = writer.await.expect("join").expect("write");
    assert_eq!(written, expected_len);
    assert_eq!(received.len() as u64, expected_len);
    assert!(chunks >= SIZE / CHUNK_SIZE);

    let items = read_tar(&received);
    let big = item(&items, "big.bin");
    assert_eq!(big.content.len(), SIZE);
    assert!(
        big.content
            .iter()
            .enumerate()
            .all(|(i, b)| *b == (i % 256) as u8)
    );
}

#[test]
fn a_dockerfile_outside_the_context_is_added_under_a_generated_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("ctx");
    put(&root, "app.py", b"x");
    put(
        dir.path(),
        "build/Dockerfile",
        b"FROM scratch\nCOPY . /app\n",
    );
    let dockerfile = dir.path().join("build/Dockerfile");

    let plan = plan_context(&options(&root, &dockerfile)).expect("plan");
    assert_eq!(plan.dockerfile_name(), GENERATED_DOCKERFILE);
    assert!(plan.dockerfile_generated);
    assert_eq!(
        paths(&plan),
        [".dockerignore", GENERATED_DOCKERFILE, "app.py"]
    );
    let items = read_tar(&tar_of(&plan));
    assert_eq!(
        item(&items, GENERATED_DOCKERFILE).content,
        b"FROM scratch\nCOPY . /app\n"
    );
    assert_eq!(
        item(&items, ".dockerignore").content,
        b".dockerignore\n.headroom-dockerfile\n"
    );

    // An existing .dockerignore gets the name appended; a taken name gets a suffix.
    put(&root, ".dockerignore", b"*.log\n");
    put(&root, GENERATED_DOCKERFILE, b"mine");
    let plan = plan_context(&options(&root, &dockerfile)).expect("plan");
    assert_eq!(plan.dockerfile_name(), ".headroom-dockerfile-1");
    let items = read_tar(&tar_of(&plan));
    assert_eq!(
        item(&items, ".dockerignore").content,
        b"*.log\n\n.headroom-dockerfile-1\n"
    );
    assert_eq!(item(&items, GENERATED_DOCKERFILE).content, b"mine");
}

#[test]
fn a_dockerfile_specific_ignore_file_is_preferred() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "docker/app.Dockerfile", b"FROM scratch\n");
    put(root, "docker/app.Dockerfile.dockerignore", b"secret.txt\n");
    put(root, ".dockerignore", b"*.log\n");
    put(root, "secret.txt", b"s");
    put(root, "debug.log", b"d");
    let dockerfile = root.join("docker/app.Dockerfile");
    let plan = plan_context(&options(root, &dockerfile)).expect("plan");
    assert_eq!(
        plan.ignore_file.as_deref(),
        Some(root.join("docker/app.Dockerfile.dockerignore").as_path())
    );
    let got = paths(&plan);
    assert!(got.contains(&"debug.log"));
    assert!(!got.contains(&"secret.txt"));
    assert_eq!(plan.dockerfile_name(), "docker/app.Dockerfile");
}

#[test]
fn an_excluded_dockerfile_and_dockerignore_are_still_sent() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "docker/app.Dockerfile", b"FROM scratch\n");
    put(root, "docker/other", b"o");
    put(root, ".dockerignore", b".dockerignore\ndocker\n*.txt\n");
    put(root, "a.txt", b"a");
    put(root, "main.rs", b"m");
    let dockerfile = root.join("docker/app.Dockerfile");
    let plan = plan_context(&options(root, &dockerfile)).expect("plan");
    assert_eq!(
        paths(&plan),
        [
            ".dockerignore",
            "docker",
            "docker/app.Dockerfile",
            "main.rs"
        ]
    );
    assert_eq!(plan.dockerfile_name(), "docker/app.Dockerfile");

    // Everything excluded.
    put(root, ".dockerignore", b"*\n");
    put(root, "Dockerfile", b"FROM scratch\n");
    assert_eq!(paths(&plan_of(root)), [".dockerignore", "Dockerfile"]);
}

#[test]
fn errors_name_the_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();

    let missing = root.join("nope");
    let err =
        plan_context(&options(&missing, &missing.join("Dockerfile"))).expect_err("missing context");
    assert!(matches!(err, ContextError::MissingContext { .. }));
    assert!(err.to_string().contains("nope"), "{err}");

    put(root, "file", b"f");
    let err = plan_context(&options(&root.join("file"), &root.join("file")))
        .expect_err("not a directory");
    assert!(matches!(err, ContextError::NotADirectory { .. }), "{err}");

    let err = plan_context(&options(root, &root.join("Dockerfile.missing")))
        .expect_err("missing Dockerfile");
    assert!(matches!(err, ContextError::MissingDockerfile { .. }));
    assert!(err.to_string().contains("Dockerfile.missing"), "{err}");

    let err = plan_context(&options(root, root)).expect_err("directory as Dockerfile");
    assert!(
        matches!(err, ContextError::DockerfileNotAFile { .. }),
        "{err}"
    );

    put(root, "Dockerfile", b"FROM scratch\n");
    put(root, ".dockerignore", b"ok\n[broken\n");
    let err = plan_context(&options(root, &root.join("Dockerfile"))).expect_err("bad ignore");
    assert!(
        err.to_string()
            .contains(".dockerignore:2: invalid pattern `[broken`"),
        "{err}"
    );
}

#[test]
fn files_that_change_after_planning_are_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    put(root, "grows", b"1234");
    put(root, "goes", b"1234");
    let plan = plan_of(root);

    put(root, "grows", b"12345");
    let err = write_tar(&plan, io::sink()).expect_err("grown file");
    assert!(
        matches!(err, ContextError::FileChanged { expected: 4, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("grows"), "{err}");

    put(root, "grows", b"123");
    let err = write_tar(&plan, io::sink()).expect_err("shrunk file");
    assert!(matches!(err, ContextError::FileChanged { .. }), "{err}");

    put(root, "grows", b"1234");
    fs::remove_file(root.join("goes")).expect("rm");
    let err = write_tar(&plan, io::sink()).expect_err("removed file");
    assert!(matches!(err, ContextError::ReadFile { .. }), "{err}");
    assert!(err.to_string().contains("goes"), "{err}");
}

#[tokio::test]
async fn a_failing_writer_ends_the_stream_with_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    put(root, "vanishes", b"soon");
    let plan = plan_of(root);
    fs::remove_file(root.join("vanishes")).expect("rm");

    let (mut stream, writer) = stream_tar(plan);
    let mut saw_error = None;
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            saw_error = Some(e.to_string());
        }
    }
    let message = saw_error.expect("an error item");
    assert!(message.contains("vanishes"), "{message}");
    let err = writer.await.expect("join").expect_err("writer error");
    assert!(matches!(err, ContextError::ReadFile { .. }), "{err}");
}

#[tokio::test]
async fn dropping_the_stream_stops_the_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    put(root, "Dockerfile", b"FROM scratch\n");
    put(root, "big", &vec![7u8; 4 * 1024 * 1024]);
    let (stream, writer) = stream_tar(plan_of(root));
    drop(stream);
    let err = writer.await.expect("join").expect_err("nobody reads");
    assert!(matches!(err, ContextError::Write { .. }), "{err}");
}

#[test]
fn paths_sort_component_by_component() {
    let mut v = vec!["a.txt", "a/b", "a", "a-b", "b", "a/b/c", ".x"];
    v.sort_by(|a, b| compare_paths(a, b));
    assert_eq!(v, [".x", "a", "a/b", "a/b/c", "a-b", "a.txt", "b"]);
}
