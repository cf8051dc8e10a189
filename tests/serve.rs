//! `vae-tch serve` over HTTP: the binary started on a free port, every endpoint checked against
//! the library's own encode and decode of the same checkpoint, each kind of bad request answered
//! 400 with the server still serving, 200 concurrent decodes each given its own image, a sweep
//! folder's points, and a clean stop on Ctrl-C.
mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use tch::{Device, Kind, Tensor};
use vae_tch::run::checkpoint;
use vae_tch::train::inference::Inference;

struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(path: &Path) -> Server {
        Server::start_in(path, Path::new("."))
    }

    fn start_in(path: &Path, cwd: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_vae-tch"))
            .current_dir(cwd)
            .args([
                "serve",
                path.to_str().unwrap(),
                "--port",
                "0",
                "--device",
                "cpu",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting vae-tch serve");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server { child, url }
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        answer(ureq::get(&format!("{}{path}", self.url)).call())
    }

    fn post(&self, path: &str, body: &str) -> (u16, Vec<u8>) {
        answer(
            ureq::post(&format!("{}{path}", self.url))
                .set("content-type", "application/json")
                .send_string(body),
        )
    }

    fn json(&self, path: &str) -> serde_json::Value {
        let (status, body) = self.get(path);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// Ctrl-C, then the exit status and the rest of stdout.
    fn interrupt(mut self) -> (std::process::ExitStatus, String) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut rest)
            .unwrap();
        (status, rest)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, Vec<u8>) {
    let resp = match r {
        Ok(resp) => resp,
        Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    let mut body = Vec::new();
    resp.into_reader().read_to_end(&mut body).unwrap();
    (status, body)
}

/// The pixels of a PNG as RGB bytes, with its size.
fn pixels(png: &[u8]) -> (u32, u32, Vec<u8>) {
    let img = image::load_from_memory(png).expect("a PNG").to_rgb8();
    (img.width(), img.height(), img.into_raw())
}

/// The decode of `z` by the library, as the PNG's RGB bytes would hold it.
fn library_decode(model: &Inference, z: &[f32]) -> Vec<u8> {
    let img = model.decode(&Tensor::from_slice(z).view([1, z.len() as i64]));
    let grey = (img.clamp(0.0, 1.0) * 255.0).round().to_kind(Kind::Uint8);
    let [_, c, h, w] = grey.size()[..] else {
        unreachable!()
    };
    let chw = grey.view([c, h, w]);
    let hwc = if c == 1 {
        chw.expand([3, h, w], false)
    } else {
        chw
    }
    .permute([1, 2, 0]);
    Vec::<u8>::try_from(&hwc.contiguous().view(-1)).unwrap()
}

/// The largest difference between two byte images.
fn max_diff(a: &[u8], b: &[u8]) -> u8 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| x.abs_diff(*y))
        .max()
        .unwrap_or(0)
}

fn error_of(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    v["error"].as_str().expect("an error message").to_string()
}

#[test]
fn every_endpoint_answers_as_the_library_does_and_bad_requests_get_400() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 64, 24, 1, 2);
    let model = Inference::new(
        &checkpoint::load_model(&run, Device::Cpu).unwrap(),
        Device::Cpu,
    );
    let server = Server::start(&run);

    let (status, page) = server.get("/");
    assert_eq!(status, 200);
    let page = String::from_utf8(page).unwrap();
    assert!(page.contains("<title>vae-tch serve</title>"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page fetches nothing from elsewhere"
    );

    let info = server.json("/api/info");
    assert_eq!(info["kind"], "run");
    assert_eq!(info["points"][0]["latent_dim"], 2);

    let about = server.json("/api/model");
    assert_eq!(about["test_images"], 24);
    assert_eq!(about["latent_dim"], 2);
    assert_eq!(about["dims"].as_array().unwrap().len(), 2);

    // The scatter: each test image's latent mean, inside the bounds.
    let scatter = server.json("/api/scatter");
    let points = scatter["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    let b: Vec<f64> = serde_json::from_value(scatter["bounds"].clone()).unwrap();
    let split = vae_tch::data::open(&model.model.config, &tmp.path().join("data"), true)
        .unwrap()
        .test;
    let (mu, _) = model.encode(&split.images, |_| ());
    for (i, p) in points.iter().enumerate() {
        let (x, y) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
        assert!((x - mu.double_value(&[i as i64, 0])).abs() < 1e-5);
        assert!((y - mu.double_value(&[i as i64, 1])).abs() < 1e-5);
        assert!(b[0] < x && x < b[1] && b[2] < y && y < b[3]);
        assert_eq!(
            p[2].as_f64().unwrap() as i64,
            split.labels.int64_value(&[i as i64])
        );
    }

    // A decode is the library's decode of the same z.
    let z = [0.7f32, -1.3];
    let (status, png) = server.post("/api/decode", r#"{"z": [0.7, -1.3]}"#);
    assert_eq!(status, 200);
    let (w, h, px) = pixels(&png);
    let [_, mh, mw] = model.model.config.model.input_shape.map(|v| v as u32);
    assert_eq!((w, h), (mw, mh));
    assert!(max_diff(&px, &library_decode(&model, &z)) <= 1);

    // Encode and reconstruct test image 5; the image itself.
    let enc: serde_json::Value =
        serde_json::from_slice(&server.post("/api/encode", r#"{"index": 5}"#).1).unwrap();
    let z5: Vec<f32> = serde_json::from_value(enc["z"].clone()).unwrap();
    assert!((z5[0] as f64 - mu.double_value(&[5, 0])).abs() < 1e-5);
    assert_eq!(
        enc["label"].as_i64().unwrap(),
        split.labels.int64_value(&[5])
    );
    let (status, png) = server.post("/api/reconstruct", r#"{"index": 5}"#);
    assert_eq!(status, 200);
    assert!(max_diff(&pixels(&png).2, &library_decode(&model, &z5)) <= 1);
    let (status, png) = server.get("/api/image?index=5");
    assert_eq!(status, 200);
    let original = Vec::<u8>::try_from(&split.images.get(5).contiguous().view(-1)).unwrap();
    let shown: Vec<u8> = pixels(&png).2.chunks(3).map(|p| p[0]).collect();
    assert_eq!(shown, original, "the test image, byte for byte");

    // The manifold: n x n cells of the model's size, the top-left cell the decode at its centre.
    let (status, png) = server.get("/api/manifold?n=4");
    assert_eq!(status, 200);
    let (gw, gh, grid) = pixels(&png);
    assert_eq!((gw, gh), (4 * mw, 4 * mh));
    let centre = |lo: f64, hi: f64, i: f64| (lo + (i + 0.5) * (hi - lo) / 4.0) as f32;
    let corner = library_decode(&model, &[centre(b[0], b[1], 0.0), centre(b[2], b[3], 3.0)]);
    let first: Vec<u8> = (0..mh as usize)
        .flat_map(|y| grid[y * gw as usize * 3..(y * gw as usize + mw as usize) * 3].to_vec())
        .collect();
    assert!(
        max_diff(&first, &corner) <= 1,
        "the top-left cell is (x min, y max)"
    );

    // Bad requests: 400 with a message that says what was wrong.
    let huge = format!(r#"{{"z": [{}0.1]}}"#, "0.1, ".repeat(20_000));
    for (path, body, says) in [
        ("/api/decode", "{\"z\": [0.1", "not the JSON expected"),
        ("/api/decode", r#"{"z": [0.1, 0.2, 0.3]}"#, "3 numbers"),
        ("/api/decode", r#"{"z": [NaN, 0]}"#, "not the JSON expected"),
        (
            "/api/decode",
            r#"{"z": [1e999, 0]}"#,
            "not the JSON expected",
        ),
        ("/api/decode", r#"{"z": [1e30, 0]}"#, "finite number"),
        ("/api/decode", r#"{"z": [0, 0], "point": 3}"#, "point 3"),
        (
            "/api/decode",
            r#"{"z": [0, 0], "path": "/etc/passwd"}"#,
            "unknown field",
        ),
        ("/api/decode", huge.as_str(), "over 64 KiB"),
        ("/api/encode", r#"{"index": 24}"#, "has 24 images"),
        ("/api/reconstruct", r#"{"index": -1}"#, "has 24 images"),
    ] {
        let (status, answer) = server.post(path, body);
        assert_eq!(status, 400, "{path} {}", &body[..body.len().min(60)]);
        let message = error_of(&answer);
        assert!(
            message.contains(says),
            "{path}: {message:?} should say {says:?}"
        );
    }
    for (path, status) in [
        ("/api/image?index=99", 400),
        ("/api/image?index=../../etc/passwd", 400),
        ("/api/manifold?n=1000", 400),
        ("/api/nothing", 404),
        ("/static/../../etc/passwd", 404),
        ("/%2e%2e/%2e%2e/etc/passwd", 404),
    ] {
        let (got, answer) = server.get(path);
        assert_eq!(got, status, "{path}");
        assert!(!error_of(&answer).is_empty());
    }
    // Still serving, the same image for the same z.
    let (status, again) = server.post("/api/decode", r#"{"z": [0.7, -1.3]}"#);
    assert_eq!(status, 200);
    assert!(max_diff(&pixels(&again).2, &library_decode(&model, &z)) <= 1);

    let (status, rest) = server.interrupt();
    assert!(status.success(), "Ctrl-C ends serve cleanly: {status:?}");
    assert!(rest.contains("stopped"), "{rest}");
}

#[test]
fn two_hundred_concurrent_decodes_each_get_their_own_image() {
    let tmp = tempfile::tempdir().unwrap();
    let run = common::train_tiny_run(tmp.path(), 64, 8, 1, 2);
    let model = Inference::new(
        &checkpoint::load_model(&run, Device::Cpu).unwrap(),
        Device::Cpu,
    );
    let server = Server::start(&run);
    let z_of = |i: usize| {
        let a = i as f32 * 0.37;
        [2.5 * a.cos(), 2.5 * a.sin() * (1.0 + i as f32 / 200.0)]
    };
    let url = server.url.clone();
    let answers: Vec<(usize, Vec<u8>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..200)
            .map(|i| {
                let url = url.clone();
                s.spawn(move || {
                    let z = z_of(i);
                    let body = format!(r#"{{"z": [{}, {}]}}"#, z[0], z[1]);
                    let (status, png) = answer(
                        ureq::post(&format!("{url}/api/decode"))
                            .set("content-type", "application/json")
                            .send_string(&body),
                    );
                    assert_eq!(status, 200);
                    (i, png)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers.len(), 200);
    let mut distinct = std::collections::HashSet::new();
    for (i, png) in answers {
        let px = pixels(&png).2;
        assert!(
            max_diff(&px, &library_decode(&model, &z_of(i))) <= 1,
            "request {i} got another z's image"
        );
        distinct.insert(px);
    }
    assert!(
        distinct.len() > 150,
        "the z's decode to different images: {}",
        distinct.len()
    );
}

#[test]
fn a_sweep_folder_serves_each_point_with_its_values_and_nats() {
    let tmp = tempfile::tempdir().unwrap();
    common::write_synthetic(&tmp.path().join("data"), 24, 8);
    std::fs::write(
        tmp.path().join("s.toml"),
        "[train]\nbatch_size = 8\nreconstruction_every = 0\nepochs = 1\n[axes]\n\"model.latent_dim\" = [2, 3]\n",
    )
    .unwrap();
    let o = common::vae_tch(
        &[&common::SWEEP_RUN[..], &["--out", "sw"]].concat(),
        tmp.path(),
    );
    assert!(o.status.success(), "{}", common::text(&o));
    let server = Server::start_in(Path::new("sw"), tmp.path());
    let info = server.json("/api/info");
    assert_eq!(info["kind"], "sweep");
    assert_eq!(info["keys"][0], "model.latent_dim");
    let points = info["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for (p, dim) in points.iter().zip([2, 3]) {
        assert_eq!(p["values"][0][1], dim.to_string());
        assert_eq!(p["latent_dim"], dim);
        assert!(p["neg_elbo_nats"].as_f64().is_some_and(|n| n > 0.0), "{p}");
    }
    // Each point decodes with its own model: a z of its own length, and only that.
    assert_eq!(
        server.post("/api/decode", r#"{"z": [0, 0], "point": 0}"#).0,
        200
    );
    assert_eq!(
        server
            .post("/api/decode", r#"{"z": [0, 0, 0], "point": 1}"#)
            .0,
        200
    );
    let (status, body) = server.post("/api/decode", r#"{"z": [0, 0], "point": 1}"#);
    assert_eq!(status, 400);
    assert!(error_of(&body).contains("latent space has 3"));
    let third = server.json("/api/model?point=1");
    assert_eq!(third["latent_dim"], 3);
    assert_eq!(third["dims"].as_array().unwrap().len(), 3);
    assert_eq!(
        server.get("/api/scatter?point=1").0,
        400,
        "no scatter of a 3-D latent"
    );
}

#[test]
fn serve_refuses_a_folder_that_is_neither_run_nor_sweep_and_a_missing_best_at_the_start() {
    let tmp = tempfile::tempdir().unwrap();
    let o = common::vae_tch(&["serve", ".", "--port", "0"], tmp.path());
    assert!(!o.status.success());
    assert!(
        common::text(&o).contains("not a vae-tch run folder (no config.toml) nor a sweep folder")
    );
    // --best on a run without best/: refused at the start, naming it, not at the first request.
    let run = common::train_tiny_run(tmp.path(), 16, 8, 1, 2);
    std::fs::remove_dir_all(run.join("best")).unwrap();
    let o = common::vae_tch(
        &["serve", run.to_str().unwrap(), "--port", "0", "--best"],
        tmp.path(),
    );
    let t = common::text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("no best checkpoint"), "{t}");
}
