//! `cargo xtask free` and `headroom-disk` against real filesystems: synthetic runner trees in
//! temporary directories and small loop-mounted ext4 filesystems.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};

use headroom_tests::attack::item;
use headroom_tests::{
    LoopFs, assert_same_tree, du_bytes, fill, listing, sh, write_file, xtask, xtask_in,
};
use serde_json::Value;

headroom_tests::tests! {
    dry_run_json_sizes_equal_bytes_on_disk_and_nothing_changes;
    yes_removes_exactly_the_planned_items_and_spares_symlink_targets;
    a_mount_inside_an_item_is_neither_entered_nor_unmounted needs Root;
    an_undeletable_file_fails_its_item_only needs Root;
    freed_bytes_match_the_filesystem_delta needs Root;
    a_need_target_takes_the_cheapest_items_and_no_more needs Root;
    bad_input_gets_a_clear_error_and_deletes_nothing;
    a_symlinked_parent_never_leads_outside_the_root;
    protected_paths_in_config_are_kept;
    off_a_hosted_runner_it_only_plans_unless_told_yes;
    background_reclaim_and_watchdog_on_a_small_filesystem needs Root;
    list_shows_the_catalog;
    a_relative_root_still_keeps_mounts_inside_items needs Root;
    paths_that_escape_or_name_the_root_are_refused;
    hard_links_shared_between_items_are_not_counted_as_freed needs Root;
    a_symlink_swapped_in_after_planning_does_not_lead_outside_the_root;
}

/// A synthetic runner root: a few catalog items with known content, plus the traps.
struct RunnerTree {
    root: PathBuf,
    outside: PathBuf,
}

fn runner_tree(base: &Path) -> RunnerTree {
    let root = base.join("runner");
    let outside = base.join("outside");
    let android = root.join("usr/local/lib/android/sdk");
    fill(&android.join("ndk"), 600, 3_000);
    fill(&android.join("platforms"), 50, 70_000);
    // A hard link inside the item: counted once.
    std::fs::hard_link(android.join("ndk/d0/e0/f0"), android.join("ndk-link")).unwrap();
    // Symlinks pointing outside the item: the links go, their targets must survive.
    write_file(&outside.join("keep/precious.bin"), 123_456);
    std::os::unix::fs::symlink(outside.join("keep"), android.join("link-to-dir")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("keep/precious.bin"),
        android.join("link-to-file"),
    )
    .unwrap();
    fill(&root.join("usr/share/dotnet/sdk"), 40, 250_000);
    fill(&root.join("opt/hostedtoolcache/CodeQL/2.20"), 30, 40_000);
    fill(&root.join("opt/hostedtoolcache/go/1.22"), 200, 8_000);
    fill(&root.join("usr/share/swift"), 5, 400_000);
    write_file(&root.join("swapfile"), 2_000_000);
    RunnerTree { root, outside }
}

fn paths_of(item: &Value) -> Vec<PathBuf> {
    item["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p.as_str().unwrap()))
        .collect()
}

fn root_arg(t: &RunnerTree) -> &str {
    t.root.to_str().unwrap()
}

fn dry_run_json_sizes_equal_bytes_on_disk_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let t = runner_tree(tmp.path());
    let before = listing(tmp.path());
    let run = xtask(
        &["free", "--root", root_arg(&t), "--dry-run", "--json"],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    let mut planned = 0;
    for i in report["items"].as_array().unwrap() {
        if i["action"] == "planned" {
            planned += 1;
            let paths = paths_of(i);
            assert_eq!(
                i["size_bytes"].as_u64().unwrap(),
                du_bytes(&paths),
                "item {} size vs du -sB1 -x",
                i["name"]
            );
            assert!(i["files"].as_u64().unwrap() > 0);
        }
    }
    assert_eq!(
        planned, 5,
        "android, dotnet, toolcache, swift, swap: {report:#}"
    );
    assert_eq!(item(&report, "codeql")["action"], "skipped");
    assert_eq!(item(&report, "codeql")["reason"], "included in toolcache");
    assert_eq!(item(&report, "haskell")["action"], "skipped");
    assert!(
        item(&report, "docker-images")["reason"]
            .as_str()
            .unwrap()
            .contains("--root")
    );
    // The document has the promised shape.
    for key in [
        "path",
        "mount_point",
        "total_bytes",
        "available_before",
        "available_after",
    ] {
        assert!(report["filesystem"].get(key).is_some(), "filesystem.{key}");
    }
    for key in ["freed_bytes", "seconds"] {
        assert!(report.get(key).is_some(), "{key}");
    }
    for key in [
        "name",
        "paths",
        "size_bytes",
        "files",
        "action",
        "reason",
        "seconds",
    ] {
        assert!(item(&report, "android").get(key).is_some(), "items[].{key}");
    }
    assert_same_tree(&before, &listing(tmp.path()), "a dry run changes nothing");
}

fn yes_removes_exactly_the_planned_items_and_spares_symlink_targets() {
    let tmp = tempfile::tempdir().unwrap();
    let t = runner_tree(tmp.path());
    let swift_before = listing(&t.root.join("usr/share/swift"));
    let outside_before = listing(&t.outside);
    let run = xtask(
        &[
            "free",
            "--root",
            root_arg(&t),
            "--skip",
            "swift,swap",
            "--yes",
            "--json",
        ],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    for name in ["android", "dotnet", "toolcache"] {
        let i = item(&report, name);
        assert_eq!(i["action"], "removed", "{name}: {i:#}");
        for p in paths_of(i) {
            assert!(
                std::fs::symlink_metadata(&p).is_err(),
                "{} still there",
                p.display()
            );
        }
    }
    assert_eq!(item(&report, "swift")["reason"], "skipped by --skip");
    assert_same_tree(
        &swift_before,
        &listing(&t.root.join("usr/share/swift")),
        "unchanged",
    );
    assert!(t.root.join("swapfile").exists());
    assert_same_tree(
        &outside_before,
        &listing(&t.outside),
        "symlink targets survive",
    );
    // What is left of the runner root is exactly the skipped items and empty parents.
    let left: Vec<PathBuf> = listing(&t.root)
        .into_keys()
        .filter(|p| !p.is_dir())
        .map(|p| p.strip_prefix(&t.root).unwrap().to_path_buf())
        .filter(|p| !p.starts_with("usr/share/swift"))
        .collect();
    assert_eq!(left, vec![PathBuf::from("swapfile")]);
}

fn a_mount_inside_an_item_is_neither_entered_nor_unmounted() {
    let tmp = tempfile::tempdir().unwrap();
    let t = runner_tree(tmp.path());
    let inner = LoopFs::new(16);
    write_file(&inner.mount.join("data/kept.bin"), 300_000);
    let mount_point = t.root.join("usr/local/lib/android/sdk/ndk/mounted");
    std::fs::create_dir_all(&mount_point).unwrap();
    sh(
        "mount",
        &[
            "--bind",
            inner.mount.to_str().unwrap(),
            mount_point.to_str().unwrap(),
        ],
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mount_point.clone());

    let dry = xtask(
        &[
            "free",
            "--root",
            root_arg(&t),
            "--only",
            "android",
            "--dry-run",
            "--json",
        ],
        &[],
    );
    let android = &item(&dry.json(), "android").clone();
    assert_eq!(
        android["size_bytes"].as_u64().unwrap(),
        du_bytes(&paths_of(android)),
        "the mounted filesystem is not counted"
    );

    let run = xtask(
        &[
            "free",
            "--root",
            root_arg(&t),
            "--only",
            "android",
            "--yes",
            "--json",
        ],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let android = item(&run.json(), "android").clone();
    assert_eq!(android["action"], "removed", "{android:#}");
    assert!(
        android["reason"].as_str().unwrap().contains("mounted"),
        "{android:#}"
    );
    assert!(LoopFs::is_mounted(&mount_point), "still mounted");
    assert_eq!(
        std::fs::read(mount_point.join("data/kept.bin"))
            .unwrap()
            .len(),
        300_000
    );
    // Everything else of the item is gone: only the path down to the mount is left.
    let left: Vec<PathBuf> = listing(&t.root.join("usr/local/lib/android"))
        .into_keys()
        .filter(|p| !p.starts_with(&mount_point))
        .collect();
    let sdk = t.root.join("usr/local/lib/android/sdk");
    assert_eq!(left, vec![sdk.clone(), sdk.join("ndk")]);
}

fn an_undeletable_file_fails_its_item_only() {
    let fs = LoopFs::new(128);
    let t = runner_tree(&fs.mount);
    let stuck = t.root.join("usr/share/dotnet/sdk/d0/e0/f0");
    sh("chattr", &["+i", stuck.to_str().unwrap()]);
    let run = xtask(&["free", "--root", root_arg(&t), "--yes", "--json"], &[]);
    sh("chattr", &["-i", stuck.to_str().unwrap()]);
    assert_eq!(
        run.code,
        Some(1),
        "a failed item fails a run without target: {run:?}"
    );
    let report = run.json();
    let dotnet = item(&report, "dotnet");
    assert_eq!(dotnet["action"], "failed", "{dotnet:#}");
    let reason = dotnet["reason"].as_str().unwrap();
    assert!(
        reason.contains("f0") && reason.contains("not permitted"),
        "{reason}"
    );
    assert!(stuck.exists());
    // It still freed the rest of the item, and says how much.
    let freed = dotnet["freed_bytes"].as_u64().unwrap();
    assert!(freed > 0 && freed < dotnet["size_bytes"].as_u64().unwrap());
    for name in ["android", "toolcache", "swift", "swap"] {
        assert_eq!(item(&report, name)["action"], "removed", "{name}");
    }
    assert!(run.stderr.contains("dotnet"), "{}", run.stderr);
}

fn freed_bytes_match_the_filesystem_delta() {
    let fs = LoopFs::new(128);
    let t = runner_tree(&fs.mount);
    let run = xtask(&["free", "--root", root_arg(&t), "--yes", "--json"], &[]);
    assert!(run.success(), "{run:?}");
    let report = run.json();
    let freed = report["freed_bytes"].as_u64().unwrap() as f64;
    let before = report["filesystem"]["available_before"].as_u64().unwrap() as f64;
    let after = report["filesystem"]["available_after"].as_u64().unwrap() as f64;
    let delta = after - before;
    assert!(freed > 10e6, "{report:#}");
    assert!(
        (freed - delta).abs() <= 0.01 * delta,
        "freed {freed} vs filesystem delta {delta}"
    );
    assert_eq!(
        report["filesystem"]["mount_point"],
        fs.mount.to_str().unwrap()
    );
    assert_eq!(report["filesystem"]["fs_type"], "ext4");
}

fn a_need_target_takes_the_cheapest_items_and_no_more() {
    let fs = LoopFs::new(200);
    let root = fs.mount.join("runner");
    // Many small files cost more per byte than a few big ones.
    fill(&root.join("usr/local/lib/android"), 3000, 12_000); // ~37 MB, 3000 files
    fill(&root.join("usr/share/dotnet"), 3, 20_000_000); // 60 MB, 3 files
    fill(&root.join("usr/share/swift"), 1, 25_000_000); // 25 MB, 1 file
    fill(&root.join("usr/local/share/powershell"), 400, 10_000); // ~4 MB
    let root_s = root.to_str().unwrap();
    let available = headroom_disk::usage(&fs.mount).unwrap().available_bytes;

    // Already met: nothing is freed.
    let need = available.to_string();
    let run = xtask(
        &["free", "--root", root_s, "--need", &need, "--yes", "--json"],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    assert_eq!(report["freed_bytes"], 0);
    assert!(
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["action"] == "skipped")
    );

    // 70 MB more: swift (25) + dotnet (60) reach it; android and powershell stay.
    let need = (available + 70_000_000).to_string();
    let untouched = listing(&root.join("usr/local"));
    let run = xtask(
        &["free", "--root", root_s, "--need", &need, "--yes", "--json"],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    let removed: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["action"] == "removed")
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(removed, ["dotnet", "swift"], "{report:#}");
    assert_same_tree(&untouched, &listing(&root.join("usr/local")), "unchanged");
    assert_eq!(report["target_met"], true);
    let after = report["filesystem"]["available_after"].as_u64().unwrap();
    assert!(after >= available + 70_000_000);
    // No item was needless: without the smaller one the target would not have been met.
    let smallest = ["dotnet", "swift"]
        .iter()
        .map(|n| item(&report, n)["freed_bytes"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(after - smallest < available + 70_000_000);

    // A target out of reach: everything is freed, the run fails and says why.
    let run = xtask(&["free", "--root", root_s, "--need", "10G", "--yes"], &[]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(run.stderr.contains("target not met"), "{}", run.stderr);
    assert!(!root.join("usr/local/lib/android").exists());
}

fn bad_input_gets_a_clear_error_and_deletes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let t = runner_tree(tmp.path());
    let before = listing(&t.root);
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--only", "androidd"],
            &["\"androidd\"", "--only", "android, dotnet"],
        ),
        (&["--skip", "nope"], &["\"nope\"", "--skip"]),
        (&["--need", "30X"], &["--need", "\"30X\"", "unit"]),
        (&["--need=-3G"], &["--need", "\"-3G\""]),
        (&["--need", ""], &["--need"]),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["free", "--root", root_arg(&t), "--yes"];
        args.extend_from_slice(extra);
        let run = xtask(&args, &[]);
        assert!(!run.success(), "{args:?} should fail");
        for e in *expected {
            assert!(
                run.stderr.contains(e),
                "{args:?}: {e:?} not in {}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }
    let missing = tmp.path().join("no-such-root");
    let run = xtask(&["free", "--root", missing.to_str().unwrap(), "--yes"], &[]);
    assert!(!run.success());
    assert!(run.stderr.contains("no-such-root"), "{}", run.stderr);

    let config = tmp.path().join("headroom.toml");
    std::fs::write(&config, "[free]\nprotect = [\"/usr\"]\nitems = 3\n").unwrap();
    let run = xtask(
        &[
            "free",
            "--root",
            root_arg(&t),
            "--yes",
            "--config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!run.success());
    assert!(
        run.stderr.contains("headroom.toml") && run.stderr.contains("line 3"),
        "{}",
        run.stderr
    );
    let run = xtask(
        &["free", "--root", root_arg(&t), "--config", "/no/such.toml"],
        &[],
    );
    assert!(run.stderr.contains("/no/such.toml"), "{}", run.stderr);
    assert_same_tree(&before, &listing(&t.root), "nothing was deleted");
}

fn a_symlinked_parent_never_leads_outside_the_root() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("runner");
    let host_share = tmp.path().join("host-share");
    fill(&host_share.join("dotnet"), 10, 1_000);
    fill(&root.join("usr/local/lib/android"), 10, 1_000);
    // runner/usr/share -> ../../host-share: runner/usr/share/dotnet is outside the root.
    std::os::unix::fs::symlink(&host_share, root.join("usr/share")).unwrap();
    let before = listing(&host_share);
    let run = xtask(
        &["free", "--root", root.to_str().unwrap(), "--yes", "--json"],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    let dotnet = item(&report, "dotnet");
    assert_eq!(dotnet["action"], "skipped", "{dotnet:#}");
    assert!(
        dotnet["reason"]
            .as_str()
            .unwrap()
            .contains("outside --root"),
        "{dotnet:#}"
    );
    assert_same_tree(&before, &listing(&host_share), "outside the root");
    assert_eq!(item(&report, "android")["action"], "removed");
}

fn protected_paths_in_config_are_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let t = runner_tree(tmp.path());
    let config = tmp.path().join("headroom.toml");
    std::fs::write(
        &config,
        "[free]\nprotect = [\"/opt/hostedtoolcache/go\", \"/usr/share/swift\"]\n",
    )
    .unwrap();
    let go = t.root.join("opt/hostedtoolcache/go");
    let go_before = listing(&go);
    let run = xtask(
        &[
            "free",
            "--root",
            root_arg(&t),
            "--only",
            "toolcache,swift",
            "--yes",
            "--json",
            "--config",
        ]
        .into_iter()
        .chain([config.to_str().unwrap()])
        .collect::<Vec<_>>(),
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    assert_same_tree(&go_before, &listing(&go), "unchanged");
    assert!(!t.root.join("opt/hostedtoolcache/CodeQL").exists());
    assert_eq!(item(&report, "swift")["action"], "skipped");
    assert!(
        item(&report, "swift")["reason"]
            .as_str()
            .unwrap()
            .contains("protected")
    );
    assert!(t.root.join("usr/share/swift").exists());
}

fn off_a_hosted_runner_it_only_plans_unless_told_yes() {
    let tmp = tempfile::tempdir().unwrap();
    let scratch = tmp.path().join("scratch");
    fill(&scratch, 20, 5_000);
    let config = tmp.path().join("headroom.toml");
    std::fs::write(
        &config,
        format!(
            "[free]\n[[free.item]]\nname = \"scratch\"\npaths = [{:?}]\n",
            scratch
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let path = tmp.path().to_str().unwrap();
    let base = ["free", "--config", cfg, "--only", "scratch", "--path", path];
    let run = xtask(&base, &[]);
    assert!(run.success(), "{run:?}");
    assert!(
        run.stderr.contains("nothing deleted") && run.stderr.contains("--yes"),
        "{run:?}"
    );
    assert!(run.stdout.contains("planned"), "{}", run.stdout);
    assert!(scratch.exists());
    // Self-hosted runners are not hosted ones.
    let run = xtask(
        &base,
        &[
            ("GITHUB_ACTIONS", "true"),
            ("RUNNER_ENVIRONMENT", "self-hosted"),
        ],
    );
    assert!(run.success() && scratch.exists(), "{run:?}");

    // A GitHub-hosted runner: it deletes, and writes the step summary and outputs.
    let summary = tmp.path().join("summary.md");
    let output = tmp.path().join("output.txt");
    let run = xtask(
        &base,
        &[
            ("GITHUB_ACTIONS", "true"),
            ("RUNNER_ENVIRONMENT", "github-hosted"),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
            ("GITHUB_OUTPUT", output.to_str().unwrap()),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert!(!scratch.exists());
    let md = std::fs::read_to_string(&summary).unwrap();
    assert!(md.contains("| scratch |") && md.contains("removed"), "{md}");
    let out = std::fs::read_to_string(&output).unwrap();
    let freed: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("freed-bytes="))
        .and_then(|v| v.parse().ok())
        .expect("freed-bytes output");
    assert!(freed >= 100_000, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with("available-bytes=")),
        "{out}"
    );
}

fn background_reclaim_and_watchdog_on_a_small_filesystem() {
    use headroom_disk::{
        Catalog, Environment, NoProgress, PlanRequest, ReclaimOptions, Selection, WatchConfig,
        Watchdog,
    };
    use std::sync::Arc;
    use std::time::Duration;

    let fs = LoopFs::new(64);
    let root = fs.mount.join("runner");
    fill(&root.join("usr/local/lib/android"), 500, 40_000);
    let start = headroom_disk::usage(&fs.mount).unwrap().available_bytes;
    let dog = Watchdog::start(
        WatchConfig {
            path: fs.mount.clone(),
            interval: Duration::from_millis(10),
            floor: Some(start - 5_000_000),
        },
        |_| {},
    )
    .unwrap();
    // A build that writes 8 MB while the reclaim runs in the background.
    let plan = headroom_disk::plan(
        &Catalog::builtin(),
        &Environment::under_root(&root),
        &PlanRequest {
            target_path: fs.mount.clone(),
            need: None,
            selection: Selection::default(),
            protect: Vec::new(),
        },
        &NoProgress,
    )
    .unwrap();
    write_file(&fs.mount.join("layer.bin"), 8_000_000);
    sh("sync", &[]);
    assert!(
        dog.wait_below_floor(Duration::from_secs(5)),
        "the watchdog saw the drop"
    );
    let handle =
        headroom_disk::spawn(plan, ReclaimOptions::default(), Arc::new(NoProgress)).unwrap();
    let report = handle.join().unwrap();
    let timeline = dog.stop();
    assert_eq!(
        report.items.iter().filter(|i| i.name == "android").count(),
        1
    );
    assert!(report.freed_bytes > 20_000_000, "{report:#?}");
    assert!(!root.join("usr/local/lib/android").exists());
    assert!(
        timeline.low_water_bytes <= start - 8_000_000,
        "{timeline:?}"
    );
    assert!(timeline.crossed_floor_at_ms.is_some());
    let last = timeline.samples.last().unwrap().available_bytes;
    assert!(
        last > timeline.low_water_bytes + 20_000_000,
        "recovered after the reclaim"
    );
}

fn list_shows_the_catalog() {
    let run = xtask(&["free", "--list"], &[]);
    assert!(run.success(), "{run:?}");
    for name in [
        "android",
        "toolcache",
        "docker-build-cache",
        "large-packages",
    ] {
        assert!(run.stdout.contains(name), "{}", run.stdout);
    }
    assert!(run.stdout.contains("opt-in"));
}

fn a_relative_root_still_keeps_mounts_inside_items() {
    let tmp = tempfile::tempdir().unwrap();
    let t = runner_tree(tmp.path());
    let precious = tmp.path().join("precious");
    write_file(&precious.join("data.bin"), 10_000);
    let cache = t.root.join("usr/share/dotnet/cache");
    std::fs::create_dir_all(&cache).unwrap();
    // A bind mount of the same filesystem: only the mount table tells it apart.
    sh(
        "mount",
        &[
            "--bind",
            precious.to_str().unwrap(),
            cache.to_str().unwrap(),
        ],
    );
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(cache.clone());
    let run = xtask_in(
        Some(tmp.path()),
        &[
            "free", "--root", "runner", "--only", "dotnet", "--yes", "--json",
        ],
        &[],
    );
    assert!(run.success(), "{run:?}");
    assert!(
        precious.join("data.bin").exists(),
        "the bind-mounted tree survives"
    );
    assert!(LoopFs::is_mounted(&cache));
}

fn paths_that_escape_or_name_the_root_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = runner_tree(tmp.path());
    let before = listing(&t.root);
    // $AGENT_TOOLSDIRECTORY pointing back up the tree must not widen the toolcache item.
    for value in ["/opt/hostedtoolcache/..", "/", "/.", "//"] {
        let run = xtask(
            &[
                "free",
                "--root",
                root_arg(&t),
                "--only",
                "toolcache",
                "--dry-run",
                "--json",
            ],
            &[("AGENT_TOOLSDIRECTORY", value)],
        );
        assert!(run.success(), "{run:?}");
        let paths = paths_of(item(&run.json(), "toolcache"));
        assert_eq!(paths, vec![t.root.join("opt/hostedtoolcache")], "{value}");
    }
    let run = xtask(&["free", "--root", "/", "--dry-run"], &[]);
    assert!(!run.success());
    assert!(
        run.stderr.contains("--root /") && run.stderr.contains("without --root"),
        "{}",
        run.stderr
    );
    assert_same_tree(&before, &listing(&t.root), "nothing deleted");
}

fn hard_links_shared_between_items_are_not_counted_as_freed() {
    let fs = LoopFs::new(128);
    let root = fs.mount.join("runner");
    write_file(&root.join("usr/share/dotnet/big.bin"), 20_000_000);
    std::fs::create_dir_all(root.join("usr/share/swift")).unwrap();
    std::fs::hard_link(
        root.join("usr/share/dotnet/big.bin"),
        root.join("usr/share/swift/big.bin"),
    )
    .unwrap();
    write_file(&root.join("usr/share/swift/own.bin"), 1_000_000);
    let run = xtask(
        &[
            "free",
            "--root",
            root.to_str().unwrap(),
            "--only",
            "dotnet",
            "--yes",
            "--json",
        ],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    let dotnet = item(&report, "dotnet");
    assert!(
        dotnet["shared_bytes"].as_u64().unwrap() >= 20_000_000,
        "{dotnet:#}"
    );
    let freed = report["freed_bytes"].as_u64().unwrap() as f64;
    let delta = report["filesystem_delta_bytes"].as_i64().unwrap() as f64;
    assert!(
        (freed - delta).abs() <= 0.01 * 20e6,
        "freed {freed} vs delta {delta}"
    );
    assert!(root.join("usr/share/swift/big.bin").exists());
}

fn a_symlink_swapped_in_after_planning_does_not_lead_outside_the_root() {
    use headroom_disk::{Catalog, Environment, NoProgress, PlanRequest, ReclaimOptions, Selection};
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("runner");
    fill(&root.join("usr/share/dotnet"), 10, 1_000);
    let outside = tmp.path().join("outside-share");
    fill(&outside.join("dotnet"), 10, 1_000);
    let plan = headroom_disk::plan(
        &Catalog::builtin(),
        &Environment::under_root(&root),
        &PlanRequest {
            target_path: root.clone(),
            need: None,
            selection: Selection {
                only: vec!["dotnet".into()],
                ..Selection::default()
            },
            protect: Vec::new(),
        },
        &NoProgress,
    )
    .unwrap();
    // Between plan and reclaim, usr/share becomes a symlink to a tree outside the root.
    std::fs::rename(root.join("usr/share"), tmp.path().join("moved")).unwrap();
    std::os::unix::fs::symlink(&outside, root.join("usr/share")).unwrap();
    let before = listing(&outside);
    let report = headroom_disk::reclaim(&plan, ReclaimOptions::default(), &NoProgress);
    assert_same_tree(&before, &listing(&outside), "outside the root");
    let dotnet = report.items.iter().find(|i| i.name == "dotnet").unwrap();
    assert_eq!(dotnet.action, headroom_disk::Action::Failed, "{dotnet:?}");
    assert!(
        dotnet.reason.as_deref().unwrap_or("").contains("symlink"),
        "{dotnet:?}"
    );
}
