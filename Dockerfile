# Lucy image: one image, two roles (worker, ingress) chosen by the command.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY lucy ./lucy
COPY workflows ./workflows
COPY activities ./activities
COPY ingress ./ingress
COPY migrations ./migrations
RUN pip install --no-cache-dir . && useradd --system --uid 10001 lucy
USER lucy
EXPOSE 3000
CMD ["lucy", "worker"]
