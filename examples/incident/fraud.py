"""The incident's fraud-screening service, written with the OpenTelemetry
Python SDK (PyPI) and the standard library only: it sits between checkout
and payment, so every order's trace crosses from Rust to Python and back.

    python fraud.py --listen 127.0.0.1:PORT --payment http://127.0.0.1:PORT

POST /screen {"order_id", "amount_cents"}: a SERVER span continuing the
caller's W3C context, a structured log record (event_name "fraud_screened",
with order_id), then POST {payment}/pay inside a CLIENT span whose context
is injected into the request; answers payment's JSON. Configured like any
OpenTelemetry service, by the standard variables: OTEL_SERVICE_NAME,
OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP), OTEL_RESOURCE_ATTRIBUTES,
OTEL_BSP_SCHEDULE_DELAY, OTEL_BLRP_SCHEDULE_DELAY. Stops when stdin closes,
after flushing its spans and log records.
"""

import argparse
import json
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

RESOURCE = Resource.create()
TRACES = TracerProvider(resource=RESOURCE)
TRACES.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
LOGS = LoggerProvider(resource=RESOURCE)
LOGS.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
TRACER = TRACES.get_tracer("fraud")
LOGGER = LOGS.get_logger("fraud")
PROPAGATOR = TraceContextTextMapPropagator()
PAYMENT = ""


def log(event, severity, body, **fields):
    """One log record in the current span's context, named like observe's events."""
    LOGGER.emit(
        event_name=event,
        severity_number=severity,
        severity_text=severity.name.rstrip("0123456789") or "INFO",
        body=body,
        attributes=fields,
    )


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        order = json.loads(self.rfile.read(length) or b"{}")
        ctx = PROPAGATOR.extract(self.headers)
        with TRACER.start_as_current_span(
            "POST /screen",
            context=ctx,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": "POST", "http.route": "/screen"},
        ) as server:
            order_id = str(order.get("order_id", ""))
            server.set_attribute("order_id", order_id)
            log("fraud_screened", SeverityNumber.INFO, "order passed screening", order_id=order_id, score=3)
            status, answer = self.forward(order)
            server.set_attribute("http.response.status_code", status)
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self, order):
        with TRACER.start_as_current_span(
            "POST",
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": "POST", "url.full": PAYMENT + "/pay"},
        ) as client:
            headers = {"Content-Type": "application/json"}
            PROPAGATOR.inject(headers)
            req = urllib.request.Request(
                PAYMENT + "/pay", data=json.dumps(order).encode(), headers=headers, method="POST"
            )
            try:
                with urllib.request.urlopen(req, timeout=10) as res:
                    client.set_attribute("http.response.status_code", res.status)
                    return 200, json.loads(res.read())
            except Exception as e:  # the payment service is down or failing
                client.set_status(Status(StatusCode.ERROR, str(e)))
                log("payment_unreachable", SeverityNumber.ERROR, str(e), order_id=str(order.get("order_id", "")))
                return 502, {"status": "error"}

    def log_message(self, *args):
        pass


def main():
    global PAYMENT
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", required=True)
    parser.add_argument("--payment", required=True)
    args = parser.parse_args()
    PAYMENT = args.payment.rstrip("/")
    host, port = args.listen.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()
    TRACES.shutdown()
    LOGS.shutdown()


if __name__ == "__main__":
    main()
