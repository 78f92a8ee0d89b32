"""Shared OpenTelemetry SDK setup of the interop test's Python sides: spans
exported over OTLP/HTTP (protobuf) to the test's receiver, W3C Trace Context
propagation. Only the OpenTelemetry SDK from PyPI and the standard library."""

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PROPAGATOR = TraceContextTextMapPropagator()


def provider(service_name, otlp_endpoint):
    """A tracer provider exporting each span as it ends to `otlp_endpoint`."""
    p = TracerProvider(resource=Resource.create({"service.name": service_name}))
    p.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint.rstrip("/") + "/v1/traces"))
    )
    return p


def ids(span):
    ctx = span.get_span_context()
    return {"trace_id": trace.format_trace_id(ctx.trace_id), "span_id": trace.format_span_id(ctx.span_id)}
