//! TorchScript modules with real parameters, built in C++ (csrc/script_module.cpp: a
//! `torch::jit::Module` with `register_parameter`, `register_module` and methods compiled from
//! TorchScript source with `define`). tch can load such modules but not build them.
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

use tch::{TchError, Tensor};

extern "C" {
    fn vae_tch_script_new(qualified_name: *const c_char, out: *mut *mut c_void) -> *const c_char;
    fn vae_tch_script_add_parameter(
        m: *mut c_void,
        name: *const c_char,
        tensor: *const c_void,
    ) -> *const c_char;
    fn vae_tch_script_add_buffer(
        m: *mut c_void,
        name: *const c_char,
        tensor: *const c_void,
    ) -> *const c_char;
    fn vae_tch_script_add_module(
        m: *mut c_void,
        name: *const c_char,
        child: *mut c_void,
    ) -> *const c_char;
    fn vae_tch_script_add_bool(m: *mut c_void, name: *const c_char, value: c_int) -> *const c_char;
    fn vae_tch_script_define(m: *mut c_void, source: *const c_char) -> *const c_char;
    fn vae_tch_script_save(
        m: *mut c_void,
        path: *const c_char,
        n: c_int,
        names: *const *const c_char,
        contents: *const *const c_char,
        lengths: *const usize,
    ) -> *const c_char;
    fn vae_tch_script_free(m: *mut c_void);
}

fn cstring(s: &str) -> Result<CString, TchError> {
    CString::new(s).map_err(|_| TchError::Convert(format!("{s:?} contains a NUL byte")))
}

/// The shim's error (a message in its thread-local buffer), if any.
fn check(what: &str, e: *const c_char) -> Result<(), TchError> {
    if e.is_null() {
        return Ok(());
    }
    let message = unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned();
    Err(TchError::Torch(format!("{what}: {message}")))
}

/// A module under construction (freed on drop; submodules are shared into their parent).
pub struct ScriptModule {
    handle: *mut c_void,
    name: String,
}

impl ScriptModule {
    /// A module of class `__torch__.<qualified_name>`, in training mode like a new nn.Module.
    pub fn new(qualified_name: &str) -> Result<ScriptModule, TchError> {
        let mut handle = std::ptr::null_mut();
        let name = cstring(qualified_name)?;
        check(qualified_name, unsafe {
            vae_tch_script_new(name.as_ptr(), &mut handle)
        })?;
        Ok(ScriptModule {
            handle,
            name: qualified_name.to_string(),
        })
    }

    /// Registers a copy of `t` on the CPU as parameter `name` (requiring grad): saved modules
    /// load anywhere without a map location, and `.to("cuda")` moves them.
    pub fn parameter(&mut self, name: &str, t: &Tensor) -> Result<&mut Self, TchError> {
        self.add_tensor(name, t, vae_tch_script_add_parameter)
    }

    /// Registers a copy of `t` on the CPU as buffer `name` (saved in `state_dict()`, not trained).
    pub fn buffer(&mut self, name: &str, t: &Tensor) -> Result<&mut Self, TchError> {
        self.add_tensor(name, t, vae_tch_script_add_buffer)
    }

    /// A detached, contiguous CPU copy of `t` registered under `name` by the shim's `add`.
    fn add_tensor(
        &mut self,
        name: &str,
        t: &Tensor,
        add: unsafe extern "C" fn(*mut c_void, *const c_char, *const c_void) -> *const c_char,
    ) -> Result<&mut Self, TchError> {
        let n = cstring(name)?;
        let t = t.detach().to_device(tch::Device::Cpu).contiguous();
        check(&self.name, unsafe {
            add(self.handle, n.as_ptr(), t.as_ptr() as *const c_void)
        })?;
        Ok(self)
    }

    pub fn submodule(&mut self, name: &str, child: &ScriptModule) -> Result<&mut Self, TchError> {
        let n = cstring(name)?;
        check(&self.name, unsafe {
            vae_tch_script_add_module(self.handle, n.as_ptr(), child.handle)
        })?;
        Ok(self)
    }

    pub fn bool_attribute(&mut self, name: &str, value: bool) -> Result<&mut Self, TchError> {
        let n = cstring(name)?;
        check(&self.name, unsafe {
            vae_tch_script_add_bool(self.handle, n.as_ptr(), value as c_int)
        })?;
        Ok(self)
    }

    /// Compiles TorchScript `source` (methods `def f(self, ...)`) into this module.
    pub fn define(&mut self, source: &str) -> Result<&mut Self, TchError> {
        let s = cstring(source)?;
        check(&format!("compiling {}", self.name), unsafe {
            vae_tch_script_define(self.handle, s.as_ptr())
        })?;
        Ok(self)
    }

    /// Saves to `path` with extra files (name, bytes) stored beside the code.
    pub fn save(&self, path: &Path, extra: &[(&str, &[u8])]) -> Result<(), TchError> {
        let p = cstring(&path.to_string_lossy())?;
        let names: Vec<CString> = extra
            .iter()
            .map(|(n, _)| cstring(n))
            .collect::<Result<_, _>>()?;
        let name_ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        let data: Vec<*const c_char> = extra.iter().map(|(_, d)| d.as_ptr().cast()).collect();
        let lengths: Vec<usize> = extra.iter().map(|(_, d)| d.len()).collect();
        check(&format!("saving {}", path.display()), unsafe {
            vae_tch_script_save(
                self.handle,
                p.as_ptr(),
                extra.len() as c_int,
                name_ptrs.as_ptr(),
                data.as_ptr(),
                lengths.as_ptr(),
            )
        })
    }
}

impl Drop for ScriptModule {
    fn drop(&mut self) {
        unsafe { vae_tch_script_free(self.handle) }
    }
}
