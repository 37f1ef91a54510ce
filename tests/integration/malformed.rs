use crate::{corpora, image_files, scratch};
use sqfuse::check::check;
use sqfuse::cli::{extract, ls};
use sqfuse::{Image, OpenOptions};
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

/// Opens, checks, lists and extracts `image`; returns whether any step
/// failed cleanly. Panics propagate to the caller.
pub fn exercise(image: &Path, dest: &Path) -> bool {
    let img = match Image::open(image, &OpenOptions::default()) {
        Ok(i) => i,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            return true;
        }
    };
    let mut failed = !check(&img).is_sound();
    let mut sink = Vec::new();
    let img = std::sync::Arc::new(img);
    failed |= sqfuse::view::ImageView::whole(img.clone())
        .and_then(|view| {
            ls::ls(
                &view,
                "/",
                ls::LsOptions {
                    long: true,
                    recursive: true,
                    ..Default::default()
                },
                &mut sink,
            )
        })
        .is_err();
    failed |= extract::extract(&img, dest, "/", extract::ExtractOptions::default()).is_err();
    failed
}

/// Runs `f` on a worker thread; fails the test if it panics or takes longer than `limit`.
pub fn bounded<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(r);
    });
    match rx.recv_timeout(limit) {
        Ok(Ok(v)) => v,
        Ok(Err(_)) => panic!("{what}: panicked"),
        Err(_) => panic!("{what}: still running after {limit:?} (hang?)"),
    }
}

#[test]
fn every_malformed_image_fails_cleanly_and_writes_only_inside_dest() {
    let dir = corpora().join("malformed");
    let files = image_files(&dir);
    assert!(files.len() >= 30, "only {} malformed files", files.len());
    for (n, p) in files.into_iter().enumerate() {
        let parent = scratch("malformed").join(format!("{n}"));
        std::fs::create_dir_all(&parent).unwrap();
        let dest = parent.join("dest");
        let (p2, d2) = (p.clone(), dest.clone());
        bounded(
            &p.display().to_string(),
            Duration::from_secs(20),
            move || exercise(&p2, &d2),
        );
        let left: Vec<_> = std::fs::read_dir(&parent)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.iter().all(|n| n == "dest"),
            "{}: wrote beside DEST: {left:?}",
            p.display()
        );
    }
}

/// Regression: a symlink `DIR -> /tmp` beside a directory `DIR` must not
/// let extraction write through the link.
#[test]
fn path_traversal_image_is_refused() {
    let p = corpora().join("malformed/sqfstools-ng_pathtraversal.sqfs");
    let img = Image::open(&p, &OpenOptions::default()).unwrap();
    let dest = scratch("traversal").join("dest");
    let e = extract::extract(&img, &dest, "/", extract::ExtractOptions::default()).unwrap_err();
    assert!(e.to_string().contains("duplicated"), "{e}");
    assert!(!check(&img).is_sound());
}

#[test]
fn big_endian_v2_image_is_named_unsupported() {
    let p = corpora().join("malformed/binwalk_squashfs_v2_bigendian.bin");
    let e = Image::open(&p, &OpenOptions::default())
        .err()
        .expect("must be refused");
    assert_eq!(e.kind, sqfuse::ErrorKind::Unsupported);
    assert!(e.to_string().contains("big-endian"), "{e}");
}
