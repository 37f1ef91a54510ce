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
