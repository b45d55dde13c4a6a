# Lucy image: one image, two roles (worker, ingress) chosen by the command.
FROM python:3.11-slim@sha256:a630a63cdb314e2d138a2fca3e375e319e8568346ffafac5b980f888630ac4f1 AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/lucy PATH=/opt/lucy/bin:$PATH
WORKDIR /app
# The installer first: the image's pip (whatever version it is) installs only uv, one hash-checked
# wheel with --no-deps, into a throwaway venv. That uv then syncs Lucy's venv to the runtime lock:
# exactly the locked set, every wheel checked against its sha256, nothing resolved, so neither the
# base image's pip nor a release published after the lock can change what installs. Its own layer:
# code edits do not re-install it.
COPY requirements-bootstrap.lock requirements.lock ./
RUN python -m venv /opt/installer && python -m venv /opt/lucy \
    && /opt/installer/bin/pip install --require-hashes --only-binary :all: --no-deps --no-cache-dir -r requirements-bootstrap.lock \
    && /opt/installer/bin/uv pip sync --python /opt/lucy/bin/python --require-hashes --only-binary :all: --no-cache requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY lucy ./lucy
COPY app ./app
COPY capabilities ./capabilities
COPY migrations ./migrations
# Lucy itself: its build backend (setuptools, wheel) is in the lock, so --no-build-isolation fetches
# nothing and --no-deps resolves nothing. Then the installer goes.
RUN /opt/installer/bin/uv pip install --python /opt/lucy/bin/python --no-deps --no-build-isolation --no-cache . \
    && rm -rf /opt/installer && useradd --system --uid 10001 lucy
USER lucy
EXPOSE 3000
CMD ["lucy", "worker"]
