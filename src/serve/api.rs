//! The HTTP side: the page at `/` and the JSON API the page (and anyone) calls. No route takes a
//! path on disk: a request names a point by its index and an image by its test index.
//!
//! - `GET /api/info`: what is served (a run, or a sweep's points with values and nats);
//! - `GET /api/model?point=P`: a model's latent size, classes, slider dimensions, attributes;
//! - `GET /api/scatter?point=P`: the latent means of the test images and the bounds (2-D);
//! - `GET /api/manifold?point=P&n=N`: an N x N grid of decodes over those bounds (PNG);
//! - `GET /api/image?point=P&index=I`: test image I (PNG);
//! - `POST /api/decode {"z": [...], "point": P}`: the decode of z (PNG);
//! - `POST /api/encode {"index": I, "point": P}`: test image I's latent mean and label;
//! - `POST /api/reconstruct {"index": I, "point": P}`: the decode of that mean (PNG).
//!
//! `point` defaults to 0. A bad request gets 400 and `{"error": "..."}`; an unknown path 404.
// A handler's early answer is the Response itself (axum's own pattern); its size is no cost here.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use axum::body::{to_bytes, Body as HttpBody};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::explorer::{About, Explorer};
use super::served::Served;
use super::worker::{Body, Failure, Reply, Worker};

/// The largest request body: a 200-D z as JSON is about 5 KB.
pub const MAX_BODY: usize = 64 * 1024;
/// A body over MAX_BODY is still read up to this size before the 400, so that a client still
/// sending it gets the answer rather than a reset connection (a longer one is cut off).
const READ_LIMIT: usize = 1024 * 1024;
/// The largest latent point a decode takes, in any coordinate (the prior's mass is within 5).
pub const MAX_COORDINATE: f32 = 1e4;

pub struct Shared {
    pub served: Served,
    pub worker: Worker,
}

type App = State<Arc<Shared>>;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(super::PAGE) }))
        .route("/api/info", get(info))
        .route("/api/model", get(model))
        .route("/api/scatter", get(scatter))
        .route("/api/manifold", get(manifold))
        .route("/api/image", get(image))
        .route("/api/decode", post(decode))
        .route("/api/encode", post(encode))
        .route("/api/reconstruct", post(reconstruct))
        .fallback(|uri: Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                format!("no such page: {}", uri.path()),
            )
        })
        .with_state(shared)
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

fn bad(message: impl Into<String>) -> Response {
    error(StatusCode::BAD_REQUEST, message.into())
}

fn respond(reply: Reply) -> Response {
    match reply {
        Ok(Body::Png(bytes)) => ([(header::CONTENT_TYPE, "image/png")], bytes).into_response(),
        Ok(Body::Json(v)) => axum::Json(v).into_response(),
        Err(Failure::Bad(m)) => bad(m),
        Err(Failure::Failed(m)) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

/// The JSON body of a POST, at most MAX_BODY bytes.
async fn json_body<T: DeserializeOwned>(body: HttpBody) -> Result<T, Response> {
    let too_big = || bad(format!("the request body is over {} KiB", MAX_BODY / 1024));
    let bytes = to_bytes(body, READ_LIMIT).await.map_err(|_| too_big())?;
    if bytes.len() > MAX_BODY {
        return Err(too_big());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| bad(format!("the body is not the JSON expected: {e}")))
}

fn query<T>(q: Result<Query<T>, axum::extract::rejection::QueryRejection>) -> Result<T, Response> {
    q.map(|Query(t)| t).map_err(|e| bad(e.body_text()))
}

/// The point a request names, checked against what is served.
fn point(app: &Shared, p: Option<usize>) -> Result<usize, Response> {
    let p = p.unwrap_or(0);
    let n = app.served.points.len();
    if p >= n {
        return Err(bad(format!("point {p}: there are {n} (0..{n})")));
    }
    Ok(p)
}

fn index_reply(found: Option<Reply>, index: i64, about: &About) -> Reply {
    let n = about.test_images;
    found.unwrap_or_else(|| {
        Err(Failure::Bad(match &about.data_note {
            Some(why) => format!("index {index}: no test images ({why})"),
            None => format!("index {index}: the test split has {n} images (0..{n})"),
        }))
    })
}

async fn info(State(app): App) -> Response {
    axum::Json(&app.served).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PointQuery {
    point: Option<usize>,
}

type QueryResult<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

/// Unwraps a handler's early answer.
fn either(r: Result<Response, Response>) -> Response {
    r.unwrap_or_else(|e| e)
}

async fn model(State(app): App, q: QueryResult<PointQuery>) -> Response {
    either(
        async {
            let p = point(&app, query(q)?.point)?;
            let reply = app
                .worker
                .run(p, |m| {
                    Ok(Body::Json(serde_json::to_value(&m.about).expect("JSON")))
                })
                .await;
            Ok(respond(reply))
        }
        .await,
    )
}

async fn scatter(State(app): App, q: QueryResult<PointQuery>) -> Response {
    either(
        async {
            let p = point(&app, query(q)?.point)?;
            let reply = app
                .worker
                .run(p, |m| match m.scatter() {
                    Some(s) => Ok(Body::Json(serde_json::to_value(s).expect("JSON"))),
                    None => Err(Failure::Bad(format!(
                        "this model's latent space has {} dimensions: a scatter is of a 2-D one",
                        m.about.latent_dim
                    ))),
                })
                .await;
            Ok(respond(reply))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifoldQuery {
    point: Option<usize>,
    n: Option<i64>,
}

async fn manifold(State(app): App, q: QueryResult<ManifoldQuery>) -> Response {
    either(
        async {
            let q = query(q)?;
            let p = point(&app, q.point)?;
            let n = q.n.unwrap_or(20);
            if !(2..=64).contains(&n) {
                return Err(bad(format!("n {n}: a manifold has 2 to 64 points a side")));
            }
            let reply = app
                .worker
                .run(p, move |m| {
                    m.manifold(n)
                        .map(Body::Png)
                        .ok_or_else(|| Failure::Bad("a manifold is of a 2-D latent space".into()))
                })
                .await;
            Ok(respond(reply))
        }
        .await,
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexRequest {
    point: Option<usize>,
    index: i64,
}

async fn image(State(app): App, q: QueryResult<IndexRequest>) -> Response {
    either(
        async {
            let q = query(q)?;
            let p = point(&app, q.point)?;
            let i = q.index;
            let reply = app
                .worker
                .run(p, move |m| {
                    index_reply(m.image_png(i).map(|b| Ok(Body::Png(b))), i, &m.about)
                })
                .await;
            Ok(respond(reply))
        }
        .await,
    )
}

/// A POST naming a test image: `answer` makes the reply of its latent mean and label.
async fn of_encoded(
    app: &Shared,
    body: HttpBody,
    answer: fn(&Explorer, Vec<f32>, i64) -> Body,
) -> Response {
    either(
        async {
            let q: IndexRequest = json_body(body).await?;
            let p = point(app, q.point)?;
            let i = q.index;
            let reply = app
                .worker
                .run(p, move |m| {
                    let found = m.encode(i).map(|(z, label)| Ok(answer(m, z, label)));
                    index_reply(found, i, &m.about)
                })
                .await;
            Ok(respond(reply))
        }
        .await,
    )
}

async fn encode(State(app): App, body: HttpBody) -> Response {
    of_encoded(&app, body, |m, z, label| {
        let class = m.about.classes.get(label as usize).cloned();
        Body::Json(serde_json::json!({ "z": z, "label": label, "class": class }))
    })
    .await
}

async fn reconstruct(State(app): App, body: HttpBody) -> Response {
    of_encoded(&app, body, |m, z, _| {
        let n = z.len() as i64;
        let image = m.model.decode(&tch::Tensor::from_slice(&z).view([1, n]));
        Body::Png(super::explorer::png(&image))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecodeRequest {
    point: Option<usize>,
    z: Vec<f64>,
}

async fn decode(State(app): App, body: HttpBody) -> Response {
    either(async {
        let q: DecodeRequest = json_body(body).await?;
        let p = point(&app, q.point)?;
        let latent = app.served.points[p].latent_dim as usize;
        if q.z.len() != latent {
            return Err(bad(format!(
                "z has {} numbers; this model's latent space has {latent}",
                q.z.len()
            )));
        }
        let mut z = Vec::with_capacity(latent);
        for (i, &v) in q.z.iter().enumerate() {
            let f = v as f32;
            if !f.is_finite() || f.abs() > MAX_COORDINATE {
                return Err(bad(format!(
                    "z[{i}] = {v}: each coordinate must be a finite number within +-{MAX_COORDINATE}"
                )));
            }
            z.push(f);
        }
        Ok(respond(app.worker.decode(p, z).await))
    }
    .await)
}
