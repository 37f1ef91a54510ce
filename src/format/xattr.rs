//! Extended attributes: the xattr id table and the key/value area.

use super::le::{u32_at, u64_at};
use super::metadata::{MetaCursor, MetaRef, MetaSource};
use super::table::LookupTable;
use super::ByteSource;
use crate::error::{Error, Result};

pub const PREFIXES: [&str; 3] = ["user.", "trusted.", "security."];
pub const VALUE_OUT_OF_LINE: u16 = 0x100;

#[derive(Debug, Clone)]
pub struct XattrTable {
    pub kv_start: u64,
    pub ids: LookupTable,
}

/// An xattr id entry: the key/value list's location, count and total size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XattrId {
    pub kv_ref: MetaRef,
    pub count: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xattr {
    /// The full name, prefix included ("user.foo").
    pub name: Vec<u8>,
    pub value: Vec<u8>,
}

impl XattrTable {
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

    pub fn id<S: MetaSource + ?Sized>(&self, src: &S, i: u32) -> Result<XattrId> {
        let mut b = [0u8; 16];
        self.ids.entry(src, u64::from(i), &mut b)?;
        Ok(XattrId {
            kv_ref: MetaRef(u64_at(&b, 0)),
            count: u32_at(&b, 8),
            size: u32_at(&b, 12),
        })
    }

    /// All attributes of xattr id `i`, in stored order.
    pub fn get<S: MetaSource + ?Sized>(&self, src: &S, i: u32) -> Result<Vec<Xattr>> {
        let id = self.id(src, i)?;
        let limit = self.ids.first_block();
        let mut c = MetaCursor::at(src, self.kv_start, limit, id.kv_ref)?;
        let mut out = Vec::with_capacity((id.count as usize).min(64));
        for _ in 0..id.count {
            let pos = c.pos();
            let t = c.u16()?;
            let name_len = c.u16()?;
            let prefix = PREFIXES
                .get(usize::from(t & 0xff))
                .filter(|_| t & !(0xff | VALUE_OUT_OF_LINE) == 0)
                .ok_or_else(|| Error::corrupt(pos, format!("xattr key type 0x{t:x} is unknown")))?;
            let mut name = prefix.as_bytes().to_vec();
            name.extend(c.read_vec(u64::from(name_len))?);
            if name.contains(&0) {
                return Err(Error::corrupt(pos, "xattr name contains a NUL byte"));
            }
            let vsize = c.u32()?;
            let value = if t & VALUE_OUT_OF_LINE != 0 {
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

#[cfg(test)]
mod tests {
    use super::super::compressor::Compressor;
    use super::super::metadata::Uncached;
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
        let mut img = (0x8000u16 | kv.len() as u16).to_le_bytes().to_vec(); // stored block header
        img.extend_from_slice(&kv);
        let ids_at = img.len() as u64;
        let mut ids = Vec::new();
        ids.extend_from_slice(&0u64.to_le_bytes()); // id 0: kv ref (block 0, offset 0)
        ids.extend_from_slice(&3u32.to_le_bytes()); // count
        ids.extend_from_slice(&40u32.to_le_bytes()); // total size
        img.extend_from_slice(&(0x8000u16 | ids.len() as u16).to_le_bytes());
        img.extend_from_slice(&ids);
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
