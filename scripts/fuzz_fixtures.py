"""Writes the small Keras weight files that tests/fuzz.rs mutates (committed under tests/fixtures):
a tiny model in Keras 3's .weights.h5 format and in the legacy Keras 2 .h5 format, a few KB each.

    KERAS_BACKEND=torch .venv/bin/python scripts/fuzz_fixtures.py
"""
import os
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")
import h5py  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras.src.legacy.saving import legacy_h5_format  # noqa: E402

out = Path(__file__).resolve().parents[1] / "tests" / "fixtures"
out.mkdir(parents=True, exist_ok=True)
inp = keras.Input(shape=(8, 8, 1))
x = layers.Conv2D(2, 3, padding="same", name="encoder_conv_0")(inp)
x = layers.BatchNormalization()(x)
x = layers.Flatten()(x)
model = keras.Model(inp, layers.Dense(2, name="mu")(x))
model.save_weights(out / "tiny.weights.h5")
with h5py.File(out / "tiny-legacy.h5", "w") as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, model)
print("wrote", *(p.name for p in out.glob("tiny*")))
