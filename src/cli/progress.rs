//! Packing as the commands do it: Ctrl-C stops the pack (nothing is
//! written), a progress display on a terminal, and a summary line.

use super::report::{plural, Failure};
use crate::pack::Source;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// How a pack shows that it is going.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// Nothing, not even the summary.
    Quiet,
    /// A bar on a terminal (stderr), then the summary.
    Bar,
    /// The percentage done, one number per line on stdout as it changes
    /// (mksquashfs's `-percentage`), then the summary.
    Percentage,
}

/// Packs with Ctrl-C handling, a progress bar on a terminal and a summary.
pub fn run_pack(
    source: Source<'_>,
    image: &Path,
    opts: &crate::pack::PackOptions,
    quiet: bool,
    prog: &str,
) -> Result<crate::pack::PackReport, Failure> {
    let shown = if quiet { Shown::Quiet } else { Shown::Bar };
    run_pack_shown(source, image, opts, shown, prog)
}

/// [`run_pack`], showing progress as `shown` says.
pub fn run_pack_shown(
    source: Source<'_>,
    image: &Path,
    opts: &crate::pack::PackOptions,
    shown: Shown,
    prog: &str,
) -> Result<crate::pack::PackReport, Failure> {
    let quiet = shown == Shown::Quiet;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone())?;
    }
    let start = std::time::Instant::now();
    let progress = Arc::new(crate::pack::data::Progress::default());
    let display = (shown == Shown::Bar && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .then(|| ProgressDisplay::start(progress.clone()));
    let percent = (shown == Shown::Percentage).then(|| Percentage::start(progress.clone()));
    let result = crate::pack::pack_source(source, image, opts, &stop, progress);
    if let Some(d) = display {
        d.finish(result.is_ok());
    }
    if let Some(p) = percent {
        p.finish(result.is_ok());
    }
    let rep = result.map_err(|e| unreadable_hint(e, opts, prog))?;
    for w in &rep.warnings {
        eprintln!("{prog}: warning: {w}");
    }
    if !quiet {
        eprintln!("{}", summary(image, &rep, start.elapsed().as_secs_f64()));
    }
    Ok(rep)
}

/// A progress display on stderr, drawn from the packer's counters: a
/// spinner with the entries found while the source is scanned and the
/// duplicates are sought, then a bar over the bytes to read.
struct ProgressDisplay {
    /// 0 while packing; 1 once it succeeded, 2 once it failed.
    end: Arc<std::sync::atomic::AtomicU8>,
    thread: std::thread::JoinHandle<()>,
}

impl ProgressDisplay {
    fn start(p: Arc<crate::pack::data::Progress>) -> Self {
        use crate::pack::data::Phase;
        use std::sync::atomic::Ordering::Relaxed;
        let end = Arc::new(std::sync::atomic::AtomicU8::new(0));
        let ended = end.clone();
        // The first frame before the pack starts: a scan faster than the
        // display thread's start still shows that it scanned.
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("scanning the source");
        bar.tick();
        let thread = std::thread::spawn(move || {
            let mut writing = false;
            let show = |bar: &indicatif::ProgressBar, writing: &mut bool| match p.phase() {
                Phase::Scanning => bar.set_message(match p.entries.load(Relaxed) {
                    0 => "scanning the source".to_string(),
                    n => format!("scanning: {}", plural(n, "entry", "entries")),
                }),
                Phase::Deduplicating => bar.set_message(format!(
                    "looking for duplicates among {} of equal size",
                    plural(p.candidates.load(Relaxed), "file", "files")
                )),
                Phase::Writing => {
                    let inp = p.bytes_in.load(Relaxed);
                    bar.set_length(p.total.load(Relaxed).max(inp));
                    bar.set_position(inp);
                    if !*writing {
                        *writing = true;
                        bar.set_style(
                            indicatif::ProgressStyle::with_template(
                                "{bar:30} {percent:>3}% {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
                            )
                            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                        );
                    }
                    bar.set_message(plural(p.files.load(Relaxed), "file", "files"));
                }
            };
            while ended.load(Relaxed) == 0 {
                show(&bar, &mut writing);
                bar.tick();
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            if ended.load(Relaxed) == 1 {
                // The last frame, even of a pack faster than one frame:
                // every byte counted read, the bar full.
                p.enter(Phase::Writing);
                show(&bar, &mut writing);
                bar.finish();
            } else {
                bar.finish_and_clear();
            }
        });
        ProgressDisplay { end, thread }
    }

    fn finish(self, succeeded: bool) {
        self.end
            .store(if succeeded { 1 } else { 2 }, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// `-percentage`: the share of the bytes to read that have been, printed
/// whenever the whole percentage changes, 100 last on success.
struct Percentage {
    end: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Percentage {
    fn start(p: Arc<crate::pack::data::Progress>) -> Self {
        use std::io::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let end = Arc::new(AtomicBool::new(false));
        let ended = end.clone();
        let thread = std::thread::spawn(move || {
            let mut last = None;
            while !ended.load(Relaxed) {
                let total = p.total.load(Relaxed);
                if let Some(pct) = (p.bytes_in.load(Relaxed).min(total) * 100).checked_div(total) {
                    let pct = pct.min(99);
                    if last != Some(pct) {
                        last = Some(pct);
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{pct}");
                        let _ = out.flush();
                    }
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        });
        Percentage { end, thread }
    }

    fn finish(self, succeeded: bool) {
        self.end.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        if succeeded {
            println!("100");
        }
    }
}

/// A source the user may not read: the error, and the option that packs
/// the rest (sqfuse's own flag; the personalities have their tools' ways).
fn unreadable_hint(
    e: crate::pack::PackError,
    opts: &crate::pack::PackOptions,
    prog: &str,
) -> Failure {
    let denied = matches!(&e, crate::pack::PackError::Io { source, .. }
        if source.kind() == std::io::ErrorKind::PermissionDenied);
    if denied && !opts.skip_unreadable && prog == "sqfuse" {
        return format!(
            "{}; --skip-unreadable packs the rest, leaving out what cannot be read",
            crate::error::Report(&e)
        )
        .into();
    }
    Box::new(e)
}

/// The line a pack ends with: what went in, what came out, how fast.
fn summary(image: &Path, rep: &crate::pack::PackReport, secs: f64) -> String {
    use indicatif::BinaryBytes;
    let mut line = format!(
        "{}: {}, {} ({} duplicate{}), {} of data, {} image",
        image.display(),
        plural(rep.inodes.into(), "inode", "inodes"),
        plural(rep.files, "file", "files"),
        rep.duplicates,
        if rep.duplicates == 1 { "" } else { "s" },
        BinaryBytes(rep.data_bytes),
        BinaryBytes(rep.image_size),
    );
    // Below a few blocks the image is its tables, not a compression ratio.
    if rep.data_bytes >= 1 << 20 {
        let pct = 100.0 * rep.image_size as f64 / rep.data_bytes as f64;
        line.push_str(&format!(" ({pct:.1}% of the data)"));
    }
    line.push_str(&format!(", {secs:.1} s"));
    if secs >= 0.5 {
        let rate = rep.data_bytes as f64 / secs;
        line.push_str(&format!(", {}/s", BinaryBytes(rate as u64)));
    }
    line
}
