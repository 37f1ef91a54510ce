//! `sqfuse profile IMAGE PROFILE -- COMMAND...`: records a start-up
//! profile in one step, for packagers: mounts IMAGE on a temporary
//! directory with `-o record=`, runs COMMAND there, unmounts, and leaves
//! the profile in PROFILE.

use crate::error::{Error, Result};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

/// What to record.
pub struct Recording<'a> {
    pub images: &'a [PathBuf],
    pub profile: &'a Path,
    /// More `-o` options for the mount.
    pub options: &'a [String],
    /// The program and its arguments; `{}` in an argument stands for the
    /// mountpoint. It runs in the mountpoint, with `SQFUSE_MOUNT` set to it.
    pub command: &'a [OsString],
}

/// How long the mount may take to come up (a URL image's first fetch).
const MOUNT_WAIT: Duration = Duration::from_secs(120);

/// Records (replacing PROFILE if it exists: the caller checks); returns
/// the command's exit status.
pub fn record(r: &Recording<'_>) -> Result<ExitStatus> {
    if r.command.is_empty() {
        return Err(Error::invalid("give the command to record after --"));
    }
    let profile = std::path::absolute(r.profile)
        .map_err(|e| Error::io(crate::error::shown_path(r.profile), e))?;
    // Recorded beside PROFILE under a name of its own, renamed over it
    // once written: an existing PROFILE stays whole until then.
    let mut tmp = profile.clone().into_os_string();
    tmp.push(format!(".sqfuse-record-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mnt = temp_dir()?;
    let result = record_in(r, &tmp, &mnt).and_then(|status| {
        std::fs::rename(&tmp, &profile)
            .map_err(|e| Error::io(crate::error::shown_path(&profile), e))?;
        Ok(status)
    });
    let _ = std::fs::remove_dir(&mnt);
    let _ = std::fs::remove_file(&tmp);
    result
}

fn temp_dir() -> Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let mut template = base
        .join("sqfuse-profile-XXXXXX")
        .into_os_string()
        .into_vec();
    template.push(0);
    // SAFETY: a NUL-terminated, writable template.
    let p = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    if p.is_null() {
        return Err(Error::io(
            format!("making a mountpoint in {}", base.display()),
            std::io::Error::last_os_error(),
        ));
    }
    template.pop();
    Ok(PathBuf::from(OsString::from_vec(template)))
}

fn record_in(r: &Recording<'_>, profile: &Path, mnt: &Path) -> Result<ExitStatus> {
    let exe = std::env::current_exe().map_err(|e| Error::io("finding sqfuse itself", e))?;
    let mut record_opt = OsString::from("record=");
    record_opt.push(escape_commas(profile.as_os_str()));
    let mut mount = Command::new(exe);
    mount.arg("mount").arg("-f").arg("-o").arg(record_opt);
    for o in r.options {
        mount.arg("-o").arg(o);
    }
    mount.arg("--").args(r.images).arg(mnt);
    let mut server = mount
        .spawn()
        .map_err(|e| Error::io("starting the mount", e))?;
    let parent_dev = dev_of(mnt.parent().unwrap_or(Path::new("/")));
    let started = Instant::now();
    loop {
        if let Ok(Some(st)) = server.try_wait() {
            return Err(Error::invalid(format!(
                "the mount of {} failed ({st})",
                crate::error::shown_path(&r.images[0])
            )));
        }
        if dev_of(mnt) != parent_dev {
            break;
        }
        if started.elapsed() > MOUNT_WAIT {
            let _ = server.kill();
            let _ = server.wait();
            return Err(Error::invalid("the mount did not come up in time"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let args: Vec<OsString> = r.command[1..]
        .iter()
        .map(|a| substitute(a, mnt.as_os_str()))
        .collect();
    let status = Command::new(&r.command[0])
        .args(&args)
        .current_dir(mnt)
        .env("SQFUSE_MOUNT", mnt)
        .status();
    // Unmount (the server writes the profile as it ends), also when the
    // command could not start.
    let mut unmounted = false;
    for _ in 0..50 {
        if crate::mount::unmount(mnt, false).is_ok() {
            unmounted = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if !unmounted {
        let _ = crate::mount::unmount(mnt, true);
    }
    let _ = server.wait();
    let status =
        status.map_err(|e| Error::io(format!("running {}", r.command[0].to_string_lossy()), e))?;
    if !profile.is_file() {
        return Err(Error::invalid(format!(
            "no profile was written to {}",
            crate::error::shown_path(profile)
        )));
    }
    Ok(status)
}

fn dev_of(p: &Path) -> Option<u64> {
    std::fs::metadata(p).ok().map(|m| m.dev())
}

/// `{}` in `arg` replaced by `mnt`.
fn substitute(arg: &OsStr, mnt: &OsStr) -> OsString {
    let a = arg.as_bytes();
    let mut out = Vec::with_capacity(a.len());
    let mut i = 0;
    while i < a.len() {
        if a[i..].starts_with(b"{}") {
            out.extend_from_slice(mnt.as_bytes());
            i += 2;
        } else {
            out.push(a[i]);
            i += 1;
        }
    }
    OsString::from_vec(out)
}

/// Commas and backslashes escaped as `-o` lists take them.
fn escape_commas(p: &OsStr) -> OsString {
    let mut out = Vec::new();
    for &b in p.as_bytes() {
        if b == b',' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    OsString::from_vec(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_become_the_mountpoint() {
        assert_eq!(
            substitute(OsStr::new("{}/bin/x:{}"), OsStr::new("/m")),
            OsString::from("/m/bin/x:/m")
        );
        assert_eq!(
            escape_commas(OsStr::new("a,b\\c")),
            OsString::from("a\\,b\\\\c")
        );
    }
}
