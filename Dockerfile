# The scim-toolkit image: `scim-server serve` by default, and every other command the package
# installs (`idp-sim`, `scim-conformance`) working beside it. Those two cost about 450 KiB of
# Python plus faker (the `idp-sim` extra, 25 MB of the virtualenv's 96 MB): shipping them lets
# compose.yaml run the SAML IdP simulator from this same image and lets an operator check a
# deployment with scim-conformance, where a console script without its package would only fail
# with ModuleNotFoundError.
#
# The image runs against an external MongoDB (MONGODB_URI): the embedded SecantusDB store (the
# `embedded` extra) is GPL-2.0-only and deliberately not part of it.
#
# Build with `docker build -t scim-toolkit .`; README.md ("Docker and Compose") says how to run it.
# tests/test_container.py replays the build stage's COPY and RUN lines in a fresh venv from the
# file set this directory's .dockerignore lets through, then runs every command of the result.

# Pinned by tag and by the digest of the tag's multi-architecture index. The digest is the one
# public Dockerfiles pin for this tag; it was not checked against the registry where this file
# was written (no daemon there): `docker buildx imagetools inspect python:3.11.14-slim-bookworm`
# shows the current one.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# Build: the package and its runtime dependencies into a virtualenv of their own, made without
# pip, so nothing but what the commands import is installed. The base image's pip installs into it.
FROM ${PYTHON_IMAGE} AS build
ENV VIRTUAL_ENV=/opt/scim-toolkit PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY scim_server ./scim_server
COPY samlkit ./samlkit
COPY toolkit_cli ./toolkit_cli
COPY idp_sim ./idp_sim
COPY conformance ./conformance
RUN python -m venv --without-pip "$VIRTUAL_ENV" \
    && python -m pip --python "$VIRTUAL_ENV/bin/python" install --no-cache-dir ".[idp-sim]"

# Run: the virtualenv alone on a fresh base; the base's own pip, setuptools and wheel are
# removed, so the image holds no build or install tools.
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="scim-toolkit" \
      org.opencontainers.image.description="A multi-tenant SCIM 2.0 server on MongoDB, with the idp-sim identity-provider simulator and the scim-conformance runner" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
RUN groupadd --system --gid 10001 scim \
    && useradd --system --uid 10001 --gid scim --create-home --home-dir /home/scim \
       --shell /usr/sbin/nologin scim \
    && python -m pip uninstall --yes --no-cache-dir pip setuptools wheel
COPY --from=build /opt/scim-toolkit /opt/scim-toolkit
ENV VIRTUAL_ENV=/opt/scim-toolkit \
    PATH=/opt/scim-toolkit/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SCIM_HOST=0.0.0.0 \
    SCIM_PORT=8080
# The user scim, by number, so that a runtime can check it is not root without reading
# /etc/passwd (Kubernetes' runAsNonRoot).
USER 10001:10001
WORKDIR /home/scim
EXPOSE 8080
# Liveness on /healthz with the standard library (slim has no curl), on the port the server was
# given; compose.yaml's server healthcheck runs the same command.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('SCIM_PORT', '8080') + '/healthz', timeout=4)"]
CMD ["scim-server", "serve"]
