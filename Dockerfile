# syntax=docker/dockerfile:1
# s5rf-serve: the inference server with the shipped checkpoints.
#   docker build -t s5rf-serve .                               # CPU JAX (default)
#   docker build -t s5rf-serve:cuda --build-arg JAX_VARIANT=cuda12 .   # NVIDIA GPUs
# The CUDA variant takes the CUDA libraries from JAX's pip wheels, so the slim base still
# works; run it with `--gpus all` on a host with the NVIDIA container toolkit.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim AS build
ARG JAX_VARIANT=cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# README.m[d]: the glob lets the build pass while the project has no README.
COPY pyproject.toml README.m[d] ./
COPY model ./model
COPY server ./server
COPY clients ./clients
COPY cli ./cli
RUN pip install . "jax[${JAX_VARIANT}]"

FROM python:${PYTHON_VERSION}-slim AS runtime
# The compilation cache's folder made the user's: a volume mounted there starts out so.
RUN useradd --system --uid 10001 --create-home --home-dir /home/s5rf s5rf \
    && install -d -o s5rf -g s5rf /home/s5rf/.cache/xla
COPY --from=build /opt/venv /opt/venv
COPY --chown=root:root checkpoints /opt/s5rf/checkpoints
COPY --chown=root:root samples /opt/s5rf/samples
# Inside a container the server must listen on every interface; the port is published
# (or kept private to the compose network) by the orchestrator.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    S5RF_HOST=0.0.0.0 \
    S5RF_PORT=8000 \
    S5RF_CHECKPOINTS=/opt/s5rf/checkpoints \
    S5RF_SAMPLES=/opt/s5rf/samples \
    S5RF_COMPILATION_CACHE=/home/s5rf/.cache/xla
USER s5rf
WORKDIR /home/s5rf
EXPOSE 8000
# Ready means every model loaded and every bucketed program compiled: minutes on a first start
# (docs/deployment.md), seconds with the compilation cache filled.
HEALTHCHECK --interval=10s --timeout=3s --start-period=900s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['S5RF_PORT']}/readyz\", timeout=2)"]
ENTRYPOINT ["s5rf", "serve"]
