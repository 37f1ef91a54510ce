//! `sqfuse check`: every problem an image has, one line each, and a
//! summary; the exit status says whether it is sound.

use super::args::ImageArgs;
use super::report::{plural, Failure};
use crate::check;
use crate::reader::remote::shown_name;
use std::io::Write;
use std::process::ExitCode;

pub fn check_image(img: &ImageArgs, out: &mut dyn Write) -> Result<ExitCode, Failure> {
    let image = super::opened::open_image(img)?;
    let rep = check::check(&image);
    let name = shown_name(&img.image);
    for (p, more) in rep.problems.iter().zip(&rep.repeats) {
        let also = match more {
            0 => String::new(),
            1 => " (and 1 more path with the same problem)".to_string(),
            n => format!(" (and {n} more paths with the same problem)"),
        };
        writeln!(out, "{name}: {}{also}", crate::error::Report(p))?;
    }
    writeln!(
        out,
        "{name}: {}, {}, {}, {}, {}: {}",
        plural(rep.inodes, "inode", "inodes"),
        plural(rep.directories, "directory", "directories"),
        plural(rep.files, "file", "files"),
        plural(rep.data_bytes, "data byte", "data bytes"),
        plural(rep.fragments, "fragment", "fragments"),
        if rep.is_sound() {
            "ok".to_string()
        } else {
            plural(rep.problems.len() as u64, "problem", "problems")
        }
    )?;
    out.flush()?;
    Ok(if rep.is_sound() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
