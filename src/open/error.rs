//! Why a request to open what the user named was refused.

use std::fmt;

/// A refused request, or an image that would not open. The variants are
/// the rules of which settings fit which names: a front end words the
/// ones it wants in its own option names, and shows the rest as they are.
#[derive(Debug)]
pub enum OpenError {
    /// A registry reference given among several images.
    RegistryNotAlone(String),
    /// Root hashes (or a detached tree) given for a registry image, whose
    /// layers are verified against the root hashes they record.
    VerityForRegistry(String),
    /// An offset given for a registry image (a SIF artifact's image is
    /// found inside it).
    OffsetForRegistry(String),
    /// Not one root hash per image.
    RootHashCount {
        /// Root hashes given.
        given: usize,
        /// Images named.
        images: usize,
    },
    /// A detached hash tree given for several layers (each layer carries
    /// its tree appended).
    DetachedTreeLayered,
    /// Layers without a recorded root hash where every layer must have one.
    Unverified {
        /// The registry reference.
        reference: String,
        /// The unverified layers' names, joined by ", ".
        layers: String,
    },
    /// An OCI layout, which is a packer's source, not an image to read.
    OciLayout(String),
    /// A registry reference, and this build has no registry client.
    NoRegistrySupport(String),
    /// Opening an image failed (the error names it).
    Image(crate::Error),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::RegistryNotAlone(r) => write!(
                f,
                "{r}: a registry image is mounted alone, not as one of several layers"
            ),
            OpenError::VerityForRegistry(r) => write!(
                f,
                "{r}: root hashes are for image files: a registry image is verified against the root hashes its layers record"
            ),
            OpenError::OffsetForRegistry(r) => write!(
                f,
                "{r}: an offset is for image files (a SIF artifact's image is found in it)"
            ),
            OpenError::RootHashCount { given, images } => write!(
                f,
                "{given} root hashes for {images} layers (one per layer, top layer first)"
            ),
            OpenError::DetachedTreeLayered => write!(
                f,
                "a detached hash tree is for one image; a layered mount needs each layer's tree appended"
            ),
            OpenError::Unverified { reference, layers } => write!(
                f,
                "{reference}: no dm-verity root hash recorded for {layers}"
            ),
            OpenError::OciLayout(n) => write!(
                f,
                "{n} is an OCI layout: make an image of it with `sqfuse pack {n} IMAGE` and use that"
            ),
            OpenError::NoRegistrySupport(r) => write!(
                f,
                "{r}: this sqfuse was built without registry support (cargo feature \"registry\")"
            ),
            OpenError::Image(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Image(e) => e.source(),
            _ => None,
        }
    }
}

impl From<crate::Error> for OpenError {
    fn from(e: crate::Error) -> Self {
        OpenError::Image(e)
    }
}

impl From<OpenError> for crate::Error {
    /// The refusal as a one-line invalid-request error (an image's own
    /// error as it was).
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Image(e) => e,
            other => crate::Error::invalid(other.to_string()),
        }
    }
}
