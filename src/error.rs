//! The library's one error type: what went wrong, where in the image, and
//! a sentence saying what was found.

use std::fmt;

/// Broad classes of failure, for callers that map errors to exit codes or
/// errno values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Reading the image file itself failed.
    Io,
    /// The bytes on disk break the format's rules.
    Corrupt,
    /// Valid SquashFS, but something this build cannot read.
    Unsupported,
    /// A path or name asked for does not exist.
    NotFound,
    /// The caller asked for something that does not fit the object
    /// (a file read on a directory, say).
    Invalid,
}

/// An error with the byte offset in the image (relative to the start of the
/// SquashFS superblock) where it was found, when there is one.
#[derive(Debug)]
pub struct Error {
    /// The class of failure.
    pub kind: ErrorKind,
    /// Where in the image (from the superblock) the fault was found, when it was.
    pub offset: Option<u64>,
    /// The path inside the image the error concerns, when known.
    pub path: Option<String>,
    /// What the error happened in (an image, a layer, a hash file), as the
    /// message names it first; set by [`Error::within`].
    pub within: Option<String>,
    /// What was found, as a sentence part ("metadata block size 40000 is outside 1..=8192").
    pub what: String,
    /// The operating system's error behind an I/O failure.
    pub source: Option<std::io::Error>,
}

/// The library's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The image breaks the format's rules at `offset`.
    pub fn corrupt(offset: u64, what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Corrupt,
            offset: Some(offset),
            path: None,
            within: None,
            what: what.into(),
            source: None,
        }
    }
    /// Valid SquashFS this build cannot read (an unknown compressor, say).
    pub fn unsupported(offset: Option<u64>, what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Unsupported,
            offset,
            path: None,
            within: None,
            what: what.into(),
            source: None,
        }
    }
    /// A name or path that is not there.
    pub fn not_found(what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::NotFound,
            offset: None,
            path: None,
            within: None,
            what: what.into(),
            source: None,
        }
    }
    /// A request that does not fit what it names (its text is the whole message).
    pub fn invalid(what: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Invalid,
            offset: None,
            path: None,
            within: None,
            what: what.into(),
            source: None,
        }
    }
    /// Reading or writing failed while doing `what`.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error {
            kind: ErrorKind::Io,
            offset: None,
            path: None,
            within: None,
            what: what.into(),
            source: Some(source),
        }
    }
    /// The error, saying which path inside the image it concerns (kept if
    /// one was named already).
    pub fn at_path(self, path: impl Into<String>) -> Self {
        Error {
            path: self.path.or_else(|| Some(path.into())),
            ..self
        }
    }

    /// The error, saying what it happened in (an image's or layer's name,
    /// say): the message starts with it. The innermost name is kept, and a
    /// name the text already says is not said twice.
    pub fn within(self, name: impl Into<String>) -> Self {
        if self.within.is_some() {
            return self;
        }
        let name = name.into();
        if self.what.contains(&name) {
            return self;
        }
        Error {
            within: Some(name),
            ..self
        }
    }

    /// The errno a filesystem request that hit this error should fail with.
    pub fn errno(&self) -> i32 {
        match self.kind {
            ErrorKind::NotFound => libc::ENOENT,
            ErrorKind::Invalid => libc::EINVAL,
            ErrorKind::Io | ErrorKind::Corrupt | ErrorKind::Unsupported => libc::EIO,
        }
    }
}

impl fmt::Display for Error {
    /// `[WITHIN: ][corrupt image|unsupported image] [at offset N (0xN)][: PATH]: WHAT`.
    /// Only the two image kinds name their kind: the other messages are
    /// sentences of their own ("cannot open X", "subdir=X: ...").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(w) = &self.within {
            write!(f, "{}: ", shorten(w))?;
        }
        let kind = match self.kind {
            ErrorKind::Corrupt => "corrupt image",
            ErrorKind::Unsupported => "unsupported image",
            ErrorKind::Io | ErrorKind::NotFound | ErrorKind::Invalid => "",
        };
        let mut head = kind.to_string();
        if let Some(off) = self.offset {
            let sep = if head.is_empty() { "" } else { " " };
            head.push_str(&format!("{sep}at offset {off} (0x{off:x})"));
        }
        if let Some(p) = &self.path {
            if !head.is_empty() {
                head.push_str(": ");
            }
            head.push_str(&shorten(p));
        }
        // The source is not repeated here: it is the error's source(), and
        // whoever prints the error prints the chain once (see [`Report`]).
        if head.is_empty() {
            write!(f, "{}", self.what)
        } else {
            write!(f, "{head}: {}", self.what)
        }
    }
}

/// Longest path an error message shows whole.
const SHOWN_PATH_MAX: usize = 400;

/// `text` as a message shows it: whole up to 400 bytes,
/// else its start and end around a count of what was left out. A path
/// from outside may be 60 KB long; a message stays one readable line. Cut
/// at character boundaries only.
pub fn shorten(text: &str) -> std::borrow::Cow<'_, str> {
    if text.len() <= SHOWN_PATH_MAX {
        return text.into();
    }
    let keep = SHOWN_PATH_MAX / 2 - 20;
    let head_end = floor_char_boundary(text, keep);
    let tail_start = (text.len() - keep..text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    format!(
        "{}[... {} bytes ...]{}",
        &text[..head_end],
        tail_start - head_end,
        &text[tail_start..]
    )
    .into()
}

/// Text from outside (a server's error body, say) as part of a one-line
/// message: its first line, control characters (terminal escapes) left
/// out, its start kept (where the status and the reason are) if long.
pub fn outside_text(text: &str) -> String {
    let mut line: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if line.len() > SHOWN_PATH_MAX {
        let cut = floor_char_boundary(&line, SHOWN_PATH_MAX);
        let more = line.len() - cut;
        line.truncate(cut);
        line.push_str(&format!("[... {more} more bytes]"));
    }
    line
}

/// The last character boundary at or before `i` (str's own is newer than
/// the Rust this crate supports).
fn floor_char_boundary(text: &str, i: usize) -> usize {
    (0..=i.min(text.len()))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0)
}

/// [`shorten`] for a path.
pub fn shown_path(path: &std::path::Path) -> String {
    shorten(&path.to_string_lossy()).into_owned()
}

/// An error and every source below it on one line, joined by ": " (what
/// anyhow's `{:#}` prints), each source left out if the text so far
/// already says it (HTTP clients nest the same message). The one way
/// errors are printed outside `main`.
pub struct Report<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = words(self.0);
        let mut next = self.0.source();
        while let Some(e) = next {
            let more = words(e);
            if !text.contains(&more) {
                text.push_str(": ");
                text.push_str(&more);
            }
            next = e.source();
        }
        f.write_str(&text)
    }
}

/// What an error says, without the number Rust appends to an operating
/// system error's words ("No such file or directory (os error 2)"): the
/// words are the message, the number says them twice.
fn words(e: &(dyn std::error::Error + 'static)) -> String {
    let text = e.to_string();
    match e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.raw_os_error())
    {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map_or_else(|| text.clone(), str::to_string),
        None => text,
    }
}

/// An operating system error's words, without Rust's "(os error N)", for
/// messages that quote one.
pub fn io_words(e: &std::io::Error) -> String {
    words(e)
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_ref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_paths_are_shortened_at_character_boundaries() {
        assert_eq!(shorten("a/b"), "a/b");
        // Multi-byte characters all along: every cut must fall between them.
        let long = "\u{e9}/".repeat(20_000);
        let s = shorten(&long);
        assert!(s.len() < SHOWN_PATH_MAX + 40, "{}", s.len());
        assert!(s.contains("bytes ...]"));
        assert!(s.starts_with("\u{e9}/") && s.ends_with("\u{e9}/"));
    }

    #[test]
    fn os_errors_are_their_words_once() {
        let e = Error::io(
            "cannot open x.sqfs",
            std::io::Error::from_raw_os_error(libc::ENOENT),
        );
        assert_eq!(
            Report(&e).to_string(),
            "cannot open x.sqfs: No such file or directory"
        );
        let custom = std::io::Error::other("a short read");
        assert_eq!(io_words(&custom), "a short read");
    }

    #[test]
    fn outside_text_is_one_clean_short_line() {
        let evil = format!("403 \u{1b}[31mred\u{7}{}\nsecond line", "x".repeat(10_000));
        let s = outside_text(&evil);
        assert!(!s.contains('\u{1b}') && !s.contains('\u{7}') && !s.contains('\n'));
        assert!(s.starts_with("403 [31mred") && s.len() < 450, "{s}");
    }
}
