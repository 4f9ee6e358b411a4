"""A grpcio client of fibrpc's streaming gRPC server
(crates/rpc/tests/grpc_streaming.rs).

Usage: stream_client.py PROTO_DIR OUT_DIR ADDR CASE...

Generates the stubs of PROTO_DIR/stream_echo.proto into OUT_DIR with
grpc_tools.protoc, connects to ADDR and runs each CASE, printing one
line per case ("CASE ..."; see each case for the rest). A gRPC error is
printed as "CASE status CODE DETAILS".
Exits 2 when grpcio or grpcio-tools is missing.
"""
import sys
import threading
import time

try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:  # the test fails loudly on this
    print(f"grpcio missing: {e}", file=sys.stderr)
    sys.exit(2)

proto_dir, out_dir, addr = sys.argv[1:4]
if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}", f"{proto_dir}/stream_echo.proto"]) != 0:
    print("protoc failed", file=sys.stderr)
    sys.exit(3)
sys.path.insert(0, out_dir)
import stream_echo_pb2 as pb  # noqa: E402
import stream_echo_pb2_grpc  # noqa: E402

MB = 1 << 20
options = [
    ("grpc.max_send_message_length", 64 * MB),
    ("grpc.max_receive_message_length", 64 * MB),
]
channel = grpc.insecure_channel(addr, options=options)
stub = stream_echo_pb2_grpc.StreamEchoServiceStub(channel)


def req(message="", count=0, size=0):
    return pb.StreamRequest(message=message, count=count, size=size)


def unary():
    r = stub.Echo(req("hello"), timeout=30)
    return f"ok {r.message}"


def server_streaming():
    got = [(r.index, r.message) for r in stub.Expand(req("item", count=5), timeout=30)]
    assert got == [(i, "item") for i in range(5)], got
    return f"ok {len(got)}"


def client_streaming():
    r = stub.Collect(iter([req("a"), req("bb"), req("ccc")]), timeout=30)
    return f"ok {r.message}"


def bidi():
    got = [r.message for r in stub.Chat(iter([req(f"m{i}") for i in range(10)]), timeout=30)]
    assert got == [f"m{i}" for i in range(10)], got
    return f"ok {len(got)}"


def big():
    """16 MiB up (client streaming), 16 MiB down (server streaming)."""
    r = stub.Collect(iter([req("x" * (16 * MB), size=16 * MB)]), timeout=60)
    up = f"{r.message} {len(r.padding)}"
    down = [len(r.padding) for r in stub.Expand(req("big", count=1, size=16 * MB), timeout=60)]
    return f"ok {up} {down[0]}"


def many():
    """100,000 small messages through one bidirectional stream."""
    n = 100_000
    it = stub.Chat((req(str(i)) for i in range(n)), timeout=120)
    expect = 0
    for r in it:
        if r.message != str(expect) or r.index != expect:
            return f"out of order at {expect}: {r.index} {r.message}"
        expect += 1
    return f"ok {expect}"


def cancel_server_streaming():
    """Reads a few responses of an endless stream, then cancels."""
    call = stub.Expand(req("forever", size=1024), timeout=30)
    for _ in range(5):
        next(call)
    call.cancel()
    return "ok cancelled"


def cancel_bidi():
    """Cancels a bidirectional call whose handler waits for a request."""
    done = threading.Event()

    def requests():
        yield req("block")
        done.wait(30)

    call = stub.Chat(requests(), timeout=30)
    first = next(call)
    call.cancel()
    done.set()
    return f"ok {first.message}"


def deadline():
    """A bidirectional call whose handler waits past the deadline."""
    done = threading.Event()

    def requests():
        yield req("stall")
        done.wait(30)

    call = stub.Chat(requests(), timeout=1)
    try:
        for _ in call:
            pass
        return "no error"
    finally:
        done.set()


def slow_reader():
    """Reads one of 500 responses of 64 KiB, then asks the server (on
    another stream) how many it sent while this client did not read,
    then reads the rest."""
    # Without BDP probing grpcio keeps its stream window small, so what
    # the server sends ahead is its own buffering plus the sockets'.
    slow = grpc.insecure_channel(addr, options=options + [("grpc.http2.bdp_probe", 0)])
    it = stream_echo_pb2_grpc.StreamEchoServiceStub(slow).Expand(
        req("slow", count=500, size=64 << 10), timeout=120)
    next(it)
    time.sleep(2)
    sent = stub.Echo(req("sent"), timeout=10).message
    rest = sum(1 for _ in it)
    return f"ok {sent} {rest + 1}"


def unimplemented_kind():
    """A streaming method over the baidu_std stub's unary path is refused;
    here: an unknown streaming method."""
    call = channel.stream_stream("/example.StreamEchoService/NoSuch")
    for _ in call(iter([b""]), timeout=10):
        pass
    return "no error"


CASES = {
    "unary": unary,
    "server_streaming": server_streaming,
    "client_streaming": client_streaming,
    "bidi": bidi,
    "big": big,
    "many": many,
    "cancel_server_streaming": cancel_server_streaming,
    "cancel_bidi": cancel_bidi,
    "deadline": deadline,
    "slow_reader": slow_reader,
    "unimplemented": unimplemented_kind,
}

for case in sys.argv[4:]:
    fn = CASES.get(case)
    if fn is None:
        print(f"unknown case {case}", file=sys.stderr)
        sys.exit(4)
    try:
        print(f"{case} {fn()}", flush=True)
    except grpc.RpcError as e:
        print(f"{case} status {e.code().value[0]} {e.details()}", flush=True)
