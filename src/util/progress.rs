//! Progress bars (indicatif), drawn on stderr and hidden when stderr is not a terminal.
use indicatif::{ProgressBar, ProgressStyle};

/// A bar for a download of `len` bytes (a spinner when the length is unknown).
pub fn bytes_bar(len: Option<u64>, what: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n).with_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
                .expect("valid template")
                .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner(),
    };
    bar.with_message(what.to_string())
}

/// A bar over the steps of one epoch; the message carries the running losses.
pub fn epoch_bar(steps: u64, epoch: usize, epochs: usize) -> ProgressBar {
    ProgressBar::new(steps)
        .with_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:25}] {pos}/{len} {elapsed_precise}<{eta_precise} {msg}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        )
        .with_prefix(format!("{epoch}/{epochs}"))
}

/// A bar over `len` items of work (decoding images, say).
pub fn count_bar(len: u64, what: &str) -> ProgressBar {
    ProgressBar::new(len)
        .with_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} {per_sec} {elapsed_precise}<{eta_precise}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        )
        .with_message(what.to_string())
}
