"""The Python stubs of observe-test-grpc/proto/shop.proto, generated at run
time with grpcio-tools into a fresh temporary folder (nothing generated is
committed), then imported.

    shop_pb2, shop_pb2_grpc = grpc_stubs.load(PROTO_DIR)
"""

import importlib
import os
import sys
import tempfile

from grpc_tools import protoc


def load(proto_dir):
    out = tempfile.mkdtemp(prefix="observe-grpc-stubs-")
    rc = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            os.path.join(proto_dir, "shop.proto"),
        ]
    )
    if rc != 0:
        raise RuntimeError(f"grpc_tools.protoc failed with {rc}")
    sys.path.insert(0, out)
    return importlib.import_module("shop_pb2"), importlib.import_module("shop_pb2_grpc")
