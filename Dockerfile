# One image for every process: `orchestrator migrate | web | worker | scheduler`
# (the Procfile's entries). The default command is the web tier on $PORT (8070).
#
#   docker build -t incidentfox-orchestrator .
#   docker run --rm -p 8070:8070 -e DATABASE_URL=... -e REDIS_URL=... \
#       -e CONFIG_SERVICE_URL=... -e ORCHESTRATOR_SECRET_KEY=... incidentfox-orchestrator
#
# No HEALTHCHECK here on purpose: worker and scheduler run from this image too and do
# not serve :8070. The web tier's check is `GET /ready` (see docker-compose.yml).
FROM python:3.11-slim

# A non-editable install puts the code in site-packages, away from migrations/:
# orchestrator/db/migrations.py reads ORCHESTRATOR_MIGRATIONS_DIR before its own guess.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    ORCHESTRATOR_MIGRATIONS_DIR=/app/migrations

WORKDIR /app

# The repository's source, listed explicitly rather than `COPY . .`: that would also
# copy .git, a local .venv and .orchestrator-dev/ (whose secrets.json holds dev tokens).
COPY pyproject.toml README.md ./
COPY orchestrator/ orchestrator/
COPY web/ web/
COPY workers/ workers/
COPY scheduler/ scheduler/
COPY cli/ cli/
COPY migrations/ migrations/

# Every dependency ships manylinux wheels for x86_64 (psycopg[binary], cryptography),
# so no compiler is needed on this slim base. The embedded Postgres/Redis of
# `orchestrator dev` are the optional `[embedded]` extra and stay out of the image.
RUN pip install --no-cache-dir . \
    && rm -rf build ./*.egg-info \
    && useradd --system --create-home --uid 10001 --user-group orchestrator

USER orchestrator

# PORT is left unset: the web tier defaults to 8070, and a set PORT would also move the
# worker's metrics port (ORCHESTRATOR_WORKER_METRICS_PORT defaults to $PORT, else 9191).
EXPOSE 8070

# gunicorn (web) and Dramatiq (worker) both stop gracefully on SIGTERM, Docker's default.
CMD ["orchestrator", "web"]
