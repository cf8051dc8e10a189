//! The top floor: what a command does end to end, built from typed requests (the binary's flags
//! become these in `main.rs`), so that other commands reuse them.
pub mod info;
pub mod train;
