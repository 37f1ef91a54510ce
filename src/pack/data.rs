//! File data: whole-file dedup decided up front, then one reader (this
//! thread, with `prefetch` helpers asking the disk ahead of it) cutting
//! files into blocks and fragment blocks with sequence numbers, a pool of
//! workers compressing them, and one writer thread committing results
//! strictly in sequence order. The output is the same for any number of
//! workers.

use super::prefetch::{self, Prefetch};
use super::scan::SourceFile;
use super::{PackError, PackOptions};
use crate::format::block::BlockWord;
use crate::format::compressor::CompressSettings;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockLoc {
    /// Written as job `seq`.
    Seq(u64),
    /// All zeros: a hole, nothing on disk.
    Sparse,
}

/// "None" in the compact fields of [`FileData`].
const NONE: u32 = u32::MAX;

/// Where one file's data went, kept for every file until the tables are
/// written, so it is compact (32 bytes): the written blocks of a file are
/// consecutive jobs, `first` onwards, with the holes (block indexes, only
/// for a file that has any) in between.
#[derive(Debug, Clone)]
pub(crate) struct FileData {
    first: u64,
    blocks: u32,
    fragment_index: u32,
    fragment_offset: u32,
    dup_of: u32,
    holes: Option<Box<[u32]>>,
}

impl Default for FileData {
    fn default() -> Self {
        FileData {
            first: 0,
            blocks: 0,
            fragment_index: NONE,
            fragment_offset: 0,
            dup_of: NONE,
            holes: None,
        }
    }
}

impl FileData {
    fn duplicate(of: u32) -> Self {
        FileData {
            dup_of: of,
            ..Default::default()
        }
    }

    /// Same content as this earlier file: share its blocks.
    pub fn dup_of(&self) -> Option<usize> {
        (self.dup_of != NONE).then_some(self.dup_of as usize)
    }

    /// Fragment index and offset of the tail.
    pub fn fragment(&self) -> Option<(u32, u32)> {
        (self.fragment_index != NONE).then_some((self.fragment_index, self.fragment_offset))
    }

    fn set_fragment(&mut self, (index, offset): (u32, u32)) {
        (self.fragment_index, self.fragment_offset) = (index, offset);
    }

    /// Whether any block is a hole.
    pub fn has_holes(&self) -> bool {
        self.holes.is_some()
    }

    /// The job of the first written block (for a file of holes only, the
    /// job written next after it).
    pub fn first_seq(&self) -> u64 {
        self.first
    }

    fn is_hole(&self, block: u32) -> bool {
        self.holes
            .as_ref()
            .is_some_and(|h| h.binary_search(&block).is_ok())
    }

    /// Each block in order: the job it was written as, or a hole.
    pub fn blocks(&self) -> impl Iterator<Item = BlockLoc> + '_ {
        let mut seq = self.first;
        (0..self.blocks).map(move |b| {
            if self.is_hole(b) {
                BlockLoc::Sparse
            } else {
                seq += 1;
                BlockLoc::Seq(seq - 1)
            }
        })
    }

    /// Bytes in holes, for a file of `size` bytes cut in `block_size` blocks.
    pub fn sparse_bytes(&self, size: u64, block_size: u32) -> u64 {
        let bs = u64::from(block_size);
        let holes = self.holes.as_deref().unwrap_or_default();
        holes
            .iter()
            .map(|&b| bs.min(size.saturating_sub(u64::from(b) * bs)))
            .sum()
    }
}

pub(crate) struct DataResult {
    pub files: Vec<FileData>,
    /// Per job sequence number: image offset and size word.
    pub placed: Vec<(u64, BlockWord)>,
    /// Job sequence number of each fragment block.
    pub fragments: Vec<u64>,
    /// Image offset just past the data.
    pub end: u64,
    pub out: File,
    pub bytes_in: u64,
    pub duplicates: u64,
}

/// Progress counters the caller may display.
#[derive(Default)]
pub struct Progress {
    /// What the pack is doing: [`Phase::Scanning`], then
    /// [`Phase::Deduplicating`], then [`Phase::Writing`] (as a `u8`).
    pub phase: std::sync::atomic::AtomicU8,
    /// Entries found so far while scanning the source.
    pub entries: AtomicU64,
    /// Files whose contents are compared while deduplicating.
    pub candidates: AtomicU64,
    /// Bytes of file data still to be read once duplicates are known (a
    /// duplicate is never read again): the bar's length while writing.
    pub total: AtomicU64,
    /// File bytes read so far.
    pub bytes_in: AtomicU64,
    /// Image bytes written so far.
    pub bytes_out: AtomicU64,
    /// Files handled so far.
    pub files: AtomicU64,
}

/// The stages of a pack, in order, as [`Progress::phase`] holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Walking the source (a directory tree, a tar stream, OCI layers).
    Scanning = 0,
    /// Reading same-size files to find equal contents.
    Deduplicating = 1,
    /// Reading, compressing and writing the data; `total` is known.
    Writing = 2,
}

impl Progress {
    /// The stage the pack is in.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Scanning,
            1 => Phase::Deduplicating,
            _ => Phase::Writing,
        }
    }
    /// Moves to `phase` (the packer calls this).
    pub fn enter(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }
}

/// `buf` is the calling thread's scratch buffer: zeroing a fresh 1 MiB
/// buffer per file was a fifth of the pack's CPU time.
fn hash_file(f: &SourceFile, buf: &mut [u8]) -> Result<u128, PackError> {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    let mut r = f.open()?.take(f.size);
    loop {
        let n = r
            .read(buf)
            .map_err(|e| PackError::io(&f.path(), "read", e))?;
        if n == 0 {
            return Ok(h.digest128());
        }
        h.update(&buf[..n]);
    }
}

fn same_content(a: &SourceFile, b: &SourceFile) -> Result<bool, PackError> {
    let (mut ra, mut rb) = (a.open()?.take(a.size), b.open()?.take(b.size));
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut ra, &mut ba).map_err(|e| PackError::io(&a.path(), "read", e))?;
        let m = read_full(&mut rb, &mut bb).map_err(|e| PackError::io(&b.path(), "read", e))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// For each file, the earlier file with identical content, if any:
/// same size, then same 128-bit hash, then equal bytes. Hashing (the bulk
/// of the work) runs on `threads` threads; results are per file index, so
/// the outcome does not depend on the thread count.
///
/// Only files for which `whole` holds are considered. Files that are one
/// fragment tail and nothing else are left to tail dedup in [`cut`], which
/// hashes the bytes it reads anyway and gives the same inode (no blocks,
/// the earlier tail's fragment); hashing them here meant opening tens of
/// thousands of small files twice.
fn find_duplicates(
    files: &[SourceFile],
    threads: usize,
    progress: &Progress,
    whole: impl Fn(&SourceFile) -> bool,
) -> Result<Vec<Option<u32>>, PackError> {
    let considered = |f: &SourceFile| f.size > 0 && whole(f);
    let mut by_size: HashMap<u64, usize> = HashMap::new();
    for f in files.iter().filter(|f| considered(f)) {
        *by_size.entry(f.size).or_default() += 1;
    }
    let candidates: Vec<usize> = (0..files.len())
        .filter(|&i| considered(&files[i]) && by_size[&files[i].size] > 1)
        .collect();
    progress
        .candidates
        .store(candidates.len() as u64, Ordering::Relaxed);
    let hashes: Vec<std::sync::OnceLock<Result<u128, PackError>>> = (0..candidates.len())
        .map(|_| std::sync::OnceLock::new())
        .collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut buf = vec![0u8; 1 << 20];
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&i) = candidates.get(k) else { break };
                    let _ = hashes[k].set(hash_file(&files[i], &mut buf));
                }
            });
        }
    });
    let mut dup = vec![None; files.len()];
    // In file order: the first of each content is the one others point to.
    let mut firsts: HashMap<(u64, u128), Vec<usize>> = HashMap::new();
    for (&i, h) in candidates.iter().zip(hashes) {
        let h = h
            .into_inner()
            .ok_or_else(|| PackError::internal("a file was not hashed"))??;
        let cands = firsts.entry((files[i].size, h)).or_default();
        let mut found = None;
        for &c in cands.iter() {
            if same_content(&files[c], &files[i])? {
                found = Some(c);
                break;
            }
        }
        match found {
            Some(c) => dup[i] = Some(c as u32),
            None => cands.push(i),
        }
    }
    Ok(dup)
}

enum Done {
    Compressed(u64, Vec<u8>),
    Stored(u64, Vec<u8>),
}

/// A block to compress: its sequence number, its bytes, and whether it is
/// a fragment block (compressed with the fragments' settings).
type Job = (u64, Vec<u8>, bool);

fn worker(settings: [CompressSettings; 2], jobs: Receiver<Job>, done: Sender<Done>) {
    for (seq, data, fragment) in jobs {
        let d = match settings[usize::from(fragment)].compress(&data) {
            Some(c) => Done::Compressed(seq, c),
            None => Done::Stored(seq, data),
        };
        if done.send(d).is_err() {
            return;
        }
    }
}

/// What the writer hands back: the output file, each job's (offset, size
/// word), and the offset just past the data.
type Written = (File, Vec<(u64, BlockWord)>, u64);

/// Tails already stored, a few bytes each (one per small file): the
/// first entry per 64-bit hash of the bytes (length as seed), and the
/// entries, each naming the next with the same hash. A hash match is
/// confirmed by comparing bytes.
#[derive(Default)]
struct TailIndex {
    first: HashMap<u64, u32>,
    entries: Vec<TailEntry>,
}

struct TailEntry {
    fragment: u32,
    offset: u32,
    file: u32,
    next: u32,
}

impl TailIndex {
    fn key(tail: &[u8]) -> u64 {
        xxhash_rust::xxh3::xxh3_64_with_seed(tail, tail.len() as u64)
    }

    /// The stored tails with `tail`'s hash: (fragment, offset, file).
    fn candidates(&self, tail: &[u8]) -> impl Iterator<Item = (u32, u32, usize)> + '_ {
        let mut at = self.first.get(&Self::key(tail)).copied().unwrap_or(NONE);
        std::iter::from_fn(move || {
            let e = self.entries.get(at as usize)?;
            at = e.next;
            Some((e.fragment, e.offset, e.file as usize))
        })
    }

    fn insert(&mut self, tail: &[u8], fragment: u32, offset: u32, file: usize) {
        let index = self.entries.len() as u32;
        let next = self.first.insert(Self::key(tail), index).unwrap_or(NONE);
        self.entries.push(TailEntry {
            fragment,
            offset,
            file: file as u32,
            next,
        });
    }
}

/// The image is synced before it is renamed into place; starting the
/// disk's writeback every few MiB as it is written leaves that sync (which
/// otherwise waited for the whole image) little to do.
const WRITEBACK_EVERY: u64 = 16 << 20;

fn start_writeback(f: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: an open descriptor; offset 0, length 0: the whole file.
    // SYNC_FILE_RANGE_WRITE only starts writeback of dirty pages, without
    // waiting for it; an error just leaves the work to the final sync.
    unsafe {
        libc::sync_file_range(f.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE);
    }
}

/// Writes results in sequence order; returns the placement table.
fn writer(
    out: File,
    start: u64,
    done: Receiver<Done>,
    tokens: Receiver<()>,
    progress: Arc<Progress>,
) -> std::io::Result<Written> {
    let mut w = BufWriter::with_capacity(1 << 20, out);
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut placed = Vec::new();
    let mut pos = start;
    let mut kicked = start;
    for d in done {
        let seq = match &d {
            Done::Compressed(s, _) | Done::Stored(s, _) => *s,
        };
        pending.insert(seq, d);
        while let Some(d) = pending.remove(&(placed.len() as u64)) {
            let (bytes, word) = match &d {
                Done::Compressed(_, c) => (c, BlockWord::new(c.len() as u32, false)),
                Done::Stored(_, b) => (b, BlockWord::new(b.len() as u32, true)),
            };
            w.write_all(bytes)?;
            placed.push((pos, word));
            pos += bytes.len() as u64;
            progress
                .bytes_out
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let _ = tokens.try_recv(); // one more job may be in flight
            if pos - kicked >= WRITEBACK_EVERY {
                kicked = pos;
                w.flush()?;
                start_writeback(w.get_ref());
            }
        }
    }
    if !pending.is_empty() {
        return Err(std::io::Error::other(
            "internal error: a block never arrived",
        ));
    }
    let out = w.into_inner().map_err(|e| e.into_error())?;
    Ok((out, placed, pos))
}

struct Pipeline {
    jobs: Option<Sender<Job>>,
    tokens: Sender<()>,
    next_seq: u64,
}

impl Pipeline {
    fn submit(&mut self, data: Vec<u8>, fragment: bool) -> u64 {
        // Bound the blocks in flight (queued, compressing, or waiting to be
        // written in order): memory stays flat whatever the tree.
        let _ = self.tokens.send(());
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(j) = &self.jobs {
            let _ = j.send((seq, data, fragment));
        }
        seq
    }
}

/// The image being written: the temporary file, the IMAGE it becomes (for
/// errors), and where file data starts in it.
pub(crate) struct Output<'a> {
    pub file: File,
    pub image: &'a std::path::Path,
    pub data_start: u64,
}

pub(crate) fn write_data(
    files: &[SourceFile],
    out: Output<'_>,
    opts: &PackOptions,
    settings: CompressSettings,
    stop: &AtomicBool,
    progress: Arc<Progress>,
) -> Result<DataResult, PackError> {
    let dup = if opts.no_dedup {
        vec![None; files.len()]
    } else {
        let bs = u64::from(opts.block_size);
        progress.enter(Phase::Deduplicating);
        find_duplicates(files, opts.threads, &progress, |f| {
            f.size >= bs || opts.no_fragments
        })?
    };
    // The bar's length: what will be read, a duplicate's bytes not.
    let to_read = files
        .iter()
        .zip(&dup)
        .filter(|(_, d)| d.is_none())
        .map(|(f, _)| f.size)
        .sum();
    progress.total.store(to_read, Ordering::Relaxed);
    progress.enter(Phase::Writing);
    super::memory_checkpoint("dedup");
    let threads = opts.threads.max(1);
    let inflight = threads * 4;
    let (job_tx, job_rx) = bounded::<Job>(threads * 2);
    // Data blocks, then fragment blocks.
    let settings = [
        settings.stored_if(opts.uncompressed.data),
        settings.stored_if(opts.uncompressed.fragments),
    ];
    let (done_tx, done_rx) = bounded::<Done>(threads * 2);
    let (tok_tx, tok_rx) = bounded::<()>(inflight);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (j, d) = (job_rx.clone(), done_tx.clone());
            std::thread::spawn(move || worker(settings, j, d))
        })
        .collect();
    drop((job_rx, done_tx));
    let wprog = progress.clone();
    let (file, start) = (out.file, out.data_start);
    let writer = std::thread::spawn(move || writer(file, start, done_rx, tok_rx, wprog));
    let mut pipe = Pipeline {
        jobs: Some(job_tx),
        tokens: tok_tx,
        next_seq: 0,
    };

    let prefetch = Prefetch::new(prefetch::Mode::from_env(), files, &dup);
    let result = std::thread::scope(|s| {
        for _ in 0..prefetch::THREADS {
            s.spawn(|| prefetch.run());
        }
        let r = cut(files, &dup, opts, &mut pipe, stop, &progress, &prefetch);
        prefetch.finish();
        r
    });
    pipe.jobs = None; // workers finish what is queued, then the writer ends
    drop(pipe);
    for w in workers {
        let _ = w.join();
    }
    let written = writer
        .join()
        .map_err(|_| PackError::internal("the writer thread panicked"))?;
    super::memory_checkpoint("data reading");
    let (files_data, fragments, duplicates) = result?;
    let (out, placed, end) = written.map_err(|source| PackError::Output {
        path: out.image.to_path_buf(),
        source,
    })?;
    Ok(DataResult {
        files: files_data,
        placed,
        fragments,
        end,
        out,
        bytes_in: progress.bytes_in.load(Ordering::Relaxed),
        duplicates,
    })
}

type Cut = (Vec<FileData>, Vec<u64>, u64);

/// The reader: files in order, blocks and fragment blocks submitted in order.
fn cut(
    files: &[SourceFile],
    dup: &[Option<u32>],
    opts: &PackOptions,
    pipe: &mut Pipeline,
    stop: &AtomicBool,
    progress: &Progress,
    prefetch: &Prefetch<'_>,
) -> Result<Cut, PackError> {
    let bs = opts.block_size as usize;
    let mut out = Vec::with_capacity(files.len());
    let mut frag_buf: Vec<u8> = Vec::with_capacity(bs);
    let mut fragments: Vec<u64> = Vec::new();
    let mut tails = TailIndex::default();
    let mut duplicates = 0;
    for (i, f) in files.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            return Err(PackError::Interrupted);
        }
        if i > 0 {
            prefetch.passed(i - 1);
        }
        progress.files.fetch_add(1, Ordering::Relaxed);
        if let Some(d) = dup[i] {
            duplicates += 1;
            out.push(FileData::duplicate(d));
            continue;
        }
        let mut r = match prefetch.take(i) {
            Some(r) => r,
            None => f.open()?,
        };
        // A file whose blocks are all holes starts where the data stands
        // (mksquashfs records its position): the next job's place.
        let mut fd = FileData {
            first: pipe.next_seq,
            ..Default::default()
        };
        let mut holes = Vec::new();
        let use_frag = !opts.no_fragments && (f.size < bs as u64 || opts.always_fragments);
        let full = (f.size / bs as u64) as usize;
        let tail = (f.size % bs as u64) as usize;
        let nblocks = if use_frag || tail == 0 {
            full
        } else {
            full + 1
        };
        for b in 0..nblocks {
            if stop.load(Ordering::Relaxed) {
                return Err(PackError::Interrupted);
            }
            let len = if b < full { bs } else { tail };
            let buf = read_piece(&mut r, f, len, progress)?;
            if !opts.no_sparse && buf.iter().all(|&x| x == 0) {
                holes.push(b as u32);
            } else {
                let seq = pipe.submit(buf, false);
                if b == holes.len() {
                    fd.first = seq; // the first written block
                }
            }
        }
        fd.blocks = nblocks as u32;
        // A tail of zeros is a hole, not a fragment (as mksquashfs stores
        // it): a last block that is never written.
        let tail_bytes = if use_frag && tail > 0 {
            let t = read_piece(&mut r, f, tail, progress)?;
            if !opts.no_sparse && t.iter().all(|&x| x == 0) {
                holes.push(nblocks as u32);
                fd.blocks += 1;
                None
            } else {
                Some(t)
            }
        } else {
            None
        };
        if !holes.is_empty() {
            fd.holes = Some(holes.into_boxed_slice());
        }
        if let Some(t) = tail_bytes {
            let mut reuse = None;
            if !opts.no_dedup {
                for (idx, off, src) in tails.candidates(&t) {
                    // The hash is seeded with the length, but only a tail
                    // of the same length may be shared: `earlier_tail`
                    // compares the last `tail` bytes, not the stored tail.
                    if files[src].size % bs as u64 == tail as u64
                        && earlier_tail(&files[src], tail)? == t
                    {
                        reuse = Some((idx, off));
                        break;
                    }
                }
            }
            fd.set_fragment(match reuse {
                Some(x) => {
                    if full == 0 {
                        duplicates += 1; // the whole file is a duplicate
                    }
                    x
                }
                None => {
                    if frag_buf.len() + tail > bs {
                        fragments.push(pipe.submit(
                            std::mem::replace(&mut frag_buf, Vec::with_capacity(bs)),
                            true,
                        ));
                    }
                    let at = (fragments.len() as u32, frag_buf.len() as u32);
                    frag_buf.extend_from_slice(&t);
                    if !opts.no_dedup {
                        tails.insert(&t, at.0, at.1, i);
                    }
                    at
                }
            });
        }
        let mut probe = [0u8; 1];
        if !f.spooled
            && r.read(&mut probe)
                .map_err(|e| PackError::io(&f.path(), "read", e))?
                != 0
        {
            return Err(PackError::entry(f.path(), "file grew while being read"));
        }
        out.push(fd);
    }
    if !frag_buf.is_empty() {
        fragments.push(pipe.submit(frag_buf, true));
    }
    Ok((out, fragments, duplicates))
}

/// The next `len` bytes of source file `f`; fewer is an error (the file
/// shrank since it was scanned).
fn read_piece(
    r: &mut File,
    f: &SourceFile,
    len: usize,
    progress: &Progress,
) -> Result<Vec<u8>, PackError> {
    let mut buf = vec![0u8; len];
    let n = read_full(r, &mut buf).map_err(|e| PackError::io(&f.path(), "read", e))?;
    if n != len {
        return Err(PackError::entry(f.path(), "file shrank while being read"));
    }
    progress.bytes_in.fetch_add(len as u64, Ordering::Relaxed);
    Ok(buf)
}

/// The last `len` bytes of an earlier source file (to confirm a tail match).
fn earlier_tail(f: &SourceFile, len: usize) -> Result<Vec<u8>, PackError> {
    let mut r = f.open()?;
    r.seek(SeekFrom::Current((f.size - len as u64) as i64))
        .map_err(|e| PackError::io(&f.path(), "seek in", e))?;
    let mut v = vec![0u8; len];
    let n = read_full(&mut r, &mut v).map_err(|e| PackError::io(&f.path(), "read", e))?;
    v.truncate(n);
    Ok(v)
}
