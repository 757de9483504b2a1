import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Backend, Envoy, SwiftPilot, Workdir  # noqa: E402
from mcp_server import MCPServer, istio_protos  # noqa: E402


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, "rep_" + report.when, report)


def _failed(request) -> bool:
    report = getattr(request.node, "rep_call", None)
    return report is None or report.failed


@pytest.fixture
def workdir():
    w = Workdir()
    yield w.path
    w.cleanup()


@pytest.fixture
def backends():
    started: list[Backend] = []

    def start(name: str, delay: float = 0.0, **options) -> Backend:
        backend = Backend(name, delay, **options).__enter__()
        started.append(backend)
        return backend

    yield start
    for backend in started:
        backend.__exit__(None, None, None)


@pytest.fixture
def processes(request):
    """Every process a test starts; stopped at teardown, logs printed when the test failed."""
    started = []
    yield started
    failed = _failed(request)
    for process in reversed(started):
        process.stop()
        if failed:
            print(f"\n===== {process.name} log (tail) =====\n{process.output()[-6000:]}")


@pytest.fixture
def config_dir(workdir):
    path = workdir / "config"
    path.mkdir()
    return path


@pytest.fixture
def swiftpilot(workdir, processes):
    def start(*args: str, ready: bool = True) -> SwiftPilot:
        pilot = SwiftPilot(workdir, list(args))
        processes.append(pilot)
        if ready:
            pilot.wait_ready()
        return pilot
    return start


@pytest.fixture
def envoy(workdir, processes):
    def start(pilot: SwiftPilot, **node) -> Envoy:
        proxy = Envoy(workdir, pilot.xds_port, **node)
        processes.append(proxy)
        proxy.wait_live()
        return proxy
    return start


@pytest.fixture(scope="session")
def compiled_istio_protos():
    return istio_protos()


@pytest.fixture
def mcp_servers(request, compiled_istio_protos):
    """Starts MCP servers on 127.0.0.1; stops them at teardown, printing their records when the test failed."""
    started: list[MCPServer] = []

    def start(flavour: str = "istiod", **options) -> MCPServer:
        server = MCPServer(flavour, **options).start()
        started.append(server)
        return server

    yield start
    report = getattr(request.node, "rep_call", None)
    for server in started:
        server.stop()
        if report is None or report.failed:
            print("\n" + server.dump()[-12000:])


@pytest.fixture
def serve_router(config_dir, swiftpilot, envoy):
    """Writes Istio YAML documents, starts SwiftPilot on them and a router Envoy, and waits until
    Envoy has the listener of every given port active. Returns (pilot, proxy)."""
    def start(documents: list[str], listener_ports=(), **node):
        (config_dir / "mesh.yaml").write_text("---\n".join(documents))
        pilot = swiftpilot("--examples-dir", str(config_dir))
        proxy = envoy(pilot, **node)
        for port in listener_ports:
            proxy.wait_listener(f"0.0.0.0_{port}")
        return pilot, proxy
    return start
