//! `--device auto|cpu|cuda|cuda:N` to a tch Device, with an error (not a silent CPU fallback)
//! when CUDA is asked for and not there.
use tch::Device;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("--device {0}: expected auto, cpu, cuda or cuda:N")]
    Syntax(String),
    #[error("--device {spec}: CUDA is not available here ({count} CUDA devices seen by libtorch; is this a GPU machine with the CUDA torch wheel?)")]
    NoCuda { spec: String, count: i64 },
    #[error("--device {spec}: there are only {count} CUDA devices (0..{count})")]
    NoSuchGpu { spec: String, count: i64 },
}

pub fn parse(spec: &str) -> Result<Device, DeviceError> {
    let count = if tch::Cuda::is_available() {
        tch::Cuda::device_count()
    } else {
        0
    };
    let want = match spec.trim().to_ascii_lowercase().as_str() {
        "auto" => {
            return Ok(if count > 0 {
                Device::Cuda(0)
            } else {
                Device::Cpu
            })
        }
        "cpu" => return Ok(Device::Cpu),
        "cuda" | "gpu" => 0,
        s => s
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| DeviceError::Syntax(spec.to_string()))?,
    };
    if count == 0 {
        return Err(DeviceError::NoCuda {
            spec: spec.to_string(),
            count,
        });
    }
    if want as i64 >= count {
        return Err(DeviceError::NoSuchGpu {
            spec: spec.to_string(),
            count,
        });
    }
    Ok(Device::Cuda(want))
}

/// The device as `--device` spells it: `cpu`, `cuda:0`.
pub fn name(device: Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(i) => format!("cuda:{i}"),
        d => format!("{d:?}").to_lowercase(),
    }
}

pub fn describe(device: Device) -> String {
    match device {
        Device::Cpu => format!("cpu ({} threads)", tch::get_num_threads()),
        Device::Cuda(i) => format!("cuda:{i}"),
        d => format!("{d:?}"),
    }
}
