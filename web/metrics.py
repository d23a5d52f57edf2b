"""Prometheus metrics of the web tier.

Under gunicorn every worker is a process: `orchestrator web` sets
`PROMETHEUS_MULTIPROC_DIR` before `prometheus_client` is first imported, and `/metrics`
aggregates all workers' files with a `MultiProcessCollector` on a fresh registry (NOTES).
Without that variable (tests, a single process) the process registry is served.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector


class WebMetrics:
    """The web tier's series. Created once per process (prometheus_client registers
    names globally); `get()` returns that one instance."""

    _instance: WebMetrics | None = None

    def __init__(self) -> None:
        self.requests = Counter(
            "orchestrator_http_requests_total",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
        )
        self.latency = Histogram(
            "orchestrator_http_request_duration_seconds",
            "Time to answer an HTTP request, by method and route template",
            ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    @classmethod
    def get(cls) -> WebMetrics:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def observe(self, method: str, route: str, status: str, seconds: float) -> None:
        self.requests.labels(method, route, status).inc()
        self.latency.labels(method, route).observe(seconds)


def exposition() -> tuple[bytes, str]:
    """The metrics text, aggregated across processes when in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
