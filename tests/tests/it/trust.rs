//! Trust under interruption and change (issue 29): the deleter attacked while it works. A
//! directory renamed out of an item mid-walk, with files written into it afterwards, must
//! keep every one of them, and the report must say the item is `partial` and name it. The
//! race is driven by the library's progress events (`Removed`, fired on the walking thread
//! after a directory's files are unlinked and before its subdirectories are entered), never
//! by sleeps.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use headroom_disk::{Event, NoProgress, ReclaimOptions};
use headroom_tests::attack::{
    Rng, Snapshot, TestFs, action, bind, bytes, in_private_mount_ns,
    in_private_mount_ns_each_resolver, item, plan_only, plant_precious, reason, report_json,
    sync_fs, within_1pct, write_random,
};

headroom_tests::tests! {
    a_directory_renamed_out_of_an_item_mid_walk_keeps_what_is_written_into_it needs Root;
    an_ancestor_renamed_out_mid_walk_stops_the_walk_below_it needs Root;
    bytes_held_by_a_bind_mount_or_a_loop_device_are_named_not_claimed
        needs Root, Program("losetup");
}

/// The item `dotnet` under `root`: only `A/` at its top (so the first `Removed` event comes
/// from inside `A`), `A` holding files and `B/` (files and `C/` with files).
fn plant_item(root: &Path, rng: &mut Rng) {
    let a = root.join("usr/share/dotnet/A");
    for i in 0..20 {
        write_random(&a.join(format!("a{i}.dll")), 8_000, rng);
        write_random(&a.join(format!("B/b{i}.dll")), 8_000, rng);
        write_random(&a.join(format!("B/C/c{i}.dll")), 8_000, rng);
    }
}

/// Run the reclaim of `dotnet` with `hook` called (once) on the first `Removed` event.
fn reclaim_with_hook(root: &Path, hook: &(dyn Fn() + Sync)) -> serde_json::Value {
    let plan = plan_only(root, &["dotnet"], &NoProgress);
    sync_fs(root);
    let fired = AtomicBool::new(false);
    let progress = |e: Event<'_>| {
        if let Event::Removed { item, .. } = e
            && item == "dotnet"
            && !fired.swap(true, Ordering::SeqCst)
        {
            hook();
        }
    };
    let report = report_json(&headroom_disk::reclaim(
        &plan,
        ReclaimOptions::default(),
        &progress,
    ));
    assert!(fired.load(Ordering::SeqCst), "no Removed event for dotnet");
    report
}

fn a_directory_renamed_out_of_an_item_mid_walk_keeps_what_is_written_into_it() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    let fs = TestFs::ext4(64);
    let precious_dir = fs.mount.join("precious");
    let precious = plant_precious(&precious_dir, 29);
    let root = fs.mount.join("runner");
    let mut rng = Rng::new(29);
    plant_item(&root, &mut rng);
    let outside = fs.mount.join("kept");
    std::fs::create_dir(&outside).unwrap();

    // Once the deleter has emptied A's files (it is inside A), a neighbour step moves A out
    // of the item to keep it, and writes 221 files into it, B and C included.
    let after_move: Mutex<Option<Snapshot>> = Mutex::new(None);
    let hook = || {
        let moved = outside.join("A");
        std::fs::rename(root.join("usr/share/dotnet/A"), &moved).unwrap();
        let mut rng = Rng::new(221);
        for i in 0..221 {
            let dir = ["", "B", "B/C"][i % 3];
            write_random(
                &moved.join(dir).join(format!("new{i}.bin")),
                4_000,
                &mut rng,
            );
        }
        *after_move.lock().unwrap() = Some(Snapshot::of(&outside));
    };
    let report = reclaim_with_hook(&root, &hook);

    let kept = after_move.lock().unwrap().take().unwrap();
    assert!(kept.files() >= 221, "{} files written", kept.files());
    kept.assert_same(
        &Snapshot::of(&outside),
        "the directory moved out of the item mid-walk",
    );
    precious.assert_same(&Snapshot::of(&precious_dir), "precious data");
    let dotnet = item(&report, "dotnet");
    assert_eq!(action(dotnet), "partial", "{dotnet:#}");
    let left: Vec<&str> = dotnet["left"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    let b = root.join("usr/share/dotnet/A/B");
    assert_eq!(left, [b.to_str().unwrap()], "{dotnet:#}");
    assert!(reason(dotnet).contains("left the item"), "{dotnet:#}");
}

fn an_ancestor_renamed_out_mid_walk_stops_the_walk_below_it() {
    if !in_private_mount_ns_each_resolver() {
        return;
    }
    // The whole item is renamed away once the deleter is inside it: nothing below the
    // renamed tree is deleted after that, whatever it holds, and what was written there
    // survives.
    let fs = TestFs::ext4(64);
    let root = fs.mount.join("runner");
    let mut rng = Rng::new(30);
    plant_item(&root, &mut rng);
    let away = fs.mount.join("away");
    let after_move: Mutex<Option<Snapshot>> = Mutex::new(None);
    let hook = || {
        std::fs::rename(root.join("usr/share/dotnet"), &away).unwrap();
        let mut rng = Rng::new(31);
        for i in 0..30 {
            write_random(&away.join(format!("A/B/C/late{i}.bin")), 2_000, &mut rng);
        }
        *after_move.lock().unwrap() = Some(Snapshot::of(&away));
    };
    let report = reclaim_with_hook(&root, &hook);
    let kept = after_move.lock().unwrap().take().unwrap();
    kept.assert_same(&Snapshot::of(&away), "the item renamed away mid-walk");
    // B's planned files were listed only after the rename: they are kept too.
    assert!(
        kept.files() >= 30 + 40,
        "B's and C's files survive: {}",
        kept.files()
    );
    let dotnet = item(&report, "dotnet");
    assert_eq!(action(dotnet), "partial", "{dotnet:#}");
}

/// A loop device attached to a file, detached on drop.
struct LoopDev(String);

impl Drop for LoopDev {
    fn drop(&mut self) {
        let _ = std::process::Command::new("losetup")
            .args(["-d", &self.0])
            .status();
    }
}

fn bytes_held_by_a_bind_mount_or_a_loop_device_are_named_not_claimed() {
    if !in_private_mount_ns() {
        return;
    }
    let fs = TestFs::ext4(96);
    let precious_dir = fs.mount.join("precious");
    let precious = plant_precious(&precious_dir, 5);
    let root = fs.mount.join("runner");
    let dotnet = root.join("usr/share/dotnet");
    let mut rng = Rng::new(5);
    for i in 0..10 {
        write_random(&dotnet.join(format!("sdk/f{i}.dll")), 500_000, &mut rng);
    }
    // 20 MB bind-mounted as a file elsewhere on the same filesystem, 20 MB backing a loop
    // device: deleting them returns nothing until the mount and the device let go.
    const HELD: u64 = 20_000_000;
    write_random(&dotnet.join("view.bin"), HELD as usize, &mut rng);
    write_random(&dotnet.join("disk.img"), HELD as usize, &mut rng);
    let view = fs.mount.join("view-of-it");
    std::fs::write(&view, b"").unwrap();
    let bound = bind(&dotnet.join("view.bin"), &view);
    let out = std::process::Command::new("losetup")
        .args(["--find", "--show"])
        .arg(dotnet.join("disk.img"))
        .output()
        .unwrap();
    assert!(out.status.success(), "losetup: {out:?}");
    let device = LoopDev(String::from_utf8_lossy(&out.stdout).trim().to_string());

    let plan = plan_only(&root, &["dotnet"], &NoProgress);
    sync_fs(&root);
    let report = report_json(&headroom_disk::reclaim(
        &plan,
        ReclaimOptions::default(),
        &NoProgress,
    ));
    let freed = bytes(&report["freed_bytes"], "freed_bytes");
    let delta = report["filesystem_delta_bytes"].as_i64().unwrap();
    drop(device);
    bound.unmount();

    precious.assert_same(&Snapshot::of(&precious_dir), "precious data");
    assert!(
        within_1pct(freed, delta),
        "freed {freed} vs filesystem delta {delta}, {HELD} held by a mount and {HELD} by a \
         loop device: {report:#}"
    );
    let accounting = &report["accounting"];
    assert!(
        bytes(&accounting["held_open_bytes"], "held_open_bytes") >= 2 * HELD,
        "{accounting:#}"
    );
    let why = accounting["explanation"].as_str().unwrap_or("");
    assert!(
        why.contains("is bind-mounted at") || why.contains("backs the loop device"),
        "the holder is named: {why}"
    );
    assert!(!why.contains("/proc"), "not blamed on /proc: {why}");
    let item = item(&report, "dotnet");
    assert!(
        bytes(&item["held_open_bytes"], "dotnet.held_open_bytes") >= 2 * HELD,
        "{item:#}"
    );
}
