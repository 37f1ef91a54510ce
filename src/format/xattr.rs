//! Extended attributes: the xattr id table and the key/value area.

use super::compressor::CompressSettings;
use super::le::{u32_at, u64_at};
use super::metadata::{MetaCursor, MetaRef, MetaSource, MetaWriter};
use super::table::{write_lookup_table, LookupTable};
use super::ByteSource;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// The namespaces SquashFS can store, by the key type number it stores
/// (the prefix itself is not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u16)]
pub enum Namespace {
    /// `user.*`
    User = 0,
    /// `trusted.*`
    Trusted = 1,
    /// `security.*`
    Security = 2,
}

/// Key-type bit: the value record is elsewhere, an 8-byte reference stands here.
pub const VALUE_OUT_OF_LINE: u16 = 0x100;

impl Namespace {
    /// Every namespace SquashFS stores.
    pub const ALL: [Namespace; 3] = [Self::User, Self::Trusted, Self::Security];

    /// The name prefix, dot included (`user.`).
    pub fn prefix(self) -> &'static [u8] {
        match self {
            Self::User => b"user.",
            Self::Trusted => b"trusted.",
            Self::Security => b"security.",
        }
    }
    /// A stored key type: its namespace and whether the value is out of line.
    pub fn from_key_type(t: u16) -> Option<(Self, bool)> {
        if t & !(0xff | VALUE_OUT_OF_LINE) != 0 {
            return None;
        }
        let ns = *Self::ALL.get(usize::from(t & 0xff))?;
        Some((ns, t & VALUE_OUT_OF_LINE != 0))
    }
    /// The stored type word: the namespace, with the out-of-line bit for a value stored elsewhere.
    pub fn key_type(self, out_of_line: bool) -> u16 {
        self as u16 | if out_of_line { VALUE_OUT_OF_LINE } else { 0 }
    }
    /// A full attribute name's namespace and the name without its prefix;
    /// `None` for names SquashFS cannot store (system.*, say).
    pub fn split(name: &[u8]) -> Option<(Self, &[u8])> {
        Self::ALL
            .into_iter()
            .find_map(|ns| name.strip_prefix(ns.prefix()).map(|rest| (ns, rest)))
    }
}

/// The xattr id table and where the key/value lists start.
#[derive(Debug, Clone)]
pub struct XattrTable {
    /// Image offset of the key/value metadata.
    pub kv_start: u64,
    /// The id table.
    pub ids: LookupTable,
}

/// An xattr id entry: the key/value list's location, count and total size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrId {
    /// Where the inode's key/value list starts.
    pub kv_ref: MetaRef,
    /// How many pairs it holds.
    pub count: u32,
    /// Their total size, as stored.
    pub size: u32,
}

/// One extended attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Xattr {
    /// The full name, prefix included ("user.foo").
    pub name: Vec<u8>,
    /// The value, any bytes.
    pub value: Vec<u8>,
}

impl XattrTable {
    /// The table whose id index is at `start`, its lists at or above `lower`.
    pub fn load<B: ByteSource + ?Sized>(image: &B, start: u64, lower: u64) -> Result<Self> {
        let hdr = image
            .read_bytes(start, 16)
            .map_err(|_| Error::corrupt(start, "xattr id table header is past the image end"))?;
        let kv_start = u64_at(&hdr, 0);
        let count = u32_at(&hdr, 8);
        let ids = LookupTable::load(
            "xattr id table",
            image,
            start + 16,
            u64::from(count),
            16,
            lower,
        )?;
        if kv_start < lower || kv_start > ids.first_block() {
            return Err(Error::corrupt(
                start,
                format!("xattr key/value table start {kv_start} is out of place"),
            ));
        }
        Ok(XattrTable { kv_start, ids })
    }

    /// Xattr id `i`.
    pub fn id<S: MetaSource + ?Sized>(&self, src: &S, i: u32) -> Result<XattrId> {
        let mut b = [0u8; XattrId::SIZE];
        self.ids.entry(src, u64::from(i), &mut b)?;
        Ok(XattrId::decode(&b))
    }

    /// All attributes of xattr id `i`, in stored order.
    pub fn get<S: MetaSource + ?Sized>(&self, src: &S, i: u32) -> Result<Vec<Xattr>> {
        let id = self.id(src, i)?;
        if id.count == 0 {
            return Ok(Vec::new()); // nothing to find in the key/value area
        }
        let limit = self.ids.first_block();
        let mut c = MetaCursor::at(src, self.kv_start, limit, id.kv_ref)?;
        let mut out = Vec::with_capacity((id.count as usize).min(64));
        for _ in 0..id.count {
            let pos = c.pos();
            let t = c.u16()?;
            let name_len = c.u16()?;
            let (ns, out_of_line) = Namespace::from_key_type(t)
                .ok_or_else(|| Error::corrupt(pos, format!("xattr key type 0x{t:x} is unknown")))?;
            let mut name = ns.prefix().to_vec();
            name.extend(c.read_vec(u64::from(name_len))?);
            if name.contains(&0) {
                return Err(Error::corrupt(pos, "xattr name contains a NUL byte"));
            }
            let vsize = c.u32()?;
            let value = if out_of_line {
                if vsize != 8 {
                    return Err(Error::corrupt(
                        pos,
                        format!("out-of-line xattr value reference of {vsize} bytes, not 8"),
                    ));
                }
                let r = MetaRef(c.u64()?);
                let mut vc = MetaCursor::at(src, self.kv_start, limit, r)?;
                let n = vc.u32()?;
                vc.read_vec(u64::from(n))?
            } else {
                c.read_vec(u64::from(vsize))?
            };
            out.push(Xattr { name, value });
        }
        Ok(out)
    }
}

impl XattrId {
    /// Bytes of one id entry.
    pub const SIZE: usize = 16;
    /// Decodes one entry.
    pub fn decode(b: &[u8; Self::SIZE]) -> Self {
        XattrId {
            kv_ref: MetaRef(u64_at(b, 0)),
            count: u32_at(b, 8),
            size: u32_at(b, 12),
        }
    }
    /// Encodes one entry.
    pub fn encode(&self) -> [u8; Self::SIZE] {
        let mut b = [0u8; Self::SIZE];
        b[0..8].copy_from_slice(&self.kv_ref.0.to_le_bytes());
        b[8..12].copy_from_slice(&self.count.to_le_bytes());
        b[12..16].copy_from_slice(&self.size.to_le_bytes());
        b
    }
}

/// A value referenced elsewhere takes this many bytes (a `MetaRef`).
const OOL_SIZE: usize = 8;
/// Values longer than this start out of line (mksquashfs's XATTR_INLINE_MAX).
const INLINE_MAX: usize = 128;
/// A list is made to fit this many bytes by moving values out of line.
const LIST_TARGET: usize = 65536;

/// Builds the key/value area and the xattr id table (the writer side of
/// [`XattrTable`]), laid out as mksquashfs lays it: identical sets share
/// one id; long values are stored out of line before their list; a value
/// of 8 bytes or more seen before is referenced, not stored again.
pub struct XattrWriter {
    kv: MetaWriter,
    ids: Vec<XattrId>,
    sets: HashMap<Vec<Xattr>, u32>,
    /// Where each value of 8 bytes or more was stored (its length word).
    values: HashMap<Vec<u8>, MetaRef>,
}

impl XattrWriter {
    /// A writer compressing with `settings`.
    pub fn new(settings: CompressSettings) -> Self {
        XattrWriter {
            kv: MetaWriter::new(settings),
            ids: Vec::new(),
            sets: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// The xattr id of this set (full names, in the order to store them).
    pub fn add(&mut self, set: &[Xattr]) -> Result<u32> {
        if let Some(&i) = self.sets.get(set) {
            return Ok(i);
        }
        let mut keys = Vec::with_capacity(set.len());
        for x in set {
            let (ns, short) = Namespace::split(&x.name).ok_or_else(|| {
                Error::invalid(format!(
                    "xattr {} is in no namespace SquashFS stores",
                    String::from_utf8_lossy(&x.name)
                ))
            })?;
            let (Ok(short_len), Ok(value_len)) =
                (u16::try_from(short.len()), u32::try_from(x.value.len()))
            else {
                return Err(Error::invalid("xattr name or value too long"));
            };
            keys.push((ns, short, short_len, value_len));
        }
        // Out of line: values over a limit that halves (down to 8) until
        // the list fits its target.
        let mut max = INLINE_MAX;
        let ool: Vec<bool> = loop {
            let ool: Vec<bool> = set.iter().map(|x| x.value.len() > max).collect();
            let total: usize = set
                .iter()
                .zip(&keys)
                .zip(&ool)
                .map(|((x, k), &o)| 8 + k.1.len() + if o { OOL_SIZE } else { x.value.len() })
                .sum();
            if total <= LIST_TARGET || max == OOL_SIZE {
                break ool;
            }
            max = (max / 2).max(OOL_SIZE);
        };
        // A value stored before (8 bytes or more) is referenced; a new one
        // is remembered, its place known once written. `None`: to write.
        let mut refs: Vec<Option<MetaRef>> = Vec::with_capacity(set.len());
        let mut ool = ool;
        for (i, x) in set.iter().enumerate() {
            if x.value.len() < OOL_SIZE {
                refs.push(None);
                continue;
            }
            match self.values.get(&x.value) {
                Some(&r) => {
                    ool[i] = true;
                    refs.push(Some(r));
                }
                // A repeat within this set, of a value not yet placed, is
                // written again (out of line if it must be), as mksquashfs.
                None => refs.push(None),
            }
        }
        // The new out-of-line values, before the list.
        for (i, x) in set.iter().enumerate() {
            if ool[i] && refs[i].is_none() {
                let at = self.kv.pos();
                self.kv.write(&keys[i].3.to_le_bytes());
                self.kv.write(&x.value);
                refs[i] = Some(at);
                self.values.entry(x.value.clone()).or_insert(at);
            }
        }
        let kv_ref = self.kv.pos();
        let mut size = 0u32;
        for (i, x) in set.iter().enumerate() {
            let (ns, short, short_len, value_len) = keys[i];
            self.kv.write(&ns.key_type(ool[i]).to_le_bytes());
            self.kv.write(&short_len.to_le_bytes());
            self.kv.write(short);
            if ool[i] {
                let r = refs[i].expect("placed above");
                self.kv.write(&(OOL_SIZE as u32).to_le_bytes());
                self.kv.write(&r.0.to_le_bytes());
            } else {
                let at = self.kv.pos();
                self.kv.write(&value_len.to_le_bytes());
                self.kv.write(&x.value);
                if x.value.len() >= OOL_SIZE {
                    self.values.entry(x.value.clone()).or_insert(at);
                }
            }
            // As mksquashfs counts it: each full name with its NUL, and
            // the value.
            size = size.saturating_add((x.name.len() + 1 + x.value.len()) as u32);
        }
        let id = self.ids.len() as u32;
        self.ids.push(XattrId {
            kv_ref,
            count: set.len() as u32,
            size,
        });
        self.sets.insert(set.to_vec(), id);
        Ok(id)
    }

    /// Whether no xattrs were added.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends the key/value area and the id table to `out`, which starts
    /// at image offset `at`; returns the image offset of the id table's
    /// header (the superblock's xattr_id_table_start), or `None` when no
    /// inode has xattrs.
    pub fn finish(self, out: &mut Vec<u8>, at: u64, settings: CompressSettings) -> Option<u64> {
        if self.ids.is_empty() {
            return None;
        }
        let kv_start = at + out.len() as u64;
        out.extend_from_slice(&self.kv.finish().0);
        let entries: Vec<u8> = self.ids.iter().flat_map(XattrId::encode).collect();
        let mut header = Vec::with_capacity(16);
        header.extend_from_slice(&kv_start.to_le_bytes());
        header.extend_from_slice(&(self.ids.len() as u32).to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes()); // unused
        Some(write_lookup_table(out, at, &entries, &header, settings))
    }
}

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::super::metadata::{encode_block, Uncached};
    use super::*;

    /// A key/value area in one stored metadata block, its id table, and
    /// the xattr table header, laid out as mksquashfs does.
    fn fixture() -> (Vec<u8>, u64) {
        let mut kv = Vec::new();
        kv.extend_from_slice(&0u16.to_le_bytes()); // key type: user.
        kv.extend_from_slice(&4u16.to_le_bytes()); // name size
        kv.extend_from_slice(b"mime"); // name without prefix
        let shared_at = kv.len() as u64; // the value record below is shared
        kv.extend_from_slice(&10u32.to_le_bytes()); // value size
        kv.extend_from_slice(b"text/plain"); // value
        kv.extend_from_slice(&2u16.to_le_bytes()); // key type: security.
        kv.extend_from_slice(&5u16.to_le_bytes()); // name size
        kv.extend_from_slice(b"empty"); // name
        kv.extend_from_slice(&0u32.to_le_bytes()); // value size 0: empty value
        kv.extend_from_slice(&(1u16 | VALUE_OUT_OF_LINE).to_le_bytes()); // trusted., value elsewhere
        kv.extend_from_slice(&1u16.to_le_bytes()); // name size
        kv.extend_from_slice(b"t"); // name
        kv.extend_from_slice(&8u32.to_le_bytes()); // "value" size: an 8-byte reference
        kv.extend_from_slice(&shared_at.to_le_bytes()); // ref: block 0, offset of "text/plain"
        let mut img = encode_block(&kv, None);
        let ids_at = img.len() as u64;
        let mut ids = Vec::new();
        ids.extend_from_slice(&0u64.to_le_bytes()); // id 0: kv ref (block 0, offset 0)
        ids.extend_from_slice(&3u32.to_le_bytes()); // count
        ids.extend_from_slice(&40u32.to_le_bytes()); // total size
        img.extend_from_slice(&encode_block(&ids, None));
        let table = img.len() as u64;
        img.extend_from_slice(&0u64.to_le_bytes()); // kv_table_start
        img.extend_from_slice(&1u32.to_le_bytes()); // id count
        img.extend_from_slice(&0u32.to_le_bytes()); // unused
        img.extend_from_slice(&ids_at.to_le_bytes()); // id block offsets
        (img, table)
    }

    #[test]
    fn inline_empty_and_out_of_line_values() {
        let (img, table) = fixture();
        let t = XattrTable::load(&img[..], table, 0).unwrap();
        let src = Uncached {
            image: &img,
            comp: Compressor::Gzip,
        };
        let got = t.get(&src, 0).unwrap();
        let pairs: Vec<(&[u8], &[u8])> = got
            .iter()
            .map(|x| (x.name.as_slice(), x.value.as_slice()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (&b"user.mime"[..], &b"text/plain"[..]),
                (b"security.empty", b""),
                (b"trusted.t", b"text/plain")
            ]
        );
        assert!(t.get(&src, 1).is_err(), "id past the table");
    }

    #[test]
    fn unknown_key_type_is_refused() {
        let (mut img, table) = fixture();
        img[2] = 7; // first key type: 7 is no namespace
        let t = XattrTable::load(&img[..], table, 0).unwrap();
        let src = Uncached {
            image: &img,
            comp: Compressor::Gzip,
        };
        assert!(t.get(&src, 0).is_err());
    }
}
