# dsiem-sql: the Dsiem correlation backend with SQLite state.
#   docker build -t dsiem-sql .
#   docker run see docs/deployment.md

FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dsiem_sql ./dsiem_sql
COPY migrations ./migrations
RUN python -m venv /opt/dsiem-sql \
 && /opt/dsiem-sql/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/dsiem-sql/bin/pip install --no-cache-dir -e /src

FROM python:3.12-slim
RUN useradd --system --uid 10001 --home-dir /dsiem --create-home dsiem
COPY --from=build /opt/dsiem-sql /opt/dsiem-sql
COPY --from=build /src /src
ENV PATH=/opt/dsiem-sql/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DSIEM_CONFIGS=/dsiem/configs \
    DSIEM_LOGS=/dsiem/logs \
    DSIEM_DB=/dsiem/data/dsiem.db \
    DSIEM_MSQ=nats://dsiem-nats:4222 \
    DSIEM_METRICS_PORT=9100 \
    DSIEM_JSON=true
RUN mkdir -p /dsiem/configs /dsiem/logs /dsiem/data && chown -R dsiem /dsiem
USER dsiem
WORKDIR /dsiem
VOLUME ["/dsiem/configs", "/dsiem/logs", "/dsiem/data"]
EXPOSE 9100
HEALTHCHECK --interval=30s --timeout=3s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9100/healthz', timeout=2)"
ENTRYPOINT ["dsiem-sql"]
CMD ["serve"]
