//! A build matrix (`[[variants]]` in image.toml): two variants built and pushed one after the
//! other on the real engine, to the authenticated registry, with one report and one step
//! summary; a bad or unknown variant is refused before anything runs.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use headroom_tests::registry::{Registry, base_image};
use headroom_tests::{check_report, xtask};

headroom_tests::tests! {
    a_two_variant_matrix_builds_and_pushes_both_with_one_report
        needs Docker, Tool("check-jsonschema");
    bad_or_unknown_variants_are_refused_before_anything_runs needs Docker;
}

fn config(dir: &std::path::Path, image: &str, variants: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("Dockerfile"),
        format!(
            "FROM {}\nARG FLAVOUR=none\nRUN echo \"$FLAVOUR\" > /flavour\n",
            base_image()
        ),
    )
    .unwrap();
    let path = dir.join("image.toml");
    std::fs::write(
        &path,
        format!("image = \"{image}\"\nbackend = \"engine\"\n\n{variants}"),
    )
    .unwrap();
    path
}

const TWO: &str = "\
[[variants]]
name = \"cuda12.1\"
build_args = { FLAVOUR = \"cuda\" }
tags = [\"cuda-latest\"]

[[variants]]
name = \"cpu\"
build_args = { FLAVOUR = \"cpu\" }
";

fn a_two_variant_matrix_builds_and_pushes_both_with_one_report() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let repo = format!("{}/headroom/matrix", registry.host());
    let path = config(tmp.path(), &repo, TWO);
    let report = tmp.path().join("report.json");
    let outputs = tmp.path().join("outputs");
    let summary = tmp.path().join("summary.md");
    let run = xtask(
        &[
            "image",
            "--config",
            path.to_str().unwrap(),
            "--push",
            "--skip",
            "free",
            "--report",
            report.to_str().unwrap(),
        ],
        &[
            ("REGISTRY_USERNAME", &registry.user),
            ("REGISTRY_PASSWORD", &registry.password),
            ("GITHUB_OUTPUT", outputs.to_str().unwrap()),
            ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ],
    );
    assert!(run.success(), "{run:?}");
    assert!(
        run.stderr.contains("image: variant 1/2: cuda12.1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("image: variant 2/2: cpu"),
        "{}",
        run.stderr
    );
    let r = check_report(&report);
    let names: Vec<&str> = r.variants.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["cuda12.1", "cpu"]);
    for v in &r.variants {
        assert!(v.passed, "{v:?}");
        // Every computed tag ends with the variant's name; the variant's own tags as written.
        let tags: Vec<&str> = v
            .references
            .iter()
            .map(|r| r.rsplit_once(':').unwrap().1)
            .collect();
        assert!(
            tags.iter().any(|t| t.ends_with(&format!("-{}", v.name))),
            "{tags:?}"
        );
        if v.name == "cuda12.1" {
            assert!(tags.contains(&"cuda-latest"), "{tags:?}");
        }
        // The registry serves each tag with the variant's digest, and the variant's report
        // is beside the matrix's.
        let digest = v.digest.clone().unwrap();
        for tag in &tags {
            assert_eq!(
                registry.manifest_digest("headroom/matrix", tag).as_deref(),
                Some(digest.as_str()),
                "{tag}"
            );
        }
        let own = check_report(&v.report);
        assert_eq!(own.image.digest.as_deref(), Some(digest.as_str()));
        assert!(v.report.ends_with(format!("report.{}.json", v.name)));
    }
    assert_ne!(r.variants[0].digest, r.variants[1].digest);
    // The build args reached each build.
    for (v, want) in [(&r.variants[0], "cuda"), (&r.variants[1], "cpu")] {
        let reference = &v.references[0];
        let out = headroom_tests::sh(
            "docker",
            &["run", "--rm", reference.as_str(), "cat", "/flavour"],
        );
        assert_eq!(out.trim(), want);
    }
    // One set of outputs and one step summary for the whole matrix.
    let outputs = std::fs::read_to_string(&outputs).unwrap();
    assert!(outputs.contains("digest-cuda12.1=sha256:"), "{outputs}");
    assert!(outputs.contains("digest-cpu=sha256:"), "{outputs}");
    assert!(outputs.contains("variants=cuda12.1,cpu"), "{outputs}");
    assert_eq!(outputs.matches("pushed=").count(), 1, "{outputs}");
    let md = std::fs::read_to_string(&summary).unwrap();
    assert_eq!(md.matches("### headroom image").count(), 1, "{md}");
    assert!(
        md.contains("| cuda12.1 | passed |") && md.contains("| cpu | passed |"),
        "{md}"
    );
}

fn bad_or_unknown_variants_are_refused_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let path = config(tmp.path(), "ns/app", TWO);
    let run = xtask(
        &[
            "image",
            "--config",
            path.to_str().unwrap(),
            "--variant",
            "gpu",
        ],
        &[],
    );
    assert!(!run.success());
    assert!(
        run.stderr.contains("--variant gpu") && run.stderr.contains("cuda12.1, cpu"),
        "{}",
        run.stderr
    );
    for bad in [
        "[[variants]]\nname = \"CUDA\"\n",
        "[[variants]]\nname = \"a\"\n[[variants]]\nname = \"a\"\n",
        "[[variants]]\nname = \"a\"\nbuild_arg = {}\n",
    ] {
        let path = config(tmp.path(), "ns/app", bad);
        let run = xtask(&["image", "--config", path.to_str().unwrap()], &[]);
        assert!(!run.success(), "{bad}");
        assert!(run.stderr.contains("image.toml"), "{bad}: {}", run.stderr);
        assert!(
            !run.stderr.contains("image: lint"),
            "something ran: {}",
            run.stderr
        );
    }
}
