use super::*;

fn messages(src: &str) -> Vec<String> {
    validate(&crate::parse(src).expect("parses"))
        .into_iter()
        .map(|i| i.to_string())
        .collect()
}

#[test]
fn buildkit_refusals_have_its_messages_and_places() {
    let cases: &[(&str, &str)] = &[
        (
            "FROM a\nRUNN x\n",
            "2:1: unknown instruction: RUNN (did you mean RUN?)",
        ),
        (
            "FROM a\nrunn x\n",
            "2:1: unknown instruction: runn (did you mean run?)",
        ),
        (
            "FROM a\nFROBNICATE x\n",
            "2:1: unknown instruction: FROBNICATE",
        ),
        (
            "FROM a\nCOPY onlyone\n",
            "2:1: COPY requires at least two arguments, but only one was provided. \
             Destination could not be determined",
        ),
        (
            "FROM a\nADD [\"onlyone\"]\n",
            "2:1: ADD requires at least two arguments, but only one was provided. \
             Destination could not be determined",
        ),
        (
            "FROM a b\n",
            "1:1: FROM requires either one or three arguments",
        ),
        (
            "FROM a XX b\n",
            "1:1: FROM requires either one or three arguments",
        ),
        ("FROM\n", "1:1: FROM requires either one or three arguments"),
        (
            "FROM a AS 1x\n",
            "1:11: invalid name for build stage: \"1x\", name can't start with a number or \
             contain symbols",
        ),
        ("FROM a\nRUN --foo true\n", "2:5: unknown flag: --foo"),
        (
            "FROM a\nRUN --mout=type=cache true\n",
            "2:5: unknown flag: --mout (did you mean mount?)",
        ),
        ("FROM a\nCOPY --bogus . /x\n", "2:6: unknown flag: --bogus"),
        ("FROM --foo=1 a\n", "1:6: unknown flag: --foo"),
        (
            "FROM a\nONBUILD FROM x\n",
            "2:9: FROM isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM a\nonbuild maintainer x\n",
            "2:9: MAINTAINER isn't allowed as an ONBUILD trigger",
        ),
        (
            "FROM a\nONBUILD ONBUILD RUN x\n",
            "2:9: Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
        ),
        (
            "FROM a\nONBUILD\n",
            "2:1: ONBUILD requires at least one argument",
        ),
        (
            "FROM a\nSHELL echo\n",
            "2:1: SHELL requires the arguments to be in JSON form",
        ),
        (
            "FROM a\nSHELL []\n",
            "2:1: SHELL requires at least one argument",
        ),
        ("FROM a\nUSER\n", "2:1: USER requires exactly one argument"),
        (
            "FROM a\nWORKDIR\n",
            "2:1: WORKDIR requires exactly one argument",
        ),
        (
            "FROM a\nSTOPSIGNAL\n",
            "2:1: STOPSIGNAL requires exactly one argument",
        ),
        (
            "FROM a\nMAINTAINER\n",
            "2:1: MAINTAINER requires exactly one argument",
        ),
        (
            "FROM a\nEXPOSE\n",
            "2:1: EXPOSE requires at least one argument",
        ),
        ("FROM a\nENV\n", "2:1: ENV requires at least one argument"),
        (
            "FROM a\nLABEL\n",
            "2:1: LABEL requires at least one argument",
        ),
        ("FROM a\nARG\n", "2:1: ARG requires at least one argument"),
        ("FROM a\nARG =x\n", "2:5: ARG names can not be blank"),
        ("FROM a\nENV =x\n", "2:5: ENV names can not be blank"),
        (
            "FROM a\nVOLUME\n",
            "2:1: VOLUME requires at least one argument",
        ),
        (
            "FROM a\nVOLUME [\"\"]\n",
            "2:9: VOLUME specified can not be an empty string",
        ),
        (
            "FROM a\nHEALTHCHECK\n",
            "2:1: HEALTHCHECK requires at least one argument",
        ),
        (
            "FROM a\nHEALTHCHECK NONE x\n",
            "2:13: HEALTHCHECK NONE takes no arguments",
        ),
        (
            "FROM a\nHEALTHCHECK FOO x\n",
            "2:13: Unknown type \"FOO\" in HEALTHCHECK (try CMD)",
        ),
        (
            "FROM a\nHEALTHCHECK CMD\n",
            "2:13: Missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM a\nHEALTHCHECK CMD []\n",
            "2:13: Missing command after HEALTHCHECK CMD",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=xx CMD true\n",
            "2:13: time: invalid duration \"xx\"",
        ),
        (
            "FROM a\nHEALTHCHECK --timeout=1 CMD true\n",
            "2:13: time: missing unit in duration \"1\"",
        ),
        (
            "FROM a\nHEALTHCHECK --interval=1ns CMD true\n",
            "2:13: Interval \"interval\" cannot be less than 1ms",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=-1 CMD true\n",
            "2:13: --retries cannot be negative (-1)",
        ),
        (
            "FROM a\nHEALTHCHECK --retries=abc CMD true\n",
            "2:13: strconv.ParseInt: parsing \"abc\": invalid syntax",
        ),
        (
            "FROM a\nCOPY --chown=1 --chown=2 . /x\n",
            "2:16: duplicate flag specified: --chown",
        ),
        (
            "FROM a\nCOPY --link=maybe . /x\n",
            "2:6: expecting boolean value for flag --link, not: maybe",
        ),
        (
            "FROM a\nCOPY --link= . /x\n",
            "2:6: missing a value on flag: --link",
        ),
        (
            "FROM a\nCOPY --chown . /x\n",
            "2:6: missing a value on flag: --chown",
        ),
        (
            "FROM a\nRUN --network true\n",
            "2:5: missing a value on flag: --network",
        ),
        (
            "FROM a\nRUN --network=bogus true\n",
            "2:5: invalid network mode \"bogus\"",
        ),
        (
            "FROM a\nARG N=none\nRUN --network=$N true\n",
            "3:5: invalid network mode \"$N\"",
        ),
        (
            "FROM a\nCOPY a <<EOF\nx\nEOF\n",
            "2:8: COPY cannot accept a heredoc as a destination",
        ),
        (
            "RUN true\nFROM a\n",
            "1:1: no build stage in current context",
        ),
        (
            "FROM a\nRUN --mount=type=bogus true\n",
            "2:5: unsupported mount type \"bogus\"",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/c,foo=bar true\n",
            "2:5: unexpected key 'foo' in 'foo=bar' (did you mean from?)",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/c,bogus true\n",
            "2:5: invalid field 'bogus' must be a key=value pair",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/c,ro=maybe true\n",
            "2:5: invalid value for ro: maybe",
        ),
        (
            "FROM a\nRUN --mount=type=bind,target=/c,mode=0700 true\n",
            "2:5: mode not allowed for \"bind\" type mounts",
        ),
        (
            "FROM a\nRUN --mount=type=secret true\n",
            "2:5: invalid secret mount. one of source, target required",
        ),
        (
            "FROM a\nRUN --mount=type=cache,target=/c,sharing=bogus true\n",
            "2:5: unsupported sharing value \"bogus\"",
        ),
        (
            "FROM a\nRUN --mount=from=$X,target=/c true\n",
            "2:5: 'from' doesn't support variable expansion, define alias stage instead",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(messages(src), [want.to_string()], "{src:?}");
    }
}

#[test]
fn what_buildkit_accepts_passes() {
    for src in [
        "FROM a\n",
        "FROM scratch\n",
        "ARG V=1\nFROM a:$V AS Build.x-1_y\n",
        "FROM --platform=linux/amd64 a as b\n",
        "FROM a\nRUN\nCMD\nENTRYPOINT\n",
        "FROM a\nRUN -- --foo\n",
        "FROM a\nCOPY -- . /x\n",
        "FROM a\nCOPY --link --chmod=755 --chown=1:1 --from=b --exclude=a --exclude=b . /x\n",
        "FROM a\nCOPY --link=TRUE --parents . /x\n",
        "FROM a\nADD --keep-git-dir=false --checksum=sha256:00 --unpack=true --link a /x\n",
        "FROM a\nCOPY <<EOF /x\nhi\nEOF\n",
        "FROM a\nRUN --mount=type=cache,target=/a --mount=type=cache,target=/b,sharing=locked \
         --network=none --security=sandbox true\n",
        "FROM a\nRUN --mount=type=secret,id=tok,required --mount=type=tmpfs,target=/t,size=64m true\n",
        "FROM a\nRUN --mount=type=cache,target=/c,mode=0700,uid=1,gid=2,ro=false true\n",
        "FROM a\nARG T=cache\nRUN --mount=type=$T,target=/c true\n",
        "FROM a\nUSER a b\nWORKDIR a b\nSTOPSIGNAL --foo SIGTERM\nARG --foo x\n",
        "FROM a\nHEALTHCHECK --interval=1m30s --timeout=3s --start-period=1.5s --retries=3 CMD true\n",
        "FROM a\nHEALTHCHECK --interval=0 cmd true\nHEALTHCHECK --foo=1 NONE\n",
        "FROM a\nONBUILD RUNN x\nONBUILD RUN --foo x\nONBUILD COPY onlyone\n",
        "FROM a\nSHELL [\"/bin/sh\", \"-c\"]\nEXPOSE 80\nVOLUME /v\nENV a=b\nLABEL a=b\n",
        "FROM a\nMAINTAINER someone <a@b>\n",
    ] {
        assert_eq!(messages(src), Vec::<String>::new(), "{src:?}");
    }
}

#[test]
fn every_refused_instruction_is_reported_once() {
    let got = messages("CMD x\nFROM a b\nRUNN x\nRUN --foo --bar x\nFROM a\n");
    assert_eq!(
        got,
        [
            "1:1: no build stage in current context",
            "2:1: FROM requires either one or three arguments",
            "3:1: unknown instruction: RUNN (did you mean RUN?)",
            "4:5: unknown flag: --foo",
        ]
    );
}

#[test]
fn go_durations() {
    assert_eq!(go_duration("1m30s"), Ok(90_000_000_000));
    assert_eq!(go_duration("1.5s"), Ok(1_500_000_000));
    assert_eq!(go_duration(".5ms"), Ok(500_000));
    assert_eq!(go_duration("-2h"), Ok(-7_200_000_000_000));
    assert_eq!(go_duration("0"), Ok(0));
    assert!(go_duration("").is_err());
    assert!(go_duration("s").is_err());
    assert_eq!(
        go_duration("3x"),
        Err("time: unknown unit \"x\" in duration \"3x\"".to_string())
    );
}

#[test]
fn quoted_as_go_quotes() {
    assert_eq!(go_quote("a\"b\\c\n"), r#""a\"b\\c\n""#);
    let raw = crate::decode_bytes(b"caf\xe9");
    assert_eq!(go_quote(&raw), r#""caf\xe9""#);
    assert_eq!(go_quote("café"), "\"café\"");
    assert_eq!(go_quote("\u{1}\u{85}"), r#""\x01\u0085""#);
}

#[test]
fn suggestions_within_two_edits() {
    assert_eq!(suggest("RUNN", &NAMES, false).as_deref(), Some("RUN"));
    assert_eq!(suggest("cpy", &NAMES, false).as_deref(), Some("copy"));
    assert_eq!(
        suggest("Workdri", &NAMES, false).as_deref(),
        Some("workdir")
    );
    assert_eq!(suggest("FROBNICATE", &NAMES, false), None);
    assert_eq!(suggest("RUN", &NAMES, false), None);
}
