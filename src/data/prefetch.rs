//! Streaming batches from host memory (`--stream-data`): a thread gathers the next batch's images
//! from the host tensor (an image folder's memory-mapped cache) into pinned memory while the
//! current step runs on the GPU. The step then copies it to the device without blocking
//! (`to_device_(.., non_blocking = true)`, which pinned memory allows). Requests and batches come
//! back in order.
use std::sync::mpsc::{channel, Receiver, Sender};
use std::thread::JoinHandle;

use tch::{Device, Tensor};

pub struct Prefetcher {
    requests: Option<Sender<Tensor>>,
    batches: Receiver<Tensor>,
    pending: usize,
    worker: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Gathers from `host` (a CPU tensor); pins the batches when they are bound for CUDA.
    pub fn new(host: &Tensor, target: Device) -> Prefetcher {
        let (req_tx, req_rx) = channel::<Tensor>();
        let (out_tx, out_rx) = channel::<Tensor>();
        let host = host.shallow_clone();
        let pin = target.is_cuda();
        let worker = std::thread::spawn(move || {
            for idx in req_rx {
                let batch = host.index_select(0, &idx);
                let batch = if pin { batch.pin_memory(target) } else { batch };
                if out_tx.send(batch).is_err() {
                    break;
                }
            }
        });
        Prefetcher {
            requests: Some(req_tx),
            batches: out_rx,
            pending: 0,
            worker: Some(worker),
        }
    }

    /// Asks for the images at `idx` (int64 on the CPU).
    pub fn request(&mut self, idx: &Tensor) {
        let sent = self
            .requests
            .as_ref()
            .is_some_and(|tx| tx.send(idx.shallow_clone()).is_ok());
        assert!(sent, "the prefetch thread stopped");
        self.pending += 1;
    }

    /// The oldest requested batch (waits for it).
    pub fn take(&mut self) -> Tensor {
        assert!(self.pending > 0, "take without a request");
        self.pending -= 1;
        self.batches.recv().expect("the prefetch thread stopped")
    }

    /// Batches requested and not taken yet.
    pub fn pending(&self) -> usize {
        self.pending
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.requests = None; // ends the worker's loop
        while self.batches.try_recv().is_ok() {}
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}
