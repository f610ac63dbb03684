//! The shell reader and the command view, on scripts as RUN lines write them.

use super::*;

// The commands as the rules see them.

fn words(script: &str) -> Vec<Vec<String>> {
    commands(script).into_iter().map(|c| c.words).collect()
}

#[test]
fn commands_split_on_operators_and_keep_quoted_text_whole() {
    let c = commands(
        "apt-get update && apt-get install -y 'a b' \"c\\\"d\"; rm -rf /x || true | cat & sleep 1",
    );
    let seps: Vec<Separator> = c.iter().map(|c| c.separator).collect();
    assert_eq!(
        seps,
        [
            Separator::Start,
            Separator::And,
            Separator::Then,
            Separator::Or,
            Separator::Pipe,
            Separator::Then
        ]
    );
    assert_eq!(c[1].words, ["apt-get", "install", "-y", "a b", "c\"d"]);
    assert!(c[1].is_apt("install"));
    assert_eq!(c[1].operands(), ["a b", "c\"d"]);
}

#[test]
fn assignments_sudo_and_env_are_looked_through() {
    let c = commands("DEBIAN_FRONTEND=noninteractive sudo -E apt-get -y install x");
    assert_eq!(c[0].assignments, ["DEBIAN_FRONTEND=noninteractive"]);
    assert!(c[0].is_apt("install"));
    let c = commands("env A=1 /usr/bin/pip3.11 install --no-cache-dir torch");
    assert!(c[0].is_pip_install());
    assert!(c[0].has_any(&["--no-cache-dir"]));
}

#[test]
fn pip_in_all_its_spellings() {
    for s in [
        "pip install x",
        "pip3 install x",
        "/opt/venv/bin/pip install x",
        "python3 -m pip install x",
        "python -m pip -q install x",
    ] {
        assert!(commands(s)[0].is_pip_install(), "{s}");
    }
    for s in [
        "pipx install x",
        "pipenv install",
        "pip download x",
        "python -m venv x",
    ] {
        assert!(!commands(s)[0].is_pip_install(), "{s}");
    }
}

#[test]
fn commands_inside_compound_commands_are_listed() {
    let w = |s: &str| -> Vec<String> { words(s).into_iter().map(|c| c.join(" ")).collect() };
    assert_eq!(
        w("if [ -f x ]; then pip install a; elif true; then apk add b; else apt-get install c; fi"),
        [
            "[ -f x ]",
            "pip install a",
            "true",
            "apk add b",
            "apt-get install c"
        ]
    );
    assert_eq!(
        w("for p in a b; do apk add $p; done"),
        ["apk add $p"],
        "a loop's header is not a command"
    );
    assert_eq!(
        w("while read l; do pip install $l; done < reqs"),
        ["read l", "pip install $l"]
    );
    assert_eq!(
        w("case $A in x|y) pip install x ;; *) apt-get install -y z ;; esac"),
        ["pip install x", "apt-get install -y z"],
        "patterns are not commands"
    );
    assert_eq!(
        w(
            "case \"$(uname -m)\" in\n  (x86_64 | amd64)\n    apk add a ;;\n  arm*) apk add b ;&\n  *) ;;\nesac && pip install c"
        ),
        ["apk add a", "apk add b", "pip install c"]
    );
    assert_eq!(
        w("case $a in esac) apk add x;; esac"),
        ["apk add x"],
        "`esac` as a pattern"
    );
    assert_eq!(
        w("{ apt-get update; apt-get install -y x; } && ( cd /s && pip install . )"),
        [
            "apt-get update",
            "apt-get install -y x",
            "cd /s",
            "pip install ."
        ]
    );
    assert_eq!(w("! pip install x"), ["pip install x"]);
    assert_eq!(
        w("echo {a,b} {x}"),
        ["echo {a,b} {x}"],
        "brace words are words"
    );
    assert!(commands("if (pip install x); then :; fi")[0].is_pip_install());
}

#[test]
fn substitutions_and_comments_are_opaque_subshells_are_not() {
    assert_eq!(
        words("echo $(a && b) `c;d` && (cd /x; make) # && rm x"),
        vec![
            vec!["echo".to_string(), "$(a && b)".into(), "`c;d`".into()],
            vec!["cd".to_string(), "/x".into()],
            vec!["make".to_string()],
        ]
    );
    let cmds = commands("a && (b; c) || d");
    let seps: Vec<Separator> = cmds.iter().map(|c| c.separator).collect();
    assert_eq!(
        seps,
        [
            Separator::Start,
            Separator::And,
            Separator::Then,
            Separator::Or
        ]
    );
    assert_eq!(words("a \\\n  b"), vec![vec!["a".to_string(), "b".into()]]);
}

#[test]
fn any_text_is_read_without_panicking() {
    for s in [
        "", "&&", "'", "\"", "$(", "`", "(", "{", "\\", "a=b", "a |", "|| b",
    ] {
        let _ = commands(s);
    }
    assert!(commands("A=1").iter().all(|c| c.program().is_none()));
}

// The reader: positions, separators, what reaches past a script, what it cannot follow.

fn texts(s: &Script) -> Vec<Vec<&str>> {
    s.cmds
        .iter()
        .map(|c| c.words.iter().map(|w| w.text.as_str()).collect())
        .collect()
}

#[test]
fn syntax_errors_are_not_understood() {
    // Each is refused by `dash -n`, so merging it would stop the RUNs before it.
    for bad in [
        "! && c3 a1",
        "set x() -e",
        "echo x x() > /tmp/f",
        "c4 ` { a1",
        "a & && b",
        "( a; do exit 3 )",
        "for time i in 1 2; do c; done",
        "for i then in 1 2; do c; done",
        "for i in 1 && 2; do c; done",
        "for i in 1; c; done",
        "c | 2>&1 for i in 1 2; do c; done",
        "2>&1 ( cd /d2 )",
        "( exit 3 && < > true )",
        "f() | { c; }",
        ": && f() { c; < }",
        "a; f() { c4 fi in-f; > }",
        "true < 2>&1",
        "2>&1 x() { c; }",
        "case a in a) b ;; ) esac",
        "echo $( 0; else c )",
        "echo $(fi)",
        "if a; then b; else c; fi; fi",
        "{ a; )",
        "( a; }",
        "( )",
        "if then fi",
    ] {
        assert!(!read(bad).understood, "{bad}");
    }
    for ok in [
        "f() { c; }",
        "f () ( c )",
        "echo $(a; b) `c` \"$(d | e)\" $((1 + 2))",
        "for i in 1 2\ndo c; done",
        "for i; do c; done",
        "a 2>&1 >/dev/null <in",
    ] {
        assert!(read(ok).understood, "{ok}");
    }
}

#[test]
fn bang_opens_a_pipeline_and_nothing_else() {
    for ok in [
        "! a",
        "a && ! b || ! c; ! d",
        "if ! a; then ! b; else ! c; fi",
        "while ! a; do ! b; done",
        "( ! a ) | b",
        "a | ( ! b )",
        "{ ! a; }",
        "case x in x) ! a ;; esac",
        "test ! -f x",
    ] {
        assert!(read(ok).understood, "{ok}");
    }
    // dash refuses each of these ("\"!\" unexpected"); bash the first two.
    for bad in [
        "a | ! b", "a |\n! b", "! ! a", "a && ; b", "a |; b", "f (é", "f (x)",
    ] {
        assert!(!read(bad).understood, "{bad}");
    }
    // A line break after an operator continues the list.
    let s = read("a |\n  b &&\n c ||\n\n d");
    assert!(s.understood, "{s:?}");
    assert_eq!(s.top_seps, [Separator::Pipe, Separator::And, Separator::Or]);
}

#[test]
fn case_branches_are_commands_and_patterns_are_not() {
    let src = "case \"$a\" in (x | y*) apt-get install -y x ;; *) pip install z ;& esac && b";
    let s = read(src);
    assert!(s.understood && !s.needs_parens(), "{s:?}");
    assert_eq!(
        texts(&s),
        vec![
            vec!["apt-get", "install", "-y", "x"],
            vec!["pip", "install", "z"],
            vec!["b"]
        ]
    );
    // Inside the case: not top-level, so never removed from the script.
    assert_eq!(
        s.cmds.iter().map(|c| c.top).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(s.top_seps, [Separator::And]);
    let x = &s.cmds[0].words[3];
    assert_eq!(&src[x.range.clone()], "x");
    // Reserved words may follow a compound command without a separator.
    for ok in [
        "if (true) then echo x; fi",
        "{ (echo y) }",
        "for i in 1; do { echo w; } done",
        "case a in a) (echo v) esac",
    ] {
        assert!(read(ok).understood, "{ok}");
    }
    // Nested, and an empty branch.
    let s = read("case a in a) case b in b) c;; esac;; *) ;; esac");
    assert!(s.understood, "{s:?}");
    assert_eq!(texts(&s), vec![vec!["c"]]);
}

#[test]
fn commands_words_and_positions() {
    let src = "apt-get update && DEBIAN_FRONTEND=x apt-get install -y 'a b' >/dev/null 2>&1";
    let s = read(src);
    assert!(s.understood && !s.leaks && !s.needs_parens() && s.is_and_chain());
    assert_eq!(
        texts(&s),
        vec![
            vec!["apt-get", "update"],
            vec!["apt-get", "install", "-y", "a b"]
        ]
    );
    let c = &s.cmds[1];
    assert_eq!(c.assignments[0].text, "DEBIAN_FRONTEND=x");
    assert_eq!(c.redirects.len(), 2);
    assert_eq!(&src[c.words[3].range.clone()], "'a b'");
    assert_eq!(&src[c.range.clone()], &src[18..]);
    assert_eq!(c.subcommand_at(c.program_at()), Some(1));
}

#[test]
fn top_level_operators_and_nesting() {
    let s = read("a || b");
    assert!(s.needs_parens());
    let s = read("(a || b; cd /x) && c | d");
    assert!(!s.needs_parens() && !s.leaks, "{s:?}");
    assert!(s.cmds[0].in_subshell && !s.cmds[0].top);
    let s = read("if a; then cd /x; fi && b");
    assert!(s.understood && s.leaks && !s.needs_parens(), "{s:?}");
    assert!(!s.is_and_chain());
    let s = read("{ cd /x; }");
    assert!(s.leaks && s.understood);
    let s = read("for p in a b; do echo $p; done");
    assert!(s.understood && s.leaks);
    assert_eq!(texts(&s), vec![vec!["echo", "$p"]]);
}

#[test]
fn what_reaches_past_the_script() {
    for leaky in [
        "cd /x && make",
        "export A=1",
        "A=1",
        "set -e; a",
        "a && exit 0",
        ". /etc/profile",
        "f() { a; }",
        "echo ${A:=1}",
        "command cd /x",
        "sudo true && umask 077",
        "A=1 :",
        "a && A=1 times",
    ] {
        assert!(read(leaky).leaks, "{leaky}");
    }
    for fine in [
        "A=1 make",
        "A=1 true",
        ":",
        "(cd /x && make)",
        "echo $(cd /x; pwd)",
        "env A=1 make",
        "rm -rf /x",
    ] {
        let s = read(fine);
        assert!(!s.leaks && s.understood, "{fine}: {s:?}");
    }
}

#[test]
fn comments_background_heredocs_and_odd_text() {
    assert!(read("a # b && c").comment);
    assert!(!read("echo a#b").comment);
    assert!(read("sleep 1 &").background);
    assert!(!read("a &> /dev/null").background);
    assert!(read("cat <<EOF").heredoc);
    assert!(!read("cat <<<word").heredoc);
    for odd in [
        "a &&",
        "a |",
        "(a",
        "a)",
        "'a",
        "\"a",
        "case x in a) b;; esac b",
        "case x in a) b",
        "case x in a b) c;; esac",
        "fi",
    ] {
        assert!(!read(odd).understood, "{odd}");
    }
    for any in [
        "", "\\", "$(", "`", "${", "<", "2>", "((", "))", "a=(", "&&&", "|&",
    ] {
        let _ = read(any);
    }
}

#[test]
fn substitutions_are_scripts_and_arithmetic_is_looked_into() {
    assert_eq!(substitutions("a$(b c)d`e;f`"), ["b c", "e;f"]);
    // Outermost first: the nested one is read with the script that holds it.
    assert_eq!(substitutions("$(a $(b))"), ["a $(b)"]);
    assert_eq!(substitutions("x$(echo y"), ["echo y"], "taken to the end");
    // `$(( … ))` is arithmetic expansion: no script, so `N/2` is no program run from a
    // path. The fixer's helper once read it as the subshell `(N/2)`; the lint's did not.
    assert!(substitutions("-j$((N/2))").is_empty());
    // The command substitutions an arithmetic expansion holds are scripts.
    assert_eq!(substitutions("$(( $(nproc) / 2 ))"), ["nproc"]);
    assert_eq!(substitutions("$((`nproc` + $(id -u)))"), ["nproc", "id -u"]);
}
