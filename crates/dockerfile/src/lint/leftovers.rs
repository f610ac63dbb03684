//! What a RUN leaves behind (apt lists and cache, pip's cache, downloads, archives ADDed)
//! and a later RUN that cleans it up (`HR001`: the bytes stay in the earlier layer) or
//! extracts it (`HR005`).

use std::collections::BTreeMap;

use super::raw::Raw;
use super::run::{Run, truthy};
use crate::shell::Command;

/// Paths a RUN leaves behind as caches or downloads, with the RUN's index.
#[derive(Debug)]
pub(super) struct Made {
    pub(super) what: String,
    /// Cleanup matches when it removes a path starting with one of these.
    pub(super) prefixes: Vec<String>,
    /// Or runs one of these cleanup commands (program, subcommand).
    pub(super) commands: Vec<(&'static str, &'static str)>,
    /// The instructions that made it: (line, RUN index; `usize::MAX` for an ADD). The same
    /// data made by several RUNs is one entry, so each later RUN is checked against the
    /// kinds of data made, not against every RUN before it.
    pub(super) origins: Vec<(usize, usize)>,
}

impl Made {
    pub(super) fn new(
        what: String,
        prefixes: Vec<String>,
        commands: Vec<(&'static str, &'static str)>,
    ) -> Self {
        Made {
            what,
            prefixes,
            commands,
            origins: Vec::new(),
        }
    }
}

/// Record `m`, made by the instruction on `line` (RUN `run`), with the same data made
/// before.
pub(super) fn add_made(made: &mut Vec<Made>, m: Made, line: usize, run: usize) {
    match made
        .iter_mut()
        .find(|k| k.what == m.what && k.prefixes == m.prefixes && k.commands == m.commands)
    {
        Some(k) => k.origins.push((line, run)),
        None => {
            let mut m = m;
            m.origins.push((line, run));
            made.push(m);
        }
    }
}

/// What a RUN leaves behind that a later RUN might clean up.
pub(super) fn record_made(
    run: &Run<'_>,
    index: usize,
    env: &BTreeMap<String, String>,
    made: &mut Vec<Made>,
) {
    let line = run.inst.line;
    if run.any(|c| c.is_apt("update")) && !run.any(Command::cleans_apt_lists) {
        add_made(
            made,
            Made::new(
                "apt lists".into(),
                vec!["/var/lib/apt/lists".into()],
                Vec::new(),
            ),
            line,
            index,
        );
    }
    if run.any(|c| c.is_apt("install")) && !run.any(|c| c.is_apt("clean")) {
        add_made(
            made,
            Made::new(
                "apt's package cache".into(),
                vec!["/var/cache/apt".into()],
                vec![("apt-get", "clean"), ("apt", "clean")],
            ),
            line,
            index,
        );
    }
    let pip_cache = !env.get("PIP_NO_CACHE_DIR").is_some_and(|v| truthy(v))
        && !run.cache_mount_on(".cache/pip")
        && !run.removes("/root/.cache");
    if pip_cache
        && run.any(|c| {
            c.is_pip_install()
                && !c
                    .pip_args()
                    .is_some_and(|a| a.iter().any(|w| w == "--no-cache-dir"))
        })
    {
        add_made(
            made,
            Made::new(
                "pip's cache".into(),
                vec![
                    "/root/.cache/pip".into(),
                    "/root/.cache".into(),
                    "~/.cache/pip".into(),
                    "$HOME/.cache/pip".into(),
                ],
                vec![("pip", "cache"), ("pip3", "cache")],
            ),
            line,
            index,
        );
    }
    // Downloads to a file: curl -o F / --output F, wget -O F (or into a directory: -P).
    for c in &run.commands {
        if let Some(file) = download_target(c)
            && !run.removes(&file)
        {
            add_made(
                made,
                Made::new(format!("the download {file}"), vec![file], Vec::new()),
                line,
                index,
            );
        }
    }
}

/// The file a download writes: `curl -o F` / `--output F` / `-fsSLo F`, `curl -O URL` (the
/// URL's last part, in the working directory), `wget -O F` / `--output-document=F`, and a
/// plain `wget URL` (the URL's last part). Not standard output, not `/dev/null`.
pub(super) fn download_target(c: &Command) -> Option<String> {
    let args = c.args();
    // The value of an option: `-o F`, `--output=F`, or a short cluster ending in the option
    // (`-fsSLo F`).
    let flag_value = |long: &[&str], short: char| {
        args.iter().enumerate().find_map(|(i, a)| {
            for f in long {
                if a == f {
                    return args.get(i + 1).cloned();
                }
                if let Some(v) = a.strip_prefix(&format!("{f}=")) {
                    return Some(v.to_string());
                }
            }
            // `-o F`, `-fsSLo F`, `-qO-`, `-OF`: the value follows the option letter, or is
            // the next word.
            let opts = a.strip_prefix('-').filter(|o| !o.starts_with('-'))?;
            let at = opts.find(short)?;
            if !opts[..at].chars().all(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            match &opts[at + 1..] {
                "" => args.get(i + 1).cloned(),
                rest => Some(rest.to_string()),
            }
        })
    };
    let url_name = || {
        let url = args.iter().find(|a| a.contains("://"))?;
        let path = url.split(['?', '#']).next().unwrap_or(url);
        let name = path
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && !path.ends_with("//"))?;
        (!name.contains(['$', '`'])).then(|| name.to_string())
    };
    let file = match c.program()? {
        "curl" => flag_value(&["--output"], 'o').or_else(|| {
            args.iter()
                .any(|a| {
                    a == "--remote-name"
                        || (a.starts_with('-')
                            && !a.starts_with("--")
                            && a.contains('O')
                            && a[1..].chars().all(|c| c.is_ascii_alphabetic()))
                })
                .then(url_name)
                .flatten()
        }),
        "wget" => {
            let to_dir = args
                .iter()
                .any(|a| a == "-P" || a.starts_with("--directory-prefix"));
            match flag_value(&["--output-document"], 'O') {
                Some(f) => Some(f),
                None if !to_dir => url_name(),
                None => None,
            }
        }
        _ => None,
    }?;
    (file != "/dev/null" && file != "-" && !file.is_empty()).then_some(file)
}

/// HR001 and HR005: a RUN cleaning up (or extracting) what an earlier RUN made.
pub(super) fn check_later_cleanup(
    run: &Run<'_>,
    index: usize,
    made: &mut Vec<Made>,
    out: &mut Vec<Raw>,
) {
    // What this RUN removes and runs, read once (not once per kind of data made before).
    let removed: Vec<String> = run
        .commands
        .iter()
        .filter(|c| c.is_rm())
        .flat_map(|c| c.operands_all())
        .map(|p| p.to_string())
        .collect();
    // (program, subcommand, pip's arguments) of each command.
    type Runs<'a> = Vec<(Option<&'a str>, Option<&'a str>, Option<&'a [String]>)>;
    let runs: Runs<'_> = run
        .commands
        .iter()
        .map(|c| (c.program(), c.subcommand(), c.pip_args()))
        .collect();
    let extracting: Vec<&String> = run
        .commands
        .iter()
        .filter(|c| {
            matches!(
                c.program(),
                Some("tar" | "unzip" | "bsdtar" | "7z" | "dpkg" | "sh" | "bash" | "pip" | "pip3")
            )
        })
        .flat_map(|c| c.args().iter())
        .collect();
    let mut cleaned = Vec::new();
    for (n, m) in made.iter().enumerate() {
        let earlier: Vec<(usize, usize)> =
            m.origins.iter().copied().filter(|o| o.1 != index).collect();
        if earlier.is_empty() {
            continue;
        }
        let by_rm = removed.iter().any(|p| {
            m.prefixes
                .iter()
                .any(|pre| p.starts_with(pre.as_str()) || pre.starts_with(p.trim_end_matches("/*")))
        });
        let by_command = runs.iter().any(|(program, subcommand, pip)| {
            m.commands.iter().any(|(p, s)| {
                (*program == Some(*p) || (*p == "pip" && pip.is_some()))
                    && (*subcommand == Some(*s) || pip.is_some_and(|a| a.iter().any(|w| w == s)))
            })
        });
        if by_rm || by_command {
            for (line, from) in earlier {
                let from = if from == usize::MAX { "ADD" } else { "RUN" };
                cleaned.push((n, (m.what.clone(), from, line)));
            }
        } else if m.what.starts_with("the download") || m.what.starts_with("the archive") {
            let extracts = extracting.iter().any(|a| {
                m.prefixes
                    .iter()
                    .any(|pre| *a == pre || a.ends_with(pre.rsplit('/').next().unwrap_or(pre)))
            });
            if extracts {
                for (line, _) in earlier {
                    out.push(Raw::at(
                        "HR005",
                        run.inst,
                        format!(
                            "uses {} from line {line}, which stays in that layer",
                            m.what
                        ),
                    ));
                }
            }
        }
    }
    if !cleaned.is_empty() {
        // "apt lists made by the RUNs on lines 2, 5": one phrase per kind of data.
        let mut by_what: Vec<(String, Vec<String>)> = Vec::new();
        for (_, (what, from, line)) in &cleaned {
            let key = format!("{what} made by the {from}");
            match by_what.iter_mut().find(|(k, _)| *k == key) {
                Some((_, lines)) => lines.push(line.to_string()),
                None => by_what.push((key, vec![line.to_string()])),
            }
        }
        let what: Vec<String> = by_what
            .iter()
            .map(|(k, lines)| match lines.as_slice() {
                [one] => format!("{k} on line {one}"),
                many => format!("{k}s on lines {}", many.join(", ")),
            })
            .collect();
        out.push(Raw::at(
            "HR001",
            run.inst,
            format!(
                "removes {}: the bytes stay in those layers",
                what.join(", and ")
            ),
        ));
    }
    // What was cleaned up is gone: only the origins of this RUN (if any) stay.
    let mut gone: Vec<usize> = cleaned.iter().map(|(n, _)| *n).collect();
    gone.dedup();
    for n in gone.into_iter().rev() {
        if let Some(m) = made.get_mut(n) {
            m.origins.retain(|o| o.1 == index);
            if m.origins.is_empty() {
                made.remove(n);
            }
        }
    }
}

pub(super) fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

pub(super) fn is_archive(path: &str) -> bool {
    let p = path.to_ascii_lowercase();
    [
        ".tar", ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst", ".zip",
        ".whl", ".run", ".deb",
    ]
    .iter()
    .any(|ext| p.ends_with(ext))
}
