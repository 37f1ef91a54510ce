//! Appending a dm-verity hash tree to an image file, as `veritysetup
//! format --hash-offset` would: the file from its first byte (zero-padded
//! to 4 KiB) is the data, the superblock follows it, the tree (top level
//! first) one block later. Format 1, sha256, 4 KiB blocks.

use super::PackError;
use crate::format::verity::{tree_offset, Algorithm, Params, TreeBuilder, BLOCK_SIZE};
use rayon::prelude::*;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// A tree appended: what to trust, and where it went.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The tree's root hash.
    pub root: Vec<u8>,
    /// Its parameters (salt, algorithm, block sizes).
    pub params: Params,
    /// Where the verity superblock is in the file.
    pub hash_offset: u64,
}

/// A fresh random salt of 32 bytes, as veritysetup makes one.
pub fn random_salt() -> Result<Vec<u8>, PackError> {
    let mut salt = vec![0u8; 32];
    getrandom::fill(&mut salt)
        .map_err(|e| PackError::internal(format!("no random numbers for the salt: {e}")))?;
    Ok(salt)
}

/// Pads `file` (open for reading and writing) with zeros to a 4 KiB
/// multiple and appends a tree over all of it. `image` names the file in
/// errors. The UUID is the root hash's first 16 bytes, so the same salt
/// gives the same bytes.
pub fn append_tree(mut file: &File, image: &Path, salt: Vec<u8>) -> Result<Appended, PackError> {
    let werr = |source| PackError::Output {
        path: image.to_path_buf(),
        source,
    };
    let len = file.seek(SeekFrom::End(0)).map_err(werr)?;
    let bs = u64::from(BLOCK_SIZE);
    let data_end = len.next_multiple_of(bs);
    file.set_len(data_end).map_err(werr)?;
    let mut params = Params {
        hash_type: 1,
        uuid: [0; 16],
        algorithm: Algorithm::Sha256,
        data_block_size: BLOCK_SIZE,
        hash_block_size: BLOCK_SIZE,
        data_blocks: (data_end / bs).max(1),
        salt,
    };
    if data_end == 0 {
        return Err(PackError::Usage(format!("{} is empty", image.display())));
    }
    let mut tree = TreeBuilder::new(params.clone());
    file.seek(SeekFrom::Start(0)).map_err(werr)?;
    // Hashed in chunks on all threads; digests go in in block order.
    let mut buf = vec![0u8; 16 << 20];
    let mut left = data_end;
    while left > 0 {
        let n = (buf.len() as u64).min(left) as usize;
        file.read_exact(&mut buf[..n]).map_err(werr)?;
        let digests: Vec<Vec<u8>> = buf[..n]
            .par_chunks(BLOCK_SIZE as usize)
            .map(|b| params.hash(b))
            .collect();
        for d in &digests {
            tree.push_digest(d);
        }
        left -= n as u64;
    }
    let (area, root) = tree.finish()?;
    params.uuid.copy_from_slice(&root[..16]);
    let hash_offset = data_end;
    file.seek(SeekFrom::Start(hash_offset)).map_err(werr)?;
    file.write_all(&params.encode()).map_err(werr)?;
    file.set_len(tree_offset(hash_offset, BLOCK_SIZE))
        .map_err(werr)?;
    file.seek(SeekFrom::End(0)).map_err(werr)?;
    file.write_all(&area).map_err(werr)?;
    Ok(Appended {
        root,
        params,
        hash_offset,
    })
}

/// `sqfuse verity IMAGE`: a copy of IMAGE with a tree appended, renamed
/// over it once complete and synced (an error leaves IMAGE as it was). The
/// image must end the file (or be followed by a tree, replaced under
/// `force`).
pub fn add_to_image(
    image: &Path,
    offset: crate::reader::Offset,
    salt: Vec<u8>,
    force: bool,
) -> Result<Appended, PackError> {
    let opts = crate::reader::OpenOptions {
        offset,
        pread: true,
        ..Default::default()
    };
    let img = crate::Image::open(image, &opts)?;
    let image_end = (img.offset() + img.sb.bytes_used.next_multiple_of(4096))
        .next_multiple_of(u64::from(BLOCK_SIZE));
    let has_tree = img.verity_tree().is_some();
    drop(img);
    let meta = std::fs::metadata(image).map_err(|e| PackError::io(image, "stat", e))?;
    let len = meta.len();
    if has_tree && !force {
        return Err(PackError::Usage(format!(
            "{} has a hash tree already (-f replaces it)",
            image.display()
        )));
    }
    if len > image_end && !has_tree {
        return Err(PackError::Usage(format!(
            "{} has {} bytes after the image that are not a hash tree; not touched",
            image.display(),
            len - image_end
        )));
    }
    let abs = std::path::absolute(image).map_err(|e| PackError::io(image, "resolve", e))?;
    let dir = abs.parent().unwrap_or(Path::new("."));
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = super::temp_name(dir, &name, "verity");
    let mut guard = super::TempGuard(Some(tmp.clone()));
    let werr = |source| PackError::Output {
        path: image.to_path_buf(),
        source,
    };
    let out = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(werr)?;
    let src = File::open(image).map_err(|e| PackError::io(image, "open", e))?;
    std::io::copy(&mut src.take(image_end.min(len)), &mut &out).map_err(werr)?;
    out.set_permissions(meta.permissions()).map_err(werr)?;
    let appended = append_tree(&out, image, salt)?;
    out.sync_all().map_err(werr)?;
    drop(out);
    std::fs::rename(&tmp, &abs).map_err(werr)?;
    guard.0 = None;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(appended)
}
