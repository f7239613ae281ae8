# syntax=docker/dockerfile:1
# The gateway as one container: `gateway serve` (IMAP, SMTP submission, admin HTTP, fetching),
# configured only through GATEWAY_* environment variables (docs/operations.md lists them).
#
#   docker build -t mail-gateway .
#   docker run -p 1993:1993 -p 8080:8080 -v gateway-data:/data mail-gateway
#
# tests/deploy/test_image_entrypoint.py builds what this file builds (a venv from the wheel,
# the same environment, an unprivileged user writing only /data and /tmp) and checks that it
# comes up healthy; hadolint and checkov check this file itself.

# --- build: the project's wheel and every dependency, into a venv copied whole below ---------
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY gateway ./gateway
# The admin panel's files, installed as the package gateway.web (setup.py): the image needs no
# file outside the venv.
COPY web ./web
RUN python -m venv /opt/gateway \
    && /opt/gateway/bin/pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && /opt/gateway/bin/pip install /tmp/wheels/*.whl

# --- run: no compilers, no pip cache, no sources; an unprivileged user ------------------------
FROM python:3.11-slim-bookworm
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_DATA_DIR=/data \
    GATEWAY_BIND=0.0.0.0 \
    GATEWAY_IMAP_PORT=1143 \
    GATEWAY_IMAPS_PORT=1993 \
    GATEWAY_SUBMISSION_PORT=1587 \
    GATEWAY_SMTPS_PORT=1465 \
    GATEWAY_ADMIN_PORT=8080
RUN groupadd --system --gid 10001 gateway \
    && useradd --system --uid 10001 --gid gateway --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gateway \
    && mkdir /data \
    && chown gateway:gateway /data \
    && chmod 700 /data
COPY --from=build /opt/gateway /opt/gateway
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# IMAP (STARTTLS), IMAPS, SMTP submission (STARTTLS), SMTPS, admin HTTP: unprivileged ports, so
# the user needs no capability; a Service maps 993/587/465 onto them.
EXPOSE 1143 1993 1587 1465 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GATEWAY_ADMIN_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["gateway"]
CMD ["serve"]
