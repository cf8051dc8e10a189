//! vae-tch: the convolutional VAE of Foster, "Generative Deep Learning" (ch. 3), trained on
//! libtorch through tch, with Keras semantics and outputs that load in Python.
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod cuda_graph;
pub mod data;
pub mod data_identity;
pub mod device;
pub mod export;
pub mod fsutil;
pub mod images;
pub mod info;
pub mod interrupt;
pub mod keras_import;
pub mod loss;
pub mod metrics;
pub mod model;
pub mod optim;
pub mod plot;
pub mod progress;
pub mod runlock;
pub mod safetensors_io;
pub mod script;
pub mod step;
pub mod summary;
pub mod torchscript;
pub mod train;
