# The pipeline image for the Kubernetes stack (configs/stacks/kubernetes.yaml): the same
# environment as `make install`, from the same lockfile with the same pip commands
# (tests/unit/test_kubernetes.py fails when they drift apart). Build from the repository
# root at the commit you run:
#   docker build -t "$CRYPTOCAST_IMAGE" . && docker push "$CRYPTOCAST_IMAGE"
FROM python:3.11-slim

# torch and LightGBM load OpenMP at import: Debian's libgomp1 (the slim image lacks it)
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

# A numeric user: Kubernetes can only verify runAsNonRoot (the pods' security context) for
# a numeric USER.
RUN groupadd --gid 10001 cryptocast \
 && useradd --create-home --uid 10001 --gid 10001 cryptocast \
 && install -d -o 10001 -g 10001 /app

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    ZENML_ANALYTICS_OPT_IN=false \
    ZENML_LOGGING_COLORS_DISABLED=true \
    OMP_WAIT_POLICY=PASSIVE \
    PATH=/opt/venv/bin:$PATH

# torch==2.13.0+cpu is on PyTorch's CPU index, not on PyPI (README: Environment); a build
# argument, so it does not stay in the image's environment
ARG PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu

# Layers from least to most often changed: the interpreter's venv and pip, the locked
# packages (rebuilt only when requirements.lock changes), then the project's code.
# PY is the venv's interpreter, as in the Makefile ($(PY) = .venv/bin/python).
ARG PY=/opt/venv/bin/python
RUN python3.11 -m venv /opt/venv \
 && $PY -m pip install --quiet --upgrade "pip>=24" "setuptools>=77"

WORKDIR /app
COPY requirements.lock ./
RUN $PY -m pip install --quiet -r requirements.lock

COPY --chown=10001:10001 . .
RUN PYTHONWARNINGS=ignore::UserWarning $PY -m pip install --quiet --no-deps --no-build-isolation -e .

USER 10001:10001
