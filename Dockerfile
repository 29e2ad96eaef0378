# syntax=docker/dockerfile:1
# fastwamp router image.
#   docker build -t fastwamp .
#   docker run --rm -p 8080:8080 -p 8081:8081 fastwamp
# Stage 1 builds the wheels (fastwamp with its compiled core, and its
# dependencies); stage 2 installs them in a slim image and runs as a non-root user.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY fastwamp ./fastwamp
# A missing compiler must fail the image build, not ship the pure-Python router.
ENV FASTWAMP_REQUIRE_EXTENSIONS=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN pip wheel --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels fastwamp \
    && useradd --system --uid 10001 --user-group --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin fastwamp \
    && install -d -o fastwamp -g fastwamp /var/lib/fastwamp
COPY packaging/docker.toml /etc/fastwamp/fastwamp.toml
USER fastwamp
# Writable, for history_store files (relative names start here): mount a volume on it.
WORKDIR /var/lib/fastwamp
# WebSocket (ws://HOST:8080/ws) and RawSocket (tcp://HOST:8081).
EXPOSE 8080 8081
# Liveness: /health of the configuration's http listener when it has one (add one to
# serve /metrics too), else the RawSocket listener's handshake (the default file).
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-m", "fastwamp.healthcheck", "--config", "/etc/fastwamp/fastwamp.toml"]
# SIGTERM: GOODBYE to every session, then exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["fastwamp"]
CMD ["--config", "/etc/fastwamp/fastwamp.toml"]
