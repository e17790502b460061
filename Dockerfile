# syntax=docker/dockerfile:1
# The Bellwether operator image: `docker build -t bellwether:0.1.0 .` (the tag the Helm chart expects by default).
#
# The base is pinned to an exact Python patch release on Debian bookworm. It is not pinned by digest:
# no registry was reachable to look the digest up when this was written. To pin it, run
# `docker buildx imagetools inspect python:3.12.12-slim-bookworm`, and build with
# `--build-arg PYTHON_IMAGE=python:3.12.12-slim-bookworm@sha256:<digest>`.
ARG PYTHON_IMAGE=python:3.12.12-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
RUN python -m venv /opt/bellwether
ENV PATH=/opt/bellwether/bin:$PATH
WORKDIR /src
# Only what the package needs (see .dockerignore): source changes do not invalidate other layers' caches.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN pip install --no-cache-dir . \
    && bellwether --help >/dev/null

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/bellwether/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp
COPY --from=build /opt/bellwether /opt/bellwether
# A numeric non-root user, so Kubernetes can check runAsNonRoot without an /etc/passwd entry.
USER 65532:65532
# /metrics and /healthz (bellwether run --metrics-port, --health-port).
EXPOSE 8080 8081
ENTRYPOINT ["bellwether", "run"]
