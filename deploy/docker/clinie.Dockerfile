# syntax=docker/dockerfile:1
# clinie services image: extractor (`clinie serve extractor`), FHIR API (`clinie serve api`), migrations
# (`clinie db upgrade`) and the CLI. CPU torch; no model inside (the chart mounts the model repository at /models).
# Build from the repository root:
#   docker build -f deploy/docker/clinie.Dockerfile -t REGISTRY/clinie/clinie:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/clinie
COPY deploy/docker/requirements.lock ./
# torch first, from the CPU index: installing the rest first would pull the CUDA build and its libraries
RUN /opt/clinie/bin/pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" torch==2.13.0 \
 && /opt/clinie/bin/pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY clinie ./clinie
COPY services ./services
RUN /opt/clinie/bin/pip install --no-cache-dir --no-deps . \
 && /opt/clinie/bin/pip check
# the curated condition-form index (nearest-form step; without the file the extractor builds it at start-up)
RUN /opt/clinie/bin/clinie terminology build --forms --out /opt/clinie/terminology/icd10cm.json.gz \
    --forms-out /opt/clinie/terminology/condition-forms-v1.npz

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="clinie" \
      org.opencontainers.image.description="clinie extractor, FHIR API, migrations and CLI" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 clinie \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin clinie
COPY --from=build /opt/clinie /opt/clinie
ENV PATH=/opt/clinie/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    CLINIE_MODEL_REPOSITORY=/models \
    CLINIE_FORMS_INDEX=/opt/clinie/terminology/condition-forms-v1.npz
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080 9464
ENTRYPOINT ["clinie"]
CMD ["--help"]
