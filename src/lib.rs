//! vae-tch: the convolutional VAE of Foster, "Generative Deep Learning" (ch. 3), trained on
//! libtorch through tch, with Keras semantics and outputs that load in Python.
//!
//! One folder a concern, in floors: a module imports only the floors below its own
//! (`tests/layers.rs` checks it), from the bottom up:
//! - `util`: files written atomically, progress bars, devices, signals, PNG grids;
//! - `config`: the run's config as data, and the plain enums it names;
//! - `data`: IDX files, fetching and offline sources, image folders and their cache, batches;
//! - `model`: the Keras mirror (encoder, decoder, layers, layouts), its loss and summary;
//! - `train`: the epoch loop, the step (eager or CUDA graph), Keras Adam, the benchmark;
//! - `run`: the run folder: checkpoint (and `best/`), metrics.csv, TensorBoard events, early
//!   stopping, lock, data identity, and the job that trains a run folder (or a group of them
//!   as one stack);
//! - `eval`: what a trained model is worth (negative ELBO, IWAE bound, active units);
//! - `analysis`: the book's faces analysis (attribute vectors and the points of its figures);
//! - `plot`: the figures;
//! - `interop`: exports (TorchScript, safetensors, the model card) and Keras import;
//! - `finish`: what a trained run gets after its last epoch (figures, eval.json, the export),
//!   for `train` and every sweep point alike;
//! - `serve`: `vae-tch serve`'s server: the page, the JSON API, the thread that owns the models;
//! - `commands`: the top floor, one module per command (`sweep` among them), each taking a
//!   typed request that the binary's flags become (src/cli/).
pub mod util;

pub mod config;

pub mod data;

pub mod model;

pub mod train;

pub mod run;

pub mod eval;

pub mod analysis;

pub mod plot;

pub mod interop;

pub mod finish;

pub mod serve;

pub mod commands;
