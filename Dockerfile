# syntax=docker/dockerfile:1
# CryptoSpreadEdge services image: `cse worker`, `cse project --follow`, `cse serve`, `cse topics create`.
# Build stage: wheels for the project and its pinned dependencies (compilers only here). Runtime stage: slim
# Python with just the installed wheels, a non-root user, and a healthcheck on the service's /health.

FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# cargo-web/rustc-web: bookworm's Rust >= 1.82 for the compiled market core (core/).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential librdkafka-dev cargo-web rustc-web \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY domain domain
COPY application application
COPY adapters adapters
COPY projections projections
COPY streams streams
COPY core core
# The compiled market core is built here (maturin, `cargo --locked`), then the project's wheel beside it.
RUN cargo --version \
 && pip wheel --wheel-dir /wheels -c requirements.lock ./core \
 && pip wheel --wheel-dir /wheels -c requirements.lock .

FROM python:3.11-slim-bookworm AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CSE_HOME=/var/lib/cse CSE_METRICS_HOST=0.0.0.0 CSE_METRICS_PORT=9100 CSE_LOG_FORMAT=json
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links /wheels cryptospreadedge cse-core \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 cse \
 && useradd --system --uid 10001 --gid cse --home-dir /var/lib/cse --create-home --shell /usr/sbin/nologin cse
COPY deploy/samples/spread-demo.toml /etc/cse/run.toml
USER cse
WORKDIR /var/lib/cse
EXPOSE 9100 8000
# Every long-running cse service answers /health on $CSE_METRICS_PORT (503 while failing or stopping).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('CSE_METRICS_PORT', '9100'), timeout=4)"]
# SIGTERM (docker stop, swarm updates) is a clean shutdown for every service.
STOPSIGNAL SIGTERM
ENTRYPOINT ["cse"]
CMD ["--help"]
