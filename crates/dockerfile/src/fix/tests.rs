use std::cell::Cell;

use super::*;

thread_local! {
    /// Rewrites that did not read back as intended, in this thread (see [`fix`]).
    pub(super) static REJECTED: Cell<usize> = const { Cell::new(0) };
}

fn fixed_unsafe(src: &str) -> Fixed {
    let options = FixOptions {
        unsafe_fixes: true,
        ..FixOptions::default()
    };
    fix(src, &options).expect("parses")
}

fn ids(f: &Fixed) -> Vec<&'static str> {
    f.changes.iter().map(|c| c.id.as_str()).collect()
}

/// The output parses, a second fix changes nothing, and an unchanged text is the input.
#[track_caller]
fn sound(src: &str, options: &FixOptions) -> Fixed {
    let f = fix(src, options).expect("parses");
    crate::parse(&f.text).unwrap_or_else(|e| panic!("output does not parse: {e}\n{}", f.text));
    let again = fix(&f.text, options).expect("parses");
    assert_eq!(
        again.text, f.text,
        "not idempotent; first:\n{}\nsecond:\n{}",
        f.text, again.text
    );
    assert!(!again.changed(), "{:?}", again.changes);
    if !f.changed() {
        assert_eq!(f.text, src);
        assert!(f.diff.is_empty());
    }
    f
}

fn naive() -> &'static str {
    include_str!("../../../../docker/examples/Dockerfile.naive")
}

#[test]
fn the_naive_example_ends_with_at_most_a_third_of_its_run_layers() {
    let f = sound(naive(), &FixOptions::default());
    assert!(f.before.final_stage.run >= 20, "{:?}", f.before);
    assert!(
        f.after.final_stage.run * 3 <= f.before.final_stage.run,
        "{:?} -> {:?}\n{}",
        f.before,
        f.after,
        f.text
    );
    assert!(f.after.file.layers < f.before.file.layers);
    let t = &f.text;
    // apt-get update is in the same RUN as the installs, and the lists go there too.
    let apt = t
        .split("\nRUN ")
        .find(|r| r.starts_with("apt-get update"))
        .expect("a RUN that starts with apt-get update");
    for part in [
        "apt-get install -y ca-certificates",
        "&& apt-get clean",
        "&& rm -rf /var/lib/apt/lists/*",
    ] {
        assert!(apt.contains(part), "{part} in\n{apt}");
    }
    // Every pip install has --no-cache-dir; the cleanups of later layers are gone.
    assert_eq!(t.matches("pip install --no-cache-dir").count(), 8, "{t}");
    assert!(!t.contains("RUN apt-get clean") && !t.contains("RUN rm -rf /root/.cache/pip"));
    // What does not belong to any maker stays: /tmp/* of nothing in particular.
    assert!(t.contains("RUN rm -rf /tmp/*"));
    // Only safe fixes.
    assert!(f.changes.iter().all(|c| c.safety == Safety::Safe));
    assert!(
        f.diff
            .starts_with("--- a/Dockerfile\n+++ b/Dockerfile\n@@ ")
    );
}

#[test]
fn nothing_to_fix_comes_back_byte_for_byte() {
    for src in [
        "FROM debian\nRUN apt-get update && apt-get install -y --no-install-recommends x \\\n    && rm -rf /var/lib/apt/lists/*\n",
        "FROM a\r\n# c\r\nRUN echo hi\r\nCOPY . /x\r\nRUN echo there",
        "\u{feff}FROM a\n\n\nRUN  pip install --no-cache-dir x  \n",
        "FROM a\nRUN [\"a\"]\nRUN [\"b\"]\n",
    ] {
        let f = sound(src, &FixOptions::default());
        assert!(!f.changed(), "{src:?}: {:?}", f.changes);
        assert_eq!(f.text, src);
        assert_eq!(f.before, f.after);
    }
}

#[test]
fn consecutive_runs_are_joined_one_command_group_per_line_comments_above() {
    let src = "FROM a\n# first\nRUN a \\\n  --x\n\n# second\n# third\nRUN b\n  # indented\nRUN c  \nUSER u\n";
    let f = sound(src, &FixOptions::default());
    assert_eq!(
        f.text,
        "FROM a\n# first\n# second\n# third\n  # indented\nRUN a \\\n  --x \\\n    && b \\\n    && c\nUSER u\n"
    );
    assert_eq!(ids(&f), ["merge-runs"]);
    let c = &f.changes[0];
    assert_eq!((c.line, c.end_line), (3, 10));
    assert_eq!(c.original, "RUN a \\\n  --x\nRUN b\nRUN c  ");
    assert_eq!((f.before.file.run, f.after.file.run), (3, 1));
}

#[test]
fn the_files_escape_character_and_line_endings_are_kept() {
    let f = sound(
        "# escape=`\r\nFROM a\r\nRUN echo a\\b `\r\n  c\r\nRUN d\r\n",
        &FixOptions::default(),
    );
    assert_eq!(
        f.text,
        "# escape=`\r\nFROM a\r\nRUN echo a\\b `\r\n  c `\r\n    && d\r\n"
    );
}

#[test]
fn scripts_that_would_reach_the_next_command_are_parenthesised() {
    let f = sound(
        "FROM a\nRUN cd /src\nRUN a || b\nRUN c; d\nRUN make\n",
        &FixOptions::default(),
    );
    assert_eq!(
        f.text,
        "FROM a\nRUN ( cd /src ) \\\n    && ( a || b ) \\\n    && ( c; d ) \\\n    && make\n"
    );
    // The first script keeps `||` (`a || b && c` is `(a || b) && c`); the last keeps its
    // `cd` (nothing follows it).
    let f = sound(
        "FROM a\nRUN a || b\nRUN x && cd /y\n",
        &FixOptions::default(),
    );
    assert_eq!(f.text, "FROM a\nRUN a || b \\\n    && x && cd /y\n");
    let f = sound(
        "FROM a\nRUN exit 0\nRUN export A=1\nRUN A=1\nRUN set -e\nRUN z\n",
        &FixOptions::default(),
    );
    // `set -e` may only come last: a non-last member of `&&` ignores -e.
    assert_eq!(
        f.text,
        "FROM a\nRUN ( exit 0 ) \\\n    && ( export A=1 ) \\\n    && ( A=1 ) \\\n    && set -e\nRUN z\n"
    );
}

#[test]
fn runs_that_cannot_be_joined_are_left_alone() {
    for src in [
        // exec form, heredoc, different flags
        "FROM a\nRUN [\"a\"]\nRUN b\n",
        "FROM a\nRUN <<EOF\necho a\nEOF\nRUN b\n",
        "FROM a\nRUN --network=none a\nRUN b\n",
        "FROM a\nRUN --mount=type=cache,target=/x a\nRUN --mount=type=cache,target=/y b\n",
        // mounts that are new for each RUN: joined, the second would see the first's files
        "FROM a\nRUN --mount=type=tmpfs,target=/t a\nRUN --mount=type=tmpfs,target=/t b\n",
        "FROM a\nRUN --mount=target=/s,rw a\nRUN --mount=target=/s,rw b\n",
        // another shell in the stage, or in the stage it is built on; Windows
        "FROM a\nSHELL [\"/bin/bash\", \"-c\"]\nRUN a\nRUN b\n",
        "FROM a AS b\nSHELL [\"/bin/bash\", \"-c\"]\nFROM b\nRUN a\nRUN b\n",
        "FROM mcr.microsoft.com/windows/servercore:ltsc2022\nRUN a\nRUN b\n",
        // ONBUILD triggers
        "FROM a\nONBUILD RUN a\nONBUILD RUN b\n",
        // any instruction between
        "FROM a\nRUN a\nENV X=1\nRUN b\n",
        "FROM a\nRUN a\nWORKDIR /w\nRUN b\n",
        "FROM a\nRUN a\nUSER u\nRUN b\n",
        "FROM a\nRUN a\nARG X\nRUN b\n",
        "FROM a\nRUN a\nCOPY x /x\nRUN b\n",
        "FROM a\nRUN a\nFROM b\nRUN b\n",
        // a comment would swallow what follows; a background job would outlive its RUN
        "FROM a\nRUN a # note\nRUN b\n",
        "FROM a\nRUN sleep 9 &\nRUN b\n",
        // scripts this fixer does not read
        "FROM a\nRUN case $x in a) b;; esac c\nRUN c\n",
        "FROM a\nRUN echo 'open\nRUN c\n",
    ] {
        let f = sound(src, &FixOptions::default());
        assert!(
            !f.changes.iter().any(|c| c.id == FixId::MergeRuns),
            "{src:?}\n{}",
            f.text
        );
    }
    // Same flags: joined.
    let f = sound(
        "FROM a\nRUN --mount=type=secret,id=ca a\nRUN --mount=type=secret,id=ca b\n",
        &FixOptions::default(),
    );
    assert_eq!(
        f.text,
        "FROM a\nRUN --mount=type=secret,id=ca a \\\n    && b\n"
    );
    // Before a SHELL in the same stage: still the default shell.
    let f = sound(
        "FROM a\nRUN a\nRUN b\nSHELL [\"/bin/bash\", \"-c\"]\nRUN c\nRUN d\n",
        &FixOptions::default(),
    );
    assert_eq!(f.after.file.run, 3);
}

#[test]
fn apt_update_alone_is_folded_into_the_install_and_the_lists_removed() {
    let f = sound(
        "FROM debian\nRUN apt-get update\nRUN apt-get install -y x\n",
        &FixOptions::default(),
    );
    assert_eq!(
        f.text,
        "FROM debian\nRUN apt-get update \\\n    && apt-get install -y x \\\n    && rm -rf /var/lib/apt/lists/*\n"
    );
    assert_eq!(ids(&f), ["merge-runs", "apt-lists-cleanup"]);
    assert!(f.changes[0].description.contains("apt-get update"));
}

#[test]
fn apt_lists_are_removed_only_where_no_later_command_needs_them() {
    let opts = FixOptions::default();
    let lists = |src: &str| {
        sound(src, &opts)
            .changes
            .iter()
            .filter(|c| c.id == FixId::AptListsCleanup)
            .map(|c| c.line)
            .collect::<Vec<_>>()
    };
    // A later RUN installs without its own update: only that last one removes them.
    assert_eq!(
        lists(
            "FROM a\nRUN apt-get update && apt-get install -y x\nENV A=1\nRUN apt-get install -y y\n"
        ),
        [4]
    );
    // A later RUN updates first: both may.
    assert_eq!(
        lists(
            "FROM a\nRUN apt-get update && apt-get install -y x\nENV A=1\nRUN apt-get update && apt-get install -y y\n"
        ),
        [2, 4]
    );
    // Already removed, or cached in a mount.
    assert!(
        lists(
            "FROM a\nRUN apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*\n"
        )
        .is_empty()
    );
    assert!(lists("FROM a\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y x\n").is_empty());
    // A stage built on this one installs without updating.
    assert!(
        lists("FROM a AS base\nRUN apt-get update\nFROM base\nRUN apt-get install -y x\n") == [4]
    );
    assert!(
        lists(
            "FROM a AS base\nRUN apt-get update && apt-get install -y x\nFROM base AS b2\nFROM b2\nRUN apt-get install -y y\n"
        ) == [5]
    );
    // Not under another shell.
    assert!(
        lists(
            "FROM a\nSHELL [\"/bin/bash\", \"-c\"]\nRUN apt-get update && apt-get install -y x\n"
        )
        .is_empty()
    );
    // Scripts that end in an `||` are parenthesised first.
    let f = sound(
        "FROM a\nRUN apt-get update && apt-get install -y x || true\n",
        &opts,
    );
    assert_eq!(
        f.text,
        "FROM a\nRUN apt-get update && apt-get install -y x || true \\\n    && rm -rf /var/lib/apt/lists/*\n"
    );
    let f = sound("FROM a\nRUN cd /x && apt-get install -y ./p.deb\n", &opts);
    assert_eq!(
        f.text,
        "FROM a\nRUN ( cd /x && apt-get install -y ./p.deb ) \\\n    && rm -rf /var/lib/apt/lists/*\n"
    );
    // An arithmetic expansion runs no program (`N/2` is no path to a script); a command
    // substitution inside one may read the lists, so they go after it.
    assert_eq!(
        lists("FROM a\nRUN apt-get update && apt-get install -y x && echo $((N/2))\n"),
        [2]
    );
    assert_eq!(
        lists(
            "FROM a\nRUN apt-get update && apt-get install -y x\nRUN echo $(( $(apt-cache search y | wc -l) ))\n"
        ),
        [3]
    );
}

#[test]
fn pip_gets_no_cache_dir_in_every_spelling() {
    let opts = FixOptions::default();
    for (src, want) in [
        ("pip install x", "pip install --no-cache-dir x"),
        (
            "pip3 install -r r.txt",
            "pip3 install --no-cache-dir -r r.txt",
        ),
        (
            "/opt/venv/bin/pip --quiet install x",
            "/opt/venv/bin/pip --quiet install --no-cache-dir x",
        ),
        (
            "python3 -m pip install -U pip",
            "python3 -m pip install --no-cache-dir -U pip",
        ),
        (
            "sudo -H pip install x",
            "sudo -H pip install --no-cache-dir x",
        ),
        (
            "(cd /x && pip install .)",
            "(cd /x && pip install --no-cache-dir .)",
        ),
        (
            "pip install \"a<2\" && pip3.11 install b",
            "pip install --no-cache-dir \"a<2\" && pip3.11 install --no-cache-dir b",
        ),
    ] {
        let f = sound(&format!("FROM a\nRUN {src}\n"), &opts);
        assert_eq!(f.text, format!("FROM a\nRUN {want}\n"), "{src}");
        assert!(ids(&f).iter().all(|i| *i == "pip-no-cache-dir"));
    }
    for src in [
        "FROM a\nRUN pip install --no-cache-dir x\n",
        "FROM a\nRUN PIP_NO_CACHE_DIR=1 pip install x\n",
        "FROM a\nENV PIP_NO_CACHE_DIR=1\nRUN pip install x\n",
        "ARG PIP_NO_CACHE_DIR=1\nFROM a\nRUN pip install x\n",
        "FROM a\nRUN --mount=type=cache,target=/root/.cache/pip pip install x\n",
        "FROM a\nRUN pip install --cache-dir=/c x\n",
        "FROM a\nRUN pip download x && pipx install y\n",
    ] {
        let f = sound(src, &opts);
        assert!(!f.changed(), "{src}: {}", f.text);
    }
}

#[test]
fn apk_add_gets_no_cache() {
    let f = sound("FROM alpine\nRUN apk add curl\n", &FixOptions::default());
    assert_eq!(f.text, "FROM alpine\nRUN apk add --no-cache curl\n");
    assert_eq!(ids(&f), ["apk-no-cache"]);
    for src in [
        "FROM alpine\nRUN apk add --no-cache curl\n",
        "FROM alpine\nRUN apk add --cache-dir /c curl\n",
        "FROM alpine\nRUN --mount=type=cache,target=/var/cache/apk apk add curl\n",
    ] {
        assert!(!sound(src, &FixOptions::default()).changed(), "{src}");
    }
}

#[test]
fn no_install_recommends_only_when_unsafe_fixes_are_asked_for() {
    let src = "FROM a\nRUN apt-get update && apt-get install -y x && rm -rf /var/lib/apt/lists/*\n";
    assert!(!sound(src, &FixOptions::default()).changed());
    let options = FixOptions {
        unsafe_fixes: true,
        ..FixOptions::default()
    };
    let f = sound(src, &options);
    assert_eq!(
        f.text,
        "FROM a\nRUN apt-get update && apt-get install --no-install-recommends -y x && rm -rf /var/lib/apt/lists/*\n"
    );
    assert_eq!(f.changes.len(), 1);
    assert_eq!(f.changes[0].safety, Safety::Unsafe);
    assert_eq!(f.changes[0].id, FixId::AptNoInstallRecommends);
    // Already configured another way.
    let src2 = "FROM a\nRUN echo 'APT::Install-Recommends \"0\";' > /etc/apt/apt.conf.d/r\nRUN apt-get install -y x\n";
    let f = fixed_unsafe(src2);
    assert!(!f.text.contains("--no-install-recommends"), "{}", f.text);
}

#[test]
fn cleanups_move_into_the_run_that_made_the_data() {
    let opts = FixOptions::default();
    let f = sound(
        "FROM a\nRUN apt-get update && apt-get install -y x\nWORKDIR /w\nRUN mkdir -p out\nENV A=1\n# tidy up\nRUN apt-get clean && rm -rf /var/lib/apt/lists/*\nCMD [\"x\"]\n",
        &opts,
    );
    assert_eq!(
        f.text,
        "FROM a\nRUN apt-get update && apt-get install -y x \\\n    && apt-get clean \\\n    && rm -rf /var/lib/apt/lists/*\nWORKDIR /w\nRUN mkdir -p out\nENV A=1\n# tidy up\nCMD [\"x\"]\n"
    );
    // What runs between may run apt where it cannot be seen: the lists stay until the
    // cleanup as written.
    for between in [
        "make",
        "./configure",
        "bash -c x",
        "xargs -a f echo",
        "echo $(./x.sh)",
    ] {
        let src = format!(
            "FROM a\nRUN apt-get update && apt-get install -y x\nRUN {between}\nRUN rm -rf /var/lib/apt/lists/*\n"
        );
        let f = sound(&src, &opts);
        assert!(
            !ids(&f).contains(&"move-cleanup") && !ids(&f).contains(&"apt-lists-cleanup"),
            "{between}: {}",
            f.text
        );
    }
    assert_eq!(ids(&f), ["move-cleanup", "move-cleanup"]);
    assert_eq!((f.changes[0].line, f.changes[0].end_line), (2, 7));
    assert_eq!((f.before.file.run, f.after.file.run), (3, 2));

    // Part of a chain: the rest stays, formatting around it kept.
    let f = sound(
        "FROM a\nRUN pip install x\nENV B=1\nRUN make \\\n    && rm -rf /root/.cache/pip \\\n    && make install\n",
        &opts,
    );
    assert_eq!(
        f.text,
        "FROM a\nRUN pip install --no-cache-dir x \\\n    && rm -rf /root/.cache/pip\nENV B=1\nRUN make \\\n    && make install\n"
    );
    let f = sound(
        "FROM a\nRUN pip install x\nENV B=1\nRUN make \\\n    && rm -rf ~/.cache/pip\n",
        &opts,
    );
    assert_eq!(
        f.text,
        "FROM a\nRUN pip install --no-cache-dir x \\\n    && rm -rf ~/.cache/pip\nENV B=1\nRUN make\n"
    );

    // Operands made by different RUNs: one rm each.
    let f = sound(
        "FROM a\nRUN curl -o /tmp/a.tgz u && tar -xzf /tmp/a.tgz\nENV X=1\nRUN pip install y\nENV Y=1\nRUN rm -rf /tmp/a.tgz /root/.cache/pip\n",
        &opts,
    );
    assert_eq!(
        f.text,
        "FROM a\nRUN curl -o /tmp/a.tgz u && tar -xzf /tmp/a.tgz \\\n    && rm -rf /tmp/a.tgz\nENV X=1\nRUN pip install --no-cache-dir y \\\n    && rm -rf /root/.cache/pip\nENV Y=1\n"
    );
}

#[test]
fn cleanups_stay_when_moving_them_could_change_anything() {
    let opts = FixOptions::default();
    for src in [
        // another user; another shell; a volume between
        "FROM a\nRUN apt-get update && apt-get install -y x\nUSER u\nRUN rm -rf /var/lib/apt/lists/*\n",
        "FROM a\nRUN pip install x\nSHELL [\"/bin/bash\", \"-c\"]\nRUN rm -rf /root/.cache/pip\n",
        "FROM a\nRUN apt-get update && apt-get install -y x\nVOLUME /data\nRUN apt-get clean\n",
        // something between could use or move the cache
        "FROM a\nRUN apt-get update && apt-get install -y x\nCOPY sources.list /etc/apt/\nRUN rm -rf /var/lib/apt/lists/*\n",
        "FROM a\nRUN pip install x\nENV HOME=/h\nRUN rm -rf ~/.cache/pip\n",
        "FROM a\nRUN curl -o /tmp/a.tgz u\nENV X=1\nRUN tar -xzf /tmp/*.tgz\nENV Y=1\nRUN rm -f /tmp/a.tgz\n",
        "FROM a\nRUN curl -o /tmp/a.tgz u\nWORKDIR /tmp\nRUN rm -f /tmp/a.tgz\n",
        // no maker in the stage: the data came from the base image
        "FROM a\nRUN echo hi\nENV X=1\nRUN rm -rf /var/lib/apt/lists/*\n",
        "FROM a AS b\nRUN pip install x\nFROM b\nRUN rm -rf /root/.cache/pip\n",
        // unknown paths, globs in /tmp, quoted operands, a mount on the cleanup
        "FROM a\nRUN apt-get update && apt-get install -y x\nENV X=1\nRUN rm -rf /var/lib/apt/lists/* /opt/x\n",
        "FROM a\nRUN curl -o /tmp/a.tgz u\nENV X=1\nRUN rm -rf /tmp/*\n",
        "FROM a\nRUN pip install x\nENV X=1\nRUN rm -rf \"~/.cache/pip\"\n",
        "FROM a\nRUN apt-get update && apt-get install -y x\nENV X=1\nRUN --mount=type=cache,target=/var/lib/apt/lists rm -rf /var/lib/apt/lists/*\n",
        // the maker keeps its cache in a mount
        "FROM a\nRUN --mount=type=cache,target=/root/.cache pip install x\nENV X=1\nRUN rm -rf /root/.cache/pip\n",
        // not a plain chain
        "FROM a\nRUN pip install x\nENV X=1\nRUN make; rm -rf /root/.cache/pip\n",
        "FROM a\nRUN pip install x\nENV X=1\nRUN make || rm -rf /root/.cache/pip\n",
        // the maker cannot take more commands
        "FROM a\nRUN pip install x # note\nENV X=1\nRUN rm -rf /root/.cache/pip\n",
    ] {
        let f = sound(src, &opts);
        assert!(
            !f.changes.iter().any(|c| c.id == FixId::MoveCleanup),
            "{src}\n{}",
            f.text
        );
    }
}

#[test]
fn the_diff_names_the_file_and_shows_context() {
    let options = FixOptions {
        path: "docker/Dockerfile".to_string(),
        ..FixOptions::default()
    };
    let f = fix("FROM a\nRUN a\nRUN b\nCMD x\n", &options).expect("parses");
    assert_eq!(
        f.diff,
        "--- a/docker/Dockerfile\n+++ b/docker/Dockerfile\n@@ -1,4 +1,4 @@\n FROM a\n-RUN a\n-RUN b\n+RUN a \\\n+    && b\n CMD x\n"
    );
}

#[test]
fn layer_counts_of_the_final_stage_and_the_file() {
    let df = crate::parse(
        "FROM a AS b\nRUN x\nCOPY a b\nFROM b\nRUN y\nADD c d\nRUN z\nONBUILD RUN w\n",
    )
    .expect("parses");
    let c = layer_counts(&df);
    assert_eq!(c.final_stage, Layers { run: 2, layers: 3 });
    assert_eq!(c.file, Layers { run: 3, layers: 5 });
}

/// Every Dockerfile in the repository and the test fixtures: the output parses and a second
/// fix changes nothing, with and without the unsafe fixes.
#[test]
fn every_fixture_is_fixed_soundly_and_idempotently() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![
        root.join("docker/Dockerfile"),
        root.join("docker/examples/Dockerfile.naive"),
    ];
    let mut dirs = vec![root.join("tests/fixtures/dockerfiles")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.to_string_lossy().ends_with("Dockerfile") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 6, "{files:?}");
    let unsafe_too = FixOptions {
        unsafe_fixes: true,
        ..FixOptions::default()
    };
    let mut fixed_some = 0;
    for file in files {
        let Ok(src) = std::fs::read_to_string(&file) else {
            continue;
        };
        if crate::parse(&src).is_err() {
            continue;
        }
        for options in [&FixOptions::default(), &unsafe_too] {
            let f = sound(&src, options);
            fixed_some += usize::from(f.changed());
            assert!(
                f.after.file.layers <= f.before.file.layers,
                "{}",
                file.display()
            );
        }
    }
    assert!(fixed_some > 0);
}

/// The fix fixtures of the engine test: what each should become.
#[test]
fn the_engine_fixtures_are_fixed_as_the_engine_test_expects() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/dockerfiles/fix");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("fixture");
    let runs = |name: &str| {
        let f = sound(&read(name), &FixOptions::default());
        (f.before.final_stage.run, f.after.final_stage.run, ids(&f))
    };
    // `hello` and `tree`, run after the install, are programs the fixer does not know: they
    // may run apt, so the lists stay.
    assert_eq!(runs("apt-split.Dockerfile"), (4, 1, vec!["merge-runs"]));
    assert_eq!(
        runs("apt-late-cleanup.Dockerfile"),
        (3, 2, vec!["move-cleanup", "move-cleanup"])
    );
    assert_eq!(
        runs("pip.Dockerfile"),
        (
            6,
            3,
            vec![
                "merge-runs",
                "merge-runs",
                "move-cleanup",
                "pip-no-cache-dir"
            ]
        )
    );
    assert_eq!(
        runs("download.Dockerfile"),
        (3, 1, vec!["merge-runs", "move-cleanup"])
    );
}

/// Dockerfiles made of random lines: no panic, the output parses, a second fix changes
/// nothing.
#[test]
fn random_dockerfiles_are_fixed_soundly() {
    const LINES: &[&str] = &[
        "RUN apt-get update",
        "RUN apt-get install -y a",
        "RUN apt-get update && apt-get install -y b",
        "RUN apt-get clean",
        "RUN rm -rf /var/lib/apt/lists/*",
        "RUN rm -rf /var/lib/apt/lists/* /root/.cache/pip /tmp/x.tgz",
        "RUN pip install c",
        "RUN python3 -m pip install d || true",
        "RUN rm -rf /root/.cache/pip",
        "RUN curl -o /tmp/x.tgz u && tar -xzf /tmp/x.tgz",
        "RUN rm -f /tmp/x.tgz",
        "RUN cd /x && make",
        "RUN a; b",
        "RUN --mount=type=cache,target=/root/.cache/pip pip install e",
        "RUN --mount=type=secret,id=s pip install f",
        "RUN [\"echo\", \"exec\"]",
        "RUN apk add g",
        "RUN echo a \\\n  && echo b",
        "RUN echo c \\\n# inner\n  && rm -rf /root/.cache/pip",
        "RUN <<EOF\napt-get install -y h\nEOF",
        "RUN echo # comment",
        "RUN sleep 1 &",
        "RUN if true; then cd /; fi",
        "ENV A=1",
        "ENV HOME=/h",
        "WORKDIR /tmp",
        "USER u",
        "COPY a /b",
        "SHELL [\"/bin/bash\", \"-c\"]",
        "ONBUILD RUN apt-get update",
        "# a comment",
        "",
        "FROM x AS s1",
        "FROM s1",
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    for _ in 0..400 {
        let mut src = String::from("FROM base\n");
        for _ in 0..next(12) + 1 {
            src.push_str(LINES[next(LINES.len())]);
            src.push('\n');
        }
        let unsafe_fixes = next(2) == 1;
        let options = FixOptions {
            unsafe_fixes,
            ..FixOptions::default()
        };
        let f = sound(&src, &options);
        assert!(f.after.file.layers <= f.before.file.layers, "{src}");
        assert_eq!(
            REJECTED.with(Cell::get),
            0,
            "a rewrite was rejected:\n{src}"
        );
    }
}

/// The cases where a join used to change what a build does
/// (tests/tests/it/dockerfile_fix_cases.rs builds them).
#[test]
fn joins_keep_set_e_separators_backslashes_and_unknown_shells() {
    let opts = FixOptions::default();
    // `set -e` (in any spelling, or code that may set it) may end a joined run only.
    for set in [
        "set -e; false; echo x",
        "set -eux; false",
        "set -o errexit; false",
        "set -- $ARGS; false",
        "eval \"$SETUP\"; false",
        ". /etc/profile; false",
        "( set -e; false; echo x )",
        "echo $(set -e; false)",
    ] {
        let f = sound(&format!("FROM a\nRUN {set}\nRUN echo next\n"), &opts);
        assert!(!f.changed(), "{set}: {}", f.text);
        let f = sound(&format!("FROM a\nRUN echo first\nRUN {set}\n"), &opts);
        assert_eq!(ids(&f), ["merge-runs"], "{set}");
    }
    // A trailing `;` is kept inside parentheses: `( a; ) && b`.
    let f = sound("FROM a\nRUN echo a;\nRUN echo b ;\nRUN echo c\n", &opts);
    assert_eq!(
        f.text,
        "FROM a\nRUN ( echo a; ) \\\n    && ( echo b ; ) \\\n    && echo c\n"
    );
    // Under the backtick escape, a RUN may end in a literal `\`: nothing may follow it.
    let src = "# escape=`\nFROM a\nRUN echo a\\\nRUN echo b\nRUN echo c\\\n";
    let f = sound(src, &opts);
    assert_eq!(
        f.text,
        "# escape=`\nFROM a\nRUN echo a\\\nRUN echo b `\n    && echo c\\\n"
    );
    // Windows (named directly, through an ARG's default, or by platform) and bases whose
    // name cannot be known get no POSIX rewrite; an ARG naming a Linux image does.
    for from in [
        "ARG BASE=mcr.microsoft.com/windows/servercore:ltsc2022\nFROM ${BASE}",
        "ARG BASE\nFROM $BASE",
        "ARG TAG=ltsc2022\nFROM mcr.microsoft.com/windows/nanoserver:$TAG",
        "FROM --platform=windows/amd64 img",
        "ARG BASE=windows\nFROM ${BASE} AS w\nFROM w",
    ] {
        let f = sound(&format!("{from}\nRUN cd /x\nRUN touch y\n"), &opts);
        assert!(!f.changed(), "{from}: {}", f.text);
    }
    for from in [
        "ARG BASE=debian:12\nFROM ${BASE}",
        "ARG BASE\nFROM ${BASE:-debian:12}",
    ] {
        let f = sound(&format!("{from}\nRUN cd /x\nRUN touch y\n"), &opts);
        assert_eq!(ids(&f), ["merge-runs"], "{from}");
    }
}

#[test]
fn apt_lists_stay_while_something_may_still_need_them() {
    let opts = FixOptions::default();
    let install = "RUN apt-get update && apt-get install -y x\n";
    for later in [
        "ENV P=y\nRUN echo $P | xargs apt-get install -y",
        "ENV P=y\nRUN bash -c \"apt-get install -y y\"",
        "ENV P=y\nRUN sh -c 'apt-get install -y y'",
        "COPY install.sh /usr/local/bin/install-y\nRUN install-y",
        "COPY install.sh /\nRUN /install.sh",
        "ENV P=y\nRUN ./configure && make install",
        "ONBUILD RUN apt-get install -y y",
        "ONBUILD RUN ./setup",
        "FROM base AS child\nRUN bash -c 'apt-get install -y z'",
    ] {
        let src = format!("FROM a AS base\n{install}{later}\n");
        let f = sound(&src, &opts);
        assert!(
            !ids(&f).contains(&"apt-lists-cleanup"),
            "{later}: {}",
            f.text
        );
    }
    // Nothing after that could run apt: removed.
    let f = sound(
        &format!("FROM a\n{install}ENV P=y\nRUN pip install y\n"),
        &opts,
    );
    assert!(ids(&f).contains(&"apt-lists-cleanup"), "{}", f.text);
    let f = sound(
        &format!("FROM a\n{install}ONBUILD RUN apt-get update && apt-get install -y y\n"),
        &opts,
    );
    assert!(ids(&f).contains(&"apt-lists-cleanup"), "{}", f.text);
}

/// A command the fixer does not know may run apt: the lists stay before it, in the same RUN
/// or a later one. Only a command on the allow-list (`shell/safe_commands.txt`) lets them go,
/// and only when it does not name the lists.
#[test]
fn unknown_commands_after_apt_keep_the_lists() {
    let adds_rm = |tail: &str| {
        let src = format!(
            "FROM debian\nRUN apt-get update && apt-get install -y --no-install-recommends curl{tail}\n"
        );
        let f = sound(&src, &FixOptions::default());
        // In the RUN of the install (a later RUN that reads the lists may end with it).
        let first = f.text.split("WORKDIR").next().unwrap_or_default();
        first.contains("rm -rf /var/lib/apt/lists")
    };
    assert!(adds_rm(""));
    assert!(adds_rm(" && mkdir -p /out && echo ok > /out/x"));
    assert!(adds_rm("\nWORKDIR /w\nRUN ls /var/lib/dpkg > /out"));
    for cmd in [
        "nice -n 5 apt-get install -y tree",
        "retry apt-get install -y tree",
        "eatmydata apt-get install -y tree",
        "ionice -c3 apt-get install -y tree",
        "chronic apt-get install -y tree",
        "setarch x86_64 apt-get install -y tree",
        "doas apt-get install -y tree",
        "numactl -N0 apt-get install -y tree",
        "taskset -c 0 apt-get install -y tree",
        "systemd-run apt-get install -y tree",
        "cgexec -g cpu:x apt-get install -y tree",
        "nala install -y tree",
        "unattended-upgrade",
        "my_function",
        "$INSTALLER tree",
        "\"$(which apt-get)\" install tree",
        "awk 'BEGIN { system(\"apt-get install -y tree\") }'",
        "\"$APT\" install -y tree",
    ] {
        assert!(!adds_rm(&format!(" && {cmd}")), "removed before: {cmd}");
        assert!(
            !adds_rm(&format!("\nWORKDIR /w\nRUN {cmd}")),
            "removed before a later RUN {cmd}"
        );
    }
    // apt under a quoted or escaped name (read as apt: the cleanup may follow it in the same
    // RUN), or the lists read by name, in a later RUN.
    for cmd in [
        "a\\pt-get install -y tree",
        "'apt-get' install -y tree",
        "ls /var/lib/apt/lists",
        "tar -cf /l.tar /var/lib/apt",
        "cp -a / /rootfs",
        "find / -name '*Packages' -exec cat {} +",
    ] {
        assert!(
            !adds_rm(&format!("\nWORKDIR /w\nRUN {cmd}")),
            "removed before a later RUN {cmd}"
        );
    }
}

/// A stage whose files another stage copies or mounts, and an image whose ENTRYPOINT or CMD
/// runs apt, keep the lists.
#[test]
fn consumers_and_apt_entrypoints_keep_the_lists() {
    let install = "RUN apt-get update && apt-get install -y --no-install-recommends curl";
    let removes = |src: &str| {
        let f = sound(src, &FixOptions::default());
        f.text.contains("rm -rf /var/lib/apt/lists")
    };
    // Control: a final stage alone gets the cleanup.
    assert!(removes(&format!("FROM debian\n{install}\n")));
    for (tail, keeps) in [
        (
            "FROM debian\nCOPY --from=base /var/lib/apt/lists /l\n",
            true,
        ),
        ("FROM debian\nCOPY --from=base / /rootfs\n", true),
        ("FROM debian\nCOPY --from=0 var/lib /x\n", true),
        (
            "FROM debian\nCOPY --from=base /usr/bin/curl /usr/bin/\n",
            false,
        ),
        (
            "FROM debian\nRUN --mount=from=base,target=/b ls /b/var/lib/apt/lists\n",
            true,
        ),
        (
            "FROM debian\nRUN --mount=type=bind,from=base,source=/var/lib/apt,target=/b ls /b\n",
            true,
        ),
        (
            "FROM debian\nRUN --mount=type=bind,from=base,source=/usr/bin,target=/b ls /b\n",
            false,
        ),
    ] {
        let src = format!("FROM debian AS base\n{install}\n{tail}");
        let f = sound(&src, &FixOptions::default());
        let first = f.text.split("\nFROM debian\n").next().unwrap_or_default();
        assert_eq!(
            !first.contains("rm -rf /var/lib/apt/lists"),
            keeps,
            "{src}\n->\n{}",
            f.text
        );
    }
    for entry in [
        "ENTRYPOINT [\"apt-get\", \"install\", \"-y\"]",
        "CMD apt-get install -y tree && tree",
        "ENTRYPOINT [\"sh\", \"-c\", \"apt-get install -y tree\"]",
    ] {
        assert!(
            !removes(&format!("FROM debian\n{install}\n{entry}\n")),
            "{entry}"
        );
        // Inherited by a stage built on it.
        assert!(
            !removes(&format!("FROM debian AS a\n{entry}\nFROM a\n{install}\n")),
            "{entry}, inherited"
        );
    }
    assert!(removes(&format!(
        "FROM debian\n{install}\nCMD [\"curl\", \"--version\"]\n"
    )));
}
