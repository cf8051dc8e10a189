"""The seed's model built with Keras 3 itself, as the book's code builds it (Foster, "Generative
Deep Learning", ch. 3, models/VAE.py: named layers encoder_conv_i / mu / log_var /
decoder_conv_t_i, a nested encoder and decoder), plus the weight copy from vae-tch's PyTorch
layouts into Keras's (../shared/keras-semantics.md): Conv2D and Conv2DTranspose kernels
permute(2, 3, 1, 0); Dense kernels transpose, with rows (encoder) or columns (decoder) moved from
torch's (c, h, w) flatten order to Keras's (h, w, c)."""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import keras  # noqa: E402
from keras import layers  # noqa: E402

FILTERS_E, STRIDES_E = [32, 64, 64, 64], [1, 2, 2, 1]
FILTERS_D, STRIDES_D = [64, 64, 32, 1], [1, 2, 2, 1]


def build(latent_dim: int = 2, input_shape=(28, 28, 1), strides_e=STRIDES_E, strides_d=STRIDES_D,
          filters_d=FILTERS_D, use_batch_norm=False, use_dropout=False, book_wiring=False):
    """(encoder_mu_log_var, decoder, vae) with the book's layers (models/VAE.py: BatchNormalization
    after each conv but the decoder's last, then LeakyReLU, then Dropout(0.25)). The vae nests both
    halves, or with `book_wiring` as the book does: the encoder's layers in the top model and the
    decoder nested."""
    inp = keras.Input(shape=input_shape, name="encoder_input")
    x = inp
    for i, (f, s) in enumerate(zip(FILTERS_E, strides_e)):
        x = layers.Conv2D(f, 3, strides=s, padding="same", name=f"encoder_conv_{i}")(x)
        if use_batch_norm:
            x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU()(x)
        if use_dropout:
            x = layers.Dropout(rate=0.25)(x)
    shape_before = tuple(x.shape[1:])
    x = layers.Flatten()(x)
    mu = layers.Dense(latent_dim, name="mu")(x)
    log_var = layers.Dense(latent_dim, name="log_var")(x)
    encoder = keras.Model(inp, [mu, log_var], name="encoder")

    z_in = keras.Input(shape=(latent_dim,), name="decoder_input")
    y = layers.Dense(int(np.prod(shape_before)), name="decoder_dense")(z_in)
    y = layers.Reshape(shape_before)(y)
    for i, (f, s) in enumerate(zip(filters_d, strides_d)):
        y = layers.Conv2DTranspose(f, 3, strides=s, padding="same", name=f"decoder_conv_t_{i}")(y)
        if i < len(filters_d) - 1:
            if use_batch_norm:
                y = layers.BatchNormalization()(y)
            y = layers.LeakyReLU()(y)
            if use_dropout:
                y = layers.Dropout(rate=0.25)(y)
        else:
            y = layers.Activation("sigmoid")(y)
    decoder = keras.Model(z_in, y, name="decoder")

    if book_wiring:
        # models/VAE.py: the encoder's layers sit in the top model, z is sampled from mu and
        # log_var by a Lambda (encoder_output), and the decoder is nested.
        def sampling(args):
            m, lv = args
            return m + keras.ops.exp(lv / 2) * keras.random.normal(keras.ops.shape(m))

        z = layers.Lambda(sampling, name="encoder_output")([mu, log_var])
        vae = keras.Model(inp, decoder(z), name="vae")
    else:
        m, _ = encoder(inp)
        vae = keras.Model(inp, decoder(m), name="vae")
    return encoder, decoder, vae


def save(vae, folder, stem: str, fmt: str):
    """Saves `vae`'s weights as a Keras 3 `.weights.h5` (fmt "keras3") or a legacy Keras 2 `.h5`
    (fmt "legacy", as `save_weights` wrote them); returns the path."""
    if fmt == "keras3":
        path = folder / f"{stem}.weights.h5"
        vae.save_weights(path)
        return path
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path = folder / f"{stem}.h5"
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, vae)
    return path


def _np(t):
    return t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)


def torch_to_keras(state: dict, encoder, decoder) -> None:
    """Copies vae-tch / vae_torch weights (PyTorch layouts, (c, h, w) flatten) into the Keras model;
    BatchNormalization layers in order take bn<i>.{weight, bias, running_mean, running_var}."""
    s = {k: _np(v) for k, v in state.items()}
    h, w, c = _before(decoder)
    for model, prefix in [(encoder, "encoder"), (decoder, "decoder")]:
        bns = [l for l in model.layers if isinstance(l, layers.BatchNormalization)]
        for i, bn in enumerate(bns):
            k = f"{prefix}.bn{i + 1}"
            bn.set_weights([s[f"{k}.weight"], s[f"{k}.bias"], s[f"{k}.running_mean"], s[f"{k}.running_var"]])
    for i in range(4):
        encoder.get_layer(f"encoder_conv_{i}").set_weights(
            [s[f"encoder.conv{i + 1}.weight"].transpose(2, 3, 1, 0), s[f"encoder.conv{i + 1}.bias"]])
        decoder.get_layer(f"decoder_conv_t_{i}").set_weights(
            [s[f"decoder.deconv{i + 1}.weight"].transpose(2, 3, 1, 0), s[f"decoder.deconv{i + 1}.bias"]])
    for name in ["mu", "log_var"]:
        wt = s[f"encoder.{name}.weight"]  # [latent, c*h*w] in (c, h, w) order
        latent = wt.shape[0]
        kernel = wt.reshape(latent, c, h, w).transpose(2, 3, 1, 0).reshape(h * w * c, latent)
        encoder.get_layer(name).set_weights([kernel, s[f"encoder.{name}.bias"]])
    wt, b = s["decoder.fc.weight"], s["decoder.fc.bias"]  # [c*h*w, latent]
    latent = wt.shape[1]
    kernel = wt.reshape(c, h, w, latent).transpose(3, 1, 2, 0).reshape(latent, h * w * c)
    decoder.get_layer("decoder_dense").set_weights([kernel, b.reshape(c, h, w).transpose(1, 2, 0).reshape(-1)])


def _before(decoder):
    """(h, w, c) of the decoder's Reshape: the encoder's last feature map."""
    reshape = next(l for l in decoder.layers if isinstance(l, layers.Reshape))
    return tuple(int(d) for d in reshape.target_shape)
