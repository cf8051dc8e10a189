//! CUDA graphs from Rust: a thin owner of `csrc/cuda_graph.cpp`, a C ABI around
//! `at::cuda::CUDAGraph` (tch has no binding). The capture runs on a side stream taken from
//! libtorch's pool, into the graph's private memory pool, following PyTorch's whole-network
//! recipe (torch/cuda/graphs.py): warm up on the side stream, capture there, replay anywhere.
use std::ffi::{c_char, c_int, c_void, CStr};

extern "C" {
    fn vae_tch_cuda_graph_supported() -> c_int;
    fn vae_tch_cuda_free_memory(device: c_int) -> std::os::raw::c_longlong;
    fn vae_tch_cuda_graph_new(device: c_int, out: *mut *mut c_void) -> *const c_char;
    fn vae_tch_cuda_graph_side_begin(g: *mut c_void) -> *const c_char;
    fn vae_tch_cuda_graph_side_end(g: *mut c_void) -> *const c_char;
    fn vae_tch_cuda_graph_capture_begin(g: *mut c_void) -> *const c_char;
    fn vae_tch_cuda_graph_capture_end(g: *mut c_void) -> *const c_char;
    fn vae_tch_cuda_graph_replay(g: *mut c_void) -> *const c_char;
    fn vae_tch_cuda_graph_free(g: *mut c_void);
}

#[derive(Debug, thiserror::Error)]
#[error("CUDA graph: {what}: {message}")]
pub struct GraphError {
    pub what: &'static str,
    pub message: String,
}

fn check(what: &'static str, e: *const c_char) -> Result<(), GraphError> {
    if e.is_null() {
        return Ok(());
    }
    // The message lives in the shim's thread-local buffer until its next call on this thread.
    let message = unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned();
    Err(GraphError { what, message })
}

/// Whether the shim was compiled with CUDA graph support (false when the CUDA runtime headers
/// were missing at build time). Needs no GPU.
/// The CUDA device's free memory in bytes, when the build and the device can say.
pub fn free_memory(device: usize) -> Option<u64> {
    let n = unsafe { vae_tch_cuda_free_memory(device as c_int) };
    (n > 0).then_some(n as u64)
}

pub fn supported() -> bool {
    unsafe { vae_tch_cuda_graph_supported() != 0 }
}

/// One capturable graph on one CUDA device, with its own side stream.
pub struct CudaGraph {
    handle: *mut c_void,
    captured: bool,
}

impl CudaGraph {
    pub fn new(device: usize) -> Result<CudaGraph, GraphError> {
        let mut handle = std::ptr::null_mut();
        check("create", unsafe {
            vae_tch_cuda_graph_new(device as c_int, &mut handle)
        })?;
        Ok(CudaGraph {
            handle,
            captured: false,
        })
    }

    /// Warms up and captures, as PyTorch's recipe does: with the graph's side stream current
    /// (the device is synchronized on the way in and out), runs `body` `warm_up` times for
    /// real, then captures one more call of it (nothing runs). Tensors `body` allocates in the
    /// capture come from the graph's private pool and keep their addresses on replay. A panic
    /// in `body` (a tch error) still ends the capture and restores the stream, so that the
    /// caller can fall back to eager steps.
    pub fn capture(&mut self, warm_up: usize, mut body: impl FnMut()) -> Result<(), GraphError> {
        check("side stream", unsafe {
            vae_tch_cuda_graph_side_begin(self.handle)
        })?;
        let caught = |what: &'static str, r: std::thread::Result<()>| {
            r.map_err(|panic| GraphError {
                what,
                message: crate::util::torch_failure::panic_text(panic.as_ref()),
            })
        };
        // tch reports errors by panicking; the message is kept in the returned error, so the
        // default hook's print is silenced for the duration.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let mut result = caught(
            "warm-up",
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                for _ in 0..warm_up {
                    body();
                }
            })),
        );
        if result.is_ok() {
            result = check("capture begin", unsafe {
                vae_tch_cuda_graph_capture_begin(self.handle)
            });
            if result.is_ok() {
                let run = caught(
                    "capture",
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(&mut body)),
                );
                let end = check("capture end", unsafe {
                    vae_tch_cuda_graph_capture_end(self.handle)
                });
                result = run.and(end);
            }
        }
        std::panic::set_hook(hook);
        let side = check("side stream", unsafe {
            vae_tch_cuda_graph_side_end(self.handle)
        });
        result.and(side)?;
        self.captured = true;
        Ok(())
    }

    /// Replays the captured work on the current stream.
    pub fn replay(&self) -> Result<(), GraphError> {
        debug_assert!(self.captured, "replay before capture");
        check("replay", unsafe { vae_tch_cuda_graph_replay(self.handle) })
    }
}

impl Drop for CudaGraph {
    fn drop(&mut self) {
        unsafe { vae_tch_cuda_graph_free(self.handle) }
    }
}
