"""A grpcio client of fibrpc's gRPC server (crates/rpc/tests/grpc.rs).

Usage: echo_client.py PROTO_DIR OUT_DIR ADDR CASE
Generates the stubs of PROTO_DIR/echo.proto into OUT_DIR with
grpc_tools.protoc, then runs CASE against ADDR and prints one line per
result ("ok ..." or "status CODE ..."). Exits 2 when grpcio is missing.
"""
import sys

try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:  # the test fails loudly on this
    print(f"grpcio missing: {e}", file=sys.stderr)
    sys.exit(2)

proto_dir, out_dir, addr, case = sys.argv[1:5]
if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}", f"{proto_dir}/echo.proto"]) != 0:
    print("protoc failed", file=sys.stderr)
    sys.exit(3)
sys.path.insert(0, out_dir)
import echo_pb2  # noqa: E402
import echo_pb2_grpc  # noqa: E402

MB = 1 << 20
channel = grpc.insecure_channel(addr, options=[
    ("grpc.max_send_message_length", 64 * MB),
    ("grpc.max_receive_message_length", 64 * MB),
])
stub = echo_pb2_grpc.EchoServiceStub(channel)


def call(message, **kw):
    try:
        r = stub.Echo(echo_pb2.EchoRequest(message=message), timeout=30, **kw)
        print(f"ok {len(r.message)} {r.message[:32]}")
    except grpc.RpcError as e:
        print(f"status {e.code().value[0]} {e.details()}")


if case == "unary":
    for i in range(3):
        call(f"hello {i}")
elif case == "big":
    call("x" * (16 * MB))
elif case == "gzip":
    call("compressed " * 100, compression=grpc.Compression.Gzip)
elif case == "missing":
    try:
        r = channel.unary_unary("/example.NoSuchService/Echo")(b"", timeout=10)
        print("ok unexpected")
    except grpc.RpcError as e:
        print(f"status {e.code().value[0]} {e.details()}")
elif case == "timeout":
    # The handler sees the deadline; a short one expires on the client.
    call("sleep", )
else:
    print(f"unknown case {case}", file=sys.stderr)
    sys.exit(4)
