# One image for every salesbi role: the pipeline CLI (`salesbi run`), the Prefect worker
# (`prefect worker start --pool salesbi-process`), the API (`salesbi api`). See docs/docker.md.
#
#   docker build -t salesbi .                                  # python:3.11-slim, ODBC driver auto
#   docker build --build-arg ODBC_DRIVER=msodbcsql18 -t salesbi .   # insist on Microsoft's driver
#   podman build --build-arg BASE=localhost/debian:bookworm --build-arg ODBC_DRIVER=freetds -t salesbi .
#
# BASE: any Debian image with Python 3.11 or without Python (then Debian bookworm's python3, 3.11).
# ODBC_DRIVER: auto (Microsoft ODBC Driver 18 where packages.microsoft.com is reachable, else FreeTDS),
#   msodbcsql18 (fail without it), freetds (Debian's tdsodbc). /etc/salesbi/odbc-driver names the result.
ARG BASE=python:3.11-slim

# ---------------------------------------------------------------- runtime libraries (shared by both stages)
# the tag is in the ARG's default (hadolint does not expand ARGs in FROM)
# hadolint ignore=DL3006
FROM ${BASE} AS system
ARG ODBC_DRIVER=auto
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY docker/install-system.sh /usr/local/sbin/install-system.sh
RUN install-system.sh runtime "${ODBC_DRIVER}"

# ---------------------------------------------------------------- build: the virtual environment from the lock
FROM system AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG UV_VERSION=0.13.9
# uv and pip read the system CA bundle (a base made for a TLS-re-signing proxy carries its CA there)
ENV UV_NATIVE_TLS=1 \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
RUN install-system.sh build \
    && python3 -m venv /opt/uv \
    && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}" \
    && /opt/uv/bin/uv venv --quiet --python "$(command -v python3)" /opt/salesbi
WORKDIR /src
# the runtime dependencies (with the postgres and sqlserver extras) at the versions in requirements.lock;
# a layer of its own so a code change does not reinstall them
COPY requirements.lock pyproject.toml README.md ./
RUN /opt/uv/bin/uv pip install --quiet --no-cache --python /opt/salesbi/bin/python \
        --constraint requirements.lock -r pyproject.toml --extra postgres --extra sqlserver
COPY salesbi ./salesbi
COPY tasks ./tasks
COPY flows ./flows
COPY profiles ./profiles
COPY expectations ./expectations
RUN /opt/uv/bin/uv pip install --quiet --no-cache --python /opt/salesbi/bin/python \
        --constraint requirements.lock --no-deps . \
    && /opt/salesbi/bin/python -c "import salesbi.cli, flows.sales_pipeline, pyodbc, arrow_odbc, psycopg"

# ---------------------------------------------------------------- the image
FROM system AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN useradd --uid 10001 --user-group --create-home --home-dir /home/salesbi --shell /bin/bash salesbi
COPY --from=build /opt/salesbi /opt/salesbi
# the checkout the Prefect worker runs flows from (prefect.yaml's pull step: $SALESBI_HOME);
# var/ (CSV drop, embedded warehouse) and out/ (Parquet, PBIP, models) are volumes in compose.yaml
WORKDIR /app
COPY prefect.yaml ./
COPY flows ./flows
COPY tasks ./tasks
COPY profiles ./profiles
COPY expectations ./expectations
COPY sql_server ./sql_server
COPY powerbi ./powerbi
COPY docker/entrypoint.sh docker/deploy.sh /usr/local/bin/
# the mount points exist, owned by salesbi, so that new named volumes inherit a writable owner
RUN mkdir -p /app/var/sample /app/var/warehouse /app/out/models \
    && chown -R salesbi:salesbi /app/var /app/out
ENV PATH=/opt/salesbi/bin:$PATH \
    SALESBI_HOME=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PREFECT_HOME=/home/salesbi/.prefect \
    PREFECT_SERVER_ANALYTICS_ENABLED=false
USER salesbi
EXPOSE 8000
ENTRYPOINT ["/usr/local/bin/entrypoint.sh"]
CMD ["salesbi", "--help"]
