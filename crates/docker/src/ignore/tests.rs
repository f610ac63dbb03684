use super::*;

fn rules(text: &str) -> DockerIgnore {
    DockerIgnore::parse(text, ".dockerignore").expect("valid patterns")
}

/// (ignore file, path, excluded?)
const CASES: &[(&str, &str, bool)] = &[
    // No rules.
    ("", "a", false),
    // Plain names, and directories excluding their contents.
    ("a", "a", true),
    ("a", "a/b/c", true),
    ("a", "b", false),
    ("a", "ab", false),
    ("a", "b/a", false),
    // `*` stays within one component.
    ("*.md", "README.md", true),
    ("*.md", "docs/a.md", false),
    ("*.md\n!README.md", "README.md", false),
    ("*.md\n!README.md", "CHANGES.md", true),
    ("*.md\n!README.md", "docs/README.md", false),
    ("a/*", "a", false),
    ("a/*", "a/b", true),
    ("a/*", "a/b/c", true),
    ("*/temp*", "x/temporary", true),
    ("*/temp*", "x/y/temp", false),
    ("*/temp*", "temp", false),
    ("*/*/temp*", "x/y/temp1", true),
    ("*/*/temp*", "x/temp1", false),
    ("*", "anything", true),
    ("*", "a/b", true),
    // `?` is one character, never `/`.
    ("temp?", "tempa", true),
    ("temp?", "temp", false),
    ("a?b", "axb", true),
    ("a?b", "a/b", false),
    // `**`.
    ("**/*.pyc", "a.pyc", true),
    ("**/*.pyc", "x/y/a.pyc", true),
    ("**/*.pyc", "a.pyc.txt", false),
    ("**/*.pyc", "x/a.py", false),
    ("**/*.pyc", "cache.pyc/inner", true),
    ("docs/**", "docs", false),
    ("docs/**", "docs/a", true),
    ("docs/**", "docs/a/b", true),
    ("docs/**", "docsx", false),
    ("docs/**\n!docs/keep/**", "docs/keep/a", false),
    ("docs/**\n!docs/keep/**", "docs/keep/a/b", false),
    ("docs/**\n!docs/keep/**", "docs/keep", true),
    ("docs/**\n!docs/keep/**", "docs/other", true),
    ("a/**/b", "a/b", true),
    ("a/**/b", "a/x/b", true),
    ("a/**/b", "a/x/y/b", true),
    ("a/**/b", "a/b/c", true),
    ("a/**/b", "a/xb", false),
    ("a/**/b", "b", false),
    ("a/**/b", "x/a/b", false),
    ("**", "a", true),
    ("**", "a/b/c", true),
    ("**\n!keep", "keep", false),
    ("**\n!keep", "keep/x", false),
    ("**\n!keep", "other", true),
    ("**/foo", "foo", true),
    ("**/foo", "a/b/foo", true),
    ("**/foo", "afoo", false),
    ("**/foo", "foo/bar", true),
    // patternmatcher's shortcuts: `**foo` is a plain suffix test, `foo**` a prefix test.
    ("**foo", "afoo", true),
    ("**foo", "a/bfoo", true),
    ("foo**", "foobar", true),
    ("foo**", "foo/x", true),
    ("foo**", "fo", false),
    // `.` in a regular expression does not match a newline; `**` in the middle uses it.
    ("a/**/b", "a/x\ny/b", false),
    // Character classes.
    ("[a-c]x", "ax", true),
    ("[a-c]x", "bx", true),
    ("[a-c]x", "dx", false),
    ("[a-c]x", "x", false),
    ("[^a-c]x", "dx", true),
    ("[^a-c]x", "ax", false),
    ("[!a]x", "!x", true),
    ("[!a]x", "ax", true),
    ("[!a]x", "bx", false),
    ("[\\]]", "]", true),
    ("[a\\-z]", "-", true),
    ("[a\\-z]", "b", false),
    ("[é-ë]lan", "élan", true),
    // Escapes.
    ("\\*literal", "*literal", true),
    ("\\*literal", "xliteral", false),
    ("a\\?", "a?", true),
    ("a\\?", "ab", false),
    // Characters special to regular expressions but not to patterns are literal.
    ("a.b", "a.b", true),
    ("a.b", "axb", false),
    ("a+(b)|{c}$", "a+(b)|{c}$", true),
    ("a.*", "a.txt", true),
    ("a.*", "ab", false),
    // An unescaped `^` is literal in a pattern without wildcards and an anchor otherwise.
    ("^a", "^a", true),
    ("^a", "a", false),
    ("^a*", "abc", true),
    ("^a*", "^abc", false),
    // Cleaning: leading `/`, `./`, trailing `/`, `..`, doubled slashes.
    ("/leading", "leading", true),
    ("/leading", "x/leading", false),
    ("./a", "a", true),
    ("build/", "build", true),
    ("build/", "build/out.o", true),
    ("a//b", "a/b", true),
    ("a/../b", "b", true),
    ("a/../b", "a/b", false),
    ("../x", "x", false),
    ("/../x", "x", true),
    (".", "a", false),
    ("*\n!./a", "a", false),
    ("!./a\n*", "a", true),
    // Comments and blank lines; a `#` after whitespace is a pattern.
    ("# comment\n\n   \nfoo", "foo", true),
    ("# foo", "# foo", false),
    ("  # foo", "# foo", true),
    ("  foo  ", "foo", true),
    ("! foo\nfoo", "foo", true),
    ("foo\n! foo", "foo", false),
    ("\u{feff}foo", "foo", true),
    ("foo\r\nbar\r\n", "bar", true),
    ("foo\r\nbar\r", "bar", true),
    // The last matching pattern wins.
    ("!a.txt\n*.txt", "a.txt", true),
    ("*.txt\n!a.txt", "a.txt", false),
    ("*.txt\n!a.txt\na.txt", "a.txt", true),
    ("a\n!a/b", "a", true),
    ("a\n!a/b", "a/b", false),
    ("a\n!a/b", "a/b/c", false),
    ("a\n!a/b", "a/c", true),
    // An exception for an excluded parent re-includes the children, through the parent.
    ("a\n!a", "a/b", false),
    // ...but a walk only carries down a rule that was looked at for the parent: Docker's
    // `MatchesUsingParentResults` leaves these excluded, because when `a` was decided
    // nothing was excluded yet, so `!a` was skipped (`MatchesOrParentMatches` would
    // include them).
    ("a/*\n!a", "a/b", true),
    ("a/b\n!a", "a/b", true),
    ("a/b\n!a", "a/b/c", true),
    ("a/b\n!a", "a", false),
];

#[test]
fn table() {
    let mut failures = Vec::new();
    for (text, path, expected) in CASES {
        let got = rules(text).is_excluded(path);
        if got != *expected {
            failures.push(format!("{text:?} on {path:?}: got {got}, want {expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn paths_are_cleaned_before_matching() {
    let r = rules("a/b");
    assert!(r.is_excluded("./a/b"));
    assert!(r.is_excluded("/a/b"));
    assert!(r.is_excluded("a/b/"));
    assert!(r.is_excluded("a//b/c"));
    assert!(!r.is_excluded(""));
    assert!(!r.is_excluded("."));
    assert!(!rules("*").is_excluded("/"));
}

#[test]
fn normalised_patterns() {
    let r = rules("# c\n/a/\n./b/../c\n!  /d/e/\n**/\n");
    let got: Vec<String> = r.patterns().collect();
    assert_eq!(got, ["a", "c", "!d/e", "**"]);
    assert!(r.has_exceptions());
    assert!(!rules("a").has_exceptions());
    assert!(rules("# only a comment\n\n").is_empty());
}

#[test]
fn errors_name_origin_and_line() {
    for (text, line) in [
        ("ok\n[abc", 2),
        ("ok\n\n# c\n!", 4),
        ("!/", 1),
        ("a\\", 1),
        ("[]", 1),
        ("[a-]", 1),
        ("[-a]", 1),
        ("[^]", 1),
        ("[z-a]", 1),
        ("x\n[a", 2),
        ("[a-\\", 1),
    ] {
        let err = DockerIgnore::parse(text, "ctx/.dockerignore")
            .expect_err(&format!("{text:?} should be refused"));
        assert_eq!(err.origin, "ctx/.dockerignore");
        assert_eq!(err.line, line, "{text:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("ctx/.dockerignore:{line}: ")),
            "{message}"
        );
    }
}

#[test]
fn never_panics() {
    let alphabet = [
        'a', '/', '*', '?', '[', ']', '^', '!', '\\', '-', '.', ' ', 'é', '\n',
    ];
    // Every pattern of up to four characters from the alphabet, against a few paths.
    let mut patterns = vec![String::new()];
    for _ in 0..4 {
        let mut longer = Vec::new();
        for p in &patterns {
            for c in alphabet {
                longer.push(format!("{p}{c}"));
            }
        }
        patterns.extend(longer);
    }
    for p in &patterns {
        if let Ok(mut r) = DockerIgnore::parse(p, "fuzz") {
            for path in ["a", "a/b", "!", "é/a", "[", "", "a/../b", "*"] {
                r.is_excluded(path);
                r.can_skip_dir(path);
            }
            r.must_include("a/b");
        }
    }
}

#[test]
fn walk_state_matches_is_excluded() {
    let r = rules("a/b\n!a\nx/**\n!x/y/**\n*.md\n!README.md");
    let root = r.root_state();
    let (ea, sa) = r.check("a", &root);
    let (eab, sab) = r.check("a/b", &sa);
    let (eabc, _) = r.check("a/b/c", &sab);
    assert_eq!(
        (ea, eab, eabc),
        (
            r.is_excluded("a"),
            r.is_excluded("a/b"),
            r.is_excluded("a/b/c")
        )
    );
    // A stale state (from before rules were added) is tolerated.
    let mut grown = r.clone();
    grown.must_include("a/b");
    assert!(!grown.check("a/b", &sa).0);
}

#[test]
fn directory_pruning_is_conservative() {
    let r = rules("node_modules\n*.md\n!README.md");
    assert!(r.can_skip_dir("node_modules"));
    assert!(!r.can_skip_dir("src"), "not excluded");

    let r = rules("docs\n!docs/keep/**");
    assert!(!r.can_skip_dir("docs"));
    assert!(r.may_include_below("docs"));
    assert!(!r.may_include_below("docsx"));

    let r = rules("*\n!**/keep");
    assert!(
        !r.can_skip_dir("anything"),
        "a wildcard exception may match below"
    );

    let r = rules("a\n!ab");
    assert!(r.can_skip_dir("a"));

    let r = rules("**\n!src/*.rs");
    assert!(!r.can_skip_dir("src"));
    assert!(r.can_skip_dir("target"));
    assert!(!r.can_skip_dir("."), "the root is never excluded");
}

#[test]
fn must_include_adds_an_exact_exception_only_when_needed() {
    let mut r = rules("*\n!src");
    r.must_include("Dockerfile");
    r.must_include("src/Dockerfile");
    assert!(!r.is_excluded("Dockerfile"));
    assert!(r.is_excluded("Dockerfile2"));
    assert_eq!(
        r.patterns().collect::<Vec<_>>(),
        ["*", "!src", "!Dockerfile"]
    );

    let mut r = rules("docker");
    r.must_include("docker/Dockerfile");
    assert!(!r.is_excluded("docker/Dockerfile"));
    assert!(r.is_excluded("docker/other"));
    assert!(!r.can_skip_dir("docker"));

    // Literal even with pattern characters in the name.
    let mut r = rules("*");
    r.must_include("we[ird]*");
    assert!(!r.is_excluded("we[ird]*"));
    assert!(r.is_excluded("weird"));

    // Paths outside the context are ignored.
    let mut r = rules("*");
    r.must_include("../Dockerfile");
    assert_eq!(r.patterns().count(), 1);
}

#[test]
fn clean_matches_go() {
    for (input, want) in [
        ("", "."),
        (".", "."),
        ("/", "/"),
        ("a/", "a"),
        ("./a", "a"),
        ("a//b", "a/b"),
        ("a/./b", "a/b"),
        ("a/../b", "b"),
        ("a/..", "."),
        ("../a", "../a"),
        ("../../a/b/..", "../../a"),
        ("/../a", "/a"),
        ("/a/b/../../..", "/"),
        ("!..", "!.."),
    ] {
        assert_eq!(clean(input), want, "{input:?}");
    }
}
