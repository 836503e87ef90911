# syntax=docker/dockerfile:1
# A versioned model artifact: the Triton model repository (config.pbtxt + numbered versions) and nothing else.
# The chart's init containers copy it into the pods (model.image.*), so a new model rolls out by changing one tag.
# The build context is the model repository itself (the shipped model_repo/, or one written by `clinie export`):
#   docker build -f deploy/docker/model.Dockerfile -t REGISTRY/clinie/clinie-model:2 model_repo

ARG BUSYBOX_IMAGE=busybox:1.37.0

FROM ${BUSYBOX_IMAGE}
COPY . /models/
USER 65534:65534
CMD ["ls", "-R", "/models"]
