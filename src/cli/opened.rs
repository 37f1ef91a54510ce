//! What the inspection commands read, as the opener's request: the image
//! argument and its flags turned into [`OpenRequest`], and the refusals
//! worded in the flags' names.

use super::args::ImageArgs;
use crate::error::{Error, Result};
use crate::open::{Credentials, Named, OpenError, OpenRequest, Opened};
use crate::reader::remote::{RemoteOptions, RemoteSetting};
use crate::reader::Image;
use std::sync::Arc;

/// How URL and registry images are fetched and cached: the `SQFUSE_*`
/// environment, then the command's flags.
pub fn remote_options(a: &ImageArgs) -> Result<RemoteOptions> {
    let mut remote = RemoteOptions::from_env()?;
    remote.log_requests = a.debug;
    if let Some(d) = &a.cache_dir {
        remote.apply(RemoteSetting::cache_dir(d));
    }
    if let Some(f) = &a.ca_file {
        remote.apply(RemoteSetting::CaFile(f.into()));
    }
    Ok(remote)
}

/// The request `a` makes.
fn request(a: &ImageArgs) -> Result<OpenRequest> {
    let creds = match &a.creds_file {
        Some(f) => Credentials::File(f.clone()),
        None => Credentials::Stored,
    };
    Ok(OpenRequest {
        offset: a.offset,
        verity: a.verity.options()?.into_iter().collect(),
        remote: remote_options(a)?,
        registry: crate::open::registry_access(a.insecure, &creds)?,
        ..OpenRequest::new(vec![Named::of(&a.image)])
    })
}

/// A refusal in the flags' words.
fn refused(e: OpenError) -> Error {
    match e {
        OpenError::VerityForRegistry(r) => Error::invalid(format!(
            "{r}: --verity, --verity-roothash-file and --verity-hash are for image files: a registry image is verified against the root hashes its layers record"
        )),
        OpenError::OffsetForRegistry(r) => Error::invalid(format!(
            "{r}: --offset is for image files (a SIF artifact's image is found in it)"
        )),
        e => e.into(),
    }
}

/// What `ls`, `cat` and `info` read: an image, or a registry image's
/// layers (with a note on stderr if some are not verified).
pub fn open_any(a: &ImageArgs) -> Result<Opened> {
    let opened = crate::open::open_layers(&request(a)?).map_err(refused)?;
    if let Some(note) = opened.unverified_note() {
        eprintln!("sqfuse: note: {note}");
    }
    Ok(opened)
}

/// What `extract` and `check` read: one image file (or URL).
pub fn open_image(a: &ImageArgs) -> Result<Arc<Image>> {
    if Named::of(&a.image).is_registry() {
        return Err(Error::invalid(format!(
            "{}: this command reads image files; ls, cat and info read registry images too (or mount it)",
            a.image.display()
        )));
    }
    let mut opened = crate::open::open_layers(&request(a)?).map_err(refused)?;
    Ok(opened.layers.remove(0).image)
}
