# Lucy image: one image, two roles (worker, ingress) chosen by the command.
FROM python:3.11-slim@sha256:a630a63cdb314e2d138a2fca3e375e319e8568346ffafac5b980f888630ac4f1 AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# The whole runtime tree, every wheel checked against the lock's sha256 (its own layer: code edits
# do not re-install it). The lock also holds the build backend (setuptools, wheel), so Lucy itself
# is built with --no-build-isolation and installed with --no-deps: nothing unhashed is fetched.
COPY requirements.lock ./
RUN pip install --require-hashes --only-binary :all: --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY lucy ./lucy
COPY workflows ./workflows
COPY activities ./activities
COPY ingress ./ingress
COPY migrations ./migrations
RUN pip install --no-deps --no-build-isolation --no-cache-dir . && useradd --system --uid 10001 lucy
USER lucy
EXPOSE 3000
CMD ["lucy", "worker"]
