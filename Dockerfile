# syntax=docker/dockerfile:1
# The toolchain: data, training (TensorFlow), conversion to int8 TFLite, the gate, MLflow.
#   docker build -t kws-edge-toolchain .
#   docker run --rm -v "$PWD/runs:/home/kws/work" kws-edge-toolchain          # the demo pipeline
#   docker run --rm -p 5000:5000 kws-edge-toolchain mlflow ui --host 0.0.0.0  # MLflow UI
# Versions: the base image tag, Debian packages and deploy/constraints.txt (pip) are pinned.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/kws
COPY deploy/constraints.txt ./deploy/constraints.txt
COPY pyproject.toml README.md ./
COPY toolchain/pyproject.toml ./toolchain/pyproject.toml
COPY edge_runtime ./edge_runtime
COPY artifacts ./artifacts
COPY kws ./kws
COPY train ./train
COPY convert ./convert
COPY benchmarks ./benchmarks
# the device package and the toolchain (kws, train, convert, benchmarks) beside it
RUN /opt/kws/bin/python -m pip install --no-cache-dir -c deploy/constraints.txt \
        ".[edge,serve]" "./toolchain[train]" \
    && find /opt/kws -name '__pycache__' -type d -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="kws-edge-toolchain" \
      org.opencontainers.image.description="kws-edge training, int8 conversion and MLflow tracking" \
      org.opencontainers.image.licenses="Apache-2.0"
# espeak-ng: the demo pipeline's generated speech; make: `make demo`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends espeak-ng=1.51+dfsg-10+deb12u2 make=4.3-4.1 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 kws \
    && useradd --uid 10001 --gid kws --home-dir /home/kws --create-home \
       --shell /bin/bash kws
COPY --from=build /opt/kws /opt/kws
COPY --chown=10001:10001 . /home/kws/src
ENV PATH=/opt/kws/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    OPENBLAS_NUM_THREADS=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    MLFLOW_TRACKING_URI=sqlite:////home/kws/work/mlflow.db
USER 10001:10001
WORKDIR /home/kws/work
EXPOSE 5000
# The equivalent of `make demo`: the whole pipeline on generated speech, tracked in MLflow.
CMD ["kws", "pipeline", "--demo"]
