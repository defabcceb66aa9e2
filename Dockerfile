# syntax=docker/dockerfile:1
# Multi-stage: build a wheel with its dependencies, then run it slim and as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir --upgrade pip build
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY ledger ./ledger
COPY policies ./policies
COPY sim ./sim
COPY demo ./demo
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PRSTEWARD_HOST=0.0.0.0 \
    PRSTEWARD_PORT=8080 \
    PRSTEWARD_DATABASE_URL=sqlite+aiosqlite:////data/prsteward.db
RUN useradd --create-home --uid 10001 prsteward && mkdir -p /data && chown prsteward /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER prsteward
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PRSTEWARD_PORT','8080'), timeout=4)" || exit 1
ENTRYPOINT ["prsteward"]
CMD ["serve"]
