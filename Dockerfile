# The support bot's container image: python:3.11-slim, the runtime requirements only, a
# non-root user, `python -m bot` as the entry point. See docs/deploy.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # litellm's bundled cost table: no download at start-up, costs of the installed version.
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    # HTTP mode's health endpoint; see HEALTHCHECK below.
    HEALTHCHECK_URL=http://127.0.0.1:3000/healthz

WORKDIR /app

COPY requirements-runtime.txt ./
RUN pip install -r requirements-runtime.txt

RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin bot

# Only what the bot runs with (.dockerignore keeps tests, the sandbox's browser tools, local
# databases and virtualenvs out).
COPY --chown=root:root alembic.ini app.yaml slack-manifest.yaml ./
COPY --chown=root:root bot ./bot
COPY --chown=root:root storage ./storage
COPY --chown=root:root migrations ./migrations

# The code stays read-only for the bot's user; only /app/data (a SQLite file, if used) is its.
RUN mkdir -p /app/data && chown bot /app/data
USER bot

EXPOSE 3000

# /healthz: 200 while the database answers (HTTP mode). In Socket Mode the bot serves no HTTP:
# run the container with --no-healthcheck (or point HEALTHCHECK_URL at the metrics server).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(os.environ['HEALTHCHECK_URL'], timeout=4).status == 200 else 1)"]

ENTRYPOINT ["python", "-m", "bot"]
CMD ["run"]
