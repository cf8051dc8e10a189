//! The training step's arithmetic (`train.precision`, crate::config::Precision), through
//! csrc/precision.cpp: libtorch's autocast to bfloat16 with its weight-cast cache off, and the
//! TF32 switches of cuDNN and cuBLAS (tch binds neither: its `autocast` is CUDA-only at
//! float16).
//!
//! - fp32: TF32 off for convolutions and matmuls (`torch.backends.cudnn.allow_tf32 = False`,
//!   `torch.backends.cuda.matmul.allow_tf32 = False`).
//! - tf32: torch's defaults (TF32 convolutions, float32 matmuls).
//! - bf16: tf32's switches, and the forward pass and loss under
//!   `torch.autocast(device, torch.bfloat16, cache_enabled=False)`: convolutions and matmuls
//!   run in bfloat16 on float32 weights. The model keeps BatchNorm's statistics and its outputs
//!   in float32 (crate::model), so the loss, the gradients' accumulation into the weights and
//!   Adam are float32, as Keras's `mixed_bfloat16` policy keeps them.
//!
//! The cache is off because a CUDA graph replays the casts it captured: a cast cached outside
//! the capture would be a stale copy of the weights inside it (PyTorch's
//! `make_graphed_callables` refuses autocast with the cache on, torch/cuda/graphs.py). Each
//! weight is used once per step, so the cache would save nothing here anyway.
use std::ffi::{c_char, c_int, CStr};

use tch::Device;

use crate::config::Precision;

extern "C" {
    fn vae_tch_autocast_enter(cuda: c_int, saved: *mut i32) -> *const c_char;
    fn vae_tch_autocast_exit(cuda: c_int, saved: *const i32) -> *const c_char;
    fn vae_tch_autocast_enabled(cuda: c_int) -> c_int;
    fn vae_tch_set_tf32(conv: c_int, matmul: c_int) -> *const c_char;
    fn vae_tch_get_tf32(conv: *mut c_int, matmul: *mut c_int) -> *const c_char;
}

/// The shim's calls fail only on a libtorch bug; the message is then worth a panic.
fn check(what: &str, e: *const c_char) {
    if !e.is_null() {
        let message = unsafe { CStr::from_ptr(e) }.to_string_lossy();
        panic!("{what}: {message}");
    }
}

/// Sets the process-wide TF32 switches for `precision` (they only matter on CUDA).
pub fn set_tf32(precision: Precision) {
    let on = precision != Precision::Fp32;
    check("setting TF32", unsafe { vae_tch_set_tf32(on as c_int, 0) });
}

/// (cuDNN, cuBLAS) TF32 switches as they are now.
pub fn tf32() -> (bool, bool) {
    let (mut conv, mut matmul) = (0, 0);
    check("reading TF32", unsafe {
        vae_tch_get_tf32(&mut conv, &mut matmul)
    });
    (conv != 0, matmul != 0)
}

/// Whether autocast is on for `device`'s type on this thread.
pub fn autocast_enabled(device: Device) -> bool {
    unsafe { vae_tch_autocast_enabled(device.is_cuda() as c_int) != 0 }
}

/// Autocast to bfloat16 on one device type while it lives (thread-local, as torch's).
struct Autocast {
    cuda: c_int,
    saved: [i32; 3],
}

impl Autocast {
    fn enter(device: Device) -> Autocast {
        let cuda = device.is_cuda() as c_int;
        let mut saved = [0; 3];
        check("entering autocast", unsafe {
            vae_tch_autocast_enter(cuda, saved.as_mut_ptr())
        });
        Autocast { cuda, saved }
    }
}

impl Drop for Autocast {
    fn drop(&mut self) {
        // Also on a panic's unwinding (a failed capture): the thread's state comes back.
        check("leaving autocast", unsafe {
            vae_tch_autocast_exit(self.cuda, self.saved.as_ptr())
        });
    }
}

/// Runs `f` (a forward pass and its loss) in `precision` on `device`: under bfloat16 autocast
/// for bf16, as it is otherwise. Backward passes run outside, as torch's recipe has them.
pub fn forward<T>(precision: Precision, device: Device, f: impl FnOnce() -> T) -> T {
    if precision != Precision::Bf16 {
        return f();
    }
    let _guard = Autocast::enter(device);
    f()
}
