//! 1. Link flags for the final binaries: without them CUDA is silently unavailable, because the
//!    linker drops libtorch_cuda (tch-rs issues #907 and #980). torch-sys exports its libtorch
//!    folder as DEP_TCH_LIBTORCH_LIB (its `links = "tch"`), seen here as we depend on it directly.
//! 2. csrc/script_module.cpp (see src/interop/script.rs), csrc/autograd_graph.cpp (see
//!    src/util/autograd.rs), csrc/precision.cpp (see src/train/precision.rs) and
//!    csrc/profiler.cpp (see src/train/profile.rs), compiled against the same libtorch headers.
//! 3. csrc/cuda_graph.cpp (see src/train/cuda_graph.rs), against the same headers plus the CUDA
//!    runtime headers that the torch wheel's dependencies install under
//!    site-packages/nvidia/cu13/include (`crt/` comes from the nvidia-cuda-crt wheel, which
//!    scripts/setup.sh installs). Without them the shim is built as a stub that reports "no
//!    CUDA graph support", and `train --cuda-graph auto` trains eagerly.
use std::path::{Path, PathBuf};

fn torch_build(lib: &Path) -> cc::Build {
    let include = lib
        .parent()
        .expect("torch/lib has a parent")
        .join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".into());
    let mut b = cc::Build::new();
    b.cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT");
    b
}

/// The CUDA runtime headers for the shim: $VAE_TCH_CUDA_INCLUDE, else the wheel's
/// site-packages/nvidia/cu13/include; None (with the reason) when incomplete.
fn cuda_include(lib: &Path) -> Result<PathBuf, String> {
    let dir = match std::env::var_os("VAE_TCH_CUDA_INCLUDE") {
        Some(d) => PathBuf::from(d),
        None => lib
            .ancestors()
            .nth(2)
            .map(|site| site.join("nvidia/cu13/include"))
            .ok_or("no site-packages above torch/lib")?,
    };
    for need in ["cuda_runtime_api.h", "crt/host_config.h"] {
        if !dir.join(need).is_file() {
            return Err(format!(
                "{} is missing (pip install nvidia-cuda-crt==13.0.88 into the venv, as scripts/setup.sh does)",
                dir.join(need).display()
            ));
        }
    }
    if !lib.join("libtorch_cuda.so").exists() {
        return Err(format!(
            "{} has no libtorch_cuda.so (a CPU-only libtorch)",
            lib.display()
        ));
    }
    Ok(dir)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=csrc/cuda_graph.cpp");
    println!("cargo:rerun-if-changed=csrc/script_module.cpp");
    println!("cargo:rerun-if-changed=csrc/autograd_graph.cpp");
    println!("cargo:rerun-if-changed=csrc/precision.cpp");
    println!("cargo:rerun-if-changed=csrc/profiler.cpp");
    println!("cargo:rerun-if-changed=csrc/ffi_guard.h");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-env-changed=VAE_TCH_CUDA_INCLUDE");
    let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") else {
        println!("cargo:warning=DEP_TCH_LIBTORCH_LIB not set: no rpath, CUDA may be unavailable");
        return;
    };
    let lib = PathBuf::from(lib);
    torch_build(&lib)
        .file("csrc/script_module.cpp")
        .file("csrc/autograd_graph.cpp")
        .file("csrc/precision.cpp")
        .file("csrc/profiler.cpp")
        .compile("vae_tch_script");
    let mut graph = torch_build(&lib);
    let cuda = cuda_include(&lib);
    match &cuda {
        Ok(dir) => {
            graph.include(dir).define("VAE_TCH_CUDA_GRAPHS", None);
        }
        Err(why) => println!("cargo:warning=CUDA graphs disabled (eager CUDA still works): {why}"),
    }
    graph
        .file("csrc/cuda_graph.cpp")
        .compile("vae_tch_cuda_graph");

    // rpath: the binary finds libtorch without LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
    if lib.join("libtorch_cuda.so").exists() {
        println!("cargo:rustc-link-arg=-ltorch_cuda");
        println!("cargo:rustc-link-arg=-lc10_cuda");
    }
    println!("cargo:rustc-link-arg=-ltorch");
    println!("cargo:rustc-link-arg=-ltorch_cpu");
    println!("cargo:rustc-link-arg=-lc10");
}
