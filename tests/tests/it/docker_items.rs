//! The Docker items of the catalog, measured against the real engine.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use headroom_tests::{sh, write_file, xtask};

headroom_tests::tests! {
    unused_images_are_measured_from_the_engine needs Docker;
}

fn unused_images_are_measured_from_the_engine() {
    // An image no container uses: a 3 MB file imported from a tar (nothing is pulled).
    let tmp = tempfile::tempdir().unwrap();
    write_file(&tmp.path().join("rootfs/blob.bin"), 3_000_000);
    let tar = tmp.path().join("rootfs.tar");
    sh(
        "tar",
        &[
            "-C",
            tmp.path().join("rootfs").to_str().unwrap(),
            "-cf",
            tar.to_str().unwrap(),
            ".",
        ],
    );
    let tag = format!("headroom-test/unused:{}", std::process::id());
    sh("docker", &["import", tar.to_str().unwrap(), &tag]);
    struct Rmi(String);
    impl Drop for Rmi {
        fn drop(&mut self) {
            let _ = std::process::Command::new("docker")
                .args(["rmi", "-f", &self.0])
                .output();
        }
    }
    let _cleanup = Rmi(tag.clone());

    let data_root = sh("docker", &["info", "--format", "{{.DockerRootDir}}"]);
    let run = xtask(
        &[
            "free",
            "--only",
            "docker-images",
            "--path",
            data_root.trim(),
            "--dry-run",
            "--json",
        ],
        &[],
    );
    assert!(run.success(), "{run:?}");
    let report = run.json();
    let item = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "docker-images")
        .unwrap();
    assert_eq!(item["action"], "planned", "{item:#}");
    assert!(
        item["size_bytes"].as_u64().unwrap() >= 3_000_000,
        "{item:#}"
    );
    // A dry run removes nothing.
    sh("docker", &["image", "inspect", &tag]);
}
