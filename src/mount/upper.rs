//! A writable mount's setup: the upper directory named by `upper=` (or a
//! private one for `upper=tmp`), the view over it, and the session that
//! serves either kind of mount.

use super::fs::SqFs;
use super::options::{MountOpts, UpperChoice};
use super::write::WritableFs;
use crate::error::{Error, Result};
use crate::view::upper::UpperDir;
use crate::view::WritableView;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The filesystem a mount serves.
pub enum Served {
    ReadOnly(SqFs),
    Writable {
        fs: WritableFs,
        /// `upper=tmp`'s directory, removed when the session ends.
        temp: Option<TempUpper>,
    },
}

/// A private upper directory, removed with everything in it when dropped.
pub struct TempUpper(PathBuf);

impl Drop for TempUpper {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!(
                "sqfuse: cannot remove the temporary upper {}: {}",
                self.0.display(),
                crate::error::io_words(&e)
            );
        }
    }
}

/// A started session: its notifier, and what runs it to the end.
pub type Started = (
    fuser::Notifier,
    Box<dyn FnOnce() -> std::io::Result<()> + Send>,
);

impl Served {
    /// The read-only server of the layers (the whole mount, or the lower
    /// part of a writable one).
    pub fn ro(&self) -> &SqFs {
        match self {
            Served::ReadOnly(fs) => fs,
            Served::Writable { fs, .. } => fs.lower_server(),
        }
    }

    /// Forgets what this process would clean up: the forked child that
    /// serves the mount does it.
    pub fn leave_to_child(self) {
        if let Served::Writable { temp: Some(t), .. } = self {
            std::mem::forget(t);
        }
    }

    /// Connects to the kernel over `fd`.
    pub fn session(self, fd: OwnedFd, config: fuser::Config) -> std::io::Result<Started> {
        let acl = config.acl;
        match self {
            Served::ReadOnly(fs) => {
                let s = fuser::Session::from_fd(fs, fd, acl, config)?;
                Ok((s.notifier(), Box::new(move || s.run())))
            }
            Served::Writable { fs, temp } => {
                let s = fuser::Session::from_fd(fs, fd, acl, config)?;
                Ok((
                    s.notifier(),
                    Box::new(move || {
                        let r = s.run();
                        drop(temp);
                        r
                    }),
                ))
            }
        }
    }
}

/// A private directory for `upper=tmp`: in `$XDG_RUNTIME_DIR` (a user's
/// tmpfs) when set, else the system's temporary directory; mode 0700.
fn make_temp_upper() -> Result<TempUpper> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    for _ in 0..16 {
        let mut r = [0u8; 6];
        getrandom::fill(&mut r).map_err(|e| Error::invalid(format!("randomness: {e}")))?;
        let p = base.join(format!("sqfuse-upper.{}", hex::encode(r)));
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o700).create(&p) {
            Ok(()) => return Ok(TempUpper(p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(Error::io(
                    format!("upper=tmp: cannot make a directory in {}", base.display()),
                    e,
                ))
            }
        }
    }
    Err(Error::invalid(format!(
        "upper=tmp: no free name in {}",
        base.display()
    )))
}

fn upper_error(what: &str, path: &Path, e: rustix::io::Errno) -> Error {
    let words = match e {
        rustix::io::Errno::XDEV => "not on the same filesystem as the upper directory".to_string(),
        rustix::io::Errno::WOULDBLOCK => "in use by another mount".to_string(),
        e => crate::error::io_words(&std::io::Error::from_raw_os_error(e.raw_os_error())),
    };
    Error::invalid(format!(
        "{what}={}: {words}",
        crate::error::shown_path(path)
    ))
}

/// The mount `o` asks for, over the layers `fs` serves: `fs` itself, or
/// (with `upper=`) a writable mount of them.
pub fn writable(o: &MountOpts, fs: SqFs) -> Result<Served> {
    let Some(choice) = &o.upper else {
        if o.work.is_some() {
            return Err(Error::invalid(
                "work= is for a writable mount: give upper= too",
            ));
        }
        return Ok(Served::ReadOnly(fs));
    };
    let (dir, temp) = match choice {
        UpperChoice::Dir(d) => (d.clone(), None),
        UpperChoice::Temporary => {
            let t = make_temp_upper()?;
            (t.0.clone(), Some(t))
        }
    };
    if let Some(w) = &o.work {
        if w.starts_with(&dir) || dir.starts_with(w) {
            return Err(Error::invalid(format!(
                "work={}: must be beside the upper directory, not in or above it",
                crate::error::shown_path(w)
            )));
        }
    }
    let upper = UpperDir::open(&dir, o.work.as_deref()).map_err(|e| match e {
        rustix::io::Errno::XDEV => upper_error("work", o.work.as_deref().unwrap_or(&dir), e),
        e => upper_error("upper", &dir, e),
    })?;
    // Modes of new entries are the requester's, already masked by the kernel.
    rustix::process::umask(rustix::fs::Mode::empty());
    let view = WritableView::new(fs.view(), upper).map_err(|e| upper_error("upper", &dir, e))?;
    Ok(Served::Writable {
        fs: WritableFs::new(Arc::new(view), fs),
        temp,
    })
}
