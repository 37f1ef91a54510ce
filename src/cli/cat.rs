//! `sqfuse cat`: files' contents to standard output.

use std::io::Write;

/// `cat`: regular files only; anything else is named as what it is.
pub fn cat(view: &dyn crate::view::View, p: &str, out: &mut dyn Write) -> crate::Result<()> {
    use crate::format::inode::InodeData;
    let node = crate::view::lookup_path(view, p)?;
    let (image, inode) = (view.image(&node), node.inode);
    let what = match &inode.data {
        InodeData::File(_) => None,
        InodeData::Dir(_) => Some("a directory".to_string()),
        InodeData::Symlink(t) => Some(format!("a symbolic link to {}", String::from_utf8_lossy(t))),
        _ => Some("a device, fifo or socket".to_string()),
    };
    if let Some(what) = what {
        return Err(crate::Error::invalid(format!(
            "{p} is {what}, not a regular file"
        )));
    }
    let f = image.open_file(&inode)?;
    image.for_each_chunk(&f, |c| {
        out.write_all(&c.bytes())
            .map_err(|e| crate::Error::io("writing standard output", e))
    })
}
