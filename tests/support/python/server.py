"""Interop server: answers GET /inventory inside a SERVER span whose parent
is the context the W3C propagator extracts from the request. Prints
`PORT <n>` once listening on 127.0.0.1; stops when its stdin closes.

    python server.py OTLP_ENDPOINT
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.trace import SpanKind

import otel_setup

PROVIDER = otel_setup.provider("py-inventory", sys.argv[1])
TRACER = PROVIDER.get_tracer("interop.server")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        ctx = otel_setup.PROPAGATOR.extract(self.headers)
        with TRACER.start_as_current_span("GET /inventory", context=ctx, kind=SpanKind.SERVER) as span:
            body = json.dumps({"in_stock": 3, **otel_setup.ids(span)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdin.read()
    server.shutdown()
    PROVIDER.shutdown()


if __name__ == "__main__":
    main()
