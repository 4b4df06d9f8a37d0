# livetrain: one container on the embedded default (SQLite + files under /var/lib/livetrain).
#   docker build -t livetrain .
#   docker run -p 8000:8000 -v livetrain-home:/var/lib/livetrain livetrain
# A worker of the scale-out mode (docker-compose.yml's `scale` profile) is this image with another
# command; it has no HTTP port, so the health check below does not apply to it:
#   docker run --no-healthcheck -v SHARED:/var/lib/livetrain -e LIVETRAIN_DATABASE_URL=postgresql+psycopg://... \
#     livetrain livetrain worker --broker redis://REDIS:6379/0 --message-queue redis://REDIS:6379/1 \
#     --concurrency 1 --queues default --device cpu
# MNIST is optional: mount its files at /var/lib/livetrain/data/mnist (or set LIVETRAIN_MNIST_DIR).
# Auth is on (every request needs an API token; docs/security.md). The log says so at start; the
# first admin token is made inside the container, on its database, and printed once:
#   docker exec CONTAINER livetrain tokens create --name admin --scope admin
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them.
# requirements.txt pins torch==2.13.0. On PyPI that version's Linux wheel pulls several GB
# of CUDA libraries; the PyTorch CPU index has the same version as 2.13.0+cpu. With both
# indexes pip takes 2.13.0+cpu: `==2.13.0` matches it, and a local version (+cpu) ranks
# above the plain one. Every other package comes from PyPI as usual.
COPY requirements.txt ./
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

COPY pyproject.toml setup.py MANIFEST.in README.md ./
COPY src ./src
COPY templates ./templates
COPY static ./static
RUN pip install --no-deps .

RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/livetrain --shell /usr/sbin/nologin livetrain \
    && mkdir -p /var/lib/livetrain \
    && chown livetrain:livetrain /var/lib/livetrain

ENV LIVETRAIN_HOME=/var/lib/livetrain \
    LIVETRAIN_AUTH=on
VOLUME ["/var/lib/livetrain"]
WORKDIR /var/lib/livetrain
USER 10001:10001

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/health', timeout=4)"]

# livetrain stops cleanly on SIGTERM (what `docker stop` sends) and on SIGINT: it ends its
# worker processes and marks the runs that were going `interrupted`, ready to resume.

CMD ["livetrain", "serve", "--host", "0.0.0.0", "--port", "8000"]
