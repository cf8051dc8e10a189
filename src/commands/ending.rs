//! How a command's result ends the process, for the binary's edge: what goes to stdout and to
//! stderr, and the exit status: 0; 1 for an error, printed with its causes (and a hint where the
//! user can fix it outside vae-tch: a full disk, a file-size limit); 128 + N for a signal that
//! stopped training (its checkpoint kept); 70 (sysexits' EX_SOFTWARE) for a bug, a panic.
//! Usage errors (2) are clap's, before any command runs.
use std::any::Any;

use super::FailedAfter;
use crate::train::Interrupted;
use crate::util::errors::disk_full_hint;
use crate::util::torch_failure::{classify, panic_text};

/// The exit status of a panic.
pub const EXIT_INTERNAL: u8 = 70;

/// What the process prints and returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Training commands finish their step on Ctrl-C or SIGTERM and keep the last checkpoint
/// (crate::util::interrupt); other commands end at once, as usual.
pub fn catch_signals() {
    crate::util::interrupt::install();
}

/// The ending of a command that returned `e`.
pub fn of_error(e: &anyhow::Error) -> Ending {
    if let Some(stop) = e.downcast_ref::<Interrupted>() {
        return Ending {
            stdout: String::new(),
            stderr: format!("{stop}\n"),
            code: 128 + stop.signal as u8,
        };
    }
    let stdout = e
        .downcast_ref::<FailedAfter>()
        .map_or(String::new(), |a| a.printed.clone());
    let mut stderr = format!("error: {e:#}\n");
    if let Some(hint) = disk_full_hint(e) {
        stderr += &format!("{hint}\n");
    }
    Ending {
        stdout,
        stderr,
        code: 1,
    }
}

/// The ending of a command that panicked: a libtorch failure that no command caught with more
/// context (crate::util::torch_failure) is still an error naming its cause, exit 1; any other
/// panic is a bug: one line that says so.
pub fn of_panic(panic: &(dyn Any + Send)) -> Ending {
    let message = panic_text(panic);
    if let Some(failure) = classify(
        &message,
        "while running the command",
        "free some memory or ask for less",
    ) {
        return Ending {
            stdout: String::new(),
            stderr: format!("error: {failure}\n"),
            code: 1,
        };
    }
    let first = message.lines().next().unwrap_or("panic");
    Ending {
        stdout: String::new(),
        stderr: format!(
            "internal error: {first} (please report it with the command that caused it; RUST_BACKTRACE=1 shows where)\n"
        ),
        code: EXIT_INTERNAL,
    }
}
