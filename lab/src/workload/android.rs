//! A synthetic tree shaped like the Android SDK, the biggest item on a hosted runner: deep
//! directories, many small files, a few big ones. The same number of files and bytes always
//! gives the same tree.

use std::collections::{BTreeSet, HashMap};
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rayon::prelude::*;

use crate::workload::rng::Rng;

/// The seed of the tree: the same flags always give the same tree.
const SEED: u64 = 0x4845_4144_524f_4f4d; // "HEADROOM"

/// A tree to write: every directory (parents first) and every file, relative to the root.
#[derive(Debug)]
pub struct Tree {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<(PathBuf, u64)>,
}

/// A part of the SDK: where its directories start, how they branch below, what files hold.
struct Family {
    /// Share of the leaf directories.
    weight: u64,
    /// Components from the tree's root; `{ndk}`, `{clang}`, `{api}`, `{bt}`, `{cmake}` are
    /// versions drawn per directory.
    prefix: &'static [&'static str],
    /// Names for the levels below the prefix, in order; deeper levels use [`FILLER`].
    levels: &'static [&'static [&'static str]],
    exts: &'static [&'static str],
}

const NDK_LLVM: [&str; 7] = [
    "sdk",
    "ndk",
    "{ndk}",
    "toolchains",
    "llvm",
    "prebuilt",
    "linux-x86_64",
];

const fn llvm(rest: [&'static str; 3]) -> [&'static str; 10] {
    let mut out = [""; 10];
    let mut i = 0;
    while i < 7 {
        out[i] = NDK_LLVM[i];
        i += 1;
    }
    while i < 10 {
        out[i] = rest[i - 7];
        i += 1;
    }
    out
}

const CLANG_PREFIX: [&str; 10] = llvm(["lib", "clang", "{clang}"]);
const INCLUDE_PREFIX: [&str; 10] = llvm(["sysroot", "usr", "include"]);
const LIB_PREFIX: [&str; 10] = llvm(["sysroot", "usr", "lib"]);
const PYTHON_PREFIX: [&str; 9] = [
    "sdk",
    "ndk",
    "{ndk}",
    "toolchains",
    "llvm",
    "prebuilt",
    "linux-x86_64",
    "lib",
    "python3.11",
];

const FAMILIES: &[Family] = &[
    Family {
        weight: 6,
        prefix: &CLANG_PREFIX,
        levels: &[
            &["lib", "include", "share"],
            &["linux", "sanitizer", "fuzzer", "xray", "profile", "orc"],
        ],
        exts: &["a", "so", "h", "txt"],
    },
    Family {
        weight: 22,
        prefix: &INCLUDE_PREFIX,
        levels: &[
            &[
                "linux",
                "asm-generic",
                "android",
                "sys",
                "netinet",
                "arpa",
                "bits",
                "c++",
                "media",
                "aaudio",
                "camera",
                "EGL",
                "GLES3",
                "vulkan",
                "sound",
                "scsi",
                "rdma",
                "drm",
                "misc",
                "xen",
            ],
            &[
                "v1",
                "uapi",
                "detail",
                "__ranges",
                "experimental",
                "__algorithm",
                "__format",
                "__chrono",
                "ext",
                "impl",
            ],
        ],
        exts: &["h"],
    },
    Family {
        weight: 8,
        prefix: &LIB_PREFIX,
        levels: &[
            &[
                "aarch64-linux-android",
                "arm-linux-androideabi",
                "i686-linux-android",
                "x86_64-linux-android",
            ],
            &[
                "21", "22", "23", "24", "26", "27", "28", "29", "30", "31", "32", "33", "34", "35",
            ],
        ],
        exts: &["so", "a", "o"],
    },
    Family {
        weight: 10,
        prefix: &PYTHON_PREFIX,
        levels: &[
            &[
                "site-packages",
                "lib2to3",
                "email",
                "encodings",
                "json",
                "xml",
                "asyncio",
                "unittest",
                "multiprocessing",
                "idlelib",
                "tkinter",
                "ctypes",
                "concurrent",
                "importlib",
            ],
            &[
                "__pycache__",
                "tests",
                "dom",
                "etree",
                "parsers",
                "sax",
                "fixes",
                "pgen2",
                "command",
                "futures",
                "resources",
                "metadata",
            ],
            &["__pycache__", "data", "util"],
        ],
        exts: &["py", "pyc"],
    },
    Family {
        weight: 10,
        prefix: &["sdk", "ndk", "{ndk}", "sources", "third_party"],
        levels: &[
            &["googletest", "vulkan", "shaderc", "libc++abi"],
            &["src", "include", "test", "build"],
            &[
                "gtest",
                "internal",
                "custom",
                "impl",
                "spirv",
                "glslang",
                "libshaderc",
            ],
            &["detail", "common", "util", "gen"],
            &["v1", "v2", "x86_64", "arm64"],
        ],
        exts: &["cc", "h", "cpp", "txt"],
    },
    Family {
        weight: 14,
        prefix: &["sdk", "sources", "{api}"],
        levels: &[
            &[
                "android", "com", "java", "javax", "dalvik", "libcore", "org",
            ],
            &[
                "android",
                "internal",
                "util",
                "net",
                "security",
                "widget",
                "view",
                "app",
                "content",
                "graphics",
                "media",
                "os",
                "provider",
                "telephony",
            ],
            &[
                "internal",
                "util",
                "concurrent",
                "atomic",
                "impl",
                "provider",
                "location",
                "hardware",
                "camera2",
                "bluetooth",
                "wifi",
                "text",
            ],
            &[
                "policy",
                "params",
                "utils",
                "os",
                "widget",
                "telephony",
                "uicc",
                "cdma",
                "gsm",
                "display",
            ],
            &["data", "impl", "util", "metadata"],
        ],
        exts: &["java"],
    },
    Family {
        weight: 12,
        prefix: &["sdk", "platforms", "{api}"],
        levels: &[
            &["data", "skins", "templates", "optional"],
            &["res", "fonts", "keyboards", "WXGA800", "HVGA", "QVGA"],
            &[
                "drawable-hdpi",
                "drawable-xhdpi",
                "drawable-xxhdpi",
                "values",
                "values-fr",
                "values-de",
                "values-ja",
                "layout",
                "xml",
                "raw",
                "mipmap-hdpi",
                "color",
                "anim",
            ],
        ],
        exts: &["xml", "png", "ttf", "jar"],
    },
    Family {
        weight: 8,
        prefix: &["sdk", "build-tools", "{bt}"],
        levels: &[
            &["lib64", "lib", "renderscript", "core-lambda-stubs"],
            &["include", "clang-include", "lib", "bc", "jni"],
            &["arm64-v8a", "armeabi-v7a", "x86", "x86_64", "packaged"],
        ],
        exts: &["so", "jar", "h", "bc"],
    },
    Family {
        weight: 4,
        prefix: &["sdk", "system-images", "{api}", "google_apis", "x86_64"],
        levels: &[
            &["data", "system", "vendor"],
            &["app", "priv-app", "framework", "lib64", "etc"],
            &[
                "PrebuiltGmsCore",
                "Chrome",
                "Phonesky",
                "arm64",
                "oat",
                "permissions",
            ],
        ],
        exts: &["img", "apk", "odex", "vdex", "xml"],
    },
    Family {
        weight: 6,
        prefix: &["sdk", "cmake", "{cmake}", "share", "cmake-3.22"],
        levels: &[
            &["Modules", "Help", "Templates"],
            &[
                "Platform",
                "Compiler",
                "FindPython",
                "Internal",
                "CPack",
                "command",
                "module",
                "variable",
                "prop_tgt",
            ],
            &["CheckTypeSize", "IntelVSImplicitPath", "Android", "Darwin"],
        ],
        exts: &["cmake", "rst", "txt", "in"],
    },
];

const FILLER: &[&str] = &[
    "src", "main", "res", "impl", "internal", "common", "detail", "util", "core", "base", "gen",
    "include", "lib", "share", "meta", "data", "v1", "v2",
];

const STEMS: &[&str] = &[
    "lib", "android", "util", "core", "test", "res", "main", "config", "module", "common",
];

/// File sizes before scaling: (share in 1/100000, smallest, largest). Mostly small files
/// (headers, sources, resources), with a long tail of libraries and images.
const SIZE_CLASSES: &[(u64, u64, u64)] = &[
    (40_000, 100, 1 << 10),
    (30_000, 1 << 10, 4 << 10),
    (18_000, 4 << 10, 16 << 10),
    (8_500, 16 << 10, 64 << 10),
    (2_900, 64 << 10, 256 << 10),
    (500, 256 << 10, 1 << 20),
    (90, 1 << 20, 8 << 20),
    (10, 8 << 20, 64 << 20),
];

/// Plan the tree: `files` files in leaf directories 8–12 levels deep, 10–200 files each,
/// sizes drawn from [`SIZE_CLASSES`] and scaled so that they add up to exactly `total`.
pub fn plan_tree(files: usize, total: u64) -> Tree {
    let mut rng = Rng::new(SEED);
    let weights: u64 = FAMILIES.iter().map(|f| f.weight).sum();
    let mut leaves: Vec<(PathBuf, &'static [&'static str], usize)> = Vec::new();
    let mut index: HashMap<PathBuf, usize> = HashMap::new();
    let mut placed = 0;
    while placed < files {
        // 10–200 files, skewed towards the smaller counts.
        let fan = 10 + (rng.range(0, 190) * rng.range(0, 190) / 190) as usize;
        let fan = fan.min(files - placed);
        placed += fan;
        let mut w = rng.next_u64() % weights;
        let family = FAMILIES
            .iter()
            .find(|f| {
                if w < f.weight {
                    true
                } else {
                    w -= f.weight;
                    false
                }
            })
            .unwrap_or(&FAMILIES[0]);
        // Draw a directory; draw again (a few times) rather than grow one past 200 files.
        let mut tries = 0;
        let path = loop {
            let path = draw_dir(&mut rng, family);
            tries += 1;
            let full = index.get(&path).is_some_and(|&i| leaves[i].2 + fan > 200);
            if !full || tries >= 20 {
                break path;
            }
        };
        match index.get(&path) {
            Some(&i) => leaves[i].2 += fan,
            None => {
                index.insert(path.clone(), leaves.len());
                leaves.push((path, family.exts, fan));
            }
        }
    }

    let mut dirs = BTreeSet::new();
    let mut files_out = Vec::with_capacity(files);
    let mut raw = Vec::with_capacity(files);
    for (dir, exts, count) in &leaves {
        let mut d = dir.as_path();
        while dirs.insert(d.to_path_buf()) {
            match d.parent() {
                Some(p) if !p.as_os_str().is_empty() => d = p,
                _ => break,
            }
        }
        for n in 0..*count {
            let name = format!("{}_{n:03}.{}", *rng.pick(STEMS), *rng.pick(exts));
            files_out.push((dir.join(name), 0));
            let mut share = rng.next_u64() % 100_000;
            let &(_, lo, hi) = SIZE_CLASSES
                .iter()
                .find(|(s, _, _)| {
                    if share < *s {
                        true
                    } else {
                        share -= s;
                        false
                    }
                })
                .unwrap_or(&SIZE_CLASSES[0]);
            raw.push(rng.range(lo, hi));
        }
    }
    let sum: u128 = raw.iter().map(|&r| u128::from(r)).sum::<u128>().max(1);
    let mut written = 0u64;
    for (file, r) in files_out.iter_mut().zip(&raw) {
        file.1 = (u128::from(*r) * u128::from(total) / sum) as u64;
        written += file.1;
    }
    if let Some(largest) = files_out.iter_mut().max_by_key(|f| f.1) {
        largest.1 += total - written;
    }
    Tree {
        dirs: dirs.into_iter().collect(),
        files: files_out,
    }
}

/// A directory of `family`, 8–12 levels deep and at least one level below its prefix.
fn draw_dir(rng: &mut Rng, family: &Family) -> PathBuf {
    let target = rng.range(8, 12) as usize;
    let mut path = PathBuf::new();
    for part in family.prefix {
        path.push(match *part {
            "{ndk}" => *rng.pick(&["25.2.9519653", "26.3.11579264", "27.2.12479018"]),
            "{clang}" => *rng.pick(&["17", "18"]),
            "{api}" => *rng.pick(&["android-31", "android-33", "android-34", "android-35"]),
            "{bt}" => *rng.pick(&["33.0.2", "34.0.0", "35.0.0"]),
            "{cmake}" => *rng.pick(&["3.22.1", "3.31.5"]),
            other => other,
        });
    }
    let mut level = 0;
    while level == 0 || path.components().count() < target {
        path.push(*rng.pick(family.levels.get(level).copied().unwrap_or(FILLER)));
        level += 1;
    }
    path
}

/// What every file holds: a repeated, non-zero pattern (real blocks, never sparse).
pub fn content_buffer() -> Vec<u8> {
    (0..1usize << 20).map(|i| (i % 251) as u8 + 1).collect()
}

/// Write `tree` under `root` (which must not exist), files in parallel.
pub fn write_tree(tree: &Tree, root: &Path, buffer: &[u8]) -> Result<()> {
    std::fs::create_dir(root).with_context(|| format!("creating {}", root.display()))?;
    for dir in &tree.dirs {
        let path = root.join(dir);
        std::fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
    }
    tree.files.par_iter().try_for_each(|(rel, len)| {
        let path = root.join(rel);
        let mut file =
            File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut left = *len as usize;
        while left > 0 {
            let n = left.min(buffer.len());
            file.write_all(&buffer[..n])
                .with_context(|| format!("writing {}", path.display()))?;
            left -= n;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_is_deterministic_deep_and_sized_exactly() {
        let a = plan_tree(5_000, 50_000_000);
        let b = plan_tree(5_000, 50_000_000);
        assert_eq!(a.files, b.files);
        assert_eq!(a.dirs, b.dirs);
        assert_eq!(a.files.len(), 5_000);
        assert_eq!(a.files.iter().map(|f| f.1).sum::<u64>(), 50_000_000);
        let names: BTreeSet<&PathBuf> = a.files.iter().map(|f| &f.0).collect();
        assert_eq!(names.len(), a.files.len(), "file names are unique");
        for (file, _) in &a.files {
            let depth = file.components().count() - 1;
            assert!((8..=12).contains(&depth), "{}", file.display());
        }
        let mut sizes: Vec<u64> = a.files.iter().map(|f| f.1).collect();
        sizes.sort_unstable();
        assert!(sizes[sizes.len() / 2] < 50_000_000 / 5_000, "mostly small");
        assert!(
            sizes[sizes.len() - 1] > 20 * 50_000_000 / 5_000,
            "a long tail"
        );
    }
}
