//! Compressed tar streams (`pack --tar` files and standard input, OCI
//! layers): which compression a stream has, and a streaming decoder.

use std::io::{self, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamCompression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl StreamCompression {
    /// Told by the stream's first bytes, as tar does.
    pub fn sniff(head: &[u8]) -> StreamCompression {
        if head.starts_with(&[0x1f, 0x8b]) {
            StreamCompression::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            StreamCompression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
            StreamCompression::Xz
        } else if head.starts_with(b"BZh") {
            StreamCompression::Bzip2
        } else {
            StreamCompression::None
        }
    }

    /// `r` decompressed, streaming; concatenated gzip, xz and bzip2
    /// members are read as one stream, as their tools write them.
    pub fn decoder<'a>(self, r: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            StreamCompression::None => Box::new(r),
            StreamCompression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(r)),
            StreamCompression::Zstd => Box::new(zstd::stream::read::Decoder::new(r)?),
            StreamCompression::Xz => Box::new(liblzma::read::XzDecoder::new_multi_decoder(r)),
            StreamCompression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(r)),
        })
    }
}
