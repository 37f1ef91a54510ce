//! How a command's failure is told: one line under the program's name, and
//! the status to exit with.

use crate::pack::PackError;
use std::error::Error;
use std::process::ExitCode;

/// Exit status of a run stopped by Ctrl-C (128 + SIGINT), as shells report it.
pub const INTERRUPTED: u8 = 130;

/// What a command below `main` fails with.
pub type Failure = Box<dyn Error + Send + Sync + 'static>;

/// Each error of the chain, `e` first.
fn chain<'a>(e: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    let mut next = Some(e);
    std::iter::from_fn(move || {
        let this = next?;
        next = this.source();
        Some(this)
    })
}

/// Prints `e` as one line under `prog`'s name; the status to exit with
/// (`code`, unless the error says otherwise).
pub fn fail(prog: &str, e: &(dyn Error + 'static), code: u8) -> ExitCode {
    // A closed pipe (`sqfuse cat ... | head`) is not an error worth a word.
    let broken_pipe = chain(e).any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return ExitCode::SUCCESS;
    }
    let pack_error = chain(e).find_map(|c| c.downcast_ref::<PackError>());
    match pack_error {
        Some(PackError::Interrupted) => {
            eprintln!("{prog}: interrupted; nothing written");
            return ExitCode::from(INTERRUPTED);
        }
        // The library says what exists; the flag that overwrites is ours.
        Some(PackError::Exists(p)) => {
            eprintln!("{prog}: {} exists (use -f to overwrite)", p.display());
            return ExitCode::from(code);
        }
        _ => {}
    }
    eprintln!("{prog}: {}", crate::error::Report(e));
    ExitCode::from(code)
}

/// `n` and the noun, singular for one: "1 file", "2 files".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
