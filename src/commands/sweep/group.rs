//! Which points train as one stacked model (crate::model::stack): points whose configs are
//! equal but for what a stack carries per model (the seed, `r_loss_factor`, Adam's
//! hyperparameters, how often reconstructions are drawn) form a group. Every point of a group
//! shares one data order (`train.shuffle_seed`, set here when the sweep does not), and draws
//! its noise as its own row of a draw for the whole group (`Stacking`), so a point's numbers do
//! not depend on how its group is split (over shards, or to fit in memory). How many models fit
//! in one stack comes from a memory estimate.
use std::collections::HashMap;

use tch::Device;

use crate::config::RunConfig;

/// A config with the keys a stack carries per model (the seed, `r_loss_factor`, how often
/// reconstructions are drawn, Adam's hyperparameters) and the trainer's record of its step
/// form cleared: two points stack when these are equal.
fn shape_key(c: &RunConfig) -> String {
    let mut c = c.clone();
    let d = RunConfig::default();
    c.train.seed = d.train.seed;
    c.train.r_loss_factor = d.train.r_loss_factor;
    c.train.reconstruction_every = d.train.reconstruction_every;
    c.train.step_form = None;
    c.optim = d.optim;
    c.to_toml()
}

/// The groups of `configs` (indices, in order of first appearance; each in the sweep's order).
pub fn groups(configs: &[&RunConfig]) -> Vec<Vec<usize>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Vec<usize>> = Vec::new();
    for (i, c) in configs.iter().enumerate() {
        let key = shape_key(c);
        let g = *index.entry(key).or_insert_with(|| {
            out.push(Vec::new());
            out.len() - 1
        });
        out[g].push(i);
    }
    out
}

/// Gives every point of a group without a `train.shuffle_seed` the seed of its group's first
/// point, so a group shares one data order, and a point trained alone from its config.toml
/// follows it too.
pub fn assign_shuffle_seeds(configs: &mut [RunConfig]) {
    let refs: Vec<RunConfig> = configs.to_vec();
    let refs: Vec<&RunConfig> = refs.iter().collect();
    for group in groups(&refs) {
        let seed = configs[group[0]].train.seed;
        for &i in &group {
            if configs[i].train.shuffle_seed.is_none() {
                configs[i].train.shuffle_seed = Some(seed);
            }
        }
    }
}

/// Bytes one model of `cfg` needs in a training step, roughly: the parameters with their
/// gradients and Adam's m and v, and the batch's feature maps, each kept a few times
/// (forward outputs saved for the backward pass, their gradients, BatchNorm and dropout).
pub fn bytes_per_model(cfg: &RunConfig) -> u64 {
    let m = &cfg.model;
    let [c, mut h, mut w] = m.input_shape;
    let mut params = 0i64;
    let mut maps = c * h * w;
    let mut c_in = c;
    for ((&f, &k), &s) in m
        .encoder_conv_filters
        .iter()
        .zip(&m.encoder_conv_kernel_size)
        .zip(&m.encoder_conv_strides)
    {
        params += f * c_in * k * k + f;
        h = (h + s - 1) / s;
        w = (w + s - 1) / s;
        maps += f * h * w;
        c_in = f;
    }
    let flat = c_in * h * w;
    params += 3 * flat * m.latent_dim + 2 * m.latent_dim + flat;
    for ((&f, &k), &s) in m
        .decoder_conv_t_filters
        .iter()
        .zip(&m.decoder_conv_t_kernel_size)
        .zip(&m.decoder_conv_t_strides)
    {
        params += f * c_in * k * k + f;
        h *= s;
        w *= s;
        maps += f * h * w;
        c_in = f;
    }
    let per_map = if m.use_batch_norm || m.use_dropout {
        6
    } else {
        4
    };
    let batch = cfg.train.batch_size as i64;
    (4 * (5 * params + per_map * batch * maps)) as u64
}

/// The memory a sweep may fill on `device` with stacked models: half of a CUDA device's free
/// memory (the training images, the CUDA graph's pool and cuDNN's workspaces take the rest), or
/// half of what this process may still take on the host: its cgroup's or address-space limit
/// when tighter than the host's available memory (crate::util::memory).
pub fn memory_budget(device: Device) -> Option<u64> {
    match device {
        Device::Cuda(i) => crate::train::cuda_graph::free_memory(i).map(|b| b / 2),
        _ => crate::util::memory::available().map(|(b, _)| b / 2),
    }
}

/// The most models of `cfg` one stack holds: what fits `budget` (at least 1), at most `max`.
pub fn max_stack(cfg: &RunConfig, budget: Option<u64>, max: usize) -> usize {
    let fit = budget.map_or(max, |b| (b / bytes_per_model(cfg).max(1)) as usize);
    fit.clamp(1, max.max(1))
}

/// `items` in consecutive chunks of at most `max`, as even as can be (a group of 10 with room
/// for 4 runs as 4, 3, 3).
pub fn chunks<T: Clone>(items: &[T], max: usize) -> Vec<Vec<T>> {
    let n = items.len();
    if n == 0 {
        return Vec::new();
    }
    let parts = n.div_ceil(max.max(1));
    let (base, extra) = (n / parts, n % parts);
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let len = base + usize::from(p < extra);
        out.push(items[start..start + len].to_vec());
        start += len;
    }
    out
}
