# The abcscale REST service. No runner extra: no JAX, no Ray; the image serves theory, fits and plots.
# Build: docker build -t abcscale .   Run: docker run -p 8000:8000 -v abcscale-data:/data abcscale
# Pinned: an exact CPython patch release on a named Debian release, so a rebuild cannot move to another Python or
# Debian under us (python:3.11-slim moved from bookworm to trixie). A tag, not a digest: the tag still gets
# Debian's security rebuilds, and no digest can be checked here (no engine, no registry). To freeze the bytes
# too, append the digest `docker buildx imagetools inspect python:3.11.14-slim-bookworm` prints (@sha256:...).
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    ABCSCALE_DATA_DIR=/data

# Built in /src and then removed: a source tree in the working directory would shadow the installed package
# (abcscale/ there lacks the mapped sub-packages), so the image runs from /data with only the installed copy.
WORKDIR /src

# The folders pyproject's [tool.setuptools.package-dir] maps onto abcscale.*, and what the build reads.
COPY pyproject.toml README.md ./
COPY docker/constraints.txt ./docker/
COPY abcscale ./abcscale
COPY schemas ./schemas
COPY theory ./theory
COPY fitting ./fitting
COPY runner ./runner
COPY service ./service

# Makefile's install step (`$(PY) -m pip install --quiet --no-compile -e '.[$(EXTRAS)]'`, then compiled on every
# core; pip compiles here, the image being built once) with only the postgres extra (the service's PostgreSQL
# driver; no JAX, no Ray) and not editable,
# every package at the version of docker/constraints.txt (the tested .venv's; `docker/lock.py` regenerates it).
# The build tools come first, pinned the same way, and build the wheel in place: an isolated build would fetch
# its own unpinned setuptools.
RUN python -m pip install --quiet --upgrade -c docker/constraints.txt pip setuptools \
 && python -m pip install --quiet --no-build-isolation -c docker/constraints.txt '.[postgres]' \
 && rm -rf /src \
 && useradd --create-home --uid 10001 abcscale \
 && mkdir -p /data \
 && chown abcscale:abcscale /data

WORKDIR /data
USER abcscale
VOLUME ["/data"]
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

CMD ["abcscale", "serve", "--host", "0.0.0.0", "--port", "8000"]
