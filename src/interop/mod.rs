//! What leaves and enters vae-tch: the export folder (TorchScript modules built in C++,
//! safetensors, config.json, the PyTorch module and a model card) and Keras weight files.
pub mod export;
pub mod keras_export;
pub mod keras_import;
pub mod model_card;
pub mod script;
pub mod torchscript;
