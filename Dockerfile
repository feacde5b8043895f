# syntax=docker/dockerfile:1
#
# The production image of o2o-dispatch: one image, two processes.
#   docker build -t o2o-dispatch .
#   docker run ... o2o-dispatch            # the HTTP API (`o2o api`, port 8000)
#   docker run ... o2o-dispatch o2o worker # the Temporal worker
# Both apply the database migrations on start. Configuration is the environment
# (see settings.py); docker-compose.yml shows a complete production stack.

# Both stages share one base so that the venv's interpreter path (/usr/local/bin/python3.11)
# is the same where the venv is built and where it runs.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build

ARG UV_VERSION=0.13.9
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /app

# The locked dependencies first, in their own layer: rebuilt only when the lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project

# Then the project itself. It stays an editable install rooted at /app, because the
# migrations are found next to the code (alembic.ini and migrations/ are not in the wheel).
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev \
 && python -m compileall -q -x '/\.venv/' /app


FROM ${PYTHON_IMAGE} AS runtime

# ENVIRONMENT=production makes the settings refuse the development admin token and the
# embedded database: ADMIN_TOKEN and DATABASE_URL must be given.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ENVIRONMENT=production \
    API_HOST=0.0.0.0 \
    API_PORT=8000 \
    STATE_DIR=/var/lib/o2o

RUN groupadd --system --gid 10001 o2o \
 && useradd --system --uid 10001 --gid o2o --create-home --home-dir /home/o2o \
        --shell /usr/sbin/nologin o2o \
 && install -d -o o2o -g o2o -m 0750 /var/lib/o2o

WORKDIR /app
# Owned by root: the service user can read and run the code, not change it.
COPY --from=build /app /app

USER 10001:10001
EXPOSE 8000

# For the API (the default command). The worker serves no HTTP: compose disables this
# check for it.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/api/v1/health' % os.environ.get('API_PORT', '8000'), timeout=4)"]

CMD ["o2o", "api"]
