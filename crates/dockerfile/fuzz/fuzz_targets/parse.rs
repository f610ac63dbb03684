//! Any bytes given to the parser must come back as a Dockerfile or an error, never a panic,
//! a hang or a stack overflow; and every span it gives must slice the input.

#![no_main]

use headroom_dockerfile::{Args, Span, decode_bytes, parse_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(df) = parse_bytes(data) else {
        return;
    };
    // The spans refer to the decoded text, which gives the bytes back unless the input
    // already held the characters that stand for raw bytes.
    let decoded = decode_bytes(data);
    let src: &str = &decoded;
    let ambiguous = data.utf8_chunks().any(|c| {
        c.valid()
            .chars()
            .any(|c| ('\u{10ff80}'..='\u{10ffff}').contains(&c))
    });
    if !ambiguous {
        assert_eq!(&*headroom_dockerfile::encode_text(src), data);
    }
    let check = |span: &Span| {
        assert!(span.start.offset <= span.end.offset, "{span:?}");
        assert!(span.text(src).is_some(), "{span:?} does not slice the input");
    };
    for inst in df.walk() {
        check(&inst.span);
        check(&inst.keyword_word.span);
        assert!(src.get(inst.whole_lines.clone()).is_some());
        inst.flags.iter().for_each(|f| check(&f.span));
        inst.heredocs.iter().for_each(|h| check(&h.body_span));
        match &inst.args {
            Args::Json(w) | Args::Words(w) => w.iter().for_each(|w| check(&w.span)),
            Args::Shell(w) | Args::Text(w) | Args::Unknown(w) => check(&w.span),
            Args::Pairs(p) => p.iter().for_each(|p| check(&p.span)),
            _ => {}
        }
    }
    let _ = df.dump();
    let _ = df.stages();
});
