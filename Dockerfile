# syntax=docker/dockerfile:1
# bccd, the Smart Bcc inbound mail server: `docker build -t bccd .`
# Written without a Docker engine at hand (none on the development machine); docs/deploy.md says what
# was and was not verified.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: install bccd and its pinned dependencies into a virtualenv --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/bccd
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY bccd ./bccd
# constraints.txt pins every dependency to the versions the test suite ran with. All of them ship
# manylinux wheels for CPython 3.11, so no compiler is needed.
RUN /opt/bccd/bin/pip install --constraint constraints.txt /src

# --- runtime: the virtualenv and nothing else, run as an unprivileged user ----------------------------
FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 bccd \
 && useradd --system --uid 10001 --gid bccd --home-dir /data --no-create-home --shell /usr/sbin/nologin bccd \
 && mkdir /data \
 && chown bccd:bccd /data
COPY --from=build /opt/bccd /opt/bccd

# Defaults for a container; every one can be overridden with -e / `environment:` (BCCD_* wins over any
# --config file). The SQLite default lives on the /data volume so a container can be replaced without
# losing mail; several nodes use PostgreSQL instead (BCCD_DATABASE__URL=postgresql+asyncpg://…).
ENV PATH=/opt/bccd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BCCD_DATABASE__URL=sqlite+aiosqlite:////data/bccd.sqlite3 \
    BCCD_SMTP__HOST=0.0.0.0 \
    BCCD_HTTP__HOST=0.0.0.0 \
    BCCD_LOG__FORMAT=json

WORKDIR /data
VOLUME ["/data"]
USER bccd

# 2525: SMTP (publish it as port 25 of the MX host); 8025: HTTP API, /healthz, /readyz, /metrics.
# Unprivileged ports, so the process needs no capabilities.
EXPOSE 2525 8025

# Liveness of the process. Readiness (database reachable, SMTP listening) is /readyz, for load balancers.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('BCCD_HTTP__PORT', '8025'), timeout=4)"]

# bccd drains SMTP sessions for up to 30 s on SIGTERM: stop with a grace period longer than that
# (`docker stop -t 45`, compose `stop_grace_period: 45s`). The schema is migrated by `bccd db upgrade`,
# run once per release before the nodes start (see compose.yaml's `migrate` service).
CMD ["bccd", "serve"]
