//! The downloader against a local HTTP server on 127.0.0.1: a good download, a checksum
//! mismatch (rejected, nothing half-written left), and a server that never answers (timeout).
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};
use vae_tch::data::fetch::{fetch_remote, FetchError, FetchOptions, Remote};
use vae_tch::data::idx;

enum Mode {
    Serve(Vec<u8>),
    Silent,
}

/// Serves `mode` to every connection for as long as the test runs; returns the base URL.
fn server(mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { break };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            match &mode {
                Mode::Serve(body) => {
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(body);
                }
                // Hold the connection open and say nothing until the client gives up.
                Mode::Silent => std::thread::sleep(Duration::from_secs(5)),
            }
        }
    });
    base
}

fn md5_hex(b: &[u8]) -> String {
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

fn quick() -> FetchOptions {
    FetchOptions {
        connect_timeout: Duration::from_millis(500),
        read_timeout: Duration::from_millis(300),
        attempts: 2,
        retry_delay: Duration::from_millis(10),
        offline_only: false,
        install_packages: false,
    }
}

fn only_file_left(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into())
        .collect();
    v.sort();
    v
}

fn body() -> Vec<u8> {
    idx::gzip(&idx::encode(&[1, 28, 28], &[7u8; 784]))
}

#[test]
fn good_download_is_verified_and_written() {
    let b = body();
    let base = server(Mode::Serve(b.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote {
        mirrors: vec![base.clone()],
        files: vec![("x.gz".into(), md5_hex(&b))],
    };
    let used = fetch_remote(&remote, tmp.path(), &quick()).unwrap();
    assert_eq!(used, base);
    assert_eq!(std::fs::read(tmp.path().join("x.gz")).unwrap(), b);
    assert_eq!(
        idx::read_images(&tmp.path().join("x.gz"), 28, 28, None)
            .unwrap()
            .data,
        vec![7u8; 784]
    );
    assert_eq!(only_file_left(tmp.path()), ["x.gz"]);
}

#[test]
fn checksum_mismatch_is_rejected_and_nothing_is_left_behind() {
    let b = body();
    let base = server(Mode::Serve(b.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let wrong = "0123456789abcdef0123456789abcdef".to_string();
    let remote = Remote {
        mirrors: vec![base],
        files: vec![("x.gz".into(), wrong.clone())],
    };
    let err = fetch_remote(&remote, tmp.path(), &quick()).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, FetchError::AllMirrorsFailed { .. }), "{text}");
    assert!(
        text.contains("checksum mismatch") && text.contains(&wrong) && text.contains(&md5_hex(&b)),
        "{text}"
    );
    assert!(
        only_file_left(tmp.path()).is_empty(),
        "left: {:?}",
        only_file_left(tmp.path())
    );
}

#[test]
fn silent_server_times_out_and_the_next_mirror_serves() {
    let b = body();
    let silent = server(Mode::Silent);
    let good = server(Mode::Serve(b.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let opts = quick();

    let remote = Remote {
        mirrors: vec![silent.clone()],
        files: vec![("x.gz".into(), md5_hex(&b))],
    };
    let t0 = Instant::now();
    let err = fetch_remote(&remote, tmp.path(), &opts)
        .unwrap_err()
        .to_string();
    let took = t0.elapsed();
    assert!(err.contains("try 1") && err.contains("try 2"), "{err}");
    assert!(
        err.to_lowercase().contains("timed out") || err.to_lowercase().contains("timeout"),
        "{err}"
    );
    assert!(took < Duration::from_secs(3), "gave up after {took:?}");
    assert!(only_file_left(tmp.path()).is_empty());

    let remote = Remote {
        mirrors: vec![silent, good.clone()],
        files: vec![("x.gz".into(), md5_hex(&b))],
    };
    assert_eq!(fetch_remote(&remote, tmp.path(), &opts).unwrap(), good);
    assert_eq!(std::fs::read(tmp.path().join("x.gz")).unwrap(), b);
}

#[test]
fn unreachable_mirror_fails_fast() {
    // A port nobody listens on: connection refused at once.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tmp = tempfile::tempdir().unwrap();
    let remote = Remote {
        mirrors: vec![format!("http://127.0.0.1:{port}/")],
        files: vec![("x.gz".into(), "0".repeat(32))],
    };
    let t0 = Instant::now();
    assert!(fetch_remote(&remote, tmp.path(), &quick()).is_err());
    assert!(t0.elapsed() < Duration::from_secs(2));
}
