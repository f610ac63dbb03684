use super::*;

fn ids(src: &str) -> Vec<(&'static str, usize)> {
    ids_with(src, &LintOptions::default())
}

fn ids_with(src: &str, options: &LintOptions) -> Vec<(&'static str, usize)> {
    let df = crate::parse(src).expect("parses");
    lint(&df, options)
        .into_iter()
        .map(|f| (f.id, f.line))
        .collect()
}

fn has(src: &str, id: &str) -> bool {
    ids(src).iter().any(|(i, _)| *i == id)
}

#[test]
fn commands_inside_compound_commands_are_linted() {
    let src = "FROM debian:bookworm\n\
        RUN if [ -f r ]; then pip install -r r; fi\n\
        RUN case \"$X\" in a) pip install a ;; *) pip install b ;; esac\n\
        RUN for p in a b; do apk add $p; done\n\
        RUN ( apt-get update && apt-get install curl )\n\
        RUN { apt-get update; apt-get install -y wget; }\n\
        RUN while read p; do pip install \"$p\"; done < reqs\n";
    let found = ids(src);
    for (id, line) in [
        ("DL3042", 2),
        ("DL3042", 3),
        ("DL3019", 4),
        ("DL3009", 5),
        ("DL3015", 5),
        ("DL3015", 6),
        ("DL3042", 7),
    ] {
        assert!(
            found.contains(&(id, line)),
            "{id} at line {line}: {found:?}"
        );
    }
}

#[test]
fn consecutive_short_runs_with_the_same_flags_are_dl3059() {
    let src = "FROM a\nRUN a\n# note\nRUN b\nRUN c && d\nENV X=1\nRUN e\nRUN --network=none f\n";
    assert_eq!(ids(src), [("DL3059", 4)]);
    // A chained RUN is left alone: hadolint counts each command twice against a limit of
    // two, so only single-command RUNs are merged.
    assert!(!has("FROM a\nRUN a && b\nRUN c\n", "DL3059"));
    assert!(!has("FROM a\nRUN a && b && c\nRUN d\n", "DL3059"));
}

#[test]
fn dl3059_counts_commands_as_hadolint_does() {
    for (second, fires) in [
        ("RUN (cd x)", true),
        ("RUN (cd x && make)", false),
        ("RUN echo $(date)", false),
        ("RUN echo $((1+2))", true),
        ("RUN for i in 1 2; do a; done", true),
        ("RUN while true; do a; done", false),
        ("RUN [ -f x ] || a", true),
        ("RUN <<EOF\nb\nEOF", true),
        ("RUN <<EOF\nb\nc\nEOF", false),
    ] {
        let src = format!("FROM a\nRUN a\n{second}\n");
        assert_eq!(has(&src, "DL3059"), fires, "{second}");
    }
    assert_eq!(ids("FROM a\nRUN [\"a\"]\nRUN [\"b\"]\n"), [("DL3059", 3)]);
    // Flags in another order are the same flags.
    let reordered = "FROM a\nRUN --mount=type=cache,target=/a --network=none a\nRUN --network=none --mount=type=cache,target=/a b\n";
    assert_eq!(ids(reordered), [("DL3059", 3)]);
}

#[test]
fn heredoc_bodies_exec_forms_and_onbuild_triggers_are_linted() {
    assert_eq!(
        ids("FROM a\nRUN <<EOF\npip install x\nEOF\n"),
        [("DL3042", 2)]
    );
    assert_eq!(
        ids("FROM a\nRUN <<EOF bash\npip install x\nEOF\n"),
        [("DL3042", 2)]
    );
    // A heredoc fed to a command is that command's data.
    assert!(ids("FROM a\nRUN cat <<EOF > /x\npip install x\nEOF\n").is_empty());
    assert_eq!(
        ids("FROM a\nRUN [\"pip\", \"install\", \"x\"]\n"),
        [("DL3042", 2)]
    );
    // The image built FROM this one runs the trigger, whatever the stage.
    let trigger = "FROM a AS base\nONBUILD RUN apt-get update && apt-get install -y x\nFROM b\n";
    assert_eq!(ids(trigger), [("DL3009", 2), ("DL3015", 2)]);
    // Only an ONBUILD ENV reaches a trigger; and a trigger is no RUN of this stage.
    assert!(has(
        "FROM a\nENV PIP_NO_CACHE_DIR=1\nONBUILD RUN pip install x\n",
        "DL3042"
    ));
    assert!(!has(
        "FROM a\nONBUILD ENV PIP_NO_CACHE_DIR=1\nONBUILD RUN pip install x\n",
        "DL3042"
    ));
    assert!(!has("FROM a\nRUN a\nONBUILD RUN b\nRUN c\n", "DL3059"));
}

#[test]
fn package_managers_are_matched_as_hadolint_matches_them() {
    for (run, id) in [
        (
            "apt-get -o Dpkg::Options::=--force-confold install -y x",
            "DL3015",
        ),
        ("apk -X http://x add y", "DL3019"),
        ("dnf -y --enablerepo crb install x", "DL3040"),
        ("dnf clean all && dnf install -y x", "DL3040"),
        ("yum clean all && yum install -y x", "DL3032"),
        ("zypper clean && zypper install -y x", "DL3036"),
        ("yarn cache clean && yarn install", "DL3060"),
        ("pip --cache-dir /x install y", "DL3042"),
    ] {
        assert!(has(&format!("FROM a\nRUN {run}\n"), id), "{run}");
    }
    for ok in [
        "yum install -y x && rm -rf /var/cache/yum",
        "export PIP_NO_CACHE_DIR=1 && pip install y",
        "env PIP_NO_CACHE_DIR=1 pip install y",
    ] {
        assert!(ids(&format!("FROM a\nRUN {ok}\n")).is_empty(), "{ok}");
    }
    // Not an update alone: the install comes after an option's value.
    assert!(!has(
        "FROM a\nRUN apt-get update && apt-get -o K=V install -y --no-install-recommends x && rm -rf /var/lib/apt/lists/*\n",
        "HR002"
    ));
    assert!(has(
        "FROM a\nENV PIP_NO_CACHE_DIR=2\nRUN pip install y\n",
        "DL3042"
    ));
    // Docker's documented cache mounts keep the lists out of the layer; half of them do not.
    let mounts = "RUN --mount=type=cache,target=/var/cache/apt --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y --no-install-recommends x";
    assert!(!has(&format!("FROM a\n{mounts}\n"), "DL3009"));
    assert!(has(
        "FROM a\nRUN --mount=type=cache,target=/var/lib/apt apt-get update && apt-get install -y --no-install-recommends x\n",
        "DL3009"
    ));
}

#[test]
fn apt_lists_left_behind_are_dl3009_in_stages_that_matter() {
    assert!(has(
        "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x\n",
        "DL3009"
    ));
    assert!(!has(
        "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x && rm -rf /var/lib/apt/lists/*\n",
        "DL3009"
    ));
    assert!(!has(
        "FROM a\nRUN --mount=type=cache,target=/var/lib/apt/lists apt-get update && apt-get install -y --no-install-recommends x\n",
        "DL3009"
    ));
    // A builder stage nothing builds on: its lists never reach the image.
    let multi = "FROM a AS build\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\nFROM b\nCOPY --from=build /x /x\n";
    assert!(!has(multi, "DL3009"));
    let upon = "FROM a AS base\nRUN apt-get update && apt-get install -y --no-install-recommends gcc\nFROM base\nRUN true\n";
    assert!(has(upon, "DL3009"));
}

#[test]
fn install_recommends_and_pip_cache() {
    assert!(has("FROM a\nRUN apt-get install -y x\n", "DL3015"));
    assert!(!has(
        "FROM a\nRUN apt-get install -y -o APT::Install-Recommends=false x\n",
        "DL3015"
    ));
    for pip in [
        "pip install x",
        "pip3 install x",
        "/opt/venv/bin/pip install x",
        "python3 -m pip install x",
    ] {
        assert!(has(&format!("FROM a\nRUN {pip}\n"), "DL3042"), "{pip}");
    }
    for ok in [
        "RUN pip install --no-cache-dir x",
        "RUN PIP_NO_CACHE_DIR=1 pip install x",
        "RUN --mount=type=cache,target=/root/.cache/pip pip install x",
        "ENV PIP_NO_CACHE_DIR=1\nRUN pip install x",
        "RUN pipx install x",
    ] {
        assert!(!has(&format!("FROM a\n{ok}\n"), "DL3042"), "{ok}");
    }
    assert!(has(
        "FROM a\nENV PIP_NO_CACHE_DIR=0\nRUN pip install x\n",
        "DL3042"
    ));
    // Inherited from the stage built upon.
    assert!(!has(
        "FROM a AS base\nENV PIP_NO_CACHE_DIR=true\nFROM base\nRUN pip install x\n",
        "DL3042"
    ));
}

#[test]
fn other_package_managers_clean_up_in_the_same_run() {
    assert!(has("FROM a\nRUN apk add curl\n", "DL3019"));
    assert!(!has("FROM a\nRUN apk add --no-cache curl\n", "DL3019"));
    assert!(has("FROM a\nRUN yum install -y x\n", "DL3032"));
    assert!(!has(
        "FROM a\nRUN yum install -y x && yum clean all\n",
        "DL3032"
    ));
    assert!(has("FROM a\nRUN zypper install -y x\n", "DL3036"));
    assert!(!has(
        "FROM a\nRUN zypper install -y x && zypper clean\n",
        "DL3036"
    ));
    assert!(has("FROM a\nRUN dnf install -y x\n", "DL3040"));
    assert!(!has(
        "FROM a\nRUN dnf install -y x && dnf clean all\n",
        "DL3040"
    ));
    assert!(has("FROM a\nRUN yarn install\n", "DL3060"));
    assert!(!has(
        "FROM a\nRUN yarn install && yarn cache clean\n",
        "DL3060"
    ));
}

#[test]
fn cleanup_in_a_later_layer_is_hr001() {
    let src = "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x\nRUN pip install y\nRUN apt-get clean && rm -rf /var/lib/apt/lists/*\nRUN rm -rf /root/.cache/pip\n";
    let found: Vec<usize> = ids(src)
        .into_iter()
        .filter(|(id, _)| *id == "HR001")
        .map(|(_, l)| l)
        .collect();
    assert_eq!(found, [4, 5]);
    // The same cleanup in the RUN that made the data is what we want.
    assert!(!has(
        "FROM a\nRUN apt-get update && apt-get install -y --no-install-recommends x && rm -rf /var/lib/apt/lists/*\n",
        "HR001"
    ));
    let download = "FROM a\nRUN curl -fsSL -o /tmp/x.tar.gz https://e.org/x.tar.gz\nRUN tar -xzf /tmp/x.tar.gz -C /opt\nRUN rm /tmp/x.tar.gz\n";
    assert_eq!(
        ids(download)
            .into_iter()
            .filter(|(id, _)| id.starts_with("HR"))
            .collect::<Vec<_>>(),
        [("HR005", 3), ("HR001", 4)]
    );
    assert!(has(
        "FROM a\nADD https://e.org/cuda.tar.gz /tmp/\nRUN tar -xzf /tmp/cuda.tar.gz -C /usr/local\n",
        "HR005"
    ));
}

#[test]
fn update_alone_single_package_installs_and_copy_before_install() {
    assert!(has(
        "FROM a\nRUN apt-get update\nRUN apt-get install -y --no-install-recommends x\n",
        "HR002"
    ));
    assert!(!has(
        "FROM a\nRUN apt-get update && apt-get upgrade -y\n",
        "HR002"
    ));
    // Whatever reads the lists in the same RUN, however it is written, is their use:
    // other apt subcommands, apt-cache, code that cannot be seen, compound commands.
    for used in [
        "apt-get update && apt-get build-dep -y nginx",
        "apt-get update && apt-get source --compile nginx",
        "apt-get update && apt-cache policy nginx",
        "apt-get update && xargs apt-get install -y < /pkgs.txt",
        "apt-get update && bash -c 'apt-get install -y x'",
        "apt-get update && /usr/local/bin/install-deps.sh",
        "apt-get update && if true; then apt-get install -y x; fi",
        "case $a in amd64) apt-get update ;; esac && apt-get install -y x",
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get -o Dpkg::Options::=--force-confnew -y install x",
        "apt-get update && eval \"$INSTALL\"",
        "apt-get update && echo $(( $(apt-cache search x | wc -l) ))",
    ] {
        assert!(
            !has(&format!("FROM a\nRUN {used}\n"), "HR002"),
            "HR002 on: {used}"
        );
    }
    for unused in [
        "apt-get update",
        "apt-get update && echo done",
        "apt-get install -y x && apt-get update",
        "apt-get update && apt-get clean",
        // Arithmetic runs nothing: `N/2` is no script to look into.
        "apt-get update && echo $((N/2))",
    ] {
        assert!(
            has(&format!("FROM a\nRUN {unused}\n"), "HR002"),
            "no HR002 on: {unused}"
        );
    }
    let singles = "FROM a\nRUN pip install --no-cache-dir a\nRUN pip install --no-cache-dir b==1 --index-url https://x\nRUN pip install --no-cache-dir c d\nRUN pip install --no-cache-dir -r req.txt\n";
    assert_eq!(
        ids(singles)
            .into_iter()
            .filter(|(id, _)| *id == "HR003")
            .collect::<Vec<_>>(),
        [("HR003", 3)]
    );
    assert!(has(
        "FROM a\nCOPY . .\nRUN pip install --no-cache-dir -r requirements.txt\n",
        "HR004"
    ));
    assert!(!has(
        "FROM a\nCOPY requirements.txt .\nRUN pip install --no-cache-dir -r requirements.txt\nCOPY . .\n",
        "HR004"
    ));
}

#[test]
fn layers_and_context() {
    let mut src = String::from("FROM a\n");
    for n in 0..13 {
        src.push_str(&format!("COPY f{n} /f{n}\n"));
    }
    assert!(has(&src, "HR006"));
    let opts = LintOptions {
        max_layers: 20,
        ..LintOptions::default()
    };
    assert!(!ids_with(&src, &opts).iter().any(|(id, _)| *id == "HR006"));
    let big = LintOptions {
        context: Some(ContextFacts {
            dockerignore: false,
            bytes: 200_000_000,
        }),
        ..LintOptions::default()
    };
    assert_eq!(ids_with("FROM a\n", &big), [("HR007", 1)]);
}

#[test]
fn ignores_inline_global_and_configured_and_severities() {
    let src =
        "FROM a\n# hadolint ignore=DL3015,DL3009\nRUN apt-get update && apt-get install -y x\n";
    assert!(ids(src).is_empty(), "{:?}", ids(src));
    let ours = "FROM a\n# headroom ignore=HR002\nRUN apt-get update\n";
    assert_eq!(ids(ours), [("DL3009", 3)]);
    // An empty line between comment and instruction ends the block: no ignore.
    let apart = "FROM a\n# hadolint ignore=DL3015\n\nRUN apt-get install -y x\n";
    assert_eq!(ids(apart), [("DL3015", 4)]);
    let global = "# hadolint global ignore=DL3015\nFROM a\nRUN apt-get install -y x\n";
    assert!(ids(global).is_empty());
    let mut opts = LintOptions::default();
    opts.ignore.insert("dl3015".into());
    assert!(ids_with("FROM a\nRUN apt-get install -y x\n", &opts).is_empty());
    let mut opts = LintOptions::default();
    opts.severity.insert("DL3015".into(), Severity::Error);
    let df = crate::parse("FROM a\nRUN apt-get install -y x\n").expect("parses");
    assert_eq!(lint(&df, &opts)[0].severity, Severity::Error);
}

#[test]
fn findings_carry_the_fix_that_answers_them() {
    use crate::fix::FixId;
    let src = "FROM a\nRUN apt-get update\nRUN apt-get install -y x\nRUN yum install -y y\n";
    let df = crate::parse(src).expect("parses");
    let linted = lint_with_fixes(src, &df, &LintOptions::default());
    let fix_of = |id: &str| {
        let f = linted.findings.iter().find(|f| f.id == id);
        let f = f.unwrap_or_else(|| panic!("no {id}: {:?}", linted.findings));
        f.fix
            .map(|x| (x.applicability, linted.fixes.changes[x.change].id))
    };
    assert_eq!(
        fix_of("HR002"),
        Some((Applicability::Safe, FixId::MergeRuns))
    );
    assert_eq!(
        fix_of("DL3015"),
        Some((Applicability::Unsafe, FixId::AptNoInstallRecommends))
    );
    assert_eq!(fix_of("DL3032"), None, "the rule has no fix");
    // The lint alone: the same findings, none with a fix.
    let plain = lint(&df, &LintOptions::default());
    assert_eq!(plain.len(), linted.findings.len());
    assert!(plain.iter().all(|f| f.fix.is_none()));
    assert_eq!(
        plain.iter().map(|f| (f.id, f.line)).collect::<Vec<_>>(),
        linted
            .findings
            .iter()
            .map(|f| (f.id, f.line))
            .collect::<Vec<_>>()
    );
    // No finding with an unsafe fix: no unsafe change is looked for.
    let src = "FROM a\n# hadolint ignore=DL3015\nRUN apt-get install -y x\n";
    let df = crate::parse(src).expect("parses");
    let linted = lint_with_fixes(src, &df, &LintOptions::default());
    assert!(
        linted
            .fixes
            .changes
            .iter()
            .all(|c| c.safety == Applicability::Safe),
        "{:?}",
        linted.fixes
    );
}

#[test]
fn lists_cleaned_by_find_or_dist_clean_are_not_dl3009() {
    for clean in [
        "find /var/lib/apt/lists -type f -delete",
        "find /var/lib/apt/lists/ -mindepth 1 -delete",
        "apt-get dist-clean",
    ] {
        let src =
            format!("FROM debian\nRUN apt-get update && apt-get install -y curl && {clean}\n");
        assert!(!has(&src, "DL3009"), "{clean}: {:?}", ids(&src));
    }
    // Finding without deleting is no cleanup.
    assert!(has(
        "FROM debian\nRUN apt-get update && apt-get install -y curl && find /var/lib/apt/lists\n",
        "DL3009"
    ));
}

#[test]
fn pip_inside_a_command_substitution_is_dl3042() {
    assert!(has(
        "FROM python\nRUN echo \"$(pip install requests)\"\n",
        "DL3042"
    ));
    assert!(has(
        "FROM python\nRUN x=`pip3 install six` && echo $x\n",
        "DL3042"
    ));
    assert!(!has(
        "FROM python\nRUN echo \"$(pip install --no-cache-dir requests)\"\n",
        "DL3042"
    ));
}

#[test]
fn instructions_before_any_from_are_linted_as_hadolint_does() {
    assert!(has(
        "RUN apt-get update && apt-get install -y curl\n",
        "DL3009"
    ));
    assert!(has("RUN dnf -y upgrade-minimal\n", "DL3040"));
    assert!(!has(
        "RUN --mount=type=cache,target=/var/cache/zypp zypper install -y mariadb\n",
        "DL3036"
    ));
    // Global ARGs alone are no stage.
    assert!(ids("ARG A=1\nFROM debian\n").is_empty());
}

#[test]
fn the_naive_download_in_three_layers_is_hr005_and_hr001() {
    let hr = |src: &str| -> Vec<(&'static str, usize)> {
        ids(src)
            .into_iter()
            .filter(|(id, _)| id.starts_with("HR"))
            .collect()
    };
    for download in [
        "wget https://e.org/tool-1.0.tar.gz",
        "wget -q https://e.org/tool-1.0.tar.gz?x=1",
        "curl -fsSLO https://e.org/tool-1.0.tar.gz",
        "curl -fsSLo tool-1.0.tar.gz https://e.org/t",
        "curl -fsSL -o tool-1.0.tar.gz https://e.org/t",
        "curl --output=tool-1.0.tar.gz https://e.org/t",
        "wget -Otool-1.0.tar.gz https://e.org/t",
    ] {
        let src = format!(
            "FROM a\nRUN {download}\nRUN tar xzf tool-1.0.tar.gz -C /opt\nRUN rm tool-1.0.tar.gz\n"
        );
        assert_eq!(hr(&src), [("HR005", 3), ("HR001", 4)], "{download}");
    }
    // Streamed, or downloaded, extracted and removed in one RUN: nothing stays.
    for ok in [
        "RUN wget -qO- https://e.org/tool.tar.gz | tar xz -C /opt\nRUN rm -rf /opt/x\n",
        "RUN curl -fsSL https://e.org/tool.tar.gz | tar xz\nRUN tar czf /b.tgz /opt\n",
        "RUN wget https://e.org/t.tgz && tar xzf t.tgz && rm t.tgz\nRUN tar xzf t.tgz\n",
    ] {
        assert_eq!(hr(&format!("FROM a\n{ok}")), [], "{ok}");
    }
}

#[test]
fn recursive_chown_or_chmod_over_copied_files_is_hr008() {
    let found = |src: &str| has(src, "HR008");
    assert!(found("FROM a\nCOPY . /app\nRUN chown -R app:app /app\n"));
    assert!(found(
        "FROM a\nWORKDIR /app\nCOPY src/ ./src/\nRUN chmod -R a+rX src\n"
    ));
    assert!(found("FROM a\nCOPY x /opt/x/\nRUN chown -Rh 1000 /opt\n"));
    assert!(found(
        "FROM a\nCOPY . /app\nRUN pip install . && chown --recursive u /app/data\n"
    ));
    // Not recursive, not over what was copied, or a value that cannot be known.
    assert!(!found("FROM a\nCOPY . /app\nRUN chown app /app\n"));
    assert!(!found(
        "FROM a\nCOPY . /app\nRUN chown -R app /var/log/app\n"
    ));
    assert!(!found("FROM a\nCOPY . /app\nRUN chown -R app $DIR\n"));
    assert!(!found("FROM a\nRUN mkdir /data && chown -R app /data\n"));
}
