//! Read-ahead for the pack's reader. From a cold disk, the reader (one
//! thread, files in order) waits on one small file at a time while the
//! disk could serve many requests at once. Helper threads ask for the
//! files the reader will want next, a bounded window ahead of it, so their
//! pages are in the page cache when it gets there. The reader still reads
//! every byte itself, in order: what was prefetched, and when, never
//! changes the output. Compression workers do no I/O.

use super::scan::SourceFile;
use std::os::fd::AsRawFd;
use std::sync::{Condvar, Mutex};

/// How far ahead of the reader the helpers may be, in files and in bytes.
/// Each file ahead may hold an open descriptor (handed to the reader, so
/// a file is opened once): well under the usual limit of 1024.
const MAX_FILES_AHEAD: usize = 256;
const MAX_BYTES_AHEAD: u64 = 64 << 20;
const _: () = assert!(HEAD_BYTES <= MAX_BYTES_AHEAD);
/// Of a file larger than this only the start is asked for: the kernel's
/// own sequential read-ahead serves the rest as the reader streams it.
const HEAD_BYTES: u64 = 1 << 20;
/// Helper threads: they wait on the disk, not the CPU, so more than cores.
pub const THREADS: usize = 4;

/// How the helpers ask for a file's pages. Measured on /usr/share from a
/// cold cache (docs/benchmarks.md): advice (the kernel reads while the
/// helper moves on) beat reading the bytes (the helper waits for each),
/// and both beat no read-ahead. `SQFUSE_PREFETCH=off|read|advise` picks
/// one, to repeat that measurement; advice is the default.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Off,
    Read,
    Advise,
}

impl Mode {
    pub fn from_env() -> Mode {
        match std::env::var("SQFUSE_PREFETCH").as_deref() {
            Ok("off") => Mode::Off,
            Ok("read") => Mode::Read,
            _ => Mode::Advise,
        }
    }
}

/// The shared window: which file the reader is at, which file the helpers
/// take next, and the bytes each side has passed (files counted up to
/// [`HEAD_BYTES`]).
#[derive(Default)]
struct Window {
    next: usize,
    next_bytes: u64,
    reader: usize,
    reader_bytes: u64,
    waiting: usize,
    done: bool,
    /// Files the helpers opened, for the reader to take.
    opened: std::collections::HashMap<usize, std::fs::File>,
}

pub struct Prefetch<'a> {
    mode: Mode,
    files: &'a [SourceFile],
    /// Files the reader will not read (duplicates of an earlier one).
    skip: &'a [Option<u32>],
    window: Mutex<Window>,
    moved: Condvar,
}

impl<'a> Prefetch<'a> {
    pub fn new(mode: Mode, files: &'a [SourceFile], skip: &'a [Option<u32>]) -> Self {
        Prefetch {
            mode,
            files,
            skip,
            window: Mutex::new(Window::default()),
            moved: Condvar::new(),
        }
    }

    fn weight(&self, i: usize) -> u64 {
        let f = &self.files[i];
        if f.spooled || self.skip.get(i).is_some_and(|d| d.is_some()) {
            0 // a tar's spool was just written; a duplicate is not read
        } else {
            f.size.min(HEAD_BYTES)
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The reader is done with file `i`.
    pub fn passed(&self, i: usize) {
        let mut w = self.lock();
        w.opened.remove(&i); // not taken: the reader failed on it, or skipped it
        w.reader = i + 1;
        w.reader_bytes += self.weight(i);
        if w.waiting > 0 {
            self.moved.notify_all();
        }
    }

    /// File `i`, if a helper opened it (positioned at its start).
    pub fn take(&self, i: usize) -> Option<std::fs::File> {
        self.lock().opened.remove(&i)
    }

    /// The reader stopped (finished or failed): helpers return.
    pub fn finish(&self) {
        let mut w = self.lock();
        w.done = true;
        w.opened.clear();
        drop(w);
        self.moved.notify_all();
    }

    /// The next file to ask for, or `None` when there is nothing left.
    fn claim(&self) -> Option<usize> {
        let mut w = self.lock();
        loop {
            if w.done || w.next >= self.files.len() {
                return None;
            }
            if w.next < w.reader {
                // The reader overtook the helpers: skip what it has read.
                w.next = w.reader;
                w.next_bytes = w.reader_bytes;
                continue;
            }
            let i = w.next;
            // A file weighs at most HEAD_BYTES < MAX_BYTES_AHEAD, so one
            // always fits when the helpers are level with the reader.
            let room = i - w.reader < MAX_FILES_AHEAD
                && w.next_bytes - w.reader_bytes + self.weight(i) <= MAX_BYTES_AHEAD;
            if room {
                w.next += 1;
                w.next_bytes += self.weight(i);
                return Some(i);
            }
            w.waiting += 1;
            w = self.moved.wait(w).unwrap_or_else(|e| e.into_inner());
            w.waiting -= 1;
        }
    }

    /// One helper thread's loop. Errors are ignored: the reader meets (and
    /// reports) them itself.
    pub fn run(&self) {
        if self.mode == Mode::Off {
            return;
        }
        let mut scratch = match self.mode {
            Mode::Read => vec![0u8; HEAD_BYTES as usize],
            _ => Vec::new(),
        };
        while let Some(i) = self.claim() {
            let len = self.weight(i);
            if len == 0 {
                continue;
            }
            let f = &self.files[i];
            let Ok(file) = f.open() else {
                continue;
            };
            // Positional reads and advice leave it at the file's first byte.
            warm(&file, f.offset, len, &mut scratch);
            let mut w = self.lock();
            if i >= w.reader && !w.done {
                w.opened.insert(i, file);
            }
        }
    }
}

/// Asks for `len` bytes at `offset` of `file` to be brought into the page
/// cache: advice when `scratch` is too small (always, in [`Mode::Advise`]),
/// else a read into it.
fn warm(file: &std::fs::File, offset: u64, len: u64, scratch: &mut [u8]) {
    use std::os::unix::fs::FileExt;
    if len > scratch.len() as u64 {
        // SAFETY: plain advice on an open descriptor.
        unsafe {
            libc::posix_fadvise(
                file.as_raw_fd(),
                offset as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            );
        }
        return;
    }
    let mut at = 0;
    while at < len as usize {
        match file.read_at(&mut scratch[at..len as usize], offset + at as u64) {
            Ok(0) | Err(_) => return,
            Ok(n) => at += n,
        }
    }
}
