//! The book's faces analysis after training (Foster, ch. 3; the notebook
//! 03_06_vae_faces_analysis of davidADSP/GDL_code): attribute vectors from labelled images
//! (`attributes`, saved by `vectors_file`), and the latent points of its figures (`faces`: face
//! arithmetic, morphing, the latent histograms).
pub mod attributes;
pub mod faces;
pub mod vectors_file;
