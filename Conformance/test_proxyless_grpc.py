"""Proxyless gRPC: a real grpcio xDS client (`xds:///` target) fed by SwiftPilot (scenario 23 a, b)."""
import json

from grpc_peer import EchoServer, run_client

HOST = "echo.grpc.svc.cluster.local"


def mesh(config_dir, v1_port: int, v2_port: int, http_rule: str):
    (config_dir / "grpc.yaml").write_text(f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: echo, namespace: grpc}}
spec:
  hosts: [{HOST}]
  location: MESH_INTERNAL
  resolution: STATIC
  ports: [{{number: 7070, name: grpc, protocol: GRPC}}]
  endpoints:
  - {{address: 127.0.0.1, ports: {{grpc: {v1_port}}}, labels: {{version: v1}}}}
  - {{address: 127.0.0.1, ports: {{grpc: {v2_port}}}, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {{name: echo, namespace: grpc}}
spec:
  host: {HOST}
  subsets:
  - {{name: v1, labels: {{version: v1}}}}
  - {{name: v2, labels: {{version: v2}}}}
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: echo, namespace: grpc}}
spec:
  hosts: [{HOST}]
  http:
{http_rule}
""")


def test_fault_delay_applies_to_every_rpc(config_dir, swiftpilot, workdir):
    with EchoServer("v1") as v1, EchoServer("v2") as v2:
        mesh(config_dir, v1.port, v2.port, """  - fault: {delay: {fixedDelay: 0.1s, percentage: {value: 100}}}
    route: [{destination: {host: echo.grpc.svc.cluster.local, subset: v1}}]""")
        pilot = swiftpilot("--examples-dir", str(config_dir))
        results = run_client(workdir, pilot.xds_port, f"xds:///{HOST}:7070", 10)
        assert [r["answer"] for r in results] == ["v1"] * 10, results
        assert all(r["seconds"] >= 0.1 for r in results), [r["seconds"] for r in results]
        # The client's view, from SwiftPilot's side: it ACKed what it was sent.
        proxies = [p for p in pilot.syncz() if p["nodeID"].startswith("sidecar~")]
        assert proxies == [] or all(t.get("nack") is None for p in proxies for t in p["types"].values())


def test_weighted_subsets_split_traffic(config_dir, swiftpilot, workdir):
    with EchoServer("v1") as v1, EchoServer("v2") as v2:
        mesh(config_dir, v1.port, v2.port, """  - route:
    - {destination: {host: echo.grpc.svc.cluster.local, subset: v1}, weight: 20}
    - {destination: {host: echo.grpc.svc.cluster.local, subset: v2}, weight: 80}""")
        pilot = swiftpilot("--examples-dir", str(config_dir))
        results = run_client(workdir, pilot.xds_port, f"xds:///{HOST}:7070", 200)
        answers = [r["answer"] for r in results]
        assert set(answers) <= {"v1", "v2"}, answers
        share = answers.count("v1") / len(answers)
        # 200 Bernoulli(0.2) draws: the standard deviation is 0.028; allow 4 of them.
        assert 0.2 - 0.12 <= share <= 0.2 + 0.12, share
        assert v1.calls + v2.calls == 200


def test_unknown_service_fails_the_rpc(config_dir, swiftpilot, workdir):
    with EchoServer("v1") as v1, EchoServer("v2") as v2:
        mesh(config_dir, v1.port, v2.port, """  - route: [{destination: {host: echo.grpc.svc.cluster.local}}]""")
        pilot = swiftpilot("--examples-dir", str(config_dir))
        results = run_client(workdir, pilot.xds_port, f"xds:///{HOST}:7070", 4)
        assert sorted({r["answer"] for r in results}) <= ["v1", "v2"]
        try:
            run_client(workdir, pilot.xds_port, "xds:///nothing.grpc.svc.cluster.local:7070", 1, timeout=40)
        except AssertionError as error:
            assert "channel_ready_future" in str(error) or "Timeout" in str(error) or "UNAVAILABLE" in str(error), error
        else:
            raise AssertionError("an RPC to a service SwiftPilot does not know succeeded")


def test_short_names_dial_the_service_in_the_clients_namespace(config_dir, swiftpilot, workdir):
    # The client's node id names namespace `grpc` and DNS domain `grpc.svc.cluster.local`.
    with EchoServer("v1") as v1, EchoServer("v2") as v2:
        mesh(config_dir, v1.port, v2.port, """  - route: [{destination: {host: echo.grpc.svc.cluster.local, subset: v2}}]""")
        pilot = swiftpilot("--examples-dir", str(config_dir))
        for short in ("echo", "echo.grpc", "echo.grpc.svc"):
            results = run_client(workdir, pilot.xds_port, f"xds:///{short}:7070", 3)
            assert [r["answer"] for r in results] == ["v2"] * 3, (short, results)
        assert v1.calls == 0 and v2.calls == 9, "every short name got the route of the service's VirtualService"
