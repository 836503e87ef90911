"""Wire settings -> backend, database and consumer; serve health and metrics over HTTP."""

from __future__ import annotations

import logging
from collections.abc import Callable

from clinie.backends.base import InferenceBackend
from clinie.backends.torch_backend import TorchBackend
from clinie.backends.triton_backend import TritonBackend, TritonTls
from clinie.document import Document
from clinie.errors import ErrorCode, ModelError
from clinie.model.checkpoint import load_model_spec
from clinie.model.repository import version_dir
from clinie.normalize import default_stages
from clinie.pipeline import Annotator
from clinie.storage.db import make_engine, session_factory
from services.extractor.app import ExtractorService
from services.extractor.metrics import ExtractorMetrics
from services.extractor.processor import NoteProcessor
from services.settings import ExtractorSettings

log = logging.getLogger(__name__)


def normalize_stages(settings: ExtractorSettings) -> list[Callable[[Document], Document]]:
    """The assertion and normalisation stages the settings ask for (``clinie.normalize.default_stages``)."""
    return default_stages(terminology_path=settings.terminology_index, dense_path=settings.dense_index,
                          forms_path=settings.forms_index, use_forms=settings.nearest_form)


def build_backend(settings: ExtractorSettings) -> tuple[InferenceBackend, Annotator, str]:
    """The backend, an Annotator over it, and the model version string recorded in Provenance."""
    if settings.backend == "torch":
        vdir = version_dir(settings.model_repository, settings.model_name, settings.model_version or None)
        torch_backend = TorchBackend.from_dir(vdir, model_version=f"{settings.model_name}/{vdir.name}")
        return torch_backend, Annotator(torch_backend, torch_backend.tokenizer, torch_backend.net.config,
                                        stages=normalize_stages(settings)), \
            torch_backend.model_version
    _, schema, _ = load_model_spec(version_dir(settings.model_repository, settings.model_name,
                                               settings.model_version or None))
    tls = TritonTls(settings.triton_ssl_ca_file, settings.triton_ssl_cert_file,
                    settings.triton_ssl_key_file) if settings.triton_ssl else None
    triton = TritonBackend(settings.triton_url, settings.model_name, schema, settings.model_version,
                           timeout_s=settings.triton_timeout_s, protocol=settings.triton_protocol, tls=tls)
    served = triton.resolve_version()
    # pre/post-processing must match the served version exactly: read its config, labels and tokenizer
    config, served_schema, tokenizer = load_model_spec(version_dir(settings.model_repository, settings.model_name,
                                                                   served))
    if served_schema != schema:
        raise ModelError(ErrorCode.LABEL_MAP_MISMATCH, f"label map of version {served} differs from the pinned one")
    triton.schema = served_schema
    model_version = f"{settings.model_name}/{served}"
    triton.model_version = model_version
    stages = normalize_stages(settings)
    return triton, Annotator(triton, tokenizer, config, stages=stages), model_version


def build_service(settings: ExtractorSettings, metrics: ExtractorMetrics | None = None) -> ExtractorService:
    metrics = metrics or ExtractorMetrics()
    _, extractor, model_version = build_backend(settings)
    engine = make_engine(settings.database_dsn)
    processor = NoteProcessor(extractor, session_factory(engine), model_version, settings.max_note_chars, metrics)
    log.info("extractor ready", extra={"backend": settings.backend, "model_version": model_version,
                                       "topic": settings.input_topic, "group": settings.consumer_group})
    return ExtractorService(settings, processor, metrics)


def run(settings: ExtractorSettings) -> None:
    """Run the consumer with /healthz, /readyz and /metrics on ``metrics_host:metrics_port`` (blocks).

    ``log_config=None``: uvicorn keeps its hands off logging, so its lines go through our JSON handler too.
    """
    import uvicorn
    from faststream.asgi import AsgiFastStream, make_ping_asgi
    from prometheus_client import make_asgi_app

    from services.extractor.logs import configure_logging

    configure_logging(settings.log_level)
    metrics = ExtractorMetrics()
    service = build_service(settings, metrics)
    broker = service.create_broker()

    async def stop_consuming() -> None:  # runs before the broker stops
        await service.shutdown()

    app = AsgiFastStream(
        broker,
        asgi_routes=[
            ("/healthz", make_ping_asgi(broker, timeout=5.0)),
            ("/readyz", make_ping_asgi(broker, timeout=5.0)),
            ("/metrics", make_asgi_app(metrics.registry)),
        ],
        on_shutdown=[stop_consuming],
    )
    uvicorn.run(app, host=settings.metrics_host, port=settings.metrics_port, log_level="warning", log_config=None)
