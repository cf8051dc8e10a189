//! `vae-tch serve`: a run folder or a sweep folder explored in the browser. One page embedded in
//! the binary (page.html: no CDN, works offline), a JSON API over axum (api.rs), and one thread
//! that owns the models and decodes every request in order, batching those that wait (worker.rs).
//! What is served (a run, or a sweep's points with their values and nats) is read in served.rs;
//! what the page needs of one model (its scatter, its dimensions of largest variance, its
//! attribute vectors) in explorer.rs.
pub mod api;
pub mod explorer;
pub mod served;
pub mod worker;

/// The page, embedded at build time.
pub const PAGE: &str = include_str!("page.html");
