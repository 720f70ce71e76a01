#!/usr/bin/env python3
"""The gRPC peer of tests/sidecar_grpc.rs: a grpcio server and client, no codegen.

Usage:
  sidecar_grpc.py server
      Serves `demo.Echo` on 127.0.0.1:0, prints `port N`, and runs until stdin closes:
        /demo.Echo/Say    (unary)  answers the metadata it received, one `key: value` a line
        /demo.Echo/Count  (server streaming)  answers `1`, `2`, `3`
        /demo.Echo/Fail   (unary)  aborts with INTERNAL and FAIL_MESSAGE
        /demo.Echo/Chat   (bidirectional streaming)  answers each message `echo MESSAGE`
  sidecar_grpc.py client TARGET AUTHORITY [B3]
      Calls Say (with a `b3` metadata of B3 if given), Count, Fail and Chat (sending `a`,
      `b`, `c`) on TARGET, with AUTHORITY as the `:authority`, and prints one JSON object:
        {"say": str, "count": [str], "fail": {"code": status name, "details": str},
         "chat": [str]}

Messages are raw bytes (identity serializers). Exits 3 when grpcio is missing.
"""

import json
import sys
from concurrent import futures

try:
    import grpc
except ImportError as error:
    sys.stderr.write(
        "sidecar_grpc.py: cannot import grpcio (%s); "
        "install it with: python3 -m pip install grpcio==1.85.1\n" % error
    )
    sys.exit(3)

FAIL_MESSAGE = "deliberate failure"
TIMEOUT = 20  # seconds: a hang fails the call rather than the whole test run


def say(request, context):
    lines = ["%s: %s" % (key, value) for key, value in context.invocation_metadata()]
    return "\n".join(lines).encode()


def count(request, context):
    for number in (b"1", b"2", b"3"):
        yield number


def fail(request, context):
    context.abort(grpc.StatusCode.INTERNAL, FAIL_MESSAGE)


def chat(requests, context):
    for message in requests:
        yield b"echo " + message


def serve():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("demo.Echo", handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print("port %d" % port, flush=True)
    sys.stdin.read()  # until the test closes our stdin (or dies)
    server.stop(None)


def client(target, authority, b3=None):
    options = [("grpc.default_authority", authority), ("grpc.enable_http_proxy", 0)]
    with grpc.insecure_channel(target, options=options) as channel:
        metadata = [("b3", b3)] if b3 else None
        text = channel.unary_unary("/demo.Echo/Say")(b"", timeout=TIMEOUT, metadata=metadata)
        numbers = channel.unary_stream("/demo.Echo/Count")(b"", timeout=TIMEOUT)
        numbers = [number.decode() for number in numbers]
        try:
            channel.unary_unary("/demo.Echo/Fail")(b"", timeout=TIMEOUT)
            failed = {"code": "OK", "details": ""}
        except grpc.RpcError as error:
            failed = {"code": error.code().name, "details": error.details()}
        chat = channel.stream_stream("/demo.Echo/Chat")
        answers = [answer.decode() for answer in chat(iter([b"a", b"b", b"c"]), timeout=TIMEOUT)]
    replies = {"say": text.decode(), "count": numbers, "fail": failed, "chat": answers}
    json.dump(replies, sys.stdout)


def main(argv):
    if argv[1:] == ["server"]:
        serve()
    elif len(argv) in (4, 5) and argv[1] == "client":
        client(*argv[2:])
    else:
        sys.stderr.write("usage: sidecar_grpc.py server | client TARGET AUTHORITY [B3]\n")
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
