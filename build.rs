//! 1. Link flags for the final binaries: without them CUDA is silently unavailable, because the
//!    linker drops libtorch_cuda (tch-rs issues #907 and #980). torch-sys exports its libtorch
//!    folder as DEP_TCH_LIBTORCH_LIB (its `links = "tch"`), seen here as we depend on it directly.
//! 2. csrc/trace_tuple.cpp, compiled against the same libtorch headers (see src/trace.rs).
use std::path::Path;

fn compile_shim(lib: &Path) {
    println!("cargo:rerun-if-changed=csrc/trace_tuple.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let include = lib
        .parent()
        .expect("torch/lib has a parent")
        .join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .file("csrc/trace_tuple.cpp")
        .compile("vae_tch_trace");
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: no rpath, CUDA may be unavailable");
        return;
    };
    compile_shim(Path::new(&lib));
    // rpath: the binary finds libtorch without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    if Path::new(&lib).join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
}
