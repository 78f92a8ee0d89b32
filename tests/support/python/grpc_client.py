"""gRPC interop client: inside a `checkout` span, calls
`shop.v1.Payments/Charge` on the Rust service through a channel
instrumented with the OpenTelemetry gRPC client instrumentation
(opentelemetry-instrumentation-grpc from PyPI), which injects the W3C
context into the call's metadata. Prints the `checkout` span's ids and the
reply as one JSON line.

    python grpc_client.py OTLP_ENDPOINT PROTO_DIR HOST:PORT
"""

import json
import sys

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient

import grpc_stubs
import otel_setup


def main():
    otlp, proto_dir, target = sys.argv[1], sys.argv[2], sys.argv[3]
    provider = otel_setup.provider("py-client", otlp)
    # The client instrumentation takes its tracer from the global provider.
    trace.set_tracer_provider(provider)
    GrpcInstrumentorClient().instrument()
    shop_pb2, shop_pb2_grpc = grpc_stubs.load(proto_dir)
    tracer = provider.get_tracer("interop.grpc.client")
    with tracer.start_as_current_span("checkout") as span:
        with grpc.insecure_channel(target) as channel:
            stub = shop_pb2_grpc.PaymentsStub(channel)
            reply = stub.Charge(shop_pb2.ChargeRequest(order_id="ord_7", amount_cents=1299), timeout=20)
        out = otel_setup.ids(span)
    provider.shutdown()
    out.update({"charge_id": reply.charge_id, "approved": reply.approved})
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
