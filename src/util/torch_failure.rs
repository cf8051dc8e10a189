//! libtorch's failures as errors. tch's calls panic when libtorch throws (they `unwrap` a
//! `TchError::Torch`): an allocation that does not fit, a CUDA error. `guard` runs a piece of
//! work and turns such a panic into a `TorchFailure` that names the cause, what was being done
//! and what to lower (exit 1, a sweep point FAILED); any other panic is a bug and goes on
//! unwinding to the binary's edge.
use std::any::Any;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::memory;

#[derive(Debug, thiserror::Error)]
pub enum TorchFailure {
    /// An allocation failed: the process's limit, the host's memory, or the GPU's.
    #[error("out of memory {while_}: {allocation}{limit}; {lower}")]
    OutOfMemory {
        while_: String,
        /// "an allocation of 103 MB on the CPU failed".
        allocation: String,
        /// ", with 5.2 GB left under the address-space limit (ulimit -v)", where known.
        limit: String,
        lower: String,
    },
    #[error("CUDA failed {while_}: {message} (the GPU's state may be lost: run the command again; `vae-tch info` shows the devices)")]
    Cuda { while_: String, message: String },
    #[error("libtorch failed {while_}: {message}")]
    Other { while_: String, message: String },
}

/// The text of a panic's payload.
pub fn panic_text(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else {
        "panic".to_string()
    }
}

/// Runs `work`; a libtorch failure in it becomes a `TorchFailure` saying it happened `while_`
/// (e.g. "while training runs/x") with `lower` the advice for memory ("lower --batch-size (now
/// 60000)"). Other panics unwind on.
pub fn guard<T>(
    while_: &str,
    lower: &str,
    work: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => match classify(&panic_text(panic.as_ref()), while_, lower) {
            Some(failure) => Err(failure.into()),
            None => resume_unwind(panic),
        },
    }
}

/// The failure a panic's text tells of, or None when it is not libtorch's.
pub fn classify(text: &str, while_: &str, lower: &str) -> Option<TorchFailure> {
    // tch's panic: `called Result::unwrap() on an Err value: Torch("<what> ...\nframe #0 ...")`.
    let message = text
        .split_once("Torch(\"")
        .map_or(text, |(_, m)| m)
        .split("\\nframe #")
        .next()
        .unwrap_or(text)
        .split("\\nException raised from")
        .next()
        .unwrap_or(text)
        .trim_end_matches("\")")
        .replace("\\n", " ");
    let message = message.trim().to_string();
    let while_ = while_.to_string();
    let lower = lower.to_string();
    if let Some(bytes) = cpu_allocation(&message) {
        return Some(TorchFailure::OutOfMemory {
            while_,
            allocation: format!(
                "an allocation of {} on the CPU failed",
                memory::human(bytes)
            ),
            limit: memory::available()
                .map(|(b, src)| format!(", with {} left under {src}", memory::human(b)))
                .unwrap_or_default(),
            lower,
        });
    }
    if let Some(what) = cuda_allocation(&message) {
        return Some(TorchFailure::OutOfMemory {
            while_,
            allocation: format!("an allocation of {what} on the GPU failed"),
            limit: String::new(),
            lower,
        });
    }
    let torch = text.contains("Torch(") || text.contains("c10::") || text.contains("libtorch");
    if message.contains("CUDA error")
        || message.contains("CUBLAS_STATUS")
        || message.contains("CUDNN_STATUS")
    {
        return Some(TorchFailure::Cuda { while_, message });
    }
    torch.then_some(TorchFailure::Other { while_, message })
}

/// The bytes of a failed CPU allocation: "DefaultCPUAllocator: can't allocate memory: you tried
/// to allocate 107577344 bytes" (c10/core/impl/alloc_cpu.cpp).
fn cpu_allocation(message: &str) -> Option<u64> {
    let rest = message.split("you tried to allocate ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// The size of a failed CUDA allocation as the caching allocator says it: "CUDA out of memory.
/// Tried to allocate 2.00 GiB" (c10/cuda/CUDACachingAllocator.cpp).
fn cuda_allocation(message: &str) -> Option<String> {
    if !message.contains("out of memory") || !message.contains("CUDA") {
        return None;
    }
    let rest = message.split("Tried to allocate ").nth(1);
    Some(rest.map_or("unknown size".into(), |r| {
        r.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
            .trim_end_matches('.')
            .to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The first line of what tch's panic said under `ulimit -v 6000000` (2026-12-04, torch 2.11).
    const CPU: &str = r#"called `Result::unwrap()` on an `Err` value: Torch("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: you tried to allocate 107577344 bytes. Error code 12 (Cannot allocate memory)\nframe #0: c10::ThrowEnforceNotMet(char const*, int) + 0x6a\n")"#;

    #[test]
    fn a_failed_allocation_is_out_of_memory_with_its_size_and_advice() {
        let f = classify(CPU, "while training r", "lower --batch-size (now 60000)").unwrap();
        let text = f.to_string();
        assert!(
            text.starts_with(
                "out of memory while training r: an allocation of 108 MB on the CPU failed"
            ),
            "{text}"
        );
        assert!(text.ends_with("; lower --batch-size (now 60000)"), "{text}");
        assert!(!text.contains("frame #"), "{text}");
        let cuda = "Torch(\"CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79 GiB\")";
        let text = classify(cuda, "while x", "lower y").unwrap().to_string();
        assert!(
            text.contains("an allocation of 2.00 GiB on the GPU failed"),
            "{text}"
        );
        let other = "Torch(\"CUDA error: an illegal memory access was encountered\")";
        assert!(matches!(
            classify(other, "w", "l"),
            Some(TorchFailure::Cuda { .. })
        ));
        assert!(classify("index out of bounds: the len is 3", "w", "l").is_none());
    }

    #[test]
    fn a_guarded_panic_of_libtorch_is_an_error_and_others_unwind_on() {
        let r: anyhow::Result<()> = guard("while testing", "lower nothing", || panic!("{}", CPU));
        assert!(r
            .unwrap_err()
            .to_string()
            .starts_with("out of memory while testing"));
        let bug = std::panic::catch_unwind(|| {
            guard("while testing", "", || -> anyhow::Result<()> {
                panic!("a bug")
            })
        });
        assert!(bug.is_err(), "a panic that is not libtorch's is not hidden");
    }
}
