//! The package managers' rules, RUN by RUN: apt (`DL3009` lists left, `HR002` an update
//! nothing reads, `DL3015` recommends), pip (`DL3042` cache), apk (`DL3019`), yum, zypper,
//! dnf and yarn cleanups (`DL3032`, `DL3036`, `DL3040`, `DL3060`), and `HR003` (one package
//! per install, repeated).

use std::collections::BTreeMap;

use super::raw::Raw;
use super::run::{Run, removes, truthy};
use crate::shell::Command;

/// apt-get, apt or aptitude with `sub` among its arguments: hadolint's matching, which also
/// sees the subcommand after an option's value (`apt-get -o K=V install`).
pub(super) fn apt_runs(c: &Command, sub: &str) -> bool {
    matches!(c.program(), Some("apt-get" | "apt" | "aptitude")) && c.args().iter().any(|a| a == sub)
}

/// A package manager whose cache an install leaves in the layer unless a cleanup follows it
/// in the same RUN (hadolint's DL3032, DL3036, DL3040): what installs, what cleans, which
/// removals count as a cleanup, which cache or tmpfs mounts keep the cache out of the layer.
struct Cleanup {
    id: &'static str,
    program: &'static str,
    /// Subcommands (anywhere among the arguments, as hadolint matches them) that install.
    install: &'static [&'static str],
    /// Subcommands that clean, when they come after the install.
    clean: &'static [&'static str],
    /// `rm -r` of a path starting with one of these, after the install, cleans.
    cache: &'static [&'static str],
    /// A `type=cache` or `type=tmpfs` mount whose target holds one of these.
    mounts: &'static [&'static str],
}

const DNF_INSTALL: &[&str] = &[
    "install",
    "in",
    "groupinstall",
    "localinstall",
    "upgrade",
    "up",
    "upgrade-minimal",
    "up-min",
    "reinstall",
    "rei",
];
const DNF_CACHE: &[&str] = &["/var/cache/dnf", "/var/cache/yum", "/var/cache/libdnf5"];
const DNF_MOUNTS: &[&str] = &["/var/cache/libdnf5", ".cache/libdnf5", "/var/cache/dnf"];

static CLEANUPS: &[Cleanup] = &[
    Cleanup {
        id: "DL3032",
        program: "yum",
        install: &["install", "groupinstall", "localinstall"],
        clean: &["clean"],
        cache: &["/var/cache/yum"],
        mounts: &["/var/cache/yum"],
    },
    Cleanup {
        id: "DL3036",
        program: "zypper",
        install: &["install", "in"],
        clean: &["clean", "cc"],
        cache: &[],
        mounts: &["/var/cache/zypp"],
    },
    Cleanup {
        id: "DL3040",
        program: "dnf",
        install: DNF_INSTALL,
        clean: &["clean"],
        cache: DNF_CACHE,
        mounts: DNF_MOUNTS,
    },
    Cleanup {
        id: "DL3040",
        program: "microdnf",
        install: DNF_INSTALL,
        clean: &["clean"],
        cache: DNF_CACHE,
        mounts: DNF_MOUNTS,
    },
];

/// The checks that look at one RUN alone.
pub(super) fn check_run(
    run: &Run<'_>,
    env: &BTreeMap<String, String>,
    lists_matter: bool,
    out: &mut Vec<Raw>,
) {
    let inst = run.inst;
    let updates = run.any(|c| apt_runs(c, "update"));
    // A cache mount on the lists, or on both /var/lib/apt and /var/cache/apt (as Docker's
    // documentation writes it), keeps them out of the layer.
    let lists_mounted = run.cache_mount_on("/var/lib/apt/lists")
        || (run.cache_mount_on("/var/lib/apt") && run.cache_mount_on("/var/cache/apt"));
    if updates && lists_matter && !run.any(Command::cleans_apt_lists) && !lists_mounted {
        out.push(Raw::at(
            "DL3009",
            inst,
            "apt-get update without `rm -rf /var/lib/apt/lists/*` in the same RUN: the lists stay in this layer".into(),
        ));
    }
    if updates && run.lists_unread {
        out.push(Raw::at(
            "HR002",
            inst,
            "apt-get update without an install in the same RUN".into(),
        ));
    }
    // Package managers are matched as hadolint matches them: the program and the
    // subcommand anywhere among its arguments (`apt-get -o K=V install`, `apk -X URL add`).
    let has = |c: &Command, words: &[&str]| c.args().iter().any(|a| words.contains(&a.as_str()));
    for (n, c) in run.commands.iter().enumerate() {
        // A cleanup counts when it comes after the install.
        let later = run.commands.get(n + 1..).unwrap_or_default();
        if c.program() == Some("apt-get")
            && has(c, &["install"])
            && !c.has_any(&["--no-install-recommends"])
            && !c.args().iter().any(|a| {
                a.contains("APT::Install-Recommends=false")
                    || a.contains("APT::Install-Recommends=0")
            })
        {
            out.push(Raw::at(
                "DL3015",
                inst,
                "apt-get install without --no-install-recommends".into(),
            ));
        }
        pip_cache(run, c, env, out);
        if c.program() == Some("apk")
            && has(c, &["add"])
            && !c.has_any(&["--no-cache"])
            && !run.cache_mount_on("/var/cache/apk")
        {
            out.push(Raw::at("DL3019", inst, "apk add without --no-cache".into()));
        }
        for m in CLEANUPS {
            if c.program() == Some(m.program)
                && has(c, m.install)
                && !m.mounts.iter().any(|dir| run.cache_mount_on(dir))
                && !later.iter().any(|o| {
                    (o.program() == Some(m.program)
                        && o.subcommand().is_some_and(|s| m.clean.contains(&s)))
                        || m.cache.iter().any(|dir| removes(o, dir))
                })
            {
                out.push(Raw::at(
                    m.id,
                    inst,
                    format!(
                        "{} install without `{} clean` after it in the same RUN",
                        m.program, m.program
                    ),
                ));
            }
        }
        // As hadolint: only in a stage that ends up in the image (the last, or one a later
        // FROM builds on).
        if lists_matter
            && c.program() == Some("yarn")
            && (has(c, &["install"]) || c.subcommand().is_none())
            && !later.iter().any(|o| {
                o.program() == Some("yarn")
                    && o.args().starts_with(&["cache".into(), "clean".into()])
            })
            && !run.cache_mount_on("yarn")
        {
            out.push(Raw::at(
                "DL3060",
                inst,
                "yarn install without `yarn cache clean` after it in the same RUN".into(),
            ));
        }
    }
    for c in &run.substituted {
        pip_cache(run, c, env, out);
    }
    // HR005 within one RUN is fine (download and extract together); across RUNs it is
    // found by the cleanup tracking below.
}

/// DL3042: `c`, a command of `run` (or of a substitution in it), installs with pip and
/// keeps pip's cache.
fn pip_cache(run: &Run<'_>, c: &Command, env: &BTreeMap<String, String>, out: &mut Vec<Raw>) {
    if c.pip_args()
        .is_some_and(|a| a.iter().any(|w| w == "install"))
        && !c
            .pip_args()
            .is_some_and(|a| a.iter().any(|w| w == "--no-cache-dir"))
        && !env.get("PIP_NO_CACHE_DIR").is_some_and(|v| truthy(v))
        && !sets_pip_no_cache_dir(run)
        && !run.cache_mount_on(".cache/pip")
    {
        out.push(Raw::at(
            "DL3042",
            run.inst,
            "pip install without --no-cache-dir: pip's cache stays in this layer".into(),
        ));
    }
}

/// `PIP_NO_CACHE_DIR=<truthy>` anywhere in the RUN: before a command, after `env`, `export`.
pub(super) fn sets_pip_no_cache_dir(run: &Run<'_>) -> bool {
    run.commands.iter().any(|c| {
        c.assignments
            .iter()
            .chain(&c.words)
            .any(|w| w.strip_prefix("PIP_NO_CACHE_DIR=").is_some_and(truthy))
    })
}

/// HR003: RUNs that install exactly one package with the same tool, repeated.
pub(super) fn check_single_installs(
    run: &Run<'_>,
    seen: &mut BTreeMap<&'static str, usize>,
    out: &mut Vec<Raw>,
) {
    // Packages per tool in this RUN: a RUN that installs a single one is a layer for it.
    let mut per_tool: BTreeMap<&'static str, usize> = BTreeMap::new();
    for c in &run.commands {
        let (tool, packages) = if c.is_apt("install") {
            ("apt-get", c.operands().len())
        } else if c.is_pip_install() {
            ("pip", c.pip_args().map(pip_packages).unwrap_or_default())
        } else {
            continue;
        };
        *per_tool.entry(tool).or_insert(0) += packages;
    }
    for (tool, packages) in per_tool {
        if packages != 1 {
            continue;
        }
        let count = seen.entry(tool).or_insert(0);
        *count += 1;
        if *count >= 2 {
            out.push(Raw::at(
                "HR003",
                run.inst,
                format!(
                    "another RUN for a single `{tool} install` package ({count} such RUNs so far in this stage)"
                ),
            ));
        }
    }
}

/// The packages on a `pip install` line: operands, not values of options that take one.
pub(super) fn pip_packages(args: &[String]) -> usize {
    const TAKES_VALUE: &[&str] = &[
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        "-t",
        "--target",
        "-i",
        "--index-url",
        "--extra-index-url",
        "-f",
        "--find-links",
        "--cert",
        "--client-cert",
        "--proxy",
        "--timeout",
        "--retries",
        "--prefix",
        "--root",
        "--src",
        "--platform",
        "--python-version",
        "--implementation",
        "--abi",
        "--upgrade-strategy",
        "--trusted-host",
        "--cache-dir",
        "--log",
        "--progress-bar",
        "--no-binary",
        "--only-binary",
        "--config-settings",
        "-C",
        "--global-option",
        "--exists-action",
        "--report",
    ];
    let mut n = 0;
    let mut skip = false;
    let mut past_install = false;
    for a in args {
        if skip {
            skip = false;
            continue;
        }
        if TAKES_VALUE.contains(&a.as_str()) {
            skip = true;
            // A requirements file is many packages.
            if matches!(a.as_str(), "-r" | "--requirement") {
                n += 2;
            }
            continue;
        }
        if a.starts_with('-') {
            continue;
        }
        if !past_install {
            past_install = a == "install";
            continue;
        }
        n += 1;
    }
    n
}
