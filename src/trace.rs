//! Tracing a closure whose TorchScript method returns a tuple (`x -> (mu, log_var)`). tch's
//! `CModule::create_by_tracing` registers each output separately, which TorchScript cannot save;
//! csrc/trace_tuple.cpp ends the trace with a single tuple output instead. The rest is
//! torch-sys's own tracing API (atm_create_for_tracing, atm_save, atm_free).
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

use tch::{TchError, Tensor};

extern "C" {
    fn vae_tch_end_tracing_tuple(
        module: *mut c_void,
        fn_name: *const c_char,
        outputs: *const *mut c_void,
        n: c_int,
    ) -> *const c_char;
}

/// torch-sys's last error (strdup'ed by libtch), taken and freed.
fn last_error() -> Option<String> {
    unsafe {
        let p = torch_sys::get_and_reset_last_err();
        if p.is_null() {
            return None;
        }
        let s = CStr::from_ptr(p).to_string_lossy().into_owned();
        libc::free(p as *mut c_void);
        Some(s)
    }
}

fn cstring(s: &str) -> Result<CString, TchError> {
    CString::new(s).map_err(|_| TchError::Convert(format!("{s:?} contains a NUL byte")))
}

/// Traces `f` on `inputs` as method `forward` of module `name`, whose result is the tuple of
/// `f`'s outputs, and saves the module to `path`. Parameters used by `f` must not require grad.
pub fn trace_tuple_to_file(
    name: &str,
    inputs: &[Tensor],
    f: impl FnOnce(&[Tensor]) -> Vec<Tensor>,
    path: &Path,
) -> Result<(), TchError> {
    let err = |m: String| TchError::Torch(format!("tracing {name}: {m}"));
    let mut inputs: Vec<Tensor> = inputs.iter().map(Tensor::shallow_clone).collect();
    let ptrs: Vec<_> = inputs.iter_mut().map(Tensor::as_mut_ptr).collect();
    let (cname, fn_name) = (cstring(name)?, cstring("forward")?);
    let cpath = cstring(&path.to_string_lossy())?;
    let module = unsafe {
        torch_sys::atm_create_for_tracing(cname.as_ptr(), ptrs.as_ptr(), ptrs.len() as c_int)
    };
    if let Some(e) = last_error() {
        return Err(err(e));
    }
    let mut outputs = f(&inputs);
    let out_ptrs: Vec<*mut c_void> = outputs
        .iter_mut()
        .map(|t| t.as_mut_ptr() as *mut c_void)
        .collect();
    let result = unsafe {
        let e = vae_tch_end_tracing_tuple(
            module as *mut c_void,
            fn_name.as_ptr(),
            out_ptrs.as_ptr(),
            out_ptrs.len() as c_int,
        );
        let e = (!e.is_null()).then(|| CStr::from_ptr(e).to_string_lossy().into_owned());
        match e {
            Some(e) => Err(err(e)),
            None => {
                torch_sys::atm_save(module, cpath.as_ptr());
                last_error().map_or(Ok(()), |e| {
                    Err(err(format!("saving {}: {e}", path.display())))
                })
            }
        }
    };
    unsafe { torch_sys::atm_free(module) };
    result
}
