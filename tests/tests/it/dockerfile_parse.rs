//! The Dockerfile parser against the engine. Docker's classic builder records every
//! instruction it runs in the image history (`/bin/sh -c <text>` for a shell-form RUN, the
//! exec-form words for the exec form, `#(nop) ENV k=v` and the like for the rest), so building
//! each Dockerfile of a corpus (tests/fixtures/dockerfiles/parse) and reading the history
//! back says how Docker parsed it. What `cargo xtask lint --dump` says must agree: the
//! sequence of instructions of every stage, every RUN's shell text or exec words, CMD and
//! ENTRYPOINT, ENV/LABEL/ARG pairs, and the other instructions' arguments. Each Dockerfile is
//! also built with CRLF line endings and with a byte-order mark, which must change nothing.

#![allow(clippy::unwrap_used)] // a test that cannot set up its fixture should panic

use std::path::{Path, PathBuf};
use std::process::Command;

use headroom_tests::registry::base_image;
use headroom_tests::{sh, xtask};
use serde_json::Value;

headroom_tests::tests! {
    the_dump_agrees_with_the_engine_history needs Docker;
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/dockerfiles/parse");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "Dockerfile"))
        .collect();
    files.sort();
    files
}

/// The images this test built, removed however it ends.
struct Images(Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        if !self.0.is_empty() {
            let _ = Command::new("docker")
                .args(["rmi", "-f"])
                .args(&self.0)
                .output();
        }
    }
}

/// The files the corpus copies.
fn context(dir: &Path) {
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("app.py"), "print('hello')\n").unwrap();
    std::fs::write(dir.join("requirements.txt"), "numpy\ntorch\n").unwrap();
    std::fs::write(dir.join("config/settings.ini"), "[app]\nport = 8000\n").unwrap();
}

/// Go's `%q` for a string, as the engine prints exec-form lists.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn unquote(s: &str, escape: char) -> String {
    headroom_dockerfile::unquote(s, escape).unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// `k=v` pairs of the dump as the engine prints them: quotes removed from both sides.
fn pairs(inst: &Value, escape: char) -> String {
    strs(&inst["args"])
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{}={}", unquote(k, escape), unquote(v, escape)),
            None => unquote(p, escape),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What the build has set so far in a stage.
#[derive(Clone)]
struct State {
    shell: Vec<String>,
    workdir: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            shell: vec!["/bin/sh".into(), "-c".into()],
            workdir: "/".into(),
        }
    }
}

/// The history entry the classic builder writes for `inst`, or, for the few instructions
/// whose entry holds engine-made text (COPY's content hash, HEALTHCHECK's timings), the part
/// of it that comes from the Dockerfile and a flag saying so.
fn expected(inst: &Value, state: &mut State, escape: char) -> (String, bool) {
    let name = inst["instruction"].as_str().unwrap();
    let args = strs(&inst["args"]);
    let json = inst["json"] == Value::Bool(true);
    let shell_text = inst["shell"].as_str().map(str::to_string);
    let nop = format!("{} #(nop) ", state.shell.join(" "));
    let exec_list = |list: &[String]| {
        let q: Vec<String> = list.iter().map(|s| go_quote(s)).collect();
        format!("[{}]", q.join(" "))
    };
    let command = |state: &State| -> Vec<String> {
        match &shell_text {
            Some(text) => {
                let mut l = state.shell.clone();
                l.push(text.clone());
                l
            }
            None => args.clone(),
        }
    };
    let first = || unquote(args.first().map_or("", String::as_str), escape);
    match name {
        "run" => (
            match &shell_text {
                Some(text) => format!("{} {text}", state.shell.join(" ")),
                None => args.join(" "),
            },
            false,
        ),
        "cmd" | "entrypoint" => (
            format!(
                "{nop} {} {}",
                name.to_uppercase(),
                exec_list(&command(state))
            ),
            false,
        ),
        "env" | "label" | "arg" => (
            format!("{nop} {} {}", name.to_uppercase(), pairs(inst, escape)),
            false,
        ),
        "workdir" => {
            let dir = first();
            state.workdir = if dir.starts_with('/') {
                dir
            } else {
                format!("{}/{dir}", state.workdir.trim_end_matches('/'))
            };
            (format!("{nop}WORKDIR {}", state.workdir), false)
        }
        "user" | "stopsignal" | "maintainer" => {
            (format!("{nop} {} {}", name.to_uppercase(), first()), false)
        }
        "expose" => {
            let mut ports: Vec<String> = args.iter().map(|p| unquote(p, escape)).collect();
            ports.sort();
            (format!("{nop} EXPOSE {}", ports.join(" ")), false)
        }
        "volume" => {
            let v: Vec<String> = args.iter().map(|p| unquote(p, escape)).collect();
            (format!("{nop} VOLUME [{}]", v.join(" ")), false)
        }
        "shell" => {
            // Recorded with the shell it sets.
            state.shell = args.clone();
            (
                format!("{} #(nop)  SHELL [{}]", args.join(" "), args.join(" ")),
                false,
            )
        }
        "onbuild" => {
            let t = &inst["trigger"];
            let body = match t["shell"].as_str() {
                Some(text) => text.to_string(),
                None => strs(&t["args"]).join(" "),
            };
            let keyword = t["instruction"].as_str().unwrap().to_uppercase();
            (format!("{nop} ONBUILD {keyword} {body}"), false)
        }
        "healthcheck" => {
            let kind = args.first().cloned().unwrap_or_default();
            let test = match (kind.as_str(), &shell_text) {
                ("CMD", Some(text)) => vec!["CMD-SHELL".to_string(), text.clone()],
                _ => {
                    let mut t = vec![kind.clone()];
                    if json {
                        t.extend(args.iter().skip(1).cloned());
                    }
                    t
                }
            };
            (format!("{nop} HEALTHCHECK &{{{} ", exec_list(&test)), true)
        }
        "copy" | "add" => {
            let dest = unquote(args.last().map_or("", String::as_str), escape);
            (format!(" in {dest} "), true)
        }
        other => panic!("no expectation for {other}"),
    }
}

/// Drop the `|N A=1 B=2 ` prefix the classic builder puts before RUN when build arguments
/// are in scope.
fn strip_build_args(entry: &str) -> &str {
    let Some(rest) = entry.strip_prefix('|') else {
        return entry;
    };
    let Some((n, mut rest)) = rest.split_once(' ') else {
        return entry;
    };
    for _ in 0..n.parse::<usize>().unwrap_or(0) {
        rest = rest.split_once(' ').map_or("", |(_, r)| r);
    }
    rest
}

/// The instruction an entry of the history came from.
fn kind(entry: &str) -> String {
    match entry.split_once("#(nop) ") {
        Some((_, rest)) => rest.split_whitespace().next().unwrap_or("").to_lowercase(),
        None => "run".into(),
    }
}

/// The image's history, oldest first, from the Engine API: the CLI's `docker history`
/// turns tabs into spaces.
fn history(image: &str) -> Vec<String> {
    let host = std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| {
            sh(
                "docker",
                &[
                    "context",
                    "inspect",
                    "--format",
                    "{{.Endpoints.docker.Host}}",
                ],
            )
            .trim()
            .to_string()
        });
    let path = format!("/images/{image}/history");
    let mut curl = Command::new("curl");
    curl.args(["-sS", "--fail"]);
    match host.strip_prefix("unix://") {
        Some(socket) => curl
            .args(["--unix-socket", socket])
            .arg(format!("http://localhost{path}")),
        None => curl.arg(format!("{}{path}", host.replacen("tcp://", "http://", 1))),
    };
    let out = curl.output().unwrap();
    assert!(
        out.status.success(),
        "GET {path} from {host}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let entries: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    entries
        .iter()
        .rev()
        .map(|e| e["CreatedBy"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Compare one stage's instructions with the tail of its image's history.
fn compare(label: &str, insts: &[Value], state: &mut State, escape: char, hist: &[String]) {
    assert!(
        hist.len() > insts.len(),
        "{label}: {} history entries for {} instructions\n{hist:#?}",
        hist.len(),
        insts.len()
    );
    let tail = &hist[hist.len() - insts.len()..];
    let want: Vec<&str> = insts
        .iter()
        .map(|i| i["instruction"].as_str().unwrap())
        .collect();
    let got: Vec<String> = tail.iter().map(|e| kind(e)).collect();
    assert_eq!(got, want, "{label}: instruction sequence\n{tail:#?}");
    for (inst, entry) in insts.iter().zip(tail) {
        let (want, partial) = expected(inst, state, escape);
        let entry = if inst["instruction"] == "run" {
            strip_build_args(entry)
        } else {
            entry.as_str()
        };
        if partial {
            assert!(
                entry.contains(&want),
                "{label}: line {}: the engine recorded\n  {entry:?}\nwhich lacks\n  {want:?}",
                inst["line"]
            );
        } else {
            assert_eq!(
                entry, want,
                "{label}: line {}: the engine recorded the left, the dump says the right",
                inst["line"]
            );
        }
    }
}

fn build(dockerfile: &Path, ctx: &Path, target: Option<&str>, tag: &str) {
    let mut cmd = Command::new("docker");
    cmd.args(["build", "-q", "-t", tag, "--build-arg"])
        .arg(format!("BASE={}", base_image()))
        .arg("-f")
        .arg(dockerfile);
    if let Some(t) = target {
        cmd.args(["--target", t]);
    }
    let out = cmd.arg(ctx).env("DOCKER_BUILDKIT", "0").output().unwrap();
    assert!(
        out.status.success(),
        "building {} (target {target:?}): {}",
        dockerfile.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn the_dump_agrees_with_the_engine_history() {
    let dir = tempfile::Builder::new()
        .prefix("headroom-parse-")
        .tempdir()
        .unwrap();
    let ctx = dir.path().join("context");
    context(&ctx);
    let mut images = Images(Vec::new());
    let files = fixtures();
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let stem = file
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .trim_end_matches(".Dockerfile")
            .to_string();
        let text = std::fs::read_to_string(&file).unwrap();
        let escape = headroom_dockerfile::parse(&text).unwrap().escape;
        let variants = [
            ("lf", text.clone()),
            ("crlf", text.replace('\n', "\r\n")),
            ("bom", format!("\u{feff}{text}")),
        ];
        let mut lf_dump = None;
        for (variant, body) in variants {
            let path = dir.path().join(format!("{stem}.{variant}.Dockerfile"));
            std::fs::write(&path, body).unwrap();
            let run = xtask(&["lint", "--dump", path.to_str().unwrap()], &[]);
            assert!(run.success(), "{}: {run:?}", path.display());
            let dump = run.json();
            match &lf_dump {
                None => lf_dump = Some(dump.clone()),
                Some(lf) => assert_eq!(&dump, lf, "{stem}: {variant} parses differently"),
            }
            let insts = dump.as_array().unwrap();

            // Stages: a FROM and what follows it; a stage built on an earlier one starts
            // from that one's SHELL and WORKDIR.
            let froms: Vec<usize> = (0..insts.len())
                .filter(|&i| insts[i]["instruction"] == "from")
                .collect();
            let mut ends: Vec<(Option<String>, State)> = Vec::new();
            for (n, &from) in froms.iter().enumerate() {
                let end = froms.get(n + 1).copied().unwrap_or(insts.len());
                let words = strs(&insts[from]["args"]);
                let name = match words.as_slice() {
                    [_, as_, name] if as_.eq_ignore_ascii_case("as") => Some(name.to_lowercase()),
                    _ => None,
                };
                let mut state = ends
                    .iter()
                    .find(|(stage, _)| stage.as_deref() == words.first().map(String::as_str))
                    .map(|(_, s)| s.clone())
                    .unwrap_or_default();
                let last = n + 1 == froms.len();
                if name.is_some() || last {
                    let tag = format!("headroom-test/parse-{stem}-{variant}-{n}:latest");
                    images.0.push(tag.clone());
                    build(&path, &ctx, name.as_deref().filter(|_| !last), &tag);
                    let label = format!("{stem} ({variant}) stage {n}");
                    compare(
                        &label,
                        &insts[from + 1..end],
                        &mut state.clone(),
                        escape,
                        &history(&tag),
                    );
                }
                // Follow the stage's SHELL and WORKDIR for the stages built on it.
                for inst in &insts[from + 1..end] {
                    let _ = expected(inst, &mut state, escape);
                }
                ends.push((name, state));
            }
        }
    }
}
