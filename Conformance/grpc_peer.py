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

from harness import VENV_BIN, Process

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
import json, sys, time, grpc, grpc.experimental
target, count, secure, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "xds-credentials", sys.argv[4] == "ready"
# With xDS credentials the channel takes its TLS settings from the clusters SwiftPilot sends.
channel = (grpc.secure_channel(target, grpc.xds_channel_credentials(grpc.experimental.insecure_channel_credentials()))
           if secure else grpc.insecure_channel(target))
call = channel.unary_unary("/echo.Echo/Call")
if ready:
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


def bootstrap(xds_port: int, node_id: str, namespace: str, labels: dict | None = None,
              certificates: dict | None = None) -> dict:
    """A gRPC xDS bootstrap for SwiftPilot on `xds_port`. `certificates` (cert, key, ca paths) become
    the certificate provider instance `default` (file_watcher), as Istio's agent writes it, and the
    server listener name template is Istio's."""
    config = {
        "xds_servers": [{"server_uri": f"127.0.0.1:{xds_port}", "channel_creds": [{"type": "insecure"}],
                         "server_features": ["xds_v3"]}],
        "node": {"id": node_id, "metadata": {"GENERATOR": "grpc", "NAMESPACE": namespace, "LABELS": labels or {}}},
        "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
    }
    if certificates:
        config["certificate_providers"] = {"default": {"plugin_name": "file_watcher", "config": {
            "certificate_file": certificates["cert"], "private_key_file": certificates["key"],
            "ca_certificate_file": certificates["ca"], "refresh_interval": "600s"}}}
    return config


def run_client(workdir: Path, xds_port: int, target: str, count: int, namespace: str = "grpc", timeout: float = 60,
               certificates: dict | None = None, ready: bool = True) -> list[dict]:
    """Dials `target` (an `xds:///` URI) `count` times through SwiftPilot; returns each answer and its latency.
    With `certificates` the client uses xDS credentials and presents that certificate when a cluster says ISTIO_MUTUAL.
    `ready`: wait for the channel to connect first (off when the RPCs are expected to fail)."""
    path = workdir / "grpc-bootstrap.json"
    path.write_text(json.dumps(bootstrap(xds_port, f"sidecar~127.0.0.1~client.{namespace}~{namespace}.svc.cluster.local",
                                         namespace, certificates=certificates)))
    mode = "xds-credentials" if certificates else "insecure"
    out = subprocess.run([str(VENV_BIN / "python"), "-c", CLIENT, target, str(count), mode, "ready" if ready else "no-wait"],
                         capture_output=True, text=True,
                         timeout=timeout, env={"GRPC_XDS_BOOTSTRAP": str(path), "PATH": "/usr/bin:/bin"})
    if out.returncode != 0:
        raise AssertionError(f"gRPC client failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout)


SERVER = r'''
import sys, grpc
from concurrent.futures import ThreadPoolExecutor
port, name = int(sys.argv[1]), sys.argv[2]

def call(request, context):
    # The answer names the server and how the caller was authenticated: the transport security
    # type and the client certificate's common name (empty for plaintext).
    auth = context.auth_context()
    security = b",".join(auth.get("transport_security_type", [])).decode()
    peer = b",".join(auth.get("x509_common_name", [])).decode()
    return f"{name}|{security}|{peer}".encode()

server = grpc.server(ThreadPoolExecutor(max_workers=4), xds=True)
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
    "echo.Echo", {"Call": grpc.unary_unary_rpc_method_handler(call)}),))
server.add_secure_port(f"127.0.0.1:{port}", grpc.xds_server_credentials(grpc.insecure_server_credentials()))
server.start()
print("started", flush=True)
server.wait_for_termination()
'''


class XDSEchoServer(Process):
    """An xDS-enabled grpcio server (its own process: the bootstrap is read once per process) on
    127.0.0.1:`port`. It asks SwiftPilot for `xds.istio.io/grpc/lds/inbound/127.0.0.1:<port>` and serves
    only once it has it; with `certificates` it can serve mutual TLS when the listener says so."""

    def __init__(self, workdir: Path, xds_port: int, port: int, name: str, namespace: str, labels: dict,
                 certificates: dict | None = None):
        self.port = port
        self.listener_name = f"xds.istio.io/grpc/lds/inbound/127.0.0.1:{port}"
        self.node_id = f"sidecar~127.0.0.1~{name}.{namespace}~{namespace}.svc.cluster.local"
        path = workdir / f"grpc-server-{name}-bootstrap.json"
        path.write_text(json.dumps(bootstrap(xds_port, self.node_id, namespace, labels=labels, certificates=certificates)))
        super().__init__(f"grpc-server-{name}", [str(VENV_BIN / "python"), "-c", SERVER, str(port), name], workdir,
                         env={"GRPC_XDS_BOOTSTRAP": str(path), "PATH": "/usr/bin:/bin"})
