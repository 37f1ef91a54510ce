//! Where an image's bytes come from: a file or block device read with
//! `pread`, a memory map, or a buffer. An [`Image`](super::Image) sees them
//! through a [`Window`] that starts at the superblock.

use crate::error::{Error, Result};
use crate::format::ByteSource;
use memmap2::Mmap;
use std::borrow::Cow;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::Path;

fn past_end(pos: u64, len: usize, size: u64) -> Error {
    Error::corrupt(
        pos,
        format!("{len} bytes at {pos} run past the image end ({size})"),
    )
}

/// The end of `[pos, pos + len)` if it lies within `size` bytes.
fn checked_end(pos: u64, len: usize, size: u64) -> Result<u64> {
    pos.checked_add(len as u64)
        .filter(|&e| e <= size)
        .ok_or_else(|| past_end(pos, len, size))
}

/// A file or block device read with `pread`: a file truncated or replaced
/// underneath gives errors, not SIGBUS as a map would.
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Opens `path` (a file or block device) for `pread`.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        Self::new(file, path)
    }

    /// Its size from seeking to the end: stat says 0 for a block device.
    pub fn new(mut file: File, path: &Path) -> Result<Self> {
        let ft = file
            .metadata()
            .map_err(|e| Error::io(format!("cannot stat {}", path.display()), e))?
            .file_type();
        if ft.is_dir() {
            return Err(Error::invalid(format!(
                "{} is a directory, not an image",
                path.display()
            )));
        }
        if !(ft.is_file() || ft.is_block_device()) {
            return Err(Error::invalid(format!(
                "{} is not a regular file or block device",
                path.display()
            )));
        }
        let len = file
            .seek(SeekFrom::End(0))
            .map_err(|e| Error::io(format!("cannot size {}", path.display()), e))?;
        Ok(FileSource { file, len })
    }
}

impl ByteSource for FileSource {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        checked_end(pos, len, self.len)?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, pos).map_err(|e| {
            let mut err = Error::io(format!("reading {len} bytes (file truncated?)"), e);
            err.offset = Some(pos);
            err
        })?;
        Ok(Cow::Owned(buf))
    }
    fn will_need(&self, pos: u64, len: u64) -> bool {
        use std::os::unix::io::AsRawFd;
        // SAFETY: an advice on our own descriptor; it reads nothing into memory we own.
        unsafe {
            libc::posix_fadvise(
                self.file.as_raw_fd(),
                pos as libc::off_t,
                len as libc::off_t,
                libc::POSIX_FADV_WILLNEED,
            ) == 0
        }
    }
}

/// A read-only memory map of a regular file: no copy per read, but a file
/// truncated while mapped can fault, so mounts read with [`FileSource`].
pub struct MapSource {
    map: Mmap,
}

impl MapSource {
    /// Maps `path`; anything but a regular file (a block device, whose
    /// mapping size stat cannot tell) is read with `pread` instead.
    pub fn open(path: &Path) -> Result<Box<dyn ByteSource>> {
        let file = File::open(path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        let regular = file.metadata().is_ok_and(|m| m.is_file() && m.len() > 0);
        if !regular {
            return Ok(Box::new(FileSource::new(file, path)?));
        }
        // SAFETY: a read-only map; every access is bounds-checked against
        // the length taken at map time. Truncation later can fault (see above).
        let map = unsafe { Mmap::map(&file) }
            .map_err(|e| Error::io(format!("cannot map {}", path.display()), e))?;
        Ok(Box::new(MapSource { map }))
    }
}

impl ByteSource for MapSource {
    fn size(&self) -> u64 {
        self.map.len() as u64
    }
    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        self.map[..].read_bytes(pos, len)
    }
    fn will_need(&self, pos: u64, len: u64) -> bool {
        let Some(end) = pos.checked_add(len).map(|e| e.min(self.map.len() as u64)) else {
            return false;
        };
        if pos >= end {
            return true;
        }
        let start = pos & !4095; // madvise wants a page-aligned address
                                 // SAFETY: the range lies inside our own mapping.
        unsafe {
            libc::madvise(
                self.map.as_ptr().add(start as usize) as *mut libc::c_void,
                (end - start) as usize,
                libc::MADV_WILLNEED,
            ) == 0
        }
    }
}

impl ByteSource for Vec<u8> {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        self[..].read_bytes(pos, len)
    }
}

/// The image inside a source: `len` bytes from `offset` (the superblock),
/// with positions and errors relative to the superblock.
pub struct Window {
    inner: Box<dyn ByteSource>,
    offset: u64,
    len: u64,
}

impl Window {
    /// Bytes `offset..offset + len` of `inner`, seen from 0.
    pub fn new(inner: Box<dyn ByteSource>, offset: u64, len: u64) -> Self {
        Window { inner, offset, len }
    }
    /// Where the window starts in `inner`.
    pub fn offset(&self) -> u64 {
        self.offset
    }
    /// The whole source, the image and whatever surrounds it.
    pub fn raw(&self) -> &dyn ByteSource {
        self.inner.as_ref()
    }
}

impl ByteSource for Window {
    fn size(&self) -> u64 {
        self.len
    }
    fn read_bytes(&self, pos: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        checked_end(pos, len, self.len)?;
        self.inner
            .read_bytes(self.offset + pos, len)
            .map_err(|e| Error {
                offset: Some(pos),
                ..e
            })
    }
    fn will_need(&self, pos: u64, len: u64) -> bool {
        let len = len.min(self.len.saturating_sub(pos));
        self.inner.will_need(self.offset + pos, len)
    }
    fn before_fork(&self) {
        self.inner.before_fork();
    }
}
