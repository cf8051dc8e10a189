//! `vae-tch info`: what this vae-tch runs on. The versions of vae-tch, tch and the libtorch it
//! loaded, CUDA and cuDNN (as libtorch was built with them, and whether they are usable here),
//! the devices, the CPU threads, and the data folders.
use std::path::{Path, PathBuf};

use crate::data::{source::SourceInfo, DatasetKind};

/// The tch release this binary is built with (Cargo.toml pins it with torch 2.11.0).
pub const TCH_VERSION: &str = "0.24.0";

/// The folder of the libtorch shared library this process loaded (from /proc/self/maps).
pub fn libtorch_dir() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.ends_with("/libtorch_cpu.so"))
        .and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
}

/// `__version__` of the torch wheel that ships that libtorch (torch/version.py), if it is one.
pub fn libtorch_version(lib: &Path) -> Option<String> {
    let text = std::fs::read_to_string(lib.parent()?.join("version.py")).ok()?;
    let line = text.lines().find(|l| l.starts_with("__version__"))?;
    Some(line.split(['\'', '"']).nth(1)?.to_string())
}

/// "9.19.0" from cuDNN's integer version 91900 (major * 10000 + minor * 100 + patch since 9).
fn cudnn_version(v: i64) -> String {
    format!("{}.{}.{}", v / 10000, v / 100 % 100, v % 100)
}

/// "13.0" from CUDA's integer version 13000.
fn cuda_version(v: i64) -> String {
    format!("{}.{}", v / 1000, v % 1000 / 10)
}

pub fn report() -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18} {v}\n"));
    line("vae-tch", env!("CARGO_PKG_VERSION").to_string());
    line("tch", TCH_VERSION.to_string());
    let lib = libtorch_dir();
    line(
        "libtorch",
        match &lib {
            Some(dir) => format!(
                "{} ({})",
                libtorch_version(dir).unwrap_or_else(|| "version unknown".into()),
                dir.display()
            ),
            None => "not found in this process's maps".into(),
        },
    );
    let cuda = tch::Cuda::is_available();
    let (cudart, cudnn) = unsafe {
        (
            torch_sys::at_context_version_cudart(),
            torch_sys::at_context_version_cudnn(),
        )
    };
    let built = |v: i64, f: fn(i64) -> String| {
        if v > 0 {
            format!("{} (built with)", f(v))
        } else {
            "not built in".into()
        }
    };
    line(
        "CUDA",
        format!(
            "{}, {}",
            built(cudart, cuda_version),
            if cuda {
                "usable"
            } else {
                "not usable here (no GPU or driver)"
            }
        ),
    );
    line(
        "cuDNN",
        format!(
            "{}, {}",
            built(cudnn, cudnn_version),
            if tch::Cuda::cudnn_is_available() {
                "usable"
            } else {
                "not usable here"
            }
        ),
    );
    line(
        "CUDA graphs",
        if crate::train::cuda_graph::supported() {
            "compiled in (train --cuda-graph)".into()
        } else {
            "not compiled in (the CUDA headers were missing at build time)".into()
        },
    );
    let n = if cuda { tch::Cuda::device_count() } else { 0 };
    let mut devices = vec![format!("cpu ({} threads)", tch::get_num_threads())];
    devices.extend((0..n).map(|i| format!("cuda:{i}")));
    line("devices", devices.join(", "));
    for kind in [DatasetKind::Mnist, DatasetKind::FashionMnist] {
        let dir = kind.default_dir();
        let what = match SourceInfo::read(&dir) {
            Some(src) => format!("{} ({src})", dir.display()),
            None => format!("{} (not fetched: vae-tch data fetch {kind})", dir.display()),
        };
        line(&format!("data {kind}"), what);
    }
    line(
        "image cache",
        "<data dir>/.vae-tch-cache per image folder (train --cache-dir to move it)".into(),
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn versions_read_as_people_write_them() {
        // cuDNN 9.19.0 is 91900 (cudnn_version.h: CUDNN_MAJOR * 10000 + CUDNN_MINOR * 100 +
        // CUDNN_PATCHLEVEL); CUDA 13.0 is 13000 (cuda_runtime_api.h, CUDART_VERSION).
        assert_eq!(super::cudnn_version(91900), "9.19.0");
        assert_eq!(super::cuda_version(13000), "13.0");
        assert_eq!(super::cuda_version(12080), "12.8");
    }

    #[test]
    fn the_tch_version_is_the_one_cargo_toml_pins() {
        let manifest = include_str!("../../Cargo.toml");
        let pin = format!("tch = \"={}\"", super::TCH_VERSION);
        assert!(manifest.contains(&pin), "Cargo.toml does not pin {pin}");
    }
}
