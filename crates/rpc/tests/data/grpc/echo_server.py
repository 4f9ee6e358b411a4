"""A grpcio server (asyncio) of example.EchoService for fibrpc's gRPC
client (crates/rpc/tests/grpc_client.rs).

Usage: echo_server.py PROTO_DIR OUT_DIR [CERT KEY]

Generates the stubs of PROTO_DIR/echo.proto into OUT_DIR with
grpc_tools.protoc, listens on 127.0.0.1 (a free port; over TLS with
the PEM files CERT and KEY when given), prints
"LISTENING PORT" and serves until killed. Echo answers by the message:
  "fail:CODE:TEXT"  aborts with status CODE and details TEXT;
  "sleep:MS ..."    sleeps MS ms, then echoes;
  "deadline"        answers "deadline MS", the time left of the call;
  "gzip:TEXT"       answers TEXT, gzip-compressed;
  "peak"            answers "peak N peers M": the most calls seen at
                    once, and the client connections seen;
  anything else     is echoed.
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
tls = sys.argv[3:5]
if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
                f"--grpc_python_out={out_dir}", f"{proto_dir}/echo.proto"]) != 0:
    print("protoc failed", file=sys.stderr)
    sys.exit(3)
sys.path.insert(0, out_dir)
import echo_pb2  # noqa: E402
import echo_pb2_grpc  # noqa: E402

MB = 1 << 20
state = {"now": 0, "peak": 0, "peers": set()}


class Echo(echo_pb2_grpc.EchoServiceServicer):
    async def Echo(self, request, context):
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        state["peers"].add(context.peer())
        try:
            return await self.answer(request.message, context)
        finally:
            state["now"] -= 1

    async def answer(self, m, context):
        if m.startswith("fail:"):
            _, code, text = m.split(":", 2)
            status = next(s for s in grpc.StatusCode if s.value[0] == int(code))
            await context.abort(status, text)
        if m.startswith("sleep:"):
            await asyncio.sleep(int(m[6:].split()[0]) / 1000)
        elif m == "deadline":
            m = f"deadline {int(context.time_remaining() * 1000)}"
        elif m.startswith("gzip:"):
            context.set_compression(grpc.Compression.Gzip)
            m = m[5:]
        elif m == "peak":
            m = f"peak {state['peak']} peers {len(state['peers'])}"
        return echo_pb2.EchoResponse(message=m)


async def main():
    server = grpc.aio.server(options=[
        ("grpc.max_send_message_length", 64 * MB),
        ("grpc.max_receive_message_length", 64 * MB),
    ])
    echo_pb2_grpc.add_EchoServiceServicer_to_server(Echo(), server)
    if tls:
        with open(tls[0], "rb") as c, open(tls[1], "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"LISTENING {port}", flush=True)
    await server.wait_for_termination()


asyncio.run(main())
