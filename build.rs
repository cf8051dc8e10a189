//! Link flags for the final binaries: without them CUDA is silently unavailable, because the
//! linker drops libtorch_cuda (tch-rs issues #907 and #980). torch-sys exports its libtorch
//! folder as DEP_TCH_LIBTORCH_LIB (its `links = "tch"`), seen here as we depend on it directly.
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: no rpath, CUDA may be unavailable");
        return;
    };
    // rpath: the binary finds libtorch without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
}
