# circular-mfa: the GraphQL service in a two-stage image.
#
#   build    a virtualenv at /opt/venv holding the project and its dependencies (all wheels,
#            so no compiler); the project is installed as a wheel, not from a checkout.
#   runtime  the same slim Python, the virtualenv, the Alembic environment and the sample
#            datasets; runs as uid 10001 with the SQLite file and uploaded imports in /data.
#
# Build and run: see docs/deploy.md.

FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# No pip inside the virtualenv: the base image's pip installs into it (--python), so the
# runtime stage carries no installer.
RUN python -m venv --without-pip /opt/venv

WORKDIR /src

# Dependencies first, in a layer of their own so that editing the code does not re-download
# them: the runtime list from pyproject.toml, at the versions requirements.lock pins (a
# constraints file: it also pins the dev tools, which are not installed here).
COPY pyproject.toml requirements.lock ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
    && pip --python /opt/venv/bin/python install --no-cache-dir \
        -c requirements.lock -r /tmp/requirements.txt

COPY README.md ./
COPY mfa/ mfa/
COPY lca/ lca/
RUN pip --python /opt/venv/bin/python install --no-cache-dir --no-deps . \
    && pip --python /opt/venv/bin/python check


FROM python:3.11-slim

# A fixed, unprivileged uid/gid, so volume ownership is predictable across rebuilds and
# orchestrators can check runAsNonRoot against the numeric USER below.
RUN groupadd --system --gid 10001 mfa \
    && useradd --system --uid 10001 --gid mfa --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin mfa \
    && mkdir /data \
    && chown mfa:mfa /data

COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# alembic.ini only serves the `alembic` command (history, downgrade); `mfa migrate` does not
# read it.
COPY alembic.ini ./
COPY alembic/ alembic/
COPY datasets/ datasets/

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MFA_ALEMBIC_DIR=/app/alembic \
    MFA_DATASETS_DIR=/app/datasets \
    MFA_BRIGHTWAY_DIR=/data/brightway \
    MFA_DATABASE_URL=sqlite:////data/mfa.db \
    MFA_IMPORT_DIR=/data/imports

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000

# /healthz answers 200 when the app can run `SELECT 1` on its database, 503 otherwise (/readyz
# adds the migrations, for a load balancer); urlopen raises on anything but 2xx, and the
# uncaught exception exits 1 (unhealthy).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["mfa", "serve", "--host", "0.0.0.0", "--port", "8000", "--migrate"]
