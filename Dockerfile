# syntax=docker/dockerfile:1
# jetstream-pin: wheels are built in the first stage; the final image only
# installs them (no compiler, no build tools, no pip cache) and runs as a
# non-root numeric user, so Kubernetes can enforce runAsNonRoot. No HEALTHCHECK:
# the kubelet's probes on /healthz and /readyz do that job.
#   docker build -t jetstream-pin .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS wheels
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY webhook ./webhook
RUN pip wheel --no-cache-dir --wheel-dir /wheels --constraint constraints.txt .

FROM ${PYTHON_IMAGE}
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN --mount=type=bind,from=wheels,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels jetstream-pin \
 && groupadd --gid 10001 jetstream-pin \
 && useradd --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin jetstream-pin
USER 10001:10001
EXPOSE 10250 8444
ENTRYPOINT ["jetstream-pin", "serve"]
