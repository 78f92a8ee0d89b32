"""gRPC interop server: the bank (`shop.v1.Bank/Authorize`), instrumented
with the OpenTelemetry gRPC server instrumentation (opentelemetry-
instrumentation-grpc from PyPI). Answers with the ids of the SERVER span
the instrumentation made under the caller's `traceparent`. Prints
`PORT <n>` once listening on 127.0.0.1; stops when its stdin closes.

    python grpc_bank.py OTLP_ENDPOINT PROTO_DIR
"""

import sys
from concurrent import futures

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import GrpcInstrumentorServer

import grpc_stubs
import otel_setup

PROVIDER = otel_setup.provider("py-bank", sys.argv[1])
shop_pb2, shop_pb2_grpc = grpc_stubs.load(sys.argv[2])


class Bank(shop_pb2_grpc.BankServicer):
    def Authorize(self, request, context):
        ids = otel_setup.ids(trace.get_current_span())
        return shop_pb2.AuthorizeReply(approved=True, trace_id=ids["trace_id"], span_id=ids["span_id"])


def main():
    GrpcInstrumentorServer().instrument(tracer_provider=PROVIDER)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    shop_pb2_grpc.add_BankServicer_to_server(Bank(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    server.stop(grace=1).wait()
    PROVIDER.shutdown()


if __name__ == "__main__":
    main()
