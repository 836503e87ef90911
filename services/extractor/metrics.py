"""Prometheus metrics of the extractor (own registry: no global state at import time)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


@dataclass
class ExtractorMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.notes = Counter("clinie_notes_total", "Notes consumed, by outcome (stored, dead_lettered)", ["outcome"],
                             registry=r)
        self.failures = Counter("clinie_failures_total", "Failures by reason (permanent and transient)",
                                ["reason", "kind"], registry=r)
        self.segments = Counter("clinie_segments_total", "Windows sent to the model", registry=r)
        self.resources = Counter("clinie_resources_total", "FHIR resources written", ["resource_type"], registry=r)
        self.latency = Histogram("clinie_stage_seconds", "Latency per stage", ["stage"], buckets=_LATENCY_BUCKETS,
                                 registry=r)
        self.lag = Gauge("clinie_consumer_lag", "Messages behind the partition end", ["topic", "partition"],
                         registry=r)
        self.retries = Counter("clinie_retries_total", "Retries after transient failures", ["reason"], registry=r)
