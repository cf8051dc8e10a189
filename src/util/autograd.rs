//! How many backward nodes a tensor's autograd graph holds (csrc/autograd_graph.cpp; tch has no
//! graph walk): the measure of "one step, not K" for the sweep's stacked model.
use std::ffi::{c_char, c_void, CStr};

use tch::{TchError, Tensor};

extern "C" {
    fn vae_tch_autograd_nodes(tensor: *const c_void, out: *mut i64) -> *const c_char;
}

/// The number of distinct autograd nodes reachable from `t`'s grad_fn (0 for a leaf or a tensor
/// made without grad).
pub fn nodes(t: &Tensor) -> Result<i64, TchError> {
    let mut n = 0i64;
    let e = unsafe { vae_tch_autograd_nodes(t.as_ptr() as *const c_void, &mut n) };
    if e.is_null() {
        Ok(n)
    } else {
        Err(TchError::Torch(
            unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned(),
        ))
    }
}
