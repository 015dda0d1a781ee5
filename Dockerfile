# The broadcaster app image: one image for every process of the Procfile (docs/deploy.md).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# Every dependency ships wheels for linux (psycopg[binary], python-calamine, uvloop): no compiler.
COPY . /app
RUN pip install /app \
    && useradd --create-home --uid 1000 broadcaster \
    && mkdir -p /data/dropbox \
    && chown -R broadcaster /data

USER broadcaster
EXPOSE 8080
# Each compose service (or Procfile line) names its own command; this one serves the API.
CMD ["broadcaster", "api", "--host", "0.0.0.0", "--port", "8080"]
