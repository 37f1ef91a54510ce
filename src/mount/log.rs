//! Where a mount's messages go once it is in the background: its standard
//! error becomes a pipe, and a thread hands each line to syslog (journald
//! reads the same socket) or appends it, time-stamped, to `-o log=FILE`.
//! Every message (damage to the image, a remote source's warnings, a
//! profile that could not be saved) keeps being written to stderr by
//! whoever has something to say; only where stderr leads changes.

use crate::error::{Error, Result};
use std::io::{BufRead, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// The syslog socket; `SQFUSE_SYSLOG_SOCKET` names another (a syslog
/// daemon listening elsewhere, or a test's own).
const SYSLOG_SOCKET: &str = "/dev/log";

/// Longest line passed on: a syslog datagram stays under the 2 KiB every
/// syslog daemon accepts, and a file line stays readable.
const MAX_LINE: usize = 2000;

/// Where a detached mount's messages go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogSink {
    /// The system log (`/dev/log`), the default.
    Syslog,
    /// Appended to this file (created mode 0600 if missing).
    File(PathBuf),
}

/// The forwarding thread, joined by [`finish`] so the last lines are out
/// before the process ends.
static FORWARDER: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);

/// An open destination.
enum Open {
    Syslog { socket: UnixDatagram, to: PathBuf },
    File(std::fs::File),
}

impl Open {
    fn new(sink: &LogSink) -> Result<Open> {
        match sink {
            LogSink::Syslog => {
                let to = std::env::var_os("SQFUSE_SYSLOG_SOCKET")
                    .map_or_else(|| PathBuf::from(SYSLOG_SOCKET), PathBuf::from);
                let socket = UnixDatagram::unbound()
                    .map_err(|e| Error::io("cannot make a socket for syslog", e))?;
                Ok(Open::Syslog { socket, to })
            }
            LogSink::File(path) => {
                use std::os::unix::fs::OpenOptionsExt;
                let f = std::fs::OpenOptions::new()
                    .append(true)
                    .create(true)
                    .mode(0o600)
                    .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
                    .open(path)
                    .map_err(|e| Error::io(format!("log={}", crate::error::shown_path(path)), e))?;
                Ok(Open::File(f))
            }
        }
    }

    /// One message: `line` as the server wrote it ("sqfuse: ...").
    fn send(&mut self, line: &str, pid: u32) {
        let msg = line.strip_prefix("sqfuse: ").unwrap_or(line);
        match self {
            Open::Syslog { socket, to } => {
                // Facility daemon; the severity the text says.
                let severity = if msg.starts_with("warning:") {
                    4
                } else if msg.starts_with("note:") {
                    5
                } else {
                    3
                };
                let datagram = format!("<{}>sqfuse[{pid}]: {msg}", 3 * 8 + severity);
                // A syslog that is down or restarting loses the line, as
                // glibc's syslog(3) would; the mount goes on.
                let _ = socket.send_to(datagram.as_bytes(), &*to);
            }
            Open::File(f) => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let stamp = chrono::DateTime::from_timestamp(now as i64, 0)
                    .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                    .unwrap_or_default();
                let _ = writeln!(f, "{stamp} sqfuse[{pid}]: {msg}");
            }
        }
    }
}

/// Checks that `sink` can be opened, before the mount goes to the
/// background (where an error would have no one to tell).
pub fn check(sink: &LogSink) -> Result<()> {
    Open::new(sink).map(drop)
}

/// Points standard error at `sink` from now on (standard input and output
/// are /dev/null already). The forwarding thread runs until the process
/// ends; [`finish`] drains it.
pub fn redirect_stderr(sink: &LogSink) -> Result<()> {
    let mut out = Open::new(sink)?;
    let mut fds = [0; 2];
    // SAFETY: fds is a two-element array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(Error::io("pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just made and are ours.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let pid = std::process::id();
    let thread = std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(std::fs::File::from(read));
        let mut buf = Vec::new();
        loop {
            buf.clear();
            // Bounded: a line longer than MAX_LINE is cut, the rest skipped.
            match read_line_capped(&mut lines, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&buf);
            let line = text.trim_end_matches('\n');
            if !line.is_empty() {
                out.send(line, pid);
            }
        }
    });
    // SAFETY: dup2 onto descriptor 2; `write` stays ours and is closed below.
    if unsafe { libc::dup2(write.as_raw_fd(), 2) } < 0 {
        return Err(Error::io(
            "redirecting stderr",
            std::io::Error::last_os_error(),
        ));
    }
    drop(write);
    if let Ok(mut f) = FORWARDER.lock() {
        *f = Some(thread);
    }
    Ok(())
}

/// Reads one line into `buf`, at most [`MAX_LINE`] bytes of it kept (the
/// rest read and dropped). Ok(0) at the end of the stream.
fn read_line_capped(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let chunk = r.fill_buf()?;
        if chunk.is_empty() {
            return Ok(total);
        }
        let (take, end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take);
        total += take;
        if end {
            return Ok(total);
        }
    }
}

/// Sends what is still in the pipe before the process ends: standard error
/// is pointed at /dev/null, which closes the pipe, and the thread drains it.
pub fn finish() {
    let Some(thread) = FORWARDER.lock().ok().and_then(|mut f| f.take()) else {
        return;
    };
    let _ = std::io::stderr().flush();
    if let Ok(null) = std::fs::OpenOptions::new().write(true).open("/dev/null") {
        // SAFETY: dup2 of an open descriptor onto 2.
        unsafe { libc::dup2(null.as_raw_fd(), 2) };
    }
    let _ = thread.join();
}

/// `log=VALUE`: `syslog`, or a file (made absolute: a background mount
/// leaves its directory).
pub fn parse(v: &str) -> std::result::Result<LogSink, String> {
    if v == "syslog" {
        return Ok(LogSink::Syslog);
    }
    if v.is_empty() {
        return Err("log= needs syslog or a file".into());
    }
    let p = Path::new(v);
    std::path::absolute(p)
        .map(LogSink::File)
        .map_err(|e| format!("log={v}: {}", crate::error::io_words(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_the_rest_skipped() {
        let mut input = vec![b'x'; MAX_LINE * 3];
        input.extend_from_slice(b"\nnext\n");
        let mut r = std::io::BufReader::with_capacity(64, &input[..]);
        let mut buf = Vec::new();
        read_line_capped(&mut r, &mut buf).unwrap();
        assert_eq!(buf.len(), MAX_LINE);
        buf.clear();
        read_line_capped(&mut r, &mut buf).unwrap();
        assert_eq!(buf, b"next\n");
        buf.clear();
        assert_eq!(read_line_capped(&mut r, &mut buf).unwrap(), 0);
    }
}
