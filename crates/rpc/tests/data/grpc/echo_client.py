"""A grpcio client of fibrpc's gRPC server (crates/rpc/tests/grpc.rs).

Usage: echo_client.py PROTO_DIR OUT_DIR ADDR CAFILE|- CASE...

Generates the stubs of PROTO_DIR/echo.proto into OUT_DIR with
grpc_tools.protoc, connects to ADDR (over TLS trusting CAFILE, unless
it is "-"), runs each CASE and prints one line per case:
"CASE ok LENGTH FIRST-32-CHARS" or "CASE status CODE DETAILS".
Cases: "echo:TEXT" (unary call), "big" (16 MiB each way), "gzip"
(a compressed request), "missing" (an unknown service).
Exits 2 when grpcio or grpcio-tools is missing.
"""
import sys

try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:  # the test fails loudly on this
    print(f"grpcio missing: {e}", file=sys.stderr)
    sys.exit(2)

proto_dir, out_dir, addr, ca = sys.argv[1:5]
if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}", f"{proto_dir}/echo.proto"]) != 0:
    print("protoc failed", file=sys.stderr)
    sys.exit(3)
sys.path.insert(0, out_dir)
import echo_pb2  # noqa: E402
import echo_pb2_grpc  # noqa: E402

MB = 1 << 20
options = [
    ("grpc.max_send_message_length", 64 * MB),
    ("grpc.max_receive_message_length", 64 * MB),
]
if ca == "-":
    channel = grpc.insecure_channel(addr, options=options)
else:
    with open(ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    channel = grpc.secure_channel(addr, creds, options=options)
stub = echo_pb2_grpc.EchoServiceStub(channel)


def report(case, fn):
    try:
        message = fn()
        print(f"{case} ok {len(message)} {message[:32]}", flush=True)
    except grpc.RpcError as e:
        print(f"{case} status {e.code().value[0]} {e.details()}", flush=True)


def echo(text, **kw):
    return stub.Echo(echo_pb2.EchoRequest(message=text), timeout=30, **kw).message


for case in sys.argv[5:]:
    if case.startswith("echo:"):
        report(case, lambda: echo(case[5:]))
    elif case == "big":
        report(case, lambda: echo("x" * (16 * MB)))
    elif case == "gzip":
        report(case, lambda: echo("compressed " * 100, compression=grpc.Compression.Gzip))
    elif case == "missing":
        call = channel.unary_unary("/example.NoSuchService/Echo")
        report(case, lambda: call(b"", timeout=10).decode())
    else:
        print(f"unknown case {case}", file=sys.stderr)
        sys.exit(4)
