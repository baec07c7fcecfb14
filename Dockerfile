# The one carprice image: api, relay, inference, projector, ui and init are its commands
# (see docker-compose.yml). No secret is baked in: they come from the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY commands ./commands
COPY projections ./projections
COPY consumers ./consumers
COPY api ./api
COPY ui ./ui
COPY model_registry ./model_registry
COPY infra ./infra
COPY cli ./cli
COPY migrations ./migrations
COPY devstack ./devstack
COPY bench ./bench
# no `devstack` extra: the image runs against external PostgreSQL and Kafka
RUN pip install . \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin carprice \
 && mkdir -p /models \
 && chown carprice:carprice /models

# production: external PostgreSQL and Kafka, secrets required, JSON logs
ENV CARPRICE_MODE=production \
    CARPRICE_HOME=/home/carprice/.carprice \
    MODEL_REGISTRY_DIR=/models \
    LOG_FORMAT=json

USER carprice
EXPOSE 8000 8501
CMD ["carprice", "api", "--host", "0.0.0.0", "--port", "8000"]
