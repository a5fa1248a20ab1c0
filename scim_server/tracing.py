"""Optional OpenTelemetry tracing: a server span per request, a client span per MongoDB command.

Off unless ``SCIM_TRACING=1`` (``--tracing``), and it needs the ``tracing`` extra
(``pip install 'scim-toolkit[tracing]'``). ``start_tracing`` sets up each process once: its
tracer provider, which exports spans over OTLP/HTTP as the standard ``OTEL_*`` variables say
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_SERVICE_NAME``,
``OTEL_RESOURCE_ATTRIBUTES``...), and the two instrumentations:

- ``opentelemetry-instrumentation-aiohttp-server`` makes every ``web.Application`` created
  afterwards open a server span per request, named by the route's template
  (``GET /scim/v2/{tenant}/Users/{id}``), its middleware before ours;
- ``opentelemetry-instrumentation-pymongo`` registers a PyMongo command listener. PyMongo's
  async client reports its commands to the same listeners as the synchronous one, in the task
  that sent them, so each command's span is a child of the request's server span.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from structlog.typing import EventDict, WrappedLogger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

SERVICE_NAME = "scim-server"
"""The ``service.name`` of the spans, unless ``OTEL_SERVICE_NAME`` (or the resource) names one."""

MISSING_EXTRA = (
    "tracing needs the tracing extra (pip install 'scim-toolkit[tracing]'): {module} is missing"
)


class TracingUnavailable(RuntimeError):
    """Tracing was asked for, but the packages of the ``tracing`` extra are not installed."""


def start_tracing(exporter: SpanExporter | None = None) -> None:
    """Trace this process: spans go to ``exporter``, by default OTLP as ``OTEL_*`` configures.

    Raises ``TracingUnavailable`` when the ``tracing`` extra is not installed.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME as SERVICE_NAME_KEY
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as error:
        raise TracingUnavailable(MISSING_EXTRA.format(module=error.name)) from None

    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME_KEY, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME_KEY: SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    if exporter is None:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter()))
    else:  # a test's in-memory exporter: every span as soon as it ends
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    with warnings.catch_warnings():
        # It subclasses web.Application, which aiohttp discourages (opentelemetry-python-contrib
        # issue 2859): the one way it offers to give every application its middleware.
        warnings.filterwarnings(
            "ignore", "Inheritance class _InstrumentedApplication", DeprecationWarning
        )
        AioHttpServerInstrumentor().instrument(tracer_provider=provider)
    PymongoInstrumentor().instrument(tracer_provider=provider)


def _otlp_exporter() -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as error:
        raise TracingUnavailable(MISSING_EXTRA.format(module=error.name)) from None
    return OTLPSpanExporter()


def stop_tracing() -> None:
    """Stop tracing new applications and database commands; export the spans still buffered."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider

    AioHttpServerInstrumentor().uninstrument()
    PymongoInstrumentor().uninstrument()
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()


def trace_ids(_logger: WrappedLogger, _name: str, event_dict: EventDict) -> EventDict:
    """A log processor: the ``trace_id`` and ``span_id`` of the span current where a line is
    logged, as OpenTelemetry writes them (hex), so a line leads to its trace."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = trace.format_trace_id(context.trace_id)
        event_dict["span_id"] = trace.format_span_id(context.span_id)
    return event_dict
