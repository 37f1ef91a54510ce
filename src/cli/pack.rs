//! `sqfuse pack`: its flags as the packer's options, a directory, tar or
//! OCI source packed, and the root hash of an appended verity tree told.

use super::args::PackArgs;
use super::progress::run_pack;
use super::report::Failure;
use crate::open::{Credentials, Named};
use crate::pack::Source;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `SOURCE_DATE_EPOCH`, if set.
pub fn source_date_epoch() -> Result<Option<u32>, Failure> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => v
            .trim()
            .parse::<u32>()
            .map(Some)
            .map_err(|_| format!("SOURCE_DATE_EPOCH={v:?} is not a u32 timestamp").into()),
        Err(_) => Ok(None),
    }
}

pub fn pack(a: PackArgs) -> Result<ExitCode, Failure> {
    let oci_source = match a.paths.as_slice() {
        [s] | [s, _] => Some(Named::of(s)).filter(Named::is_oci_image),
        _ => None,
    };
    let (sources, image): (&[PathBuf], &Path) = match (&a.layers, &oci_source) {
        (Some(outdir), Some(_)) if a.paths.len() == 1 => (&a.paths[..], outdir),
        (Some(_), _) => {
            return Err(
                "--layers takes one OCI SOURCE (oci:DIR[:TAG] or docker://HOST/REPO[:TAG]) and no IMAGE"
                    .into(),
            )
        }
        (None, _) => {
            let (s, i) = a
                .split_paths()
                .ok_or("give SOURCE... IMAGE (the image to create comes last)")?;
            (s, i.as_path())
        }
    };
    if a.xz_filter.is_some() && a.compressor != crate::format::compressor::Compressor::Xz {
        return Err("--xz-filter needs -c xz".into());
    }
    if a.no_fragments && a.always_fragments {
        return Err("--no-fragments and --always-fragments contradict each other".into());
    }
    let defaults = crate::pack::PackOptions::default();
    let opts = crate::pack::PackOptions {
        compressor: a.compressor,
        level: a.level,
        xz_filters: a.xz_filter.unwrap_or(0),
        block_size: a.block_size,
        threads: a.threads.unwrap_or(defaults.threads).max(1),
        no_fragments: a.no_fragments,
        always_fragments: a.always_fragments,
        no_dedup: a.no_dedup,
        no_xattrs: a.no_xattrs,
        no_exports: a.no_exports,
        no_sparse: a.no_sparse,
        all_root: a.all_root,
        force_uid: a.force_uid,
        force_gid: a.force_gid,
        mkfs_time: a.mkfs_time,
        all_time: a.all_time,
        source_date_epoch: source_date_epoch()?,
        excludes: a
            .excludes
            .iter()
            .cloned()
            .map(crate::pack::exclude::Rule::Glob)
            .collect(),
        offset: a.offset,
        one_file_system: a.one_file_system,
        force: a.force,
        skip_unreadable: a.skip_unreadable,
        tar: a.tar,
        root_time: None,
        verity_salt: match (a.verity, &a.verity_salt) {
            (false, _) => None,
            (true, Some(s)) => Some(s.0.clone()),
            (true, None) => Some(crate::pack::verity::random_salt()?),
        },
        whiteouts: a.whiteouts,
        tar_root_from_archive: true,
        order: {
            let mut files = Vec::new();
            for f in &a.order {
                files.extend(crate::profile::Profile::load(f)?.file_order());
            }
            crate::pack::order::FileOrder::from_paths(&files)
        },
        ..defaults
    };
    if let Some(named) = &oci_source {
        return pack_oci(named, &a, image, &opts);
    }
    let counted = std::sync::atomic::AtomicU64::new(0);
    let source = match (a.layer, sources) {
        (false, _) => Source::Paths(sources),
        (true, [upper]) if !a.tar => crate::pack::upper_layer::source(upper, &opts, &counted),
        (true, _) => {
            return Err("--layer takes one upper directory (not --tar) and the IMAGE".into())
        }
    };
    let rep = run_pack(source, image, &opts, a.quiet, "sqfuse")?;
    if let Some(v) = &rep.verity {
        let mut out = std::io::stdout().lock();
        report_root(v, a.verity_roothash.as_deref(), &mut out)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `pack` from an OCI image: flattened into `target`, or with --layers one
/// image per layer in the directory `target`.
fn pack_oci(
    named: &Named,
    a: &PackArgs,
    target: &Path,
    opts: &crate::pack::PackOptions,
) -> Result<ExitCode, Failure> {
    use crate::pack::oci;
    let creds = match &a.creds {
        Some(c) => Credentials::Given(c.clone()),
        None => Credentials::Stored,
    };
    let access = crate::open::registry_access(a.insecure, &creds)?;
    let img = oci::OciImage::open(named, &access, target)?;
    let Some(outdir) = &a.layers else {
        let rep = run_pack(Source::OciFlattened(&img), target, opts, a.quiet, "sqfuse")?;
        if let Some(v) = &rep.verity {
            report_root(
                v,
                a.verity_roothash.as_deref(),
                &mut std::io::stdout().lock(),
            )?;
        }
        return Ok(ExitCode::SUCCESS);
    };
    if a.verity_roothash.is_some() {
        return Err(
            "--verity-roothash names one file; with --layers each layer's root hash is written beside it as LAYER.roothash"
                .into(),
        );
    }
    let plan = oci::LayerPlan::new(&img, outdir, opts.force)?;
    for (layer, file) in plan.to_pack() {
        let rep = run_pack(Source::OciLayer(&img, layer), file, opts, a.quiet, "sqfuse")?;
        if let Some(v) = &rep.verity {
            let roothash = file.with_extension("sqfs.roothash");
            println!("{}:", file.display());
            report_root(v, Some(&roothash), &mut std::io::stdout().lock())?;
        }
    }
    plan.finish(&img)?;
    if !a.quiet {
        eprintln!(
            "mount with: sqfuse {} MOUNTPOINT",
            plan.top_first()
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a tree's root hash (the value to pin or sign), and writes it to
/// `file` if asked.
pub fn report_root(
    a: &crate::pack::verity::Appended,
    file: Option<&Path>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    let root = hex::encode(&a.root);
    writeln!(out, "root hash: {root}")?;
    if let Some(f) = file {
        std::fs::write(f, format!("{root}\n"))
            .map_err(|e| crate::Error::io(format!("writing {}", f.display()), e))?;
    }
    Ok(())
}
