//! Replacing a user's file whole: written beside it, then renamed over it.

use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` through a temporary file beside it (`.NAME.headroom-tmp`) and a
/// rename: a reader, or an interrupted run, sees the old file or the new one, never half of
/// one. The old file's permissions are kept. The directory must exist.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.headroom-tmp"));
    let mode = std::fs::metadata(path).ok().map(|m| m.permissions());
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        if let Some(mode) = mode {
            std::fs::set_permissions(&tmp, mode)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        // Never leave the temporary file behind.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether [`write_atomically`] could replace `path`, asked without changing it: its
/// directory takes a new file (not read-only, not immutable, writable by us), and the file,
/// when there is one, is not immutable or append-only (`chattr +i`/`+a`), not a mount point
/// (a bind-mounted file cannot be renamed over) and not a symbolic link. The reason, when not.
pub fn check_replaceable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let shown = path.display();
    if dir.exists() {
        let probe = dir.join(format!(".{name}.headroom-probe"));
        let made = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(&probe);
        match made {
            Ok(_) => {
                let _ = std::fs::remove_file(&probe);
            }
            Err(e) => {
                return Err(format!(
                    "{shown} cannot be replaced: its directory {} takes no new file ({e})",
                    dir.display()
                ));
            }
        }
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{shown}: {e}")),
    };
    if meta.file_type().is_symlink() {
        return Err(format!("{shown} is a symbolic link; it is not replaced"));
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32)
        .open(path)
        .map_err(|e| format!("{shown}: {e}"))?;
    if let Ok(flags) = rustix::fs::ioctl_getflags(&file) {
        use rustix::fs::IFlags;
        if flags.intersects(IFlags::IMMUTABLE | IFlags::APPEND) {
            return Err(format!(
                "{shown} is immutable or append-only (chattr +i/+a): it cannot be replaced; \
                 nothing was changed (chattr -i it, or leave the data root where it is)"
            ));
        }
    }
    let mount_of = |p: &Path| {
        rustix::fs::statx(
            rustix::fs::CWD,
            p,
            rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            rustix::fs::StatxFlags::MNT_ID,
        )
        .ok()
        .filter(|st| st.stx_mask & rustix::fs::StatxFlags::MNT_ID.bits() != 0)
        .map(|st| st.stx_mnt_id)
    };
    if let (Some(file_mnt), Some(dir_mnt)) = (mount_of(path), mount_of(dir))
        && file_mnt != dir_mnt
    {
        return Err(format!(
            "{shown} is a mount point (a file mounted over it): it cannot be replaced; \
             nothing was changed"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_replaced_whole_with_its_mode_and_no_leftover() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::write(&path, "{}").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        write_atomically(&path, b"{\"a\":1}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_replace_leaves_no_temporary_file_and_the_check_says_why_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("daemon.json");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("inside"), b"x").unwrap();
        assert!(
            write_atomically(&path, b"{}").is_err(),
            "a non-empty directory"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no tmp left"
        );
        let file = dir.path().join("ok.json");
        assert_eq!(check_replaceable(&file), Ok(()), "absent is fine");
        std::fs::write(&file, b"{}").unwrap();
        assert_eq!(check_replaceable(&file), Ok(()));
        let link = dir.path().join("link.json");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(
            check_replaceable(&link)
                .unwrap_err()
                .contains("symbolic link")
        );
        let gone = dir.path().join("no/such/dir/daemon.json");
        assert_eq!(check_replaceable(&gone), Ok(()), "made when written");
    }
}
