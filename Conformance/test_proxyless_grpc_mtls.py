"""Proxyless gRPC mutual TLS (scenario 23 c): a real grpcio xDS client calls a real xDS-enabled grpcio
server. Both take their certificates from the `file_watcher` certificate provider of their own
bootstrap (what Istio's agent writes); SwiftPilot says when to use them: a DestinationRule with
ISTIO_MUTUAL for the client, a STRICT PeerAuthentication for the server's inbound listener."""
import json

from grpc_peer import XDSEchoServer, run_client
from harness import free_port, make_certificates, wait_until

HOST = "echo.grpc.svc.cluster.local"
TARGET = f"xds:///{HOST}:7070"


def mesh(config_dir, server_port: int, client_tls: str | None, server_mtls: str | None):
    """The echo service on 127.0.0.1:`server_port`, its DestinationRule's TLS mode and the
    PeerAuthentication of its workloads (`app: echo` in namespace grpc), each when given."""
    docs = [f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: grpc}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 7070, name: grpc, protocol: GRPC}}]
  endpoints: [{{address: 127.0.0.1, ports: {{grpc: {server_port}}}, labels: {{app: echo}}}}]
"""]
    if client_tls:
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: grpc}}
spec:
  host: {HOST}
  trafficPolicy: {{tls: {{mode: {client_tls}}}}}
""")
    if server_mtls:
        docs.append(f"""apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {{name: echo, namespace: grpc}}
spec:
  selector: {{matchLabels: {{app: echo}}}}
  mtls: {{mode: {server_mtls}}}
""")
    (config_dir / "grpc.yaml").write_text("---\n".join(docs))


def start(config_dir, workdir, swiftpilot, processes, client_tls, server_mtls):
    """SwiftPilot on the mesh, then the xDS-enabled server, once it has ACKed its listener."""
    certs = make_certificates(workdir / "certs")
    port = free_port()
    mesh(config_dir, port, client_tls, server_mtls)
    pilot = swiftpilot("--examples-dir", str(config_dir))
    server = XDSEchoServer(workdir, pilot.xds_port, port, "echo", "grpc", {"app": "echo"},
                           certificates={"cert": certs["server_cert"], "key": certs["server_key"], "ca": certs["ca"]})
    processes.append(server)

    def listener_acked():
        server.check_alive()
        for proxy in pilot.syncz():
            lds = proxy["types"].get("LDS", {})
            if proxy["nodeID"] == server.node_id and lds.get("sentVersion") and lds.get("ackedVersion") == lds["sentVersion"]:
                return lds
        return None
    lds = wait_until(listener_acked, 20, "the gRPC server's ACK of its inbound listener")
    assert lds["resourceCount"] == 1, lds
    client_certs = {"cert": certs["client_cert"], "key": certs["client_key"], "ca": certs["ca"]}
    return pilot, server, client_certs


def test_istio_mutual_with_strict_peer_authentication_succeeds(config_dir, workdir, swiftpilot, processes):
    pilot, server, client_certs = start(config_dir, workdir, swiftpilot, processes, "ISTIO_MUTUAL", "STRICT")
    results = run_client(workdir, pilot.xds_port, TARGET, 5, certificates=client_certs)
    # The server saw a TLS peer presenting the client certificate (common name `client`).
    assert [r["answer"] for r in results] == ["echo|tls|client"] * 5, results


def test_istio_mutual_without_the_server_policy_is_unavailable(config_dir, workdir, swiftpilot, processes):
    # No PeerAuthentication: the server listens in plaintext, the client insists on TLS.
    pilot, server, client_certs = start(config_dir, workdir, swiftpilot, processes, "ISTIO_MUTUAL", None)
    results = run_client(workdir, pilot.xds_port, TARGET, 3, certificates=client_certs, ready=False)
    assert [r["answer"] for r in results] == ["error:UNAVAILABLE"] * 3, results


def test_strict_server_refuses_a_plaintext_client(config_dir, workdir, swiftpilot, processes):
    # The server requires mutual TLS; the DestinationRule does not ask for it, so the client dials plaintext.
    pilot, server, client_certs = start(config_dir, workdir, swiftpilot, processes, None, "STRICT")
    results = run_client(workdir, pilot.xds_port, TARGET, 3, certificates=client_certs, ready=False)
    assert [r["answer"] for r in results] == ["error:UNAVAILABLE"] * 3, results


def test_without_any_tls_settings_the_server_answers_in_plaintext(config_dir, workdir, swiftpilot, processes):
    # The control case for the two failures above: same peers, no policies, RPCs succeed unauthenticated.
    pilot, server, client_certs = start(config_dir, workdir, swiftpilot, processes, None, None)
    results = run_client(workdir, pilot.xds_port, TARGET, 3, certificates=client_certs)
    assert [r["answer"] for r in results] == ["echo|insecure|"] * 3, results
