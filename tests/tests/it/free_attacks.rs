//! The adversarial deletion suite (issue 11): `cargo xtask free` and `headroom-disk` attacked
//! as an attacker would, on loop-mounted ext4, xfs and btrfs, as root, each test in its own
//! private mount namespace (the whole test process is re-executed under `unshare -m`, since
//! the deleter's thread pool would not follow an `unshare()` of the test thread). Every test
//! plants precious data outside the plan and asserts its survival, file by file and byte by
//! byte. Races are driven by the library's progress events (`Measured` after an item is
//! sized, `Started` before it is reclaimed), never by sleeps; every wait is bounded.
//!
//! The mount and symlink cases run under both resolvers: openat2 and the forced fallback
//! (`HEADROOM_RESOLVER=fallback`, openat + mount id).

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use headroom_disk::{Event, NoProgress, ReclaimOptions};
use headroom_tests::attack::{
    FsKind, Gate, MountGuard, OpenOnDrop, Rng, Snapshot, TestFs, action, assert_resolver, bind,
    bytes, in_private_mount_ns, in_private_mount_ns_each_resolver, is_mount_point, item, plan_only,
    plant_precious, reason, report_json, sync_fs, try_bind, within_1pct, write_random,
};
use headroom_tests::{Run, fill, sh, write_file, xtask, xtask_bin};
use serde_json::Value;

headroom_tests::tests! {
    a_same_fs_bind_mount_over_an_items_parent_is_refused_and_its_source_survives needs Root;
    a_same_fs_bind_mount_appearing_inside_an_item_after_measuring_is_kept needs Root;
    another_filesystem_mounted_over_an_items_parent_after_planning_is_not_touched needs Root;
    a_root_swapped_for_a_symlink_after_planning_is_refused needs Root;
    protect_entries_that_protect_nothing_are_errors_and_a_valid_one_is_kept needs Root;
    an_item_swapped_for_a_symlink_after_planning_frees_and_claims_nothing needs Root;
    an_item_moved_away_after_planning_is_not_reported_removed needs Root;
    a_second_instance_deletes_nothing_while_the_first_holds_the_lock needs Root;
    a_file_held_open_is_reported_and_not_counted_as_freed needs Root;
    reflinked_copies_on_xfs_and_btrfs_are_explained_and_survive
        needs Root, Program("mkfs.xfs"), Program("mkfs.btrfs");
    a_hard_link_between_two_removed_items_is_counted_once needs Root;
    a_hard_link_into_an_item_that_is_refused_is_not_counted_as_freed needs Root;
    agent_toolsdirectory_of_usr_or_etc_is_refused_as_the_tool_cache;
    a_root_on_a_bind_mount_of_slash_is_an_error needs Root;
    earlier_symlink_traps_still_hold needs Root;
    random_trees_with_symlinks_hard_links_and_mounts_change_nothing_outside_the_plan needs Root;
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `cargo xtask free --root ROOT --yes --json EXTRA…` (the resolver comes from the
/// environment the namespace helper set).
fn free(root: &Path, extra: &[&str]) -> Run {
    // Written data is allocated (btrfs counts it in statvfs only then) before "before".
    sync_fs(root);
    let mut args = vec!["free", "--root", s(root), "--yes", "--json"];
    args.extend_from_slice(extra);
    xtask(&args, &[])
}

/// [`free`] killed after `seconds`: a second instance that waits for the lock instead of
/// refusing would otherwise wait for ever on the first, which waits for it.
fn free_bounded(root: &Path, extra: &[&str], seconds: u32) -> Run {
    sync_fs(root);
    let mut cmd = std::process::Command::new("timeout");
    cmd.args(["--kill-after=5", &seconds.to_string()])
        .arg(xtask_bin())
        .args(["free", "--root", s(root), "--yes", "--json"])
        .args(extra);
    headroom_tests::without_github_env(&mut cmd);
    let out = cmd.output().expect("running timeout xtask free");
    let run = Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !matches!(run.code, Some(124) | Some(137) | None),
        "xtask free did not finish within {seconds} s (does it wait for the lock instead of \
         refusing?): {run:?}"
    );
    run
}

fn reclaim(plan: &headroom_disk::Plan, progress: &dyn headroom_disk::Progress) -> Value {
    sync_fs(&plan.filesystem.mount_point);
    report_json(&headroom_disk::reclaim(
        plan,
        ReclaimOptions::default(),
        progress,
    ))
}

fn is_refusal(item: &Value) -> bool {
    matches!(action(item), "failed" | "skipped")
}

fn mentions_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|w| text.contains(w))
}

/// The precious tree every test plants beside the runner root, on the same filesystem.
struct Precious {
    dir: PathBuf,
    before: Snapshot,
}

impl Precious {
    fn plant(base: &Path) -> Precious {
        let dir = base.join("precious");
        let before = plant_precious(&dir, 0xdead_beef);
        Precious { dir, before }
    }

    #[track_caller]
    fn assert_intact(&self) {
        self.before
            .assert_same(&Snapshot::of(&self.dir), "precious data outside the plan");
    }
}

// ---------------------------------------------------------------------------------------
// 1–4: mounts and a swapped root
// ---------------------------------------------------------------------------------------

fn a_same_fs_bind_mount_over_an_items_parent_is_refused_and_its_source_survives() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    fill(&root.join("usr/share/dotnet/sdk"), 30, 40_000);
    fill(&root.join("usr/local/lib/android"), 10, 10_000);
    // OUTSIDE looks like a usr/share: a bind of it over R/usr/share puts its dotnet/ where
    // the catalog looks, on the same filesystem (same st_dev).
    let outside = fs.mount.join("outside");
    let mut rng = Rng::new(1);
    for i in 0..40 {
        write_random(
            &outside.join(format!("dotnet/sdk/v{}/f{i}.dll", i % 5)),
            30_000,
            &mut rng,
        );
    }
    let outside_before = Snapshot::of(&outside);
    let hidden_before = Snapshot::of(&root.join("usr/share"));
    let guard = bind(&outside, &root.join("usr/share"));

    let run = free(&root, &["--only", "dotnet"]);
    let report = run.json();

    outside_before.assert_same(
        &Snapshot::of(&outside),
        "OUTSIDE/dotnet under the bind mount",
    );
    precious.assert_intact();
    let dotnet = item(&report, "dotnet");
    assert!(is_refusal(dotnet), "dotnet must be refused: {dotnet:#}");
    assert!(reason(dotnet).contains("mount"), "{dotnet:#}");
    assert_eq!(bytes(&dotnet["freed_bytes"], "dotnet.freed_bytes"), 0);
    guard.unmount();
    hidden_before.assert_same(
        &Snapshot::of(&root.join("usr/share")),
        "the tree the bind mount hid",
    );
    assert_resolver(&report);
}

fn a_same_fs_bind_mount_appearing_inside_an_item_after_measuring_is_kept() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    fill(&root.join("usr/share/dotnet/sdk"), 30, 40_000);
    let cache = root.join("usr/share/dotnet/cache");
    std::fs::create_dir_all(&cache).unwrap();
    let source = fs.mount.join("bind-source");
    let source_before = plant_precious(&source, 2);

    // The mount appears exactly when dotnet has been measured: the plan cannot know it.
    let guard: Mutex<Option<MountGuard>> = Mutex::new(None);
    let hook = |e: Event<'_>| {
        if let Event::Measured { item, .. } = e
            && item == "dotnet"
        {
            *guard.lock().unwrap() = Some(bind(&source, &cache));
        }
    };
    let plan = plan_only(&root, &["dotnet"], &hook);
    assert!(
        guard.lock().unwrap().is_some(),
        "the Measured hook never fired for dotnet"
    );
    let report = reclaim(&plan, &NoProgress);

    source_before.assert_same(&Snapshot::of(&source), "the bind mount's source");
    precious.assert_intact();
    assert!(is_mount_point(&cache), "{} still mounted", cache.display());
    let dotnet = item(&report, "dotnet");
    let why = reason(dotnet);
    let kept: Vec<&str> = dotnet["kept"]
        .as_array()
        .map(|k| k.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        why.contains(&s(&cache).to_lowercase()) || kept.contains(&s(&cache)),
        "reason or kept names {}: {dotnet:#}",
        cache.display()
    );
    assert!(why.contains("mount"), "{dotnet:#}");
    assert_resolver(&report);
    drop(guard);
}

fn another_filesystem_mounted_over_an_items_parent_after_planning_is_not_touched() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let other = TestFs::ext4(32);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    fill(&root.join("usr/share/dotnet/sdk"), 30, 40_000);
    let planned_before = Snapshot::of(&root.join("usr/share"));
    // The other filesystem holds its own usr/share-like tree, dotnet/ included.
    let mut rng = Rng::new(3);
    for i in 0..30 {
        write_random(
            &other.mount.join(format!("dotnet/host/f{i}.so")),
            25_000,
            &mut rng,
        );
    }
    write_random(&other.mount.join("doc/readme"), 5_000, &mut rng);
    let other_before = Snapshot::of(&other.mount);

    let plan = plan_only(&root, &["dotnet"], &NoProgress);
    let guard = bind(&other.mount, &root.join("usr/share"));
    let report = reclaim(&plan, &NoProgress);

    other_before.assert_same(
        &Snapshot::of(&other.mount),
        "the filesystem mounted over usr/share",
    );
    precious.assert_intact();
    guard.unmount();
    planned_before.assert_same(
        &Snapshot::of(&root.join("usr/share")),
        "the planned dotnet, hidden by the mount",
    );
    let dotnet = item(&report, "dotnet");
    assert_eq!(action(dotnet), "failed", "{dotnet:#}");
    assert!(reason(dotnet).contains("mount"), "{dotnet:#}");
    assert_eq!(bytes(&dotnet["freed_bytes"], "dotnet.freed_bytes"), 0);
    assert_resolver(&report);
}

fn a_root_swapped_for_a_symlink_after_planning_is_refused() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    fill(&root.join("usr/share/dotnet/sdk"), 20, 40_000);
    fill(&root.join("usr/share/swift"), 5, 100_000);
    let outside = fs.mount.join("outside");
    let mut rng = Rng::new(4);
    for i in 0..20 {
        write_random(
            &outside.join(format!("usr/share/dotnet/o{i}")),
            20_000,
            &mut rng,
        );
        write_random(
            &outside.join(format!("usr/share/swift/o{i}")),
            20_000,
            &mut rng,
        );
    }
    let outside_before = Snapshot::of(&outside);
    let root_before = Snapshot::of(&root);

    let plan = plan_only(&root, &["dotnet", "swift"], &NoProgress);
    let moved = fs.mount.join("runner.moved");
    std::fs::rename(&root, &moved).unwrap();
    std::os::unix::fs::symlink(&outside, &root).unwrap();
    let report = reclaim(&plan, &NoProgress);

    outside_before.assert_same(&Snapshot::of(&outside), "the symlink's target");
    precious.assert_intact();
    root_before.assert_same(&Snapshot::of(&moved), "the planned root, renamed");
    for name in ["dotnet", "swift"] {
        let i = item(&report, name);
        let why = reason(i);
        assert!(is_refusal(i), "{name} must be refused: {i:#}");
        assert!(
            why.contains("root") && mentions_any(&why, &["replaced", "symlink"]),
            "{name}: {i:#}"
        );
        assert_eq!(bytes(&i["freed_bytes"], "freed_bytes"), 0, "{name}");
    }
    assert_resolver(&report);
}

// ---------------------------------------------------------------------------------------
// 5: protect entries
// ---------------------------------------------------------------------------------------

fn protect_entries_that_protect_nothing_are_errors_and_a_valid_one_is_kept() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    let dotnet = root.join("usr/share/dotnet");
    fill(&dotnet.join("sdk"), 20, 30_000);
    fill(&dotnet.join("8.0/keep"), 5, 10_000);
    std::os::unix::fs::symlink("8.0", dotnet.join("current")).unwrap();
    let mut rng = Rng::new(5);
    for i in 0..6 {
        write_random(
            &dotnet.join(format!("keep/k{}/f{i}", i % 2)),
            7_000,
            &mut rng,
        );
    }
    fill(&root.join("opt/hostedtoolcache/Go/1.22"), 20, 10_000);
    fill(&root.join("opt/hostedtoolcache/node/20"), 20, 10_000);
    let config_dir = fs.mount.join("config");
    std::fs::create_dir_all(&config_dir).unwrap();
    let config = config_dir.join("headroom.toml");

    let bad: &[(&str, &[&str])] = &[
        ("/usr/share/dotnet/x/../keep", &[]),
        ("/usr/share/dotnet/current/keep", &["symlink"]),
        ("/opt/hostedtoolcache/Go/..", &[]),
    ];
    for (entry, words) in bad {
        std::fs::write(&config, format!("[free]\nprotect = [{entry:?}]\n")).unwrap();
        let all_before = Snapshot::of(&fs.mount);
        let run = free(&root, &["--config", s(&config)]);
        all_before.assert_same(
            &Snapshot::of(&fs.mount),
            &format!("protect = [{entry:?}] deletes nothing"),
        );
        assert!(
            !run.success(),
            "protect {entry:?} must be an error: {run:?}"
        );
        assert!(
            run.stderr.contains("headroom.toml") && run.stderr.contains(entry),
            "the error names the file and {entry:?}: {}",
            run.stderr
        );
        for w in *words {
            assert!(run.stderr.contains(w), "{entry:?}: {w:?} in {}", run.stderr);
        }
        assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    }

    // A valid entry: kept with its ancestors, listed as kept, the rest of dotnet removed.
    let keep = dotnet.join("keep");
    let keep_before = Snapshot::of(&keep);
    std::fs::write(&config, "[free]\nprotect = [\"/usr/share/dotnet/keep\"]\n").unwrap();
    let run = free(&root, &["--only", "dotnet", "--config", s(&config)]);
    assert!(run.success(), "{run:?}");
    let report = run.json();
    keep_before.assert_same(&Snapshot::of(&keep), "the protected path");
    precious.assert_intact();
    let left: Vec<String> = std::fs::read_dir(&dotnet)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["keep"], "the rest of dotnet is removed");
    assert_eq!(action(item(&report, "dotnet")), "removed");
    let canonical_keep = std::fs::canonicalize(&keep).unwrap();
    let listed = report["protected"]
        .as_array()
        .unwrap_or_else(|| panic!("report.protected: {report:#}"));
    assert!(
        listed.iter().any(|p| p["entry"] == "/usr/share/dotnet/keep"
            && p["path"] == s(&canonical_keep)
            && p["kept"] == true),
        "protected lists {} as kept: {listed:#?}",
        canonical_keep.display()
    );
    assert_resolver(&report);
}

// ---------------------------------------------------------------------------------------
// 6: freed bytes that are true
// ---------------------------------------------------------------------------------------

fn an_item_swapped_for_a_symlink_after_planning_frees_and_claims_nothing() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    let dotnet = root.join("usr/share/dotnet");
    fill(&dotnet, 30, 50_000);
    let dotnet_before = Snapshot::of(&dotnet);
    let target = fs.mount.join("outside/target");
    let target_before = plant_precious(&target, 6);

    let plan = plan_only(&root, &["dotnet"], &NoProgress);
    let moved = fs.mount.join("moved-dotnet");
    std::fs::rename(&dotnet, &moved).unwrap();
    std::os::unix::fs::symlink(&target, &dotnet).unwrap();
    let report = reclaim(&plan, &NoProgress);

    target_before.assert_same(&Snapshot::of(&target), "the swapped-in symlink's target");
    dotnet_before.assert_same(&Snapshot::of(&moved), "the planned dotnet, moved aside");
    precious.assert_intact();
    let i = item(&report, "dotnet");
    assert_ne!(action(i), "removed", "{i:#}");
    assert_eq!(bytes(&i["freed_bytes"], "dotnet.freed_bytes"), 0, "{i:#}");
    assert_eq!(bytes(&report["freed_bytes"], "freed_bytes"), 0);
    assert!(
        mentions_any(
            &reason(i),
            &["symlink", "replaced", "changed since planning"]
        ),
        "{i:#}"
    );
    assert_resolver(&report);
}

fn an_item_moved_away_after_planning_is_not_reported_removed() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    let dotnet = root.join("usr/share/dotnet");
    fill(&dotnet, 30, 50_000);
    let dotnet_before = Snapshot::of(&dotnet);

    let plan = plan_only(&root, &["dotnet"], &NoProgress);
    let moved = fs.mount.join("outside/moved-dotnet");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(&dotnet, &moved).unwrap();
    let report = reclaim(&plan, &NoProgress);

    dotnet_before.assert_same(&Snapshot::of(&moved), "the item moved outside the root");
    precious.assert_intact();
    let i = item(&report, "dotnet");
    assert_ne!(action(i), "removed", "{i:#}");
    assert_eq!(bytes(&i["freed_bytes"], "dotnet.freed_bytes"), 0, "{i:#}");
    assert_eq!(bytes(&report["freed_bytes"], "freed_bytes"), 0);
    assert!(
        mentions_any(
            &reason(i),
            &[
                "no longer present",
                "changed since planning",
                "replaced",
                "moved"
            ]
        ),
        "{i:#}"
    );
    assert_resolver(&report);
}

fn a_second_instance_deletes_nothing_while_the_first_holds_the_lock() {
    if !in_private_mount_ns() {
        return;
    }
    let fs = TestFs::ext4(128);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    fill(&root.join("usr/share/dotnet"), 40, 200_000);
    fill(&root.join("usr/share/swift"), 20, 300_000);
    let plan = plan_only(&root, &["dotnet", "swift"], &NoProgress);
    let root_before = Snapshot::of(&root);
    let available_before = fs.available();

    // Instance 1 (the library) stops at its first Started event until instance 2 (the CLI)
    // has finished; every Started waits, so no item of instance 1 runs meanwhile.
    let started = Gate::default();
    let go = Gate::default();
    let waited_out = AtomicBool::new(false);
    let hook = |e: Event<'_>| {
        if let Event::Started { .. } = e {
            started.open();
            if !go.wait(Duration::from_secs(180)) {
                waited_out.store(true, Ordering::SeqCst);
            }
        }
    };
    let (first, second, root_between) = std::thread::scope(|scope| {
        let _release = OpenOnDrop(&go);
        let first = scope.spawn(|| reclaim(&plan, &hook));
        assert!(
            started.wait(Duration::from_secs(120)),
            "instance 1 emitted no Event::Started within 120 s"
        );
        let second = free_bounded(&root, &["--only", "dotnet,swift"], 120);
        let between = Snapshot::of(&root);
        go.open();
        (first.join().unwrap(), second, between)
    });
    assert!(
        !waited_out.load(Ordering::SeqCst),
        "instance 1 waited 180 s for instance 2"
    );
    let delta = fs.available() as i64 - available_before as i64;

    root_before.assert_same(&root_between, "what instance 2 left while instance 1 ran");
    precious.assert_intact();
    // Instance 2 refuses: per item in its report, or as a whole with an error.
    let second_freed = match serde_json::from_str::<Value>(&second.stdout) {
        Ok(report) => {
            for name in ["dotnet", "swift"] {
                let i = item(&report, name);
                assert_eq!(action(i), "failed", "instance 2's {name}: {i:#}");
                assert!(reason(i).contains("another headroom"), "{i:#}");
            }
            bytes(&report["freed_bytes"], "instance 2 freed_bytes")
        }
        Err(_) => {
            assert!(
                !second.success() && second.stderr.contains("another headroom"),
                "instance 2: {second:?}"
            );
            0
        }
    };
    for name in ["dotnet", "swift"] {
        assert_eq!(action(item(&first, name)), "removed", "instance 1's {name}");
    }
    let sum = bytes(&first["freed_bytes"], "instance 1 freed_bytes") + second_freed;
    assert!(
        within_1pct(sum, delta),
        "freed by both {sum} vs filesystem delta {delta}"
    );
}

fn a_file_held_open_is_reported_and_not_counted_as_freed() {
    if !in_private_mount_ns() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    let held_path = root.join("usr/share/dotnet/held.bin");
    const HELD: u64 = 10_000_000;
    write_file(&held_path, HELD as usize);
    fill(&root.join("usr/share/dotnet/sdk"), 40, 200_000);
    let held = std::fs::File::open(&held_path).unwrap();

    let run = free(&root, &["--only", "dotnet"]);
    let report = run.json();
    drop(held);

    precious.assert_intact();
    let i = item(&report, "dotnet");
    let freed = bytes(&report["freed_bytes"], "freed_bytes");
    let delta = report["filesystem_delta_bytes"].as_i64().unwrap();
    assert!(
        within_1pct(freed, delta),
        "freed {freed} vs filesystem delta {delta} with {HELD} bytes held open: {report:#}"
    );
    let size = bytes(&i["size_bytes"], "dotnet.size_bytes");
    let item_freed = bytes(&i["freed_bytes"], "dotnet.freed_bytes");
    assert!(
        item_freed <= size.saturating_sub(HELD),
        "dotnet freed {item_freed} of {size}, {HELD} of them held open"
    );
    let accounting = &report["accounting"];
    assert!(
        bytes(&accounting["held_open_bytes"], "accounting.held_open_bytes") >= HELD,
        "{accounting:#}"
    );
    assert!(
        bytes(&i["held_open_bytes"], "dotnet.held_open_bytes") >= HELD,
        "{i:#}"
    );
}

fn reflinked_copies_on_xfs_and_btrfs_are_explained_and_survive() {
    if !in_private_mount_ns() {
        return;
    }
    // Both filesystems are tried before the accounting verdict, so a report shows both.
    let mut unexplained = Vec::new();
    for kind in [FsKind::Xfs, FsKind::Btrfs] {
        let fs = TestFs::new(kind, 200);
        let precious = Precious::plant(&fs.mount);
        let root = fs.mount.join("runner");
        let big = root.join("usr/share/dotnet/big.bin");
        let mut rng = Rng::new(7);
        write_random(&big, 24_000_000, &mut rng);
        fill(&root.join("usr/share/dotnet/sdk"), 10, 100_000);
        let copy = fs.mount.join("outside/big.copy");
        std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
        sh("cp", &["--reflink=always", s(&big), s(&copy)]);
        let outside_before = Snapshot::of(&fs.mount.join("outside"));

        let run = free(&root, &["--only", "dotnet"]);
        let report = run.json();

        outside_before.assert_same(
            &Snapshot::of(&fs.mount.join("outside")),
            &format!("{kind:?}: the reflinked copy"),
        );
        precious.assert_intact();
        assert_eq!(action(item(&report, "dotnet")), "removed", "{kind:?}");
        let freed = bytes(&report["freed_bytes"], "freed_bytes");
        let delta = report["filesystem_delta_bytes"].as_i64().unwrap();
        let explanation = report["accounting"]["explanation"]
            .as_str()
            .unwrap_or("")
            .to_lowercase();
        if !(within_1pct(freed, delta) || mentions_any(&explanation, &["reflink", "shared"])) {
            unexplained.push(format!(
                "{kind:?}: freed {freed} vs filesystem delta {delta}, explanation \
                 {explanation:?}, accounting {}",
                report["accounting"]
            ));
        }
    }
    assert!(unexplained.is_empty(), "{unexplained:#?}");
}

fn a_hard_link_between_two_removed_items_is_counted_once() {
    if !in_private_mount_ns() {
        return;
    }
    let fs = TestFs::ext4(96);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    write_file(&root.join("usr/share/dotnet/big.bin"), 20_000_000);
    std::fs::create_dir_all(root.join("usr/share/swift")).unwrap();
    std::fs::hard_link(
        root.join("usr/share/dotnet/big.bin"),
        root.join("usr/share/swift/big.bin"),
    )
    .unwrap();
    fill(&root.join("usr/share/dotnet/sdk"), 10, 100_000);
    fill(&root.join("usr/share/swift/lib"), 10, 100_000);

    let run = free(&root, &["--only", "dotnet,swift"]);
    let report = run.json();

    precious.assert_intact();
    let mut sum = 0;
    for name in ["dotnet", "swift"] {
        let i = item(&report, name);
        assert_eq!(action(i), "removed", "{i:#}");
        sum += bytes(&i["freed_bytes"], "freed_bytes");
    }
    let delta = report["filesystem_delta_bytes"].as_i64().unwrap();
    assert!(delta > 20_000_000, "the linked file was freed: {delta}");
    assert!(
        within_1pct(sum, delta),
        "items' freed sum {sum} vs filesystem delta {delta} (the 20 MB link once): {report:#}"
    );
    assert_eq!(bytes(&report["freed_bytes"], "freed_bytes"), sum);
}

fn a_hard_link_into_an_item_that_is_refused_is_not_counted_as_freed() {
    if !in_private_mount_ns() {
        return;
    }
    let fs = TestFs::ext4(96);
    let other = TestFs::ext4(16);
    let precious = Precious::plant(&fs.mount);
    let root = fs.mount.join("runner");
    // swift holds two links of a 10 MB file, android the third; android is refused, so the
    // file stays (fuzz seed 51 found this).
    write_file(&root.join("usr/local/lib/android/big.bin"), 10_000_000);
    for link in ["usr/share/swift/big.bin", "usr/share/swift/d/again.bin"] {
        std::fs::create_dir_all(root.join(link).parent().unwrap()).unwrap();
        std::fs::hard_link(root.join("usr/local/lib/android/big.bin"), root.join(link)).unwrap();
    }
    fill(&root.join("usr/share/swift/lib"), 40, 200_000);
    fill(&root.join("usr/local/lib/android/sdk"), 10, 100_000);
    let android_before = Snapshot::of(&root.join("usr/local/lib/android"));

    let plan = plan_only(&root, &["android", "swift"], &NoProgress);
    let available_before = fs.available();
    let guard = bind(&other.mount, &root.join("usr/local/lib"));
    let report = reclaim(&plan, &NoProgress);
    guard.unmount();
    let delta = fs.available() as i64 - available_before as i64;

    precious.assert_intact();
    android_before.assert_same(
        &Snapshot::of(&root.join("usr/local/lib/android")),
        "the refused item",
    );
    assert!(is_refusal(item(&report, "android")), "{report:#}");
    assert_eq!(action(item(&report, "swift")), "removed");
    let freed = bytes(&report["freed_bytes"], "freed_bytes");
    assert!(
        within_1pct(freed, delta),
        "freed {freed} vs filesystem delta {delta}: the link into the refused item freed \
         nothing: {:#}",
        item(&report, "swift")
    );
}

// ---------------------------------------------------------------------------------------
// 7: weak spots
// ---------------------------------------------------------------------------------------

/// Catalog paths under /usr (relative), left out of "nothing outside the items changed".
const USR_ITEMS: &[&str] = &[
    "usr/share/dotnet",
    "usr/share/swift",
    "usr/local/lib/android",
    "usr/local/share/powershell",
    "usr/local/share/chromium",
    "usr/local/share/boost",
    "usr/local/.ghcup",
];

fn agent_toolsdirectory_of_usr_or_etc_is_refused_as_the_tool_cache() {
    for value in ["/usr", "/etc"] {
        let tmp = tempfile::tempdir().unwrap();
        let precious = Precious::plant(tmp.path());
        let root = tmp.path().join("runner");
        fill(&root.join("usr/bin"), 10, 5_000);
        fill(&root.join("usr/lib/x86_64-linux-gnu"), 10, 5_000);
        fill(&root.join("usr/share/doc"), 10, 1_000);
        fill(&root.join("usr/share/dotnet"), 10, 5_000);
        fill(&root.join("etc/ssl/certs"), 10, 1_000);
        write_file(&root.join("etc/passwd"), 700);
        fill(&root.join("opt/hostedtoolcache/Go/1.22"), 10, 5_000);
        let skip: Vec<PathBuf> = USR_ITEMS.iter().map(PathBuf::from).collect();
        let before = Snapshot::of(&root);
        let run = xtask(
            &["free", "--root", s(&root), "--yes", "--json"],
            &[("AGENT_TOOLSDIRECTORY", value)],
        );
        let after = Snapshot::of(&root);
        precious.assert_intact();
        for top in ["usr", "etc"] {
            let pick = |snap: &Snapshot| {
                Snapshot(
                    snap.without(&skip)
                        .0
                        .into_iter()
                        .filter(|(p, _)| p.starts_with(top))
                        .collect(),
                )
            };
            pick(&before).assert_same(
                &pick(&after),
                &format!("AGENT_TOOLSDIRECTORY={value}: R/{top} outside the catalog's items"),
            );
        }
        let report = run.json();
        let toolcache = item(&report, "toolcache");
        assert!(
            reason(toolcache).contains("agent_toolsdirectory"),
            "AGENT_TOOLSDIRECTORY={value}: {toolcache:#}"
        );
        assert!(
            !toolcache["paths"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p == s(&root.join(value.trim_start_matches('/')))),
            "AGENT_TOOLSDIRECTORY={value} is not a toolcache path: {toolcache:#}"
        );
    }
}

fn a_root_on_a_bind_mount_of_slash_is_an_error() {
    if !in_private_mount_ns() {
        return;
    }
    // Not in a TempDir: were the unmount to fail, removing a TempDir would recurse into
    // the host's root. The bind is read-only, so nothing can be deleted through it either.
    let host = std::env::temp_dir().join(format!("headroom-attack-slash-{}", std::process::id()));
    std::fs::create_dir(&host).unwrap();
    struct Rmdir(PathBuf);
    impl Drop for Rmdir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let _rmdir = Rmdir(host.clone());
    let names = |dir: &Path| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|r| r.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let top_before = names(Path::new("/"));
    let share_before = names(Path::new("/usr/share"));
    let guard = bind(Path::new("/"), &host);
    sh("mount", &["-o", "remount,bind,ro", s(&host)]);
    // Only a dry run: if the check is missing, this plans the host's own files, and a
    // real run would delete them.
    let run = xtask(&["free", "--root", s(&host), "--dry-run", "--json"], &[]);
    assert_eq!(names(Path::new("/")), top_before);
    assert_eq!(names(Path::new("/usr/share")), share_before);
    assert!(
        !run.success(),
        "--root on a bind mount of / must be refused: exit {:?}, stderr {}",
        run.code,
        run.stderr
    );
    assert!(
        run.stderr.contains("--root") && !run.stderr.contains("panicked"),
        "{}",
        run.stderr
    );
    guard.unmount();
}

// ---------------------------------------------------------------------------------------
// 8: the earlier traps
// ---------------------------------------------------------------------------------------

fn earlier_symlink_traps_still_hold() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious = Precious::plant(&fs.mount);
    let base = &fs.mount;
    let outside = base.join("outside");
    let outside_before = {
        let mut rng = Rng::new(8);
        for sub in ["swift", "local/lib/android", "share/dotnet", "sdk", "dir"] {
            for i in 0..8 {
                write_random(&outside.join(format!("{sub}/o{i}")), 9_000, &mut rng);
            }
        }
        write_random(&outside.join("file.bin"), 50_000, &mut rng);
        Snapshot::of(&outside)
    };

    // a. The item itself is a symlink to outside the root.
    let r1 = base.join("r1");
    std::fs::create_dir_all(r1.join("usr/share")).unwrap();
    std::os::unix::fs::symlink(outside.join("swift"), r1.join("usr/share/swift")).unwrap();
    let _ = free(&r1, &["--only", "swift"]);
    outside_before.assert_same(&Snapshot::of(&outside), "a. an item that is a symlink");

    // b. A symlinked parent (relative): R/usr/local -> ../../outside/local.
    let r2 = base.join("r2");
    std::fs::create_dir_all(r2.join("usr")).unwrap();
    std::os::unix::fs::symlink("../../outside/local", r2.join("usr/local")).unwrap();
    let run = free(&r2, &["--only", "android"]);
    outside_before.assert_same(&Snapshot::of(&outside), "b. a symlinked parent");
    let android = item(&run.json(), "android").clone();
    assert!(is_refusal(&android), "b. {android:#}");

    // c. The parent swapped for a symlink between plan and reclaim.
    let r3 = base.join("r3");
    fill(&r3.join("usr/share/dotnet"), 10, 5_000);
    let plan = plan_only(&r3, &["dotnet"], &NoProgress);
    std::fs::rename(r3.join("usr/share"), base.join("r3-share-moved")).unwrap();
    std::os::unix::fs::symlink(outside.join("share"), r3.join("usr/share")).unwrap();
    let report = reclaim(&plan, &NoProgress);
    outside_before.assert_same(
        &Snapshot::of(&outside),
        "c. a parent swapped after planning",
    );
    let dotnet = item(&report, "dotnet");
    assert_eq!(action(dotnet), "failed", "c. {dotnet:#}");
    assert!(reason(dotnet).contains("symlink"), "c. {dotnet:#}");
    assert_eq!(bytes(&dotnet["freed_bytes"], "c. freed_bytes"), 0);

    // d. Symlinks inside an item (absolute, relative, to a dir, to a file): the links go,
    //    their targets stay.
    let r4 = base.join("r4");
    let item_dir = r4.join("usr/share/dotnet");
    fill(&item_dir, 10, 5_000);
    std::os::unix::fs::symlink(outside.join("dir"), item_dir.join("abs-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("file.bin"), item_dir.join("abs-file")).unwrap();
    std::os::unix::fs::symlink("../../../../../outside/dir", item_dir.join("d0/rel-dir")).unwrap();
    std::os::unix::fs::symlink("/", item_dir.join("slash")).unwrap();
    let run = free(&r4, &["--only", "dotnet"]);
    outside_before.assert_same(&Snapshot::of(&outside), "d. symlinks inside an item");
    assert_eq!(action(item(&run.json(), "dotnet")), "removed", "d. {run:?}");
    assert!(!item_dir.exists(), "d. the item and its links are gone");

    // e. A directory inside the item swapped for a symlink when its reclaim starts.
    let r5 = base.join("r5");
    let sdk = r5.join("usr/share/dotnet/sdk");
    fill(&sdk, 10, 5_000);
    let plan = plan_only(&r5, &["dotnet"], &NoProgress);
    let swapped = AtomicBool::new(false);
    let hook = |e: Event<'_>| {
        if let Event::Started { item, .. } = e
            && item == "dotnet"
            && std::fs::rename(&sdk, base.join("r5-sdk-moved")).is_ok()
            && std::os::unix::fs::symlink(outside.join("sdk"), &sdk).is_ok()
        {
            swapped.store(true, Ordering::SeqCst);
        }
    };
    let report = reclaim(&plan, &hook);
    assert!(swapped.load(Ordering::SeqCst), "e. the swap on Started");
    outside_before.assert_same(
        &Snapshot::of(&outside),
        "e. a subdirectory swapped at Started",
    );
    let _ = item(&report, "dotnet");
    precious.assert_intact();
    assert_resolver(&report);
}

// ---------------------------------------------------------------------------------------
// 9: random trees, random links, random mounts
// ---------------------------------------------------------------------------------------

/// Catalog items the random trees are made of (name, path under the root).
const FUZZ_ITEMS: &[(&str, &str)] = &[
    ("dotnet", "usr/share/dotnet"),
    ("swift", "usr/share/swift"),
    ("android", "usr/local/lib/android"),
    ("powershell", "usr/local/share/powershell"),
    ("boost", "usr/local/share/boost"),
    ("toolcache", "opt/hostedtoolcache"),
];

/// When a random mount is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    BeforePlan,
    /// In the `Measured` hook of the item it is in or above.
    Measured,
    AfterPlan,
    /// In the `Started` hook of the item it is in or above (on the deleter's threads).
    Started,
}

#[derive(Debug, Clone)]
struct RandomMount {
    source: PathBuf,
    target: PathBuf,
    /// The item it is placed in or above.
    item: &'static str,
    when: When,
}

/// Random files (1 B – 120 kB, one of ~1 MB) in random nested directories; the paths.
fn random_tree(dir: &Path, rng: &mut Rng, files: u64) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for i in 0..files {
        let depth = rng.below(4);
        let mut p = dir.to_path_buf();
        for _ in 0..depth {
            p.push(format!("d{}", rng.below(4)));
        }
        p.push(format!("f{i}"));
        let len = if i == 0 {
            1_000_000 + rng.below(500_000)
        } else {
            rng.range(1, 120_000)
        };
        write_random(&p, len as usize, rng);
        out.push(p);
    }
    out
}

fn random_dir_in(files: &[PathBuf], rng: &mut Rng) -> PathBuf {
    rng.pick(files).parent().unwrap().to_path_buf()
}

fn fuzz_one(seed: u64) {
    let fs = TestFs::ext4(128);
    let inner = TestFs::ext4(24);
    let mut rng = Rng::new(seed);
    let base = fs.mount.clone();
    let root = base.join("runner");
    let outside = base.join("outside");
    let ctx = format!(
        "seed {seed}, resolver {}",
        headroom_tests::attack::resolver()
    );

    // Outside the root, outside the items inside the root, and on the inner filesystem.
    let n = rng.range(10, 25);
    let outside_files = random_tree(&outside, &mut rng, n);
    for sub in ["usr/bin", "usr/share/doc", "etc", "usr/local/bin"] {
        let n = rng.range(2, 6);
        random_tree(&root.join(sub), &mut rng, n);
    }
    let n = rng.range(5, 12);
    random_tree(&inner.mount.join("data"), &mut rng, n);

    // 2–4 items, each a random tree.
    let mut chosen: Vec<(&'static str, &'static str)> = Vec::new();
    let want = rng.range(2, 4) as usize;
    while chosen.len() < want {
        let it = *rng.pick(FUZZ_ITEMS);
        if !chosen.contains(&it) {
            chosen.push(it);
        }
    }
    let mut item_files: Vec<(&'static str, Vec<PathBuf>)> = Vec::new();
    for (name, rel) in &chosen {
        let n = rng.range(8, 30);
        item_files.push((name, random_tree(&root.join(rel), &mut rng, n)));
    }

    // Symlinks inside items: to outside (absolute, relative), to inside, dangling.
    for k in 0..rng.range(2, 8) {
        let (_, files) = rng.pick(&item_files);
        let dir = random_dir_in(files, &mut rng);
        let link = dir.join(format!("link{k}"));
        let target: PathBuf = match rng.below(4) {
            0 => rng.pick(&outside_files).clone(),
            1 => random_dir_in(&outside_files, &mut rng),
            2 => {
                let (_, other) = rng.pick(&item_files);
                rng.pick(other).clone()
            }
            _ => PathBuf::from(format!("/nonexistent/headroom/{k}")),
        };
        let target = if rng.chance(50) && target.starts_with(&base) {
            // The same target as a relative path climbing up from the link.
            let up = dir.strip_prefix(&base).unwrap().components().count();
            let mut rel = PathBuf::new();
            for _ in 0..up {
                rel.push("..");
            }
            rel.join(target.strip_prefix(&base).unwrap())
        } else {
            target
        };
        std::os::unix::fs::symlink(&target, &link).unwrap();
    }
    // Hard links across inside/outside and between items.
    let links = base.join("outside-links");
    std::fs::create_dir_all(&links).unwrap();
    for k in 0..rng.range(1, 6) {
        let (_, files) = rng.pick(&item_files);
        let in_item = rng.pick(files).clone();
        match rng.below(3) {
            0 => std::fs::hard_link(&in_item, links.join(format!("h{k}"))).unwrap(),
            1 => {
                let src = rng.pick(&outside_files).clone();
                std::fs::hard_link(&src, in_item.with_file_name(format!("h{k}"))).unwrap();
            }
            _ => {
                let (_, other) = rng.pick(&item_files);
                let dst = random_dir_in(other, &mut rng).join(format!("h{k}"));
                std::fs::hard_link(&in_item, dst).unwrap();
            }
        }
    }

    // Mounts: same-fs binds and the inner filesystem, inside items and above them.
    let mut mounts: Vec<RandomMount> = Vec::new();
    for k in 0..rng.range(1, 3) {
        let (name, files) = rng.pick(&item_files);
        let when = *rng.pick(&[
            When::BeforePlan,
            When::Measured,
            When::AfterPlan,
            When::Started,
        ]);
        let other_fs = rng.chance(40);
        let inside = rng.chance(60);
        let item_rel = chosen.iter().find(|(n, _)| n == name).unwrap().1;
        let (source, target) = if inside {
            let target = random_dir_in(files, &mut rng).join(format!("mnt{k}"));
            std::fs::create_dir_all(&target).unwrap();
            let source = if other_fs {
                inner.mount.join("data")
            } else {
                random_dir_in(&outside_files, &mut rng)
            };
            (source, target)
        } else {
            // Over the item's parent: the source holds a tree under the item's own name.
            let item_path = Path::new(item_rel);
            let target = root.join(item_path.parent().unwrap());
            if mounts.iter().any(|m| m.target == target) {
                continue;
            }
            let leaf = item_path.file_name().unwrap();
            let source = if other_fs {
                inner.mount.clone()
            } else {
                outside.join(format!("above{k}"))
            };
            let n = rng.range(3, 8);
            random_tree(&source.join(leaf), &mut rng, n);
            (source, target)
        };
        mounts.push(RandomMount {
            source,
            target,
            item: name,
            when,
        });
    }
    eprintln!("{ctx}: items {chosen:?}, mounts {mounts:#?}");
    if std::env::var_os("HEADROOM_FUZZ_DEBUG").is_some() {
        // The hard links and symlinks of the tree, for a seed that broke.
        let script = "find . -links +1 -type f -printf '%n %i %b %p\\n' | sort -k2n; \
                      find . -type l -printf '%p -> %l\\n'";
        let listing = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(&base)
            .output()
            .unwrap();
        eprintln!("{}", String::from_utf8_lossy(&listing.stdout));
    }

    // What must not change: everything on both filesystems but the planned items.
    let all_before = Snapshot::of(&base);
    let inner_before = Snapshot::of(&inner.mount);

    let guards: Mutex<Vec<MountGuard>> = Mutex::new(Vec::new());
    let hook_errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mount_when = |when: When, name: Option<&str>| {
        for m in mounts
            .iter()
            .filter(|m| m.when == when && name.is_none_or(|n| n == m.item))
        {
            // A target hidden by an earlier mount above it is not there to mount on.
            if !m.target.is_dir() {
                continue;
            }
            match try_bind(&m.source, &m.target) {
                Ok(g) => guards.lock().unwrap().push(g),
                Err(e) => hook_errors.lock().unwrap().push(e),
            }
        }
    };
    mount_when(When::BeforePlan, None);
    let measured = |e: Event<'_>| {
        if let Event::Measured { item, .. } = e {
            mount_when(When::Measured, Some(item));
        }
    };
    let plan = plan_only(
        &root,
        &chosen.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        &measured,
    );
    let planned: Vec<PathBuf> = plan
        .selected()
        .flat_map(|i| i.paths.iter().cloned())
        .collect();
    mount_when(When::AfterPlan, None);
    let available_before = fs.available();
    let started = |e: Event<'_>| {
        if let Event::Started { item, .. } = e {
            mount_when(When::Started, Some(item));
        }
    };
    let report = reclaim(&plan, &started);
    let delta = fs.available() as i64 - available_before as i64;
    // Unmount everything (newest first), then compare with everything visible again.
    let mut made = std::mem::take(&mut *guards.lock().unwrap());
    while let Some(g) = made.pop() {
        g.unmount();
    }
    let hook_errors = hook_errors.into_inner().unwrap();
    assert!(
        hook_errors.is_empty(),
        "{ctx}: mounts failed: {hook_errors:?}"
    );

    let planned_rel: Vec<PathBuf> = planned
        .iter()
        .map(|p| {
            std::fs::canonicalize(&base)
                .ok()
                .and_then(|b| p.strip_prefix(b).ok().map(Path::to_path_buf))
                .or_else(|| p.strip_prefix(&base).ok().map(Path::to_path_buf))
                .unwrap_or_else(|| panic!("{ctx}: planned path {} off the fs", p.display()))
        })
        .collect();
    all_before.without(&planned_rel).assert_same(
        &Snapshot::of(&base).without(&planned_rel),
        &format!("{ctx}: everything outside the planned items {planned_rel:?}"),
    );
    inner_before.assert_same(
        &Snapshot::of(&inner.mount),
        &format!("{ctx}: the inner filesystem"),
    );
    let freed = bytes(&report["freed_bytes"], "freed_bytes");
    assert!(
        within_1pct(freed, delta),
        "{ctx}: freed {freed} vs filesystem delta {delta}: {report:#}"
    );
}

fn random_trees_with_symlinks_hard_links_and_mounts_change_nothing_outside_the_plan() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    // HEADROOM_FUZZ_SEEDS=N runs more; HEADROOM_FUZZ_SEED=S runs one.
    let seeds: Vec<u64> = match std::env::var("HEADROOM_FUZZ_SEED") {
        Ok(one) => vec![one.parse().expect("HEADROOM_FUZZ_SEED is a number")],
        Err(_) => {
            let n = std::env::var("HEADROOM_FUZZ_SEEDS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(20u64);
            (1..=n).collect()
        }
    };
    let mut failed = Vec::new();
    for seed in seeds {
        if let Err(payload) = std::panic::catch_unwind(|| fuzz_one(seed)) {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            let first: String = message
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(220)
                .collect();
            failed.push(first);
        }
    }
    assert!(
        failed.is_empty(),
        "{} seed(s) broke (rerun one with HEADROOM_FUZZ_SEED=S):\n{}",
        failed.len(),
        failed.join("\n")
    );
}
