# syntax=docker/dockerfile:1
# One image for every part of the stack: `cofounder api` (the default), `cofounder worker`,
# `cofounder db upgrade` and the operators' one-off commands (`cofounder replay --recent 50`).
# Its workers run builds in E2B (COFOUNDER_SANDBOX=e2b, set where they run): the image has no
# bubblewrap and needs no privileges. No HEALTHCHECK: api, worker and one-off tasks need
# different ones, so docker-compose.yml and the ECS task definitions set their own.

# The base of the builder and the final stage must be the same image: the venv's interpreter
# is a link to it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# The dashboard's one browser library (htmx), exactly as package-lock.json pins it.
FROM node:24-bookworm-slim AS dashboard
WORKDIR /dashboard
COPY api/dashboard/package.json api/dashboard/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund --loglevel=error

# The project and its dependencies, installed (not editable) into a venv of their own.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md worker.py ./
COPY cofounder ./cofounder
COPY workflows ./workflows
COPY activities ./activities
COPY api ./api
RUN /opt/venv/bin/pip install .

FROM ${PYTHON_IMAGE}
ARG GIT_SHA=unknown
LABEL org.opencontainers.image.title="cofounder" \
      org.opencontainers.image.revision="${GIT_SHA}"
# git: checkouts, commits and pushes are the git CLI (activities/gitcli.py); HTTPS remotes
# need its curl helper, which Debian's git brings. The Debian release is pinned by the base
# image; its packages take security updates, so they are not pinned one by one.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates git \
    && rm -rf /var/lib/apt/lists/*
# A fixed uid, so volumes and the ECS task's file permissions can name it.
RUN groupadd --gid 10001 cofounder \
    && useradd --uid 10001 --gid 10001 --create-home --shell /usr/sbin/nologin cofounder \
    && mkdir /data \
    && chown cofounder:cofounder /data
# Scratch space on a read-only root filesystem (the ECS tasks run so): Fargate gives each
# declared volume the image's ownership, so the app's user can write there.
VOLUME ["/tmp", "/data"]
COPY --from=builder /opt/venv /opt/venv
# Where api/dashboard/assets.py looks for it: beside the installed package.
COPY --from=dashboard /dashboard/node_modules/htmx.org/dist/htmx.min.js \
     /opt/venv/lib/python3.11/site-packages/api/dashboard/node_modules/htmx.org/dist/htmx.min.js
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    COFOUNDER_DATA_DIR=/data
# An empty working directory: Settings reads a .env from it, and none belongs in the image.
WORKDIR /app
USER 10001:10001
EXPOSE 8000 9464
ENTRYPOINT ["cofounder"]
CMD ["api"]
