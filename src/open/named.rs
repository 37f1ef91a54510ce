//! What one IMAGE or SOURCE argument names, told from its text alone.

use std::path::{Path, PathBuf};

/// What an argument names. Told apart by prefix only (compared as bytes:
/// the argument is anyone's text, and may not be UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// An image file or a block device.
    File(PathBuf),
    /// An image at an `http://`, `https://` or `s3://` URL, read by range.
    Url(PathBuf),
    /// `docker://HOST[:PORT]/REPO[:TAG|@DIGEST]`: an image in a registry
    /// (SquashFS layers to mount or inspect; any layers to pack).
    Docker(String),
    /// `oras://HOST[:PORT]/REPO[:TAG|@DIGEST]`: a SIF artifact, as
    /// `apptainer push oras://` publishes one.
    Oras(String),
    /// `oci:DIR[:TAG]`: an OCI image layout, as skopeo and umoci write it.
    OciLayout {
        /// The layout's directory.
        dir: PathBuf,
        /// The image's `org.opencontainers.image.ref.name`, if given.
        tag: Option<String>,
    },
}

impl Named {
    /// What `arg` names.
    pub fn of(arg: &Path) -> Named {
        let b = arg.as_os_str().as_encoded_bytes();
        let text = || arg.to_string_lossy().into_owned();
        if b.starts_with(b"docker://") {
            Named::Docker(text())
        } else if b.starts_with(b"oras://") {
            Named::Oras(text())
        } else if b.starts_with(b"oci:") {
            let rest = text()["oci:".len()..].to_string();
            // A TAG never holds '/', so the last ':' starts one only if no
            // '/' follows it.
            match rest.rsplit_once(':') {
                Some((dir, tag)) if !tag.contains('/') && !dir.is_empty() => Named::OciLayout {
                    dir: dir.into(),
                    tag: Some(tag.to_string()),
                },
                _ => Named::OciLayout {
                    dir: rest.into(),
                    tag: None,
                },
            }
        } else if crate::reader::remote::is_remote(arg) {
            Named::Url(arg.to_path_buf())
        } else {
            Named::File(arg.to_path_buf())
        }
    }

    /// A registry reference (`docker://` or `oras://`).
    pub fn is_registry(&self) -> bool {
        matches!(self, Named::Docker(_) | Named::Oras(_))
    }

    /// A reference to an OCI image, as `pack` reads one (`oci:` or
    /// `docker://`).
    pub fn is_oci_image(&self) -> bool {
        matches!(self, Named::Docker(_) | Named::OciLayout { .. })
    }

    /// How messages and /proc/mounts name it: a URL without its password
    /// or query.
    pub fn shown(&self) -> String {
        match self {
            Named::File(p) | Named::Url(p) => crate::reader::remote::shown_name(p),
            Named::Docker(r) | Named::Oras(r) => r.clone(),
            Named::OciLayout { dir, tag } => match tag {
                Some(t) => format!("oci:{}:{t}", dir.display()),
                None => format!("oci:{}", dir.display()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(s: &str) -> Named {
        Named::of(Path::new(s))
    }

    #[test]
    fn each_kind_by_its_prefix() {
        assert_eq!(of("a.sqfs"), Named::File("a.sqfs".into()));
        assert_eq!(of("/dev/sdb1"), Named::File("/dev/sdb1".into()));
        assert_eq!(
            of("https://h/x.sqfs"),
            Named::Url("https://h/x.sqfs".into())
        );
        assert_eq!(of("s3://b/k"), Named::Url("s3://b/k".into()));
        assert_eq!(of("docker://h/r:t"), Named::Docker("docker://h/r:t".into()));
        assert_eq!(of("oras://h/r:t"), Named::Oras("oras://h/r:t".into()));
        assert!(of("docker://h/r").is_registry() && of("docker://h/r").is_oci_image());
        assert!(!of("oras://h/r").is_oci_image() && !of("x").is_registry());
    }

    #[test]
    fn oci_layouts_with_and_without_a_tag() {
        assert_eq!(
            of("oci:dir:latest"),
            Named::OciLayout {
                dir: "dir".into(),
                tag: Some("latest".into())
            }
        );
        assert_eq!(
            of("oci:/a:b/dir"),
            Named::OciLayout {
                dir: "/a:b/dir".into(),
                tag: None
            }
        );
        assert_eq!(of("oci:dir:v1").shown(), "oci:dir:v1");
    }

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(of("https://u:secret@h/x?sig=1").shown(), "https://u@h/x");
    }

    /// A name cut inside a multi-byte character must not panic.
    #[test]
    fn non_utf8_and_short_names() {
        use std::os::unix::ffi::OsStrExt;
        let odd = std::ffi::OsStr::from_bytes(b"oci:\xff\xfe:t");
        assert!(matches!(Named::of(Path::new(odd)), Named::OciLayout { .. }));
        assert_eq!(
            of("oci:"),
            Named::OciLayout {
                dir: "".into(),
                tag: None
            }
        );
        assert_eq!(of("é"), Named::File("é".into()));
    }
}
