//! Unit tests of the parser: each Docker rule, its edge cases, spans, the dump, and inputs
//! that must not panic.

use serde_json::json;

use crate::*;

fn df(src: &str) -> Dockerfile {
    parse(src).unwrap_or_else(|e| panic!("{e}\n--- source ---\n{src}"))
}

/// The last instruction of `src`.
fn last(src: &str) -> Instruction {
    df(src).instructions.pop().expect("an instruction")
}

fn err(src: &str) -> ParseError {
    parse(src).expect_err("a parse error")
}

fn texts(words: &[Word]) -> Vec<&str> {
    words.iter().map(|w| w.text.as_str()).collect()
}

fn shell(src: &str) -> String {
    last(src).shell().expect("shell form").text.clone()
}

fn pairs(src: &str) -> Vec<(String, Option<String>)> {
    last(src)
        .pairs()
        .iter()
        .map(|p| (p.key.text.clone(), p.value.as_ref().map(|v| v.text.clone())))
        .collect()
}

fn kv(k: &str, v: &str) -> (String, Option<String>) {
    (k.to_string(), Some(v.to_string()))
}

// ---------------------------------------------------------------- directives

#[test]
fn directives_at_the_top_are_read_in_any_case() {
    let d = df("# syntax=docker/dockerfile:1\n#ESCAPE = `\n# Check=skip=all;error=true\nFROM a\n");
    let got: Vec<(&str, &str, usize)> = d
        .directives
        .iter()
        .map(|d| (d.name.as_str(), d.value.as_str(), d.line))
        .collect();
    assert_eq!(
        got,
        [
            ("syntax", "docker/dockerfile:1", 1),
            ("escape", "`", 2),
            ("check", "skip=all;error=true", 3)
        ]
    );
    assert_eq!(d.escape, '`');
    assert_eq!(
        d.directive("check").map(|d| d.value.as_str()),
        Some("skip=all;error=true")
    );
    // Directives are not comments of the first instruction.
    assert!(d.instructions[0].comments.is_empty());
}

#[test]
fn directives_allow_blanks_around_name_and_value_and_indentation() {
    let d = df("  #   escape   =   `   \nFROM a\n");
    assert_eq!(d.escape, '`');
    assert_eq!(d.directives[0].value, "`");
    assert_eq!(d.directives[0].span.start.column, 3);
}

#[test]
fn a_directive_after_a_comment_blank_line_or_instruction_is_a_comment() {
    for src in [
        "# hello\n# escape=`\nFROM a\n",
        "\n# escape=`\nFROM a\n",
        "FROM a\n# escape=`\nRUN b\n",
        // An unknown directive ends the directives too.
        "# foo=bar\n# escape=`\nFROM a\n",
        // So does a directive-looking line without a value.
        "# escape=\n# syntax=x\nFROM a\n",
    ] {
        let d = df(src);
        assert_eq!(d.escape, '\\', "{src:?}");
        assert!(d.directive("escape").is_none(), "{src:?}");
        let all: Vec<&str> = d
            .instructions
            .iter()
            .flat_map(|i| i.comments.iter().map(|c| c.text.as_str()))
            .collect();
        let second = src.lines().nth(1).and_then(|l| l.strip_prefix("# "));
        assert!(second.is_some_and(|s| all.contains(&s)), "{src:?}: {all:?}");
    }
}

#[test]
fn directive_errors_name_the_line() {
    let e = err("# escape=`\n# escape=\\\nFROM a\n");
    assert_eq!(e.kind, ParseErrorKind::DuplicateDirective("escape".into()));
    assert_eq!((e.line, e.column), (2, 1));
    let e = err("# syntax=a\n# SYNTAX=b\nFROM a\n");
    assert_eq!(e.kind, ParseErrorKind::DuplicateDirective("syntax".into()));
    let e = err("# escape=x\nFROM a\n");
    assert_eq!(e.kind, ParseErrorKind::InvalidEscape("x".into()));
    assert_eq!((e.line, e.column), (1, 10));
    assert_eq!(
        e.to_string(),
        "1:10: invalid escape token 'x' does not match ` or \\"
    );
    // Only blanks after `=`: Docker's lazy match takes the last blank as the value.
    let e = err("# escape= \nFROM a\n");
    assert_eq!(e.kind, ParseErrorKind::InvalidEscape(" ".into()));
}

#[test]
fn a_byte_order_mark_is_dropped_before_directives() {
    let d = df("\u{feff}# escape=`\r\nFROM a\r\nRUN x `\r\n  y\r\n");
    assert!(d.bom);
    assert_eq!(d.escape, '`');
    assert_eq!(d.directives[0].span.start.column, 1);
    assert_eq!(d.directives[0].span.start.offset, 3);
    assert_eq!(
        d.instructions[1].shell().map(|w| w.text.as_str()),
        Some("x   y")
    );
}

// ---------------------------------------------------------------- continuation

#[test]
fn continuation_keeps_the_rest_of_each_line_as_docker_does() {
    let src = "FROM a\nRUN echo one \\\n  && echo \"two  spaces\"   \\\n     && echo three\n";
    assert_eq!(
        shell(src),
        "echo one   && echo \"two  spaces\"        && echo three"
    );
    // No blank before the escape: the words run together, as in Docker.
    assert_eq!(shell("FROM a\nRUN echo a\\\nb\n"), "echo ab");
}

#[test]
fn blanks_after_the_escape_still_continue() {
    assert_eq!(shell("FROM a\nRUN a \\ \t \nb\n"), "a b");
}

#[test]
fn comments_and_empty_lines_inside_a_continuation_are_dropped() {
    let src = "FROM a\nRUN a \\\n  # one \\\n\n   \n  # two\n  b \\\n\tc\nRUN d\n";
    let d = df(src);
    let run = &d.instructions[1];
    assert_eq!(run.shell().map(|w| w.text.as_str()), Some("a   b \tc"));
    assert_eq!((run.line, run.end_line), (2, 8));
    let inner: Vec<(usize, &str)> = run
        .inner_comments
        .iter()
        .map(|c| (c.line, c.text.as_str()))
        .collect();
    assert_eq!(inner, [(3, "one \\"), (6, "two")]);
    assert_eq!(run.empty_continuation_lines, [4, 5]);
    assert_eq!(d.instructions[2].line, 9);
}

#[test]
fn an_empty_line_does_not_end_a_continuation() {
    // Docker joins across the empty line (with a warning): one instruction.
    let d = df("FROM a\nRUN a \\\n\nRUN b\n");
    assert_eq!(d.instructions.len(), 2);
    assert_eq!(
        d.instructions[1].shell().map(|w| w.text.as_str()),
        Some("a RUN b")
    );
}

#[test]
fn an_escaped_escape_at_the_end_does_not_continue() {
    let d = df("FROM a\nRUN echo a\\\\\nRUN b\n");
    assert_eq!(d.instructions.len(), 3);
    assert_eq!(
        d.instructions[1].shell().map(|w| w.text.as_str()),
        Some("echo a\\\\")
    );
}

#[test]
fn a_continuation_at_the_end_of_the_file_ends_the_instruction() {
    let run = last("FROM a\nRUN a \\\n");
    // The arguments are trimmed, as Docker trims them.
    assert_eq!(run.shell().map(|w| w.text.as_str()), Some("a"));
    assert_eq!((run.line, run.end_line), (2, 2));
    let run = last("FROM a\nRUN a \\\n# only a comment");
    assert_eq!((run.line, run.end_line), (2, 3));
}

#[test]
fn a_lone_escape_line_starts_an_instruction_on_the_next() {
    let d = df("FROM a\n\\\nRUN b\n");
    let run = &d.instructions[1];
    assert_eq!(run.keyword, Keyword::Run);
    assert_eq!((run.line, run.end_line), (2, 3));
    assert_eq!(run.keyword_word.span.start.line, 3);
}

#[test]
fn backtick_escape_continues_lines_and_leaves_backslashes_alone() {
    let src = "# escape=`\nFROM a\nRUN dir c:\\ `\n  && echo `\"x`\"\nCOPY a\\ b\\ c:\\dst\\\nENV P=c:\\tmp Q=a` b\n";
    let d = df(src);
    assert_eq!(
        d.instructions[1].shell().map(|w| w.text.as_str()),
        Some("dir c:\\   && echo `\"x`\"")
    );
    assert_eq!(
        texts(d.instructions[2].words()),
        ["a\\", "b\\", "c:\\dst\\"]
    );
    let env: Vec<String> = d.instructions[3]
        .pairs()
        .iter()
        .map(KeyValue::to_docker_string)
        .collect();
    assert_eq!(env, ["P=c:\\tmp", "Q=a` b"]);
    let q = &d.instructions[3].pairs()[1];
    assert_eq!(
        q.value.as_ref().map(|v| v.unquoted(d.escape)),
        Some(Ok("a b".to_string()))
    );
}

#[test]
fn backslash_continuation_is_plain_text_under_backtick_escape() {
    let d = df("# escape=`\nFROM a\nRUN a \\\nRUN b\n");
    assert_eq!(d.instructions.len(), 3);
}

#[test]
fn crlf_line_endings_are_line_endings() {
    let src = "FROM a\r\nRUN a \\\r\n  b\r\nCOPY <<EOF /x\r\nhi\r\nEOF\r\n";
    let d = df(src);
    assert_eq!(
        d.instructions[1].shell().map(|w| w.text.as_str()),
        Some("a   b")
    );
    let copy = &d.instructions[2];
    assert_eq!(texts(copy.words()), ["<<EOF", "/x"]);
    // Heredoc bodies are kept byte for byte, as Docker keeps them.
    assert_eq!(copy.heredocs[0].body, "hi\r\n");
    assert_eq!(copy.end_line, 6);
}

// ---------------------------------------------------------------- heredocs

#[test]
fn heredoc_bodies_follow_the_instruction_line() {
    let src = "FROM a\nRUN <<EOF\nset -e\n  echo hi # not a comment\n\nEOF\nRUN after\n";
    let d = df(src);
    let run = &d.instructions[1];
    assert_eq!(run.shell().map(|w| w.text.as_str()), Some("<<EOF"));
    assert_eq!(run.heredocs.len(), 1);
    let h = &run.heredocs[0];
    assert_eq!(h.name, "EOF");
    assert_eq!(h.body, "set -e\n  echo hi # not a comment\n\n");
    assert!(h.expand && !h.strip_tabs && h.fd.is_none());
    assert_eq!((run.line, run.end_line), (2, 6));
    assert_eq!(h.span.text(src), Some("<<EOF"));
    assert_eq!(h.body_span.start.line, 3);
    assert_eq!(h.body_span.end.line, 6);
    assert_eq!(
        run.span.text(src),
        Some("RUN <<EOF\nset -e\n  echo hi # not a comment\n\nEOF")
    );
    assert_eq!(d.instructions[2].line, 7);
}

#[test]
fn several_heredocs_on_one_line_take_their_bodies_in_order() {
    let src =
        "FROM a\nCOPY <<one 3<<\"two\" <<-'three' /dst/\n1\none\n2\ntwo\n\t3\n\tthree\nRUN x\n";
    let d = df(src);
    let copy = &d.instructions[1];
    let got: Vec<(&str, &str, bool, bool, Option<u64>)> = copy
        .heredocs
        .iter()
        .map(|h| {
            (
                h.name.as_str(),
                h.body.as_str(),
                h.expand,
                h.strip_tabs,
                h.fd,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("one", "1\n", true, false, None),
            ("two", "2\n", false, false, Some(3)),
            ("three", "\t3\n", false, true, None),
        ]
    );
    assert_eq!(copy.heredocs[2].content(), "3\n");
    assert_eq!(copy.end_line, 8);
    assert_eq!(d.instructions[2].line, 9);
}

#[test]
fn heredoc_delimiters_follow_docker_quoting() {
    let names = |line: &str| -> Vec<(String, bool)> {
        let src = format!("FROM a\n{line}\nX\neof\neo'f\none two\n$EOF\nEOF\nEOF2\n-EOF\n");
        // Whatever the delimiter, bodies are read until it; unterminated ones are errors, so
        // every delimiter used below appears as a line above.
        match parse(&src) {
            Ok(d) => d.instructions[1]
                .heredocs
                .iter()
                .map(|h| (h.name.clone(), h.expand))
                .collect(),
            Err(e) => panic!("{line}: {e}"),
        }
    };
    let n = |s: &str, e: bool| vec![(s.to_string(), e)];
    assert_eq!(names("RUN <<eo'f'"), n("eof", false));
    assert_eq!(names("RUN <<eo\\'f"), n("eo'f", true));
    assert_eq!(names("RUN <<'e'o\\'f"), n("eo'f", false));
    assert_eq!(names("RUN <<'one two'"), n("one two", false));
    assert_eq!(names("RUN <<$EOF"), n("$EOF", true));
    assert_eq!(names("RUN <<  EOF  > /foo"), n("EOF", true));
    assert_eq!(names("RUN << -EOF"), n("-EOF", true));
    assert_eq!(
        names("RUN <<EOF <<EOF2"),
        vec![("EOF".into(), true), ("EOF2".into(), true)]
    );
    // Not heredocs: quoted markers, `<<-` followed by a blank, `<<` glued to a word.
    assert_eq!(names("RUN '<<EOF'"), []);
    assert_eq!(names("RUN \"<<EOF\""), []);
    assert_eq!(names("RUN <<- EOF"), []);
    assert_eq!(names("RUN cat<<EOF"), []);
    assert_eq!(names("RUN <<"), []);
    // An unbalanced quote elsewhere on the line: Docker finds no heredocs at all.
    assert_eq!(names("RUN <<EOF 'open"), []);
}

#[test]
fn heredocs_only_where_docker_reads_them() {
    for src in [
        "FROM a\nUSER <<EOF\nEOF\n",
        "FROM a\nRUN [\"<<EOF\"]\nEOF\n",
        "FROM a\nCMD <<EOF\nEOF\n",
    ] {
        let d = df(src);
        assert!(d.instructions[1].heredocs.is_empty(), "{src:?}");
        // The EOF line is then read as an (unknown) instruction.
        assert_eq!(d.instructions.len(), 3, "{src:?}");
    }
}

#[test]
fn heredoc_after_a_continuation_and_in_onbuild() {
    let src = "FROM a\nRUN --mount=type=cache,target=/c \\\n  <<EOF python3\nprint(1)\nEOF\nONBUILD RUN <<-X\n\tmake\n\tX\n";
    let d = df(src);
    let run = &d.instructions[1];
    assert_eq!(run.heredocs[0].body, "print(1)\n");
    assert_eq!(run.shell().map(|w| w.text.as_str()), Some("<<EOF python3"));
    assert_eq!((run.line, run.end_line), (2, 5));
    let onbuild = &d.instructions[2];
    assert!(onbuild.heredocs.is_empty());
    let trigger = onbuild.trigger().expect("trigger");
    assert_eq!(trigger.heredocs[0].name, "X");
    assert_eq!(trigger.heredocs[0].content(), "make\n");
    assert_eq!((onbuild.end_line, trigger.end_line), (8, 8));
}

#[test]
fn an_unterminated_heredoc_is_an_error_at_its_marker() {
    let e = err("FROM a\nRUN echo <<EOF\nbody\n");
    assert_eq!(e.kind, ParseErrorKind::UnterminatedHeredoc("EOF".into()));
    assert_eq!((e.line, e.column), (2, 10));
    // A body line with trailing blanks does not end it.
    let e = err("FROM a\nRUN <<EOF\nEOF \n");
    assert_eq!(e.kind, ParseErrorKind::UnterminatedHeredoc("EOF".into()));
    // Tab-indented terminators only end `<<-` heredocs.
    assert!(parse("FROM a\nRUN <<EOF\n\tEOF\n").is_err());
    assert!(parse("FROM a\nRUN <<-EOF\n\tEOF\n").is_ok());
}

// ---------------------------------------------------------------- exec form and JSON

#[test]
fn exec_form_is_a_json_array_of_strings() {
    let run = last(
        r#"FROM a
RUN [ "sh", "-c" ,"echo \"hi\" \u00e9 \ud83d\ude00 \ud800 \/" ]"#,
    );
    assert!(run.is_exec_form() && !run.is_shell_form());
    assert_eq!(
        texts(run.exec().expect("exec")),
        ["sh", "-c", "echo \"hi\" é 😀 \u{fffd} /"]
    );
    let cmd = last("FROM a\nCMD []");
    assert_eq!(cmd.exec().map(<[Word]>::len), Some(0));
}

#[test]
fn text_that_is_not_a_json_array_falls_back_to_shell_form() {
    for body in [
        "[\"a\", b]",
        "[\"a\"] extra",
        "[\"a\",]",
        "['a']",
        "[\"a\"",
        "{\"a\": 1}",
        "[\"a\", 1e999]",
        "[\"tab\tinside\"]",
        "[\"bad \\x escape\"]",
    ] {
        let run = last(&format!("FROM a\nRUN {body}\n"));
        assert!(run.is_shell_form(), "{body}");
        assert_eq!(run.shell().map(|w| w.text.as_str()), Some(body));
    }
}

#[test]
fn a_json_array_with_other_values_is_an_error() {
    for (body, col) in [
        ("[1]", 6),
        ("[\"a\", null]", 11),
        ("[\"a\", [\"b\"]]", 11),
        ("[\"a\", {\"k\": [1, 2e3, true]}]", 11),
    ] {
        let e = err(&format!("FROM a\nCMD {body}\n"));
        assert_eq!(e.kind, ParseErrorKind::JsonNotStrings, "{body}");
        assert_eq!((e.line, e.column), (2, col), "{body}");
    }
    // Deeper than Go's nesting limit is not JSON at all: shell form.
    let deep = format!("[\"a\", {}{}]", "[".repeat(10_000), "]".repeat(10_000));
    assert!(last(&format!("FROM a\nCMD {deep}\n")).is_shell_form());
}

#[test]
fn copy_add_and_volume_take_json_or_words() {
    let d =
        df("FROM a\nCOPY [\"a b\", \"/c d/\"]\nADD \"a b\"  c\nVOLUME /a\t/b\nVOLUME [\"/v\"]\n");
    assert_eq!(texts(d.instructions[1].words()), ["a b", "/c d/"]);
    assert!(matches!(d.instructions[1].args, Args::Json(_)));
    // Docker does not group quoted words here.
    assert_eq!(texts(d.instructions[2].words()), ["\"a", "b\"", "c"]);
    assert_eq!(texts(d.instructions[3].words()), ["/a", "/b"]);
    assert_eq!(texts(d.instructions[4].words()), ["/v"]);
    // Exec/shell form is a RUN/CMD/ENTRYPOINT/SHELL notion.
    assert!(!d.instructions[1].is_exec_form());
}

#[test]
fn json_word_spans_cover_the_literals() {
    let src = "FROM a\nENTRYPOINT [\"a\", \\\n  \"b\"]\n";
    let ep = last(src);
    let words = ep.exec().expect("exec");
    assert_eq!(words[0].span.text(src), Some("\"a\""));
    assert_eq!(words[1].span.text(src), Some("\"b\""));
    assert_eq!(
        (words[1].span.start.line, words[1].span.start.column),
        (3, 3)
    );
}

// ---------------------------------------------------------------- flags

#[test]
fn flags_are_kept_generically() {
    let src = "FROM a\nRUN --mount=type=cache,target=/root/.cache \\\n    --mount=type=secret,id=tok --network=none --security=insecure pip install x\n";
    let run = last(src);
    let flags: Vec<String> = run.flags.iter().map(Flag::text).collect();
    assert_eq!(
        flags,
        [
            "--mount=type=cache,target=/root/.cache",
            "--mount=type=secret,id=tok",
            "--network=none",
            "--security=insecure"
        ]
    );
    assert_eq!(run.flags_named("mount").count(), 2);
    assert_eq!(
        run.flag("network").and_then(|f| f.value.as_deref()),
        Some("none")
    );
    assert_eq!(run.shell().map(|w| w.text.as_str()), Some("pip install x"));
    assert_eq!(
        run.flags[1].span.text(src),
        Some("--mount=type=secret,id=tok")
    );
    assert_eq!(run.flags[1].span.start.line, 3);

    let copy = last(
        "FROM a\nCOPY --link --chmod=0755 --chown=\"app user\":app --from=build --parents --exclude=*.md a /b\n",
    );
    let got: Vec<(&str, Option<&str>)> = copy
        .flags
        .iter()
        .map(|f| (f.name.as_str(), f.value.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("link", None),
            ("chmod", Some("0755")),
            ("chown", Some("app user:app")),
            ("from", Some("build")),
            ("parents", None),
            ("exclude", Some("*.md")),
        ]
    );
    assert_eq!(texts(copy.words()), ["a", "/b"]);
}

#[test]
fn flags_end_at_the_first_other_word_or_a_bare_double_dash() {
    let run = last("FROM a\nRUN echo --not-a-flag\n");
    assert!(run.flags.is_empty());
    assert_eq!(
        run.shell().map(|w| w.text.as_str()),
        Some("echo --not-a-flag")
    );
    let run = last("FROM a\nRUN --network=host -- --weird\n");
    assert_eq!(run.flags.len(), 1);
    assert_eq!(run.shell().map(|w| w.text.as_str()), Some("--weird"));
    let run = last("FROM a\nRUN -x\n");
    assert!(run.flags.is_empty());
    // Flags on any instruction, even ones that take none (Docker refuses them when building).
    let cmd = last("FROM a\nCMD --doit a b\n");
    assert_eq!(cmd.flags.len(), 1);
    // Escapes and empty quoted values.
    let add = last("FROM a\nADD --checksum=sha256:ab\\ c --keep-git-dir=\"\" x y\n");
    assert_eq!(add.flags[0].value.as_deref(), Some("sha256:ab c"));
    assert_eq!(add.flags[1].value.as_deref(), Some(""));
}

// ---------------------------------------------------------------- ENV, LABEL, ARG

#[test]
fn env_pairs_keep_quotes_and_escapes_as_written() {
    let p = pairs(
        r#"FROM a
ENV A=1 B="two words" C='single $X' D=a\ b E= F="x\"y""#,
    );
    assert_eq!(
        p,
        [
            kv("A", "1"),
            kv("B", "\"two words\""),
            kv("C", "'single $X'"),
            kv("D", "a\\ b"),
            kv("E", ""),
            kv("F", "\"x\\\"y\""),
        ]
    );
    let env = last("FROM a\nENV B=\"two words\" D=a\\ b");
    let unq: Vec<String> = env
        .pairs()
        .iter()
        .filter_map(|p| p.value.as_ref()?.unquoted('\\').ok())
        .collect();
    assert_eq!(unq, ["two words", "a b"]);
}

#[test]
fn env_legacy_form_takes_the_rest_of_the_line() {
    let env = last("FROM a\nENV LEGACY value with  spaces \"q\"\n");
    assert_eq!(env.pairs().len(), 1);
    let p = &env.pairs()[0];
    assert!(p.legacy);
    assert_eq!(p.key.text, "LEGACY");
    assert_eq!(
        p.value.as_ref().map(|v| v.text.as_str()),
        Some("value with  spaces \"q\"")
    );
    assert_eq!(p.to_docker_string(), "LEGACY=value with  spaces \"q\"");
    let label = last("FROM a\nLABEL maintainer someone@example.com\n");
    assert_eq!(pairs_of(&label), [kv("maintainer", "someone@example.com")]);
}

fn pairs_of(i: &Instruction) -> Vec<(String, Option<String>)> {
    i.pairs()
        .iter()
        .map(|p| (p.key.text.clone(), p.value.as_ref().map(|v| v.text.clone())))
        .collect()
}

#[test]
fn env_and_label_errors_are_dockers() {
    let e = err("FROM a\nENV ONLY\n");
    assert_eq!(e.kind, ParseErrorKind::MissingValue("ENV".into()));
    assert_eq!((e.line, e.column), (2, 5));
    let e = err("FROM a\nLABEL a=b c\n");
    assert_eq!(e.kind, ParseErrorKind::MissingEquals("c".into()));
    assert_eq!((e.line, e.column), (2, 11));
    assert_eq!(
        e.to_string(),
        "2:11: Syntax error - can't find = in \"c\". Must be of the form: name=value"
    );
    // ENV with nothing is left for the build to refuse.
    assert!(matches!(last("FROM a\nENV\n").args, Args::Empty));
}

#[test]
fn label_pairs_across_lines_with_spans() {
    let src =
        "FROM a\nLABEL org.opencontainers.image.title=\"My \\\n  app\" \\\n      version=1.0\n";
    let label = last(src);
    assert_eq!(
        pairs_of(&label),
        [
            kv("org.opencontainers.image.title", "\"My   app\""),
            kv("version", "1.0")
        ]
    );
    let p = &label.pairs()[0];
    assert_eq!(p.key.span.text(src), Some("org.opencontainers.image.title"));
    assert_eq!(
        p.value.as_ref().and_then(|v| v.span.text(src)),
        Some("\"My \\\n  app\"")
    );
    assert_eq!(label.pairs()[1].span.text(src), Some("version=1.0"));
}

#[test]
fn arg_names_and_defaults() {
    let p = pairs("ARG A\nARG B=1 C \"D\"=\"x y\" E=\nFROM a\n");
    assert!(p.is_empty(), "last is FROM");
    let d = df("ARG A\nARG B=1 C \"D\"=\"x y\" E=\nFROM a\n");
    assert_eq!(pairs_of(&d.instructions[0]), [("A".to_string(), None)]);
    assert_eq!(
        pairs_of(&d.instructions[1]),
        [
            kv("B", "1"),
            ("C".to_string(), None),
            kv("\"D\"", "\"x y\""),
            kv("E", "")
        ]
    );
    let dump = d.dump();
    assert_eq!(dump[1]["args"], json!(["B=1", "C", "\"D\"=\"x y\"", "E="]));
}

// ---------------------------------------------------------------- other instructions

#[test]
fn text_instructions_take_the_rest_of_the_line() {
    let d = df(
        "FROM a\nUSER app:app\nWORKDIR /a b/c\nSTOPSIGNAL SIGTERM\nMAINTAINER A <a@b.c>\nEXPOSE 80 443/tcp\n",
    );
    let rest: Vec<String> = d.instructions[1..5]
        .iter()
        .map(|i| match &i.args {
            Args::Text(w) => w.text.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(rest, ["app:app", "/a b/c", "SIGTERM", "A <a@b.c>"]);
    assert_eq!(texts(d.instructions[5].words()), ["80", "443/tcp"]);
}

#[test]
fn healthcheck_kinds_and_commands() {
    let d = df(
        "FROM a\nHEALTHCHECK NONE\nHEALTHCHECK --interval=5s --start-period=1s CMD curl -f http://x/ || exit 1\nHEALTHCHECK CMD [\"curl\", \"-f\"]\nHEALTHCHECK\n",
    );
    let none = &d.instructions[1];
    assert!(
        matches!(&none.args, Args::Healthcheck { kind, command } if kind.text == "NONE" && matches!(**command, Args::Empty))
    );
    let cmd = &d.instructions[2];
    assert_eq!(cmd.flags.len(), 2);
    assert!(cmd.is_shell_form());
    assert_eq!(
        cmd.shell().map(|w| w.text.as_str()),
        Some("curl -f http://x/ || exit 1")
    );
    assert_eq!(
        d.instructions[3].exec().map(texts),
        Some(vec!["curl", "-f"])
    );
    assert!(matches!(d.instructions[4].args, Args::Empty));
    let dump = d.dump();
    assert_eq!(dump[1]["args"], json!(["NONE"]));
    assert_eq!(dump[2]["args"], json!(["CMD"]));
    assert_eq!(dump[2]["shell"], json!("curl -f http://x/ || exit 1"));
    assert_eq!(dump[3]["args"], json!(["CMD", "curl", "-f"]));
    assert_eq!(dump[3]["json"], json!(true));
}

#[test]
fn shell_instruction_and_shell_form_commands() {
    let d = df(
        "FROM a\nSHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nENTRYPOINT exec app\nCMD [\"--help\"]\n",
    );
    assert_eq!(
        d.instructions[1].exec().map(texts),
        Some(vec!["/bin/bash", "-eo", "pipefail", "-c"])
    );
    assert!(d.instructions[2].is_shell_form());
    assert!(d.instructions[3].is_exec_form());
}

#[test]
fn onbuild_wraps_a_trigger() {
    let src =
        "FROM a\nONBUILD --x=1 RUN --mount=type=cache,target=/c make \\\n  install\nONBUILD\n";
    let d = df(src);
    let ob = &d.instructions[1];
    assert_eq!(ob.keyword, Keyword::Onbuild);
    assert_eq!(ob.flags[0].text(), "--x=1");
    let t = ob.trigger().expect("trigger");
    assert_eq!(t.keyword, Keyword::Run);
    assert_eq!(t.flags[0].text(), "--mount=type=cache,target=/c");
    assert_eq!(t.shell().map(|w| w.text.as_str()), Some("make   install"));
    assert_eq!(
        t.span.text(src),
        Some("RUN --mount=type=cache,target=/c make \\\n  install")
    );
    assert_eq!((t.line, t.end_line), (2, 3));
    assert_eq!(
        t.original,
        "RUN --mount=type=cache,target=/c make   install"
    );
    assert!(matches!(d.instructions[2].args, Args::Empty));
    let walked: Vec<&str> = d.walk().map(Instruction::name).collect();
    assert_eq!(walked, ["from", "onbuild", "run", "onbuild"]);
}

#[test]
fn onbuild_chains_are_parsed_up_to_a_depth() {
    let ok = last("FROM a\nONBUILD ONBUILD RUN x\n");
    assert_eq!(
        ok.trigger()
            .and_then(Instruction::trigger)
            .map(Instruction::name),
        Some("run")
    );
    let deep = format!("FROM a\n{}RUN x\n", "ONBUILD \\\n".repeat(100_000));
    assert_eq!(err(&deep).kind, ParseErrorKind::TooDeep);
}

#[test]
fn keywords_in_any_case_and_unknown_ones_are_kept() {
    let d = df("from a\nRun echo\nfrobnicate --x the thing\nEOF\n");
    assert_eq!(d.instructions[0].keyword, Keyword::From);
    assert_eq!(d.instructions[1].keyword_word.text, "Run");
    let u = &d.instructions[2];
    assert_eq!(u.keyword, Keyword::Unknown("frobnicate".into()));
    assert!(!u.keyword.is_known());
    assert_eq!(u.flags[0].text(), "--x");
    assert!(matches!(&u.args, Args::Unknown(w) if w.text == "the thing"));
    assert_eq!(d.instructions[3].name(), "eof");
}

#[test]
fn the_keyword_ends_at_ascii_blanks_only() {
    // Docker splits the keyword off at [\t\v\f\r ]; a no-break space keeps it one word.
    let i = last("FROM a\nRUN\u{a0}x\n");
    assert_eq!(i.keyword, Keyword::Unknown("run\u{a0}x".into()));
    let i = last("FROM a\nRUN\tx\n");
    assert_eq!(i.keyword, Keyword::Run);
}

// ---------------------------------------------------------------- stages

#[test]
fn stages_and_references() {
    let src = "ARG BASE=debian\nFROM --platform=$BUILDPLATFORM ${BASE} AS Build\nRUN make\nFROM build as test\nRUN test\nFROM scratch\nCOPY --from=BUILD /a /a\nCOPY --from=1 /b /b\nCOPY --from=busybox /bin/sh /sh\nCOPY --from=7 /c /c\nCOPY /d /d\n";
    let d = df(src);
    let stages = d.stages();
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[0].name.as_deref(), Some("build"));
    assert_eq!(stages[0].base, "${BASE}");
    assert_eq!(stages[0].platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(stages[0].instructions, 2..3);
    assert_eq!(stages[1].name.as_deref(), Some("test"));
    assert_eq!(stages[1].base_stage, Some(0));
    assert_eq!(stages[2].name, None);
    assert_eq!(stages[2].base, "scratch");
    assert_eq!(stages[2].base_stage, None);
    assert_eq!(stages[2].span.start.line, 6);
    let refs: Vec<Option<StageRef>> = d.instructions[6..].iter().map(|i| d.copy_from(i)).collect();
    assert_eq!(
        refs,
        [
            Some(StageRef::Stage(0)),
            Some(StageRef::Stage(1)),
            Some(StageRef::Image("busybox".into())),
            Some(StageRef::InvalidIndex(7)),
            None
        ]
    );
    assert_eq!(d.stage_of(0), None);
    assert_eq!(d.stage_of(2), Some(0));
    assert_eq!(d.stage_of(10), Some(2));
    assert_eq!(d.stage_of(11), None);
}

#[test]
fn a_base_only_names_an_earlier_stage() {
    let d = df("FROM later AS first\nFROM alpine AS later\n");
    assert_eq!(d.stages()[0].base_stage, None);
    assert_eq!(d.resolve_stage("LATER"), StageRef::Stage(1));
}

// ---------------------------------------------------------------- comments

#[test]
fn comments_belong_to_the_next_instruction() {
    let src = "# syntax=x\n# header\n\nFROM a\n# first\n#\n# hadolint ignore=DL3008\n# headroom ignore=merge-runs\nRUN apt-get install x\n  # indented\nRUN b\n# the end\n";
    let d = df(src);
    assert!(
        d.instructions[0]
            .comments
            .iter()
            .any(|c| c.text == "header")
    );
    let run = &d.instructions[1];
    let all: Vec<&str> = run.comments.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        all,
        [
            "first",
            "",
            "hadolint ignore=DL3008",
            "headroom ignore=merge-runs"
        ]
    );
    let adjacent: Vec<usize> = run.adjacent_comments().iter().map(|c| c.line).collect();
    assert_eq!(adjacent, [5, 6, 7, 8]);
    assert_eq!(
        run.docker_comments(),
        ["hadolint ignore=DL3008", "headroom ignore=merge-runs"]
    );
    assert_eq!(
        run.comments[2].span.text(src),
        Some("# hadolint ignore=DL3008")
    );
    assert_eq!(d.instructions[2].comments[0].text, "indented");
    assert_eq!(d.trailing_comments.len(), 1);
    assert_eq!(d.trailing_comments[0].line, 12);
}

#[test]
fn adjacent_comments_stop_at_an_empty_line() {
    let d = df("FROM a\n# far\n\n# near\nRUN x\n");
    let near: Vec<&str> = d.instructions[1]
        .adjacent_comments()
        .iter()
        .map(|c| c.text.as_str())
        .collect();
    assert_eq!(near, ["near"]);
    // Docker's own list does not stop at empty lines.
    assert_eq!(d.instructions[1].docker_comments(), ["far", "near"]);
}

// ---------------------------------------------------------------- spans

#[test]
fn spans_point_into_the_source() {
    let src = "FROM a\n  run  --network=none   echo \"héllo\" \\\n   wörld  \nCMD [\"x\"]\n";
    let d = df(src);
    let run = &d.instructions[1];
    assert_eq!(run.keyword_word.span.text(src), Some("run"));
    assert_eq!(
        (
            run.keyword_word.span.start.line,
            run.keyword_word.span.start.column
        ),
        (2, 3)
    );
    assert_eq!(
        run.span.text(src),
        Some("run  --network=none   echo \"héllo\" \\\n   wörld  ")
    );
    assert_eq!(
        src.get(run.whole_lines.clone()),
        Some("  run  --network=none   echo \"héllo\" \\\n   wörld  \n")
    );
    let sh = run.shell().expect("shell");
    assert_eq!(sh.text, "echo \"héllo\"    wörld");
    assert_eq!(sh.span.text(src), Some("echo \"héllo\" \\\n   wörld"));
    assert_eq!((sh.span.end.line, sh.span.end.column), (3, 9));
    assert_eq!(
        run.original,
        "run  --network=none   echo \"héllo\"    wörld  "
    );
    let cmd = &d.instructions[2];
    assert_eq!((cmd.span.start.line, cmd.span.start.column), (4, 1));
    assert_eq!(src.get(cmd.whole_lines.clone()), Some("CMD [\"x\"]\n"));
}

#[test]
fn columns_count_characters() {
    let src = "FROM a\nLABEL é=ü ø=1\n";
    let label = last(src);
    let p = &label.pairs()[1];
    assert_eq!((p.key.span.start.column, p.key.span.start.offset), (11, 19));
}

// ---------------------------------------------------------------- errors and limits

#[test]
fn files_without_instructions_are_errors() {
    for src in [
        "",
        "\n\n",
        "# only\n# comments\n",
        "\u{feff}",
        "# syntax=x\n",
    ] {
        assert_eq!(err(src).kind, ParseErrorKind::NoInstructions, "{src:?}");
    }
}

#[test]
fn lines_longer_than_dockers_buffer_are_errors() {
    let ok = format!("FROM a\nRUN {}\n", "x".repeat(65535 - 4));
    assert!(parse(&ok).is_ok());
    let long = format!("FROM a\nRUN {}\n", "x".repeat(65535 - 3));
    let e = err(&long);
    assert_eq!(e.kind, ParseErrorKind::LineTooLong);
    assert_eq!(e.line, 2);
}

#[test]
fn bytes_that_are_not_utf8_are_kept_as_docker_keeps_them() {
    // BuildKit reads bytes: a Latin-1 byte in a comment or a script is no error.
    let src = b"FROM a\n# caf\xe9\nRUN echo caf\xe9 \xff\n";
    let df = parse_bytes(src).expect("Docker parses it");
    let text = crate::decode_bytes(src);
    assert_eq!(&*crate::encode_text(&text), src);
    let run = &df.instructions[1];
    let shell = run.shell().expect("shell form");
    assert_eq!(
        crate::encode_text(&shell.text).as_ref(),
        b"echo caf\xe9 \xff"
    );
    // One column per byte that is not UTF-8.
    assert_eq!(
        run.span.end.column,
        "RUN echo caf\u{e9} \u{ff}".chars().count() + 1
    );
    assert_eq!(df.instructions[1].comments[0].line, 2);
    // Valid UTF-8 is borrowed as it is.
    assert!(matches!(
        crate::decode_bytes(b"FROM a\n"),
        std::borrow::Cow::Borrowed(_)
    ));
    // A keyword with such a byte is an unknown instruction, as in Docker.
    let df = parse_bytes(b"FROM a\nRUN\xe9 x\n").expect("parses");
    assert!(!df.instructions[1].keyword.is_known());
}

// ---------------------------------------------------------------- dump

#[test]
fn dump_has_the_documented_shape() {
    let src = "FROM --platform=linux/amd64 debian:12 AS build\nRUN --mount=type=cache,target=/root/.cache pip install torch \\\n  && rm -rf /tmp/x\nCMD [\"python\", \"-m\", \"app\"]\nENV A=1 B=\"two words\"\nCOPY <<EOF /etc/motd\nhello\nEOF\nONBUILD RUN make\nUSER app\nRUN\n";
    let dump = df(src).dump();
    assert_eq!(
        dump,
        json!([
            {"line": 1, "end_line": 1, "instruction": "from", "flags": ["--platform=linux/amd64"],
             "args": ["debian:12", "AS", "build"]},
            {"line": 2, "end_line": 3, "instruction": "run", "flags": ["--mount=type=cache,target=/root/.cache"],
             "shell": "pip install torch   && rm -rf /tmp/x"},
            {"line": 4, "end_line": 4, "instruction": "cmd", "flags": [], "args": ["python", "-m", "app"], "json": true},
            {"line": 5, "end_line": 5, "instruction": "env", "flags": [], "args": ["A=1", "B=\"two words\""]},
            {"line": 6, "end_line": 8, "instruction": "copy", "flags": [], "args": ["<<EOF", "/etc/motd"],
             "heredocs": [{"name": "EOF", "body": "hello\n", "strip_tabs": false, "expand": true}]},
            {"line": 9, "end_line": 9, "instruction": "onbuild", "flags": [],
             "trigger": {"line": 9, "end_line": 9, "instruction": "run", "flags": [], "shell": "make"}},
            {"line": 10, "end_line": 10, "instruction": "user", "flags": [], "args": ["app"]},
            {"line": 11, "end_line": 11, "instruction": "run", "flags": [], "args": []},
        ])
    );
}

#[test]
fn the_ast_serializes() {
    let d = df("FROM a\nRUN [\"x\"]\n");
    let v = serde_json::to_value(&d).expect("serializes");
    assert_eq!(v["instructions"][1]["keyword"], json!("run"));
    assert_eq!(v["instructions"][1]["args"]["form"], json!("json"));
}

// ---------------------------------------------------------------- never panic

/// Dockerfiles that exercise every path; their prefixes and truncations must not panic.
const TRICKY: &[&str] = &[
    "\u{feff}# syntax=docker/dockerfile:1\n# escape=`\n# check=skip=all\nFROM a AS b\nRUN x `\n  # c\n\n  y\nCOPY <<EOF <<-\"E2\" /d\nbody\nEOF\n\tb2\n\tE2\n",
    "FROM a\r\nENV A=\"b c\" D='e f' \\\r\n  G=h\\ i\r\nLABEL x y z\r\nARG Q=\"\" R\r\n",
    "FROM a\nRUN [\"a\", \"b\\u00e9\\ud83d\\ude00\"]\nCMD [1, {\"x\": [null, true, -1.5e3]}]\n",
    "FROM a\nONBUILD ONBUILD RUN <<X\nX\nHEALTHCHECK --interval=1s CMD [\"a\"]\nHEALTHCHECK NONE\n",
    "FROM a\nRUN --mount=type=cache,target=/x \"--q\" -- y\nADD --chown=\"a b\":c `x\\ y' \"z\n",
    "FROM é\nRUN ü \\\n\u{a0}ø ${a:-${b:+c}} $'x' \"${d/e/f}\" <<  ÉOF\nbody é\nÉOF\n",
    "\\\n\\\n# x\nFROM\nRUN\nENV\nLABEL\nONBUILD\nHEALTHCHECK\nEXPOSE\nVOLUME []\nSHELL\nCOPY\n",
    "FROM a\nRUN 3<<'a b' 4<<eo\\'f <<$V\na b\neo'f\n$V\n",
    "FROM a\nCOPY [\"a\", \"b\"]  \nRUN [\"\\ud800\\u0041\", \"\\\"\"]\nENV x=\"unterminated\nLABEL 'a\n",
];

fn check_spans(src: &str, d: &Dockerfile) {
    let check = |span: &Span, what: &str| {
        assert!(span.start.offset <= span.end.offset, "{what}: {span:?}");
        assert!(
            span.text(src).is_some(),
            "{what}: {span:?} not on char boundaries"
        );
        assert!(
            span.start.line >= 1 && span.start.column >= 1,
            "{what}: {span:?}"
        );
    };
    for inst in d.walk() {
        check(&inst.span, "instruction");
        check(&inst.keyword_word.span, "keyword");
        assert!(src.get(inst.whole_lines.clone()).is_some());
        assert!(inst.line <= inst.end_line);
        for f in &inst.flags {
            check(&f.span, "flag");
        }
        let mut words: Vec<&Word> = Vec::new();
        let mut args = &inst.args;
        if let Args::Healthcheck { kind, command } = args {
            words.push(kind);
            args = command;
        }
        match args {
            Args::Json(w) | Args::Words(w) => words.extend(w),
            Args::Shell(w) | Args::Text(w) | Args::Unknown(w) => words.push(w),
            Args::Pairs(p) => {
                for p in p {
                    check(&p.span, "pair");
                    words.push(&p.key);
                    words.extend(&p.value);
                }
            }
            _ => {}
        }
        for w in words {
            check(&w.span, "word");
        }
        for h in &inst.heredocs {
            check(&h.span, "heredoc");
            check(&h.body_span, "heredoc body");
        }
        for c in inst.comments.iter().chain(&inst.inner_comments) {
            check(&c.span, "comment");
        }
    }
}

fn parse_checked(src: &str) {
    if let Ok(d) = parse(src) {
        check_spans(src, &d);
        let _ = d.dump();
        let _ = d.stages();
    }
}

#[test]
fn every_prefix_and_truncation_parses_or_errs_without_panic() {
    for src in TRICKY {
        let ends: Vec<usize> = src
            .char_indices()
            .map(|(i, _)| i)
            .chain([src.len()])
            .collect();
        for &end in &ends {
            let Some(prefix) = src.get(..end) else {
                continue;
            };
            parse_checked(prefix);
            let Some(suffix) = src.get(end..) else {
                continue;
            };
            parse_checked(suffix);
        }
        // And with every line ending turned into CRLF, and with backtick escapes.
        parse_checked(&src.replace('\n', "\r\n"));
        parse_checked(&format!("# escape=`\n{}", src.replace('\\', "`")));
    }
}

/// A tiny xorshift generator: reproducible randomness without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3000 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = parse_bytes(&bytes);
        // Mostly-ASCII text gets much further into the parser than random bytes.
        let text: String = bytes
            .iter()
            .map(|b| char::from(b % 96 + 32))
            .map(|c| if c == '\u{7f}' { '\n' } else { c })
            .collect();
        parse_checked(&format!("FROM a\n{text}"));
    }
}

#[test]
fn random_token_soup_never_panics() {
    const TOKENS: &[&str] = &[
        "FROM",
        "RUN",
        "COPY",
        "ADD",
        "ENV",
        "LABEL",
        "ARG",
        "ONBUILD",
        "HEALTHCHECK",
        "CMD",
        "SHELL",
        "EXPOSE",
        "VOLUME",
        "USER",
        "WORKDIR",
        "NONE",
        "AS",
        " ",
        "  ",
        "\t",
        "\n",
        "\r\n",
        "\\",
        "`",
        "\\\n",
        "`\n",
        "#",
        "# escape=`\n",
        "# syntax=x\n",
        "=",
        "\"",
        "'",
        "[",
        "]",
        ",",
        "{",
        "}",
        ":",
        "\"a\"",
        "1e999",
        "null",
        "--",
        "--mount=",
        "--from=0",
        "<<",
        "<<-",
        "<<EOF",
        "<<'EOF'",
        "3<<X",
        "EOF",
        "X",
        "$",
        "${",
        "${a:-",
        "}",
        "é",
        "\u{a0}",
        "\u{feff}",
        "\\u00e9",
        "\\ud800",
        "a",
        "b=c",
        "/x",
    ];
    let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
    for _ in 0..5000 {
        let n = rng.below(40);
        let src: String = (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        parse_checked(&src);
        parse_checked(&format!("FROM a\n{src}"));
    }
}
