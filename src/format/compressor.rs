//! The six SquashFS compressors, decompression bounded by a caller-given
//! maximum output size, and the compressor-options record.

use super::le::{u16_at, u32_at};

/// The compressors SquashFS 4.0 names, by their superblock id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compressor {
    /// zlib (deflate) streams.
    Gzip = 1,
    /// Legacy lzma ("lzma alone") streams; read, not written.
    Lzma = 2,
    /// LZO1X.
    Lzo = 3,
    /// xz streams, optionally with BCJ filters.
    Xz = 4,
    /// LZ4 (legacy frame).
    Lz4 = 5,
    /// Zstandard frames.
    Zstd = 6,
}

impl Compressor {
    /// The compressor with superblock id `id`, if there is one.
    pub fn from_id(id: u16) -> Option<Self> {
        Some(match id {
            1 => Self::Gzip,
            2 => Self::Lzma,
            3 => Self::Lzo,
            4 => Self::Xz,
            5 => Self::Lz4,
            6 => Self::Zstd,
            _ => return None,
        })
    }
    /// The name mksquashfs gives it (`gzip`, `lzma`, `lzo`, `xz`, `lz4`, `zstd`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Lzma => "lzma",
            Self::Lzo => "lzo",
            Self::Xz => "xz",
            Self::Lz4 => "lz4",
            Self::Zstd => "zstd",
        }
    }

    /// Decompresses one block into at most `max_out` bytes. More output
    /// than that, or a stream that does not end cleanly, is an error (the
    /// message is completed with the block's offset by the caller).
    pub fn decompress(self, input: &[u8], max_out: usize) -> Result<Vec<u8>, String> {
        let out = match self {
            Self::Gzip => inflate_zlib(input, max_out)?,
            Self::Lzma => run_lzma(
                liblzma::stream::Stream::new_lzma_decoder(LZMA_MEMLIMIT),
                input,
                max_out,
            )?,
            Self::Xz => run_lzma(
                liblzma::stream::Stream::new_stream_decoder(LZMA_MEMLIMIT, 0),
                input,
                max_out,
            )?,
            Self::Lz4 => {
                let mut out = vec![0u8; max_out];
                let n = lz4_flex::block::decompress_into(input, &mut out)
                    .map_err(|e| format!("lz4: {e}"))?;
                out.truncate(n);
                out
            }
            Self::Zstd => zstd_decompress(input, max_out)?,
            Self::Lzo => lzo_decompress(input, max_out)?,
        };
        if out.len() > max_out {
            return Err(format!(
                "{} block decompresses to more than {max_out} bytes",
                self.name()
            ));
        }
        Ok(out)
    }
}

/// Which implementations compress: the fastest this build has, or the
/// libraries squashfs-tools links (zlib for gzip, liblz4's fast mode),
/// whose output is mksquashfs's own bytes. xz, zstd and lz4's high
/// compression are the same libraries either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// libdeflate for gzip (smaller and faster than zlib), lz4_flex.
    #[default]
    Fast,
    /// zlib's deflate with mksquashfs's parameters, liblz4.
    SquashfsTools,
}

/// gzip's strategies, in the order mksquashfs tries them (and numbers
/// them in its options record: bit `1 << i`).
pub const GZIP_STRATEGIES: [&str; 5] = [
    "default",
    "filtered",
    "huffman_only",
    "run_length_encoded",
    "fixed",
];

/// The xz branch filters, in the order mksquashfs tries them (and numbers
/// them in its options record: bit `1 << i`).
pub const XZ_FILTERS: [&str; 8] = [
    "x86", "powerpc", "ia64", "arm", "armthumb", "sparc", "arm64", "riscv",
];

/// One xz stream as squashfs-tools writes it: the single-call encoder
/// (its block header records both sizes), LZMA2 at `preset` with
/// `dict_size`, after branch filter `filter` (an index into
/// [`XZ_FILTERS`]) with the literal settings mksquashfs gives it. None if
/// the output would not be smaller than the input.
fn xz_buffer(data: &[u8], filter: Option<usize>, dict_size: u32, preset: u32) -> Option<Vec<u8>> {
    use liblzma_sys as x;
    const IDS: [u64; 8] = [
        x::LZMA_FILTER_X86,
        x::LZMA_FILTER_POWERPC,
        x::LZMA_FILTER_IA64,
        x::LZMA_FILTER_ARM,
        x::LZMA_FILTER_ARMTHUMB,
        x::LZMA_FILTER_SPARC,
        x::LZMA_FILTER_ARM64,
        x::LZMA_FILTER_RISCV,
    ];
    // SAFETY: lzma_options_lzma is plain data that lzma_lzma_preset fills;
    // the filter array ends with LZMA_VLI_UNKNOWN and its options pointer
    // outlives the call; `out` has the capacity passed.
    unsafe {
        let mut opt: x::lzma_options_lzma = std::mem::zeroed();
        if x::lzma_lzma_preset(&mut opt, preset) != 0 {
            return None;
        }
        opt.dict_size = dict_size;
        match filter {
            Some(4 | 7) => opt.lp = 1,
            Some(1 | 3 | 5 | 6) => (opt.lp, opt.lc) = (2, 2),
            Some(2) => (opt.pb, opt.lp, opt.lc) = (4, 4, 0),
            _ => {}
        }
        let mut filters = Vec::with_capacity(3);
        if let Some(i) = filter {
            filters.push(x::lzma_filter {
                id: *IDS.get(i)?,
                options: std::ptr::null_mut(),
            });
        }
        filters.push(x::lzma_filter {
            id: x::LZMA_FILTER_LZMA2,
            options: (&mut opt as *mut x::lzma_options_lzma).cast(),
        });
        filters.push(x::lzma_filter {
            id: x::LZMA_VLI_UNKNOWN,
            options: std::ptr::null_mut(),
        });
        let cap = data.len();
        let mut out = Vec::<u8>::with_capacity(cap);
        let mut pos: usize = 0;
        let r = x::lzma_stream_buffer_encode(
            filters.as_mut_ptr(),
            x::LZMA_CHECK_CRC32,
            std::ptr::null(),
            data.as_ptr(),
            data.len(),
            out.as_mut_ptr(),
            &mut pos,
            cap,
        );
        if r != x::LZMA_OK || pos > cap {
            return None;
        }
        out.set_len(pos);
        Some(out)
    }
}

/// Settings for compressing (the writer side).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressSettings {
    /// Which compressor.
    pub compressor: Compressor,
    /// The compressor's own level (lz4: 0 fast, 1..=12 high compression).
    pub level: u32,
    /// xz BCJ filters tried besides none, bits as in [`XZ_FILTERS`]: the
    /// smallest result is kept.
    pub xz_filters: u32,
    /// xz's dictionary size for data blocks (metadata blocks use 8 KiB).
    pub dict_size: u32,
    /// The image's block size (a dictionary of another size is recorded).
    pub block_size: u32,
    /// gzip's window, 8..=15 bits.
    pub gzip_window: u16,
    /// gzip's strategies tried, bits as in [`GZIP_STRATEGIES`] (0: the
    /// default alone, recorded as no choice): the smallest result is kept.
    pub gzip_strategies: u16,
    /// lz4's acceleration (1: `LZ4_compress_default`).
    pub lz4_acceleration: u32,
    /// The implementations compressing.
    pub engine: Engine,
    /// Nothing compressed: every block stored as it is (mksquashfs's
    /// `-noI`, `-noD`, ... for the part these settings are for).
    pub store: bool,
}

impl CompressSettings {
    /// `compressor` at `level` for an image of `block_size` blocks, with
    /// the compressor's defaults for the rest.
    pub fn new(compressor: Compressor, level: u32, block_size: u32) -> Self {
        CompressSettings {
            compressor,
            level,
            xz_filters: 0,
            dict_size: block_size,
            block_size,
            gzip_window: 15,
            gzip_strategies: 0,
            lz4_acceleration: 1,
            engine: Engine::Fast,
            store: false,
        }
    }

    /// The same settings, storing blocks uncompressed if `store`.
    pub fn stored_if(self, store: bool) -> Self {
        CompressSettings {
            store: self.store || store,
            ..self
        }
    }

    /// The settings for metadata blocks: as mksquashfs compresses them,
    /// xz with an 8 KiB dictionary (the block's size) and no branch filter,
    /// gzip with the default strategy alone.
    pub fn for_metadata(self) -> Self {
        CompressSettings {
            xz_filters: 0,
            dict_size: super::METADATA_SIZE as u32,
            gzip_strategies: 0,
            ..self
        }
    }

    /// The default level for each compressor: zstd 3 and lz4 favour speed at a
    /// ratio close to gzip 9; gzip 9 and xz 6 are what their users expect.
    pub fn default_level(c: Compressor) -> u32 {
        match c {
            Compressor::Gzip => 9,
            Compressor::Zstd => 3,
            Compressor::Xz | Compressor::Lzma => 6,
            Compressor::Lzo => 8,
            Compressor::Lz4 => 0,
        }
    }

    /// Compresses one block; `None` when the result would not be smaller
    /// (the caller then stores the block uncompressed), or when these
    /// settings store everything.
    pub fn compress(&self, data: &[u8]) -> Option<Vec<u8>> {
        if self.store {
            return None;
        }
        let out = match self.compressor {
            Compressor::Gzip
                if self.engine == Engine::SquashfsTools
                    || self.gzip_window != 15
                    || self.gzip_strategies != 0 =>
            {
                zlib::deflate_best(data, self.level, self.gzip_window, self.gzip_strategies)?
            }
            Compressor::Gzip => deflate_zlib(data, self.level.min(9))?,
            Compressor::Zstd => zstd_compress(data, self.level as i32)?,
            // Level 1..=12: LZ4 HC (mksquashfs -Xhc is 12); lz4_flex has
            // no high-compression mode, liblz4 does.
            Compressor::Lz4 if self.level > 0 => lz4::block::compress(
                data,
                Some(lz4::block::CompressionMode::HIGHCOMPRESSION(
                    self.level.min(12) as i32,
                )),
                false,
            )
            .ok()?,
            Compressor::Lz4
                if self.engine == Engine::SquashfsTools || self.lz4_acceleration != 1 =>
            {
                lz4::block::compress(
                    data,
                    Some(lz4::block::CompressionMode::FAST(
                        self.lz4_acceleration.min(65537) as i32,
                    )),
                    false,
                )
                .ok()?
            }
            Compressor::Lz4 => lz4_flex::block::compress(data),
            Compressor::Lzo => lzokay_native::compress(data).ok()?,
            Compressor::Xz => self.xz_best(data)?,
            Compressor::Lzma => return None,
        };
        (out.len() < data.len()).then_some(out)
    }

    /// xz with no filter, then each chosen branch filter in mksquashfs's
    /// order (with the literal settings it gives each): the smallest
    /// result, the first of equals.
    fn xz_best(&self, data: &[u8]) -> Option<Vec<u8>> {
        let mut best = self.xz(data, None).ok();
        for (i, _) in XZ_FILTERS.iter().enumerate() {
            if self.xz_filters & (1 << i) == 0 {
                continue;
            }
            if let Ok(out) = self.xz(data, Some(i)) {
                if best.as_ref().is_none_or(|b| out.len() < b.len()) {
                    best = Some(out);
                }
            }
        }
        best
    }

    /// One xz stream: LZMA2 at the level's preset, after branch filter
    /// `filter` (an index into [`XZ_FILTERS`]) if one is given.
    fn xz(&self, data: &[u8], filter: Option<usize>) -> Result<Vec<u8>, liblzma::stream::Error> {
        use liblzma::stream::{Check, Filters, LzmaOptions, Stream};
        if self.engine == Engine::SquashfsTools {
            // Too big (not smaller than the input) reads as no result.
            return xz_buffer(data, filter, self.dict_size.max(4096), self.level.min(9))
                .ok_or(liblzma::stream::Error::Mem);
        }
        let mut opts = LzmaOptions::new_preset(self.level.min(9))?;
        opts.dict_size(self.dict_size.max(4096));
        let mut f = Filters::new();
        match filter {
            Some(0) => drop(f.x86()),
            Some(1) => drop(f.powerpc()),
            Some(2) => drop(f.ia64()),
            Some(3) => drop(f.arm()),
            Some(4) => drop(f.arm_thumb()),
            Some(5) => drop(f.sparc()),
            Some(6) => drop(f.arm64()),
            Some(7) => drop(f.riscv()),
            _ => {}
        }
        // The literal coder's settings mksquashfs gives each filter's
        // instruction alignment.
        match filter {
            Some(4 | 7) => drop(opts.literal_position_bits(1)), // 2-byte
            Some(1 | 3 | 5 | 6) => {
                opts.literal_position_bits(2).literal_context_bits(2); // 4-byte
            }
            Some(2) => {
                opts.position_bits(4)
                    .literal_position_bits(4)
                    .literal_context_bits(0); // 16-byte
            }
            _ => {}
        }
        f.lzma2(&opts);
        let mut s = Stream::new_stream_encoder(&f, Check::Crc32)?;
        let mut out = Vec::with_capacity(data.len() + 128);
        loop {
            let consumed = s.total_in() as usize;
            match s.process_vec(&data[consumed..], &mut out, liblzma::stream::Action::Finish)? {
                liblzma::stream::Status::StreamEnd => return Ok(out),
                _ => out.reserve(out.len().max(4096)),
            }
        }
    }

    /// The compressor-options record to store: none where the settings
    /// are what a reader assumes without one, as mksquashfs decides it.
    pub fn options(&self) -> Option<CompressorOptions> {
        Some(match self.compressor {
            Compressor::Gzip
                if self.level != 9 || self.gzip_window != 15 || self.gzip_strategies != 0 =>
            {
                CompressorOptions::Gzip {
                    level: self.level,
                    window_bits: self.gzip_window,
                    strategies: self.gzip_strategies,
                }
            }
            Compressor::Xz if self.xz_filters != 0 || self.dict_size != self.block_size => {
                CompressorOptions::Xz {
                    dict_size: self.dict_size,
                    filters: self.xz_filters,
                }
            }
            Compressor::Zstd if self.level != 15 => CompressorOptions::Zstd { level: self.level },
            // The kernel and unsquashfs refuse lz4 images without this
            // record; a level or acceleration not the default is in its
            // longer form.
            Compressor::Lz4 => {
                let hc = self.level > 0;
                let data = match hc {
                    true if self.level != 12 => Some(self.level),
                    false if self.lz4_acceleration != 1 => Some(self.lz4_acceleration),
                    _ => None,
                };
                CompressorOptions::Lz4 {
                    version: 1, // LZ4_LEGACY
                    flags: u32::from(hc) | if data.is_some() { 2 } else { 0 },
                    data,
                }
            }
            Compressor::Lzo if self.level != 8 => CompressorOptions::Lzo {
                algorithm: 4, // lzo1x_999
                level: self.level,
            },
            _ => return None,
        })
    }
}

/// gzip through zlib, as squashfs-tools' gzip wrapper calls it.
mod zlib {
    use libz_sys as z;

    /// The smallest deflate (zlib format) of `data` among the strategies
    /// `strategies` names (none: the default), at `level` with a window of
    /// `window` bits and zlib's memory level 8, the first of equals; None
    /// if none fits in `data.len()` bytes.
    pub(super) fn deflate_best(
        data: &[u8],
        level: u32,
        window: u16,
        strategies: u16,
    ) -> Option<Vec<u8>> {
        // zlib's numbers for default, filtered, huffman_only,
        // run_length_encoded (Z_RLE) and fixed.
        const ZLIB: [i32; 5] = [
            z::Z_DEFAULT_STRATEGY,
            z::Z_FILTERED,
            z::Z_HUFFMAN_ONLY,
            z::Z_RLE,
            z::Z_FIXED,
        ];
        let chosen: Vec<i32> = match strategies {
            0 => vec![z::Z_DEFAULT_STRATEGY],
            bits => (0..ZLIB.len())
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| ZLIB[i])
                .collect(),
        };
        let mut best: Option<Vec<u8>> = None;
        for strategy in chosen {
            if let Some(out) = deflate(data, level, window, strategy) {
                if best.as_ref().is_none_or(|b| out.len() < b.len()) {
                    best = Some(out);
                }
            }
        }
        best
    }

    unsafe extern "C" fn zalloc(_: z::voidpf, items: z::uInt, size: z::uInt) -> z::voidpf {
        // SAFETY: calloc checks the product for overflow.
        unsafe { libc::calloc(items as usize, size as usize) }
    }

    unsafe extern "C" fn zfree(_: z::voidpf, p: z::voidpf) {
        // SAFETY: `p` came from zalloc (calloc).
        unsafe { libc::free(p) }
    }

    fn deflate(data: &[u8], level: u32, window: u16, strategy: i32) -> Option<Vec<u8>> {
        let mut out = vec![0u8; data.len()];
        let avail_in = u32::try_from(data.len()).ok()?;
        let mut s = z::z_stream {
            next_in: data.as_ptr() as *mut u8,
            avail_in,
            total_in: 0,
            next_out: out.as_mut_ptr(),
            avail_out: avail_in,
            total_out: 0,
            msg: std::ptr::null_mut(),
            state: std::ptr::null_mut(),
            zalloc,
            zfree,
            opaque: std::ptr::null_mut(),
            data_type: 0,
            adler: 0,
            reserved: 0,
        };
        // SAFETY: the stream is initialised by deflateInit2_ before use and
        // ended before its buffers (which outlive it) are touched again;
        // zlib reads `avail_in` bytes of the input and writes at most
        // `avail_out` bytes of the output.
        unsafe {
            let init = z::deflateInit2_(
                &mut s,
                level.clamp(1, 9) as i32,
                z::Z_DEFLATED,
                i32::from(window.clamp(8, 15)),
                8,
                strategy,
                z::zlibVersion(),
                std::mem::size_of::<z::z_stream>() as i32,
            );
            if init != z::Z_OK {
                return None;
            }
            let r = z::deflate(&mut s, z::Z_FINISH);
            let n = s.total_out as usize;
            z::deflateEnd(&mut s);
            if r != z::Z_STREAM_END {
                return None; // did not fit: stored instead
            }
            out.truncate(n);
        }
        Some(out)
    }
}

thread_local! {
    /// One zstd encoding context per thread, with its level: a fresh context
    /// per block spent a third of the pack's CPU time creating and zeroing
    /// match tables. Output is the same as with a fresh context.
    static ZSTD_CCTX: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> = const { std::cell::RefCell::new(None) };
    /// One libdeflate compressor per thread and level.
    static DEFLATE: std::cell::RefCell<Option<(u32, libdeflater::Compressor)>> = const { std::cell::RefCell::new(None) };
}

fn zstd_compress(data: &[u8], level: i32) -> Option<Vec<u8>> {
    ZSTD_CCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        let (_, c) = slot.as_mut().expect("just set");
        // Anything not smaller than the input is stored instead, so the
        // output never needs more room than the input. A failed (too big)
        // frame needs no cleanup: ZSTD_compress2 starts by resetting the
        // session.
        let mut out = Vec::with_capacity(data.len());
        c.compress_to_buffer(data, &mut out).ok()?;
        Some(out)
    })
}

fn deflate_zlib(data: &[u8], level: u32) -> Option<Vec<u8>> {
    DEFLATE.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.as_ref().is_none_or(|(l, _)| *l != level) {
            let lvl = libdeflater::CompressionLvl::new(level.clamp(1, 9) as i32).ok()?;
            *slot = Some((level, libdeflater::Compressor::new(lvl)));
        }
        let (_, c) = slot.as_mut().expect("just set");
        // Room for the input only: anything bigger is stored instead.
        let mut out = vec![0u8; data.len()];
        let n = c.zlib_compress(data, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    })
}

/// liblzma's memory limit for one block's decoder: far above what a 1 MiB
/// dictionary needs, far below what a hostile header could ask for.
const LZMA_MEMLIMIT: u64 = 256 << 20;

thread_local! {
    /// One zstd decoding context per thread: creating one per block cost
    /// ~5% of a sequential read.
    static ZSTD_DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) };
}

fn zstd_decompress(input: &[u8], max_out: usize) -> Result<Vec<u8>, String> {
    ZSTD_DCTX.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?);
        }
        let d = slot.as_mut().expect("just set");
        // The capacity bounds the output: a frame claiming more is an error.
        let mut out = Vec::with_capacity(max_out);
        d.decompress_to_buffer(input, &mut out)
            .map_err(|e| format!("zstd: {e}"))?;
        Ok(out)
    })
}

fn inflate_zlib(input: &[u8], max_out: usize) -> Result<Vec<u8>, String> {
    let mut d = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(max_out);
    match d.decompress_vec(input, &mut out, flate2::FlushDecompress::Finish) {
        Ok(flate2::Status::StreamEnd) => Ok(out),
        Ok(_) => Err(format!(
            "gzip stream does not end within {max_out} bytes of output"
        )),
        Err(e) => Err(format!("gzip: {e}")),
    }
}

fn run_lzma(
    stream: Result<liblzma::stream::Stream, liblzma::stream::Error>,
    input: &[u8],
    max_out: usize,
) -> Result<Vec<u8>, String> {
    let mut s = stream.map_err(|e| format!("lzma decoder: {e}"))?;
    // One spare byte tells "exactly full" from "wanted more".
    let mut out = Vec::with_capacity(max_out + 1);
    match s.process_vec(input, &mut out, liblzma::stream::Action::Finish) {
        Ok(liblzma::stream::Status::StreamEnd) => Ok(out),
        Ok(_) if out.len() > max_out => {
            Err(format!("block decompresses to more than {max_out} bytes"))
        }
        Ok(_) => Err("xz/lzma stream is truncated".into()),
        Err(e) => Err(format!("xz/lzma: {e}")),
    }
}

fn lzo_decompress(input: &[u8], max_out: usize) -> Result<Vec<u8>, String> {
    // The `lzo` crate decodes with bounds checks and returns an error for
    // every malformed stream (lzokay-native, which still compresses, panicked
    // on hostile input).
    let mut out = vec![0u8; max_out];
    let n = lzo::decompress_into(input, &mut out).map_err(|e| format!("lzo: {e}"))?;
    out.truncate(n);
    Ok(out)
}

/// The decoded compressor-options record (superblock flag 0x400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CompressorOptions {
    /// gzip's record.
    Gzip {
        /// Compression level, 1 to 9.
        level: u32,
        /// zlib window size, 8 to 15.
        window_bits: u16,
        /// Strategies tried (bit flags, as mksquashfs's -Xstrategy).
        strategies: u16,
    },
    /// xz's record.
    Xz {
        /// The dictionary size.
        dict_size: u32,
        /// BCJ filters tried (bit flags, as [`XZ_FILTERS`] numbers them).
        filters: u32,
    },
    /// lz4's record.
    Lz4 {
        /// Format version (1: legacy frame).
        version: u32,
        /// Flags (1: high compression; 2: `data` is not the default).
        flags: u32,
        /// The high-compression level, or the acceleration (the record's
        /// longer form, squashfs-tools 4.7's).
        data: Option<u32>,
    },
    /// zstd's record.
    Zstd {
        /// Compression level, 1 to 22.
        level: u32,
    },
    /// lzo's record.
    Lzo {
        /// The LZO1X variant (mksquashfs's numbering).
        algorithm: u32,
        /// Compression level (lzo1x_999 only).
        level: u32,
    },
}

impl CompressorOptions {
    /// Decodes compressor `c`'s options record from its bytes, checked.
    pub fn parse(c: Compressor, b: &[u8]) -> Result<Self, String> {
        let need = match c {
            Compressor::Gzip | Compressor::Xz | Compressor::Lz4 | Compressor::Lzo => 8,
            Compressor::Zstd => 4,
            Compressor::Lzma => return Err("lzma takes no compressor options".into()),
        };
        if b.len() < need {
            return Err(format!(
                "{} options are {} bytes, need {need}",
                c.name(),
                b.len()
            ));
        }
        Ok(match c {
            Compressor::Gzip => CompressorOptions::Gzip {
                level: u32_at(b, 0),
                window_bits: u16_at(b, 4),
                strategies: u16_at(b, 6),
            },
            Compressor::Xz => CompressorOptions::Xz {
                dict_size: u32_at(b, 0),
                filters: u32_at(b, 4),
            },
            Compressor::Lz4 => CompressorOptions::Lz4 {
                version: u32_at(b, 0),
                flags: u32_at(b, 4),
                data: (b.len() >= 12).then(|| u32_at(b, 8)),
            },
            Compressor::Zstd => CompressorOptions::Zstd {
                level: u32_at(b, 0),
            },
            Compressor::Lzo => CompressorOptions::Lzo {
                algorithm: u32_at(b, 0),
                level: u32_at(b, 4),
            },
            Compressor::Lzma => unreachable!("handled above"),
        })
    }

    /// The writer side of [`CompressorOptions::parse`].
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8);
        let mut put32 = |v: u32| b.extend_from_slice(&v.to_le_bytes());
        match *self {
            Self::Gzip {
                level,
                window_bits,
                strategies,
            } => {
                put32(level);
                b.extend_from_slice(&window_bits.to_le_bytes());
                b.extend_from_slice(&strategies.to_le_bytes());
            }
            Self::Xz { dict_size, filters } => {
                put32(dict_size);
                put32(filters);
            }
            Self::Lz4 {
                version,
                flags,
                data,
            } => {
                put32(version);
                put32(flags);
                if let Some(d) = data {
                    put32(d);
                }
            }
            Self::Zstd { level } => put32(level),
            Self::Lzo { algorithm, level } => {
                put32(algorithm);
                put32(level);
            }
        }
        b
    }

    /// Human-readable `key=value` pairs, for `info`.
    pub fn describe(&self) -> Vec<(&'static str, String)> {
        match *self {
            Self::Gzip {
                level,
                window_bits,
                strategies,
            } => vec![
                ("level", level.to_string()),
                ("window_bits", window_bits.to_string()),
                ("strategies", format!("0x{strategies:x}")),
            ],
            Self::Xz { dict_size, filters } => {
                let names: Vec<&str> = XZ_FILTERS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| filters & (1 << i) != 0)
                    .map(|(_, n)| *n)
                    .collect();
                vec![
                    ("dict_size", dict_size.to_string()),
                    ("filters", names.join(",")),
                ]
            }
            Self::Lz4 {
                version,
                flags,
                data,
            } => {
                let mut v = vec![
                    ("version", version.to_string()),
                    ("high_compression", (flags & 1 != 0).to_string()),
                ];
                if let Some(d) = data {
                    let what = if flags & 1 != 0 {
                        "level"
                    } else {
                        "acceleration"
                    };
                    v.push((what, d.to_string()));
                }
                v
            }
            Self::Zstd { level } => vec![("level", level.to_string())],
            Self::Lzo { algorithm, level } => vec![
                ("algorithm", algorithm.to_string()),
                ("level", level.to_string()),
            ],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..20000u32)
            .map(|i| (i % 251) as u8 ^ (i / 997) as u8)
            .collect()
    }

    #[test]
    fn each_codec_round_trips_and_refuses_overflow() {
        let data = sample();
        let z = {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        let zs = zstd::bulk::compress(&data, 3).unwrap();
        let l4 = lz4_flex::block::compress(&data);
        let xz = {
            let mut out = Vec::new();
            let mut s = liblzma::stream::Stream::new_easy_encoder(6, liblzma::stream::Check::Crc32)
                .unwrap();
            out.reserve(data.len() + 1024);
            s.process_vec(&data, &mut out, liblzma::stream::Action::Finish)
                .unwrap();
            out
        };
        let lzo = lzokay_native::compress(&data).unwrap();
        for (c, blob) in [
            (Compressor::Gzip, z),
            (Compressor::Zstd, zs),
            (Compressor::Lz4, l4),
            (Compressor::Xz, xz),
            (Compressor::Lzo, lzo),
        ] {
            assert_eq!(
                c.decompress(&blob, data.len()).unwrap(),
                data,
                "{}",
                c.name()
            );
            assert!(
                c.decompress(&blob, data.len() - 1).is_err(),
                "{} must refuse overflow",
                c.name()
            );
            // Raw lz4 has no end marker: a cut block may decode short. Either
            // way the data never comes back whole (callers check exact sizes).
            let cut = c.decompress(&blob[..blob.len() / 2], data.len());
            assert!(
                cut.is_err() || cut.is_ok_and(|v| v.len() < data.len()),
                "{} truncated",
                c.name()
            );
        }
    }

    #[test]
    fn garbage_is_an_error_for_every_codec() {
        let junk: Vec<u8> = (0..300u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for id in 1..=6 {
            let c = Compressor::from_id(id).unwrap();
            let _ = c.decompress(&junk, 8192); // must return, not panic
        }
    }

    #[test]
    fn options_decode() {
        // gzip: level 9 (u32), window 15 (u16), strategies 0 (u16)
        let b = [9, 0, 0, 0, 15, 0, 0, 0];
        assert_eq!(
            CompressorOptions::parse(Compressor::Gzip, &b).unwrap(),
            CompressorOptions::Gzip {
                level: 9,
                window_bits: 15,
                strategies: 0
            }
        );
        // xz: dict 1 MiB, filters x86|arm
        let b = [0, 0, 0x10, 0, 9, 0, 0, 0];
        let o = CompressorOptions::parse(Compressor::Xz, &b).unwrap();
        assert_eq!(o.describe()[1].1, "x86,arm");
    }
}
