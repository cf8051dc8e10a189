//! The training step, one thing in two forms that the loop drives alike:
//! - eager: gather the batch, forward, loss, backward, Keras Adam, add the losses to a device
//!   sum; on the CPU or CUDA;
//! - CUDA graph: the same work captured once into a CUDA graph (PyTorch's whole-network recipe,
//!   torch/cuda/graphs.py) and replayed per batch. The batch is gathered inside the graph from
//!   the device-resident training set through a static index buffer, filled by one device copy
//!   before each replay; the losses are summed into a device tensor inside the graph; the noise
//!   comes from torch's CUDA generator, which replays advance; Adam's step counter and bias
//!   corrections live on the device (`KerasAdam::new`'s device steps). A batch of another
//!   size (the last, when n % batch_size != 0) runs eagerly on the same state.
//!
//! The warm-up steps the capture needs run for real and are then undone (parameters, Adam's
//! state and the sums are restored), so a run trains the same steps whichever form runs.

use tch::{Device, Kind, Tensor};

use crate::config::{CudaGraphMode, Precision, StepForm};
use crate::data::prefetch::Prefetcher;
use crate::train::cuda_graph::{self, CudaGraph, GraphError};
use crate::train::models::{Factors, Models};
use crate::train::optim::KerasAdam;
use crate::train::precision;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(
        "--cuda-graph on needs a CUDA device (got --device {0}); use --device cuda or --cuda-graph auto"
    )]
    NotCuda(String),
    #[error("--cuda-graph on: {0}")]
    Capture(GraphError),
}

/// Warm-up steps before the capture (PyTorch's examples use 3).
const WARM_UP_STEPS: usize = 3;

/// What a step works on: the model (one, or K stacked: crate::train::models) and the training
/// images, as bytes (each batch becomes x / 255) or floats in [0, 1]: on the step's device, or
/// with `stream` on the host (CPU), each batch then prefetched and copied to the device
/// (crate::data::prefetch).
pub struct StepData<'a> {
    pub models: &'a dyn Models,
    pub images: &'a Tensor,
    /// Each model's `r_loss_factor`.
    pub r_loss_factors: Vec<f64>,
    pub stream: bool,
    /// Capture the graph with cuDNN's benchmark mode on (cuDNN times its kernels for the
    /// captured shapes and keeps the fastest); it is off again after the capture, so other
    /// shapes, such as the test pass's, are not timed. The eager step leaves it as it is.
    pub cudnn_benchmark: bool,
    /// The arithmetic of the forward pass (crate::train::precision); the step sets the
    /// process's TF32 switches to match when it is made.
    pub precision: Precision,
}

/// What a captured graph reads before each replay.
enum GraphInput {
    /// The batch's indices into the device-resident training images.
    Index(Tensor),
    /// The batch's images themselves (streamed from the host).
    Images(Tensor),
}

/// The captured graph and its static input.
struct Graphed {
    graph: CudaGraph,
    input: GraphInput,
}

impl Graphed {
    /// The batch size the graph was captured for.
    fn rows(&self) -> i64 {
        match &self.input {
            GraphInput::Index(t) | GraphInput::Images(t) => t.size()[0],
        }
    }
}

pub struct TrainStep<'a> {
    data: StepData<'a>,
    opt: KerasAdam,
    factors: Factors,
    /// Sum over the images stepped on of each model's (loss, r_loss, kl_loss), `[K, 3]` f64
    /// on the device.
    sums: Tensor,
    graphed: Option<Graphed>,
    prefetch: Option<Prefetcher>,
}

/// Queues one step's work on the batch `x` (on the device): forward, loss, backward, the
/// optimizer's update (with the host step count when `count`, else device scalars only, as
/// captured), the losses into `sums`.
fn queue_step(
    data: &StepData,
    factors: &Factors,
    opt: &mut KerasAdam,
    sums: &mut Tensor,
    x: &Tensor,
    count: bool,
) {
    let x = crate::data::to_unit_float(x);
    let (total, parts) = precision::forward(data.precision, x.device(), || {
        data.models.losses(&x, factors, true)
    });
    opt.backward(&total);
    if count {
        opt.step();
    } else {
        opt.queue_update();
    }
    let len = x.size()[0] as f64;
    tch::no_grad(|| {
        *sums += parts.detach().to_kind(Kind::Double) * len;
    });
}

impl<'a> TrainStep<'a> {
    /// The eager form.
    pub fn eager(data: StepData<'a>, opt: KerasAdam) -> TrainStep<'a> {
        let k = data.models.count();
        assert_eq!(
            data.r_loss_factors.len() as i64,
            k,
            "one r_loss_factor per model"
        );
        precision::set_tf32(data.precision);
        let factors = Factors::new(data.r_loss_factors.clone(), opt.device());
        let sums = Tensor::zeros([k, 3], (Kind::Double, opt.device()));
        let prefetch = data
            .stream
            .then(|| Prefetcher::new(data.images, opt.device()));
        TrainStep {
            data,
            opt,
            factors,
            sums,
            graphed: None,
            prefetch,
        }
    }

    /// The form `mode` asks for on the optimizer's device, for batches of `batch_size`.
    /// `auto` falls back to eager when the capture fails: the second value is the reason, to
    /// be shown once.
    pub fn new(
        data: StepData<'a>,
        opt: KerasAdam,
        batch_size: i64,
        mode: CudaGraphMode,
    ) -> Result<(TrainStep<'a>, Option<String>), StepError> {
        let device = opt.device();
        let mut step = TrainStep::eager(data, opt);
        let cuda = match device {
            Device::Cuda(i) => Some(i),
            _ => None,
        };
        match (mode, cuda) {
            (CudaGraphMode::Off, _) | (CudaGraphMode::Auto, None) => Ok((step, None)),
            (CudaGraphMode::On, None) => Err(StepError::NotCuda(crate::util::device::name(device))),
            (mode, Some(index)) => {
                // On an H200 the channels-last graph ran 1.31 against 1.56 ms/step at batch
                // 256 with it, and 3.24 against 3.92 at 1024 (gpu-check, 2026-11-28).
                tch::Cuda::cudnn_set_benchmark(step.data.cudnn_benchmark);
                let captured = step.capture(index, batch_size);
                tch::Cuda::cudnn_set_benchmark(false);
                match captured {
                    Ok(()) => Ok((step, None)),
                    Err(e) if mode == CudaGraphMode::Auto => Ok((
                        step,
                        Some(format!("{e}; training with eager steps instead")),
                    )),
                    Err(e) => Err(StepError::Capture(e)),
                }
            }
        }
    }

    /// Warm-up, capture, and undoing the warm-up's updates.
    fn capture(&mut self, device_index: usize, batch_size: i64) -> Result<(), GraphError> {
        if !cuda_graph::supported() {
            return Err(GraphError {
                what: "build",
                message: "this vae-tch was built without CUDA graph support (the CUDA runtime \
                          headers were missing; scripts/setup.sh installs them)"
                    .into(),
            });
        }
        let n = self.data.images.size()[0];
        if n < batch_size {
            return Err(GraphError {
                what: "capture",
                message: format!("{n} training images, fewer than one batch of {batch_size}"),
            });
        }
        let device = self.opt.device();
        let input = if self.data.stream {
            GraphInput::Images(self.data.images.narrow(0, 0, batch_size).to_device(device))
        } else {
            GraphInput::Index(Tensor::arange(batch_size, (Kind::Int64, device)))
        };
        // Everything a step changes: parameters, gradients, m, v, the loss sums and BatchNorm's
        // moving statistics.
        let mut state: Vec<Tensor> = self
            .opt
            .buffers()
            .iter()
            .map(|t| t.shallow_clone())
            .collect();
        state.push(self.sums.shallow_clone());
        state.extend(self.data.models.buffers());
        let saved: Vec<Tensor> = state.iter().map(|t| t.copy()).collect();
        let steps_left = self.opt.steps_left();
        let mut graph = CudaGraph::new(device_index)?;
        let (data, factors, opt, sums) = (&self.data, &self.factors, &mut self.opt, &mut self.sums);
        let captured = graph.capture(WARM_UP_STEPS, || {
            let x = match &input {
                GraphInput::Index(idx) => data.images.index_select(0, idx),
                GraphInput::Images(x) => x.shallow_clone(),
            };
            queue_step(data, factors, opt, sums, &x, false)
        });
        // Undo the warm-up (and whatever a failed capture ran) on the default stream.
        tch::no_grad(|| {
            for (dst, src) in state.iter().zip(&saved) {
                dst.shallow_clone().copy_(src);
            }
        });
        if steps_left.is_some() {
            self.opt.refill();
        }
        captured?;
        self.graphed = Some(Graphed { graph, input });
        Ok(())
    }

    pub fn form(&self) -> StepForm {
        if self.graphed.is_some() {
            StepForm::CudaGraph
        } else {
            StepForm::Eager
        }
    }

    /// Before an epoch: zero the loss sums, set the epoch's learning rates (`factor` x the
    /// configured ones), and give device scalars the epoch's steps.
    pub fn begin_epoch_at(&mut self, lr_factor: f64) {
        let _ = self.sums.zero_();
        self.opt.set_lr_factor(lr_factor);
    }

    /// `begin_epoch_at` at the configured learning rates.
    pub fn begin_epoch(&mut self) {
        self.begin_epoch_at(1.0);
    }

    /// One optimizer step on the training images at `idx` (int64, on the images' device).
    /// `next`, the following step's indices, lets a streaming step prefetch them meanwhile.
    pub fn run(&mut self, idx: &Tensor, next: Option<&Tensor>) -> Result<(), GraphError> {
        let device = self.opt.device();
        let streamed = self.prefetch.as_mut().map(|p| {
            if p.pending() == 0 {
                p.request(idx);
            }
            let batch = p.take();
            if let Some(n) = next {
                p.request(n);
            }
            // Pinned host memory: the copy does not wait for the device.
            batch.to_device_(device, batch.kind(), true, false)
        });
        let rows = idx.size()[0];
        match &mut self.graphed {
            Some(g) if g.rows() == rows => {
                if self.opt.steps_left() == Some(0) {
                    self.opt.refill();
                }
                match (&mut g.input, &streamed) {
                    (GraphInput::Images(i), Some(x)) => i.copy_(x),
                    (GraphInput::Index(i), _) => i.copy_(idx),
                    (GraphInput::Images(_), None) => {
                        unreachable!("a streamed graph has a prefetcher")
                    }
                }
                g.graph.replay()?;
                self.opt.count_replayed_step();
            }
            _ => {
                // Eager (or a batch of another size): gather here unless streamed.
                let x = streamed.unwrap_or_else(|| self.data.images.index_select(0, idx));
                queue_step(
                    &self.data,
                    &self.factors,
                    &mut self.opt,
                    &mut self.sums,
                    &x,
                    true,
                )
            }
        }
        Ok(())
    }

    /// Sum over this epoch's images of each model's (loss, r_loss, kl_loss), `[K, 3]` on the
    /// device.
    pub fn sums(&self) -> &Tensor {
        &self.sums
    }

    pub fn optimizer(&self) -> &KerasAdam {
        &self.opt
    }

    /// The models, images and loss weights the step trains on.
    pub fn data(&self) -> &StepData<'a> {
        &self.data
    }

    /// The loss weights, on the host and the device.
    pub fn factors(&self) -> &Factors {
        &self.factors
    }
}
