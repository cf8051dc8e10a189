"""A run's TensorBoard event files, read by TensorBoard's own reader
(tensorboard.backend.event_processing.event_accumulator): every per-epoch scalar equals
metrics.csv, the running loss is there at its global steps, the image tags decode to the grids'
sizes, the config is there as text, and a run killed between an epoch's events and its
checkpoint shows no step twice after it resumes."""
import csv
import shutil
import struct

import pytest

from conftest import vae_tch, write_synthetic

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")


def load(run):
    ea = event_accumulator.EventAccumulator(
        str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    ea.Reload()
    return ea


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def metrics(run):
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_event_files_match_metrics_and_survive_a_kill_and_resume(tmp_path):
    write_synthetic(tmp_path / "data", n_train=24, n_test=8)
    common = ["--device", "cpu", "--quiet", "--data-dir", "data", "--no-export"]
    vae_tch("train", *common, "--epochs", "2", "--batch-size", "8", "--out", "run",
            "--reconstruction-every", "1", "--lr-decay", "0.5", cwd=tmp_path)
    run = tmp_path / "run"
    kept = tmp_path / "checkpoint-epoch-2"
    shutil.copytree(run / "checkpoint", kept)
    vae_tch("train", "--resume", "run", *common, "--epochs", "3", cwd=tmp_path)
    # A kill after epoch 3's events and before its checkpoint: the epoch-2 checkpoint again.
    shutil.rmtree(run / "checkpoint")
    shutil.copytree(kept, run / "checkpoint")
    vae_tch("train", "--resume", "run", *common, "--epochs", "3", cwd=tmp_path)

    ea = load(run)
    rows = metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    steps_per_epoch = 3  # 24 images, batch 8
    for column in ["train_loss", "train_r_loss", "train_kl_loss", "test_loss", "test_r_loss",
                   "test_kl_loss", "seconds", "learning_rate"]:
        events = ea.Scalars(f"epoch/{column}")
        assert [e.step for e in events] == [steps_per_epoch * (i + 1) for i in range(3)], column
        for e, r in zip(events, rows):
            want = float(r[column])
            assert e.value == pytest.approx(want, rel=1e-6, abs=1e-6), (column, e.step)
    assert [e.value for e in ea.Scalars("epoch/learning_rate")] == pytest.approx([5e-4, 2.5e-4, 1.25e-4])
    running = ea.Scalars("train/running_loss")
    steps = [e.step for e in running]
    assert steps == sorted(set(steps)), steps  # no step twice, in order
    assert steps[0] >= 1 and steps[-1] == 3 * steps_per_epoch
    # The reconstruction grid at every epoch (its PNG is written every epoch here), the samples
    # after the last; both are PNGs of the grid's size (the 8 test images over their
    # reconstructions, 28 x 28 at 2x with 2-pixel gaps; 16 samples in 2 rows of 8).
    recon = ea.Images("reconstructions")
    assert [e.step for e in recon] == [3, 6, 9]
    size = png_size(recon[-1].encoded_image_string)
    assert size == (8 * 58 + 2, 2 * 58 + 2) == (recon[-1].width, recon[-1].height)
    png = (run / "reconstructions-epoch-0003.png").read_bytes()
    assert recon[-1].encoded_image_string == png, "the event holds the PNG the run wrote"
    samples = ea.Images("samples")
    assert [e.step for e in samples] == [6, 9]  # the end of each training: 2 epochs, then 3
    assert png_size(samples[0].encoded_image_string) == (8 * 58 + 2, 2 * 58 + 2)
    # The config, as text: the new run's at step 0, and the config the resume went on with at
    # its step (the two resumes from epoch 2 logged it at the same step: the second replaced
    # the first's). TensorBoard's reader, read as a user's tool reads it.
    config = ea.Tensors("config")
    assert [e.step for e in config] == [0, 2 * steps_per_epoch], [e.step for e in config]
    assert all(b"r_loss_factor" in e.tensor_proto.string_val[0] for e in config)
    assert b"epochs = 3" in config[-1].tensor_proto.string_val[0]


def test_no_tensorboard_writes_no_events(tmp_path):
    write_synthetic(tmp_path / "data", n_train=16, n_test=8)
    vae_tch("train", "--device", "cpu", "--quiet", "--data-dir", "data", "--no-export", "--epochs", "1",
            "--batch-size", "8", "--out", "run", "--no-tensorboard", cwd=tmp_path)
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert "tensorboard = false" in (tmp_path / "run" / "config.toml").read_text()
