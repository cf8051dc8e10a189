//! The seed's VAE loss (Foster, ch. 3, `vae_r_loss` and `vae_kl_loss`), per image then averaged
//! over the batch as Keras reduces a per-sample loss:
//!   r_loss  = r_loss_factor * mean over (c, h, w) of (x - x_hat)^2
//!   kl_loss = -0.5 * sum over latent dims of (1 + log_var - mu^2 - exp(log_var))
//!   loss    = r_loss + kl_loss          (Kingma & Welling 2014, appendix B, for the KL)
use tch::{Reduction, Tensor};

/// The three numbers the seed reports, as scalar tensors (batch means).
#[derive(Debug)]
pub struct LossParts {
    pub loss: Tensor,
    pub r_loss: Tensor,
    pub kl_loss: Tensor,
}

/// Batch mean of r_loss_factor x per-image mean squared error. Every image has the same number
/// of pixels, so the mean of per-image means is the mean over all: one fused kernel.
pub fn reconstruction_loss(reconstruction: &Tensor, target: &Tensor, r_loss_factor: f64) -> Tensor {
    reconstruction.mse_loss(target, Reduction::Mean) * r_loss_factor
}

/// KL(N(mu, exp(log_var)) || N(0, I)) per image, shape `[n]`.
pub fn kl_per_image(mu: &Tensor, log_var: &Tensor) -> Tensor {
    let terms = log_var - mu.square() - log_var.exp() + 1.0;
    terms.sum_dim_intlist(1, false, None) * -0.5
}

/// Batch mean of the KL divergence.
pub fn kl_loss(mu: &Tensor, log_var: &Tensor) -> Tensor {
    kl_per_image(mu, log_var).mean(None)
}

pub fn vae_loss(
    reconstruction: &Tensor,
    target: &Tensor,
    mu: &Tensor,
    log_var: &Tensor,
    r_loss_factor: f64,
) -> LossParts {
    let r_loss = reconstruction_loss(reconstruction, target, r_loss_factor);
    let kl_loss = kl_loss(mu, log_var);
    LossParts {
        loss: &r_loss + &kl_loss,
        r_loss,
        kl_loss,
    }
}

/// Mean loss, r_loss and kl_loss over a split.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Losses {
    pub loss: f64,
    pub r_loss: f64,
    pub kl_loss: f64,
}

impl std::fmt::Display for Losses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "loss {:.3} (r {:.3}, kl {:.3})",
            self.loss, self.r_loss, self.kl_loss
        )
    }
}
