//! The cheap checks that run before the first destructive step (a deleted byte, a moved
//! data root): the build context and the Dockerfile can be read, every image reference is
//! valid, a named builder answers, and the registry accepts the push credentials (the
//! token request a push begins with, no push). Each one that fails stops the run before the
//! free stage; a registry that cannot be reached is a note, left for the push to find.

use anyhow::{Context, Result, bail};
use headroom_docker::auth::{self, verify};
use headroom_docker::build::BuildSpec;
use headroom_docker::engine::Engine;

use super::Stage;
use super::context::Run;

/// Run the checks; the first refusal is the error.
pub(crate) async fn run(
    run: &mut Run<'_>,
    engine: &Engine,
    spec: &BuildSpec,
    credentials: Option<&auth::Credentials>,
) -> Result<()> {
    let s = run.settings;
    // What only the build reads is checked only when it runs (`--skip build` smoke-tests or
    // pushes an image that is already there).
    let building = !s.skipped(Stage::Build);
    if building {
        readable(spec)?;
    }
    for reference in spec.references() {
        valid_reference(&reference)
            .map_err(|why| anyhow::anyhow!("the image reference {reference:?} {why}"))?;
    }
    if let Some(builder) = spec.builder.as_ref().filter(|_| building) {
        engine
            .endpoint
            .cli(
                &format!("docker buildx inspect {builder}"),
                vec!["buildx".into(), "inspect".into(), builder.clone()],
            )
            .await
            .map_err(|e| anyhow::anyhow!("the builder {builder} does not answer: {e}"))?;
    }
    if s.push && !s.skipped(Stage::Push) {
        let host = auth::registry_host(&spec.image);
        let repository = verify::repository(&spec.image, &host);
        let creds = credentials.cloned();
        let asked = host.clone();
        let verdict = tokio::task::spawn_blocking(move || {
            verify::verify(&asked, &repository, creds.as_ref())
        })
        .await
        .context("asking the registry about the credentials")?;
        match verdict {
            verify::Verdict::Accepted => {}
            verify::Verdict::Refused(why) => bail!("{why}"),
            verify::Verdict::Unchecked(why) => run.reporter.note(
                Stage::Push,
                &format!("the credentials for {host} were not checked before the build: {why}"),
            ),
        }
    }
    Ok(())
}

/// The context is a directory that can be listed, the Dockerfile a file that can be read.
fn readable(spec: &BuildSpec) -> Result<()> {
    let context = &spec.context;
    std::fs::read_dir(context)
        .and_then(|mut d| d.next().transpose().map(|_| ()))
        .with_context(|| format!("the build context {} cannot be read", context.display()))?;
    let dockerfile = &spec.dockerfile;
    let meta = std::fs::metadata(dockerfile)
        .with_context(|| format!("the Dockerfile {} cannot be read", dockerfile.display()))?;
    if !meta.is_file() {
        bail!("the Dockerfile {} is not a file", dockerfile.display());
    }
    std::fs::File::open(dockerfile)
        .with_context(|| format!("the Dockerfile {} cannot be read", dockerfile.display()))?;
    Ok(())
}

/// Docker's reference grammar: `[host[:port]/]component(/component)*[:tag][@digest]`, the
/// components lower-case alphanumerics joined by `.`, `_`, `__` or dashes, the tag
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`, the name at most 255 characters.
pub(crate) fn valid_reference(reference: &str) -> Result<(), String> {
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        let ok = d.split_once(':').is_some_and(|(alg, hex)| {
            !alg.is_empty() && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if !ok {
            return Err(format!("has an invalid digest {d:?}"));
        }
    }
    let (name, tag) = match rest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        let mut bytes = t.bytes();
        let first_ok = bytes
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !first_ok
            || t.len() > 128
            || !bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        {
            return Err(format!(
                "has an invalid tag {t:?} (letters, digits, _ . -, at most 128, not starting \
                 with . or -)"
            ));
        }
    }
    if name.is_empty() || name.len() > 255 {
        return Err("has a name that is empty or longer than 255 characters".into());
    }
    let mut parts: Vec<&str> = name.split('/').collect();
    let first = parts[0];
    if parts.len() > 1
        && (first.contains(['.', ':'])
            || first == "localhost"
            || first.chars().any(|c| c.is_ascii_uppercase()))
    {
        let (host, port) = match first.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (first, None),
        };
        let host_ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']'));
        if !host_ok || port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(format!("has an invalid registry host {first:?}"));
        }
        parts.remove(0);
    }
    for part in parts {
        if !valid_component(part) {
            return Err(format!(
                "has an invalid path component {part:?} (lower-case letters and digits, \
                 joined by . _ __ or dashes)"
            ));
        }
    }
    Ok(())
}

fn valid_component(part: &str) -> bool {
    let b = part.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator: `.`, `_`, `__`, or one or more dashes, between alphanumerics.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while b.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
        if start == 0 || !b.get(i).copied().is_some_and(alnum) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::valid_reference;

    #[test]
    fn references_follow_dockers_grammar() {
        for ok in [
            "ubuntu",
            "ubuntu:22.04",
            "localhost:5000/team/app:v1",
            "ghcr.io/o/my_app__x:1.0-rc",
            "a/b-c--d@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        ] {
            assert_eq!(valid_reference(ok), Ok(()), "{ok}");
        }
        for bad in [
            "Ubuntu",
            "ubuntu:",
            "ubuntu:-x",
            "ghcr.io/o/App:1",
            "a//b",
            "a/b_",
            "a/b___c",
            "a:b@sha256:zz",
            "",
        ] {
            assert!(valid_reference(bad).is_err(), "{bad}");
        }
    }
}
