"""Real peers for Conformance: local HTTP backends, SwiftPilot, and a real Envoy.

Every server listens on 127.0.0.1 (Envoy's gateway listeners bind 0.0.0.0 as Istio names them, but
traffic is only sent to 127.0.0.1), is bounded in time, and is stopped by the fixture that started it.
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(os.environ.get("SWIFTPILOT_VENV", ROOT / ".venv")) / "bin"
ENVOY = os.environ.get("ENVOY_BIN", str(VENV_BIN / "envoy"))

ROUTER_NODE_ID = "router~127.0.0.1~ingress-1.istio-system~istio-system.svc.cluster.local"
ROUTER_LABELS = {"istio": "ingressgateway"}


def swiftpilot_binary() -> str:
    explicit = os.environ.get("SWIFTPILOT_BIN")
    if explicit:
        return explicit
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True, check=True)
    return str(Path(out.stdout.strip()) / "swiftpilot")


def _local_port_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


# Ports handed out by `free_port`: below the kernel's ephemeral range, so no outgoing connection
# (Envoy to a backend, a client to SwiftPilot) can take one between the probe and the server's bind,
# and never the same one twice in a session, so a port a stopped process held is not reused.
_EPHEMERAL_LOW = _local_port_range()[0]
_PORT_SPAN = (max(1024, _EPHEMERAL_LOW - 12000), _EPHEMERAL_LOW - 1)
_next_port = _PORT_SPAN[0] + (os.getpid() * 7919) % (_PORT_SPAN[1] - _PORT_SPAN[0])
_port_lock = threading.Lock()


def free_port() -> int:
    """A port on 127.0.0.1 (and 0.0.0.0) that is free now and was not handed out before."""
    global _next_port
    with _port_lock:
        for _ in range(_PORT_SPAN[1] - _PORT_SPAN[0]):
            port = _next_port
            _next_port = port + 1 if port < _PORT_SPAN[1] else _PORT_SPAN[0]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind(("0.0.0.0", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port below the ephemeral range")


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as error:  # noqa: BLE001 - reported below
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# MARK: - Backends


class Backend:
    """An HTTP echo server: answers JSON with its name and the request it saw."""

    def __init__(self, name: str, delay: float = 0.0, ssl_context=None, status: int = 200, failures: int = 0):
        """`ssl_context` (server side) makes it an HTTPS backend; `status` is the code it answers,
        after answering 503 to its first `failures` requests."""
        self.name = name
        self.status = status
        self.failures = failures
        self.delay = delay
        self.requests: list[dict] = []
        self.stopped = False
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _answer(self):
                if backend.stopped:  # a kept-alive connection outlives the listener: close it unanswered
                    self.close_connection = True
                    return
                length = int(self.headers.get("content-length") or 0)
                if length:
                    self.rfile.read(length)
                seen = {"name": backend.name, "method": self.command, "path": self.path,
                        "headers": {k.lower(): v for k, v in self.headers.items()}}
                backend.requests.append(seen)
                if backend.delay:
                    time.sleep(backend.delay)
                body = json.dumps(seen).encode()
                self.send_response(503 if len(backend.requests) <= backend.failures else backend.status)
                self.send_header("content-type", "application/json")
                self.send_header("x-backend", backend.name)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if ssl_context is not None:
            self.server.socket = ssl_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        """Stops listening; connections kept alive by a client are closed at their next request,
        as when a server process dies."""
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()


# MARK: - Processes


class Process:
    """A child process with its output in a log file; terminated (then killed) on stop."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict | None = None):
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def check_alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()[-4000:]}")

    def stop(self, timeout: float = 10):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=timeout)
        self.log.close()


class SwiftPilot(Process):
    def __init__(self, workdir: Path, args: list[str]):
        self.xds_port = free_port()
        self.admin_port = free_port()
        super().__init__("swiftpilot", [swiftpilot_binary(), "discovery",
                                        "--xds-listen", f"127.0.0.1:{self.xds_port}",
                                        "--admin-listen", f"127.0.0.1:{self.admin_port}",
                                        "--log-level", "debug", *args], workdir)

    def admin(self, path: str) -> tuple[int, bytes]:
        return http_get(f"http://127.0.0.1:{self.admin_port}{path}")

    def wait_ready(self, timeout: float = 30):
        def ready():
            self.check_alive()
            return self.admin("/healthz/ready")[0] == 200
        wait_until(ready, timeout, "SwiftPilot /healthz/ready")

    def syncz(self) -> list[dict]:
        return json.loads(self.admin("/debug/syncz")[1])


def envoy_bootstrap(xds_port: int, admin_port: int, node_id: str = ROUTER_NODE_ID,
                    labels: dict | None = None, namespace: str = "istio-system", delta: bool = False,
                    locality: str | None = None, metadata: dict | None = None) -> dict:
    """`delta`: Envoy speaks incremental ADS (DeltaAggregatedResources) instead of state of the world.
    `locality`: the node's `region/zone/subzone` (none by default).
    `metadata`: more node metadata (e.g. SWIFTPILOT_VHDS)."""
    node = {
        "id": node_id,
        "cluster": "istio-ingressgateway",
        "metadata": {"NAMESPACE": namespace, "LABELS": labels if labels is not None else ROUTER_LABELS, **(metadata or {})},
    }
    if locality:
        node["locality"] = dict(zip(("region", "zone", "sub_zone"), locality.split("/")))
    return {
        "node": node,
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC" if delta else "GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}],
                "set_node_on_first_message_only": True,
            },
            "cds_config": {"ads": {}, "resource_api_version": "V3"},
            "lds_config": {"ads": {}, "resource_api_version": "V3"},
        },
        "static_resources": {
            "clusters": [{
                "name": "xds-grpc",
                "type": "STATIC",
                "connect_timeout": "1s",
                "typed_extension_protocol_options": {
                    "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                        "explicit_http_config": {"http2_protocol_options": {}},
                    }
                },
                "load_assignment": {
                    "cluster_name": "xds-grpc",
                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                        "socket_address": {"address": "127.0.0.1", "port_value": xds_port}}}}]}],
                },
            }]
        },
        # Deprecated fields are fatal: SwiftPilot must emit only what stock Envoy accepts.
        "layered_runtime": {"layers": [
            {"name": "static", "static_layer": {"envoy.features.fail_on_any_deprecated_feature": True}},
            {"name": "admin", "admin_layer": {}},
        ]},
    }


class Envoy(Process):
    def __init__(self, workdir: Path, xds_port: int, **node):
        self.admin_port = free_port()
        config = workdir / "envoy.json"
        config.write_text(json.dumps(envoy_bootstrap(xds_port, self.admin_port, **node), indent=2))
        super().__init__("envoy", [ENVOY, "-c", str(config), "--disable-hot-restart", "--concurrency", "1",
                                   "-l", "info", "--drain-time-s", "1"], workdir)

    def admin(self, path: str) -> tuple[int, bytes]:
        return http_get(f"http://127.0.0.1:{self.admin_port}{path}")

    def wait_live(self, timeout: float = 30):
        def live():
            self.check_alive()
            status, body = self.admin("/ready")
            return status == 200 and body.strip() == b"LIVE"
        wait_until(live, timeout, "Envoy /ready == LIVE")

    def config_dump(self) -> dict:
        return json.loads(self.admin("/config_dump")[1])

    def active_listeners(self) -> set[str]:
        names = set()
        for config in self.config_dump()["configs"]:
            for listener in config.get("dynamic_listeners", []):
                if "active_state" in listener:
                    names.add(listener["name"])
        return names

    def route_config(self, name: str) -> dict | None:
        for config in self.config_dump()["configs"]:
            for route in config.get("dynamic_route_configs", []):
                if route["route_config"]["name"] == name:
                    return route
        return None

    def wait_listener(self, name: str, timeout: float = 30):
        wait_until(lambda: (self.check_alive(), name in self.active_listeners())[1], timeout, f"Envoy listener {name} active")

    def stats(self, prefix_filter: str) -> dict[str, int]:
        _, body = self.admin(f"/stats?filter={prefix_filter}")
        result = {}
        for line in body.decode().splitlines():
            if ": " in line:
                key, value = line.split(": ", 1)
                if value.strip().lstrip("-").isdigit():
                    result[key] = int(value)
        return result


def request(port: int, path: str = "/", host: str = "example.com", headers: dict | None = None,
            method: str = "GET", timeout: float = 5.0) -> tuple[int, dict, bytes]:
    """One HTTP request to 127.0.0.1:port with the given Host; returns status, headers, body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers={"Host": host, **(headers or {})})
        response = conn.getresponse()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


class Workdir:
    def __init__(self):
        self.path = Path(tempfile.mkdtemp(prefix="swiftpilot-conformance-"))

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def backend_counts(port: int, requests: int, path: str = "/", host: str = "example.com",
                   headers: dict | None = None) -> dict[str, int]:
    """Sends `requests` GETs and counts answers by the `x-backend` header (status code if absent)."""
    counts: dict[str, int] = {}
    for _ in range(requests):
        status, response_headers, _ = request(port, path, host=host, headers=headers)
        key = response_headers.get("x-backend", str(status))
        counts[key] = counts.get(key, 0) + 1
    return counts


# MARK: - TLS


def make_certificates(directory: Path) -> dict[str, str]:
    """A throwaway CA plus server (SANs localhost, *.example.com, 127.0.0.1) and client certificates,
    made with the openssl CLI. Returns paths: ca, server_cert, server_key, client_cert, client_key."""
    directory.mkdir(parents=True, exist_ok=True)

    def run(*args: str):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=swiftpilot-test-ca")
    for name, san in (("server", "DNS:localhost,DNS:*.example.com,IP:127.0.0.1"), ("client", "DNS:client.example.com")):
        (directory / f"{name}.ext").write_text(f"subjectAltName={san}\n")
        run("req", *key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext")
    return {"ca": str(directory / "ca.pem"),
            "server_cert": str(directory / "server.pem"), "server_key": str(directory / "server.key"),
            "client_cert": str(directory / "client.pem"), "client_key": str(directory / "client.key")}


def server_ssl_context(certs: dict, require_client_certificate: bool = False):
    import ssl
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs["server_cert"], certs["server_key"])
    if require_client_certificate:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(certs["ca"])
    return context


def https_request(port: int, sni: str, path: str = "/", host: str | None = None, ca: str | None = None,
                  client_cert: tuple[str, str] | None = None, timeout: float = 5.0,
                  headers: dict | None = None) -> tuple[int, dict, bytes]:
    """One HTTPS request to 127.0.0.1:port with the given SNI (verified against `ca`); raises on
    handshake failure or when the proxy closes the connection."""
    import ssl
    context = ssl.create_default_context(cafile=ca)
    if client_cert:
        context.load_cert_chain(*client_cert)
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with context.wrap_socket(raw, server_hostname=sni) as tls:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host or sni}\r\nConnection: close\r\n{extra}\r\n".encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        body = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
