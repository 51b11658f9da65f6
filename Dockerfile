# dsiem-sql: the Dsiem correlation backend with SQLite state.
#   docker build -t dsiem-sql .
#   docker run: see docs/deployment.md
# A tag, which its publisher moves to new builds; for one exact image pass a digest:
#   docker build --build-arg PYTHON_IMAGE=python@sha256:<digest> ...  (docs/deployment.md)
ARG PYTHON_IMAGE=python:3.12.8-slim-bookworm

# The wheel, built from the source (migrations/ goes into it as dsiem_sql.migrations).
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY dsiem_sql ./dsiem_sql
COPY migrations ./migrations
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM ${PYTHON_IMAGE}
# Fixed ids (not the next free system ones), as they show on bind-mounted host directories.
RUN groupadd --system --gid 10001 dsiem \
 && useradd --system --uid 10001 --gid 10001 --home-dir /dsiem --create-home dsiem
# The dependencies of pyproject.toml at the versions of requirements.lock, in a layer of
# their own: a change of the code alone does not install them again.
COPY pyproject.toml requirements.lock /tmp/deps/
RUN python -c "import tomllib; print(*tomllib.load(open('/tmp/deps/pyproject.toml', 'rb'))\
['project']['dependencies'], sep='\n')" > /tmp/deps/requirements.txt \
 && python -m venv /opt/dsiem-sql \
 && /opt/dsiem-sql/bin/pip install --no-cache-dir \
      -c /tmp/deps/requirements.lock -r /tmp/deps/requirements.txt \
 && rm -rf /tmp/deps
COPY --from=build /wheels /tmp/wheels
RUN /opt/dsiem-sql/bin/pip install --no-cache-dir --no-deps /tmp/wheels/*.whl \
 && /opt/dsiem-sql/bin/pip check \
 && rm -rf /tmp/wheels
ENV PATH=/opt/dsiem-sql/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DSIEM_CONFIGS=/dsiem/configs \
    DSIEM_LOGS=/dsiem/logs \
    DSIEM_DB=/dsiem/data/dsiem.db \
    DSIEM_MSQ=nats://dsiem-nats:4222 \
    DSIEM_METRICS_HOST=0.0.0.0 \
    DSIEM_METRICS_PORT=9100 \
    DSIEM_JSON=true
# Mounted host directories must be writable by uid 10001 (see docs/deployment.md).
RUN mkdir -p /dsiem/configs /dsiem/logs /dsiem/data && chown -R 10001:10001 /dsiem
USER 10001:10001
WORKDIR /dsiem
VOLUME ["/dsiem/configs", "/dsiem/logs", "/dsiem/data"]
EXPOSE 9100
# Shell form: the metrics address and port are read when the check runs.
HEALTHCHECK --interval=30s --timeout=3s \
  CMD host=${DSIEM_METRICS_HOST:-0.0.0.0}; [ "$host" != 0.0.0.0 ] || host=127.0.0.1; \
      python -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" \
        "http://$host:${DSIEM_METRICS_PORT:-9100}/healthz"
ENTRYPOINT ["dsiem-sql"]
CMD ["serve"]
