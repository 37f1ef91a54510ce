//! What the inspection commands read: an image file (or URL), or the
//! layers of an image in a registry, merged as a mount shows them.

#[cfg(feature = "registry")]
use crate::error::Error;
use crate::error::Result;
use crate::reader::Image;
#[cfg(feature = "registry")]
use crate::view::LayeredView;
use crate::view::{ImageView, View};
use std::sync::Arc;

/// Cache per registry layer for one inspection command.
#[cfg(feature = "registry")]
const LAYER_CACHE: u64 = 32 << 20;

/// An image opened for `ls`, `cat` or `info`.
pub enum Opened {
    /// One image.
    Image(Arc<Image>),
    /// A registry image: its reference and its layers, top first.
    #[cfg(feature = "registry")]
    Registry {
        /// As the user wrote it.
        reference: String,
        /// Each SquashFS layer, opened.
        layers: Vec<crate::registry::blob::OpenedLayer>,
    },
}

impl Opened {
    /// The tree: the image, or the layers merged (whiteouts applied).
    pub fn view(&self) -> Result<Arc<dyn View>> {
        match self {
            Opened::Image(img) => Ok(Arc::new(ImageView::whole(img.clone())?)),
            #[cfg(feature = "registry")]
            Opened::Registry { layers, .. } => {
                if let [one] = layers.as_slice() {
                    return Ok(Arc::new(ImageView::whole(one.image.clone())?));
                }
                let images = layers
                    .iter()
                    .map(|l| (l.name.clone(), l.image.clone()))
                    .collect();
                Ok(Arc::new(LayeredView::new(images, LAYER_CACHE as usize)?))
            }
        }
    }

    /// The layers no root hash verifies, as a note for stderr (None when
    /// every block read is verified).
    pub fn unverified_note(&self) -> Option<String> {
        match self {
            Opened::Image(_) => None,
            #[cfg(feature = "registry")]
            Opened::Registry { reference, layers } => crate::registry::blob::unverified(layers)
                .map(|names| crate::registry::blob::unverified_note(reference, &names)),
        }
    }
}

/// The layers of registry image `reference` for `args`: plain HTTP with
/// --insecure, the login from --creds-file or a stored one, chunks kept
/// in the URL cache `remote` names.
#[cfg(feature = "registry")]
pub fn open_registry(
    args: &super::args::ImageArgs,
    remote: &crate::reader::remote::RemoteOptions,
) -> Result<Opened> {
    let reference = args.image.to_string_lossy().into_owned();
    if args.verity.root.is_some()
        || args.verity.root_file.is_some()
        || args.verity.hash_file.is_some()
    {
        return Err(Error::invalid(format!(
            "{reference}: --verity, --verity-roothash-file and --verity-hash are for image files: a registry image is verified against the root hashes its layers record"
        )));
    }
    if args.offset != crate::reader::Offset::At(0) {
        return Err(Error::invalid(format!(
            "{reference}: --offset is for image files (a SIF artifact's image is found in it)"
        )));
    }
    let access =
        crate::registry::blob::access(args.insecure, args.creds_file.as_deref(), "--creds-file ")?;
    let cache = crate::registry::blob::LayerCache::of(remote);
    let layers =
        crate::registry::blob::open_images(&reference, &access, cache.as_ref(), &|_| LAYER_CACHE)?;
    Ok(Opened::Registry { reference, layers })
}
