# vae-tch in a container, driven by scripts/setup.sh so that the torch pin cannot drift from the
# one the tests use. .dockerignore keeps a checkout's .venv, target/ and data/ out of the build.
#   docker build -t vae-tch .
#   docker run --gpus all -v $PWD/data:/workspace/data -v $PWD/runs:/workspace/runs \
#     vae-tch data fetch mnist
#   docker run --gpus all -v $PWD/data:/workspace/data -v $PWD/runs:/workspace/runs \
#     vae-tch train --device cuda

# --- build: the venv with the pinned torch wheel (libtorch), then the release binary --------
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only what the build needs (torch and the CUDA headers), not the Python test packages.
RUN VAE_TCH_SKIP_DATA=1 VAE_TCH_BUILD_ONLY=1 scripts/setup.sh

# --- runtime: the same torch wheel at the same path (the binary's rpath points there) --------
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv npm \
        ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/*
COPY scripts/setup.sh /tmp/setup.sh
RUN python3 -m venv /src/.venv \
    && /src/.venv/bin/pip install --no-cache-dir \
        "torch==$(sed -n 's/^TORCH_VERSION=\([0-9.]*\).*/\1/p' /tmp/setup.sh)" \
    && rm /tmp/setup.sh
COPY --from=build /src/target/release/vae-tch /usr/local/bin/vae-tch
WORKDIR /workspace
VOLUME ["/workspace/data", "/workspace/runs"]
ENTRYPOINT ["vae-tch"]
CMD ["--help"]
