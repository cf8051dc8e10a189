"""`vae-tch eval` against an independent computation in PyTorch: the same weights (the run's
checkpoint in scripts/vae_torch.py's module), the same noise (given to eval with its --eps test
hook), and the bound written with torch.distributions rather than eval's closed forms."""
import gzip
import json
import math

import torch
from safetensors.torch import load_file, save_file
from torch.distributions import Normal, kl_divergence

import vae_torch
from conftest import vae_tch


def read_test_images(data_dir):
    raw = gzip.decompress((data_dir / "t10k-images-idx3-ubyte.gz").read_bytes())
    n, rows, cols = (int.from_bytes(raw[i : i + 4], "big") for i in (4, 8, 12))
    x = torch.frombuffer(bytearray(raw[16 : 16 + n * rows * cols]), dtype=torch.uint8)
    return x.view(n, 1, rows, cols).float() / 255.0


def test_eval_matches_torch_distributions_with_the_same_weights_and_noise(tiny_run, tmp_path):
    model = vae_torch.VAE.from_config(tiny_run / "config.toml")
    model.load_state_dict(load_file(tiny_run / "checkpoint" / "model.safetensors"), strict=True)
    model.eval()
    x = read_test_images(tiny_run.parent / "data")
    n, k, latent = x.shape[0], 7, 2
    eps = torch.randn(k, n, latent, generator=torch.Generator().manual_seed(3))
    save_file({"eps": eps}, tmp_path / "eps.safetensors")
    out = vae_tch("eval", str(tiny_run), "--k", str(k), "--eps", str(tmp_path / "eps.safetensors"),
                  "--json", cwd=tiny_run.parent)
    got = json.loads(out.stdout)

    r = 1000.0  # the run's r_loss_factor (the default)
    d = 784
    sigma = math.sqrt(d / (2 * r))
    with torch.no_grad():
        mu, log_var = model.encoder(x)
        std = torch.exp(0.5 * log_var)
        z = mu + std * eps  # [k, n, latent]
        recon = model.decoder(z.reshape(k * n, latent)).view(k, n, 1, 28, 28)
        log_px_z = Normal(recon, sigma).log_prob(x.unsqueeze(0)).sum(dim=(2, 3, 4)).double()
        log_pz = Normal(0.0, 1.0).log_prob(z).sum(-1).double()
        log_qz = Normal(mu, std).log_prob(z).sum(-1).double()
        log_w = log_px_z + log_pz - log_qz
        iwae = -(torch.logsumexp(log_w, 0) - math.log(k)).mean().item()
        kl = kl_divergence(Normal(mu, std), Normal(0.0, 1.0)).double()  # [n, latent]
        neg_elbo = ((-log_px_z).mean(0) + kl.sum(-1)).mean().item()
        mse = ((model.decoder(mu) - x) ** 2).mean().item()
        var_mu = mu.double().var(0, unbiased=False)

    def close(a, b, tol=1e-5):
        assert abs(a - b) <= tol * max(1.0, abs(b)), (a, b)

    close(got["iwae_nll_nats"], iwae)
    close(got["neg_elbo_nats"], neg_elbo)
    close(got["iwae_nll_bits_per_dim"], iwae / (d * math.log(2)))
    close(got["mse"], mse)
    close(got["psnr_db"], 10 * math.log10(1 / mse), 1e-4)
    for a, b in zip(got["kl_per_dim"], kl.mean(0).tolist()):
        close(a, b)
    for a, b in zip(got["mean_variance"], var_mu.tolist()):
        close(a, b, 1e-4)
    assert got["active_units"] == int((var_mu > 0.01).sum())
    assert got["k"] == k and got["images"] == n and got["pixels"] == d
