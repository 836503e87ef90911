# syntax=docker/dockerfile:1
# Triton Inference Server with the Python backend and clinie's runtime (the exported model.py imports
# clinie.serving). Needs a Triton release with Python 3.12 (24.12 or later: Ubuntu 24.04). The model repository
# is not inside: the chart mounts it at /models.
# Build from the repository root:
#   docker build -f deploy/docker/triton.Dockerfile -t REGISTRY/clinie/clinie-triton:0.1.0 .

ARG TRITON_IMAGE=nvcr.io/nvidia/tritonserver:24.12-py3

FROM ${TRITON_IMAGE}
# CUDA torch from PyPI by default (runs on CPU too); use https://download.pytorch.org/whl/cpu for a CPU-only image
ARG TORCH_INDEX_URL=https://pypi.org/simple
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /opt/clinie-src
COPY deploy/docker/requirements.lock ./
COPY pyproject.toml README.md ./
COPY clinie ./clinie
COPY services ./services
# the image's system Python (3.12) is what the Python backend stub embeds: install into it
RUN python3 -m pip install --no-cache-dir --break-system-packages --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && python3 -m pip install --no-cache-dir --break-system-packages -c requirements.lock . \
 && rm -rf /opt/clinie-src \
 && groupadd --system --gid 10001 clinie \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin clinie
WORKDIR /tmp
ENV HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
USER 10001:10001
EXPOSE 8000 8001 8002
CMD ["tritonserver", "--model-repository=/models"]
