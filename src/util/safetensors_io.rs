//! Writing safetensors files with `__metadata__` (tch's `write_safetensors` passes none): the
//! export's model.safetensors says `format: pt` (what transformers' loaders check), the vae-tch
//! version and the model config.
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, View};
use tch::{Device, Kind, TchError, Tensor};

struct Bytes {
    dtype: Dtype,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl View for &Bytes {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

fn bytes(t: &Tensor) -> Result<Bytes, TchError> {
    let dtype = match t.kind() {
        Kind::Float => Dtype::F32,
        Kind::Double => Dtype::F64,
        Kind::Int64 => Dtype::I64,
        k => return Err(TchError::Convert(format!("no safetensors dtype for {k:?}"))),
    };
    let t = t.detach().to_device(Device::Cpu).contiguous();
    let numel = t.numel();
    let mut data = vec![0u8; numel * t.kind().elt_size_in_bytes()];
    t.f_copy_data_u8(&mut data, numel)?;
    Ok(Bytes {
        dtype,
        shape: t.size().iter().map(|&d| d as usize).collect(),
        data,
    })
}

/// Writes `named` tensors (any device, any memory order) with `metadata` to `path`.
pub fn write(
    named: &[(String, Tensor)],
    metadata: HashMap<String, String>,
    path: &Path,
) -> Result<(), TchError> {
    let data: Vec<(String, Bytes)> = named
        .iter()
        .map(|(n, t)| Ok((n.clone(), bytes(t)?)))
        .collect::<Result<_, TchError>>()?;
    let views = data.iter().map(|(n, b)| (n.as_str(), b));
    safetensors::tensor::serialize_to_file(views, &Some(metadata), path)
        .map_err(|e| TchError::FileFormat(format!("{}: {e}", path.display())))
}

/// A safetensors file's tensors by name (on the CPU) and its `__metadata__`.
pub type Contents = (Vec<(String, Tensor)>, HashMap<String, String>);

/// The tensors of a safetensors file (on the CPU) and its `__metadata__`.
pub fn read(path: &Path) -> Result<Contents, TchError> {
    let bytes = std::fs::read(path)
        .map_err(|e| TchError::FileFormat(format!("{}: {e}", path.display())))?;
    let bad =
        |e: safetensors::SafeTensorError| TchError::FileFormat(format!("{}: {e}", path.display()));
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).map_err(bad)?;
    let metadata = meta.metadata().clone().unwrap_or_default();
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(bad)?;
    let tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| Ok((name, Tensor::try_from(view)?)))
        .collect::<Result<Vec<_>, TchError>>()?;
    Ok((tensors, metadata))
}
