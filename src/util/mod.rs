//! The ground floor: small helpers every other floor may use; nothing here imports the crate.
pub mod autograd;
pub mod device;
pub mod errors;
pub mod fsutil;
pub mod host;
pub mod images;
pub mod interrupt;
pub mod memory;
pub mod progress;
pub mod safetensors_io;
pub mod shell;
pub mod torch_failure;
