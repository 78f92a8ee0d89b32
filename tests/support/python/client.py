"""Interop client: one CLIENT span around a GET of the Rust service, its
context injected as `traceparent` by the W3C propagator. Prints the span's ids
and the answer as one JSON line.

    python client.py OTLP_ENDPOINT URL
"""

import json
import sys
import urllib.request

from opentelemetry.trace import SpanKind

import otel_setup


def main():
    otlp, url = sys.argv[1], sys.argv[2]
    provider = otel_setup.provider("py-client", otlp)
    tracer = provider.get_tracer("interop.client")
    with tracer.start_as_current_span("GET /checkout", kind=SpanKind.CLIENT) as span:
        headers = {}
        otel_setup.PROPAGATOR.inject(headers)
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=20) as res:
            body = res.read().decode()
            status = res.status
        out = otel_setup.ids(span)
    provider.shutdown()
    out.update({"status": status, "body": body, "traceparent": headers.get("traceparent")})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
