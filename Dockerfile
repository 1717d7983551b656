# Production image: web (ASGI), worker and beat all run from it with different commands.
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY scripts/build_assets.mjs scripts/
RUN node scripts/build_assets.mjs

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HASHINSIGHT_ENV=production
WORKDIR /app
RUN useradd --create-home --uid 10001 hashinsight
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
COPY --from=assets /src/static/vendor static/vendor
# collectstatic needs settings but no real secrets or services.
RUN SECRET_KEY=build FIELD_ENCRYPTION_KEY=MDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDA= \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 REDIS_URL=redis://localhost:6379/0 ALLOWED_HOSTS=build \
    TRUSTED_PROXY_COUNT=0 METRICS_PUBLIC=true \
    python manage.py collectstatic --noinput
# The private files' volume mount point, owned by the app user (a new named volume takes this ownership).
RUN mkdir -p /srv/hashinsight-private && chown hashinsight /srv/hashinsight-private
USER hashinsight
EXPOSE 8000
CMD ["uvicorn", "hashinsight.asgi:application", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--workers", "2"]
