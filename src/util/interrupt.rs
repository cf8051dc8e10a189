//! Stopping a run cleanly on Ctrl-C (SIGINT), SIGTERM, or SIGUSR1/SIGUSR2 (what a scheduler sends
//! before a time limit: Slurm's `--signal`, submitit's USR2): the first signal sets a flag that the
//! training loop checks after every step; the loop then stops, the checkpoint of the last
//! finished epoch is kept, and the command exits 128 + the signal's number (130 or 143) after
//! printing the exact command that resumes. A second signal ends the process at once, with the
//! same status.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGINT, SIGTERM, SIGUSR1, SIGUSR2};

/// The signal received (0: none).
fn received() -> &'static Arc<AtomicUsize> {
    static FLAG: OnceLock<Arc<AtomicUsize>> = OnceLock::new();
    FLAG.get_or_init(|| Arc::new(AtomicUsize::new(0)))
}

/// Installs the handlers (once per process; later calls do nothing).
pub fn install() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        for sig in [SIGINT, SIGTERM, SIGUSR1, SIGUSR2] {
            // A second signal: exit at once (the first already asked for a clean stop).
            let flag = received().clone();
            let _ = unsafe {
                signal_hook::low_level::register(sig, move || {
                    if flag.swap(sig as usize, Ordering::SeqCst) != 0 {
                        signal_hook::low_level::exit(128 + sig);
                    }
                })
            };
        }
    });
}

/// The signal that asked the run to stop, if any.
pub fn requested() -> Option<i32> {
    match received().load(Ordering::SeqCst) {
        0 => None,
        s => Some(s as i32),
    }
}

/// "SIGINT" / "SIGTERM".
pub fn name(sig: i32) -> &'static str {
    match sig {
        SIGINT => "SIGINT (Ctrl-C)",
        SIGTERM => "SIGTERM",
        SIGUSR1 => "SIGUSR1 (a scheduler's warning before the time limit)",
        SIGUSR2 => "SIGUSR2 (a scheduler's warning before the time limit)",
        _ => "a signal",
    }
}
