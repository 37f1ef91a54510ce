//! The file an image is written to: unnamed (O_TMPFILE) until it is
//! complete, so a pack killed even with SIGKILL leaves nothing behind; a
//! named temporary file beside IMAGE where the filesystem has no
//! O_TMPFILE. Either way it takes IMAGE's name by one rename at the end.

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How the file being written will be named.
pub(crate) struct TempOutput {
    /// The temporary name: the file's own (named), or the one it is linked
    /// at before the rename (unnamed).
    temp: PathBuf,
    named: bool,
    /// Whether `temp` exists and is ours to remove.
    placed: bool,
}

impl TempOutput {
    /// A new file in `dir`, readable and writable, to become an image;
    /// `temp` is the name to use on the way (see
    /// [`temp_name`](super::temp_name)).
    pub(crate) fn create(dir: &Path, temp: PathBuf) -> io::Result<(File, TempOutput)> {
        let c = CString::new(dir.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: a valid C string; the descriptor returned is owned below.
        let fd = unsafe {
            libc::open(
                c.as_ptr(),
                libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC,
                0o666 as libc::c_uint,
            )
        };
        if fd >= 0 {
            // SAFETY: fd was just opened and is owned by nobody else.
            let f = unsafe { File::from_raw_fd(fd) };
            return Ok((
                f,
                TempOutput {
                    temp,
                    named: false,
                    placed: false,
                },
            ));
        }
        let e = io::Error::last_os_error();
        // No O_TMPFILE here (an older kernel, or a filesystem without it).
        if !matches!(
            e.raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL | libc::ENOENT)
        ) || !dir.is_dir()
        {
            return Err(e);
        }
        let f = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)?;
        Ok((
            f,
            TempOutput {
                temp,
                named: true,
                placed: true,
            },
        ))
    }

    /// Gives `file` (the one [`TempOutput::create`] made) the name
    /// `target`, replacing what is there in one rename.
    pub(crate) fn persist(&mut self, file: &File, target: &Path) -> io::Result<()> {
        if !self.named {
            let dest = CString::new(self.temp.as_os_str().as_bytes()).map_err(io::Error::other)?;
            let proc_path = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd()))
                .map_err(io::Error::other)?;
            // SAFETY: valid C strings; the descriptor is open.
            let r = unsafe {
                libc::linkat(
                    libc::AT_FDCWD,
                    proc_path.as_ptr(),
                    libc::AT_FDCWD,
                    dest.as_ptr(),
                    libc::AT_SYMLINK_FOLLOW,
                )
            };
            if r != 0 {
                return Err(io::Error::last_os_error());
            }
            self.placed = true;
        }
        std::fs::rename(&self.temp, target)?;
        self.placed = false;
        Ok(())
    }
}

impl Drop for TempOutput {
    fn drop(&mut self) {
        if self.placed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_file_has_no_name_until_persisted() {
        let dir = std::env::temp_dir().join(format!("sqfuse-out-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (mut f, mut t) = TempOutput::create(&dir, dir.join(".x.tmp")).unwrap();
        f.write_all(b"image").unwrap();
        let names = || std::fs::read_dir(&dir).unwrap().count();
        if !t.named {
            assert_eq!(names(), 0, "an unnamed file shows in no listing");
        }
        t.persist(&f, &dir.join("x.sqfs")).unwrap();
        drop(t);
        assert_eq!(std::fs::read(dir.join("x.sqfs")).unwrap(), b"image");
        assert_eq!(names(), 1);
        // Dropped unpersisted: nothing stays.
        let (f, t) = TempOutput::create(&dir, dir.join(".y.tmp")).unwrap();
        drop((f, t));
        assert_eq!(names(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
