//! `vae-tch serve`: a run folder or a sweep folder in the browser (crate::serve). Binds
//! 127.0.0.1 unless told otherwise (and warns when it is told), says the URL, serves until
//! Ctrl-C or SIGTERM, then stops cleanly: the requests in flight are answered, the models freed.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use tch::Device;

use crate::run::checkpoint::Pick;
use crate::serve::api::{router, Shared};
use crate::serve::served;
use crate::serve::worker::Worker;

pub struct ServeRequest {
    pub path: PathBuf,
    /// The data folder of the run (or of every point), where it moved.
    pub data_dir: Option<PathBuf>,
    pub host: String,
    pub port: u16,
    pub device: Device,
    pub checkpoint: Pick,
}

/// Serves until stopped; `say` is told the URL (stdout) as soon as the server listens.
pub fn run(req: &ServeRequest, say: impl Fn(&str)) -> Result<String> {
    let served = served::open(&req.path, req.checkpoint)?;
    let local = matches!(req.host.as_str(), "127.0.0.1" | "localhost" | "::1");
    if !local {
        eprintln!(
            "warning: --host {}: the server answers anyone who can reach this machine on port {}; it has no authentication",
            req.host, req.port
        );
    }
    let dirs = served.points.iter().map(|p| p.dir.clone()).collect();
    let (worker, thread) = Worker::start(dirs, req.data_dir.clone(), req.device, req.checkpoint);
    let what = format!(
        "{} {} ({} model{})",
        served.kind,
        served.path,
        served.points.len(),
        if served.points.len() == 1 { "" } else { "s" }
    );
    let shared = Arc::new(Shared { served, worker });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the server's runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((req.host.as_str(), req.port))
            .await
            .with_context(|| {
                format!(
                    "--host {} --port {}: cannot listen there",
                    req.host, req.port
                )
            })?;
        let addr = listener.local_addr()?;
        let host = if addr.is_ipv6() {
            format!("[{}]", addr.ip())
        } else {
            addr.ip().to_string()
        };
        say(&format!(
            "serving {what} at http://{host}:{}/ (Ctrl-C stops)",
            addr.port()
        ));
        axum::serve(listener, router(shared))
            .with_graceful_shutdown(stopped())
            .await
            .context("serving")
    })?;
    drop(runtime);
    let _ = thread.join();
    Ok("stopped\n".into())
}

/// Ctrl-C or SIGTERM.
async fn stopped() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
