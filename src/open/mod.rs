//! What the user named, opened: the one way from IMAGE arguments (image
//! files, block devices, URLs, `docker://` and `oras://` references) to
//! the layers they stand for, top first, each with what verifies it.
//!
//! The mount, the inspection commands and the packer's OCI input go
//! through here, so the rules of which settings fit which names (offsets
//! and root hashes for image files, logins for registries, how a cache
//! budget is shared among layers) are written once. Requests are library
//! types: the front ends turn their flags into them, and word the
//! refusals ([`OpenError`]) in their own option names.

mod error;
mod named;

pub use error::OpenError;
pub use named::Named;

pub use crate::oci_spec::RegistryAccess;
use crate::reader::remote::RemoteOptions;
use crate::reader::verity::VerityOptions;
use crate::reader::{Image, Offset, OpenOptions};
use crate::view::{ImageView, LayeredView, View};
use std::path::PathBuf;
use std::sync::Arc;

/// Cache per registry layer, and for merged listings, under
/// [`Caches::Default`].
const DEFAULT_LAYER_CACHE: u64 = 32 << 20;

/// The credentials for a registry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Credentials {
    /// What `podman login`, `skopeo login` or `docker login` stored for
    /// the registry, else anonymous.
    #[default]
    Stored,
    /// `USER:PASSWORD`.
    Given(String),
    /// A file whose first line is `USER:PASSWORD` (which keeps the
    /// password off command lines and out of /proc/mounts).
    File(PathBuf),
}

/// How a registry is reached: plain HTTP or not, and who logs in. Stored
/// logins are looked up once the registry's host is known.
pub fn registry_access(insecure: bool, creds: &Credentials) -> crate::Result<RegistryAccess> {
    let creds = match creds {
        Credentials::Stored => None,
        Credentials::Given(c) => Some(c.clone()),
        Credentials::File(path) => {
            let shown = crate::error::shown_path(path);
            let mut text = String::new();
            std::fs::File::open(path)
                .and_then(|f| {
                    std::io::Read::read_to_string(&mut std::io::Read::take(f, 64 << 10), &mut text)
                })
                .map_err(|e| crate::Error::io(shown.clone(), e))?;
            let line = text.lines().next().unwrap_or("").trim().to_string();
            if !line.contains(':') {
                return Err(crate::Error::invalid(format!(
                    "{shown}: the first line is not USER:PASSWORD"
                )));
            }
            Some(line)
        }
    };
    Ok(RegistryAccess { insecure, creds })
}

/// How much memory the opened layers' caches may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caches {
    /// Each image file with [`OpenOptions`]' default cache sizes; each
    /// registry layer, and merged listings, 32 MiB.
    Default,
    /// A total for all of it: one image gets it all, and at least
    /// `min_blocks` blocks of its size; several layers share three
    /// quarters, and merged listings have the last quarter.
    Total {
        /// Bytes in all.
        bytes: u64,
        /// Blocks one image keeps at the least (0: no floor).
        min_blocks: u64,
    },
}

impl Caches {
    /// Bytes each of `n` layers gets (None: the image's defaults).
    fn per_layer(self, n: usize) -> Option<u64> {
        match self {
            Caches::Default => None,
            Caches::Total { bytes, .. } if n > 1 => Some(bytes / 4 * 3 / n as u64),
            Caches::Total { bytes, .. } => Some(bytes),
        }
    }

    /// Bytes for merged listings.
    fn listings(self) -> usize {
        match self {
            Caches::Default => DEFAULT_LAYER_CACHE as usize,
            Caches::Total { bytes, .. } => (bytes / 4) as usize,
        }
    }
}

/// What to open and how.
#[derive(Debug, Clone)]
pub struct OpenRequest {
    /// What the user named, top layer first: image files, block devices
    /// and URLs, or one registry reference.
    pub images: Vec<Named>,
    /// Where the superblock is inside each image file.
    pub offset: Offset,
    /// Root hashes to verify image files against: none, or one per image
    /// in the order of `images` (a detached tree only for one image).
    pub verity: Vec<VerityOptions>,
    /// Refuse registry layers that record no dm-verity root hash.
    pub require_verity: bool,
    /// How URLs and registry layers are fetched and cached on disk.
    pub remote: RemoteOptions,
    /// How a registry is reached.
    pub registry: RegistryAccess,
    /// Memory for the caches.
    pub caches: Caches,
    /// Read image files with `pread` instead of a memory map (a file
    /// truncated while open gives errors, not SIGBUS).
    pub pread: bool,
}

impl OpenRequest {
    /// A request for `images` with the defaults: no offset or root hash,
    /// the `SQFUSE_*` environment's remote settings (or the defaults, if
    /// it has none that parse), stored logins, default caches.
    pub fn new(images: Vec<Named>) -> Self {
        OpenRequest {
            images,
            offset: Offset::At(0),
            verity: Vec::new(),
            require_verity: false,
            remote: RemoteOptions::default(),
            registry: RegistryAccess::default(),
            caches: Caches::Default,
            pread: false,
        }
    }
}

/// What checks a layer's blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifiedBy {
    /// Nothing: blocks are used as read.
    Nothing,
    /// A root hash the caller gave.
    GivenRoot,
    /// The root hash (hex) the registry's layer descriptor records.
    RecordedRoot(String),
}

/// One opened layer.
pub struct OpenedLayer {
    /// How messages and /proc/mounts name it: the path or URL as given
    /// (without a password), or `docker://HOST/REPO@DIGEST`.
    pub name: String,
    /// The image.
    pub image: Arc<Image>,
    /// What checks its blocks.
    pub verified_by: VerifiedBy,
    /// The size of the file, device or blob it is read from.
    pub size: u64,
}

/// Everything a request named, opened.
pub struct Opened {
    /// The registry reference, as written, when the layers are a
    /// registry image's.
    pub reference: Option<String>,
    /// The layers, top first.
    pub layers: Vec<OpenedLayer>,
    listing_cache: usize,
}

impl Opened {
    /// The tree they make: the one image, or the layers merged as
    /// overlayfs merges read-only layers (whiteouts applied).
    pub fn view(&self) -> crate::Result<Arc<dyn View>> {
        if let [one] = self.layers.as_slice() {
            return Ok(Arc::new(ImageView::whole(one.image.clone())?));
        }
        Ok(Arc::new(LayeredView::new(
            self.layer_images(),
            self.listing_cache,
        )?))
    }

    /// Each layer's name and image, top first.
    pub fn layer_images(&self) -> Vec<(String, Arc<Image>)> {
        self.layers
            .iter()
            .map(|l| (l.name.clone(), l.image.clone()))
            .collect()
    }

    /// Bytes set aside for merged listings (what [`Opened::view`] gives a
    /// layered view).
    pub fn listing_cache(&self) -> usize {
        self.listing_cache
    }

    /// For a registry image some of whose layers record no root hash: a
    /// note saying which (image files unverified are the norm, and get
    /// none).
    pub fn unverified_note(&self) -> Option<String> {
        let reference = self.reference.as_ref()?;
        unverified(&self.layers).map(|names| {
            format!("{reference}: not verified: no dm-verity root hash recorded for {names}")
        })
    }
}

/// The names of `layers` that nothing verifies, joined by ", ".
fn unverified(layers: &[OpenedLayer]) -> Option<String> {
    let names: Vec<&str> = layers
        .iter()
        .filter(|l| l.verified_by == VerifiedBy::Nothing)
        .map(|l| l.name.as_str())
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Opens what `req` names: the layers, top first.
pub fn open_layers(req: &OpenRequest) -> Result<Opened, OpenError> {
    let mut registry = req.images.iter().filter(|n| n.is_registry());
    if let Some(first) = registry.next() {
        if req.images.len() > 1 {
            return Err(OpenError::RegistryNotAlone(first.shown()));
        }
        return open_registry(req, first);
    }
    if let Some(layout) = req
        .images
        .iter()
        .find(|n| matches!(n, Named::OciLayout { .. }))
    {
        return Err(OpenError::OciLayout(layout.shown()));
    }
    let n = req.images.len();
    if !req.verity.is_empty() && req.verity.len() != n {
        return Err(OpenError::RootHashCount {
            given: req.verity.len(),
            images: n,
        });
    }
    if n > 1 && req.verity.iter().any(|v| v.hash_file.is_some()) {
        return Err(OpenError::DetachedTreeLayered);
    }
    let per_layer = req.caches.per_layer(n);
    let min_blocks = match req.caches {
        Caches::Total { min_blocks, .. } if n == 1 => min_blocks,
        _ => 0,
    };
    let mut layers = Vec::with_capacity(n);
    for (i, named) in req.images.iter().enumerate() {
        let path = match named {
            Named::File(p) | Named::Url(p) => p,
            _ => unreachable!("registry references and layouts are handled above"),
        };
        let verity = req.verity.get(i).cloned();
        let opts = OpenOptions {
            offset: req.offset,
            pread: req.pread,
            cache_budget: per_layer,
            cache_budget_min_blocks: min_blocks,
            verity,
            remote: Some(req.remote.clone()),
            ..Default::default()
        };
        let name = named.shown();
        let image = Image::open(path, &opts).map_err(|e| e.within(name.clone()))?;
        let size = image.source_size();
        layers.push(OpenedLayer {
            name,
            verified_by: match req.verity.get(i) {
                Some(_) => VerifiedBy::GivenRoot,
                None => VerifiedBy::Nothing,
            },
            image: Arc::new(image),
            size,
        });
    }
    Ok(Opened {
        reference: None,
        layers,
        listing_cache: req.caches.listings(),
    })
}

/// A registry image's layers, each verified against the root hash its
/// descriptor records; a SIF artifact's image found inside its blob.
#[cfg(feature = "registry")]
fn open_registry(req: &OpenRequest, named: &Named) -> Result<Opened, OpenError> {
    let reference = named.shown();
    if !req.verity.is_empty() {
        return Err(OpenError::VerityForRegistry(reference));
    }
    if req.offset != Offset::At(0) {
        return Err(OpenError::OffsetForRegistry(reference));
    }
    // The URL cache's directory and bound keep layer chunks by digest.
    let cache = crate::registry::blob::LayerCache::of(&req.remote);
    let blobs = crate::registry::blob::layers_of(&reference, &req.registry, cache.as_ref())?;
    let per_layer = req
        .caches
        .per_layer(blobs.len())
        .unwrap_or(DEFAULT_LAYER_CACHE);
    let min_blocks = match req.caches {
        Caches::Total { min_blocks, .. } if blobs.len() == 1 => min_blocks,
        _ => 0,
    };
    let mut layers = Vec::with_capacity(blobs.len());
    for blob in blobs {
        let verity = match &blob.verity_root {
            Some(hex) => Some(VerityOptions::from_hex(hex, None)?),
            None => None,
        };
        let opts = OpenOptions {
            offset: if blob.wrapped {
                Offset::Auto
            } else {
                Offset::At(0)
            },
            cache_budget: Some(per_layer),
            cache_budget_min_blocks: min_blocks,
            verity,
            ..Default::default()
        };
        let size = blob.source.size();
        let image =
            Image::from_source(blob.source, &opts).map_err(|e| e.within(blob.name.clone()))?;
        layers.push(OpenedLayer {
            name: blob.name,
            image: Arc::new(image),
            verified_by: match blob.verity_root {
                Some(hex) => VerifiedBy::RecordedRoot(hex),
                None => VerifiedBy::Nothing,
            },
            size,
        });
    }
    if req.require_verity {
        if let Some(names) = unverified(&layers) {
            return Err(OpenError::Unverified {
                reference,
                layers: names,
            });
        }
    }
    Ok(Opened {
        reference: Some(reference),
        layers,
        listing_cache: req.caches.listings(),
    })
}

#[cfg(not(feature = "registry"))]
fn open_registry(_: &OpenRequest, named: &Named) -> Result<Opened, OpenError> {
    Err(OpenError::NoRegistrySupport(named.shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(names: &[&str]) -> OpenRequest {
        OpenRequest::new(
            names
                .iter()
                .map(|n| Named::of(std::path::Path::new(n)))
                .collect(),
        )
    }

    fn root() -> VerityOptions {
        VerityOptions::from_hex(&"ab".repeat(32), None).unwrap()
    }

    /// Refused before anything is opened or fetched (the files do not
    /// exist, the registry is not there).
    #[test]
    fn settings_that_do_not_fit_the_names_are_refused_first() {
        let e = open_layers(&request(&["a.sqfs", "docker://127.0.0.1:1/r:t"])).err();
        assert!(
            matches!(e, Some(OpenError::RegistryNotAlone(r)) if r == "docker://127.0.0.1:1/r:t")
        );
        #[cfg(feature = "registry")]
        {
            let mut r = request(&["docker://127.0.0.1:1/r:t"]);
            r.verity = vec![root()];
            assert!(matches!(
                open_layers(&r).err(),
                Some(OpenError::VerityForRegistry(_))
            ));
            let mut r = request(&["oras://127.0.0.1:1/r:t"]);
            r.offset = Offset::Auto;
            assert!(matches!(
                open_layers(&r).err(),
                Some(OpenError::OffsetForRegistry(_))
            ));
        }
        let mut r = request(&["a.sqfs", "b.sqfs"]);
        r.verity = vec![root()];
        assert!(matches!(
            open_layers(&r).err(),
            Some(OpenError::RootHashCount {
                given: 1,
                images: 2
            })
        ));
        let mut tree = root();
        tree.hash_file = Some("tree.bin".into());
        r.verity = vec![tree, root()];
        assert!(matches!(
            open_layers(&r).err(),
            Some(OpenError::DetachedTreeLayered)
        ));
        let e = open_layers(&request(&["oci:layout:v1"])).err().unwrap();
        assert_eq!(
            e.to_string(),
            "oci:layout:v1 is an OCI layout: make an image of it with `sqfuse pack oci:layout:v1 IMAGE` and use that"
        );
    }

    #[test]
    fn an_image_that_will_not_open_is_named() {
        let e = open_layers(&request(&["/no/such.sqfs"])).err().unwrap();
        let e = crate::Error::from(e);
        assert_eq!(
            crate::error::Report(&e).to_string(),
            "cannot open /no/such.sqfs: No such file or directory"
        );
    }

    /// One budget for the whole mount: one image takes it all, layers
    /// share three quarters and merged listings get the last quarter.
    #[test]
    fn a_cache_total_is_shared_among_layers() {
        let total = Caches::Total {
            bytes: 64 << 20,
            min_blocks: 128,
        };
        assert_eq!(total.per_layer(1), Some(64 << 20));
        assert_eq!(total.per_layer(3), Some(16 << 20));
        assert_eq!(total.listings(), 16 << 20);
        assert_eq!(Caches::Default.per_layer(5), None);
        assert_eq!(Caches::Default.listings(), DEFAULT_LAYER_CACHE as usize);
    }
}
