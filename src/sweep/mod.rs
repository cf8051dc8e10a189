//! Sweeps: many settings of one model from one file (`spec`), each point an ordinary run folder
//! trained by the same job as `train` (`run`), split across processes by a scheduler's array
//! index (`shard`), and compared in figures and a table (`report`).
pub mod group;
pub mod report;
pub mod run;
pub mod shard;
pub mod spec;
