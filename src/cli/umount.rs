//! `sqfuse umount MOUNTPOINT` (also `unmount`): fusermount3 -u for the
//! user's own mounts, umount(2) as root; `-l` detaches at once and
//! unmounts once the last user lets go. A busy mountpoint's message names
//! the processes that hold it, as `fuser -m` finds them.

use crate::error::{shown_path, Error, Result};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Most holders a message names.
const NAMED_HOLDERS: usize = 5;
/// Most processes looked at (a machine has far fewer).
const MAX_PROCESSES: usize = 1 << 20;

/// Unmounts `mountpoint`; lazily with `lazy`.
pub fn umount(mountpoint: &Path, lazy: bool) -> Result<()> {
    let mnt = resolve(mountpoint)?;
    if !mount_points().contains(&mnt) {
        return Err(Error::invalid(format!(
            "{} is not a mountpoint",
            shown_path(mountpoint)
        )));
    }
    match crate::mount::unmount(&mnt, lazy) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            let held = holders(&mnt);
            let by = match held.len() {
                0 => String::new(),
                n => {
                    let mut names: Vec<String> = held
                        .iter()
                        .take(NAMED_HOLDERS)
                        .map(Holder::describe)
                        .collect();
                    if n > NAMED_HOLDERS {
                        names.push(format!("{} more", n - NAMED_HOLDERS));
                    }
                    format!(": in use by {}", names.join(", "))
                }
            };
            Err(Error::invalid(format!(
                "{} is busy{by}; `sqfuse umount -l {}` detaches it now and unmounts it once they let go",
                shown_path(mountpoint),
                shown_path(mountpoint)
            )))
        }
        Err(e) => Err(Error::io(
            format!("cannot unmount {}", shown_path(mountpoint)),
            e,
        )),
    }
}

/// The mountpoint as /proc/mounts names it. A FUSE mount whose server died
/// cannot be looked at ("Transport endpoint is not connected"), and those
/// are the ones most in need of unmounting: its path is made absolute
/// without asking the filesystem then.
fn resolve(p: &Path) -> Result<PathBuf> {
    match std::fs::canonicalize(p) {
        Ok(c) => Ok(c),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            let abs = std::path::absolute(p).map_err(|e| Error::io(shown_path(p), e))?;
            let parent = abs.parent().map(std::fs::canonicalize).transpose();
            match (parent, abs.file_name()) {
                (Ok(Some(dir)), Some(name)) => Ok(dir.join(name)),
                _ => Ok(abs),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::invalid(format!("{} does not exist", shown_path(p))))
        }
        Err(e) => Err(Error::io(shown_path(p), e)),
    }
}

/// Every mountpoint of this process's namespace.
fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read("/proc/self/mounts").unwrap_or_default();
    text.split(|&b| b == b'\n')
        .filter_map(|l| l.split(|&b| b == b' ').nth(1))
        .map(|m| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(m))))
        .collect()
}

/// /proc/mounts writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)))
            .map(|d| d.iter().fold(0u32, |n, c| n * 8 + u32::from(c - b'0')));
        match octal {
            Some(v) if v <= 0xff => {
                out.push(v as u8);
                i += 4;
            }
            _ => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// A process that holds a mount, and how.
struct Holder {
    pid: u32,
    command: String,
    how: &'static str,
}

impl Holder {
    fn describe(&self) -> String {
        format!("{} ({}, {})", self.pid, self.command, self.how)
    }
}

/// The processes with their working directory, root, executable, an open
/// file or a mapped file under `mnt`. Read from the links' text in /proc,
/// never by looking through them: a stat would go to the mount's server,
/// which may be the thing that hangs.
fn holders(mnt: &Path) -> Vec<Holder> {
    let under = |target: &Path| target == mnt || target.starts_with(mnt);
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in procs.flatten().take(MAX_PROCESSES) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let dir = entry.path();
        let link = |name: &str| std::fs::read_link(dir.join(name)).ok();
        let how = if link("cwd").is_some_and(|t| under(&t)) {
            Some("working directory")
        } else if link("root").is_some_and(|t| under(&t)) {
            Some("root directory")
        } else if link("exe").is_some_and(|t| under(&t)) {
            Some("running a program from it")
        } else if open_files(&dir).any(|t| under(&t)) {
            Some("an open file")
        } else if mapped_files(&dir).iter().any(|t| under(t)) {
            Some("a mapped file")
        } else {
            None
        };
        if let Some(how) = how {
            let command = std::fs::read_to_string(dir.join("comm"))
                .map(|c| crate::error::outside_text(c.trim()))
                .unwrap_or_else(|_| "?".into());
            found.push(Holder { pid, command, how });
        }
    }
    found.sort_by_key(|h| h.pid);
    found
}

/// What a process's descriptors point at.
fn open_files(proc_dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(proc_dir.join("fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
}

/// The files a process has mapped (the sixth field of /proc/PID/maps).
fn mapped_files(proc_dir: &Path) -> Vec<PathBuf> {
    let maps = std::fs::read(proc_dir.join("maps")).unwrap_or_default();
    maps.split(|&b| b == b'\n')
        .filter_map(|l| {
            let at = l.iter().position(|&b| b == b'/')?;
            // Past the five fixed fields only: the path starts with '/'.
            (l[..at]
                .split(|&b| b == b' ')
                .filter(|f| !f.is_empty())
                .count()
                == 5)
                .then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&l[at..])))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_are_unescaped() {
        assert_eq!(unescape(br"/mnt/a\040b"), b"/mnt/a b");
        assert_eq!(unescape(br"/x\134y"), b"/x\\y");
        assert_eq!(unescape(br"/odd\04"), br"/odd\04");
        assert_eq!(unescape(br"\777"), br"\777");
    }

    #[test]
    fn this_process_holds_its_working_directory() {
        let cwd = std::env::current_dir().unwrap();
        let held = holders(&cwd);
        assert!(
            held.iter()
                .any(|h| h.pid == std::process::id() && h.how == "working directory"),
            "{:?}",
            held.iter().map(Holder::describe).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_path_that_is_no_mountpoint_is_one_line() {
        let e = umount(Path::new("/proc/self"), false).unwrap_err();
        assert!(e.to_string().ends_with("is not a mountpoint"), "{e}");
        let e = umount(Path::new("/no/such/dir"), false).unwrap_err();
        assert_eq!(e.to_string(), "/no/such/dir does not exist");
    }
}
