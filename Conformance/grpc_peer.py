"""Real proxyless gRPC peers: echo servers and an xDS client (grpcio) in a subprocess.

The client runs in its own process because grpcio reads GRPC_XDS_BOOTSTRAP once per process.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from harness import VENV_BIN

METHOD = "/echo.Echo/Call"


class EchoServer:
    """A gRPC server on 127.0.0.1 answering /echo.Echo/Call with its name (raw bytes)."""

    def __init__(self, name: str):
        self.name = name
        self.calls = 0
        handler = grpc.method_handlers_generic_handler("echo.Echo", {
            "Call": grpc.unary_unary_rpc_method_handler(self._call),
        })
        self.server = grpc.server(ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    def _call(self, request: bytes, context) -> bytes:
        self.calls += 1
        return self.name.encode()

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop(grace=None)


CLIENT = r'''
import json, sys, time, grpc
target, count = sys.argv[1], int(sys.argv[2])
channel = grpc.insecure_channel(target)
call = channel.unary_unary("/echo.Echo/Call")
grpc.channel_ready_future(channel).result(timeout=20)
results = []
for _ in range(count):
    started = time.monotonic()
    try:
        answer = call(b"", timeout=10).decode()
    except grpc.RpcError as error:
        answer = "error:" + error.code().name
    results.append({"answer": answer, "seconds": time.monotonic() - started})
print(json.dumps(results))
'''


def run_client(workdir: Path, xds_port: int, target: str, count: int, namespace: str = "grpc", timeout: float = 60) -> list[dict]:
    """Dials `target` (an `xds:///` URI) `count` times through SwiftPilot; returns each answer and its latency."""
    bootstrap = workdir / "grpc-bootstrap.json"
    bootstrap.write_text(json.dumps({
        "xds_servers": [{"server_uri": f"127.0.0.1:{xds_port}", "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": f"sidecar~127.0.0.1~client.{namespace}~{namespace}.svc.cluster.local",
                 "metadata": {"GENERATOR": "grpc", "NAMESPACE": namespace}},
    }))
    out = subprocess.run([str(VENV_BIN / "python"), "-c", CLIENT, target, str(count)], capture_output=True, text=True,
                         timeout=timeout, env={"GRPC_XDS_BOOTSTRAP": str(bootstrap), "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise AssertionError(f"gRPC client failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)
