//! The thread that owns the models (libtorch modules are not shared between threads): requests
//! arrive on a channel and are served in order, except that decodes waiting together for the
//! same model are decoded as one batch (the same numbers as one by one, one forward pass). A
//! model loads the first time a request names it and stays.
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;

use tch::{Device, Tensor};
use tokio::sync::oneshot;

use super::explorer::{self, Explorer};
use crate::run::checkpoint::Pick;

/// Decodes batched at most together.
const MAX_BATCH: usize = 256;

/// A reply: the PNG or JSON body, or a message for the client (400) or of a failure (500).
pub type Reply = Result<Body, Failure>;

#[derive(Debug)]
pub enum Body {
    Png(Vec<u8>),
    Json(serde_json::Value),
}

#[derive(Debug, Clone)]
pub enum Failure {
    /// The request was wrong (400).
    Bad(String),
    /// The server could not do it (500): a model that does not load, a libtorch error.
    Failed(String),
}

type Task = Box<dyn FnOnce(&Explorer) -> Reply + Send>;
/// Decodes of one model waiting together: each z and where its answer goes.
type Waiting = Vec<(Vec<f32>, oneshot::Sender<Reply>)>;

pub enum Job {
    /// Decode latent point `z` of point `point`'s model to a PNG.
    Decode {
        point: usize,
        z: Vec<f32>,
        reply: oneshot::Sender<Reply>,
    },
    /// Anything else on point `point`'s model.
    Run {
        point: usize,
        task: Task,
        reply: oneshot::Sender<Reply>,
    },
}

/// The worker's handle: send jobs; dropping every handle ends the thread.
#[derive(Clone)]
pub struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Starts the thread for the models in `dirs` (by point index).
    pub fn start(
        dirs: Vec<PathBuf>,
        data_dir: Option<PathBuf>,
        device: Device,
        pick: Pick,
    ) -> (Worker, std::thread::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("vae-tch-models".into())
            .spawn(move || {
                serve_jobs(
                    rx,
                    Models {
                        dirs,
                        data_dir,
                        device,
                        pick,
                        loaded: HashMap::new(),
                    },
                )
            })
            .expect("spawning the model thread");
        (Worker { jobs: tx }, handle)
    }

    async fn ask(&self, make: impl FnOnce(oneshot::Sender<Reply>) -> Job) -> Reply {
        let (tx, rx) = oneshot::channel();
        if self.jobs.send(make(tx)).is_err() {
            return Err(Failure::Failed("the model thread has stopped".into()));
        }
        rx.await.unwrap_or_else(|_| {
            Err(Failure::Failed(
                "the model thread dropped the request (a panic in libtorch?)".into(),
            ))
        })
    }

    pub async fn decode(&self, point: usize, z: Vec<f32>) -> Reply {
        self.ask(|reply| Job::Decode { point, z, reply }).await
    }

    pub async fn run(
        &self,
        point: usize,
        task: impl FnOnce(&Explorer) -> Reply + Send + 'static,
    ) -> Reply {
        self.ask(|reply| Job::Run {
            point,
            task: Box::new(task),
            reply,
        })
        .await
    }
}

struct Models {
    dirs: Vec<PathBuf>,
    data_dir: Option<PathBuf>,
    device: Device,
    pick: Pick,
    loaded: HashMap<usize, Result<Explorer, String>>,
}

impl Models {
    fn get(&mut self, point: usize) -> Result<&Explorer, Failure> {
        let Some(dir) = self.dirs.get(point) else {
            return Err(Failure::Bad(format!(
                "no point {point}: there are {} (0..{})",
                self.dirs.len(),
                self.dirs.len()
            )));
        };
        let (device, pick) = (self.device, self.pick);
        let data_dir = self.data_dir.as_deref();
        let entry = self.loaded.entry(point).or_insert_with(|| {
            eprintln!("loading the model of {}", dir.display());
            Explorer::load(dir, data_dir, device, pick)
                .map_err(|e| format!("{}: {e:#}", dir.display()))
        });
        entry.as_ref().map_err(|e| Failure::Failed(e.clone()))
    }
}

fn serve_jobs(rx: mpsc::Receiver<Job>, mut models: Models) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Decodes by model, in arrival order; everything else in order after them.
        let mut decodes: Vec<(usize, Waiting)> = Vec::new();
        let mut others = Vec::new();
        for job in jobs {
            match job {
                Job::Decode { point, z, reply } => {
                    match decodes.iter_mut().find(|(p, _)| *p == point) {
                        Some((_, list)) => list.push((z, reply)),
                        None => decodes.push((point, vec![(z, reply)])),
                    }
                }
                Job::Run { point, task, reply } => others.push((point, task, reply)),
            }
        }
        for (point, list) in decodes {
            decode_batch(&mut models, point, list);
        }
        for (point, task, reply) in others {
            let answer = models.get(point).and_then(|m| guarded(|| task(m)));
            let _ = reply.send(answer);
        }
    }
}

/// Runs `f`, a libtorch error (a panic in tch) becoming a 500 instead of the thread's end.
fn guarded(f: impl FnOnce() -> Reply) -> Reply {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let what = p
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| p.downcast_ref::<&str>().copied())
            .unwrap_or("a panic");
        Err(Failure::Failed(format!(
            "libtorch failed: {}",
            what.lines().next().unwrap_or("")
        )))
    })
}

fn decode_batch(models: &mut Models, point: usize, list: Waiting) {
    let model = match models.get(point) {
        Ok(m) => m,
        Err(e) => {
            for (_, reply) in list {
                let _ = reply.send(Err(e.clone()));
            }
            return;
        }
    };
    let latent = model.model.latent_dim() as usize;
    let (good, wrong): (Vec<_>, Vec<_>) = list.into_iter().partition(|(z, _)| z.len() == latent);
    for (z, reply) in wrong {
        let _ = reply.send(Err(Failure::Bad(format!(
            "z has {} numbers; this model's latent space has {latent}",
            z.len()
        ))));
    }
    if good.is_empty() {
        return;
    }
    let flat: Vec<f32> = good.iter().flat_map(|(z, _)| z.iter().copied()).collect();
    let n = good.len() as i64;
    let decoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        model
            .model
            .decode(&Tensor::from_slice(&flat).view([n, latent as i64]))
    }));
    match decoded {
        Ok(images) => {
            for (i, (_, reply)) in good.into_iter().enumerate() {
                let png = explorer::png(&images.narrow(0, i as i64, 1));
                let _ = reply.send(Ok(Body::Png(png)));
            }
        }
        Err(_) => {
            for (_, reply) in good {
                let _ = reply.send(Err(Failure::Failed("libtorch failed decoding".into())));
            }
        }
    }
}
