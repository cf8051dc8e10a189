//! Batches over a split: a fresh permutation per epoch from torch's (seeded) generator, cut into
//! batches of `batch_size` with a smaller last batch, as Keras `fit(shuffle=True)` does.
use tch::{Device, Kind, Tensor};

/// Index tensors (on `device`) of the shuffled batches of an epoch over `n` examples.
pub fn shuffled(n: i64, batch_size: i64, device: Device) -> Vec<Tensor> {
    let perm = Tensor::randperm(n, (Kind::Int64, Device::Cpu)).to_device(device);
    ranges(n, batch_size)
        .map(|(start, len)| perm.narrow(0, start, len))
        .collect()
}

/// (start, length) of consecutive batches over `n` examples.
pub fn ranges(n: i64, batch_size: i64) -> impl Iterator<Item = (i64, i64)> {
    (0..n)
        .step_by(batch_size.max(1) as usize)
        .map(move |s| (s, batch_size.min(n - s)))
}
