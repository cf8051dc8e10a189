"""What a PyTorch user does with an export (issue 24): mixed precision under torch.autocast with
the nn.Module of `from_pretrained` and with vae.pt, `check_range` refusing NaN, and a model card
that says how the model trained (its schedule, its precision, which checkpoint)."""
import sys

import pytest
import torch

from conftest import jit, vae_tch


@pytest.fixture(scope="module")
def module(export_dir):
    sys.path.insert(0, str(export_dir))
    from vae_torch import VAE

    return VAE.from_pretrained(export_dir)


def test_the_module_trains_and_infers_under_bf16_autocast(module):
    x = torch.rand(4, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mu, log_var = module.encoder(x)
        assert mu.dtype == torch.bfloat16  # autocast's dtype, which the decoder takes
        recon, _, _ = module(x)
        assert module.reconstruct_mean(x).shape == x.shape
    assert recon.shape == x.shape and torch.isfinite(recon.float()).all()
    # One fine-tuning step, as torch's AMP recipe writes it (bf16 needs no scaler).
    module.train()
    opt = torch.optim.Adam(module.parameters(), lr=1e-4)
    before = module.decoder.fc.weight.detach().clone()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        recon, mu, log_var = module(x)
        loss = ((recon.float() - x) ** 2).mean() * 1000 - 0.5 * (1 + log_var - mu**2 - log_var.exp()).float().sum(1).mean()
    loss.backward()
    opt.step()
    module.eval()
    assert not torch.equal(before, module.decoder.fc.weight), "the step changed nothing"
    # Outside autocast the dtype check holds: float64 images are still refused.
    with pytest.raises(ValueError, match="expected float32 images"):
        module.encoder(x.double())


def test_vae_pt_decodes_its_own_autocast_latents(export_dir):
    vae = jit(export_dir, "vae.pt")
    x = torch.rand(3, 1, 28, 28)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mu, _ = vae.encode(x)
        out = vae.decode(mu)
    assert out.shape == x.shape
    # bfloat16 latent points are widened for the float32 model outside autocast too...
    assert vae.decode(torch.randn(2, 2, dtype=torch.bfloat16)).dtype == torch.float32
    # ... and float64 ones are refused as before.
    with pytest.raises(torch.jit.Error, match="expected float32 latent points"):
        vae.decode(torch.randn(2, 2, dtype=torch.float64))


def test_check_range_refuses_nan_in_both_forms(module, export_dir):
    x = torch.rand(2, 1, 28, 28)
    x[0, 0, 3, 3] = float("nan")
    module.check_range = True
    try:
        with pytest.raises(ValueError, match="expected image values in \\[0, 1\\]"):
            module.encoder(x)
    finally:
        module.check_range = False
    vae = jit(export_dir, "vae.pt")
    vae.check_range = True
    with pytest.raises(torch.jit.Error, match="expected image values"):
        vae.encode(x)


def test_the_card_says_the_schedule_the_precision_and_which_checkpoint(tmp_path):
    from conftest import write_synthetic

    write_synthetic(tmp_path / "data", n_train=32, n_test=8)
    vae_tch("train", "--device", "cpu", "--quiet", "--data-dir", "data", "--epochs", "3", "--batch-size", "8",
            "--lr-decay", "0.5", "--lr-decay-every", "2", "--precision", "fp32", "--out", "run", cwd=tmp_path)
    card = (tmp_path / "run" / "export" / "README.md").read_text()
    assert "the rate x 0.5 every 2 epochs (the book's step_decay_schedule)" in card, card[:1500]
    assert "fp32 arithmetic" in card, card[:1500]
    assert "encoder.onnx.data" in card and "two graph breaks" in card and "model.train()" in card
    # export --best of a run whose best epoch is not its last says so.
    import csv

    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    best = min(rows, key=lambda r: float(r["test_loss"]))
    vae_tch("export", "run", "--best", cwd=tmp_path)
    best_card = (tmp_path / "run" / "export-best" / "README.md").read_text()
    if int(best["epoch"]) != 3:
        assert "the checkpoint of the lowest test loss, of a run trained 3 epochs" in best_card
    else:
        assert "lowest test loss" not in best_card
