//! Structure-aware fuzz targets: the input is not the bytes handed to a
//! parser but a list of choices ([`Draw`]) from which a well-formed input
//! is built (tar streams with pax records, long names, sparse maps, hard
//! links and whiteouts; OCI layouts; command-line text), so the fuzzer
//! spends its time past the checksums and length prefixes that random
//! bytes rarely get right. Each target checks an oracle beyond "no panic"
//! where one exists: what the packer wrote, the reader must read soundly.

use crate::pack::tarsrc::{TarTree, Whiteouts};
use crate::pack::PackOptions;
use std::path::{Path, PathBuf};

/// Choices drawn from the fuzz input, one byte at a time; zeros once it is
/// used up.
pub struct Draw<'a>(&'a [u8]);

impl<'a> Draw<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Draw(data)
    }
    pub fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    pub fn done(&self) -> bool {
        self.0.is_empty()
    }
    /// Up to `max` bytes, as many as the next byte says.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.byte()).min(max).min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[usize::from(self.byte()) % from.len()]
    }
}

/// A scratch directory per fuzz input, removed afterwards.
struct Scratch(PathBuf);

impl Scratch {
    fn new(what: &str) -> Option<Scratch> {
        static RUN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = RUN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("sqfuse-fuzz-{what}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        Some(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One 512-byte ustar header (`name` cut to 100 bytes; longer names go
/// in a pax record or a GNU long-name member). Also the tests' tar writer.
pub fn header(
    name: &[u8],
    kind: u8,
    size: u64,
    link: &[u8],
    mode: u32,
    dev: (u32, u32),
) -> [u8; 512] {
    let mut h = [0u8; 512];
    let n = name.len().min(100);
    h[..n].copy_from_slice(&name[..n]);
    let mut octal = |at: usize, width: usize, v: u64| {
        let s = format!("{v:0w$o}", w = width - 1);
        let s = &s.as_bytes()[s.len().saturating_sub(width - 1)..];
        h[at..at + s.len()].copy_from_slice(s);
    };
    octal(100, 8, u64::from(mode));
    octal(108, 8, 1000);
    octal(116, 8, 1000);
    octal(124, 12, size);
    octal(136, 12, 1_700_000_000);
    octal(329, 8, u64::from(dev.0));
    octal(337, 8, u64::from(dev.1));
    h[156] = kind;
    let l = link.len().min(100);
    h[157..157 + l].copy_from_slice(&link[..l]);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let s = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(s.as_bytes());
    h
}

/// One pax record, `LEN KEY=VALUE\n`, its length counting itself.
pub fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    let body = key.len() + value.len() + 2;
    let mut len = body + 1;
    while body + 1 + len.to_string().len() != len {
        len = body + 1 + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} ").as_bytes());
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

/// A name component: a few shared ones (so paths collide, replace and
/// white each other out), odd ones, or bytes from the input.
fn component(d: &mut Draw) -> Vec<u8> {
    match d.byte() % 12 {
        0..=3 => d.pick(&[&b"a"[..], b"b", b"c", b"dir"]).to_vec(),
        4 => b".wh..wh..opq".to_vec(),
        5 => [&b".wh."[..], d.pick(&[&b"a"[..], b"b", b"dir"])].concat(),
        6 => d
            .pick(&[&b"."[..], b"..", b"", b"x y", "\u{e9}".as_bytes()])
            .to_vec(),
        7 => vec![b'n'; 1 + usize::from(d.byte())],
        _ => d.bytes(40).to_vec(),
    }
}

fn path(d: &mut Draw) -> Vec<u8> {
    let depth = match d.byte() % 16 {
        15 => 1 + usize::from(d.byte()) * 16, // deep: up to 4000 names
        n => 1 + usize::from(n % 4),
    };
    let mut p = Vec::new();
    let deep = depth > 4;
    let one = if deep { b"a".to_vec() } else { Vec::new() };
    for i in 0..depth {
        if i > 0 {
            p.push(b'/');
        }
        if deep {
            p.extend_from_slice(&one);
        } else {
            p.extend_from_slice(&component(d));
        }
    }
    if d.byte() % 8 == 0 {
        p.push(b'/');
    }
    p
}

/// One tar stream of members drawn from `d`.
fn tar_stream(d: &mut Draw, names: &mut Vec<Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    let members = d.byte() % 24;
    for _ in 0..members {
        if d.done() {
            break;
        }
        let name = path(d);
        let mut pax = Vec::new();
        let mut kind = b'0';
        let mut data: Vec<u8> = Vec::new();
        let mut link = Vec::new();
        let mut dev = (0, 0);
        let mode = match d.byte() % 4 {
            0 => 0o644,
            1 => 0o4755,
            2 => 0,
            _ => u32::from(d.byte()) << 4,
        };
        match d.byte() % 14 {
            0 | 1 => data = d.bytes(200).to_vec(),
            2 => kind = b'5',
            3 => {
                kind = b'2';
                link = d.bytes(120).to_vec();
            }
            4 => {
                kind = b'1';
                link = if names.is_empty() || d.byte() % 4 == 0 {
                    name.clone() // itself, or nothing before it
                } else {
                    names[usize::from(d.byte()) % names.len()].clone()
                };
            }
            5 => {
                kind = d.pick(b"34");
                dev = (u32::from(d.byte() % 4), u32::from(d.byte() % 4));
            }
            6 => kind = b'6',
            7 => {
                // xattrs, as star or as libarchive writes them
                for _ in 0..1 + d.byte() % 4 {
                    let (prefix, value): (&[u8], Vec<u8>) = if d.byte() % 2 == 0 {
                        (b"SCHILY.xattr.", d.bytes(64).to_vec())
                    } else {
                        (
                            b"LIBARCHIVE.xattr.",
                            d.pick(&[&b"dGVzdA=="[..], b"dGVzdA", b"!!", b""]).to_vec(),
                        )
                    };
                    let ns = d.pick(&[
                        &b"user."[..],
                        b"trusted.overlay.",
                        b"security.",
                        b"bogus.",
                        b"",
                    ]);
                    let key = [prefix, ns, d.bytes(24)].concat();
                    pax_record(&mut pax, &key, &value);
                }
                data = d.bytes(64).to_vec();
            }
            8 => {
                // a pax sparse file, in one of the three pax sparse forms
                let size = u64::from(d.byte()) * 97;
                let runs: Vec<(u64, u64)> = (0..d.byte() % 4)
                    .map(|_| (u64::from(d.byte()) * 31, u64::from(d.byte() % 64)))
                    .collect();
                let stored: u64 = runs.iter().map(|r| r.1).sum();
                match d.byte() % 3 {
                    0 => {
                        let map: Vec<String> =
                            runs.iter().map(|(o, l)| format!("{o},{l}")).collect();
                        pax_record(&mut pax, b"GNU.sparse.size", size.to_string().as_bytes());
                        pax_record(&mut pax, b"GNU.sparse.map", map.join(",").as_bytes());
                        data = vec![b'S'; stored as usize];
                    }
                    1 => {
                        pax_record(&mut pax, b"GNU.sparse.size", size.to_string().as_bytes());
                        for (o, l) in &runs {
                            pax_record(&mut pax, b"GNU.sparse.offset", o.to_string().as_bytes());
                            pax_record(&mut pax, b"GNU.sparse.numbytes", l.to_string().as_bytes());
                        }
                        data = vec![b'S'; stored as usize];
                    }
                    _ => {
                        pax_record(&mut pax, b"GNU.sparse.major", b"1");
                        pax_record(&mut pax, b"GNU.sparse.minor", b"0");
                        pax_record(
                            &mut pax,
                            b"GNU.sparse.realsize",
                            size.to_string().as_bytes(),
                        );
                        let mut map = format!("{}\n", runs.len());
                        for (o, l) in &runs {
                            map.push_str(&format!("{o}\n{l}\n"));
                        }
                        let mut m = map.into_bytes();
                        m.resize(m.len().next_multiple_of(512), 0);
                        m.extend(std::iter::repeat_n(b'S', stored as usize));
                        data = m;
                    }
                }
            }
            9 => {
                // any pax record at all
                for _ in 0..1 + d.byte() % 3 {
                    let key = d.pick(&[
                        &b"path"[..],
                        b"linkpath",
                        b"size",
                        b"mtime",
                        b"uid",
                        b"gid",
                        b"comment",
                        b"GNU.sparse.name",
                    ]);
                    pax_record(&mut pax, key, d.bytes(40));
                }
                data = d.bytes(32).to_vec();
            }
            10 => {
                // a global header, then the member
                let mut g = Vec::new();
                pax_record(
                    &mut g,
                    d.pick(&[&b"mtime"[..], b"uid", b"SCHILY.xattr.user.g", b"comment"]),
                    d.bytes(32),
                );
                out.extend_from_slice(&header(b"global", b'g', g.len() as u64, b"", 0o644, (0, 0)));
                padded(&mut out, &g);
            }
            11 => {
                // a GNU long name member carries the name
                let mut n = name.clone();
                n.push(0);
                out.extend_from_slice(&header(
                    b"././@LongLink",
                    b'L',
                    n.len() as u64,
                    b"",
                    0o644,
                    (0, 0),
                ));
                padded(&mut out, &n);
            }
            12 => {
                // an empty file with overlayfs's xattr whiteout
                pax_record(&mut pax, b"SCHILY.xattr.trusted.overlay.whiteout", b"y");
            }
            _ => {
                kind = d.pick(b"7xgVMKDZ");
                data = d.bytes(16).to_vec();
            }
        }
        if name.len() > 100 && d.byte() % 2 == 0 {
            pax_record(&mut pax, b"path", &name);
        }
        if !pax.is_empty() {
            out.extend_from_slice(&header(b"pax", b'x', pax.len() as u64, b"", 0o644, (0, 0)));
            padded(&mut out, &pax);
        }
        let size = if matches!(kind, b'1' | b'2' | b'3' | b'4' | b'5' | b'6') {
            0
        } else {
            data.len() as u64
        };
        out.extend_from_slice(&header(&name, kind, size, &link, mode, dev));
        if size > 0 {
            padded(&mut out, &data);
        }
        names.push(name);
    }
    if d.byte() % 16 != 0 {
        out.extend_from_slice(&[0u8; 1024]);
    }
    out
}

/// Tar streams built from the input, read as layers (whiteouts kept,
/// converted or applied) and packed; whatever packs must read back sound.
pub fn tar_members(data: &[u8]) {
    let mut d = Draw::new(data);
    let mode = d.pick(&[
        Whiteouts::Keep,
        Whiteouts::ToOverlay,
        Whiteouts::ToOci,
        Whiteouts::Apply,
    ]);
    let mut names = Vec::new();
    let layers: Vec<Vec<u8>> = (0..1 + d.byte() % 3)
        .map(|_| tar_stream(&mut d, &mut names))
        .collect();
    let Some(dir) = Scratch::new("tar") else {
        return;
    };
    let image = dir.0.join("x.sqfs");
    let opts = PackOptions {
        threads: 1,
        no_xattrs: false,
        mkfs_time: Some(0),
        ..Default::default()
    };
    let build = |spool: &Path| {
        let mut t = TarTree::new(spool, &image, &opts)?;
        for l in &layers {
            t.add_layer(&l[..], Path::new("fuzz.tar"), mode)?;
        }
        t.finish()
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let packed = crate::pack::pack_source(
        crate::pack::Source::Tree(Box::new(build)),
        &image,
        &opts,
        &stop,
        Default::default(),
    );
    if packed.is_ok() {
        let img = crate::Image::open(&image, &Default::default())
            .unwrap_or_else(|e| panic!("packed image does not open: {e}"));
        let rep = crate::check::check(&img);
        assert!(
            rep.is_sound(),
            "packed image is not sound: {:?}",
            rep.problems
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
        );
    }
}

const MEDIA: [&str; 8] = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "text/plain",
];

/// A JSON value drawn from the input: mostly the shape asked for, with
/// fields missing, of the wrong type, or odd.
fn json_field(d: &mut Draw, good: serde_json::Value) -> serde_json::Value {
    use serde_json::json;
    match d.byte() % 10 {
        0 => serde_json::Value::Null,
        1 => json!(String::from_utf8_lossy(d.bytes(24))),
        2 => json!(-1),
        3 => json!([good]),
        4 => json!(u64::MAX),
        _ => good,
    }
}

/// An OCI layout drawn from the input (index, nested indexes, manifest,
/// config, layers as tar, gzip or zstd, descriptors right or wrong),
/// opened and flattened as `pack oci:` does, and its layers read one by
/// one as `--layers` does.
pub fn oci_layout(data: &[u8]) {
    use serde_json::json;
    use sha2::{Digest, Sha256};
    let mut d = Draw::new(data);
    let Some(dir) = Scratch::new("oci") else {
        return;
    };
    let blobs = dir.0.join("blobs/sha256");
    if std::fs::create_dir_all(&blobs).is_err() {
        return;
    }
    let put = |bytes: &[u8]| -> (String, usize) {
        let h = hex::encode(Sha256::digest(bytes));
        let _ = std::fs::write(blobs.join(&h), bytes);
        (format!("sha256:{h}"), bytes.len())
    };
    let mut names = Vec::new();
    let mut layers = Vec::new();
    for _ in 0..d.byte() % 4 {
        let tar = tar_stream(&mut d, &mut names);
        let (bytes, media) = match d.byte() % 3 {
            0 => (tar, MEDIA[3]),
            1 => {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                let _ = e.write_all(&tar);
                (e.finish().unwrap_or_default(), MEDIA[4])
            }
            _ => (zstd::encode_all(&tar[..], 1).unwrap_or_default(), MEDIA[5]),
        };
        let (digest, mut size) = put(&bytes);
        if d.byte() % 8 == 0 {
            size = size.wrapping_add(usize::from(d.byte())); // a wrong size
        }
        let media = if d.byte() % 8 == 0 {
            d.pick(&MEDIA)
        } else {
            media
        };
        layers.push(json!({
            "mediaType": json_field(&mut d, json!(media)),
            "digest": json_field(&mut d, json!(digest)),
            "size": json_field(&mut d, json!(size)),
        }));
    }
    let config = d.bytes(64).to_vec();
    let (cdigest, csize) = put(&config);
    let manifest = json!({
        "schemaVersion": json_field(&mut d, json!(2)),
        "mediaType": json_field(&mut d, json!(MEDIA[1])),
        "config": json_field(&mut d, json!({"mediaType": MEDIA[2], "digest": cdigest, "size": csize})),
        "layers": json_field(&mut d, json!(layers)),
    });
    let (mut digest, mut size) = put(manifest.to_string().as_bytes());
    let mut media = MEDIA[1];
    // Indexes in front of it, each naming the one below.
    for _ in 0..d.byte() % 12 {
        let platform = json!({
            "os": d.pick(&["linux", "windows", ""]),
            "architecture": d.pick(&["amd64", "arm64", "s390x"]),
        });
        let entry =
            json!({"mediaType": media, "digest": digest, "size": size, "platform": platform});
        let index = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA[0],
            "manifests": json_field(&mut d, json!([entry])),
        });
        (digest, size) = put(index.to_string().as_bytes());
        media = MEDIA[0];
    }
    let tag = d.pick(&["t", "other", ""]);
    let top = json!({
        "schemaVersion": 2,
        "manifests": json_field(&mut d, json!([{
            "mediaType": media, "digest": digest, "size": size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }])),
    });
    let index_text = if d.byte() % 16 == 0 {
        String::from_utf8_lossy(d.bytes(64)).into_owned()
    } else {
        top.to_string()
    };
    let _ = std::fs::write(dir.0.join("index.json"), index_text);
    let _ = std::fs::write(
        dir.0.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    );
    let want = d.pick(&[Some("t"), None, Some("x")]);
    let Ok(img) = crate::pack::oci::OciImage::open_layout(&dir.0, want) else {
        return;
    };
    let opts = PackOptions {
        threads: 1,
        ..Default::default()
    };
    let image = dir.0.join("x.sqfs");
    let _ = img.flatten(&dir.0.join("spool-flat"), &image, &opts);
    for (i, l) in img.layers.iter().enumerate() {
        let _ = img.layer_tree(l, &dir.0.join(format!("spool-{i}")), &image, &opts);
    }
}

/// Command-line text: `-o` option lists (sqfuse's and squashfuse_ll's
/// argument parsing), IMAGE arguments (URL detection and redaction, OCI
/// and registry references, offsets and sizes), and a registry's auth
/// challenge header.
pub fn cli_text(data: &[u8]) {
    let mut d = Draw::new(data);
    let which = d.byte();
    let text = String::from_utf8_lossy(d.0).into_owned();
    match which % 5 {
        #[cfg(feature = "mount")]
        0 => {
            let mut o = crate::mount::options::MountOpts::default();
            if o.apply(&text).is_ok() {
                o.as_mount_helper();
            }
        }
        #[cfg(feature = "cli")]
        1 => {
            use std::os::unix::ffi::OsStrExt;
            let args: Vec<std::ffi::OsString> =
                d.0.split(|&b| b == 0)
                    .map(|a| std::ffi::OsStr::from_bytes(a).to_os_string())
                    .collect();
            let _ = crate::cli::compat::squashfuse::parse_only(&args);
        }
        2 => {
            let os: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(d.0);
            let p = std::path::Path::new(os);
            let remote = crate::reader::remote::is_remote(p);
            let shown = crate::reader::remote::shown_name(p);
            // No URL in what is shown keeps a password in its authority (a
            // file whose name merely looks like a URL is shown as it is:
            // nothing is sent; a URL's path may hold anything, even text
            // that looks like another URL).
            if remote {
                let urls = shown
                    .split(|c: char| c.is_whitespace() || "\"')".contains(c))
                    .filter_map(|t| t.split_once("://"));
                for (_, rest) in urls {
                    let authority = rest.split('/').next().unwrap_or("");
                    if let Some((user, _)) = authority.rsplit_once('@') {
                        assert!(!user.contains(':'), "password shown: {shown:?}");
                    }
                }
            }
            let _ = crate::error::outside_text(&text);
            let _ = crate::error::shorten(&text);
        }
        #[cfg(feature = "registry")]
        4 => {
            // A registry's WWW-Authenticate header.
            for key in ["realm", "service", "scope"] {
                let _ = crate::registry::challenge_param(&text, key);
            }
        }
        _ => {
            let _ = crate::open::Named::of(std::path::Path::new(&text));
            #[cfg(feature = "registry")]
            let _ = crate::registry::check_reference(&text);
            let _ = text.parse::<crate::reader::Offset>();
            let _ = crate::size::parse_size(&text);
        }
    }
}
