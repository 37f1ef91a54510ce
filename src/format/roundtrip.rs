//! Property tests for every on-disk structure: any valid value encodes and
//! decodes back to itself, and decoding arbitrary bytes gives an error or
//! a value, never a panic.

use super::block::{valid_block_size, BlockWord};
use super::compressor::{CompressSettings, Compressor, CompressorOptions};
use super::dir::{self, write_listing, DirEntry, DirReader, IndexEntry, ListingEntry, MAX_NAME};
use super::id::{read_ids, IdTableWriter};
use super::inode::{
    block_count, rdev_encode, rdev_split, DirInfo, FileInfo, FileType, Inode, InodeData, InodeType,
    MAX_SYMLINK,
};
use super::metadata::{self, encode_block, MetaCursor, MetaRef, MetaWriter, Uncached};
use super::superblock::{self, Superblock};
use super::table::{write_lookup_table, FragmentEntry, LookupTable};
use super::xattr::{Namespace, Xattr, XattrId, XattrTable, XattrWriter};
use super::{ByteSource, METADATA_SIZE, NONE_U32};
use proptest::prelude::*;
use proptest::sample::select;

const WRITABLE: [Compressor; 5] = [
    Compressor::Gzip,
    Compressor::Xz,
    Compressor::Lz4,
    Compressor::Zstd,
    Compressor::Lzo,
];
const ALL: [Compressor; 6] = [
    Compressor::Gzip,
    Compressor::Lzma,
    Compressor::Lzo,
    Compressor::Xz,
    Compressor::Lz4,
    Compressor::Zstd,
];

fn settings(c: Compressor) -> CompressSettings {
    CompressSettings::new(c, CompressSettings::default_level(c), 8192)
}

fn compressor() -> impl Strategy<Value = Compressor> {
    select(WRITABLE.to_vec())
}

fn file_type() -> impl Strategy<Value = FileType> {
    select(FileType::BASIC.to_vec())
}

/// A name a directory may hold: 1..=256 bytes, no '/' or NUL, not . or ..
fn name() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 1..=MAX_NAME).prop_map(|mut n| {
        for b in &mut n {
            if *b == b'/' || *b == 0 {
                *b = b'x';
            }
        }
        if n == b"." || n == b".." {
            n.push(b'x');
        }
        n
    })
}

fn block_size() -> impl Strategy<Value = u32> {
    (12u32..=20).prop_map(|log| 1 << log)
}

/// A valid superblock: tables in order inside `bytes_used`.
fn superblock() -> impl Strategy<Value = Superblock> {
    (
        (1u32.., any::<u32>(), block_size(), any::<u32>(), 1u16..=6),
        (any::<u16>(), 1u16.., any::<u64>()),
        (96u64..1 << 40, 1u64..1 << 20, 1u64..1 << 20),
        prop::array::uniform4(proptest::option::of(0u64..1 << 20)),
    )
        .prop_map(|(a, b, c, tables)| {
            let (inode_count, mkfs_time, block_size, frags, compression_id) = a;
            let (flags, id_count, root_inode_ref) = b;
            let (inode_table_start, dir_gap, rest) = c;
            let directory_table_start = inode_table_start + dir_gap;
            let bytes_used = directory_table_start + rest + 1;
            // Each table somewhere in [directory_table_start, bytes_used).
            let place = |t: Option<u64>| t.map(|x| directory_table_start + x % rest);
            Superblock {
                inode_count,
                mkfs_time,
                block_size,
                fragment_entry_count: frags,
                compression_id,
                block_log: block_size.trailing_zeros() as u16,
                flags,
                id_count,
                version_major: 4,
                version_minor: 0,
                root_inode_ref,
                bytes_used,
                id_table_start: place(tables[0]).unwrap_or(directory_table_start),
                xattr_id_table_start: place(tables[1]),
                inode_table_start,
                directory_table_start,
                fragment_table_start: place(tables[2]),
                export_table_start: place(tables[3]),
            }
        })
}

/// A file's data description that the decoder accepts for `block_size`.
fn file_info(block_size: u32, extended: bool) -> impl Strategy<Value = FileInfo> {
    let max_size = if extended {
        u64::from(block_size) * 64
    } else {
        u64::from(block_size) * 8
    };
    (
        0..=max_size,
        any::<bool>(),
        any::<u32>(),
        0..block_size,
        prop::collection::vec((0..=block_size, any::<bool>()), 64),
        any::<u64>(),
        any::<u32>(),
        any::<u64>(),
    )
        .prop_map(
            move |(size, frag, frag_index, frag_off, words, start, start32, sparse)| {
                let bs = u64::from(block_size);
                // A fragment holds a tail only: a size that is a whole
                // number of blocks keeps its last block.
                let has_frag = frag && (size % bs != 0 || size == 0) && frag_index != NONE_U32;
                let n = block_count(size, block_size, has_frag) as usize;
                FileInfo {
                    blocks_start: if extended { start } else { u64::from(start32) },
                    size,
                    sparse: if extended { sparse } else { 0 },
                    fragment: has_frag.then_some((frag_index, frag_off)),
                    blocks: words[..n]
                        .iter()
                        .map(|&(len, stored)| BlockWord::new(len, stored))
                        .collect(),
                }
            },
        )
}

fn index_entries() -> impl Strategy<Value = Vec<IndexEntry>> {
    prop::collection::btree_set(name(), 0..6).prop_flat_map(|names| {
        let n = names.len();
        (
            Just(names),
            prop::collection::vec(1u32..5000, n),
            prop::collection::vec(0u32..3, n),
        )
            .prop_map(|(names, gaps, starts)| {
                let (mut index, mut start) = (0u32, 0u32);
                names
                    .into_iter()
                    .zip(gaps.into_iter().zip(starts))
                    .map(|(name, (g, s))| {
                        index += g;
                        start += s;
                        IndexEntry { index, start, name }
                    })
                    .collect()
            })
    })
}

/// A valid inode of any of the 14 types, and the index entries an
/// extended directory carries, for a block size and inode count.
fn inode(block_size: u32) -> impl Strategy<Value = (Inode, Vec<IndexEntry>)> {
    (
        (file_type(), any::<bool>()),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>()),
        (
            1u32..1000,
            any::<u32>(),
            proptest::option::of(0u32..NONE_U32),
        ),
    )
        .prop_flat_map(
            move |((ft, extended), (perm, uid, gid, mtime), (number, nlink, x))| {
                let t = InodeType::new(ft, extended);
                let xattr = if extended { x } else { None };
                let data: BoxedStrategy<(InodeData, Vec<IndexEntry>)> = match ft {
                    FileType::Dir => (
                        any::<u32>(),
                        any::<u16>(),
                        if extended {
                            (0..=u32::MAX).boxed()
                        } else {
                            (0..=u32::from(u16::MAX)).boxed()
                        },
                        any::<u32>(),
                        if extended {
                            index_entries().boxed()
                        } else {
                            Just(Vec::new()).boxed()
                        },
                    )
                        .prop_map(|(block, offset, size, parent, index)| {
                            let d = DirInfo {
                                block,
                                offset,
                                size,
                                parent,
                                index_count: index.len() as u16,
                                index_at: None,
                            };
                            (InodeData::Dir(d), index)
                        })
                        .boxed(),
                    FileType::File => file_info(block_size, extended)
                        .prop_map(|f| (InodeData::File(f), Vec::new()))
                        .boxed(),
                    FileType::Symlink => prop::collection::vec(1u8..=255, 0..600)
                        .prop_map(|t| (InodeData::Symlink(t), Vec::new()))
                        .boxed(),
                    FileType::BlockDev => any::<u32>()
                        .prop_map(|r| (InodeData::BlockDev(r), Vec::new()))
                        .boxed(),
                    FileType::CharDev => any::<u32>()
                        .prop_map(|r| (InodeData::CharDev(r), Vec::new()))
                        .boxed(),
                    FileType::Fifo => Just((InodeData::Fifo, Vec::new())).boxed(),
                    FileType::Socket => Just((InodeData::Socket, Vec::new())).boxed(),
                };
                data.prop_map(move |(data, index)| {
                    // A basic file has one link; the decoder says so.
                    let nlink = if t == InodeType::File { 1 } else { nlink };
                    let inode = Inode {
                        inode_type: t,
                        perm,
                        uid_index: uid,
                        gid_index: gid,
                        mtime,
                        number,
                        nlink,
                        xattr,
                        data,
                    };
                    (inode, index)
                })
            },
        )
}

/// The image of one metadata table holding `payload`, compressed with `c`.
fn table(payload: &[u8], c: Compressor) -> Vec<u8> {
    let mut w = MetaWriter::new(settings(c));
    w.write(payload);
    w.finish().0
}

/// Sorted, unique directory entries naming inodes in a few metadata blocks.
fn listing_entries() -> impl Strategy<Value = Vec<(Vec<u8>, u32, u64, u16, FileType)>> {
    prop::collection::btree_map(
        name(),
        (1u32..100_000, 0u64..4, 0u16..8192, file_type()),
        0..400,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(n, (num, blk, off, ft))| (n, num, blk * 9000, off, ft))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn superblock_round_trips(sb in superblock()) {
        let bytes = sb.to_bytes();
        prop_assert_eq!(Superblock::parse(&bytes, sb.bytes_used).unwrap(), sb);
    }

    #[test]
    fn superblock_decodes_any_bytes(b in prop::collection::vec(any::<u8>(), 0..200), len in any::<u64>()) {
        let _ = Superblock::parse(&b, len);
        // The magic alone is not enough to get past validation by luck.
        let mut with_magic = b.clone();
        if with_magic.len() >= 4 {
            with_magic[..4].copy_from_slice(&superblock::MAGIC.to_le_bytes());
            let _ = Superblock::parse(&with_magic, len);
        }
    }

    #[test]
    fn metadata_streams_round_trip(
        c in compressor(),
        data in prop::collection::vec(any::<u8>(), 1..30_000),
        split in any::<prop::sample::Index>(),
    ) {
        // Incompressible and compressible runs alike: half of it repeats.
        let mut payload = data.clone();
        payload.extend(std::iter::repeat_n(7u8, data.len()));
        let at = split.index(payload.len());
        let mut w = MetaWriter::new(settings(c));
        w.write(&payload[..at]);
        let r = w.pos();
        w.write(&payload[at..]);
        let (img, _) = w.finish();
        let src = Uncached { image: &img, comp: c };
        let mut cur = MetaCursor::at(&src, 0, img.len() as u64, r).unwrap();
        prop_assert_eq!(cur.read_vec((payload.len() - at) as u64).unwrap(), &payload[at..]);
    }

    #[test]
    fn metadata_blocks_decode_any_bytes(c in select(ALL.to_vec()), b in prop::collection::vec(any::<u8>(), 0..400), stored in any::<bool>()) {
        let mut img = b.clone();
        if img.len() >= 2 {
            let h = metadata::encode_header((img.len() - 2).clamp(1, METADATA_SIZE), stored);
            img[..2].copy_from_slice(&h.to_le_bytes());
        }
        let _ = metadata::read_block(&img[..], c, 0, img.len() as u64);
        let _ = metadata::read_block(&b[..], c, 0, b.len() as u64);
    }

    #[test]
    fn compressors_round_trip(c in compressor(), data in prop::collection::vec(any::<u8>(), 0..10_000)) {
        let mut payload = data.clone();
        payload.extend_from_slice(&data); // something to find for every codec
        if let Some(z) = settings(c).compress(&payload) {
            prop_assert_eq!(c.decompress(&z, payload.len()).unwrap(), payload);
        }
    }

    #[test]
    fn compressors_decode_any_bytes(c in select(ALL.to_vec()), b in prop::collection::vec(any::<u8>(), 0..2000), max in 0usize..70_000) {
        if let Ok(out) = c.decompress(&b, max) {
            prop_assert!(out.len() <= max);
        }
    }

    #[test]
    fn compressor_options_round_trip(
        c in compressor(),
        a in any::<u32>(), b in any::<u32>(), w in any::<u16>(), s in any::<u16>(),
        d in prop::option::of(any::<u32>()),
    ) {
        let o = match c {
            Compressor::Gzip => CompressorOptions::Gzip { level: a, window_bits: w, strategies: s },
            Compressor::Xz => CompressorOptions::Xz { dict_size: a, filters: b },
            Compressor::Lz4 => CompressorOptions::Lz4 { version: a, flags: b, data: d },
            Compressor::Zstd => CompressorOptions::Zstd { level: a },
            _ => CompressorOptions::Lzo { algorithm: a, level: b },
        };
        prop_assert_eq!(CompressorOptions::parse(c, &o.encode()).unwrap(), o);
    }

    #[test]
    fn compressor_settings_record_what_they_need(c in compressor(), level in 0u32..23, filters in 0u32..64) {
        let s = CompressSettings { xz_filters: filters, ..CompressSettings::new(c, level, 131072) };
        if let Some(o) = s.options() {
            let back = CompressorOptions::parse(c, &o.encode()).unwrap();
            let level_back = match back {
                CompressorOptions::Gzip { level, .. } | CompressorOptions::Zstd { level }
                | CompressorOptions::Lzo { level, .. } => Some(level),
                _ => None,
            };
            if matches!(c, Compressor::Gzip | Compressor::Zstd | Compressor::Lzo) {
                prop_assert_eq!(level_back, Some(level));
            }
        }
    }

    #[test]
    fn inodes_round_trip((bs, (inode, index)) in block_size().prop_flat_map(|bs| (Just(bs), inode(bs)))) {
        let mut bytes = Vec::new();
        inode.encode(&index, &mut bytes).unwrap();
        let img = table(&bytes, Compressor::Zstd);
        let src = Uncached { image: &img, comp: Compressor::Zstd };
        let mut c = MetaCursor::new(&src, 0, img.len() as u64, 0, 0).unwrap();
        let mut back = Inode::parse(&mut c, bs, 1000).unwrap();
        if let InodeData::Dir(d) = &mut back.data {
            // Where the index lies is the decoder's to say: read it there.
            if let Some((blk, off)) = d.index_at.take() {
                let mut ic = MetaCursor::new(&src, 0, img.len() as u64, blk, off).unwrap();
                let got = dir::read_index(&mut ic, d.index_count, u64::MAX).unwrap();
                prop_assert_eq!(&got, &index);
            }
        }
        prop_assert_eq!(back, inode);
    }

    #[test]
    fn inode_forms_refuse_what_they_cannot_hold(size in (1u64 << 32)..(1 << 40)) {
        let mut inode = Inode {
            inode_type: InodeType::File,
            perm: 0o644,
            uid_index: 0,
            gid_index: 0,
            mtime: 0,
            number: 1,
            nlink: 1,
            xattr: None,
            data: InodeData::File(FileInfo { blocks_start: 0, size, sparse: 0, fragment: None, blocks: vec![] }),
        };
        prop_assert!(inode.encode(&[], &mut Vec::new()).is_err());
        prop_assert_eq!(InodeType::smallest(&inode.data, 1, None), InodeType::ExtFile);
        inode.inode_type = InodeType::Symlink;
        prop_assert!(inode.encode(&[], &mut Vec::new()).is_err(), "type and data disagree");
        let long = Inode { inode_type: InodeType::Symlink, data: InodeData::Symlink(vec![b'a'; MAX_SYMLINK + 1]), ..inode };
        prop_assert!(long.encode(&[], &mut Vec::new()).is_err());
    }

    #[test]
    fn inodes_decode_any_bytes(b in prop::collection::vec(any::<u8>(), 16..300), t in 0u16..16, bs in block_size()) {
        let mut p = b.clone();
        p[..2].copy_from_slice(&t.to_le_bytes());
        let img = encode_block(&p, None);
        let src = Uncached { image: &img, comp: Compressor::Gzip };
        let mut c = MetaCursor::new(&src, 0, img.len() as u64, 0, 0).unwrap();
        let _ = Inode::parse(&mut c, bs, u32::MAX);
    }

    #[test]
    fn listings_round_trip(entries in listing_entries(), c in compressor()) {
        let list: Vec<ListingEntry> = entries.iter().map(|(n, num, blk, off, ft)| ListingEntry {
            name: n,
            inode_number: *num,
            inode_ref: MetaRef::new(*blk, *off),
            file_type: *ft,
        }).collect();
        let mut w = MetaWriter::new(settings(c));
        w.write(&[1, 2, 3]); // the listing need not start a block
        let l = write_listing(&mut w, &list).unwrap();
        let (img, _) = w.finish();
        let src = Uncached { image: &img, comp: c };
        let bytes = u64::from(l.size - dir::LISTING_SIZE_EXTRA);
        let cur = MetaCursor::new(&src, 0, img.len() as u64, u64::from(l.block), usize::from(l.offset)).unwrap();
        let back: Vec<DirEntry> = DirReader::new(cur, bytes, 100_000).collect::<crate::Result<_>>().unwrap();
        let want: Vec<DirEntry> = list.iter().map(|e| DirEntry {
            name: e.name.to_vec(),
            inode_ref: e.inode_ref,
            inode_number: e.inode_number,
            file_type: e.file_type,
        }).collect();
        prop_assert_eq!(&back, &want);
        // Every index entry leads to a run whose first name it carries.
        for ie in &l.index {
            let off = (usize::from(l.offset) + ie.index as usize) % METADATA_SIZE;
            let cur = MetaCursor::new(&src, 0, img.len() as u64, u64::from(ie.start), off).unwrap();
            let first = DirReader::new(cur, bytes - u64::from(ie.index), 100_000).next().unwrap().unwrap();
            prop_assert_eq!(&first.name, &ie.name);
        }
    }

    #[test]
    fn listings_refuse_unsorted_or_bad_names(a in name(), b in name()) {
        fn e(n: &[u8]) -> ListingEntry<'_> {
            ListingEntry { name: n, inode_number: 1, inode_ref: MetaRef(0), file_type: FileType::File }
        }
        let mut w = MetaWriter::new(settings(Compressor::Gzip));
        let (lo, hi) = if a <= b { (&a, &b) } else { (&b, &a) };
        prop_assert!(write_listing(&mut w, &[e(hi), e(lo)]).is_err());
        prop_assert!(write_listing(&mut w, &[e(b"a/b")]).is_err());
    }

    #[test]
    fn listings_decode_any_bytes(b in prop::collection::vec(any::<u8>(), 1..600), count in any::<u16>()) {
        let img = encode_block(&b, None);
        let src = Uncached { image: &img, comp: Compressor::Gzip };
        if let Ok(cur) = MetaCursor::new(&src, 0, img.len() as u64, 0, 0) {
            let _ = DirReader::new(cur, b.len() as u64, 1000).count();
        }
        if let Ok(mut cur) = MetaCursor::new(&src, 0, img.len() as u64, 0, 0) {
            let _ = dir::read_index(&mut cur, count, b.len() as u64);
        }
    }

    #[test]
    fn xattrs_round_trip(
        sets in prop::collection::vec(
            prop::collection::btree_map(
                (select(Namespace::ALL.to_vec()), prop::collection::vec(1u8..=255, 1..40)),
                prop::collection::vec(any::<u8>(), 0..300),
                0..6,
            ),
            1..30,
        ),
        shared in prop::collection::vec(any::<u8>(), 9..40),
        c in compressor(),
    ) {
        let sets: Vec<Vec<Xattr>> = sets.into_iter().enumerate().map(|(i, m)| {
            m.into_iter().map(|((ns, short), value)| {
                let mut name = ns.prefix().to_vec();
                name.extend(short);
                // Every third set repeats a value, to be stored once.
                let value = if i % 3 == 0 { shared.clone() } else { value };
                Xattr { name, value }
            }).collect()
        }).collect();
        let mut w = XattrWriter::new(settings(c));
        let ids: Vec<u32> = sets.iter().map(|s| w.add(s).unwrap()).collect();
        let mut img = vec![0u8; 100]; // the table need not start the image
        let start = w.finish(&mut img, 0, settings(c));
        let Some(start) = start else {
            prop_assert!(sets.iter().all(|s| s.is_empty()) && sets.is_empty());
            return Ok(());
        };
        let t = XattrTable::load(&img[..], start, 100).unwrap();
        let src = Uncached { image: &img, comp: c };
        for (set, id) in sets.iter().zip(ids) {
            prop_assert_eq!(&t.get(&src, id).unwrap(), set);
        }
    }

    #[test]
    fn xattr_ids_and_names(r in any::<u64>(), count in any::<u32>(), size in any::<u32>(), name in prop::collection::vec(any::<u8>(), 0..20)) {
        let id = XattrId { kv_ref: MetaRef(r), count, size };
        prop_assert_eq!(XattrId::decode(&id.encode()), id);
        if let Some((ns, rest)) = Namespace::split(&name) {
            let mut again = ns.prefix().to_vec();
            again.extend_from_slice(rest);
            prop_assert_eq!(again, name);
        }
        for ns in Namespace::ALL {
            for out in [false, true] {
                prop_assert_eq!(Namespace::from_key_type(ns.key_type(out)), Some((ns, out)));
            }
        }
    }

    #[test]
    fn xattr_tables_decode_any_bytes(b in prop::collection::vec(any::<u8>(), 16..500), id in 0u32..4) {
        let mut img = encode_block(&b, None);
        let at = img.len() as u64;
        img.extend_from_slice(&0u64.to_le_bytes()); // kv start
        img.extend_from_slice(&4u32.to_le_bytes()); // ids
        img.extend_from_slice(&0u32.to_le_bytes());
        img.extend_from_slice(&0u64.to_le_bytes()); // id block at 0
        if let Ok(t) = XattrTable::load(&img[..], at, 0) {
            let src = Uncached { image: &img, comp: Compressor::Gzip };
            let _ = t.get(&src, id);
        }
    }

    #[test]
    fn id_tables_round_trip(ids in prop::collection::vec(any::<u32>(), 1..5000), c in compressor()) {
        let mut w = IdTableWriter::default();
        let idx: Vec<u16> = ids.iter().map(|&i| w.index(i).unwrap()).collect();
        let mut img = vec![0u8; 10];
        let start = w.finish(&mut img, 0, settings(c));
        let src = Uncached { image: &img, comp: c };
        let t = read_ids(&img[..], &src, start, w.len() as u16, 10).unwrap();
        for (id, i) in ids.iter().zip(idx) {
            prop_assert_eq!(t.ids[usize::from(i)], *id);
        }
    }

    #[test]
    fn fragment_and_export_tables_round_trip(
        frags in prop::collection::vec((any::<u64>(), 0u32..=1 << 20, any::<bool>()), 1..1200),
        refs in prop::collection::vec(any::<u64>(), 1..2100),
        c in compressor(),
    ) {
        let frags: Vec<FragmentEntry> = frags.into_iter()
            .map(|(start, len, stored)| FragmentEntry { start, size: BlockWord::new(len, stored) })
            .collect();
        let mut img = vec![0u8; 4];
        let fstart = write_lookup_table(&mut img, 0, &frags.iter().flat_map(FragmentEntry::encode).collect::<Vec<_>>(), &[], settings(c));
        let estart = write_lookup_table(&mut img, 0, &refs.iter().flat_map(|r| r.to_le_bytes()).collect::<Vec<_>>(), &[], settings(c));
        let src = Uncached { image: &img, comp: c };
        let ft = LookupTable::load("fragment table", &img[..], fstart, frags.len() as u64, FragmentEntry::SIZE, 4).unwrap();
        for (i, f) in frags.iter().enumerate() {
            let mut b = [0u8; FragmentEntry::SIZE];
            ft.entry(&src, i as u64, &mut b).unwrap();
            prop_assert_eq!(FragmentEntry::parse(&b), *f);
        }
        let et = LookupTable::load("export table", &img[..], estart, refs.len() as u64, 8, 4).unwrap();
        for (i, r) in refs.iter().enumerate() {
            let mut b = [0u8; 8];
            et.entry(&src, i as u64, &mut b).unwrap();
            prop_assert_eq!(u64::from_le_bytes(b), *r);
        }
    }

    #[test]
    fn lookup_tables_decode_any_bytes(b in prop::collection::vec(any::<u8>(), 0..300), count in any::<u64>(), size in 1usize..17, i in any::<u64>()) {
        if let Ok(t) = LookupTable::load("t", &b[..], b.len().saturating_sub(16) as u64, count, size, 0) {
            let src = Uncached { image: &b, comp: Compressor::Gzip };
            let mut buf = vec![0u8; size];
            let _ = t.entry(&src, i % count.max(1), &mut buf);
        }
    }

    #[test]
    fn device_numbers_round_trip(major in 0u32..4096, minor in 0u32..1 << 20) {
        let r = rdev_encode(major, minor).unwrap();
        prop_assert_eq!(rdev_split(r), (major, minor));
    }

    #[test]
    fn block_words_round_trip(len in 0u32..=1 << 20, stored in any::<bool>(), bs in block_size()) {
        let w = BlockWord::new(len, stored);
        prop_assert_eq!((w.disk_size(), w.is_stored(), w.is_sparse()), (len, stored, len == 0));
        prop_assert_eq!(w.fits(bs), len <= bs);
        prop_assert!(valid_block_size(bs));
    }
}

#[test]
fn byte_sources_refuse_reads_past_the_end() {
    let v = vec![1u8; 10];
    assert!(v.read_bytes(5, 5).is_ok());
    assert!(v.read_bytes(5, 6).is_err());
    assert!(v.read_bytes(u64::MAX, 2).is_err());
}
