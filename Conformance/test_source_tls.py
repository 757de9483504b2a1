"""TLS to an MCP-over-xDS config source (`xds://host:port?ca=&sni=&cert=&key=`): the Python `MCPServer`
serves with grpc.ssl_server_credentials; certificates are made with Debian's `openssl` CLI in the workdir."""
import re
import subprocess
from pathlib import Path

import grpc
import pytest

from harness import wait_until
from test_mcp_sources import gateway, service_entry

SNI = "mcp.test"


def openssl(*args: str, cwd: Path):
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"openssl {' '.join(args)}: {result.stderr}"


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
    return key, cert


def make_leaf(directory: Path, name: str, ca: tuple[Path, Path], dns: str, usage: str) -> tuple[Path, Path]:
    key, csr, cert = directory / f"{name}.key", directory / f"{name}.csr", directory / f"{name}.pem"
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={dns}",
            cwd=directory)
    extensions = directory / f"{name}.ext"
    extensions.write_text(f"subjectAltName=DNS:{dns}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca[1]), "-CAkey", str(ca[0]), "-CAcreateserial",
            "-out", str(cert), "-days", "2", "-extfile", str(extensions), cwd=directory)
    return key, cert


@pytest.fixture
def pki(workdir):
    directory = workdir / "pki"
    directory.mkdir()
    ca = make_ca(directory, "ca")
    other_ca = make_ca(directory, "other-ca")
    server = make_leaf(directory, "server", ca, SNI, "serverAuth")
    client = make_leaf(directory, "client", ca, "sink.test", "clientAuth")
    return {"ca": ca[1], "other_ca": other_ca[1], "server": server, "client": client}


def credentials(pki, require_client_auth: bool = False) -> grpc.ServerCredentials:
    key, cert = pki["server"]
    return grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())],
                                       root_certificates=pki["ca"].read_bytes() if require_client_auth else None,
                                       require_client_auth=require_client_auth)


def tls_server(mcp_servers, pki, require_client_auth: bool = False):
    server = mcp_servers("istiod", server_credentials=credentials(pki, require_client_auth))
    server.set("Gateway", [gateway(18080)])
    server.set("ServiceEntry", [service_entry("one", "one.example.com", 9)])
    return server


def synced(pilot, server) -> bool:
    import json
    body = json.loads(pilot.admin("/debug/snapshotz")[1])
    return "istio-system/one" in body["collections"].get("ServiceEntry", {}).get("resources", []) and \
        pilot.admin("/healthz/ready")[0] == 200


def test_tls_with_ca_and_sni_syncs(mcp_servers, pki, swiftpilot):
    server = tls_server(mcp_servers, pki)
    pilot = swiftpilot("--config-source", f"{server.address}?ca={pki['ca']}&sni={SNI}", ready=False)
    wait_until(lambda: (pilot.check_alive(), synced(pilot, server))[1], 20, "SwiftPilot synced over TLS")
    assert server.streams_seen() == [1]


def _explained(pilot, server, pattern: str) -> list[str]:
    """SwiftPilot's log lines naming the source and matching `pattern`."""
    where = server.address
    return [line for line in pilot.output().splitlines() if where in line and re.search(pattern, line, re.IGNORECASE)]


@pytest.mark.parametrize("case", ["wrong-ca", "wrong-sni"])
def test_tls_with_a_wrong_ca_or_name_is_not_ready_and_says_why(mcp_servers, pki, swiftpilot, case):
    server = tls_server(mcp_servers, pki)
    if case == "wrong-ca":
        query, pattern = f"ca={pki['other_ca']}&sni={SNI}", r"CERTIFICATE_VERIFY_FAILED|certificate verify|unknown ca"
    else:
        query, pattern = f"ca={pki['ca']}&sni=wrong.test", r"wrong\.test"
    pilot = swiftpilot("--config-source", f"{server.address}?{query}", ready=False)
    # It keeps trying; each failure is logged with the source and the reason.
    wait_until(lambda: (pilot.check_alive(), len(_explained(pilot, server, pattern)) >= 2)[1], 20,
               f"repeated TLS failures matching {pattern!r} in SwiftPilot's log")
    assert pilot.admin("/healthz/ready")[0] == 503
    assert not server.requests, "no request can have reached the server through an unverified TLS session"


def test_mutual_tls_with_client_certificate_syncs(mcp_servers, pki, swiftpilot):
    server = tls_server(mcp_servers, pki, require_client_auth=True)
    key, cert = pki["client"]
    pilot = swiftpilot("--config-source", f"{server.address}?ca={pki['ca']}&sni={SNI}&cert={cert}&key={key}",
                       ready=False)
    wait_until(lambda: (pilot.check_alive(), synced(pilot, server))[1], 20, "SwiftPilot synced over mutual TLS")


def test_mutual_tls_without_client_certificate_fails(mcp_servers, pki, swiftpilot):
    server = tls_server(mcp_servers, pki, require_client_auth=True)
    pilot = swiftpilot("--config-source", f"{server.address}?ca={pki['ca']}&sni={SNI}", ready=False)
    wait_until(lambda: (pilot.check_alive(), len(_explained(pilot, server, r"stream failed")) >= 2)[1], 20,
               "repeated stream failures in SwiftPilot's log")
    assert pilot.admin("/healthz/ready")[0] == 503
    assert not server.requests, server.requests
