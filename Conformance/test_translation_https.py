"""Issue: Istio → Envoy translation for gateways — HTTPS, TLS passthrough and TCP servers.

Certificates are made per test with the openssl CLI; the client is Python's ssl module, so the
handshake, SNI routing and client-certificate checks are Envoy's real behaviour.
"""
import json
import socket
import ssl

import pytest

from harness import free_port, https_request, make_certificates, request, server_ssl_context
from yaml_snippets import gateway, gateway_servers, http_port, route_to, service_entry, virtual_service


def svc(name: str, port: int, backend, protocol: str = "HTTP") -> str:
    return service_entry(name, [f"{name}.internal"], [http_port(port, protocol=protocol)],
                         endpoints=[{"address": "127.0.0.1", "ports": {"http": backend.port}}])


def https_server(port: int, hosts, certs: dict, name: str = "https", mode: str = "SIMPLE") -> dict:
    tls = {"mode": mode, "serverCertificate": certs["server_cert"], "privateKey": certs["server_key"]}
    if mode == "MUTUAL":
        tls["caCertificates"] = certs["ca"]
    return {"port": {"number": port, "name": name, "protocol": "HTTPS"}, "hosts": list(hosts), "tls": tls}


@pytest.fixture
def certs(workdir):
    return make_certificates(workdir / "certs")


def test_https_simple_termination_with_sni_filter_chains(serve_router, backends, certs):
    a, b = backends("a"), backends("b")
    port = free_port()
    docs = [
        gateway_servers([https_server(port, ["a.example.com"], certs, name="https-a"),
                         https_server(port, ["b.example.com"], certs, name="https-b")]),
        svc("a", 80, a), svc("b", 80, b),
        virtual_service("a", ["a.example.com"], http=[{"route": [route_to("a.internal")]}]),
        virtual_service("b", ["b.example.com"], http=[{"route": [route_to("b.internal")]}]),
    ]
    _, proxy = serve_router(docs, [port])
    status, headers, _ = https_request(port, "a.example.com", ca=certs["ca"])
    assert status == 200 and headers["x-backend"] == "a"
    status, headers, _ = https_request(port, "b.example.com", ca=certs["ca"])
    assert status == 200 and headers["x-backend"] == "b"
    # Istio's RDS names for terminated HTTPS servers.
    assert proxy.route_config(f"https.{port}.https-a.gw.istio-system") is not None
    assert proxy.route_config(f"https.{port}.https-b.gw.istio-system") is not None
    # No filter chain matches an unknown SNI: Envoy closes the connection during the handshake.
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        https_request(port, "c.example.com", ca=certs["ca"])
    # Plaintext on the TLS port is not HTTP to Envoy.
    with pytest.raises(Exception):
        request(port, "/", host="a.example.com")


def test_https_mutual_requires_a_client_certificate(serve_router, backends, certs):
    echo = backends("echo")
    port = free_port()
    docs = [gateway_servers([https_server(port, ["*"], certs, mode="MUTUAL")]), svc("echo", 80, echo),
            virtual_service("echo", ["secure.example.com"], http=[{"route": [route_to("echo.internal")]}])]
    serve_router(docs, [port])
    client = (certs["client_cert"], certs["client_key"])
    status, headers, body = https_request(port, "secure.example.com", ca=certs["ca"], client_cert=client)
    assert status == 200 and headers["x-backend"] == "echo"
    # The backend learns who the client is (XFCC), and a forged XFCC from the client is replaced.
    xfcc = json.loads(body)["headers"]["x-forwarded-client-cert"]
    assert 'Subject="CN=client"' in xfcc and "DNS=client.example.com" in xfcc, xfcc
    with_forgery = https_request(port, "secure.example.com", ca=certs["ca"], client_cert=client,
                                 headers={"x-forwarded-client-cert": "By=spiffe://forged"})
    assert "forged" not in json.loads(with_forgery[2])["headers"]["x-forwarded-client-cert"]
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        https_request(port, "secure.example.com", ca=certs["ca"])


def test_https_optional_mutual_accepts_clients_with_and_without_certificates(serve_router, backends, certs, workdir):
    echo = backends("echo")
    port = free_port()
    server = https_server(port, ["*"], certs, mode="MUTUAL")
    server["tls"]["mode"] = "OPTIONAL_MUTUAL"
    docs = [gateway_servers([server]), svc("echo", 80, echo),
            virtual_service("echo", ["secure.example.com"], http=[{"route": [route_to("echo.internal")]}])]
    serve_router(docs, [port])
    status, _, body = https_request(port, "secure.example.com", ca=certs["ca"],
                                    client_cert=(certs["client_cert"], certs["client_key"]))
    assert status == 200 and 'Subject="CN=client"' in json.loads(body)["headers"]["x-forwarded-client-cert"]
    status, _, body = https_request(port, "secure.example.com", ca=certs["ca"])
    assert status == 200 and "x-forwarded-client-cert" not in json.loads(body)["headers"]
    # A certificate from another CA is still refused.
    stranger = make_certificates(workdir / "stranger")
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        https_request(port, "secure.example.com", ca=certs["ca"], client_cert=(stranger["client_cert"], stranger["client_key"]))


def test_https_redirect_on_the_plaintext_server(serve_router, backends, certs):
    echo = backends("echo")
    http_port_number, https_port = free_port(), free_port()
    docs = [
        gateway_servers([
            {"port": {"number": http_port_number, "name": "http", "protocol": "HTTP"}, "hosts": ["secure.example.com"],
             "tls": {"httpsRedirect": True}},
            https_server(https_port, ["secure.example.com"], certs)]),
        svc("echo", 80, echo),
        virtual_service("echo", ["secure.example.com"], http=[{"route": [route_to("echo.internal")]}]),
    ]
    serve_router(docs, [http_port_number, https_port])
    status, headers, _ = request(http_port_number, "/path?q=1", host="secure.example.com")
    assert status == 301 and headers["location"] == "https://secure.example.com/path?q=1"
    assert https_request(https_port, "secure.example.com", path="/path", ca=certs["ca"])[0] == 200
    assert not [r for r in echo.requests if r["path"] == "/path?q=1"], "the redirected request never reached the backend"


def test_tls_passthrough_routes_by_sni_to_the_backend_certificate(serve_router, backends, certs):
    secure = backends("secure", ssl_context=server_ssl_context(certs))
    other = backends("other", ssl_context=server_ssl_context(certs))
    port = free_port()
    docs = [
        gateway_servers([{"port": {"number": port, "name": "tls", "protocol": "TLS"}, "hosts": ["*.example.com"],
                          "tls": {"mode": "PASSTHROUGH"}}]),
        svc("secure", 443, secure, protocol="TLS"), svc("other", 443, other, protocol="TLS"),
        virtual_service("passthrough", ["*.example.com"], tls=[
            {"match": [{"sniHosts": ["secure.example.com"]}], "route": [route_to("secure.internal", 443)]},
            {"match": [{"sniHosts": ["other.example.com"]}], "route": [route_to("other.internal", 443)]}]),
    ]
    serve_router(docs, [port])
    # The client verifies the backend's own certificate: TLS went through Envoy untouched.
    status, headers, _ = https_request(port, "secure.example.com", ca=certs["ca"])
    assert status == 200 and headers["x-backend"] == "secure"
    status, headers, _ = https_request(port, "other.example.com", ca=certs["ca"])
    assert status == 200 and headers["x-backend"] == "other"
    with pytest.raises((ssl.SSLError, ConnectionResetError, OSError)):
        https_request(port, "unknown.example.com", ca=certs["ca"])


def test_tcp_server_proxies_bytes_to_the_tcp_route(serve_router, backends):
    echo = backends("echo")
    port = free_port()
    docs = [
        gateway_servers([{"port": {"number": port, "name": "tcp", "protocol": "TCP"}, "hosts": ["*"]}]),
        svc("echo", 9000, echo, protocol="TCP"),
        virtual_service("tcp", ["*"], tcp=[{"match": [{"port": port}], "route": [route_to("echo.internal", 9000)]}]),
    ]
    _, proxy = serve_router(docs, [port])
    # HTTP bytes pass through as TCP: the backend sees the client's Host unchanged and no Envoy headers.
    status, headers, body = request(port, "/raw", host="anything.test")
    assert status == 200 and headers["x-backend"] == "echo"
    seen = json.loads(body)
    assert seen["headers"]["host"] == "anything.test" and "x-request-id" not in seen["headers"]
    assert "server" not in headers or headers["server"] != "istio-envoy"
    assert proxy.stats("tcp.").get("tcp.outbound|9000||echo.internal.downstream_cx_total", 0) >= 1


def test_tls_terminated_tcp_server(serve_router, backends, certs):
    echo = backends("echo")
    port = free_port()
    docs = [
        gateway_servers([{"port": {"number": port, "name": "tls", "protocol": "TLS"}, "hosts": ["db.example.com"],
                          "tls": {"mode": "SIMPLE", "serverCertificate": certs["server_cert"],
                                  "privateKey": certs["server_key"]}}]),
        svc("echo", 9000, echo, protocol="TCP"),
        virtual_service("db", ["db.example.com"], tcp=[{"route": [route_to("echo.internal", 9000)]}]),
    ]
    serve_router(docs, [port])
    status, headers, body = https_request(port, "db.example.com", path="/tcp", ca=certs["ca"])
    assert status == 200 and headers["x-backend"] == "echo"
    assert json.loads(body)["path"] == "/tcp"
