//! `sqfuse info`: superblock, compressor, counts and table sizes.

use crate::format::superblock::flags;
use crate::reader::verity::{TreeLocation, TreeSummary};
use crate::reader::Image;
use std::io::Write;

const FLAG_NAMES: [(u16, &str); 12] = [
    (flags::UNCOMPRESSED_INODES, "uncompressed-inodes"),
    (flags::UNCOMPRESSED_DATA, "uncompressed-data"),
    (flags::CHECK, "check"),
    (flags::UNCOMPRESSED_FRAGMENTS, "uncompressed-fragments"),
    (flags::NO_FRAGMENTS, "no-fragments"),
    (flags::ALWAYS_FRAGMENTS, "always-fragments"),
    (flags::DUPLICATES, "duplicates-removed"),
    (flags::EXPORTABLE, "exportable"),
    (flags::UNCOMPRESSED_XATTRS, "uncompressed-xattrs"),
    (flags::NO_XATTRS, "no-xattrs"),
    (flags::COMPRESSOR_OPTIONS, "compressor-options"),
    (flags::UNCOMPRESSED_IDS, "uncompressed-ids"),
];

pub fn flag_names(f: u16) -> Vec<&'static str> {
    FLAG_NAMES
        .iter()
        .filter(|(b, _)| f & b != 0)
        .map(|(_, n)| *n)
        .collect()
}

pub fn info_json(img: &Image) -> serde_json::Value {
    let sb = &img.sb;
    let opts: serde_json::Map<String, serde_json::Value> = img
        .compressor_options
        .as_ref()
        .map(|o| {
            o.describe()
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.into()))
                .collect()
        })
        .unwrap_or_default();
    let tables: Vec<_> = img
        .table_layout()
        .into_iter()
        .map(|(n, start, size)| serde_json::json!({"name": n, "start": start, "size": size}))
        .collect();
    serde_json::json!({
        "version": format!("{}.{}", sb.version_major, sb.version_minor),
        "compressor": img.compressor.name(),
        "compressor_options": opts,
        "block_size": sb.block_size,
        "bytes_used": sb.bytes_used,
        "mkfs_time": sb.mkfs_time,
        "inode_count": sb.inode_count,
        "fragment_count": sb.fragment_entry_count,
        "id_count": sb.id_count,
        "xattr_id_count": img.xattr_count(),
        "flags": flag_names(sb.flags),
        "exportable": img.has_export_table(),
        "root_inode_ref": sb.root_inode_ref,
        "tables": tables,
        "offset": img.offset(),
        "verity": verity_json(img),
        "remote": img.remote_stats().map(|s| s.to_json()),
    })
}

/// The appended dm-verity tree, if any.
fn verity_json(img: &Image) -> serde_json::Value {
    match img.verity_tree() {
        None => serde_json::Value::Null,
        Some(TreeSummary {
            location,
            params: p,
            root,
            verified,
        }) => serde_json::json!({
            "superblock_offset": match location {
                TreeLocation::Appended(at) => Some(at),
                TreeLocation::Detached => None,
            },
            "detached": location == TreeLocation::Detached,
            "verified": verified,
            "hash_type": p.hash_type,
            "algorithm": p.algorithm.name(),
            "data_block_size": p.data_block_size,
            "hash_block_size": p.hash_block_size,
            "data_blocks": p.data_blocks,
            "salt": hex::encode(&p.salt),
            "uuid": hex::encode(p.uuid),
            "root_hash": root.as_ref().map(hex::encode),
            "root_hash_as_found": if verified { None } else { root.map(hex::encode) },
        }),
    }
}

pub fn info(img: &Image, json: bool, out: &mut dyn Write) -> std::io::Result<()> {
    if json {
        return writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&info_json(img)).expect("json")
        );
    }
    let sb = &img.sb;
    writeln!(out, "SquashFS {}.{}", sb.version_major, sb.version_minor)?;
    if img.offset() != 0 {
        // What --offset auto found, in the form an fstab line needs.
        let at = img.offset();
        writeln!(out, "offset:          {at} (mount with -o offset={at})")?;
    }
    write!(out, "compressor:      {}", img.compressor.name())?;
    if let Some(o) = &img.compressor_options {
        let parts: Vec<String> = o
            .describe()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        write!(out, " ({})", parts.join(", "))?;
    }
    writeln!(out)?;
    writeln!(out, "block size:      {}", sb.block_size)?;
    writeln!(out, "bytes used:      {}", sb.bytes_used)?;
    writeln!(
        out,
        "created:         {} UTC ({})",
        super::time_string(sb.mkfs_time),
        sb.mkfs_time
    )?;
    writeln!(out, "inodes:          {}", sb.inode_count)?;
    writeln!(out, "fragments:       {}", sb.fragment_entry_count)?;
    writeln!(out, "ids:             {}", sb.id_count)?;
    writeln!(out, "xattr ids:       {}", img.xattr_count())?;
    writeln!(out, "flags:           {}", flag_names(sb.flags).join(" "))?;
    writeln!(out, "tables:")?;
    for (name, start, size) in img.table_layout() {
        writeln!(out, "  {name:<16} at {start:>12}  {size:>10} bytes")?;
    }
    if let Some(TreeSummary {
        location,
        params: p,
        root,
        verified,
    }) = img.verity_tree()
    {
        match location {
            TreeLocation::Appended(at) => writeln!(
                out,
                "dm-verity tree:  appended, superblock at {at} (file offset)"
            )?,
            TreeLocation::Detached => writeln!(out, "dm-verity tree:  detached (its own file)")?,
        }
        writeln!(
            out,
            "  format {}, {}, {} data blocks of {}, hash blocks of {}",
            p.hash_type,
            p.algorithm.name(),
            p.data_blocks,
            p.data_block_size,
            p.hash_block_size
        )?;
        writeln!(out, "  salt            {}", hex::encode(&p.salt))?;
        if let Some(r) = root {
            let how = if verified {
                "verified: every read was checked against it"
            } else {
                "as found: verify with a root hash you trust"
            };
            writeln!(out, "  root hash       {} ({how})", hex::encode(r))?;
        }
    }
    if let Some(st) = img.remote_stats() {
        let c = st.counts();
        writeln!(
            out,
            "fetched:         {} bytes in {} requests; chunks from cache: {} (memory {}, disk {})",
            c.bytes_fetched,
            c.requests,
            c.memory_hits + c.disk_hits,
            c.memory_hits,
            c.disk_hits
        )?;
    }
    Ok(())
}

/// `info` of a registry image: each layer, top first, with how it is
/// verified and its SquashFS details.
pub fn info_layers(
    reference: &str,
    layers: &[crate::open::OpenedLayer],
    json: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    use crate::open::VerifiedBy;
    let root = |l: &crate::open::OpenedLayer| match &l.verified_by {
        VerifiedBy::RecordedRoot(r) => Some(r.clone()),
        VerifiedBy::GivenRoot | VerifiedBy::Nothing => None,
    };
    if json {
        let layers: Vec<_> = layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name,
                    "size": l.size,
                    "verity_root": root(l),
                    "image": info_json(&l.image),
                })
            })
            .collect();
        let v = serde_json::json!({"reference": reference, "layers": layers});
        return writeln!(out, "{}", serde_json::to_string_pretty(&v).expect("json"));
    }
    let n = layers.len();
    writeln!(
        out,
        "{reference}: {n} {}, top first",
        if n == 1 { "layer" } else { "layers" }
    )?;
    for (i, l) in layers.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "layer {}: {}", i + 1, l.name)?;
        writeln!(out, "  blob size:     {}", l.size)?;
        match root(l) {
            Some(r) => writeln!(out, "  verified:      every block, against root hash {r}")?,
            None => writeln!(out, "  verified:      no (no dm-verity root hash recorded)")?,
        }
        let mut details = Vec::new();
        info(&l.image, false, &mut details)?;
        for line in String::from_utf8_lossy(&details).lines() {
            writeln!(out, "  {line}")?;
        }
    }
    Ok(())
}

/// `info` of what was opened: one image's details, or a registry image's
/// layers.
pub fn info_opened(
    opened: &crate::open::Opened,
    json: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    match (&opened.reference, opened.layers.as_slice()) {
        (Some(r), layers) => info_layers(r, layers, json, out),
        (None, [one]) => info(&one.image, json, out),
        (None, layers) => {
            for l in layers {
                info(&l.image, json, out)?;
            }
            Ok(())
        }
    }
}
