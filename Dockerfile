# syntax=docker/dockerfile:1
# jetstream-pin: wheels are built in the first stage; the final image only
# installs them (no compiler, no build tools, no pip cache, and no pip or
# setuptools left afterwards), adds git (the `git` config-repo source runs it)
# and runs as a non-root numeric user, so Kubernetes can enforce runAsNonRoot.
# No HEALTHCHECK: the kubelet's probes on /healthz and /readyz do that job.
#   docker build --build-arg REVISION=$(git rev-parse HEAD) -t jetstream-pin .
# The base is pinned by digest (docs/operating.md, "The image"); refresh both together:
#   docker buildx imagetools inspect python:3.11-slim-bookworm
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS wheels
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY webhook ./webhook
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint constraints.txt .

FROM ${PYTHON_IMAGE}
ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE_URL=https://github.com/mozilla/jetstream-pin
LABEL org.opencontainers.image.title="jetstream-pin" \
      org.opencontainers.image.description="Admission webhook pinning Jetstream analyses to the tooling current at enrollment" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="MPL-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    apt-get update \
 && apt-get install -y --no-install-recommends git \
 && rm -rf /var/lib/apt/lists/* \
 && pip install --no-index --find-links=/wheels jetstream-pin \
 && python -m pip uninstall --yes pip setuptools wheel \
 && rm -rf /usr/local/lib/python3.11/ensurepip \
 && groupadd --gid 10001 jetstream-pin \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin jetstream-pin
USER 10001:10001
EXPOSE 10250 8444
ENTRYPOINT ["jetstream-pin", "serve"]
