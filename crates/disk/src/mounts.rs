//! The kernel's mount table (`/proc/self/mountinfo`): which filesystem holds a path, and which
//! mount points lie inside a tree that is about to be deleted.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// One mounted filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the device, as `st_dev` reports it.
    pub major: u32,
    pub minor: u32,
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// A snapshot of the mount table.
#[derive(Debug, Clone, Default)]
pub struct MountTable {
    pub mounts: Vec<Mount>,
}

const MOUNTINFO: &str = "/proc/self/mountinfo";

impl MountTable {
    /// Read the current mount table.
    pub fn read() -> Result<Self> {
        let text = std::fs::read(MOUNTINFO).map_err(|e| Error::io(MOUNTINFO, e))?;
        Ok(Self::parse(&text))
    }

    /// Parse mountinfo text; lines that do not have the expected shape are ignored.
    pub fn parse(text: &[u8]) -> Self {
        let mounts = text.split(|&b| b == b'\n').filter_map(parse_line).collect();
        MountTable { mounts }
    }

    /// The mount that holds `path` (already canonical): the longest mount point that is a
    /// prefix of it, preferring mounts of the device `dev` when one is given.
    pub fn containing(&self, path: &Path, dev: Option<(u32, u32)>) -> Option<&Mount> {
        let best = |same_dev: bool| {
            self.mounts
                .iter()
                .filter(|m| path.starts_with(&m.mount_point))
                .filter(|m| !same_dev || dev == Some((m.major, m.minor)))
                .max_by_key(|m| m.mount_point.as_os_str().len())
        };
        best(dev.is_some()).or_else(|| best(false))
    }

    /// Mount points strictly inside `path`.
    pub fn mounts_under(&self, path: &Path) -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = self
            .mounts
            .iter()
            .filter(|m| m.mount_point != path && m.mount_point.starts_with(path))
            .map(|m| m.mount_point.clone())
            .collect();
        found.sort();
        found.dedup();
        found
    }
}

fn parse_line(line: &[u8]) -> Option<Mount> {
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    let dash = fields.iter().position(|f| *f == b"-")?;
    if dash < 6 || fields.len() < dash + 3 {
        return None;
    }
    let devno = std::str::from_utf8(fields[2]).ok()?;
    let (major, minor) = devno.split_once(':')?;
    Some(Mount {
        major: major.parse().ok()?,
        minor: minor.parse().ok()?,
        mount_point: PathBuf::from(OsString::from_vec(unescape(fields[4]))),
        fs_type: String::from_utf8_lossy(fields[dash + 1]).into_owned(),
        source: String::from_utf8_lossy(&unescape(fields[dash + 2])).into_owned(),
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo` octal.
pub(crate) fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' {
            let digits = &field[i + 1..(i + 4).min(field.len())];
            if digits.len() == 3 && digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &[u8] = b"22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
        30 22 7:3 / /tmp/my\\040dir rw,relatime shared:9 - ext4 /dev/loop3 rw\n\
        31 22 0:25 / /proc rw - proc proc rw\n\
        garbage line\n";

    #[test]
    fn parses_mountinfo_and_unescapes_paths() {
        let table = MountTable::parse(SAMPLE);
        assert_eq!(table.mounts.len(), 3);
        assert_eq!(table.mounts[1].mount_point, PathBuf::from("/tmp/my dir"));
        assert_eq!((table.mounts[1].major, table.mounts[1].minor), (7, 3));
        assert_eq!(table.mounts[1].fs_type, "ext4");
        assert_eq!(table.mounts[1].source, "/dev/loop3");
    }

    #[test]
    fn finds_the_containing_mount_and_mounts_below() {
        let table = MountTable::parse(SAMPLE);
        let m = table
            .containing(Path::new("/tmp/my dir/x"), Some((7, 3)))
            .unwrap();
        assert_eq!(m.mount_point, PathBuf::from("/tmp/my dir"));
        let root = table
            .containing(Path::new("/usr/bin"), Some((254, 0)))
            .unwrap();
        assert_eq!(root.mount_point, PathBuf::from("/"));
        assert_eq!(
            table.mounts_under(Path::new("/tmp")),
            vec![PathBuf::from("/tmp/my dir")]
        );
        assert!(table.mounts_under(Path::new("/tmp/my dir")).is_empty());
    }

    #[test]
    fn odd_input_never_panics() {
        for text in [
            &b""[..],
            b"-",
            b"1 2 3 4 5 6 - x",
            b"1 2 a:b / / o - t s o",
            b"\\",
            b"x \\7",
        ] {
            let _ = MountTable::parse(text);
        }
        assert_eq!(unescape(b"a\\"), b"a\\");
        assert_eq!(unescape(b"a\\04"), b"a\\04");
    }
}
