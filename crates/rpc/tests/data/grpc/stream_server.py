"""A grpcio server (asyncio) of example.StreamEchoService for fibrpc's
streaming gRPC client (crates/rpc/tests/grpc_client_streaming.rs).

Usage: stream_server.py PROTO_DIR OUT_DIR

Generates the stubs of PROTO_DIR/stream_echo.proto into OUT_DIR with
grpc_tools.protoc, listens on 127.0.0.1 (a free port), prints
"LISTENING PORT" and serves until killed.
  Echo     "stats" answers "cancelled N": the streaming calls the
           client cancelled (or timed out) so far; else echoes.
  Expand   answers `count` responses (index i, the message, `size` bytes
           of padding). "deadline" answers once, "deadline MS" with the
           time left; "fail:CODE:TEXT" answers `count` then aborts with
           CODE and TEXT; "hang" answers `count` then waits until
           cancelled.
  Collect  answers "n N bytes B": the requests and the bytes of their
           messages, with `size` bytes of padding (the last request's).
  Chat     answers each request with its message and index, and `size`
           bytes of padding; a request "fail:CODE:TEXT" aborts; "hang"
           waits until cancelled.
Exits 2 when grpcio or grpcio-tools is missing.
"""
import asyncio
import sys

try:
    import grpc
    from grpc_tools import protoc
except ImportError as e:  # the test fails loudly on this
    print(f"grpcio missing: {e}", file=sys.stderr)
    sys.exit(2)

proto_dir, out_dir = sys.argv[1:3]
if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}", f"{proto_dir}/stream_echo.proto"]) != 0:
    print("protoc failed", file=sys.stderr)
    sys.exit(3)
sys.path.insert(0, out_dir)
import stream_echo_pb2 as pb  # noqa: E402
import stream_echo_pb2_grpc  # noqa: E402

MB = 1 << 20
state = {"cancelled": 0}


def status_of(code):
    return next(s for s in grpc.StatusCode if s.value[0] == int(code))


async def hang():
    await asyncio.sleep(3600)


def counting_cancels(handler):
    """Counts the calls of `handler` (an async generator) that end
    cancelled, wherever the cancel finds them: in the handler's own code
    (an await there raises CancelledError), or suspended at a `yield`
    while grpcio still sends the message before (grpcio's task is
    cancelled in that send, and the generator is closed where it stands:
    GeneratorExit). A client's RST_STREAM that arrives while the last
    message is being sent, or while the stream's flow-control window
    holds it back, finds the call there. (`context.cancelled()` is no
    help: grpcio answers False for a call the client reset.)"""
    async def run(self, request, context):
        try:
            async for r in handler(self, request, context):
                yield r
        except (asyncio.CancelledError, GeneratorExit):
            state["cancelled"] += 1
            raise
    return run


class StreamEcho(stream_echo_pb2_grpc.StreamEchoServiceServicer):
    async def Echo(self, request, context):
        if request.message == "stats":
            return pb.StreamResponse(message=f"cancelled {state['cancelled']}")
        return pb.StreamResponse(message=request.message)

    @counting_cancels
    async def Expand(self, request, context):
        m = request.message
        if m == "deadline":
            yield pb.StreamResponse(message=f"deadline {int(context.time_remaining() * 1000)}")
            return
        for i in range(request.count):
            yield pb.StreamResponse(message=m, index=i, padding=b"p" * request.size)
        if m.startswith("fail:"):
            _, code, text = m.split(":", 2)
            await context.abort(status_of(code), text)
        if m == "hang":
            await hang()

    async def Collect(self, request_iterator, context):
        n, total, size = 0, 0, 0
        async for r in request_iterator:
            n += 1
            total += len(r.message)
            size = r.size
        return pb.StreamResponse(message=f"n {n} bytes {total}", padding=b"p" * size)

    @counting_cancels
    async def Chat(self, request_iterator, context):
        i = 0
        async for r in request_iterator:
            if r.message.startswith("fail:"):
                _, code, text = r.message.split(":", 2)
                await context.abort(status_of(code), text)
            if r.message == "hang":
                await hang()
            yield pb.StreamResponse(message=r.message, index=i, padding=b"p" * r.size)
            i += 1


async def main():
    server = grpc.aio.server(options=[
        ("grpc.max_send_message_length", 64 * MB),
        ("grpc.max_receive_message_length", 64 * MB),
    ])
    stream_echo_pb2_grpc.add_StreamEchoServiceServicer_to_server(StreamEcho(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"LISTENING {port}", flush=True)
    await server.wait_for_termination()


asyncio.run(main())
