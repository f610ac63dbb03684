//! Every merge `lint --fix` makes must be the same program as the RUNs it replaces: run as
//! consecutive RUNs (each in a fresh `/bin/sh -c`, stopping at the first that fails) and as
//! the merged RUN, under dash and under bash as `sh`, with every external command a stub that
//! records its arguments, working directory, umask and environment and fails by a pattern,
//! the traces and the success must be the same for every pattern (see headroom_tests::equiv).
//!
//! Over the repository's Dockerfiles and over generated RUN sequences; and the corpus test
//! that no fixed RUN has a shell syntax error its original file did not have.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use headroom_dockerfile::fix::{FixOptions, fix};
use headroom_tests::equiv::{self, Generator, Merge};

headroom_tests::tests! {
    corpus_merges_keep_traces_and_status needs Root;
    generated_merges_keep_traces_and_status needs Root;
    reproducers_keep_traces_and_status needs Root;
    corpus_fixed_scripts_have_no_new_syntax_error;
    mutated_scripts_are_merged_only_when_the_shell_parses_them;
    naive_merges_are_told_apart needs Root;
}

/// The merges of `src`, or `None` when it does not parse.
fn merges_of(src: &str) -> Option<Vec<Merge>> {
    let before = headroom_dockerfile::parse(src).ok()?;
    let fixed = fix(src, &FixOptions::default()).ok()?;
    let after = headroom_dockerfile::parse(&fixed.text).unwrap();
    Some(equiv::merges(&before, &fixed, &after))
}

/// Compare one merge; the report of a difference.
fn check(what: &str, m: &Merge) -> (Option<String>, usize) {
    let original: Vec<&str> = m.original.iter().map(String::as_str).collect();
    let (mismatch, runs) = equiv::compare(&original, &m.merged, m.other_fixes);
    (
        mismatch.map(|x| equiv::describe(what, &m.original, &m.merged, &x)),
        runs,
    )
}

fn corpus_merges_keep_traces_and_status() {
    let mut merges = 0;
    let mut runs = 0;
    let mut bad = Vec::new();
    let only = std::env::var("HEADROOM_EQUIV_ONLY").unwrap_or_default();
    for path in equiv::corpus() {
        if !path.to_string_lossy().contains(&only) {
            continue;
        }
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Some(found) = merges_of(&src) else {
            continue;
        };
        for m in found {
            merges += 1;
            let what = format!("{}:{}", path.display(), m.line);
            let (report, n) = check(&what, &m);
            runs += n;
            bad.extend(report);
        }
    }
    eprintln!("{merges} merges in the corpus, {runs} failure patterns compared");
    assert!(merges >= 10, "only {merges} merges in the corpus");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn generated_merges_keep_traces_and_status() {
    let cases: u64 = std::env::var("HEADROOM_EQUIV_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(150);
    let mut merges = 0;
    let mut runs = 0;
    let mut bad = Vec::new();
    for seed in 0..cases {
        let src = Generator::new(seed).dockerfile();
        let found = merges_of(&src).unwrap_or_else(|| panic!("seed {seed} does not parse:\n{src}"));
        for m in found {
            merges += 1;
            assert!(!m.other_fixes, "seed {seed}: only merges expected");
            let (report, n) = check(&format!("seed {seed}"), &m);
            runs += n;
            bad.extend(report.map(|r| format!("{r}  Dockerfile:\n{src}")));
        }
        if bad.len() >= 3 {
            break;
        }
    }
    eprintln!("{merges} merges in {cases} generated files, {runs} failure patterns compared");
    assert!(
        merges as u64 >= cases / 3,
        "only {merges} merges in {cases} files: the generator no longer exercises the fixer"
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The merges each earlier version of the fixer got wrong, as written.
fn reproducers_keep_traces_and_status() {
    let cases = [
        // `set -e` joined before another RUN is ignored (POSIX: not the last of `&&`).
        "FROM debian\nRUN set -e; false; c1 x\nRUN c2 next\n",
        // A script ending in `;`.
        "FROM debian\nRUN c1 a;\nRUN c2 b ;\nRUN c3 c\n",
        // `cd` and `export` reach the RUNs after them unless wrapped.
        "FROM debian\nRUN cd /d1 && export V=1\nRUN c1 x \"$V\"\n",
        // An assignment before the special builtin `:` stays in the shell (POSIX).
        "FROM debian\nRUN W=3 :\nRUN c1 \"$W\"\n",
        "FROM debian\nRUN c2 a && W=3 : && c3 b\nRUN c1 \"$W\"\n",
    ];
    let mut bad = Vec::new();
    let mut merges = 0;
    for src in cases {
        for m in merges_of(src).unwrap() {
            merges += 1;
            bad.extend(check(src, &m).0);
        }
    }
    assert!(
        merges >= 2,
        "the reproducers are no longer merged: {merges}"
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn corpus_fixed_scripts_have_no_new_syntax_error() {
    let mut checked = 0;
    let mut bad = Vec::new();
    for path in equiv::corpus() {
        let Ok(src) = std::fs::read_to_string(&path) else {
            continue;
        };
        let (Ok(before), Ok(fixed)) = (
            headroom_dockerfile::parse(&src),
            fix(&src, &FixOptions::default()),
        ) else {
            continue;
        };
        let after = headroom_dockerfile::parse(&fixed.text).unwrap();
        let scripts = |df: &headroom_dockerfile::Dockerfile| -> Vec<String> {
            df.walk()
                .filter(|i| i.keyword == headroom_dockerfile::Keyword::Run && i.heredocs.is_empty())
                .filter_map(|i| i.shell().map(|w| w.text.clone()))
                .collect()
        };
        for shell in ["/bin/dash", "/bin/bash"] {
            let ok_before = scripts(&before).iter().all(|s| equiv::parses(shell, s));
            if !ok_before {
                continue;
            }
            for s in scripts(&after) {
                checked += 1;
                if !equiv::parses(shell, &s) {
                    bad.push(format!("{}: {shell} -n rejects {s:?}", path.display()));
                }
            }
        }
    }
    assert!(checked >= 100, "only {checked} scripts checked");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Generated scripts with stray operators, reserved words and quotes put in: a script dash
/// refuses is never merged (the merge would keep the RUNs before it from running), and for
/// each shell, a merge of scripts it accepts is a script it accepts.
fn mutated_scripts_are_merged_only_when_the_shell_parses_them() {
    const NOISE: &[&str] = &[
        "!", "! !", "| !", ";", "|", "&&", "||", "&", "(", ")", "{", "}", "if", "then", "fi", "do",
        "done", "case", "esac", ";;", "in", "\\\n", "#", "'", "\"", "`", "$(", "<", ">", "2>&1",
        "x()", "time", "(é", "é)", "$(é",
    ];
    let cases: u64 = std::env::var("HEADROOM_MUTATION_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1500);
    let (mut merged, mut refused, mut bad) = (0, 0, Vec::new());
    for seed in 0..cases {
        let mut rng = equiv::Rng::new(seed ^ 0x005e_ed0f_5eed);
        let mut script = Generator::new(seed).script();
        for _ in 0..1 + rng.below(2) {
            let spaces: Vec<usize> = script.match_indices(' ').map(|(i, _)| i).collect();
            let at = match spaces.len() {
                0 => script.len(),
                n => spaces[rng.below(n)],
            };
            script.insert_str(at, &format!(" {}", rng.pick(NOISE)));
        }
        let src = format!("FROM debian\nRUN c0 first\nRUN {script}\nRUN c9 last\n");
        let Some(found) = merges_of(&src) else {
            continue;
        };
        let before = headroom_dockerfile::parse(&src).unwrap();
        let Some(shell_text) = before
            .walk()
            .filter(|i| i.keyword == headroom_dockerfile::Keyword::Run)
            .nth(1)
            .and_then(|i| i.shell().map(|w| w.text.clone()))
        else {
            continue;
        };
        if !equiv::parses("/bin/dash", &shell_text) {
            refused += 1;
            if !found.is_empty() {
                bad.push(format!(
                    "seed {seed}: dash refuses {shell_text:?}, merged anyway"
                ));
            }
            continue;
        }
        for m in &found {
            merged += 1;
            for shell in ["/bin/dash", "/bin/bash"] {
                let accepted = m.original.iter().all(|o| equiv::parses(shell, o));
                if accepted && !equiv::parses(shell, &m.merged) {
                    bad.push(format!(
                        "seed {seed}: {shell} -n refuses the merge {:?}",
                        m.merged
                    ));
                }
            }
        }
        if bad.len() >= 5 {
            break;
        }
    }
    eprintln!("{cases} mutated scripts: {refused} refused by dash, {merged} merges checked");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
    assert!(
        refused as u64 >= cases / 10,
        "only {refused} refused scripts"
    );
    assert!(merged as u64 >= cases / 10, "only {merged} merges");
}

/// The comparison sees what a naive merge breaks: `-e` switched off, a `cd` or an assignment
/// leaking into the next RUN, a `||` taking in what follows.
fn naive_merges_are_told_apart() {
    let base = equiv::run_sequence(
        &["c1 a \"$V\"", "cd /d1 && c2 b"],
        &["c1 c2 cd /d1"],
        equiv::Shell::Dash,
        &equiv::Failures::Calls(Default::default()),
        false,
    );
    assert!(base.success, "{base:?}");
    assert_eq!(base.trace.len(), 2, "{base:?}");
    assert!(
        base.trace[0].starts_with("c1 [a] [] cwd=/ umask=0022"),
        "{base:?}"
    );
    assert!(base.trace[1].starts_with("c2 [b] cwd=/d1 "), "{base:?}");
    for (original, naive) in [
        (
            &["set -e; false; c1 x", "c2 next"][..],
            "( set -e; false; c1 x ) && c2 next",
        ),
        (&["cd /d1", "c1 x"][..], "cd /d1 && c1 x"),
        (&["W=3 :", "c1 \"$W\""][..], "W=3 : && c1 \"$W\""),
        (&["umask 077", "c1 x"][..], "umask 077 && c1 x"),
        (&["export V=1", "c1 x"][..], "export V=1 && c1 x"),
        (&["c1 a || c2 b", "c3 c"][..], "c3 c && c1 a || c2 b"),
    ] {
        let (mismatch, _) = equiv::compare(original, naive, false);
        assert!(
            mismatch.is_some(),
            "{original:?} vs {naive:?} not told apart"
        );
    }
}
